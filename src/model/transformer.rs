//! The decoder backbone: Qwen3 (per-head q/k RMSNorm), its Qwen2 (q/k/v biases) and Llama variants, and
//! Gemma 3 (sandwich norms, x·(1 + w) norms folded in at load, √hidden embedding scale, gelu-tanh MLP,
//! sliding-window layers with their own RoPE θ), written from differentiable candle ops (explicit RMSNorm, RoPE, additive causal+padding mask,
//! `candle_nn::ops::softmax`) so LoRA parameters get gradients. Base weights are plain frozen tensors;
//! every linear layer can be wrapped by a LoRA adapter at call time. Supports a shared prefix K/V
//! cache (one prompt prefix broadcast over a batch of suffixes) and "last position only" output.

use super::checkpoint::Weights;
use super::config::{Activation, Arch, LayerKind, ModelConfig};
use super::lora::AdapterRun;
use super::bf16_matmul::{output_buffer, PackedBf16};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use std::sync::{Arc, OnceLock};

/// Additive mask value of a forbidden attention entry (finite, so fully masked padding rows stay NaN-free).
pub const MASKED: f32 = -1e30;

/// The seven linear projections of a decoder layer, in PEFT's module names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Proj {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Proj {
    pub const ALL: [Proj; 7] = [Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Gate, Proj::Up, Proj::Down];

    /// PEFT / Hugging Face module name, e.g. `q_proj`.
    pub fn name(self) -> &'static str {
        match self {
            Proj::Q => "q_proj",
            Proj::K => "k_proj",
            Proj::V => "v_proj",
            Proj::O => "o_proj",
            Proj::Gate => "gate_proj",
            Proj::Up => "up_proj",
            Proj::Down => "down_proj",
        }
    }

    /// The parent block: `self_attn` or `mlp`.
    pub fn block(self) -> &'static str {
        match self {
            Proj::Q | Proj::K | Proj::V | Proj::O => "self_attn",
            _ => "mlp",
        }
    }

    pub fn from_name(name: &str) -> Option<Proj> {
        Proj::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Module path inside the model, e.g. `model.layers.3.self_attn.q_proj`.
    pub fn path(self, layer: usize) -> String {
        format!("model.layers.{layer}.{}.{}", self.block(), self.name())
    }
}

/// A frozen linear layer y = x Wᵀ + b; W is [out, in].
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    /// bf16 mode on the CPU: W packed for the bf16 kernel (see [`Transformer::use_bf16_matmuls`]).
    bf16: Option<Arc<FrozenBf16>>,
}

/// A frozen weight packed for bf16 products: forward (x·Wᵀ) at once, backward (g·W) when first needed.
struct FrozenBf16 {
    forward: PackedBf16,
    backward: OnceLock<PackedBf16>,
    /// W [out, in] (the source of the backward packing; shares the model's tensor).
    weight: Tensor,
}

impl std::fmt::Debug for FrozenBf16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrozenBf16 {{ out: {}, in: {} }}", self.forward.n, self.forward.k)
    }
}

impl FrozenBf16 {
    fn new(weight: &Tensor) -> Result<Self> {
        let (out, inp) = weight.dims2()?;
        let values = weight.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Self { forward: PackedBf16::pack(&values, out, inp), backward: OnceLock::new(), weight: weight.clone() })
    }

    fn backward(&self) -> candle_core::Result<&PackedBf16> {
        if let Some(packed) = self.backward.get() {
            return Ok(packed);
        }
        let values = self.weight.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Ok(self.backward.get_or_init(|| PackedBf16::pack_transposed(&values, self.forward.n, self.forward.k)))
    }
}

use super::fused_ops::f32_slice as contiguous_f32;

/// y = x·Wᵀ (or g·W for the backward) with the bf16 kernel, as a candle op on contiguous f32 CPU tensors.
struct Bf16Matmul {
    weight: Arc<FrozenBf16>,
    transposed: bool,
}

impl candle_core::CustomOp1 for Bf16Matmul {
    fn name(&self) -> &'static str {
        "bf16-matmul"
    }

    fn cpu_fwd(&self, storage: &candle_core::CpuStorage, layout: &candle_core::Layout) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let packed = if self.transposed { self.weight.backward()? } else { &self.weight.forward };
        let x = contiguous_f32(self.name(), storage, layout)?;
        let mut dims = layout.shape().dims().to_vec();
        if dims.last() != Some(&packed.k) {
            return Err(candle_core::Error::Msg(format!("bf16-matmul: input {dims:?} does not end in {}", packed.k)));
        }
        let y = packed.matmul(x, x.len() / packed.k);
        *dims.last_mut().expect("checked above") = packed.n;
        Ok((candle_core::CpuStorage::F32(y), candle_core::Shape::from(dims)))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let op = Bf16Matmul { weight: self.weight.clone(), transposed: !self.transposed };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

/// Attention's two batched products through the bf16 kernel (bf16 mode, forward and backward), on
/// contiguous f32 CPU tensors [batch, heads, ·, ·]: `Scores` gives q·kᵀ ([.., m, d] × [.., s, d] → [.., m, s]),
/// `Context` gives p·v ([.., m, s] × [.., s, d] → [.., m, d]). Each (batch, head) packs its keys or values
/// once (s × d, cheap beside the product) and multiplies as the projections do: bf16 inputs, f32 sums,
/// which is what PyTorch's bf16 autocast does for attention.
#[derive(Clone, Copy)]
enum Bf16Attention {
    Scores,
    Context,
}

