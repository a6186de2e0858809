//! The backbone recipe: every weight of a small Qwen3-architecture decoder is trained as a reranker on
//! general-domain text:
//!
//! 1. a byte-level BPE tokenizer is trained on the training passages, queries and the prompt template;
//! 2. the weights start random (seeded; optionally with tied query/key heads), and by default are then
//!    overwritten by the hand-set lexical-matching circuit of `lexical_init` (without it, reranking
//!    stayed at random order within the CPU budget);
//! 3. (optional) causal-LM warm-up on packed training passages;
//! 4. reranking: each step takes groups of (query, positive, negatives) in the Qwen3-Reranker prompt and
//!    minimises the cross-entropy between a target distribution over the group's candidates and
//!    softmax(scale · (yes − no)). The target mixes the listwise BM25 teacher (z-scored BM25 of the
//!    truncated document the model actually sees, over temperature T) with the one-hot label, the label's
//!    weight rising over training; negatives start easy (passages of other queries) and turn into the
//!    group's own BM25-mined hard negatives. The scale is a learned scalar, folded into the final norm
//!    when saving, so the saved directory is a plain Qwen3 checkpoint.
//!
//! The schedule is a pure function of the step counts and the seed: with `lm_steps`/`rank_steps` fixed a
//! run is deterministic. With a time budget the counts are planned from timed trial steps (and the run
//! also stops at the deadline); the report records the counts so the run can be repeated exactly.

use super::corpus::Corpus;
use super::{eval, tokenizer};
use crate::bm25::{Bm25Index, Bm25Params};
use crate::data::QueryGroup;
use crate::model::checkpoint::{write_safetensors, Weights};
use crate::model::transformer::{left_padded_inputs, StepInput, Transformer};
use crate::model::{AdapterRun, ModelConfig, PromptEncoder, PromptTemplate, Reranker, ScoreOptions};
use crate::train::jobs::{JobContext, JobEvent, Progress};
use crate::train::loss::LrSchedule;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Shape, data sizes and schedule of a pretraining run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    pub seed: u64,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    /// Longest prompt in tokens during training (documents are cut to fit); also the saved model's limit.
    pub max_length: usize,
    /// Texts fed to the tokenizer trainer (queries and passages, plus the template).
    pub tokenizer_texts: usize,
    /// Causal-LM warm-up steps and reranking steps (planned from `minutes` when that is set).
    pub lm_steps: usize,
    pub rank_steps: usize,
    /// Wall-clock budget of the whole run in minutes (plans the step counts; the run stops at it).
    pub minutes: Option<f64>,
    /// Share of the planned training time given to the causal-LM warm-up.
    pub lm_fraction: f64,
    pub lm_batch: usize,
    pub lm_seq_len: usize,
    pub groups_per_step: usize,
    /// Candidates per group: one positive and `candidates_per_group - 1` negatives.
    pub candidates_per_group: usize,
    pub peak_lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    pub grad_clip: f64,
    /// Temperature of the BM25 teacher over per-group z-scored BM25 scores.
    pub teacher_temperature: f64,
    /// Weight of the one-hot label in the target at the start and at the end of the reranking phase.
    pub label_weight_start: f64,
    pub label_weight_end: f64,
    /// Reranking progress (0..1) at which hard negatives start to replace easy ones, and where all are hard.
    pub hard_from: f64,
    pub hard_full: f64,
    /// In the first `tie_qk_layers` layers, each key head starts equal to its first query head (so equal
    /// tokens attend to each other from the start).
    pub tie_qk_layers: usize,
    /// In tied heads, start with the high-frequency RoPE dimensions zeroed (matching by content, not position).
    pub tie_qk_content_only: bool,
    /// Initial q/k RMSNorm weight in the tied layers (sets how sharply equal tokens attend to each other).
    pub tie_qk_norm_weight: f64,
    pub rope_theta: f64,
    /// Start from the hand-set lexical-matching circuit (`lexical_init`) instead of random weights only.
    pub lexical_init: bool,
    /// Evaluate on dev before the first step (the init's own quality).
    pub eval_at_start: bool,
    /// Dev evaluations during reranking (the best one is kept).
    pub dev_evals: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            seed: 7,
            vocab_size: 8192,
            hidden_size: 256,
            num_layers: 3,
            num_heads: 4,
            num_kv_heads: 2,
            head_dim: 64,
            intermediate_size: 512,
            max_length: 128,
            tokenizer_texts: 40_000,
            lm_steps: 0,
            rank_steps: 200,
            minutes: None,
            lm_fraction: 0.0,
            lm_batch: 16,
            lm_seq_len: 64,
            groups_per_step: 4,
            candidates_per_group: 8,
            peak_lr: 1e-4,
            warmup_steps: 10,
            weight_decay: 0.01,
            grad_clip: 1.0,
            teacher_temperature: 0.5,
            label_weight_start: 0.5,
            label_weight_end: 1.0,
            hard_from: 0.0,
            hard_full: 0.1,
            tie_qk_layers: 2,
            tie_qk_content_only: true,
            tie_qk_norm_weight: 0.6,
            rope_theta: 1_000_000.0,
            lexical_init: true,
            eval_at_start: false,
            dev_evals: 2,
        }
    }
}

