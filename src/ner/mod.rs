//! Learned entity recognition on the frozen backbone: public NER corpora mapped onto the entity schema
//! ([`corpus`]), a BIO token-classification head over the backbone's per-token states ([`head`]), and the
//! recogniser that runs heads inside the abstraction pipeline ([`learned`]). This module holds the
//! pipeline the CLI and the GUI share: featurise sentences, train a head, score it on a NER set.

pub mod corpus;
pub mod head;
pub mod learned;

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use candle_core::Tensor;

use crate::abstraction::Scores;
use crate::model::Reranker;
use corpus::Sentence;
use head::{byte_span, features, greedy, spans_of_path, NerHead};

/// The bundled heads: every directory of assets/ner/heads (under the project root) with a head.json.
pub fn bundled_heads() -> Result<Vec<std::path::PathBuf>> {
    let dir = crate::assets::project_root().join("assets/ner/heads");
    let mut heads: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| anyhow::anyhow!("{}: {e} (no bundled NER heads)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(head::META_FILE).is_file())
        .collect();
    heads.sort();
    if heads.is_empty() {
        bail!("{}: no NER heads (train one with `r2r ner train`)", dir.display());
    }
    Ok(heads)
}

/// Per-token states of sentences (one forward pass each, batched), kept for training and measuring
/// several head settings on the same pass.
pub struct SentenceStates {
    pub sentences: Vec<Sentence>,
    /// Per sentence: [n, hidden] f32 states of its text tokens and their byte ranges.
    pub states: Vec<(Tensor, Vec<(usize, usize)>)>,
}

/// Runs the backbone over sentences, `progress(done, total)` after each batch of 64.
pub fn sentence_states(backbone: &Reranker, sentences: Vec<Sentence>, layer: usize, max_tokens: usize, mut progress: impl FnMut(usize, usize) -> Result<()>) -> Result<SentenceStates> {
    let mut states = Vec::with_capacity(sentences.len());
    for chunk in sentences.chunks(64) {
        let texts: Vec<&str> = chunk.iter().map(|s| s.text.as_str()).collect();
        states.extend(backbone.token_states(&texts, layer, max_tokens, max_tokens)?);
        progress(states.len(), sentences.len())?;
    }
    Ok(SentenceStates { sentences, states })
}

/// Stacked training features [N, D] and tags [N] of sentences for a head's types and right context.
pub fn training_matrix(data: &SentenceStates, types: &[String], right_context: usize) -> Result<(Tensor, Vec<u32>)> {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (sentence, (state, offsets)) in data.sentences.iter().zip(&data.states) {
        if offsets.is_empty() {
            continue;
        }
        xs.push(features(state, right_context)?);
        ys.extend(head::token_tags(&sentence.text, offsets, &sentence.spans, types));
    }
    if xs.is_empty() {
        bail!("no tokens to train on");
    }
    Ok((Tensor::cat(&xs, 0)?, ys))
}

/// How a head's tag sequence is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// Per-token argmax.
    Greedy,
    /// BIO-constrained Viterbi (what the recogniser uses).
    Viterbi,
}

/// A head's decoded spans on gold-annotated sentences, before thresholds: per sentence, the predicted
/// (start, end, type, confidence) and the gold (start, end, type) of the head's types. Decoded once, then
/// scored under any threshold rule by counting.
pub struct Decoded {
    types: Vec<String>,
    sentences: Vec<(Vec<(usize, usize, String, f32)>, std::collections::BTreeSet<(usize, usize, String)>)>,
}

/// Decodes a head on sentences (one head pass per sentence).
pub fn decode_head(head: &NerHead, data: &SentenceStates, decoding: Decoding) -> Result<Decoded> {
    decode_head_with(head, &head.meta, data, decoding)
}

/// [`decode_head`] with other decoding settings (`meta`'s transitions) for the same head weights.
pub fn decode_head_with(head: &NerHead, meta: &head::HeadMeta, data: &SentenceStates, decoding: Decoding) -> Result<Decoded> {
    let types = meta.types.clone();
    let mut sentences = Vec::with_capacity(data.sentences.len());
    for (sentence, (state, offsets)) in data.sentences.iter().zip(&data.states) {
        let mut predicted = Vec::new();
        if !offsets.is_empty() {
            let lp = head.log_probs(&features(state, meta.right_context)?)?;
            let path = match decoding {
                Decoding::Greedy => greedy(&lp),
                Decoding::Viterbi => meta.decode(&lp),
            };
            for span in spans_of_path(&path, &lp) {
                if let Some((s, e)) = byte_span(&sentence.text, offsets, &span) {
                    predicted.push((s, e, types[span.type_index].clone(), span.confidence));
                }
            }
        }
        let gold = sentence.spans.iter().filter(|s| types.contains(&s.label)).map(|s| (s.start, s.end, s.label.clone())).collect();
        sentences.push((predicted, gold));
    }
    Ok(Decoded { types, sentences })
}

impl Decoded {
    /// Exact-match (span and type) micro scores, overall and per type, keeping the spans whose confidence
    /// reaches `threshold(type)`.
    pub fn score(&self, threshold: impl Fn(&str) -> f32) -> (Scores, BTreeMap<String, Scores>) {
        let mut counts: BTreeMap<&str, (usize, usize, usize)> = self.types.iter().map(|t| (t.as_str(), (0, 0, 0))).collect();
        for (predicted, gold) in &self.sentences {
            let kept: std::collections::BTreeSet<(usize, usize, String)> =
                predicted.iter().filter(|p| p.3 >= threshold(&p.2)).map(|p| (p.0, p.1, p.2.clone())).collect();
            for p in &kept {
                let c = counts.get_mut(p.2.as_str()).expect("head type");
                if gold.contains(p) {
                    c.0 += 1;
                } else {
                    c.1 += 1;
                }
            }
            for g in gold.difference(&kept) {
                counts.get_mut(g.2.as_str()).expect("filtered").2 += 1;
            }
        }
        let per_type = counts.iter().map(|(t, &(tp, fp, fn_))| (t.to_string(), Scores::from_counts(tp, fp, fn_))).collect();
        let (tp, fp, fn_) = counts.values().fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
        (Scores::from_counts(tp, fp, fn_), per_type)
    }
}

