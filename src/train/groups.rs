//! Training examples: query groups tokenised once (shared prompt part + one suffix per candidate),
//! and the seeded per-epoch plan of (positive, k negatives) draws in shuffled order.
//!
//! The positive of a draw is a relevance-maximal candidate (a seeded choice among ties); the
//! negatives come from the candidates of lower relevance: the `hard` ones BM25 ranks highest for
//! the query first, then the rest drawn without replacement, or with replacement when a group has
//! fewer than k of them. Groups without any lower-relevance candidate cannot form a contrastive
//! example and are left out.

use anyhow::Result;
use rand::seq::SliceRandom;
use rand::Rng;

use super::jobs::JobContext;
use crate::data::QueryGroup;
use crate::model::Reranker;
use crate::util::{seeded_rng, stable_hash};

/// One query group, tokenised for the reranker.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedGroup {
    pub id: String,
    pub domain: String,
    /// Prefix + instruction + query up to `<Document>:` (shared by all candidates).
    pub shared: Vec<u32>,
    /// Per candidate: document + template tail + suffix.
    pub candidates: Vec<Vec<u32>>,
    pub relevance: Vec<u32>,
    /// Per candidate: its BM25 score for the query over the group's candidates (for mining).
    pub bm25: Vec<f32>,
}

/// Tokenises groups (the default instruction; documents truncated to the template's max_length);
/// with a job context, cancellation is checked before each group.
pub fn encode_groups(reranker: &Reranker, groups: &[&QueryGroup], ctx: Option<&JobContext>) -> Result<Vec<EncodedGroup>> {
    groups
        .iter()
        .map(|g| {
            if let Some(ctx) = ctx {
                ctx.check_cancelled()?;
            }
            let mut shared = Vec::new();
            let mut candidates = Vec::with_capacity(g.candidates.len());
            for c in &g.candidates {
                let pair = reranker.prompt.encode_pair(None, &g.query, &c.text)?;
                shared = pair.shared;
                candidates.push(pair.candidate);
            }
            let relevance = g.candidates.iter().map(|c| c.relevance).collect();
            let bm25 = crate::bm25::group_scores(g);
            Ok(EncodedGroup { id: g.id.clone(), domain: g.domain.clone(), shared, candidates, relevance, bm25 })
        })
        .collect()
}

/// One contrastive example: candidate indices into `groups[group]`, positive first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    pub group: usize,
    pub positive: usize,
    pub negatives: Vec<usize>,
}

impl Draw {
    /// Positive then negatives.
    pub fn candidates(&self) -> Vec<usize> {
        std::iter::once(self.positive).chain(self.negatives.iter().copied()).collect()
    }
}

/// How many groups can form an example (at least one candidate below the best relevance).
pub fn usable_groups(groups: &[EncodedGroup]) -> usize {
    groups.iter().filter(|g| g.relevance.iter().any(|&r| r < g.relevance.iter().copied().max().unwrap_or(0))).count()
}

