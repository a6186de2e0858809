//! Dev-set evaluation during training: every candidate of every dev group is scored under an
//! adapter (prefix reuse, no graph) and ranked; Precision@5 and NDCG@10 (`crate::metrics`, linear
//! gains as trec_eval and ranx) are averaged over groups. Ties keep the candidates' file order.

use std::collections::BTreeMap;

use anyhow::Result;
use candle_core::D;
use serde::{Deserialize, Serialize};

use super::config::SelectMetric;
use super::groups::EncodedGroup;
use super::jobs::JobContext;
use crate::metrics::Metric;
use crate::model::{AdapterRun, LoraAdapter, Reranker, ScoreOptions};

/// Dev metrics at one point of a job.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DevPoint {
    /// Optimiser steps done when measured.
    pub step: usize,
    pub precision_at_5: f64,
    pub ndcg_at_10: f64,
    pub queries: usize,
}

impl DevPoint {
    pub fn metric(&self, metric: SelectMetric) -> f64 {
        match metric {
            SelectMetric::PrecisionAt5 => self.precision_at_5,
            SelectMetric::NdcgAt10 => self.ndcg_at_10,
        }
    }
}

/// The yes − no margin of every candidate of a group (ranks as the yes probability does).
pub fn group_margins(reranker: &Reranker, adapter: Option<&LoraAdapter>, group: &EncodedGroup) -> Result<Vec<f32>> {
    let candidates: Vec<&[u32]> = group.candidates.iter().map(Vec::as_slice).collect();
    let (logits, _) = reranker.group_logits(&group.shared, &candidates, &AdapterRun::inference(adapter), &ScoreOptions::default())?;
    let yes = logits.narrow(D::Minus1, 0, 1)?;
    let no = logits.narrow(D::Minus1, 1, 1)?;
    Ok((yes - no)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Candidate indices by decreasing score; ties in index order.
pub fn ranking(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// `metric` (from `crate::metrics`, ranx's conventions) of one group ranked by `scores`.
pub fn group_metric(metric: Metric, scores: &[f32], relevance: &[u32]) -> f64 {
    let ranked: Vec<i32> = ranking(scores).into_iter().map(|i| relevance[i] as i32).collect();
    // Ids in index order, so the metrics' id tie-break agrees with `ranking`.
    let judged: BTreeMap<String, i32> = relevance.iter().enumerate().map(|(i, &r)| (format!("{i:06}"), r as i32)).collect();
    metric.score(&ranked, &judged)
}

/// Precision@k: relevant (≥ 1) candidates among the top k, divided by k.
pub fn precision_at(k: usize, scores: &[f32], relevance: &[u32]) -> f64 {
    group_metric(Metric::Precision(Some(k)), scores, relevance)
}

/// NDCG@k with linear gains (trec_eval's ndcg_cut); 0 when the group has no relevant candidate.
pub fn ndcg_at(k: usize, scores: &[f32], relevance: &[u32]) -> f64 {
    group_metric(Metric::Ndcg(Some(k)), scores, relevance)
}

/// Scores all dev groups under `adapter` and averages the metrics; checks for cancellation per group.
pub fn evaluate(reranker: &Reranker, adapter: Option<&LoraAdapter>, groups: &[EncodedGroup], step: usize, ctx: &JobContext) -> Result<DevPoint> {
    let (mut p5, mut ndcg) = (0.0, 0.0);
    for group in groups {
        ctx.check_cancelled()?;
        let scores = group_margins(reranker, adapter, group)?;
        p5 += precision_at(5, &scores, &group.relevance);
        ndcg += ndcg_at(10, &scores, &group.relevance);
    }
    let n = groups.len().max(1) as f64;
    Ok(DevPoint { step, precision_at_5: p5 / n, ndcg_at_10: ndcg / n, queries: groups.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        let relevance = [0, 2, 0, 1, 0, 0];
        let scores = [0.9, 0.8, 0.1, 0.7, 0.2, 0.0]; // ranking 0, 1, 3, 4, 2, 5
        assert_eq!(ranking(&scores), vec![0, 1, 3, 4, 2, 5]);
        assert!((precision_at(5, &scores, &relevance) - 0.4).abs() < 1e-12);
        let dcg = 2.0 / 3f64.log2() + 1.0 / 4f64.log2();
        let idcg = 2.0 + 1.0 / 3f64.log2();
        assert!((ndcg_at(10, &scores, &relevance) - dcg / idcg).abs() < 1e-12);
        assert_eq!(ndcg_at(10, &[0.1, 0.5, 0.0, 0.3, 0.0, 0.0], &[0, 2, 0, 1, 0, 0]), 1.0);
        assert_eq!(ndcg_at(10, &[1.0, 0.0], &[0, 0]), 0.0);
        // Ties keep file order.
        assert_eq!(ranking(&[0.5, 0.5, 0.7]), vec![2, 0, 1]);
    }
}
