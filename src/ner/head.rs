//! The token-classification head of the learned recogniser: a linear BIO tagger over the frozen
//! backbone's per-token residual states (RMS-normalised; optionally concatenated with the states of the
//! next `right_context` tokens, since a causal decoder's state at a token has seen only its left), decoded
//! with BIO transition constraints (Viterbi over log-probabilities: `I-X` only after `B-X` or `I-X`).
//! With `hidden > 0` the tagger is a small MLP instead (features → hidden, GELU → tags).
//! Saved as `head.safetensors` (`weight` [tags, in], `bias` [tags], and with a hidden layer
//! `hidden.weight` [hidden, features], `hidden.bias` [hidden]) + `head.json` ([`HeadMeta`]).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Optimizer, VarMap};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::EntitySpan;
use crate::routing::BackboneRef;

/// What a head was trained on and how it reads the backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadMeta {
    /// Short name (shown as the source `learned:<name>`).
    pub name: String,
    /// The domain whose texts it was trained on (`general`, `medical`, …).
    pub domain: String,
    pub backbone: BackboneRef,
    pub hidden_size: usize,
    /// Residual stream read: after this many decoder layers (0 = embeddings).
    pub layer: usize,
    /// States of the next this-many tokens concatenated to each token's own.
    pub right_context: usize,
    /// Texts are cut to this many tokens.
    pub max_tokens: usize,
    /// Width of the hidden layer (0 = a linear tagger).
    #[serde(default)]
    pub hidden: usize,
    /// Schema types, in tag order: tag 0 = O, 2k+1 = B-types[k], 2k+2 = I-types[k].
    pub types: Vec<String>,
    /// Minimum span confidence per type (mean probability of its decoded tags); missing → 0.5.
    #[serde(default)]
    pub thresholds: BTreeMap<String, f32>,
    /// Free-form training record (corpus, sentences, epochs, dev F1, …).
    #[serde(default)]
    pub training: BTreeMap<String, serde_json::Value>,
    /// Learned tag transitions for Viterbi (`r2r ner tune --transitions --keep-transitions`; none of the
    /// bundled heads keeps them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitions: Option<LearnedTransitions>,
}

/// Tag transitions added to a head's emissions in Viterbi.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedTransitions {
    /// Rows = previous tag, last row = sentence start ([`transition_log_probs`] of the training split).
    pub log_probs: Vec<Vec<f32>>,
    pub weight: f32,
}

impl HeadMeta {
    pub fn tags(&self) -> usize {
        1 + 2 * self.types.len()
    }

    pub fn feature_dim(&self) -> usize {
        self.hidden_size * (1 + self.right_context)
    }

    /// The constrained Viterbi path of a text's log-probabilities, with the learned transitions if any.
    pub fn decode(&self, log_probs: &[Vec<f32>]) -> Vec<usize> {
        viterbi_with(log_probs, self.transitions.as_ref().map(|t| (t.log_probs.as_slice(), t.weight)))
    }

    /// The NER corpus the head was trained on, as its training record names it.
    pub fn corpus(&self) -> Option<&str> {
        self.training.get("corpus").and_then(|v| v.as_str())
    }

    pub fn threshold(&self, label: &str) -> f32 {
        self.thresholds.get(label).copied().unwrap_or(DEFAULT_THRESHOLD)
    }
}

pub const DEFAULT_THRESHOLD: f32 = 0.5;
pub const META_FILE: &str = "head.json";
pub const WEIGHTS_FILE: &str = "head.safetensors";

/// A trained head.
#[derive(Debug, Clone)]
pub struct NerHead {
    pub meta: HeadMeta,
    /// ([hidden, features], [hidden]) when the tagger has a hidden layer.
    hidden_layer: Option<(Tensor, Tensor)>,
    /// [tags, features] f32 on the CPU.
    weight: Tensor,
    /// [tags] f32.
    bias: Tensor,
}

/// One decoded mention in token indices (inclusive first, exclusive end), with its confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSpan {
    pub first: usize,
    pub end: usize,
    pub type_index: usize,
    pub confidence: f32,
}

/// RMS-normalised states with the next `right_context` tokens' states appended (zeros past the end):
/// [n, hidden] → [n, hidden · (1 + right_context)].
pub fn features(states: &Tensor, right_context: usize) -> Result<Tensor> {
    let (n, h) = states.dims2()?;
    if n == 0 {
        return Ok(Tensor::zeros((0, h * (1 + right_context)), DType::F32, states.device())?);
    }
    let states = states.to_dtype(DType::F32)?;
    let rms = (states.sqr()?.mean_keepdim(1)? + 1e-6)?.sqrt()?;
    let normed = states.broadcast_div(&rms)?;
    let mut parts = vec![normed.clone()];
    for k in 1..=right_context {
        let shifted = if k >= n {
            Tensor::zeros((n, h), DType::F32, normed.device())?
        } else {
            Tensor::cat(&[normed.narrow(0, k, n - k)?, Tensor::zeros((k, h), DType::F32, normed.device())?], 0)?
        };
        parts.push(shifted);
    }
    Ok(Tensor::cat(&parts, 1)?)
}

