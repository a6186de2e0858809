//! Dev-set evaluation during training: every candidate of every dev group is scored under an
//! adapter (prefix reuse, no graph) and ranked; Precision@5 and NDCG@10 ([`crate::metrics::formulas`],
//! linear gains as trec_eval and ranx) are averaged over groups. Ties keep the candidates' file order.

use anyhow::Result;
use candle_core::D;
use serde::{Deserialize, Serialize};

use super::config::SelectMetric;
use super::groups::EncodedGroup;
use super::jobs::JobContext;
use crate::metrics::{group_metric, Metric};
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

/// Scores all dev groups under `adapter` and averages the metrics; checks for cancellation per group.
pub fn evaluate(reranker: &Reranker, adapter: Option<&LoraAdapter>, groups: &[EncodedGroup], step: usize, ctx: &JobContext) -> Result<DevPoint> {
    let (mut p5, mut ndcg) = (0.0, 0.0);
    for group in groups {
        ctx.check_cancelled()?;
        let scores = group_margins(reranker, adapter, group)?;
        p5 += group_metric(Metric::Precision(Some(5)), &scores, &group.relevance);
        ndcg += group_metric(Metric::Ndcg(Some(10)), &scores, &group.relevance);
    }
    let n = groups.len().max(1) as f64;
    Ok(DevPoint { step, precision_at_5: p5 / n, ndcg_at_10: ndcg / n, queries: groups.len() })
}