impl candle_core::CustomOp2 for Bf16Attention {
    fn name(&self) -> &'static str {
        match self {
            Bf16Attention::Scores => "bf16-attention-scores",
            Bf16Attention::Context => "bf16-attention-context",
        }
    }

    fn cpu_fwd(&self, s1: &candle_core::CpuStorage, l1: &candle_core::Layout, s2: &candle_core::CpuStorage, l2: &candle_core::Layout) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use rayon::prelude::*;
        let (a, b) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?);
        let (da, db) = (l1.shape().dims(), l2.shape().dims());
        let bad = || candle_core::Error::Msg(format!("{}: shapes {da:?} and {db:?} do not fit", self.name()));
        let [batch, heads, m, inner] = *da else { return Err(bad()) };
        let [batch2, heads2, s, d] = *db else { return Err(bad()) };
        let fits = batch == batch2 && heads == heads2 && match self {
            Bf16Attention::Scores => inner == d,
            Bf16Attention::Context => inner == s,
        };
        if !fits {
            return Err(bad());
        }
        let out_cols = match self {
            Bf16Attention::Scores => s,
            Bf16Attention::Context => d,
        };
        // SAFETY: every (batch, head) chunk is written in full by matmul_into.
        let mut out = unsafe { output_buffer(batch * heads * m * out_cols) };
        out.par_chunks_mut(m * out_cols.max(1)).enumerate().for_each(|(i, out)| {
            let (x, w) = (&a[i * m * inner..(i + 1) * m * inner], &b[i * s * d..(i + 1) * s * d]);
            let packed = match self {
                Bf16Attention::Scores => PackedBf16::pack(w, s, d),
                Bf16Attention::Context => PackedBf16::pack_transposed(w, s, d),
            };
            packed.matmul_into(x, m, out);
        });
        Ok((candle_core::CpuStorage::F32(out), candle_core::Shape::from((batch, heads, m, out_cols))))
    }

    /// Both gradients are products of the same two kinds (t: the last two dims swapped):
    /// scores = q·kᵀ: dq = g·k (Context(g, k)), dk = gᵀ·q (Context(gᵀ, q));
    /// ctx = p·v: dp = g·vᵀ (Scores(g, v)), dv = pᵀ·g (Context(pᵀ, g)).
    fn bwd(&self, a: &Tensor, b: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let t = |x: &Tensor| super::fused_ops::transpose_last_two(x);
        let grad = grad.contiguous()?;
        let (ga, gb) = match self {
            Bf16Attention::Scores => (grad.apply_op2_no_bwd(b, &Bf16Attention::Context)?, t(&grad)?.apply_op2_no_bwd(a, &Bf16Attention::Context)?),
            Bf16Attention::Context => (grad.apply_op2_no_bwd(b, &Bf16Attention::Scores)?, t(a)?.apply_op2_no_bwd(&grad, &Bf16Attention::Context)?),
        };
        Ok((Some(ga), Some(gb)))
    }
}

/// gelu-tanh(gate) ⊙ up, Gemma's gated MLP, in one pass each way (bf16 mode; f32 CPU tensors): the
/// vectorised gelu of [`super::bf16_matmul`] (candle's own `gelu` calls libm's tanhf per element, a sixth of
/// a bf16-mode forward), and a backward that gives both gradients from one pass over (gate, up, grad)
/// instead of a product's backward (two passes) and gelu's (one more). Same bits as the op-by-op form.
struct GegluTanh;

impl candle_core::CustomOp2 for GegluTanh {
    fn name(&self) -> &'static str {
        "geglu-tanh"
    }

    fn cpu_fwd(&self, s1: &candle_core::CpuStorage, l1: &candle_core::Layout, s2: &candle_core::CpuStorage, l2: &candle_core::Layout) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (gate, up) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?);
        if l1.shape() != l2.shape() {
            return Err(candle_core::Error::Msg(format!("{}: gate {:?} and up {:?} differ", self.name(), l1.shape(), l2.shape())));
        }
        Ok((candle_core::CpuStorage::F32(super::bf16_matmul::geglu_tanh(gate, up)), l1.shape().clone()))
    }

    fn bwd(&self, gate: &Tensor, up: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let both = gate.contiguous()?.apply_op3_no_bwd(&up.contiguous()?, &grad.contiguous()?, &GegluTanhBackward)?;
        Ok((Some(both.get(0)?), Some(both.get(1)?)))
    }
}

/// (d gate, d up) of [`GegluTanh`] stacked as [2, ..shape].
struct GegluTanhBackward;

impl candle_core::CustomOp3 for GegluTanhBackward {
    fn name(&self) -> &'static str {
        "geglu-tanh-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &candle_core::Layout,
        s2: &candle_core::CpuStorage,
        l2: &candle_core::Layout,
        s3: &candle_core::CpuStorage,
        l3: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (gate, up, grad) = (contiguous_f32(self.name(), s1, l1)?, contiguous_f32(self.name(), s2, l2)?, contiguous_f32(self.name(), s3, l3)?);
        if l1.shape() != l2.shape() || l1.shape() != l3.shape() {
            return Err(candle_core::Error::Msg(format!("{}: gate {:?}, up {:?} and gradient {:?} differ", self.name(), l1.shape(), l2.shape(), l3.shape())));
        }
        let mut dims = vec![2];
        dims.extend_from_slice(l1.shape().dims());
        Ok((candle_core::CpuStorage::F32(super::bf16_matmul::geglu_tanh_backward(gate, up, grad)), candle_core::Shape::from(dims)))
    }
}