impl crate::config_file::ConfigFile for PretrainConfig {
    fn check(&self) -> anyhow::Result<()> {
        self.validate()
    }
}

impl PretrainConfig {
    /// Refuses values that would panic later or silently train nothing; errors name the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
            ("intermediate_size", self.intermediate_size),
            ("max_length", self.max_length),
            ("lm_batch", self.lm_batch),
            ("lm_seq_len", self.lm_seq_len),
            ("groups_per_step", self.groups_per_step),
        ];
        for (field, value) in positive {
            if value == 0 {
                bail!("pretrain config: {field} must be positive");
            }
        }
        if self.num_heads % self.num_kv_heads != 0 {
            bail!("pretrain config: num_heads {} is not a multiple of num_kv_heads {}", self.num_heads, self.num_kv_heads);
        }
        if self.candidates_per_group < 2 {
            bail!("pretrain config: candidates_per_group must be at least 2 (one positive and a negative), not {}", self.candidates_per_group);
        }
        for (field, value) in [("peak_lr", self.peak_lr), ("teacher_temperature", self.teacher_temperature), ("rope_theta", self.rope_theta)] {
            if !(value.is_finite() && value > 0.0) {
                bail!("pretrain config: {field} must be a positive number, not {value}");
            }
        }
        for (field, value) in [("weight_decay", self.weight_decay), ("grad_clip", self.grad_clip)] {
            if !(value.is_finite() && value >= 0.0) {
                bail!("pretrain config: {field} must be a non-negative number, not {value}");
            }
        }
        for (field, value) in [("lm_fraction", self.lm_fraction), ("label_weight_start", self.label_weight_start), ("label_weight_end", self.label_weight_end), ("hard_from", self.hard_from), ("hard_full", self.hard_full)] {
            if !(0.0..=1.0).contains(&value) {
                bail!("pretrain config: {field} must be in [0, 1], not {value}");
            }
        }
        if self.hard_from > self.hard_full {
            bail!("pretrain config: hard_from {} is after hard_full {}", self.hard_from, self.hard_full);
        }
        if let Some(minutes) = self.minutes {
            if !(minutes.is_finite() && minutes > 0.0) {
                bail!("pretrain config: minutes must be a positive number, not {minutes}");
            }
        }
        Ok(())
    }

    /// The Hugging Face config.json of the model for a tokenizer of `vocab` entries.
    pub fn config_json(&self, vocab: usize, pad_id: u32, eos_id: u32) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": false, "attention_dropout": 0.0,
            "bos_token_id": pad_id, "eos_token_id": eos_id, "pad_token_id": pad_id, "head_dim": self.head_dim, "hidden_act": "silu",
            "hidden_size": self.hidden_size, "initializer_range": 0.02, "intermediate_size": self.intermediate_size,
            "max_position_embeddings": 512, "max_window_layers": self.num_layers, "num_attention_heads": self.num_heads,
            "num_hidden_layers": self.num_layers, "num_key_value_heads": self.num_kv_heads, "rms_norm_eps": 1e-6, "rope_scaling": null,
            "rope_theta": self.rope_theta, "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "float32", "use_cache": true,
            "use_sliding_window": false, "vocab_size": vocab,
        })
    }

    fn progress_at(&self, rank_step: usize) -> f64 {
        rank_step as f64 / self.rank_steps.max(1) as f64
    }

    /// Hard negatives among the `candidates_per_group - 1` negatives at a reranking step.
    pub fn hard_negatives_at(&self, rank_step: usize) -> usize {
        let p = self.progress_at(rank_step);
        let share = ((p - self.hard_from) / (self.hard_full - self.hard_from).max(1e-9)).clamp(0.0, 1.0);
        (share * (self.candidates_per_group - 1) as f64).round() as usize
    }

    pub fn label_weight_at(&self, rank_step: usize) -> f64 {
        let p = self.progress_at(rank_step);
        self.label_weight_start + (self.label_weight_end - self.label_weight_start) * p
    }
}

/// The tied query/key initialisation (see `PretrainConfig::tie_qk_layers`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TieInit {
    pub layers: usize,
    pub content_only: bool,
    pub norm_weight: f64,
}

impl TieInit {
    pub const NONE: TieInit = TieInit { layers: 0, content_only: false, norm_weight: 1.0 };
}