/// Token tags from gold byte spans: a token whose (whitespace-trimmed) start lies in a span is `B-` of
/// it when it is the span's first such token, else `I-`; other tokens `O`. Spans of types outside
/// `types` are `O`.
pub fn token_tags(text: &str, offsets: &[(usize, usize)], spans: &[EntitySpan], types: &[String]) -> Vec<u32> {
    let mut tags = vec![0u32; offsets.len()];
    let mut opened = vec![false; spans.len()];
    for (t, &(s, e)) in offsets.iter().enumerate() {
        let start = trimmed_start(text, s, e);
        if let Some((k, span)) = spans.iter().enumerate().find(|(_, sp)| sp.start <= start && start < sp.end) {
            if let Some(ti) = types.iter().position(|x| *x == span.label) {
                tags[t] = if opened[k] { 2 * ti as u32 + 2 } else { 2 * ti as u32 + 1 };
                opened[k] = true;
            }
        }
    }
    tags
}

fn trimmed_start(text: &str, s: usize, e: usize) -> usize {
    let e = e.min(text.len());
    let s = s.min(e);
    text.get(s..e).map(|piece| s + (piece.len() - piece.trim_start().len())).unwrap_or(s)
}

/// Tag-bigram log-probabilities of tag sequences, add-one smoothed: `tags + 1` rows (previous tag, then
/// the sentence start) of `tags` columns.
pub fn transition_log_probs<'a>(sequences: impl IntoIterator<Item = &'a [u32]>, tags: usize) -> Vec<Vec<f32>> {
    let mut counts = vec![vec![1.0f64; tags]; tags + 1];
    for seq in sequences {
        let mut prev = tags;
        for &t in seq {
            counts[prev][t as usize] += 1.0;
            prev = t as usize;
        }
    }
    counts
        .into_iter()
        .map(|row| {
            let total: f64 = row.iter().sum();
            row.into_iter().map(|c| (c / total).ln() as f32).collect()
        })
        .collect()
}

/// Constrained Viterbi over [n, tags] log-probabilities: `I-X` may follow only `B-X` or `I-X` (and
/// cannot start). Returns the tag path.
pub fn viterbi(log_probs: &[Vec<f32>]) -> Vec<usize> {
    viterbi_with(log_probs, None)
}

/// [`viterbi`] with learned transitions (see [`transition_log_probs`]) added with a weight.
pub fn viterbi_with(log_probs: &[Vec<f32>], transitions: Option<(&[Vec<f32>], f32)>) -> Vec<usize> {
    let n = log_probs.len();
    if n == 0 {
        return vec![];
    }
    let tags = log_probs[0].len();
    let trans = |prev: usize, cur: usize| -> f32 { transitions.map_or(0.0, |(t, w)| w * t[prev][cur]) };
    let allowed = |prev: Option<usize>, cur: usize| -> bool {
        if cur == 0 || cur % 2 == 1 {
            return true;
        }
        match prev {
            None => false,
            Some(p) => p != 0 && (p + 1) / 2 == cur / 2,
        }
    };
    let mut score: Vec<f32> = (0..tags).map(|c| if allowed(None, c) { log_probs[0][c] + trans(tags, c) } else { f32::NEG_INFINITY }).collect();
    let mut back = vec![vec![0usize; tags]; n];
    for t in 1..n {
        let mut next = vec![f32::NEG_INFINITY; tags];
        for c in 0..tags {
            for p in 0..tags {
                let candidate = score[p] + trans(p, c) + log_probs[t][c];
                if allowed(Some(p), c) && candidate > next[c] {
                    next[c] = candidate;
                    back[t][c] = p;
                }
            }
        }
        score = next;
    }
    let mut best = (0..tags).max_by(|&a, &b| score[a].total_cmp(&score[b]).then(b.cmp(&a))).unwrap_or(0);
    let mut path = vec![0; n];
    for t in (0..n).rev() {
        path[t] = best;
        best = back[t][best];
    }
    path
}

/// Per-token argmax, with an `I-X` that does not continue an X mention read as `B-X`.
pub fn greedy(log_probs: &[Vec<f32>]) -> Vec<usize> {
    log_probs.iter().map(|row| (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a))).unwrap_or(0)).collect()
}

