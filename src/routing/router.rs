//! Routers that pick a domain expert for a query from the frozen backbone's
//! final-token hidden state h_q.
//!
//! - Latent Semantic Router (LSR): a linear probe, `softmax(W·z + b)` on the
//!   standardised features `z = (h_q − μ) / σ` (μ, σ from the training set).
//! - MLP router: one hidden ReLU layer, `softmax(W2·relu(W1·z + b1) + b2)`.
//! - Baselines: random (seeded per query), static (always one expert) and
//!   oracle (the true domain).
//!
//! Trained routers are saved as `router.safetensors` plus `router.json`
//! (kind, labels, shapes, training summary), both written atomically.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::name::RouterName;
use crate::util::{seeded_rng, stable_hash};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RouterKind {
    Linear,
    Mlp { hidden: usize },
}

/// Hyper-parameters of router training (full-batch AdamW on cross-entropy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouterTrainConfig {
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub seed: u64,
}

impl Default for RouterTrainConfig {
    fn default() -> Self {
        RouterTrainConfig { epochs: 300, learning_rate: 1e-2, weight_decay: 1e-3, seed: 13 }
    }
}

/// The `format_version` of router.json this build writes and reads.
pub const ROUTER_FORMAT_VERSION: u32 = 1;

/// The backbone a router was trained on: its path, and the fingerprint of its files when known.
/// Reads the older form too, one string `"PATH sha256:HEX"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackboneRef {
    pub path: std::path::PathBuf,
    pub sha256: Option<String>,
}

impl<'de> Deserialize<'de> for BackboneRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            path: std::path::PathBuf,
            #[serde(default)]
            sha256: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Fields(Fields),
            Legacy(String),
        }
        Ok(match Form::deserialize(deserializer)? {
            Form::Fields(f) => BackboneRef { path: f.path, sha256: f.sha256 },
            Form::Legacy(text) => match text.rsplit_once(" sha256:") {
                Some((path, hex)) => BackboneRef { path: path.into(), sha256: Some(hex.to_string()) },
                None => BackboneRef { path: text.into(), sha256: None },
            },
        })
    }
}

/// Metadata saved beside the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterMeta {
    pub format_version: u32,
    #[serde(flatten)]
    pub kind: RouterKind,
    pub labels: Vec<String>,
    pub input_dim: usize,
    /// The backbone the features came from (a router reads only its states).
    pub backbone: Option<BackboneRef>,
    pub train_config: RouterTrainConfig,
    pub final_train_loss: f32,
}

/// A trained linear or MLP router.
#[derive(Debug, Clone)]
pub struct TrainedRouter {
    pub meta: RouterMeta,
    mean: Tensor,     // [d]
    inv_std: Tensor,  // [d]
    w1: Tensor,       // [h or k, d]
    b1: Tensor,       // [h or k]
    w2: Option<Tensor>, // [k, h]
    b2: Option<Tensor>, // [k]
}

/// `[n, d]` tensor from row vectors, with a clear error on ragged input.
pub fn features_tensor(rows: &[Vec<f32>], device: &Device) -> anyhow::Result<Tensor> {
    let d = rows.first().map_or(0, Vec::len);
    if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != d) {
        bail!("feature row {i} has {} values, expected {d}", row.len());
    }
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (rows.len(), d), device)?)
}

fn uniform(rng: &mut crate::util::SeededRng, shape: (usize, usize), bound: f32, device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = (0..shape.0 * shape.1).map(|_| rng.random_range(-bound..bound)).collect();
    Tensor::from_vec(values, shape, device)
}

impl TrainedRouter {
    /// Trains a router on features `x` (`[n, d]` rows) with labels in `0..labels.len()`.
    pub fn train(
        kind: RouterKind,
        labels: &[String],
        x: &[Vec<f32>],
        y: &[usize],
        config: &RouterTrainConfig,
        backbone: Option<BackboneRef>,
    ) -> anyhow::Result<TrainedRouter> {
        Self::train_checked(kind, labels, x, y, config, backbone, &mut || Ok(()))
    }

