//! Backbone configuration read from a Hugging Face `config.json` (or built from GGUF metadata): the
//! Qwen3 architecture, its Qwen2 / Llama variants and Gemma 3, with the variant switches (q/k norm,
//! biases, RoPE scaling, sliding-window layers, sandwich norms, embedding scale, activation).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which member of the family a checkpoint is (`model_type` in config.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Per-head q/k RMSNorm, optional attention bias.
    Qwen3,
    /// No q/k norm; biases on q/k/v (not o).
    Qwen2,
    /// No q/k norm; `attention_bias` on q/k/v/o, `mlp_bias` on the MLP.
    Llama,
    /// Gemma 3 (text): q/k norms, pre- and post-norms around attention and MLP, RMSNorm as x·(1 + w),
    /// embedding × √hidden, gelu-tanh MLP, sliding-window layers with their own RoPE θ.
    #[serde(rename = "gemma3_text")]
    Gemma3,
}

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    /// gelu with the tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
}

/// Which keys a layer's queries may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// Every earlier key (causal).
    Full,
    /// Keys at most `sliding_window − 1` positions back, with the local RoPE θ.
    Sliding,
}

/// Llama-3 style frequency-dependent RoPE scaling.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Llama3RopeScaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: f64,
}

/// Everything the transformer needs to know about its shapes and variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: Option<Llama3RopeScaling>,
    pub tie_word_embeddings: bool,
    pub max_position_embeddings: usize,
    pub qk_norm: bool,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub activation: Activation,
    /// One entry per layer.
    pub layer_kinds: Vec<LayerKind>,
    /// Window of the sliding layers (key j visible from query i iff 0 ≤ i − j < window).
    pub sliding_window: usize,
    /// RoPE θ of the sliding layers (`rope_theta` is the full layers').
    pub rope_local_theta: f64,
    /// Multiplier of q·kᵀ: `query_pre_attn_scalar`^−½ (Gemma) or head_dim^−½.
    pub attn_scale: f64,
    /// Multiplier of the input embedding (√hidden for Gemma, applied in the weights' dtype).
    pub embed_scale: Option<f64>,
    /// Gemma's norms around attention and MLP: post-attention, pre- and post-feedforward.
    pub sandwich_norms: bool,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: f64,
    rope_theta: Option<f64>,
    rope_parameters: Option<serde_json::Value>,
    rope_scaling: Option<serde_json::Value>,
    tie_word_embeddings: Option<bool>,
    max_position_embeddings: usize,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    use_sliding_window: Option<bool>,
    hidden_act: Option<String>,
    hidden_activation: Option<String>,
    sliding_window: Option<usize>,
    layer_types: Option<Vec<String>>,
    query_pre_attn_scalar: Option<f64>,
    rope_local_base_freq: Option<f64>,
    #[serde(rename = "_sliding_window_pattern")]
    sliding_window_pattern: Option<usize>,
    sliding_window_pattern_: Option<usize>,
    attn_logit_softcapping: Option<f64>,
    final_logit_softcapping: Option<f64>,
}