/// Mentions of a tag path with their mean decoded-tag probability.
pub fn spans_of_path(path: &[usize], log_probs: &[Vec<f32>]) -> Vec<TokenSpan> {
    let mut out: Vec<TokenSpan> = Vec::new();
    let mut sum = 0.0f32;
    for (t, &tag) in path.iter().enumerate() {
        let p = log_probs[t][tag].exp();
        let continues = tag != 0 && tag % 2 == 0 && out.last().is_some_and(|s| s.end == t && s.type_index == (tag - 1) / 2);
        if continues {
            let s = out.last_mut().expect("checked");
            s.end = t + 1;
            sum += p;
            s.confidence = sum / (s.end - s.first) as f32;
        } else if tag != 0 {
            sum = p;
            out.push(TokenSpan { first: t, end: t + 1, type_index: (tag - 1) / 2, confidence: p });
        }
    }
    out
}

/// A token span as a byte span of `text`: from its first token's (trimmed) start to its last token's end,
/// widened to whole words (letters and digits on either side) and trimmed of surrounding whitespace.
pub fn byte_span(text: &str, offsets: &[(usize, usize)], span: &TokenSpan) -> Option<(usize, usize)> {
    let (s, _) = offsets[span.first];
    let (_, e) = offsets[span.end - 1];
    let mut start = trimmed_start(text, s, e).min(text.len());
    let mut end = e.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let word = |c: char| c.is_alphanumeric();
    while let Some(c) = text[..start].chars().next_back().filter(|c| word(*c)) {
        start -= c.len_utf8();
    }
    while let Some(c) = text[end..].chars().next().filter(|c| word(*c)) {
        end += c.len_utf8();
    }
    let piece = &text[start..end];
    let start = start + (piece.len() - piece.trim_start().len());
    let end = end - (piece.len() - piece.trim_end().len());
    (start < end).then_some((start, end))
}

/// Training settings of a head.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub batch_tokens: usize,
    pub seed: u64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings { epochs: 8, learning_rate: 2e-3, weight_decay: 1e-4, batch_tokens: 512, seed: 13 }
    }
}

impl NerHead {
    /// Trains a head on token features [N, D] and tags [N] (softmax cross-entropy, AdamW, seeded
    /// shuffling; deterministic on the CPU). `on_epoch(epoch, mean loss)` may stop training by erroring.
    pub fn train(meta: HeadMeta, x: &Tensor, y: &[u32], settings: &TrainSettings, mut on_epoch: impl FnMut(usize, f32) -> Result<()>) -> Result<NerHead> {
        let (n, d) = x.dims2()?;
        if n == 0 || n != y.len() {
            bail!("no training tokens (features {n}, tags {})", y.len());
        }
        if d != meta.feature_dim() {
            bail!("features have {d} columns; the head expects {}", meta.feature_dim());
        }
        let device = Device::Cpu;
        let varmap = VarMap::new();
        let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let hidden = (meta.hidden > 0).then(|| candle_nn::linear(d, meta.hidden, vb.pp("hidden"))).transpose()?;
        let linear = candle_nn::linear(if meta.hidden > 0 { meta.hidden } else { d }, meta.tags(), vb.pp("head"))?;
        let mut opt = candle_nn::AdamW::new(varmap.all_vars(), candle_nn::ParamsAdamW { lr: settings.learning_rate, weight_decay: settings.weight_decay, ..Default::default() })?;
        let y_all = Tensor::new(y, &device)?;
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut rng = crate::util::seeded_rng(settings.seed, 0x004e_4552);
        for epoch in 0..settings.epochs {
            order.shuffle(&mut rng);
            let mut total = 0.0f64;
            let mut batches = 0usize;
            for chunk in order.chunks(settings.batch_tokens.max(1)) {
                let idx = Tensor::new(chunk, &device)?;
                let xb = x.index_select(&idx, 0)?;
                let yb = y_all.index_select(&idx, 0)?;
                let xb = match &hidden {
                    Some(h) => candle_nn::Module::forward(h, &xb)?.gelu_erf()?,
                    None => xb,
                };
                let logits = candle_nn::Module::forward(&linear, &xb)?;
                let loss = candle_nn::loss::cross_entropy(&logits, &yb)?;
                let value = loss.to_scalar::<f32>()?;
                if !value.is_finite() {
                    bail!("the NER head's loss became {value} at epoch {} (lower the learning rate)", epoch + 1);
                }
                opt.backward_step(&loss)?;
                total += value as f64;
                batches += 1;
            }
            on_epoch(epoch + 1, (total / batches.max(1) as f64) as f32)?;
        }
        let hidden_layer = match &hidden {
            Some(h) => Some((h.weight().detach(), h.bias().context("linear has a bias")?.detach())),
            None => None,
        };
        Ok(NerHead { meta, hidden_layer, weight: linear.weight().detach(), bias: linear.bias().context("linear has a bias")?.detach() })
    }