impl Linear {
    /// x [n, in] -> [n, out]. When x carries a gradient graph (LoRA training), the product goes through
    /// [`FrozenMatmul`], whose backward gives the gradient of x only: candle's own matmul backward would
    /// also compute the (discarded) gradient of the frozen weight, a third of the training FLOPs.
    /// In bf16 mode (f32 CPU input) the product is the bf16 kernel's, likewise with an input-only backward.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(packed) = self.bf16.as_ref().filter(|_| x.device().is_cpu() && x.dtype() == DType::F32) {
            let op = Bf16Matmul { weight: packed.clone(), transposed: false };
            // apply_op1 records the op for backprop only when x is tracked (LoRA training).
            let y = x.contiguous()?.apply_op1(op)?;
            return Ok(match &self.bias {
                Some(b) => y.broadcast_add(b)?,
                None => y,
            });
        }
        let wt = self.weight.t()?;
        let y = if x.track_op() {
            let y = x.detach().matmul(&wt)?;
            x.apply_op1(FrozenMatmul { weight: self.weight.clone(), product: y })?
        } else {
            x.matmul(&wt)?
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// y = x Wᵀ for a frozen W, as a custom op so that backprop computes dL/dx = dL/dy · W and nothing for W.
/// The forward result is computed beforehand by candle's matmul (`product`) and handed over as the op's
/// output.
struct FrozenMatmul {
    weight: Tensor,
    product: Tensor,
}

impl candle_core::CustomOp1 for FrozenMatmul {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(&self, _: &candle_core::CpuStorage, _: &candle_core::Layout) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let (storage, layout) = self.product.storage_and_layout();
        // A fresh matmul result: contiguous from offset 0, its storage exactly its elements.
        match &*storage {
            candle_core::Storage::Cpu(cpu) if layout.is_contiguous() && layout.start_offset() == 0 => Ok((cpu.clone(), layout.shape().clone())),
            _ => Err(candle_core::Error::Msg("frozen-matmul: product is not a contiguous CPU tensor".into())),
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(&self, _: &candle_core::CudaStorage, _: &candle_core::Layout) -> candle_core::Result<(candle_core::CudaStorage, candle_core::Shape)> {
        use candle_core::backend::BackendStorage;
        let (storage, layout) = self.product.storage_and_layout();
        match &*storage {
            candle_core::Storage::Cuda(cuda) => Ok((cuda.try_clone(layout)?, layout.shape().clone())),
            _ => Err(candle_core::Error::Msg("frozen-matmul: product is not a CUDA tensor".into())),
        }
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.matmul(&self.weight.to_dtype(grad.dtype())?)?))
    }
}

#[derive(Debug, Clone)]
struct Layer {
    proj: [Linear; 7], // indexed like Proj::ALL
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    input_norm: Tensor,
    /// Qwen/Llama: the norm before the MLP. Gemma: the norm of the attention output.
    post_attention_norm: Tensor,
    /// Gemma only: the norms before and after the MLP.
    pre_feedforward_norm: Option<Tensor>,
    post_feedforward_norm: Option<Tensor>,
    kind: LayerKind,
}

/// Per-layer keys and values of a prompt prefix: [1, kv_heads, len, head_dim] each, after RoPE.
#[derive(Debug, Clone)]
pub struct PrefixCache {
    pub keys: Vec<Tensor>,
    pub values: Vec<Tensor>,
    pub len: usize,
}

/// One forward step over a left-padded batch, optionally continuing a shared prefix.
pub struct StepInput<'a> {
    /// [b, t] u32 token ids.
    pub ids: &'a Tensor,
    /// [b, t] u32 positions (prefix length + index among the row's real tokens).
    pub positions: &'a Tensor,
    /// [b, 1, t, prefix_len + t] additive f32 mask (0 allowed, MASKED forbidden).
    pub mask: &'a Tensor,
    pub prefix: Option<&'a PrefixCache>,
}

/// The backbone with its LM head. Cloning is cheap (tensors are reference counted).
#[derive(Debug, Clone)]
pub struct Transformer {
    pub config: ModelConfig,
    embed: Tensor,   // [vocab, hidden]
    layers: Vec<Layer>,
    norm: Tensor,    // [hidden]
    lm_head: Tensor, // [vocab, hidden]; the embedding itself when tied
    inv_freq: Tensor, // [1, head_dim / 2] f32, full-attention layers
    inv_freq_local: Tensor, // [1, head_dim / 2] f32, sliding-window layers
    dtype: DType,
    /// bf16 mode ([`Transformer::use_bf16_matmuls`]): bf16 projections and the vectorised gelu-tanh.
    bf16_mode: bool,
}

/// RMSNorm w · x · rsqrt(mean(x²) + eps) in f32: from basic (differentiable) ops, or candle's fused kernel
/// when no gradient is needed.
fn rms_norm(x: &Tensor, weight: &Tensor, eps: f64, fused: bool) -> Result<Tensor> {
    if fused {
        return Ok(candle_nn::ops::rms_norm(&x.contiguous()?, weight, eps as f32)?);
    }
    if super::fused_ops::applies(x) && !weight.is_variable() {
        return Ok(super::fused_ops::rms_norm_frozen(x, weight, eps)?);
    }
    let dtype = x.dtype();
    let x = x.to_dtype(DType::F32)?;
    let inv_rms = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?.sqrt()?.recip()?;
    Ok(x.broadcast_mul(&inv_rms)?.to_dtype(dtype)?.broadcast_mul(weight)?)
}

/// rotate_half RoPE on x [b, heads, t, d] with cos/sin [b, 1, t, d/2].
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if super::fused_ops::applies(x) && super::fused_ops::applies(cos) {
        return Ok(super::fused_ops::rope(x, cos, sin)?);
    }
    let half = x.dim(D::Minus1)? / 2;
    let (x1, x2) = (x.narrow(D::Minus1, 0, half)?, x.narrow(D::Minus1, half, half)?);
    let out1 = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let out2 = (x2.broadcast_mul(cos)? + x1.broadcast_mul(sin)?)?;
    Ok(Tensor::cat(&[out1, out2], D::Minus1)?)
}

impl Transformer {
    /// True when no gradient can be needed: no trainable adapter in `run` and frozen
    /// base weights (a base built from `Var`s, as in backbone pretraining, trains).
    /// Only then may the forward use candle's fused kernels, which have no backward.
    fn inference_only(&self, run: &AdapterRun) -> bool {
        !run.needs_grad() && !self.embed.is_variable()
    }