impl ModelConfig {
    /// Reads and validates `config.json`; every error names the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = crate::util::read_text_limited(path, crate::util::MAX_CONFIG_FILE_BYTES).with_context(|| format!("cannot read model config {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("invalid model config {}", path.display()))
    }

    /// Parses the text of a config.json.
    pub fn from_json(text: &str) -> Result<Self> {
        let raw: RawConfig = serde_json::from_str(text)?;
        let arch = match raw.model_type.as_deref() {
            Some("qwen3") => Arch::Qwen3,
            Some("qwen2") => Arch::Qwen2,
            Some("llama") => Arch::Llama,
            Some("gemma3_text" | "gemma3") => Arch::Gemma3,
            Some(other) => bail!("unsupported model_type {other:?} (supported: qwen3, qwen2, llama, gemma3_text)"),
            None => bail!("field model_type is missing (supported: qwen3, qwen2, llama, gemma3_text)"),
        };
        let gemma = arch == Arch::Gemma3;
        let act_name = if gemma { raw.hidden_activation.as_deref().or(raw.hidden_act.as_deref()) } else { raw.hidden_act.as_deref() };
        let activation = match act_name {
            None if gemma => Activation::GeluTanh,
            None | Some("silu") => Activation::Silu,
            Some("gelu_pytorch_tanh") => Activation::GeluTanh,
            Some(other) => bail!("unsupported hidden activation {other:?} (supported: silu, gelu_pytorch_tanh)"),
        };
        if raw.use_sliding_window == Some(true) && !gemma {
            bail!("use_sliding_window = true is not supported");
        }
        for (field, value) in [
            ("vocab_size", raw.vocab_size),
            ("hidden_size", raw.hidden_size),
            ("intermediate_size", raw.intermediate_size),
            ("num_hidden_layers", raw.num_hidden_layers),
            ("max_position_embeddings", raw.max_position_embeddings),
        ] {
            if value == 0 {
                bail!("field {field} must be positive, found 0");
            }
        }
        if !(raw.rms_norm_eps.is_finite() && raw.rms_norm_eps > 0.0) {
            bail!("field rms_norm_eps must be a positive finite number, found {}", raw.rms_norm_eps);
        }
        if let Some(theta) = raw.rope_theta {
            if !(theta.is_finite() && theta > 0.0) {
                bail!("field rope_theta must be a positive finite number, found {theta}");
            }
        }
        for (field, value) in [("attn_logit_softcapping", raw.attn_logit_softcapping), ("final_logit_softcapping", raw.final_logit_softcapping)] {
            if value.is_some() {
                bail!("field {field} is set; logit soft-capping is not supported");
            }
        }
        let num_kv_heads = raw.num_key_value_heads.unwrap_or(raw.num_attention_heads);
        if raw.num_attention_heads == 0 || num_kv_heads == 0 || raw.num_attention_heads % num_kv_heads != 0 {
            bail!("num_attention_heads ({}) must be a positive multiple of num_key_value_heads ({num_kv_heads})", raw.num_attention_heads);
        }
        let head_dim = raw.head_dim.unwrap_or(raw.hidden_size / raw.num_attention_heads);
        if head_dim == 0 || head_dim % 2 != 0 {
            bail!("head_dim {head_dim} must be even and positive");
        }
        // transformers 5 keeps RoPE settings in `rope_parameters`; older configs use rope_theta + rope_scaling.
        let rope = raw.rope_parameters.as_ref().or(raw.rope_scaling.as_ref()).filter(|v| !v.is_null());
        let rope_theta = raw
            .rope_theta
            .or_else(|| rope.and_then(|r| r.get("rope_theta")).and_then(|t| t.as_f64()))
            .or_else(|| rope.and_then(|r| r.get("full_attention")).and_then(|r| r.get("rope_theta")).and_then(|t| t.as_f64()))
            .unwrap_or(10_000.0);
        // Gemma 3 keeps one RoPE setting per layer type; only the default (unscaled) kind is supported there.
        let per_type = rope.is_some_and(|r| r.get("full_attention").is_some() || r.get("sliding_attention").is_some());
        if per_type {
            for kind in ["full_attention", "sliding_attention"] {
                let t = rope.and_then(|r| r.get(kind)).and_then(|r| r.get("rope_type")).and_then(|t| t.as_str()).unwrap_or("default");
                if t != "default" {
                    bail!("rope_parameters.{kind}.rope_type {t:?} is not supported (only default)");
                }
            }
        }
        let local_theta = rope.and_then(|r| r.get("sliding_attention")).and_then(|r| r.get("rope_theta")).and_then(|t| t.as_f64());
        let rope = rope.filter(|_| !per_type);
        let rope_scaling = match rope {
            None => None,
            Some(r) => {
                let kind = r.get("rope_type").or_else(|| r.get("type")).and_then(|t| t.as_str()).unwrap_or("default");
                match kind {
                    "default" => None,
                    "llama3" => {
                        let num = |key: &str| r.get(key).and_then(|v| v.as_f64()).with_context(|| format!("rope scaling field {key} is missing"));
                        Some(Llama3RopeScaling {
                            factor: num("factor")?,
                            low_freq_factor: num("low_freq_factor")?,
                            high_freq_factor: num("high_freq_factor")?,
                            original_max_position_embeddings: num("original_max_position_embeddings")?,
                        })
                    }
                    other => bail!("unsupported rope scaling type {other:?} (supported: default, llama3)"),
                }
            }
        };
        let attention_bias = raw.attention_bias.unwrap_or(false);
        let (layer_kinds, sliding_window, rope_local_theta) = if gemma {
            let window = raw.sliding_window.context("field sliding_window is missing (Gemma 3 needs it)")?;
            let kinds = match (&raw.layer_types, raw.sliding_window_pattern.or(raw.sliding_window_pattern_)) {
                (Some(types), _) => types
                    .iter()
                    .map(|t| match t.as_str() {
                        "sliding_attention" => Ok(LayerKind::Sliding),
                        "full_attention" => Ok(LayerKind::Full),
                        other => bail!("layer_types: unknown layer type {other:?}"),
                    })
                    .collect::<Result<Vec<_>>>()?,
                (None, pattern) => gemma3_layer_kinds(raw.num_hidden_layers, pattern.unwrap_or(6)),
            };
            if kinds.len() != raw.num_hidden_layers {
                bail!("layer_types has {} entries for {} layers", kinds.len(), raw.num_hidden_layers);
            }
            let local = local_theta.or(raw.rope_local_base_freq).unwrap_or(10_000.0);
            (kinds, window, local)
        } else {
            (vec![LayerKind::Full; raw.num_hidden_layers], 0, rope_theta)
        };
        let attn_scale = 1.0 / raw.query_pre_attn_scalar.filter(|_| gemma).unwrap_or(head_dim as f64).sqrt();
        Ok(Self {
            arch,
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_layers: raw.num_hidden_layers,
            num_heads: raw.num_attention_heads,
            num_kv_heads,
            head_dim,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta,
            rope_scaling,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            max_position_embeddings: raw.max_position_embeddings,
            qk_norm: arch == Arch::Qwen3 || gemma,
            qkv_bias: arch == Arch::Qwen2 || attention_bias,
            o_bias: arch != Arch::Qwen2 && attention_bias,
            mlp_bias: arch == Arch::Llama && raw.mlp_bias.unwrap_or(false),
            activation,
            layer_kinds,
            sliding_window,
            rope_local_theta,
            attn_scale,
            embed_scale: gemma.then(|| (raw.hidden_size as f64).sqrt()),
            sandwich_norms: gemma,
        })
    }

    /// RoPE inverse frequencies of a layer kind (sliding layers use the local θ).
    pub fn inv_freq_for(&self, kind: LayerKind) -> Vec<f32> {
        match kind {
            LayerKind::Full => self.inv_freq(),
            LayerKind::Sliding => Self { rope_theta: self.rope_local_theta, rope_scaling: None, ..self.clone() }.inv_freq(),
        }
    }

    /// RoPE inverse frequencies theta^(-2i/d), computed in f32 as transformers does, with Llama-3 scaling if set.
    pub fn inv_freq(&self) -> Vec<f32> {
        let d = self.head_dim;
        let base = self.rope_theta as f32;
        let freqs = (0..d).step_by(2).map(|i| 1.0 / base.powf(i as f32 / d as f32));
        match &self.rope_scaling {
            None => freqs.collect(),
            Some(s) => freqs
                .map(|f| {
                    let low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
                    let high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
                    let wavelen = 2.0 * std::f64::consts::PI / f as f64;
                    let f = f as f64;
                    let scaled = if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / s.factor
                    } else {
                        let smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
                        (1.0 - smooth) * f / s.factor + smooth * f
                    };
                    scaled as f32
                })
                .collect(),
        }
    }

    /// (in_features, out_features) of a projection.
    pub fn proj_shape(&self, proj: super::transformer::Proj) -> (usize, usize) {
        use super::transformer::Proj::*;
        let (h, q, kv, i) = (self.hidden_size, self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim, self.intermediate_size);
        match proj {
            Q => (h, q),
            K | V => (h, kv),
            O => (q, h),
            Gate | Up => (h, i),
            Down => (i, h),
        }
    }

    /// Multiply-accumulate count ×2 of the per-token linear layers of one decoder layer.
    pub fn layer_linear_flops_per_token(&self) -> f64 {
        use super::transformer::Proj;
        Proj::ALL.iter().map(|&p| {
            let (i, o) = self.proj_shape(p);
            2.0 * i as f64 * o as f64
        }).sum()
    }
}