/// The model's weights as trainable variables (HF names), plus the learned log-scale of yes − no.
pub struct TrainableBackbone {
    pub config: ModelConfig,
    pub vars: BTreeMap<String, Var>,
    pub log_scale: Var,
}

/// A seeded N(0, std²) vector (Box–Muller over ChaCha8).
fn normal_vec(rng: &mut crate::util::SeededRng, n: usize, std: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let (u1, u2): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
            std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
}

impl TrainableBackbone {
    /// Seeded init like transformers' Qwen3 (N(0, 0.02²), residual projections scaled by 1/√(2·layers),
    /// norms 1), with the optional tied query/key heads in the first layers.
    pub fn init(config: ModelConfig, seed: u64, tie: &TieInit, device: &Device) -> Result<Self> {
        let c = &config;
        let mut rng = crate::util::seeded_rng(seed, crate::util::stable_hash("backbone-init"));
        let mut vars = BTreeMap::new();
        let mut add = |name: String, shape: Vec<usize>, data: Vec<f32>| -> Result<()> {
            vars.insert(name, Var::from_tensor(&Tensor::from_vec(data, shape, device)?)?);
            Ok(())
        };
        add("model.embed_tokens.weight".into(), vec![c.vocab_size, c.hidden_size], normal_vec(&mut rng, c.vocab_size * c.hidden_size, 0.02))?;
        let residual_std = 0.02 / (2.0 * c.num_layers as f32).sqrt();
        for layer in 0..c.num_layers {
            let mut q = Vec::new();
            for proj in crate::model::Proj::ALL {
                let (fan_in, fan_out) = c.proj_shape(proj);
                let std = if matches!(proj, crate::model::Proj::O | crate::model::Proj::Down) { residual_std } else { 0.02 };
                let mut w = normal_vec(&mut rng, fan_in * fan_out, std);
                match proj {
                    crate::model::Proj::Q if layer < tie.layers && tie.content_only => {
                        // Zero the rows of the fastest-rotating RoPE pairs (dims i and i + d/2, i < d/4) of tied query heads.
                        let groups = c.num_heads / c.num_kv_heads;
                        for j in 0..c.num_kv_heads {
                            for i in (0..c.head_dim / 4).chain(c.head_dim / 2..c.head_dim / 2 + c.head_dim / 4) {
                                let row = j * groups * c.head_dim + i;
                                w[row * fan_in..(row + 1) * fan_in].fill(0.0);
                            }
                        }
                        q = w.clone();
                    }
                    crate::model::Proj::Q => q = w.clone(),
                    crate::model::Proj::K if layer < tie.layers => {
                        // Key head j := query head j·groups (rows are output features of hidden inputs).
                        let groups = c.num_heads / c.num_kv_heads;
                        let head_rows = c.head_dim * fan_in;
                        for j in 0..c.num_kv_heads {
                            let src = j * groups * head_rows;
                            w[j * head_rows..(j + 1) * head_rows].copy_from_slice(&q[src..src + head_rows]);
                        }
                    }
                    _ => {}
                }
                add(format!("{}.weight", proj.path(layer)), vec![fan_out, fan_in], w)?;
            }
            for norm in ["input_layernorm", "post_attention_layernorm"] {
                add(format!("model.layers.{layer}.{norm}.weight"), vec![c.hidden_size], vec![1.0; c.hidden_size])?;
            }
            let qk_weight = if layer < tie.layers { tie.norm_weight as f32 } else { 1.0 };
            for norm in ["q_norm", "k_norm"] {
                add(format!("model.layers.{layer}.self_attn.{norm}.weight"), vec![c.head_dim], vec![qk_weight; c.head_dim])?;
            }
        }
        add("model.norm.weight".into(), vec![c.hidden_size], vec![1.0; c.hidden_size])?;
        let log_scale = Var::from_tensor(&Tensor::zeros((), DType::F32, device)?)?;
        Ok(Self { config, vars, log_scale })
    }

