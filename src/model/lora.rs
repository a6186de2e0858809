//! LoRA experts over a frozen, shared backbone: per (layer, projection) a pair A [r, in], B [out, r]
//! of candle `Var`s, applied as y += scaling · dropout(x) Aᵀ Bᵀ. Adapters hold no base weights, so
//! any number can stay resident; a forward picks one (or none) through `AdapterRun`.

use super::config::ModelConfig;
use super::transformer::Proj;
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Hyper-parameters of an adapter (PEFT's names in adapter_config.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f32,
    pub target_modules: Vec<Proj>,
    /// rsLoRA scaling alpha / sqrt(r) instead of alpha / r.
    pub use_rslora: bool,
}

impl Default for LoraConfig {
    /// The paper's setting: rank 32, alpha 64 on the attention projections.
    fn default() -> Self {
        Self { r: 32, alpha: 64.0, dropout: 0.05, target_modules: vec![Proj::Q, Proj::K, Proj::V, Proj::O], use_rslora: false }
    }
}

impl LoraConfig {
    pub fn scaling(&self) -> f64 {
        if self.use_rslora {
            self.alpha / (self.r as f64).sqrt()
        } else {
            self.alpha / self.r as f64
        }
    }
}

/// One adapted linear layer: A [r, in], B [out, r].
#[derive(Debug, Clone)]
pub struct LoraPair {
    pub a: Var,
    pub b: Var,
}

/// A LoRA adapter: module -> (A, B), with one scaling for all modules.
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    pub config: LoraConfig,
    /// Per layer, the adapted projections.
    pub layers: Vec<BTreeMap<Proj, LoraPair>>,
}

impl LoraAdapter {
    /// PEFT's initialisation: A ~ kaiming-uniform(a = √5) = U(±1/√in), B = 0 (so the adapter starts as the base).
    pub fn new_random(config: LoraConfig, base: &ModelConfig, device: &Device, seed: u64) -> Result<Self> {
        if config.r == 0 || config.target_modules.is_empty() {
            bail!("LoRA needs r > 0 and at least one target module");
        }
        let mut rng = crate::util::seeded_rng(seed, crate::util::stable_hash("lora-init"));
        let mut layers = Vec::with_capacity(base.num_layers);
        for _ in 0..base.num_layers {
            let mut modules = BTreeMap::new();
            for &proj in &config.target_modules {
                let (fan_in, fan_out) = base.proj_shape(proj);
                let bound = 1.0 / (fan_in as f32).sqrt();
                let a: Vec<f32> = (0..config.r * fan_in).map(|_| rng.random_range(-bound..bound)).collect();
                let a = Var::from_tensor(&Tensor::from_vec(a, (config.r, fan_in), device)?)?;
                let b = Var::from_tensor(&Tensor::zeros((fan_out, config.r), DType::F32, device)?)?;
                modules.insert(proj, LoraPair { a, b });
            }
            layers.push(modules);
        }
        Ok(Self { config, layers })
    }

    /// All trainable variables in a fixed order (layer, projection, A then B).
    pub fn vars(&self) -> Vec<Var> {
        self.layers.iter().flat_map(|m| m.values().flat_map(|p| [p.a.clone(), p.b.clone()])).collect()
    }

    pub fn get(&self, layer: usize, proj: Proj) -> Option<&LoraPair> {
        self.layers.get(layer).and_then(|m| m.get(&proj))
    }

    pub fn num_parameters(&self) -> usize {
        self.vars().iter().map(|v| v.elem_count()).sum()
    }