/// Gemma 3's default layer pattern: every `pattern`-th layer full attention, the rest sliding.
pub fn gemma3_layer_kinds(num_layers: usize, pattern: usize) -> Vec<LayerKind> {
    (0..num_layers).map(|i| if pattern > 0 && (i + 1) % pattern == 0 { LayerKind::Full } else { LayerKind::Sliding }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({"model_type": "qwen3", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "rms_norm_eps": 1e-6,
            "max_position_embeddings": 32, "rope_parameters": {"rope_theta": 1000.0, "rope_type": "default"}})
    }

    #[test]
    fn variants_switch_norms_and_biases() {
        let q3 = ModelConfig::from_json(&base().to_string()).unwrap();
        assert_eq!((q3.arch, q3.qk_norm, q3.qkv_bias, q3.head_dim, q3.rope_theta), (Arch::Qwen3, true, false, 4, 1000.0));
        let mut v = base();
        v["model_type"] = "qwen2".into();
        let q2 = ModelConfig::from_json(&v.to_string()).unwrap();
        assert_eq!((q2.qk_norm, q2.qkv_bias, q2.o_bias), (false, true, false));
        v["model_type"] = "llama".into();
        v["attention_bias"] = true.into();
        let ll = ModelConfig::from_json(&v.to_string()).unwrap();
        assert_eq!((ll.qk_norm, ll.qkv_bias, ll.o_bias, ll.mlp_bias), (false, true, true, false));
    }

    #[test]
    fn rejects_unknown_model_type_and_missing_fields() {
        let mut v = base();
        v["model_type"] = "gpt2".into();
        let err = ModelConfig::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains("gpt2"), "{err}");
        let mut v = base();
        v.as_object_mut().unwrap().remove("hidden_size");
        let err = ModelConfig::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains("hidden_size"), "{err}");
    }

    #[test]
    fn llama3_scaling_changes_only_low_frequencies() {
        let mut v = base();
        v["model_type"] = "llama".into();
        v["head_dim"] = 64.into();
        v["rope_parameters"] = serde_json::json!({"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let c = ModelConfig::from_json(&v.to_string()).unwrap();
        let mut plain = c.clone();
        plain.rope_scaling = None;
        let (a, b) = (c.inv_freq(), plain.inv_freq());
        assert_eq!(a[0], b[0]);
        assert!((a[31] - b[31] / 8.0).abs() < 1e-12);
    }
}