    pub fn num_parameters(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    pub fn all_vars(&self) -> Vec<Var> {
        self.vars.values().cloned().chain([self.log_scale.clone()]).collect()
    }

    /// The transformer over the variables (gradients reach them), or over detached copies for inference.
    pub fn transformer(&self, detach: bool) -> Result<Transformer> {
        let map = self.vars.iter().map(|(k, v)| (k.clone(), if detach { v.as_tensor().detach() } else { v.as_tensor().clone() })).collect();
        let device = self.log_scale.device().clone();
        Transformer::new(self.config.clone(), &Weights::from_map(map, Path::new("<training>")), &device, DType::F32)
    }

    /// Current weights as plain tensors (a snapshot that later steps do not change).
    pub fn snapshot(&self) -> Result<(BTreeMap<String, Tensor>, Tensor)> {
        let map = self.vars.iter().map(|(k, v)| Ok((k.clone(), v.as_tensor().copy()?))).collect::<Result<_>>()?;
        Ok((map, self.log_scale.as_tensor().copy()?))
    }

    pub fn restore(&self, snapshot: &(BTreeMap<String, Tensor>, Tensor)) -> Result<()> {
        for (k, v) in &self.vars {
            v.set(&snapshot.0[k])?;
        }
        self.log_scale.set(&snapshot.1)?;
        Ok(())
    }

    /// The weights to save: the learned scale folded into the final norm (so saved yes − no = scale · trained yes − no).
    pub fn export(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut map: BTreeMap<String, Tensor> = self.vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect();
        let norm = map["model.norm.weight"].broadcast_mul(&self.log_scale.as_tensor().exp()?)?;
        map.insert("model.norm.weight".into(), norm);
        Ok(map)
    }
}

/// One reranking example: the shared prompt part, candidate suffixes (positive first) and target distribution.
#[derive(Debug, Clone)]
pub struct RankExample {
    pub shared: Vec<u32>,
    pub candidates: Vec<Vec<u32>>,
    pub target: Vec<f32>,
}

/// Everything a reranking step needs to build examples.
pub struct ExampleMaker<'a> {
    pub prompt: &'a PromptEncoder,
    pub tokenizer: &'a tokenizers::Tokenizer,
    pub teacher: &'a Bm25Index,
    pub groups: &'a [QueryGroup],
    /// Tokens after the document in a candidate (body tail + suffix).
    pub after_doc: usize,
}

impl ExampleMaker<'_> {
    /// Builds group `index`'s example with `hard` hard negatives and easy ones from other groups.
    pub fn make(&self, index: usize, candidates: usize, hard: usize, label_weight: f64, temperature: f64, rng: &mut crate::util::SeededRng) -> Result<RankExample> {
        let group = &self.groups[index];
        let positives: Vec<&str> = group.positives().map(|c| c.text.as_str()).collect();
        let mut docs: Vec<&str> = vec![positives.choose(rng).context("group without positive")?];
        let mut negatives: Vec<&str> = group.candidates.iter().filter(|c| c.relevance == 0).map(|c| c.text.as_str()).collect();
        negatives.shuffle(rng);
        docs.extend(negatives.into_iter().take(hard.min(candidates - 1)));
        while docs.len() < candidates {
            let other = rng.random_range(0..self.groups.len());
            if other == index {
                continue;
            }
            docs.push(&self.groups[other].candidates.choose(rng).context("empty group")?.text);
        }
        let shared = self.prompt.encode_query(None, &group.query)?;
        let mut suffixes = Vec::with_capacity(docs.len());
        let mut teacher = Vec::with_capacity(docs.len());
        for doc in docs {
            let pair = self.prompt.encode_pair(None, &group.query, doc)?;
            let doc_ids = &pair.candidate[..pair.candidate.len().saturating_sub(self.after_doc)];
            let seen = self.tokenizer.decode(doc_ids, true).map_err(|e| anyhow::anyhow!("{e}"))?;
            teacher.push(self.teacher.score_text(&group.query, &seen));
            suffixes.push(pair.candidate);
        }
        Ok(RankExample { shared, candidates: suffixes, target: mixed_target(&teacher, label_weight, temperature) })
    }
}

/// (1 − λ) · softmax(z(teacher) / T) + λ · onehot(0), where z is the per-group z-score.
pub fn mixed_target(teacher: &[f32], label_weight: f64, temperature: f64) -> Vec<f32> {
    let n = teacher.len() as f64;
    let mean = teacher.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let std = (teacher.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / n).sqrt();
    let z: Vec<f64> = teacher.iter().map(|&x| if std > 1e-6 { (f64::from(x) - mean) / std / temperature } else { 0.0 }).collect();
    let max = z.iter().cloned().fold(f64::MIN, f64::max);
    let total: f64 = z.iter().map(|v| (v - max).exp()).sum();
    z.iter().enumerate().map(|(i, v)| ((1.0 - label_weight) * (v - max).exp() / total + if i == 0 { label_weight } else { 0.0 }) as f32).collect()
}