/// The draws of one epoch in shuffled order, `hard` of each draw's `negatives` mined by BM25; a
/// function of (seed, job, epoch) only, so a resumed job rebuilds exactly the plan it was following.
pub fn epoch_plan(groups: &[EncodedGroup], negatives: usize, hard: usize, seed: u64, job: &str, epoch: usize) -> Vec<Draw> {
    let mut rng = seeded_rng(seed, stable_hash(&format!("{job}/epoch/{epoch}")));
    let mut draws = Vec::with_capacity(groups.len());
    for (gi, g) in groups.iter().enumerate() {
        let Some(best) = g.relevance.iter().copied().max() else { continue };
        let tops: Vec<usize> = (0..g.relevance.len()).filter(|&i| g.relevance[i] == best).collect();
        let mut pool: Vec<usize> = (0..g.relevance.len()).filter(|&i| g.relevance[i] < best).collect();
        if pool.is_empty() {
            continue;
        }
        let positive = tops[rng.random_range(0..tops.len())];
        pool.shuffle(&mut rng);
        if hard > 0 {
            // The mined ones first (BM25 descending, ties by candidate index), the rest stay shuffled.
            let mut by_bm25 = pool.clone();
            by_bm25.sort_by(|&a, &b| g.bm25[b].total_cmp(&g.bm25[a]).then(a.cmp(&b)));
            by_bm25.truncate(hard.min(negatives));
            pool.retain(|i| !by_bm25.contains(i));
            by_bm25.append(&mut pool);
            pool = by_bm25;
        }
        let chosen: Vec<usize> = if pool.len() >= negatives {
            pool[..negatives].to_vec()
        } else {
            (0..negatives).map(|i| if i < pool.len() { pool[i] } else { pool[rng.random_range(0..pool.len())] }).collect()
        };
        draws.push(Draw { group: gi, positive, negatives: chosen });
    }
    draws.shuffle(&mut rng);
    draws
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(relevance: &[u32]) -> EncodedGroup {
        EncodedGroup {
            id: format!("g{}", relevance.len()),
            domain: "d".into(),
            shared: vec![1],
            candidates: relevance.iter().map(|_| vec![2]).collect(),
            relevance: relevance.to_vec(),
            bm25: (0..relevance.len()).map(|i| i as f32).collect(),
        }
    }

    #[test]
    fn draws_take_a_best_positive_and_lower_negatives_deterministically() {
        let groups = vec![group(&[0, 2, 1, 0, 2, 0]), group(&[1, 1]), group(&[0, 1, 0])];
        assert_eq!(usable_groups(&groups), 2);
        let plan = epoch_plan(&groups, 3, 0, 7, "job", 0);
        assert_eq!(plan.len(), 2, "the all-positive group is left out");
        for d in &plan {
            let g = &groups[d.group];
            assert_eq!(g.relevance[d.positive], *g.relevance.iter().max().unwrap());
            assert_eq!(d.negatives.len(), 3);
            assert!(d.negatives.iter().all(|&n| g.relevance[n] < g.relevance[d.positive]));
        }
        let first = plan.iter().find(|d| d.group == 0).unwrap();
        let mut distinct = first.negatives.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "enough negatives: drawn without replacement");
        assert_eq!(plan, epoch_plan(&groups, 3, 0, 7, "job", 0));
        let others: Vec<_> = (1..6).map(|e| epoch_plan(&groups, 3, 0, 7, "job", e)).collect();
        assert!(others.iter().any(|p| *p != plan), "epochs draw differently");
    }

    #[test]
    fn hard_negatives_are_the_best_bm25_candidates_below_the_positive() {
        // bm25 = candidate index, so the highest-scoring lower-relevance candidates are the last ones.
        let groups = vec![group(&[0, 2, 1, 0, 0, 0, 1, 0])];
        for epoch in 0..4 {
            let plan = epoch_plan(&groups, 3, 2, 7, "job", epoch);
            let d = &plan[0];
            assert_eq!(d.positive, 1);
            assert_eq!(&d.negatives[..2], &[7, 6], "epoch {epoch}: mined first, best BM25 first");
            assert!(![1, 6, 7].contains(&d.negatives[2]), "the third is drawn from the rest");
            assert_eq!(plan, epoch_plan(&groups, 3, 2, 7, "job", epoch));
        }
        let all_hard = epoch_plan(&groups, 3, 3, 7, "job", 0);
        assert_eq!(all_hard[0].negatives, vec![7, 6, 5]);
        // Fewer lower-relevance candidates than negatives: the mined ones, then repeats.
        let small = vec![group(&[2, 0, 1])];
        let d = &epoch_plan(&small, 4, 4, 7, "job", 0)[0];
        assert_eq!(&d.negatives[..2], &[2, 1]);
        assert!(d.negatives.iter().all(|&n| n == 1 || n == 2));
    }
}