/// Exact-match (span and type) micro scores of a head on sentences, overall and per type, counting only
/// the head's types; spans under the head's thresholds are dropped (`threshold` overrides them).
pub fn score_head(head: &NerHead, data: &SentenceStates, decoding: Decoding, threshold: Option<f32>) -> Result<(Scores, BTreeMap<String, Scores>)> {
    let decoded = decode_head(head, data, decoding)?;
    Ok(decoded.score(|label| threshold.unwrap_or_else(|| head.meta.threshold(label))))
}

/// The confidence thresholds tried by [`tune_thresholds`].
pub const THRESHOLD_GRID: [f32; 8] = [0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/// Thresholds chosen on dev sentences (Viterbi decoding).
#[derive(Debug, Clone)]
pub struct TunedThresholds {
    /// The one threshold for all types with the best micro-F1, and that F1.
    pub single: (f32, f64),
    /// Per type, the threshold with the best F1 of that type (ties: the lower one), and the micro-F1 of
    /// all types under them.
    pub per_type: (BTreeMap<String, f32>, f64),
}

impl TunedThresholds {
    /// What the head keeps: the per-type thresholds when their micro-F1 is at least the single
    /// threshold's, else the single one for every type; with the micro-F1 it gave.
    pub fn chosen(&self, types: &[String]) -> (BTreeMap<String, f32>, f64) {
        if self.per_type.1 + 1e-12 >= self.single.1 {
            self.per_type.clone()
        } else {
            (types.iter().map(|t| (t.clone(), self.single.0)).collect(), self.single.1)
        }
    }
}

/// Sweeps [`THRESHOLD_GRID`] on decoded dev sentences: one threshold for all types, and one per type.
pub fn tune_thresholds(decoded: &Decoded) -> TunedThresholds {
    let mut single = (0.0f32, f64::NEG_INFINITY);
    let mut best_per_type: BTreeMap<String, (f32, f64)> = BTreeMap::new();
    for t in THRESHOLD_GRID {
        let (overall, per_type) = decoded.score(|_| t);
        if overall.f1 > single.1 + 1e-12 {
            single = (t, overall.f1);
        }
        for (label, s) in per_type {
            let entry = best_per_type.entry(label).or_insert((t, f64::NEG_INFINITY));
            if s.f1 > entry.1 + 1e-12 {
                *entry = (t, s.f1);
            }
        }
    }
    let per_type: BTreeMap<String, f32> = best_per_type.into_iter().map(|(k, v)| (k, v.0)).collect();
    let (overall, _) = decoded.score(|label| per_type.get(label).copied().unwrap_or(0.0));
    TunedThresholds { single, per_type: (per_type, overall.f1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(s: usize, label: &str, confidence: f32) -> (usize, usize, String, f32) {
        (s, s + 3, label.to_string(), confidence)
    }

    /// DRUG's false alarms all have confidence 0.45 (best threshold 0.5), DISEASE's true spans have
    /// confidence 0.35 (best threshold 0.3 or lower): no single threshold gets both right.
    fn decoded() -> Decoded {
        let gold = |spans: &[(usize, &str)]| spans.iter().map(|(s, l)| (*s, *s + 3, l.to_string())).collect();
        Decoded {
            types: vec!["DISEASE".into(), "DRUG".into()],
            sentences: vec![
                (vec![span(0, "DRUG", 0.9), span(10, "DRUG", 0.45), span(20, "DISEASE", 0.35)], gold(&[(0, "DRUG"), (20, "DISEASE")])),
                (vec![span(0, "DRUG", 0.45), span(10, "DISEASE", 0.35), span(30, "DRUG", 0.8)], gold(&[(10, "DISEASE"), (30, "DRUG")])),
                (vec![span(5, "DISEASE", 0.2)], gold(&[])),
            ],
        }
    }

    #[test]
    fn scores_count_exact_spans_above_each_types_threshold() {
        let d = decoded();
        let (all, per_type) = d.score(|_| 0.0);
        assert_eq!((all.true_positives, all.false_positives, all.false_negatives), (4, 3, 0));
        let (all, per_type_high) = d.score(|l| if l == "DRUG" { 0.5 } else { 0.3 });
        assert_eq!((all.true_positives, all.false_positives, all.false_negatives), (4, 0, 0));
        assert_eq!(per_type["DRUG"].false_positives, 2);
        assert_eq!(per_type_high["DRUG"].false_positives, 0);
    }

    #[test]
    fn per_type_thresholds_beat_one_threshold_when_types_differ() {
        let d = decoded();
        let tuned = tune_thresholds(&d);
        assert_eq!(tuned.per_type.0["DRUG"], 0.5);
        assert_eq!(tuned.per_type.0["DISEASE"], 0.3);
        assert!((tuned.per_type.1 - 1.0).abs() < 1e-12);
        assert!(tuned.single.1 < 1.0, "one threshold cannot keep DISEASE at 0.35 and drop DRUG at 0.45");
        let (chosen, f1) = tuned.chosen(&d.types);
        assert_eq!(chosen, tuned.per_type.0);
        assert_eq!(f1, tuned.per_type.1);
    }
}