/// Mean over examples of −Σ target · log softmax(scale · (yes − no)).
pub fn rank_loss(reranker: &Reranker, log_scale: &Tensor, examples: &[RankExample]) -> Result<Tensor> {
    let options = ScoreOptions { max_batch: 256, token_budget: 1 << 20, ..Default::default() };
    let mut losses = Vec::with_capacity(examples.len());
    for ex in examples {
        let rows: Vec<&[u32]> = ex.candidates.iter().map(|c| c.as_slice()).collect();
        let (logits, _) = reranker.group_logits(&ex.shared, &rows, &AdapterRun::base(), &options)?;
        let margin = (logits.narrow(D::Minus1, 0, 1)? - logits.narrow(D::Minus1, 1, 1)?)?.squeeze(D::Minus1)?;
        let scores = margin.broadcast_mul(&log_scale.exp()?)?;
        let log_probs = candle_nn::ops::log_softmax(&scores, D::Minus1)?;
        let target = Tensor::new(ex.target.as_slice(), reranker.device())?;
        losses.push((log_probs * target)?.sum_all()?.neg()?);
    }
    Ok(Tensor::stack(&losses, 0)?.mean_all()?)
}

/// Next-token cross-entropy over `rows` (each `seq_len + 1` tokens; no padding).
pub fn lm_loss(model: &Transformer, rows: &[&[u32]]) -> Result<Tensor> {
    let inputs: Vec<&[u32]> = rows.iter().map(|r| &r[..r.len() - 1]).collect();
    let targets: Vec<u32> = rows.iter().flat_map(|r| r[1..].iter().copied()).collect();
    let (ids, positions, mask) = left_padded_inputs(&inputs, 0, 0, model.device())?;
    let (hidden, _) = model.forward(&StepInput { ids: &ids, positions: &positions, mask: &mask, prefix: None }, &AdapterRun::base(), false, false)?;
    let (b, t, h) = hidden.dims3()?;
    let logits = hidden.reshape((b * t, h))?.matmul(&model.lm_head().t()?)?;
    Ok(candle_nn::loss::cross_entropy(&logits, &Tensor::new(targets.as_slice(), model.device())?)?)
}

/// One optimiser step with global-norm gradient clipping; returns the loss value.
pub fn optimise(loss: &Tensor, vars: &[Var], opt: &mut AdamW, clip: f64) -> Result<f64> {
    let value = f64::from(loss.to_scalar::<f32>()?);
    if !value.is_finite() {
        bail!("the loss is not finite ({value})");
    }
    let mut grads = loss.backward()?;
    let mut sq = 0.0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = sq.sqrt();
    if clip > 0.0 && norm > clip {
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * (clip / norm))?);
            }
        }
    }
    opt.step(&grads)?;
    Ok(value)
}

/// (reranking step, dev NDCG@10, dev MRR@10, smoothed training loss).
type DevPoint = (usize, f64, f64, f64);
/// (dev NDCG@10, reranking step, weight snapshot) of the best evaluation so far.
type Best = (f64, usize, (BTreeMap<String, Tensor>, Tensor));

/// What a run did, for the model's README and `training_report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PretrainReport {
    pub config: PretrainConfig,
    pub parameters: usize,
    pub vocab_size: usize,
    pub train_groups: usize,
    pub dev_groups: usize,
    pub test_groups: usize,
    pub prompt_tokens_template: usize,
    pub lm_steps_done: usize,
    pub rank_steps_done: usize,
    pub seconds_tokenizer: f64,
    pub seconds_lm: f64,
    pub seconds_rank: f64,
    pub seconds_total: f64,
    pub threads: usize,
    /// (reranking step, dev NDCG@10, dev MRR@10, training loss around then).
    pub dev_curve: Vec<(usize, f64, f64, f64)>,
    pub best_rank_step: usize,
    pub dev: eval::Comparison,
    pub test: Option<eval::Comparison>,
    pub final_lm_loss: Option<f64>,
    pub final_rank_loss: Option<f64>,
}

/// Template texts the tokenizer should see (so the prompt is compact).
fn template_texts(template: &PromptTemplate) -> Vec<String> {
    let body = template.body.replace("{instruction}", &template.default_instruction).replace("{query}", "").replace("{doc}", "");
    vec![template.prefix.clone(), body, template.suffix.clone(), template.default_instruction.clone()]
}

/// Trains the tokenizer on `texts` passages/queries of the training groups plus the template (repeated).
pub fn build_tokenizer(corpus: &Corpus, config: &PretrainConfig) -> Result<tokenizers::Tokenizer> {
    let template = PromptTemplate::default();
    let mut texts: Vec<String> = template_texts(&template).into_iter().cycle().take(4 * 200).collect();
    let mut rng = crate::util::seeded_rng(config.seed, crate::util::stable_hash("tokenizer-texts"));
    let mut order: Vec<usize> = (0..corpus.train.len()).collect();
    order.shuffle(&mut rng);
    for &i in &order {
        if texts.len() >= config.tokenizer_texts {
            break;
        }
        let g = &corpus.train[i];
        texts.push(g.query.clone());
        texts.extend(g.candidates.iter().take(3).map(|c| c.text.clone()));
    }
    tokenizer::train_tokenizer(texts.iter(), config.vocab_size)
}

