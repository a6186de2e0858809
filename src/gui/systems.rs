//! Ranking systems the app compares, and their runs over a loaded dataset.
//!
//! Every system is a [`RankingSystem`]: it scores the candidates of a query
//! group, higher is better. A [`SystemRun`] holds one system's ranking of every
//! group plus NDCG@10 per query. New systems (the reranker, R2R experts, the
//! routed pipeline) plug in by adding a [`SystemKind`] variant and a
//! [`RankingSystem`] implementation; the panels only see `SystemKind` and
//! `SystemRun`. This module holds no UI code.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::bm25::{Bm25Index, Bm25Params};
use crate::data::{Dataset, QueryGroup, Split};
use crate::gui::jobs::JobContext;
use crate::util::{seeded_rng, stable_hash};

/// Scores the candidates of one query group.
pub trait RankingSystem: Send + Sync {
    /// One score per candidate, in `group.candidates` order; higher ranks first.
    fn score(&self, group: &QueryGroup) -> Vec<f32>;
}

/// The systems the app knows how to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SystemKind {
    Bm25,
    RandomOrder,
}

impl SystemKind {
    pub const ALL: [SystemKind; 2] = [SystemKind::Bm25, SystemKind::RandomOrder];

    pub fn name(self) -> &'static str {
        match self {
            SystemKind::Bm25 => "BM25",
            SystemKind::RandomOrder => "Random order (seeded)",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            SystemKind::Bm25 => {
                "Lexical BM25 (k1 0.9, b 0.4) over each candidate, with term statistics from all passages of the query's domain."
            }
            SystemKind::RandomOrder => {
                "Candidates in a random order drawn from a seeded generator per query: the floor any learned system must beat."
            }
        }
    }

    /// Builds the system for a dataset (indexes, models, …).
    pub fn build(self, dataset: &Dataset, job: &JobContext) -> anyhow::Result<Box<dyn RankingSystem>> {
        Ok(match self {
            SystemKind::Bm25 => Box::new(Bm25System::build(dataset, job)?),
            SystemKind::RandomOrder => Box::new(RandomOrder { seed: RANDOM_ORDER_SEED }),
        })
    }
}

impl fmt::Display for SystemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The seed of the random-order baseline (fixed: the same order on every run).
pub const RANDOM_ORDER_SEED: u64 = 13;

/// BM25 with one index per domain over all of that domain's candidate passages.
pub struct Bm25System {
    indexes: BTreeMap<String, Bm25Index>,
}

impl Bm25System {
    pub fn build(dataset: &Dataset, job: &JobContext) -> anyhow::Result<Self> {
        let mut indexes = BTreeMap::new();
        for domain in dataset.domains() {
            job.check_cancelled()?;
            let mut seen = std::collections::HashSet::new();
            let passages: Vec<&str> = dataset
                .groups
                .iter()
                .filter(|g| g.domain == domain)
                .flat_map(|g| g.candidates.iter().map(|c| c.text.as_str()))
                .filter(|text| seen.insert(*text))
                .collect();
            job.log(format!("BM25 index for {domain}: {} distinct passages", passages.len()));
            indexes.insert(domain, Bm25Index::new(&passages, Bm25Params::default()));
        }
        Ok(Bm25System { indexes })
    }
}

impl RankingSystem for Bm25System {
    fn score(&self, group: &QueryGroup) -> Vec<f32> {
        match self.indexes.get(&group.domain) {
            Some(index) => group.candidates.iter().map(|c| index.score_text(&group.query, &c.text)).collect(),
            None => vec![0.0; group.candidates.len()],
        }
    }
}

/// Uniform random scores from a generator seeded per query.
pub struct RandomOrder {
    seed: u64,
}

impl RankingSystem for RandomOrder {
    fn score(&self, group: &QueryGroup) -> Vec<f32> {
        let mut rng = seeded_rng(self.seed, stable_hash(&group.id));
        group.candidates.iter().map(|_| rng.random::<f32>()).collect()
    }
}

/// One system's ranking of one query group.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// Candidate indices, best first.
    pub order: Vec<usize>,
    /// Scores by candidate index.
    pub scores: Vec<f32>,
    pub ndcg_at_10: f64,
}

impl Ranking {
    /// Orders candidates by score (descending). Ties are broken by a hash of the
    /// candidate id, never by file position: data files often list positives
    /// first, and a positional tie-break would reward a system for scoring nothing.
    pub fn from_scores(group: &QueryGroup, scores: Vec<f32>) -> Ranking {
        let tie_key = |i: usize| stable_hash(&format!("{}\u{1f}{}", group.id, group.candidates[i].id));
        let mut order: Vec<usize> = (0..group.candidates.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then_with(|| tie_key(a).cmp(&tie_key(b))));
        let relevances: Vec<u32> = order.iter().map(|&i| group.candidates[i].relevance).collect();
        let ideal: Vec<u32> = group.candidates.iter().map(|c| c.relevance).collect();
        Ranking { ndcg_at_10: ndcg_at_k(&relevances, &ideal, 10), order, scores }
    }

    /// 0-based rank of each candidate (inverse of `order`).
    pub fn rank_of(&self) -> Vec<usize> {
        let mut ranks = vec![0; self.order.len()];
        for (rank, &cand) in self.order.iter().enumerate() {
            ranks[cand] = rank;
        }
        ranks
    }
}