    /// Builds the model from loaded weights (HF names, with or without the `model.` prefix).
    pub fn new(config: ModelConfig, weights: &Weights, device: &Device, dtype: DType) -> Result<Self> {
        let c = &config;
        let root = if weights.contains("model.embed_tokens.weight") { "model." } else { "" };
        // Gemma's RMSNorm multiplies by (1 + w): fold the 1 in once, so every norm is w'·x·rsqrt(…).
        let norm = |name: &str, len: usize| -> Result<Tensor> {
            let w = weights.get(name, &[len])?;
            Ok(if c.arch == Arch::Gemma3 && !weights.norms_include_one() { (w + 1.0)? } else { w })
        };
        let embed = weights.get(&format!("{root}embed_tokens.weight"), &[c.vocab_size, c.hidden_size])?;
        let mut layers = Vec::with_capacity(c.num_layers);
        for i in 0..c.num_layers {
            let p = format!("{root}layers.{i}");
            let linear = |proj: Proj| -> Result<Linear> {
                let (fan_in, fan_out) = c.proj_shape(proj);
                let name = format!("{p}.{}.{}", proj.block(), proj.name());
                let has_bias = match proj {
                    Proj::Q | Proj::K | Proj::V => c.qkv_bias,
                    Proj::O => c.o_bias,
                    _ => c.mlp_bias,
                };
                Ok(Linear {
                    weight: weights.get(&format!("{name}.weight"), &[fan_out, fan_in])?,
                    bias: if has_bias { Some(weights.get(&format!("{name}.bias"), &[fan_out])?) } else { None },
                    bf16: None,
                })
            };
            let proj = [linear(Proj::Q)?, linear(Proj::K)?, linear(Proj::V)?, linear(Proj::O)?, linear(Proj::Gate)?, linear(Proj::Up)?, linear(Proj::Down)?];
            let (q_norm, k_norm) = if c.qk_norm {
                (Some(norm(&format!("{p}.self_attn.q_norm.weight"), c.head_dim)?), Some(norm(&format!("{p}.self_attn.k_norm.weight"), c.head_dim)?))
            } else {
                (None, None)
            };
            let (pre_feedforward_norm, post_feedforward_norm) = if c.sandwich_norms {
                (Some(norm(&format!("{p}.pre_feedforward_layernorm.weight"), c.hidden_size)?), Some(norm(&format!("{p}.post_feedforward_layernorm.weight"), c.hidden_size)?))
            } else {
                (None, None)
            };
            layers.push(Layer {
                proj,
                q_norm,
                k_norm,
                input_norm: norm(&format!("{p}.input_layernorm.weight"), c.hidden_size)?,
                post_attention_norm: norm(&format!("{p}.post_attention_layernorm.weight"), c.hidden_size)?,
                pre_feedforward_norm,
                post_feedforward_norm,
                kind: c.layer_kinds.get(i).copied().unwrap_or(LayerKind::Full),
            });
        }
        let norm = norm(&format!("{root}norm.weight"), c.hidden_size)?;
        let lm_head = if weights.contains("lm_head.weight") && !c.tie_word_embeddings {
            weights.get("lm_head.weight", &[c.vocab_size, c.hidden_size])?
        } else if c.tie_word_embeddings {
            embed.clone()
        } else {
            bail!("lm_head.weight is missing and tie_word_embeddings is false");
        };
        let table = |f: Vec<f32>| Tensor::from_vec(f.clone(), (1, f.len()), device);
        let inv_freq = table(c.inv_freq_for(LayerKind::Full))?;
        let inv_freq_local = table(c.inv_freq_for(LayerKind::Sliding))?;
        Ok(Self { config, embed, layers, norm, lm_head, inv_freq, inv_freq_local, dtype, bf16_mode: false })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Folds a LoRA adapter into the base weights: W ← W + scaling · B·A (in f32, then the weights' dtype).
    /// The result scores as base + adapter did, with no adapter at run time.
    pub fn merge_adapter(&mut self, adapter: &super::lora::LoraAdapter) -> Result<()> {
        adapter.check_fits(&self.config)?;
        let scaling = adapter.config.scaling();
        for (layer, modules) in self.layers.iter_mut().zip(&adapter.layers) {
            for (proj, pair) in modules {
                let linear = &mut layer.proj[*proj as usize];
                let delta = (pair.b.as_tensor().to_dtype(DType::F32)?.matmul(&pair.a.as_tensor().to_dtype(DType::F32)?)? * scaling)?;
                let merged = (linear.weight.to_dtype(DType::F32)? + delta.to_device(linear.weight.device())?)?;
                linear.weight = merged.to_dtype(self.dtype)?;
                if linear.bf16.is_some() {
                    linear.bf16 = Some(Arc::new(FrozenBf16::new(&linear.weight)?));
                }
            }
        }
        Ok(())
    }

    /// bf16 mode on the CPU: every frozen projection multiplies through the bf16 kernel
    /// ([`super::bf16_matmul`]: bf16 inputs and weights, f32 sums; 2× the f32 GEMM rate on AVX512-BF16)
    /// and gelu-tanh is the vectorised form, while everything else stays f32. Scores then differ from f32
    /// mode by bf16 rounding (a few hundredths of a logit on Gemma 3 270M). Returns the bytes of the
    /// packed weights (the f32 weights stay, for merging and for the backward packing made on first use).
    pub fn use_bf16_matmuls(&mut self) -> Result<usize> {
        if !self.device().is_cpu() || self.dtype != DType::F32 {
            bail!("bf16 matmuls are a CPU mode over f32 weights (on CUDA load the weights in bf16 instead)");
        }
        let mut bytes = 0;
        for layer in &mut self.layers {
            for linear in &mut layer.proj {
                let packed = FrozenBf16::new(&linear.weight)?;
                bytes += packed.forward.bytes();
                linear.bf16 = Some(Arc::new(packed));
            }
        }
        self.bf16_mode = true;
        Ok(bytes)
    }

    /// Bytes the backbone holds in memory as loaded: every weight tensor (the tied head once) in its dtype,
    /// plus the bf16 kernel's packed copies in bf16 mode (the backward packings only once made).
    pub fn resident_bytes(&self) -> usize {
        let tensor = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        let optional = |t: &Option<Tensor>| t.as_ref().map_or(0, tensor);
        let mut bytes = tensor(&self.embed) + tensor(&self.norm);
        if !self.config.tie_word_embeddings {
            bytes += tensor(&self.lm_head);
        }
        for layer in &self.layers {
            bytes += tensor(&layer.input_norm) + tensor(&layer.post_attention_norm);
            bytes += optional(&layer.q_norm) + optional(&layer.k_norm);
            bytes += optional(&layer.pre_feedforward_norm) + optional(&layer.post_feedforward_norm);
            for linear in &layer.proj {
                bytes += tensor(&linear.weight) + optional(&linear.bias);
                if let Some(packed) = &linear.bf16 {
                    bytes += packed.forward.bytes() + packed.backward.get().map_or(0, |b| b.bytes());
                }
            }
        }
        bytes
    }

    /// Whether the model runs in bf16 mode.
    pub fn bf16_matmuls(&self) -> bool {
        self.bf16_mode
    }

    pub fn device(&self) -> &Device {
        self.embed.device()
    }

    /// Rows `ids` of the LM head: [ids.len(), hidden].
    pub fn lm_head_rows(&self, ids: &[u32]) -> Result<Tensor> {
        let idx = Tensor::new(ids, self.device())?;
        Ok(self.lm_head.index_select(&idx, 0)?)
    }

    /// The full LM head [vocab, hidden] (the naive path multiplies every position by it).
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    fn linear(&self, layer: usize, proj: Proj, x: &Tensor, run: &AdapterRun) -> Result<Tensor> {
        let y = self.layers[layer].proj[proj as usize].forward(x)?;
        match run.delta(layer, proj, x)? {
            Some(delta) => Ok((y + delta)?),
            None => Ok(y),
        }
    }

    /// Runs the decoder: returns the hidden states after the final norm, [b, t, hidden], or [b, 1, hidden]
    /// for the last position only (`last_only`: the last layer then computes queries, attention output
    /// and MLP for that position alone), plus this step's K/V when `keep_cache` (to reuse as a prefix).
    pub fn forward(&self, input: &StepInput, run: &AdapterRun, last_only: bool, keep_cache: bool) -> Result<(Tensor, Option<PrefixCache>)> {
        self.forward_collect(input, run, last_only, keep_cache, None, None)
    }

    /// The residual stream at every position after the embedding (`layers` entry 0) or after decoder
    /// layer `l` (entry `l`, 1-based), [b, t, hidden] each, for the requested entries in the given order.
    /// Layers past the deepest one requested are not run (token-level probes read a middle layer cheaply).
    pub fn residual_states(&self, input: &StepInput, layers: &[usize]) -> Result<Vec<Tensor>> {
        let deepest = layers.iter().copied().max().context("no layer requested")?;
        if deepest > self.layers.len() {
            bail!("layer {deepest} requested; the model has {} layers", self.layers.len());
        }
        let mut states = Vec::new();
        self.forward_collect(input, &AdapterRun::with(None), false, false, Some(&mut states), Some(deepest))?;
        Ok(layers.iter().map(|&l| states[l].clone()).collect())
    }

    /// The residual stream of one unpadded sequence after the embedding and after each layer, at its last
    /// position (for locating a mismatch against a reference implementation layer by layer).
    pub fn layer_states(&self, ids: &[u32], run: &AdapterRun) -> Result<Vec<Vec<f32>>> {
        let (ids, positions, mask) = left_padded_inputs(&[ids], 0, 0, self.device())?;
        let mut states = Vec::new();
        self.forward_collect(&StepInput { ids: &ids, positions: &positions, mask: &mask, prefix: None }, run, false, false, Some(&mut states), None)?;
        states.iter().map(|x| Ok(x.narrow(1, x.dim(1)? - 1, 1)?.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)).collect()
    }

    /// `stop_after`: run only that many layers (the returned "final" state is then the raw residual).
    fn forward_collect(&self, input: &StepInput, run: &AdapterRun, last_only: bool, keep_cache: bool, mut collect: Option<&mut Vec<Tensor>>, stop_after: Option<usize>) -> Result<(Tensor, Option<PrefixCache>)> {
        let c = &self.config;
        let (b, t) = input.ids.dims2()?;
        if t == 0 {
            bail!("empty input sequence");
        }
        let prefix_len = input.prefix.map_or(0, |p| p.len);
        if input.mask.dims() != [b, 1, t, prefix_len + t] {
            bail!("attention mask has shape {:?}, expected {:?}", input.mask.dims(), [b, 1, t, prefix_len + t]);
        }
        let mut x = self.embed.index_select(&input.ids.flatten_all()?, 0)?.reshape((b, t, c.hidden_size))?;
        if let Some(scale) = c.embed_scale {
            // transformers multiplies by √hidden cast to the weights' dtype.
            let scale = Tensor::new(&[scale as f32], x.device())?.to_dtype(self.dtype)?;
            x = x.broadcast_mul(&scale)?;
        }
        // RoPE tables for exactly these positions: angle = position · inv_freq, in f32 as transformers does.
        let positions = input.positions.to_dtype(DType::F32)?.reshape((b * t, 1))?;
        let tables = |inv_freq: &Tensor| -> Result<(Tensor, Tensor)> {
            let angles = positions.broadcast_mul(inv_freq)?;
            Ok((angles.cos()?.to_dtype(self.dtype)?.reshape((b, 1, t, c.head_dim / 2))?, angles.sin()?.to_dtype(self.dtype)?.reshape((b, 1, t, c.head_dim / 2))?))
        };
        let global = tables(&self.inv_freq)?;
        let has_sliding = self.layers.iter().any(|l| l.kind == LayerKind::Sliding);
        let local = if has_sliding { Some((tables(&self.inv_freq_local)?, self.sliding_mask(input, prefix_len)?)) } else { None };
        let mut cache = keep_cache.then(|| PrefixCache { keys: vec![], values: vec![], len: t });
        let fused = self.inference_only(run);
        if let Some(states) = collect.as_mut() {
            states.push(x.clone());
        }
        for (i, layer) in self.layers.iter().enumerate() {
            if stop_after.is_some_and(|n| i >= n) {
                return Ok((x, cache));
            }
            let last = last_only && i + 1 == self.layers.len();
            let (rope, mask) = match (&local, layer.kind) {
                (Some((rope, mask)), LayerKind::Sliding) => ((&rope.0, &rope.1), mask),
                _ => ((&global.0, &global.1), input.mask),
            };
            x = self.layer_forward(i, layer, &x, input, mask, rope, run, last, cache.as_mut())?;
            if let Some(states) = collect.as_mut() {
                states.push(x.clone());
            }
        }
        Ok((rms_norm(&x, &self.norm, c.rms_norm_eps, fused)?, cache))
    }

    /// The step's mask with keys outside the sliding window also forbidden. Distances are taken between
    /// positions (prefix keys sit at 0..prefix_len), so left padding and a shared prefix give the same
    /// window as scoring the row alone: key j is visible from query i iff 0 ≤ pos_i − pos_j < window.
    fn sliding_mask(&self, input: &StepInput, prefix_len: usize) -> Result<Tensor> {
        let (b, t) = input.ids.dims2()?;
        let device = input.ids.device();
        let q_pos = input.positions.to_dtype(DType::F32)?; // [b, t]
        let k_pos = if prefix_len > 0 {
            let prefix = Tensor::arange(0u32, prefix_len as u32, device)?.to_dtype(DType::F32)?.unsqueeze(0)?.broadcast_as((b, prefix_len))?;
            Tensor::cat(&[&prefix, &q_pos], 1)?
        } else {
            q_pos.clone()
        };
        let distance = q_pos.unsqueeze(2)?.broadcast_sub(&k_pos.unsqueeze(1)?)?; // [b, t, p + t]
        let outside = distance.ge(self.config.sliding_window as f64)?;
        let window = outside.where_cond(&Tensor::new(MASKED, device)?.broadcast_as(outside.shape())?, &Tensor::zeros(outside.shape(), DType::F32, device)?)?;
        Ok(input.mask.broadcast_add(&window.reshape((b, 1, t, prefix_len + t))?)?)
    }

    #[allow(clippy::too_many_arguments)]
    fn layer_forward(&self, li: usize, layer: &Layer, x: &Tensor, input: &StepInput, mask: &Tensor, (cos, sin): (&Tensor, &Tensor), run: &AdapterRun, last_only: bool, cache: Option<&mut PrefixCache>) -> Result<Tensor> {
        let c = &self.config;
        let (b, t, hidden) = x.dims3()?;
        let (heads, kv_heads, d) = (c.num_heads, c.num_kv_heads, c.head_dim);
        let groups = heads / kv_heads;
        let fused = self.inference_only(run);
        let h = rms_norm(x, &layer.input_norm, c.rms_norm_eps, fused)?; // [b, t, hidden]
        let h_flat = h.reshape((b * t, hidden))?;
        let k = self.linear(li, Proj::K, &h_flat, run)?.reshape((b, t, kv_heads, d))?;
        let v = self.linear(li, Proj::V, &h_flat, run)?.reshape((b, t, kv_heads, d))?;
        // Query side: every position, or only the last one in a last-only final layer.
        let (tq, x_res, h_q, cos_q, sin_q, mask) = if last_only {
            let n = |z: &Tensor, dim: usize| z.narrow(dim, t - 1, 1);
            (1, n(x, 1)?, n(&h, 1)?.reshape((b, hidden))?, n(cos, 2)?, n(sin, 2)?, n(mask, 2)?)
        } else {
            (t, x.clone(), h_flat, cos.clone(), sin.clone(), mask.clone())
        };
        let q = self.linear(li, Proj::Q, &h_q, run)?.reshape((b, tq, heads, d))?;
        let (q, k) = match (&layer.q_norm, &layer.k_norm) {
            (Some(qn), Some(kn)) => (rms_norm(&q, qn, c.rms_norm_eps, fused)?, rms_norm(&k, kn, c.rms_norm_eps, fused)?),
            _ => (q, k),
        };
        let q = rope(&q.transpose(1, 2)?.contiguous()?, &cos_q, &sin_q)?; // [b, heads, tq, d]
        let k = rope(&k.transpose(1, 2)?.contiguous()?, cos, sin)?; // [b, kv_heads, t, d]
        let v = v.transpose(1, 2)?.contiguous()?; // [b, kv_heads, t, d]
        if let Some(cache) = cache {
            cache.keys.push(k.clone());
            cache.values.push(v.clone());
        }
        let (k, v) = match input.prefix {
            Some(p) => {
                let (pk, pv) = (&p.keys[li], &p.values[li]);
                // Broadcast the shared prefix over the batch (materialised: matmul needs plain batch strides).
                let shape = (b, kv_heads, p.len, d);
                let expand = |t: &Tensor| t.broadcast_as(shape)?.contiguous();
                (Tensor::cat(&[&expand(pk)?, &k], 2)?, Tensor::cat(&[&expand(pv)?, &v], 2)?)
            }
            None => (k, v),
        };
        let s = k.dim(2)?;
        // Grouped-query attention without copying K/V: query head h uses kv head h / groups, so the
        // [b, heads, tq, d] queries regroup as [b, kv_heads, groups·tq, d].
        let q = q.reshape((b, kv_heads, groups * tq, d))?;
        let bf16_attention = self.bf16_mode && q.device().is_cpu() && q.dtype() == DType::F32;
        let scores = if bf16_attention {
            q.contiguous()?.apply_op2(&k.contiguous()?, Bf16Attention::Scores)?
        } else {
            q.to_dtype(DType::F32)?.matmul(&k.to_dtype(DType::F32)?.t()?)?
        };
        let scores = (scores * c.attn_scale)?;
        let scores = scores.reshape((b, kv_heads, groups, tq, s))?.broadcast_add(&mask.reshape((b, 1, 1, tq, s))?)?;
        let probs = if fused { candle_nn::ops::softmax_last_dim(&scores)? } else if super::fused_ops::applies(&scores) { super::fused_ops::softmax_last_dim(&scores)? } else { candle_nn::ops::softmax(&scores, D::Minus1)? };
        let probs = probs.to_dtype(self.dtype)?;
        let probs = probs.reshape((b, kv_heads, groups * tq, s))?;
        let ctx = if bf16_attention { probs.contiguous()?.apply_op2(&v.contiguous()?, Bf16Attention::Context)? } else { probs.matmul(&v)? }; // [b, kv_heads, groups·tq, d]
        let ctx = ctx.reshape((b, heads, tq, d))?.transpose(1, 2)?.reshape((b * tq, heads * d))?;
        let attn = self.linear(li, Proj::O, &ctx, run)?.reshape((b, tq, hidden))?;
        let (x, h) = match (&layer.pre_feedforward_norm, &layer.post_feedforward_norm) {
            (Some(pre), Some(_)) => {
                let x = (x_res + rms_norm(&attn, &layer.post_attention_norm, c.rms_norm_eps, fused)?)?;
                let h = rms_norm(&x, pre, c.rms_norm_eps, fused)?;
                (x, h)
            }
            _ => {
                let x = (x_res + attn)?;
                let h = rms_norm(&x, &layer.post_attention_norm, c.rms_norm_eps, fused)?;
                (x, h)
            }
        };
        let h = h.reshape((b * tq, hidden))?;
        let gate = self.linear(li, Proj::Gate, &h, run)?;
        let up = self.linear(li, Proj::Up, &h, run)?;
        let gated = match c.activation {
            Activation::Silu => (gate.silu()? * up)?,
            Activation::GeluTanh if self.bf16_mode && gate.device().is_cpu() && gate.dtype() == DType::F32 => {
                gate.contiguous()?.apply_op2(&up.contiguous()?, GegluTanh)?
            }
            Activation::GeluTanh => (gate.gelu()? * up)?,
        };
        let down = self.linear(li, Proj::Down, &gated, run)?.reshape((b, tq, hidden))?;
        let down = match &layer.post_feedforward_norm {
            Some(post) => rms_norm(&down, post, c.rms_norm_eps, fused)?,
            None => down,
        };
        Ok((x + down)?)
    }
}

/// Left-padded ids, positions and mask for rows of different lengths continuing a prefix of `prefix_len`
/// tokens: row r's real tokens sit at the end, at positions prefix_len, prefix_len + 1, …; each attends to
/// the whole prefix and causally to its own real tokens. Returns (ids [b,t], positions [b,t], mask [b,1,t,p+t]).
pub fn left_padded_inputs(rows: &[&[u32]], pad_id: u32, prefix_len: usize, device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
    let b = rows.len();
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    if b == 0 || t == 0 {
        bail!("cannot build an empty batch");
    }
    let s = prefix_len + t;
    let mut ids = Vec::with_capacity(b * t);
    let mut positions = Vec::with_capacity(b * t);
    let mut mask = vec![MASKED; b * t * s];
    for (r, row) in rows.iter().enumerate() {
        let pad = t - row.len();
        ids.extend(std::iter::repeat_n(pad_id, pad).chain(row.iter().copied()));
        positions.extend((0..t).map(|j| (prefix_len + j.saturating_sub(pad)) as u32));
        for i in pad..t {
            let base = (r * t + i) * s;
            mask[base..base + prefix_len].fill(0.0);
            mask[base + prefix_len + pad..base + prefix_len + i + 1].fill(0.0);
        }
    }
    Ok((
        Tensor::from_vec(ids, (b, t), device)?,
        Tensor::from_vec(positions, (b, t), device)?,
        Tensor::from_vec(mask, (b, 1, t, s), device)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_attention_products_and_gradients_follow_f32_matmuls() {
        let dev = Device::Cpu;
        let (b, h, m, s, d) = (2, 3, 7, 5, 20);
        let var = |shape: (usize, usize, usize, usize), seed: u64| {
            let mut x = seed;
            let values: Vec<f32> = (0..shape.0 * shape.1 * shape.2 * shape.3)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect();
            candle_core::Var::from_tensor(&Tensor::from_vec(values, shape, &dev).unwrap()).unwrap()
        };
        let (q, k, v) = (var((b, h, m, d), 1), var((b, h, s, d), 2), var((b, h, s, d), 3));
        let weights = var((b, h, m, d), 4).as_tensor().detach();
        // loss = Σ w ⊙ softmax(q·kᵀ)·v, once through the bf16 ops and once through candle's f32 matmuls.
        let loss = |bf16: bool| {
            let scores = if bf16 { q.as_tensor().apply_op2(k.as_tensor(), Bf16Attention::Scores).unwrap() } else { q.as_tensor().matmul(&k.as_tensor().t().unwrap()).unwrap() };
            let probs = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
            let ctx = if bf16 { probs.apply_op2(v.as_tensor(), Bf16Attention::Context).unwrap() } else { probs.matmul(v.as_tensor()).unwrap() };
            (ctx * &weights).unwrap().sum_all().unwrap()
        };
        let (fast, exact) = (loss(true), loss(false));
        let (lf, le) = (fast.to_scalar::<f32>().unwrap(), exact.to_scalar::<f32>().unwrap());
        assert!((lf - le).abs() < 0.02 * (1.0 + le.abs()) && lf != le, "loss {lf} vs f32 {le}");
        let (gf, ge) = (fast.backward().unwrap(), exact.backward().unwrap());
        for (name, x) in [("q", &q), ("k", &k), ("v", &v)] {
            let a = gf.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let e = ge.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let dot: f64 = a.iter().zip(&e).map(|(a, e)| *a as f64 * *e as f64).sum();
            let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let cosine = dot / (norm(&a) * norm(&e));
            assert!(cosine > 0.999 && (norm(&a) / norm(&e) - 1.0).abs() < 0.02, "d{name}: cosine {cosine}");
        }
        // Shapes that do not fit are an error, not a panic.
        assert!(q.as_tensor().apply_op2_no_bwd(v.as_tensor(), &Bf16Attention::Context).is_err());
    }

    #[test]
    fn fused_geglu_gives_the_bits_of_gelu_then_product_forward_and_backward() {
        let dev = Device::Cpu;
        let values = |n: usize, seed: u64| {
            let mut x = seed;
            (0..n)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((x >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
                })
                .collect::<Vec<f32>>()
        };
        // 3 × 40_000 values: several of the kernel's 16k chunks, and a ragged last one.
        let shape = (3, 40_000);
        let gate = candle_core::Var::from_tensor(&Tensor::from_vec(values(120_000, 1), shape, &dev).unwrap()).unwrap();
        let up = candle_core::Var::from_tensor(&Tensor::from_vec(values(120_000, 2), shape, &dev).unwrap()).unwrap();
        let weights = Tensor::from_vec(values(120_000, 3), shape, &dev).unwrap();
        let gv = gate.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let gelu = {
            let mut g = gv.clone();
            super::super::bf16_matmul::gelu_tanh_in_place(&mut g);
            g
        };
        let op_by_op = (Tensor::from_vec(gelu.clone(), shape, &dev).unwrap() * up.as_tensor()).unwrap();
        let fused = gate.as_tensor().apply_op2(up.as_tensor(), GegluTanh).unwrap();
        assert_eq!(fused.flatten_all().unwrap().to_vec1::<f32>().unwrap(), op_by_op.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let grads = (fused * &weights).unwrap().sum_all().unwrap().backward().unwrap();
        let (d_gate, d_up) = (grads.get(gate.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap(), grads.get(up.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap());
        // Reference: d up = w ⊙ gelu(gate); d gate = gelu'(gate) ⊙ (w ⊙ up), the products in that order.
        let w = weights.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let uv = up.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let wu: Vec<f32> = w.iter().zip(&uv).map(|(w, u)| w * u).collect();
        let expected_gate = super::super::bf16_matmul::gelu_tanh_backward(&gv, &wu);
        assert_eq!(d_gate, expected_gate);
        let expected_up: Vec<f32> = w.iter().zip(&gelu).map(|(w, g)| w * g).collect();
        assert_eq!(d_up, expected_up);
        assert!(d_gate.iter().any(|v| *v != 0.0) && d_up.iter().any(|v| *v != 0.0));
        // Mismatched shapes are an error, not a panic.
        let short = Tensor::zeros((3, 10), DType::F32, &dev).unwrap();
        assert!(gate.as_tensor().apply_op2_no_bwd(&short, &GegluTanh).is_err());
    }

    #[test]
    fn frozen_linear_gives_the_input_gradient_of_a_plain_matmul() {
        let dev = Device::Cpu;
        let w = Tensor::new(&[[0.5f32, -1.0, 2.0], [1.5, 0.25, -0.75]], &dev).unwrap(); // [out 2, in 3]
        let bias = Tensor::new(&[0.1f32, -0.2], &dev).unwrap();
        let linear = Linear { weight: w.clone(), bias: Some(bias.clone()), bf16: None };
        let x = candle_core::Var::new(&[[1.0f32, 2.0, -3.0], [0.5, -0.5, 4.0]], &dev).unwrap();
        let target = Tensor::new(&[[1.0f32, 0.0], [0.0, -1.0]], &dev).unwrap();
        let loss = |y: Tensor| (y - &target).unwrap().sqr().unwrap().sum_all().unwrap();
        let frozen = linear.forward(x.as_tensor()).unwrap();
        let plain = x.as_tensor().matmul(&w.t().unwrap()).unwrap().broadcast_add(&bias).unwrap();
        assert_eq!(frozen.to_vec2::<f32>().unwrap(), plain.to_vec2::<f32>().unwrap());
        let g_frozen = loss(frozen).backward().unwrap();
        let g_plain = loss(plain).backward().unwrap();
        let (a, b) = (g_frozen.get(&x).unwrap().to_vec2::<f32>().unwrap(), g_plain.get(&x).unwrap().to_vec2::<f32>().unwrap());
        assert_eq!(a, b);
        assert!(a.iter().flatten().any(|v| *v != 0.0));
    }

    #[test]
    fn left_padding_masks_and_positions_continue_the_prefix() {
        let (ids, pos, mask) = left_padded_inputs(&[&[5, 6, 7], &[8]], 0, 2, &Device::Cpu).unwrap();
        assert_eq!(ids.to_vec2::<u32>().unwrap(), vec![vec![5, 6, 7], vec![0, 0, 8]]);
        assert_eq!(pos.to_vec2::<u32>().unwrap(), vec![vec![2, 3, 4], vec![2, 2, 2]]);
        let m = mask.squeeze(1).unwrap().to_vec3::<f32>().unwrap();
        let allowed = |row: &Vec<f32>| row.iter().map(|&v| v == 0.0).collect::<Vec<_>>();
        // Row 0, query 1: both prefix keys and its own first two tokens.
        assert_eq!(allowed(&m[0][1]), vec![true, true, true, true, false]);
        // Row 1, the real token (index 2): prefix + itself, never the padding.
        assert_eq!(allowed(&m[1][2]), vec![true, true, false, false, true]);
        // Padding queries are fully masked: finite values give uniform weights, never NaN; their outputs go unused.
        assert_eq!(allowed(&m[1][0]), vec![false; 5]);
        assert!(left_padded_inputs(&[], 0, 0, &Device::Cpu).is_err());
    }
}