/// Packs tokenised training passages, separated by the pad token, into rows of `seq_len + 1` tokens.
fn lm_rows(corpus: &Corpus, tokenizer: &tokenizers::Tokenizer, rows_needed: usize, seq_len: usize, sep: u32, seed: u64) -> Result<Vec<Vec<u32>>> {
    let passages = corpus.train_passages();
    let mut order: Vec<usize> = (0..passages.len()).collect();
    order.shuffle(&mut crate::util::seeded_rng(seed, crate::util::stable_hash("lm-passages")));
    let mut stream = Vec::new();
    let need = rows_needed * (seq_len + 1);
    for &i in order.iter().cycle().take(passages.len() * 4) {
        if stream.len() >= need {
            break;
        }
        stream.extend(tokenizer.encode(passages[i], false).map_err(|e| anyhow::anyhow!("{e}"))?.get_ids());
        stream.push(sep);
    }
    Ok(stream.chunks_exact(seq_len + 1).map(|c| c.to_vec()).collect())
}

/// Writes a loadable Hugging Face directory: config.json, model.safetensors, tokenizer files, r2r_prompt.json.
pub fn save_model(dir: &Path, model: &TrainableBackbone, config_json: &serde_json::Value, tokenizer: &tokenizers::Tokenizer, template: &PromptTemplate) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    write_safetensors(&dir.join("model.safetensors"), &model.export()?, Some(meta))?;
    crate::util::atomic_write_json(&dir.join("config.json"), config_json)?;
    let json = tokenizer.to_string(true).map_err(|e| anyhow::anyhow!("cannot serialise the tokenizer: {e}"))?;
    crate::util::atomic_write(&dir.join("tokenizer.json"), json.as_bytes())?;
    crate::util::atomic_write_json(&dir.join("tokenizer_config.json"), &tokenizer::tokenizer_config())?;
    crate::util::atomic_write_json(&dir.join(crate::model::prompt::PROMPT_FILE), template)
}