    /// [`Self::train`], calling `check` before every epoch (a job's cancellation check: an epoch is
    /// one full-batch step over every training query) and stopping at its first error.
    pub fn train_checked(
        kind: RouterKind,
        labels: &[String],
        x: &[Vec<f32>],
        y: &[usize],
        config: &RouterTrainConfig,
        backbone: Option<BackboneRef>,
        check: &mut dyn FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<TrainedRouter> {
        let device = Device::Cpu;
        if x.is_empty() || x.len() != y.len() {
            bail!("router training needs one label per feature row ({} rows, {} labels)", x.len(), y.len());
        }
        let k = labels.len();
        if let Some(bad) = y.iter().find(|&&label| label >= k) {
            bail!("label index {bad} out of range for {k} labels");
        }
        let xs = features_tensor(x, &device)?;
        let (n, d) = xs.dims2()?;
        let mean = xs.mean(0)?;
        let centered = xs.broadcast_sub(&mean)?;
        let std = centered.sqr()?.mean(0)?.sqrt()?;
        let inv_std = (std + 1e-6)?.recip()?;
        let zs = centered.broadcast_mul(&inv_std)?;
        let targets = Tensor::from_vec(y.iter().map(|&v| v as u32).collect::<Vec<_>>(), n, &device)?;

        let mut rng = seeded_rng(config.seed, 0x5eed_7001);
        let out1 = match kind {
            RouterKind::Linear => k,
            RouterKind::Mlp { hidden } => hidden,
        };
        let w1 = Var::from_tensor(&uniform(&mut rng, (out1, d), 1.0 / (d as f32).sqrt(), &device)?)?;
        let b1 = Var::from_tensor(&Tensor::zeros(out1, DType::F32, &device)?)?;
        let (w2, b2) = match kind {
            RouterKind::Linear => (None, None),
            RouterKind::Mlp { hidden } => (
                Some(Var::from_tensor(&uniform(&mut rng, (k, hidden), 1.0 / (hidden as f32).sqrt(), &device)?)?),
                Some(Var::from_tensor(&Tensor::zeros(k, DType::F32, &device)?)?),
            ),
        };
        let mut vars = vec![w1.clone(), b1.clone()];
        vars.extend(w2.iter().cloned());
        vars.extend(b2.iter().cloned());
        let params = ParamsAdamW { lr: config.learning_rate, weight_decay: config.weight_decay, ..Default::default() };
        let mut optimizer = AdamW::new(vars, params)?;
        let mut last_loss = f32::NAN;
        for epoch in 0..config.epochs {
            check()?;
            let logits = Self::logits_of(&zs, &w1, &b1, w2.as_deref(), b2.as_deref())?;
            let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
            last_loss = loss.to_scalar::<f32>()?;
            if !last_loss.is_finite() {
                bail!("router training diverged at epoch {epoch}: loss is {last_loss}");
            }
            optimizer.backward_step(&loss)?;
        }
        let meta = RouterMeta {
            format_version: ROUTER_FORMAT_VERSION,
            kind,
            labels: labels.to_vec(),
            input_dim: d,
            backbone,
            train_config: config.clone(),
            final_train_loss: last_loss,
        };
        Ok(TrainedRouter {
            meta,
            mean,
            inv_std,
            w1: w1.as_tensor().clone(),
            b1: b1.as_tensor().clone(),
            w2: w2.map(|v| v.as_tensor().clone()),
            b2: b2.map(|v| v.as_tensor().clone()),
        })
    }

    fn logits_of(zs: &Tensor, w1: &Tensor, b1: &Tensor, w2: Option<&Tensor>, b2: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let h = zs.matmul(&w1.t()?)?.broadcast_add(b1)?; // [n, out1]
        match (w2, b2) {
            (Some(w2), Some(b2)) => h.relu()?.matmul(&w2.t()?)?.broadcast_add(b2), // [n, k]
            _ => Ok(h),
        }
    }

    /// Routing probabilities `[n, k]` for raw (unstandardised) features.
    pub fn probabilities(&self, x: &[Vec<f32>]) -> anyhow::Result<Vec<Vec<f32>>> {
        if x.is_empty() {
            return Ok(Vec::new());
        }
        let xs = features_tensor(x, &self.mean.device().clone())?;
        if xs.dim(1)? != self.meta.input_dim {
            bail!("router expects {} features per query, got {}", self.meta.input_dim, xs.dim(1)?);
        }
        let zs = xs.broadcast_sub(&self.mean)?.broadcast_mul(&self.inv_std)?;
        let logits = Self::logits_of(&zs, &self.w1, &self.b1, self.w2.as_ref(), self.b2.as_ref())?;
        Ok(candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec2::<f32>()?)
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let mut tensors: HashMap<String, Tensor> = HashMap::from([
            ("mean".to_string(), self.mean.clone()),
            ("inv_std".to_string(), self.inv_std.clone()),
            ("w1".to_string(), self.w1.clone()),
            ("b1".to_string(), self.b1.clone()),
        ]);
        if let (Some(w2), Some(b2)) = (&self.w2, &self.b2) {
            tensors.insert("w2".into(), w2.clone());
            tensors.insert("b2".into(), b2.clone());
        }
        let bytes = safetensors::serialize(tensors.iter().map(|(k, v)| (k.clone(), v.clone())), None)
            .context("serialising router weights")?;
        // Weights first, metadata last: router.json is what marks a complete save.
        crate::util::atomic_write(&dir.join("router.safetensors"), &bytes)?;
        crate::util::atomic_write_json(&dir.join("router.json"), &self.meta)
    }

    pub fn load(dir: &Path) -> anyhow::Result<TrainedRouter> {
        let meta_path = dir.join("router.json");
        let meta_text = crate::util::read_text_limited(&meta_path, crate::util::MAX_CONFIG_FILE_BYTES)?;
        let meta: RouterMeta =
            serde_json::from_str(&meta_text).with_context(|| format!("parsing {}", meta_path.display()))?;
        if meta.format_version != ROUTER_FORMAT_VERSION {
            bail!(
                "{}: field `format_version` is {}, this build reads version {ROUTER_FORMAT_VERSION} only",
                meta_path.display(),
                meta.format_version
            );
        }
        if meta.labels.is_empty() || meta.input_dim == 0 {
            bail!("{}: a router needs at least one label and a positive `input_dim`", meta_path.display());
        }
        let mut labels = meta.labels.clone();
        labels.sort();
        if let Some(pair) = labels.windows(2).find(|p| p[0] == p[1]) {
            bail!("{}: field `labels` names `{}` twice", meta_path.display(), pair[0]);
        }
        let weights_path = dir.join("router.safetensors");
        // read_safetensors refuses NaN / infinite weights, naming the tensor.
        let tensors: std::collections::HashMap<String, Tensor> =
            crate::model::checkpoint::read_safetensors(&weights_path, DType::F32, &Device::Cpu)?.into_iter().collect();
        let get = |name: &str, shape: &[usize]| -> anyhow::Result<Tensor> {
            let t = tensors
                .get(name)
                .with_context(|| format!("{}: missing tensor `{name}`", weights_path.display()))?;
            if t.dims() != shape {
                bail!("{}: tensor `{name}` has shape {:?}, expected {:?}", weights_path.display(), t.dims(), shape);
            }
            Ok(t.to_dtype(DType::F32)?)
        };
        let (d, k) = (meta.input_dim, meta.labels.len());
        let (out1, second) = match meta.kind {
            RouterKind::Linear => (k, None),
            RouterKind::Mlp { hidden } => (hidden, Some(hidden)),
        };
        Ok(TrainedRouter {
            mean: get("mean", &[d])?,
            inv_std: get("inv_std", &[d])?,
            w1: get("w1", &[out1, d])?,
            b1: get("b1", &[out1])?,
            w2: second.map(|h| get("w2", &[k, h])).transpose()?,
            b2: second.map(|_| get("b2", &[k])).transpose()?,
            meta,
        })
    }
}

/// Any routing policy: the trained ones and the baselines.
#[derive(Debug, Clone)]
pub enum Router {
    Trained(TrainedRouter),
    /// A uniformly random expert per query, seeded by the query id.
    Random { labels: Vec<String>, seed: u64 },
    /// Always the same expert.
    Static { labels: Vec<String>, expert: usize },
    /// The query's true domain.
    Oracle { labels: Vec<String> },
}

impl Router {
    pub fn name(&self) -> RouterName {
        match self {
            Router::Trained(r) => r.meta.kind.into(),
            Router::Random { .. } => RouterName::Random,
            Router::Static { labels, expert } => RouterName::Static(labels[*expert].clone()),
            Router::Oracle { .. } => RouterName::Oracle,
        }
    }