/// NDCG@k with linear gain (trec_eval's and ranx's default): `ranked` holds the
/// relevance of the ranked list, `judged` every judged relevance of the query.
/// A query without relevant candidates scores 0.
pub fn ndcg_at_k(ranked: &[u32], judged: &[u32], k: usize) -> f64 {
    let dcg = |rels: &mut dyn Iterator<Item = u32>| -> f64 {
        rels.take(k).enumerate().map(|(i, rel)| f64::from(rel) / ((i + 2) as f64).log2()).sum()
    };
    let mut ideal = judged.to_vec();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let ideal_dcg = dcg(&mut ideal.into_iter());
    if ideal_dcg == 0.0 {
        return 0.0;
    }
    dcg(&mut ranked.iter().copied()) / ideal_dcg
}

/// A system's rankings of every query group of a dataset.
pub struct SystemRun {
    pub system: SystemKind,
    /// Query id → ranking.
    pub rankings: HashMap<String, Ranking>,
    /// (domain, split) → mean NDCG@10 and the number of queries.
    pub mean_ndcg: BTreeMap<(String, Split), (f64, usize)>,
    pub seconds: f64,
}

impl SystemRun {
    /// Ranks every group of `dataset` with `system`, reporting progress to `job`.
    pub fn compute(system: SystemKind, dataset: &Dataset, job: &JobContext) -> anyhow::Result<SystemRun> {
        let started = std::time::Instant::now();
        job.progress(0.0, format!("building {}", system.name()));
        let ranker = system.build(dataset, job)?;
        let total = dataset.groups.len().max(1);
        let mut rankings = HashMap::with_capacity(dataset.groups.len());
        let mut sums: BTreeMap<(String, Split), (f64, usize)> = BTreeMap::new();
        for (i, group) in dataset.groups.iter().enumerate() {
            if i % 64 == 0 {
                job.check_cancelled()?;
                job.progress(i as f32 / total as f32, format!("{} / {total} queries", i));
            }
            let ranking = Ranking::from_scores(group, ranker.score(group));
            let cell = sums.entry((group.domain.clone(), group.split)).or_default();
            cell.0 += ranking.ndcg_at_10;
            cell.1 += 1;
            rankings.insert(group.id.clone(), ranking);
        }
        let mean_ndcg = sums.into_iter().map(|(key, (sum, n))| (key, (sum / n.max(1) as f64, n))).collect();
        let seconds = started.elapsed().as_secs_f64();
        job.log(format!("{}: ranked {} queries in {seconds:.2} s", system.name(), dataset.groups.len()));
        Ok(SystemRun { system, rankings, mean_ndcg, seconds })
    }

    /// Mean NDCG@10 over the given splits of one domain (query-weighted).
    pub fn domain_ndcg(&self, domain: &str, splits: &[Split]) -> Option<(f64, usize)> {
        let (sum, n) = splits
            .iter()
            .filter_map(|split| self.mean_ndcg.get(&(domain.to_string(), *split)))
            .fold((0.0, 0), |(sum, n), &(mean, count)| (sum + mean * count as f64, n + count));
        (n > 0).then(|| (sum / n as f64, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Candidate;

    fn group(rels: &[u32]) -> QueryGroup {
        QueryGroup {
            id: "q".into(),
            domain: "medical".into(),
            split: Split::Test,
            query: "ibuprofen dose".into(),
            query_entities: vec![],
            candidates: rels
                .iter()
                .enumerate()
                .map(|(i, &relevance)| Candidate { id: format!("c{i}"), text: format!("passage {i}"), relevance, entities: vec![] })
                .collect(),
            secondary_domain: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn ndcg_matches_hand_computed_values() {
        assert_eq!(ndcg_at_k(&[1, 0, 0], &[1, 0, 0], 10), 1.0);
        // relevant at rank 2: 1/log2(3) = 0.63093
        assert!((ndcg_at_k(&[0, 1, 0], &[1, 0, 0], 10) - 0.630_929_8).abs() < 1e-6);
        // graded: ranked [1, 2] vs ideal [2, 1]: (1 + 2/1.58496) / (2 + 1/1.58496)
        let expected = (1.0 + 2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at_k(&[1, 2], &[2, 1], 10) - expected).abs() < 1e-12);
        assert_eq!(ndcg_at_k(&[0, 0], &[0, 0], 10), 0.0);
        // a relevant passage below the cut-off gains nothing
        let mut ranked = vec![0; 11];
        ranked[10] = 1;
        assert_eq!(ndcg_at_k(&ranked, &ranked, 10), 0.0);
    }

    #[test]
    fn ties_do_not_favour_file_order() {
        // All-zero scores: the order must not simply be the file order (positives first).
        let tied: Vec<Vec<usize>> = (0..8)
            .map(|q| {
                let mut g = group(&[1, 0, 0, 0, 0, 0, 0, 0]);
                g.id = format!("q{q}");
                Ranking::from_scores(&g, vec![0.0; 8]).order
            })
            .collect();
        assert!(tied.iter().any(|order| order[0] != 0), "{tied:?}");
        let g = group(&[0, 1, 2]);
        let ranking = Ranking::from_scores(&g, vec![0.5, 0.1, 0.9]);
        assert_eq!(ranking.order, vec![2, 0, 1]);
        assert_eq!(ranking.rank_of(), vec![1, 2, 0]);
    }
}