/// Runs the whole recipe and writes the model to `out`. Reports progress through `ctx`.
pub fn pretrain(corpus: &Corpus, config: &PretrainConfig, out: &Path, ctx: &JobContext) -> Result<PretrainReport> {
    let started = Instant::now();
    let device = Device::Cpu;
    let deadline = config.minutes.map(|m| started + std::time::Duration::from_secs_f64(m * 60.0));
    ctx.log(format!("training groups {}, dev {}, test {}", corpus.train.len(), corpus.dev.len(), corpus.test.len()));
    let tokenizer = build_tokenizer(corpus, config)?;
    ctx.check_cancelled()?;
    let seconds_tokenizer = started.elapsed().as_secs_f64();
    let vocab = tokenizer.get_vocab_size(true);
    let template = PromptTemplate { max_length: config.max_length, ..PromptTemplate::default() };
    let prompt = PromptEncoder::new(tokenizer.clone(), template.clone(), &out.join("tokenizer.json"))?;
    let eos = tokenizer.token_to_id("<|im_end|>").context("tokenizer lacks <|im_end|>")?;
    let config_json = config.config_json(vocab, prompt.pad_id, eos);
    let model_config = ModelConfig::from_json(&config_json.to_string())?;
    let tie = TieInit { layers: config.tie_qk_layers, content_only: config.tie_qk_content_only, norm_weight: config.tie_qk_norm_weight };
    let model = TrainableBackbone::init(model_config, config.seed, &tie, &device)?;
    if config.lexical_init {
        super::lexical_init::apply(&model, &prompt, &tokenizer, config.seed)?;
        ctx.check_cancelled()?;
    }
    let template_tokens = prompt.encode_pair(None, "", "")?.ids().len();
    ctx.log(format!("tokenizer: {vocab} tokens in {seconds_tokenizer:.0} s; template {template_tokens} tokens; model {} parameters", model.num_parameters()));

    let passages = corpus.train_passages();
    let teacher = Bm25Index::new(&passages, Bm25Params::default());
    let tail = template.body.split_once("{doc}").map_or("", |(_, t)| t);
    let after_doc = if tail.is_empty() { 0 } else { prompt.encode(tail)?.len() } + prompt.suffix_ids().len();
    let maker = ExampleMaker { prompt: &prompt, tokenizer: &tokenizer, teacher: &teacher, groups: &corpus.train, after_doc };
    let vars = model.all_vars();
    let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr: config.peak_lr, beta1: 0.9, beta2: 0.98, eps: 1e-8, weight_decay: config.weight_decay })?;
    let reranker_of = |m: &TrainableBackbone, detach: bool| Reranker::from_parts(m.transformer(detach)?, prompt.clone(), out);

    let mut config = config.clone();
    if let Some(minutes) = config.minutes {
        plan_steps(&mut config, minutes * 60.0 - started.elapsed().as_secs_f64(), &model, &maker, corpus, &tokenizer, &reranker_of, ctx)?;
    }
    let schedule = LrSchedule { peak: config.peak_lr, warmup_steps: config.warmup_steps, total_steps: config.lm_steps + config.rank_steps, final_fraction: 0.1 };
    let past_deadline = || deadline.is_some_and(|d| Instant::now() >= d);

    // Phase 1: causal-LM warm-up.
    let phase = Instant::now();
    let mut final_lm_loss = None;
    let mut lm_done = 0;
    if config.lm_steps > 0 {
        let rows = lm_rows(corpus, &tokenizer, config.lm_steps * config.lm_batch, config.lm_seq_len, prompt.pad_id, config.seed)?;
        let mut ema = None;
        for (step, batch) in rows.chunks(config.lm_batch).take(config.lm_steps).enumerate() {
            ctx.check_cancelled()?;
            if past_deadline() {
                break;
            }
            opt.set_learning_rate(schedule.at(step));
            let batch: Vec<&[u32]> = batch.iter().map(|r| r.as_slice()).collect();
            let loss = optimise(&lm_loss(&model.transformer(false)?, &batch)?, &vars, &mut opt, config.grad_clip)?;
            let smooth = ema.map_or(loss, |e: f64| 0.95 * e + 0.05 * loss);
            ema = Some(smooth);
            lm_done = step + 1;
            report_progress(ctx, "lm", lm_done, config.lm_steps, smooth, schedule.at(step), config.lm_batch, phase);
        }
        final_lm_loss = ema;
    }
    let seconds_lm = phase.elapsed().as_secs_f64();

    // Phase 2: reranking (distillation + label), with periodic dev evaluation and best-model selection.
    let phase = Instant::now();
    let dev_baselines = eval::evaluate_groups(None, &corpus.dev, config.seed, &mut |_| ctx.check_cancelled())?;
    let eval_every = (config.rank_steps / config.dev_evals.max(1)).max(1);
    let mut rng = crate::util::seeded_rng(config.seed, crate::util::stable_hash("rank-batches"));
    let mut order: Vec<usize> = Vec::new();
    let (mut dev_curve, mut best): (Vec<DevPoint>, Option<Best>) = (Vec::new(), None);
    let mut ema: Option<f64> = None;
    let mut rank_done = 0;
    let evaluate = |step: usize, loss: f64, best: &mut Option<Best>, curve: &mut Vec<DevPoint>| -> Result<()> {
        let dev = eval::evaluate_groups(Some(&reranker_of(&model, true)?), &corpus.dev, config.seed, &mut |_| ctx.check_cancelled())?;
        let m = dev.model.expect("model metrics");
        curve.push((step, m.ndcg10, m.mrr10, loss));
        ctx.send(JobEvent::DevMetrics { stage: "rank".into(), step, metrics: vec![("ndcg@10".into(), m.ndcg10), ("mrr@10".into(), m.mrr10), ("bm25 ndcg@10".into(), dev_baselines.bm25.ndcg10)] });
        if best.as_ref().is_none_or(|b| m.ndcg10 > b.0) {
            *best = Some((m.ndcg10, step, model.snapshot()?));
        }
        Ok(())
    };
    if config.eval_at_start {
        evaluate(0, f64::NAN, &mut best, &mut dev_curve)?;
    }
    for step in 0..config.rank_steps {
        ctx.check_cancelled()?;
        if past_deadline() {
            break;
        }
        let mut examples = Vec::with_capacity(config.groups_per_step);
        for _ in 0..config.groups_per_step {
            if order.is_empty() {
                order = (0..corpus.train.len()).collect();
                order.shuffle(&mut rng);
            }
            let index = order.pop().expect("refilled");
            examples.push(maker.make(index, config.candidates_per_group, config.hard_negatives_at(step), config.label_weight_at(step), config.teacher_temperature, &mut rng)?);
        }
        let lr = schedule.at(config.lm_steps + step);
        opt.set_learning_rate(lr);
        let reranker = reranker_of(&model, false)?;
        let loss = optimise(&rank_loss(&reranker, model.log_scale.as_tensor(), &examples)?, &vars, &mut opt, config.grad_clip)?;
        let smooth = ema.map_or(loss, |e| 0.95 * e + 0.05 * loss);
        ema = Some(smooth);
        rank_done = step + 1;
        report_progress(ctx, "rank", rank_done, config.rank_steps, smooth, lr, config.groups_per_step, phase);
        if rank_done % eval_every == 0 && rank_done < config.rank_steps {
            evaluate(rank_done, smooth, &mut best, &mut dev_curve)?;
        }
    }
    evaluate(rank_done, ema.unwrap_or(f64::NAN), &mut best, &mut dev_curve)?;
    let seconds_rank = phase.elapsed().as_secs_f64();
    let (_, best_step, snapshot) = best.expect("evaluated at least once");
    model.restore(&snapshot)?;
    ctx.log(format!("keeping the weights of reranking step {best_step} (best dev NDCG@10)"));
    save_model(out, &model, &config_json, &tokenizer, &template)?;

    // Held-out numbers through the ordinary loading path.
    let loaded = Reranker::load(out, &crate::model::LoadOptions::default())?;
    let dev = eval::evaluate_groups(Some(&loaded), &corpus.dev, config.seed, &mut |_| ctx.check_cancelled())?;
    let test = if corpus.test.is_empty() { None } else { Some(eval::evaluate_groups(Some(&loaded), &corpus.test, config.seed, &mut |_| ctx.check_cancelled())?) };
    let report = PretrainReport {
        parameters: model.num_parameters(),
        vocab_size: vocab,
        train_groups: corpus.train.len(),
        dev_groups: corpus.dev.len(),
        test_groups: corpus.test.len(),
        prompt_tokens_template: template_tokens,
        lm_steps_done: lm_done,
        rank_steps_done: rank_done,
        seconds_tokenizer,
        seconds_lm,
        seconds_rank,
        seconds_total: started.elapsed().as_secs_f64(),
        threads: candle_core::utils::get_num_threads(),
        dev_curve,
        best_rank_step: best_step,
        dev,
        test,
        final_lm_loss,
        final_rank_loss: ema,
        config,
    };
    crate::util::atomic_write_json(&out.join("training_report.json"), &report)?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn report_progress(ctx: &JobContext, stage: &str, step: usize, total: usize, loss: f64, lr: f64, examples: usize, since: Instant) {
    let secs = since.elapsed().as_secs_f64().max(1e-9);
    ctx.send(JobEvent::Progress(Progress {
        stage: stage.into(),
        step,
        total_steps: total,
        loss,
        learning_rate: lr,
        examples_per_second: (step * examples) as f64 / secs,
        eta_seconds: secs / step as f64 * total.saturating_sub(step) as f64,
    }));
}