    pub fn labels(&self) -> &[String] {
        match self {
            Router::Trained(r) => &r.meta.labels,
            Router::Random { labels, .. } | Router::Static { labels, .. } | Router::Oracle { labels } => labels,
        }
    }

    /// Probabilities over experts for each query. `features` are the queries'
    /// hidden states (used by trained routers), `query_ids` seed the random
    /// router, `truth` (label indices) feeds the oracle.
    pub fn probabilities(&self, features: &[Vec<f32>], query_ids: &[String], truth: Option<&[usize]>) -> anyhow::Result<Vec<Vec<f32>>> {
        let k = self.labels().len();
        let one_hot = |i: usize| {
            let mut p = vec![0.0; k];
            p[i] = 1.0;
            p
        };
        Ok(match self {
            Router::Trained(r) => r.probabilities(features)?,
            Router::Random { seed, .. } => query_ids
                .iter()
                .map(|id| one_hot(seeded_rng(*seed, stable_hash(id)).random_range(0..k)))
                .collect(),
            Router::Static { expert, .. } => query_ids.iter().map(|_| one_hot(*expert)).collect(),
            Router::Oracle { .. } => {
                let truth = truth.context("the oracle router needs the true domains")?;
                truth.iter().map(|&t| one_hot(t)).collect()
            }
        })
    }
}

/// Index of the largest probability (the first one on ties).
pub fn argmax(probabilities: &[f32]) -> usize {
    probabilities
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &p)| if p > best.1 { (i, p) } else { best })
        .0
}

