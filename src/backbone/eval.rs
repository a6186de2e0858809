//! Held-out ranking quality of a reranker against two baselines: BM25 over each query's own candidates
//! and a seeded random order. Metrics come from [`crate::metrics::formulas`]: gains are the graded
//! relevances, ties (equal scores) keep the candidates' file order, as everywhere in the crate. The
//! random order is a seeded random score per candidate, not a tie.

use crate::data::QueryGroup;
use crate::metrics::{group_metric, Metric};
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

/// NDCG@10 and MRR@10 of one group ranked by `scores`.
fn measure<S: Copy + Into<f64>>(scores: &[S], relevance: &[u32]) -> (f64, f64) {
    (group_metric(Metric::Ndcg(Some(10)), scores, relevance), group_metric(Metric::Mrr(Some(10)), scores, relevance))
}

/// A seeded random score per candidate (higher first): the order of the random `u64` keys, ascending,
/// that this baseline has always drawn, so its recorded figures reproduce.
pub fn random_scores(n: usize, rng: &mut crate::util::SeededRng) -> Vec<f64> {
    (0..n).map(|_| -((rng.random::<u64>() >> 11) as f64)).collect()
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

/// Model (when given), BM25 and random order on `groups`; `seed` fixes the random order.
/// `progress` is called after each group with the number done; an error from it (e.g. a cancel) stops the
/// evaluation.
pub fn evaluate_groups(reranker: Option<&Reranker>, groups: &[QueryGroup], seed: u64, progress: &mut dyn FnMut(usize) -> Result<()>) -> Result<Comparison> {
    let (mut model, mut bm25, mut random) = (Vec::new(), Vec::new(), Vec::new());
    for (i, group) in groups.iter().enumerate() {
        let relevance: Vec<u32> = group.candidates.iter().map(|c| c.relevance).collect();
        let mut rng = crate::util::seeded_rng(seed, crate::util::stable_hash(&group.id));
        random.push(measure(&random_scores(relevance.len(), &mut rng), &relevance));
        bm25.push(measure(&crate::bm25::group_scores(group), &relevance));
        if let Some(reranker) = reranker {
            model.push(measure(&model_scores(reranker, group)?, &relevance));
        }
        progress(i + 1)?;
    }
    Ok(Comparison { model: reranker.map(|_| mean_metrics(&model)), bm25: mean_metrics(&bm25), random: mean_metrics(&random) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Candidate, Split};

    fn group(id: &str, candidates: &[(&str, u32)]) -> QueryGroup {
        QueryGroup {
            id: id.into(),
            domain: "general".into(),
            split: Split::Test,
            query: "river castle".into(),
            query_entities: Vec::new(),
            candidates: candidates.iter().enumerate().map(|(i, &(text, relevance))| Candidate { id: format!("c{i}"), text: text.into(), relevance, entities: Vec::new() }).collect(),
            secondary_domain: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn bm25_ties_keep_file_order_and_the_random_order_is_seeded() {
        // BM25 scores both unmatched passages 0: the relevant one (index 2) ranks after the tied index 1.
        let groups = [group("g", &[("the river castle", 0), ("a green field", 0), ("old stone bridge", 1)])];
        let c = evaluate_groups(None, &groups, 7, &mut |_| Ok(())).unwrap();
        assert_eq!((c.bm25.mrr10, c.bm25.groups), (1.0 / 3.0, 1));
        assert!((c.bm25.ndcg10 - 0.5).abs() < 1e-12, "{}", c.bm25.ndcg10);
        assert!(c.model.is_none());
        // The random order: the same for a seed, and not the file order for every seed.
        let again = evaluate_groups(None, &groups, 7, &mut |_| Ok(())).unwrap();
        assert_eq!(again.random, c.random);
        let mut firsts = std::collections::BTreeSet::new();
        for seed in 0..20 {
            firsts.insert(crate::metrics::rank(&random_scores(4, &mut crate::util::seeded_rng(seed, 0)))[0]);
        }
        assert!(firsts.len() > 1, "the random order always put the same candidate first");
    }

    #[test]
    fn the_random_order_is_the_ascending_order_of_the_keys_drawn() {
        let mut rng = crate::util::seeded_rng(3, 9);
        let keys: Vec<u64> = (0..6).map(|_| rng.random()).collect();
        let mut by_key: Vec<usize> = (0..6).collect();
        by_key.sort_by_key(|&i| keys[i]);
        assert_eq!(crate::metrics::rank(&random_scores(6, &mut crate::util::seeded_rng(3, 9))), by_key);
    }
}