    /// Checks that the adapter fits a backbone: layer count, module shapes.
    pub fn check_fits(&self, base: &ModelConfig) -> Result<()> {
        if self.layers.len() != base.num_layers {
            bail!("adapter has {} layers, the base model has {}", self.layers.len(), base.num_layers);
        }
        for (i, modules) in self.layers.iter().enumerate() {
            for (proj, pair) in modules {
                let (fan_in, fan_out) = base.proj_shape(*proj);
                let (r, a_in) = pair.a.dims2()?;
                let (b_out, b_r) = pair.b.dims2()?;
                if a_in != fan_in || b_out != fan_out || b_r != r {
                    bail!("adapter module {} has A {:?} and B {:?}, the base needs A [r, {fan_in}] and B [{fan_out}, r]", proj.path(i), pair.a.dims(), pair.b.dims());
                }
            }
        }
        Ok(())
    }
}

/// How a forward uses LoRA: which adapter (or none), and dropout randomness when training.
#[derive(Clone, Copy, Default)]
pub struct AdapterRun<'a> {
    pub adapter: Option<&'a LoraAdapter>,
    /// Some(rng) = training: dropout on the LoRA input with the adapter's rate, masks drawn from rng.
    pub dropout_rng: Option<&'a RefCell<ChaCha8Rng>>,
    /// Inference: use the adapter's values without recording the autograd graph.
    pub detach: bool,
}

impl<'a> AdapterRun<'a> {
    pub fn base() -> Self {
        Self::default()
    }

    /// Under `adapter` without dropout, keeping the graph (for gradients).
    pub fn with(adapter: Option<&'a LoraAdapter>) -> Self {
        Self { adapter, dropout_rng: None, detach: false }
    }

    /// Under `adapter` for scoring only (no graph).
    pub fn inference(adapter: Option<&'a LoraAdapter>) -> Self {
        Self { adapter, dropout_rng: None, detach: true }
    }

    /// Training: dropout on the LoRA inputs with masks from `rng`, graph kept.
    pub fn train(adapter: &'a LoraAdapter, rng: &'a RefCell<ChaCha8Rng>) -> Self {
        Self { adapter: Some(adapter), dropout_rng: Some(rng), detach: false }
    }

    /// Whether this run records a graph for gradients (an adapter that is not detached). Without it the
    /// forward may use candle's fused, multi-threaded inference kernels (softmax, RMSNorm).
    pub fn needs_grad(&self) -> bool {
        self.adapter.is_some() && !self.detach
    }