#[cfg(test)]
mod backbone_ref_tests {
    use super::BackboneRef;

    #[test]
    fn the_backbone_reads_as_fields_and_in_the_older_one_string_form() {
        let fields: BackboneRef = serde_json::from_str(r#"{"path": "assets/backbone", "sha256": "ab12"}"#).unwrap();
        assert_eq!(fields, BackboneRef { path: "assets/backbone".into(), sha256: Some("ab12".into()) });
        let legacy: BackboneRef = serde_json::from_str(r#""/models/my model sha256:ab12""#).unwrap();
        assert_eq!(legacy, BackboneRef { path: "/models/my model".into(), sha256: Some("ab12".into()) });
        let bare: BackboneRef = serde_json::from_str(r#""assets/backbone""#).unwrap();
        assert_eq!(bare, BackboneRef { path: "assets/backbone".into(), sha256: None });
        // Written as fields, read back the same.
        assert_eq!(serde_json::from_str::<BackboneRef>(&serde_json::to_string(&legacy).unwrap()).unwrap(), legacy);
        assert!(serde_json::from_str::<BackboneRef>(r#"{"path": "x", "sha": "ab"}"#).is_err(), "a misspelt field is an error");
    }
}

#[cfg(test)]
mod train_tests {
    use super::*;

    #[test]
    fn training_checks_before_every_epoch_and_stops_at_the_first_error() {
        let labels: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let x = vec![vec![1.0, 0.0], vec![0.9, 0.1], vec![0.0, 1.0], vec![0.1, 0.9]];
        let y = [0, 0, 1, 1];
        let config = RouterTrainConfig { epochs: 40, ..Default::default() };
        let mut calls = 0;
        let err = TrainedRouter::train_checked(RouterKind::Linear, &labels, &x, &y, &config, None, &mut || {
            calls += 1;
            if calls > 5 {
                anyhow::bail!("stop")
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!((err.to_string(), calls), ("stop".to_string(), 6));
        let mut calls = 0;
        let trained = TrainedRouter::train_checked(RouterKind::Mlp { hidden: 4 }, &labels, &x, &y, &config, None, &mut || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 40, "once per epoch");
        let plain = TrainedRouter::train(RouterKind::Mlp { hidden: 4 }, &labels, &x, &y, &config, None).unwrap();
        assert_eq!(trained.probabilities(&x).unwrap(), plain.probabilities(&x).unwrap(), "the check changes nothing else");
    }
}