    /// Log-probabilities [n][tags] for a text's features [n, D].
    pub fn log_probs(&self, x: &Tensor) -> Result<Vec<Vec<f32>>> {
        if x.dim(0)? == 0 {
            return Ok(vec![]);
        }
        let x = match &self.hidden_layer {
            Some((w, b)) => x.matmul(&w.t()?)?.broadcast_add(b)?.gelu_erf()?,
            None => x.clone(),
        };
        let logits = x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?;
        Ok(candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?)
    }

    /// Saves `head.safetensors` and `head.json` into `dir` (each written atomically).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = dir.join(format!("{WEIGHTS_FILE}.tmp"));
        let mut tensors = std::collections::HashMap::from([("weight".to_string(), self.weight.clone()), ("bias".to_string(), self.bias.clone())]);
        if let Some((w, b)) = &self.hidden_layer {
            tensors.insert("hidden.weight".to_string(), w.clone());
            tensors.insert("hidden.bias".to_string(), b.clone());
        }
        candle_core::safetensors::save(&tensors, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(WEIGHTS_FILE)).with_context(|| format!("writing {}", dir.join(WEIGHTS_FILE).display()))?;
        crate::util::atomic_write_json(&dir.join(META_FILE), &self.meta)
    }

    /// Loads a saved head; errors name the file and the field or tensor.
    pub fn load(dir: &Path) -> Result<NerHead> {
        let meta_path = dir.join(META_FILE);
        let text = std::fs::read_to_string(&meta_path).with_context(|| format!("reading {} (not a NER head directory?)", meta_path.display()))?;
        let meta: HeadMeta = serde_json::from_str(&text).with_context(|| format!("{}: not a NER head description", meta_path.display()))?;
        if meta.types.is_empty() {
            bail!("{}: field `types` is empty", meta_path.display());
        }
        let weights_path = dir.join(WEIGHTS_FILE);
        let tensors = candle_core::safetensors::load(&weights_path, &Device::Cpu).with_context(|| format!("reading {}", weights_path.display()))?;
        let get = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let t = tensors.get(name).with_context(|| format!("{}: tensor `{name}` is missing", weights_path.display()))?.to_dtype(DType::F32)?;
            if t.dims() != shape {
                bail!("{}: tensor `{name}` has shape {:?}; {} says {:?}", weights_path.display(), t.dims(), meta_path.display(), shape);
            }
            if t.flatten_all()?.to_vec1::<f32>()?.iter().any(|v| !v.is_finite()) {
                bail!("{}: tensor `{name}` holds a non-finite value", weights_path.display());
            }
            Ok(t)
        };
        let hidden_layer = if meta.hidden > 0 { Some((get("hidden.weight", &[meta.hidden, meta.feature_dim()])?, get("hidden.bias", &[meta.hidden])?)) } else { None };
        let weight = get("weight", &[meta.tags(), if meta.hidden > 0 { meta.hidden } else { meta.feature_dim() }])?;
        let bias = get("bias", &[meta.tags()])?;
        Ok(NerHead { meta, hidden_layer, weight, bias })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(rows: &[&[f32]]) -> Vec<Vec<f32>> {
        rows.iter().map(|r| r.iter().map(|p| p.ln()).collect()).collect()
    }

    #[test]
    fn learned_transitions_are_smoothed_bigrams_and_can_change_the_path() {
        // Tags: O, B-A, I-A. Training mentions always run on (B → I).
        let t = transition_log_probs([[1u32, 2, 0].as_slice(), [0, 1, 2].as_slice()], 3);
        assert_eq!(t.len(), 4);
        for row in &t {
            assert!((row.iter().map(|l| l.exp()).sum::<f32>() - 1.0).abs() < 1e-5);
        }
        assert!(t[1][2] > t[1][0], "B-A → I-A was seen, B-A → O was not");
        // Emissions: a weak B-A, then O slightly above I-A.
        let lp: Vec<Vec<f32>> = [[0.3f32, 0.6, 0.1], [0.5, 0.1, 0.4]].iter().map(|r| r.iter().map(|p| p.ln()).collect()).collect();
        assert_eq!(viterbi(&lp), vec![1, 0]);
        assert_eq!(viterbi_with(&lp, Some((&t, 1.0))), vec![1, 2]);
        assert_eq!(viterbi_with(&lp, Some((&t, 0.0))), vec![1, 0]);
    }

    #[test]
    fn viterbi_forbids_orphan_inside_tags_and_greedy_does_not() {
        // tags: O, B-A, I-A
        let probs = lp(&[&[0.6, 0.1, 0.3], &[0.2, 0.1, 0.7]]);
        assert_eq!(greedy(&probs), [0, 2]);
        let path = viterbi(&probs);
        assert_ne!(path[0], 2);
        assert!(path[1] != 2 || path[0] == 1, "{path:?}");
        let spans = spans_of_path(&[1, 2, 0, 1], &lp(&[&[0.1, 0.8, 0.1], &[0.1, 0.1, 0.8], &[0.9, 0.05, 0.05], &[0.2, 0.6, 0.2]]));
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].first, spans[0].end), (0, 2));
        assert!((spans[0].confidence - 0.8).abs() < 1e-5);
    }

    #[test]
    fn tags_and_byte_spans_follow_words() {
        let text = "Nadim Ladki visited Paris.";
        let offsets = [(0, 3), (3, 5), (5, 11), (11, 19), (19, 25), (25, 26)];
        let spans = [EntitySpan { start: 0, end: 11, label: "PERSON".into() }, EntitySpan { start: 20, end: 25, label: "LOCATION".into() }];
        let types = vec!["PERSON".to_string(), "LOCATION".to_string()];
        assert_eq!(token_tags(text, &offsets, &spans, &types), [1, 2, 2, 0, 3, 0]);
        // A span predicted from the middle of a word widens to the word.
        let s = TokenSpan { first: 1, end: 3, type_index: 0, confidence: 1.0 };
        assert_eq!(byte_span(text, &offsets, &s), Some((0, 11)));
        let s = TokenSpan { first: 4, end: 5, type_index: 1, confidence: 1.0 };
        assert_eq!(byte_span(text, &offsets, &s), Some((20, 25)));
    }

    #[test]
    fn features_append_right_context_and_train_separates_tags() {
        let x = Tensor::new(&[[1f32, 0.0], [0.0, 2.0], [3.0, 0.0]], &Device::Cpu).unwrap();
        let f = features(&x, 1).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[2][2..], [0.0, 0.0]);
        assert!((f[0][2] - 0.0).abs() < 1e-6 && (f[0][3] - std::f32::consts::SQRT_2).abs() < 1e-4);
        let meta = HeadMeta {
            name: "t".into(),
            domain: "general".into(),
            backbone: BackboneRef { path: "x".into(), sha256: None },
            hidden_size: 2,
            layer: 1,
            right_context: 0,
            max_tokens: 8,
            hidden: 0,
            types: vec!["A".into()],
            thresholds: BTreeMap::new(),
            training: BTreeMap::new(),
            transitions: None,
        };
        let xs = Tensor::new(&[[1f32, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.1], [0.1, 1.0], [-1.0, 0.1]], &Device::Cpu).unwrap();
        let ys = [1u32, 2, 0, 1, 2, 0];
        let settings = TrainSettings { epochs: 300, learning_rate: 0.05, batch_tokens: 6, ..Default::default() };
        let head = NerHead::train(meta, &xs, &ys, &settings, |_, _| Ok(())).unwrap();
        let pred = greedy(&head.log_probs(&xs).unwrap());
        assert_eq!(pred, [1, 2, 0, 1, 2, 0]);
        let dir = std::env::temp_dir().join(format!("r2r-ner-head-{}", std::process::id()));
        head.save(&dir).unwrap();
        let back = NerHead::load(&dir).unwrap();
        assert_eq!(back.log_probs(&xs).unwrap(), head.log_probs(&xs).unwrap());
        // A hidden layer: trains, saves and loads the same way.
        let mlp_meta = HeadMeta { hidden: 4, ..head.meta.clone() };
        let mlp = NerHead::train(mlp_meta, &xs, &ys, &settings, |_, _| Ok(())).unwrap();
        assert_eq!(greedy(&mlp.log_probs(&xs).unwrap()), [1, 2, 0, 1, 2, 0]);
        let mlp_dir = dir.join("mlp");
        mlp.save(&mlp_dir).unwrap();
        assert_eq!(NerHead::load(&mlp_dir).unwrap().log_probs(&xs).unwrap(), mlp.log_probs(&xs).unwrap());
        std::fs::write(dir.join(META_FILE), "{\"name\": 1}").unwrap();
        assert!(NerHead::load(&dir).unwrap_err().to_string().contains("head.json"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
