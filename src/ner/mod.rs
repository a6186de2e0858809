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
use head::{byte_span, features, greedy, spans_of_path, viterbi, NerHead};

/// The bundled heads: every directory of assets/ner/heads (under the project root) with a head.json.
pub fn bundled_heads() -> Result<Vec<std::path::PathBuf>> {
    let dir = crate::model::default_backbone::project_root().join("assets/ner/heads");
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

/// Exact-match (span and type) micro scores of a head on sentences, overall and per type, counting only
/// the head's types; spans under the head's thresholds are dropped (`threshold` overrides them).
pub fn score_head(head: &NerHead, data: &SentenceStates, decoding: Decoding, threshold: Option<f32>) -> Result<(Scores, BTreeMap<String, Scores>)> {
    let mut counts: BTreeMap<String, (usize, usize, usize)> = head.meta.types.iter().map(|t| (t.clone(), (0, 0, 0))).collect();
    for (sentence, (state, offsets)) in data.sentences.iter().zip(&data.states) {
        let mut predicted = std::collections::BTreeSet::new();
        if !offsets.is_empty() {
            let lp = head.log_probs(&features(state, head.meta.right_context)?)?;
            let path = match decoding {
                Decoding::Greedy => greedy(&lp),
                Decoding::Viterbi => viterbi(&lp),
            };
            for span in spans_of_path(&path, &lp) {
                let label = &head.meta.types[span.type_index];
                if span.confidence < threshold.unwrap_or_else(|| head.meta.threshold(label)) {
                    continue;
                }
                if let Some((s, e)) = byte_span(&sentence.text, offsets, &span) {
                    predicted.insert((s, e, label.clone()));
                }
            }
        }
        let gold: std::collections::BTreeSet<(usize, usize, String)> =
            sentence.spans.iter().filter(|s| counts.contains_key(&s.label)).map(|s| (s.start, s.end, s.label.clone())).collect();
        for p in &predicted {
            let c = counts.get_mut(&p.2).expect("head type");
            if gold.contains(p) {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        }
        for g in gold.difference(&predicted) {
            counts.get_mut(&g.2).expect("filtered").2 += 1;
        }
    }
    let per_type: BTreeMap<String, Scores> = counts.iter().map(|(t, &(tp, fp, fn_))| (t.clone(), Scores::from_counts(tp, fp, fn_))).collect();
    let (tp, fp, fn_) = counts.values().fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
    Ok((Scores::from_counts(tp, fp, fn_), per_type))
}