/// Sets `lm_steps` and `rank_steps` from timed trial steps (forward + backward, no update) so that
/// training and the dev evaluations fit `seconds`.
#[allow(clippy::too_many_arguments)]
fn plan_steps(
    config: &mut PretrainConfig,
    seconds: f64,
    model: &TrainableBackbone,
    maker: &ExampleMaker,
    corpus: &Corpus,
    tokenizer: &tokenizers::Tokenizer,
    reranker_of: &dyn Fn(&TrainableBackbone, bool) -> Result<Reranker>,
    ctx: &JobContext,
) -> Result<()> {
    let mut rng = crate::util::seeded_rng(config.seed, crate::util::stable_hash("timing"));
    let time_it = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            f()?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        Ok(times[1])
    };
    let rank_step = time_it(&mut || {
        let examples = (0..config.groups_per_step)
            .map(|i| maker.make(i, config.candidates_per_group, config.candidates_per_group / 2, 0.5, config.teacher_temperature, &mut rng))
            .collect::<Result<Vec<_>>>()?;
        rank_loss(&reranker_of(model, false)?, model.log_scale.as_tensor(), &examples)?.backward()?;
        Ok(())
    })?;
    let lm_step = if config.lm_fraction > 0.0 {
        let rows = lm_rows(corpus, tokenizer, config.lm_batch, config.lm_seq_len, maker.prompt.pad_id, config.seed)?;
        let rows: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
        time_it(&mut || {
            lm_loss(&model.transformer(false)?, &rows)?.backward()?;
            Ok(())
        })?
    } else {
        0.0
    };
    // Evaluation: forward only (≈ 1/3 of a training step per candidate), dev evals + final dev and test.
    let per_candidate = rank_step / (3.0 * (config.groups_per_step * config.candidates_per_group) as f64);
    let candidates = |groups: &[QueryGroup]| groups.iter().map(|g| g.candidates.len()).sum::<usize>() as f64;
    let eval_seconds = per_candidate * (candidates(&corpus.dev) * (config.dev_evals + 2) as f64 + candidates(&corpus.test));
    let train_seconds = (seconds - eval_seconds - 6.0 * rank_step).max(0.0);
    config.lm_steps = if lm_step > 0.0 { (train_seconds * config.lm_fraction / lm_step) as usize } else { 0 };
    config.rank_steps = ((train_seconds * (1.0 - config.lm_fraction) / rank_step) as usize).max(1);
    ctx.log(format!(
        "timing: {rank_step:.2} s per reranking step, {lm_step:.2} s per LM step, ~{eval_seconds:.0} s of evaluation → {} LM steps, {} reranking steps",
        config.lm_steps, config.rank_steps
    ));
    Ok(())
}
