//! Held-out ranking quality of a reranker against two baselines: BM25 over each query's own candidates
//! and a seeded random order. Ties (equal scores) are broken by a seeded random key, never by the
//! candidates' file order (positives often come first there). Gains are the graded relevances.

use crate::bm25::{Bm25Index, Bm25Params};
use crate::data::QueryGroup;
use crate::model::{Reranker, ScoreOptions, ScoreRequest};
use anyhow::Result;
use rand::Rng;
use serde::Serialize;

/// Mean NDCG@10 and MRR@10 over groups.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct RankMetrics {
    pub ndcg10: f64,
    pub mrr10: f64,
    pub groups: usize,
}

/// The model (if any) and the baselines on the same groups.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub model: Option<RankMetrics>,
    pub bm25: RankMetrics,
    pub random: RankMetrics,
}

/// Candidate indices sorted by decreasing score; ties in seeded random order.
pub fn rank(scores: &[f32], rng: &mut crate::util::SeededRng) -> Vec<usize> {
    let keys: Vec<u64> = scores.iter().map(|_| rng.random()).collect();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(keys[a].cmp(&keys[b])));
    order
}

/// NDCG@k (linear gains) of a ranking given each candidate's relevance; 0 for a group without relevant ones.
pub fn ndcg_at(order: &[usize], relevance: &[u32], k: usize) -> f64 {
    let dcg = |rels: &mut dyn Iterator<Item = u32>| -> f64 { rels.take(k).enumerate().map(|(i, r)| f64::from(r) / ((i + 2) as f64).log2()).sum() };
    let mut ideal: Vec<u32> = relevance.to_vec();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let best = dcg(&mut ideal.into_iter());
    if best == 0.0 {
        return 0.0;
    }
    dcg(&mut order.iter().map(|&i| relevance[i])) / best
}

/// Reciprocal rank of the first relevant candidate within the top k (0 if none).
pub fn mrr_at(order: &[usize], relevance: &[u32], k: usize) -> f64 {
    order.iter().take(k).position(|&i| relevance[i] > 0).map_or(0.0, |p| 1.0 / (p + 1) as f64)
}

fn mean_metrics(per_group: &[(f64, f64)]) -> RankMetrics {
    let n = per_group.len().max(1) as f64;
    RankMetrics { ndcg10: per_group.iter().map(|m| m.0).sum::<f64>() / n, mrr10: per_group.iter().map(|m| m.1).sum::<f64>() / n, groups: per_group.len() }
}

/// The reranker's scores sigmoid(yes − no) for every candidate of a group, in candidate order.
pub fn model_scores(reranker: &Reranker, group: &QueryGroup) -> Result<Vec<f32>> {
    let requests: Vec<ScoreRequest> = group.candidates.iter().map(|c| ScoreRequest { instruction: None, query: group.query.clone(), document: c.text.clone() }).collect();
    // Rank by the margin yes − no: sigmoid saturates to equal f32 values for confident candidates.
    Ok(reranker.score(&requests, None, &ScoreOptions::default())?.into_iter().map(|s| s.yes_logit - s.no_logit).collect())
}

/// BM25 scores of a group's candidates with an index over those candidates only.
pub fn bm25_scores(group: &QueryGroup) -> Vec<f32> {
    let texts: Vec<&str> = group.candidates.iter().map(|c| c.text.as_str()).collect();
    Bm25Index::new(&texts, Bm25Params::default()).score_all(&group.query)
}

/// Model (when given), BM25 and random order on `groups`; `seed` fixes tie-breaking and the random order.
/// `progress` is called after each group with the number done; an error from it (e.g. a cancel) stops the
/// evaluation.
pub fn evaluate_groups(reranker: Option<&Reranker>, groups: &[QueryGroup], seed: u64, progress: &mut dyn FnMut(usize) -> Result<()>) -> Result<Comparison> {
    let (mut model, mut bm25, mut random) = (Vec::new(), Vec::new(), Vec::new());
    for (i, group) in groups.iter().enumerate() {
        let relevance: Vec<u32> = group.candidates.iter().map(|c| c.relevance).collect();
        let mut rng = crate::util::seeded_rng(seed, crate::util::stable_hash(&group.id));
        let measure = |order: Vec<usize>| (ndcg_at(&order, &relevance, 10), mrr_at(&order, &relevance, 10));
        random.push(measure(rank(&vec![0.0; relevance.len()], &mut rng)));
        bm25.push(measure(rank(&bm25_scores(group), &mut rng)));
        if let Some(reranker) = reranker {
            model.push(measure(rank(&model_scores(reranker, group)?, &mut rng)));
        }
        progress(i + 1)?;
    }
    Ok(Comparison { model: reranker.map(|_| mean_metrics(&model)), bm25: mean_metrics(&bm25), random: mean_metrics(&random) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndcg_and_mrr_by_hand() {
        let rel = [0, 1, 0, 2];
        // Order 3,1,...: ideal → 1.
        assert!((ndcg_at(&[3, 1, 0, 2], &rel, 10) - 1.0).abs() < 1e-12);
        // Order 0,1,2,3: dcg = 1/log2(3) + 2/log2(5); idcg = 2 + 1/log2(3).
        let expect = (1.0 / 3f64.log2() + 2.0 / 5f64.log2()) / (2.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(&[0, 1, 2, 3], &rel, 10) - expect).abs() < 1e-12);
        assert_eq!(mrr_at(&[0, 2, 1, 3], &rel, 10), 1.0 / 3.0);
        assert_eq!(mrr_at(&[0, 2, 1, 3], &rel, 2), 0.0);
    }

    #[test]
    fn ties_are_broken_randomly_not_by_position() {
        let mut firsts = std::collections::BTreeSet::new();
        for seed in 0..20 {
            firsts.insert(rank(&[0.0; 4], &mut crate::util::seeded_rng(seed, 0))[0]);
        }
        assert!(firsts.len() > 1, "tie-breaking always picked the same candidate");
        assert_eq!(rank(&[0.1, 0.5, 0.3], &mut crate::util::seeded_rng(1, 0)), vec![1, 2, 0]);
    }
}