    /// The LoRA update scaling · dropout(x) Aᵀ Bᵀ for x [n, in], if this module is adapted.
    pub fn delta(&self, layer: usize, proj: Proj, x: &Tensor) -> Result<Option<Tensor>> {
        let Some(adapter) = self.adapter else { return Ok(None) };
        let Some(pair) = adapter.get(layer, proj) else { return Ok(None) };
        let p = adapter.config.dropout;
        let x = match self.dropout_rng {
            Some(rng) if p > 0.0 => {
                // One word of the stream per element, as `rng.random::<f32>()` per element would take, turned
                // into multipliers in parallel by the kernel (the same masks, about a third of a bf16 step
                // when drawn one call at a time).
                let mut words = vec![0u32; x.elem_count()];
                rng.borrow_mut().fill(&mut words[..]);
                let mask = r2r_cpu_kernels::dropout_mask(&words, p);
                (x * Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?)?
            }
            _ => x.clone(),
        };
        let (a, b) = if self.detach { (pair.a.as_tensor().detach(), pair.b.as_tensor().detach()) } else { (pair.a.as_tensor().clone(), pair.b.as_tensor().clone()) };
        let (a, b) = (a.to_dtype(x.dtype())?, b.to_dtype(x.dtype())?);
        // The scaling multiplies the rank-r intermediate rather than the [n, out] result: r/out of the work,
        // forward and backward (the same bits when the scaling is a power of two, as α = 2r makes it).
        Ok(Some((x.matmul(&a.t()?)? * adapter.config.scaling())?.matmul(&b.t()?)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ModelConfig {
        ModelConfig::from_json(r#"{"model_type":"qwen3","vocab_size":10,"hidden_size":8,"intermediate_size":12,"num_hidden_layers":2,
            "num_attention_heads":2,"num_key_value_heads":1,"head_dim":4,"rms_norm_eps":1e-6,"max_position_embeddings":32}"#).unwrap()
    }

    #[test]
    fn random_init_is_peft_like_and_seeded() {
        let cfg = LoraConfig { r: 4, ..Default::default() };
        let a1 = LoraAdapter::new_random(cfg.clone(), &tiny(), &Device::Cpu, 7).unwrap();
        let a2 = LoraAdapter::new_random(cfg.clone(), &tiny(), &Device::Cpu, 7).unwrap();
        let a3 = LoraAdapter::new_random(cfg, &tiny(), &Device::Cpu, 8).unwrap();
        assert_eq!(a1.vars().len(), 2 * 4 * 2);
        let first = |a: &LoraAdapter| a.vars()[0].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(first(&a1), first(&a2));
        assert_ne!(first(&a1), first(&a3));
        assert!(first(&a1).iter().all(|v| v.abs() <= 1.0 / 8f32.sqrt()));
        assert_eq!(a1.vars()[1].sum_all().unwrap().to_scalar::<f32>().unwrap(), 0.0);
        a1.check_fits(&tiny()).unwrap();
        let mut other = tiny();
        other.hidden_size = 16;
        assert!(a1.check_fits(&other).is_err());
    }

    #[test]
    fn delta_uses_scaling_and_dropout_only_in_training() {
        let cfg = LoraConfig { r: 2, alpha: 6.0, dropout: 0.5, target_modules: vec![Proj::Q], use_rslora: false };
        let ad = LoraAdapter::new_random(cfg, &tiny(), &Device::Cpu, 1).unwrap();
        let pair = ad.get(0, Proj::Q).unwrap();
        pair.b.set(&Tensor::ones((8, 2), DType::F32, &Device::Cpu).unwrap()).unwrap();
        let x = Tensor::ones((3, 8), DType::F32, &Device::Cpu).unwrap();
        let d = AdapterRun::with(Some(&ad)).delta(0, Proj::Q, &x).unwrap().unwrap();
        let a_sum: f32 = pair.a.sum_all().unwrap().to_scalar().unwrap();
        let got: f32 = d.get(0).unwrap().get(0).unwrap().to_scalar().unwrap();
        assert!((got - 3.0 * a_sum).abs() < 1e-5, "{got} vs {}", 3.0 * a_sum);
        assert!(AdapterRun::with(Some(&ad)).delta(0, Proj::K, &x).unwrap().is_none());
        let rng = RefCell::new(crate::util::seeded_rng(3, 1));
        let train = AdapterRun::train(&ad, &rng);
        let dt = train.delta(0, Proj::Q, &x).unwrap().unwrap();
        assert_ne!(dt.to_vec2::<f32>().unwrap(), d.to_vec2::<f32>().unwrap());
    }

    /// The bulk masks take the same words of the stream and make the same decisions as drawing
    /// `random::<f32>()` per element did (so runs trained before keep their numbers on resume), and leave the
    /// generator where per-element draws would.
    #[test]
    fn bulk_dropout_masks_equal_per_element_draws() {
        for (p, n) in [(0.05f32, 100_003usize), (0.5, 4_097), (0.1, 1)] {
            let keep = 1.0 / (1.0 - p);
            let mut reference = crate::util::seeded_rng(7, 42);
            let expected: Vec<f32> = (0..n).map(|_| if reference.random::<f32>() < p { 0.0 } else { keep }).collect();
            let mut bulk = crate::util::seeded_rng(7, 42);
            let mut words = vec![0u32; n];
            bulk.fill(&mut words[..]);
            assert_eq!(r2r_cpu_kernels::dropout_mask(&words, p), expected, "p {p}, {n} elements");
            assert_eq!(bulk.random::<u64>(), reference.random::<u64>(), "the streams continue alike");
            let dropped = expected.iter().filter(|v| **v == 0.0).count() as f32 / n as f32;
            assert!(n < 1000 || (dropped - p).abs() < 0.02, "dropped {dropped} at p {p}");
        }
    }
}
