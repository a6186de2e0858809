//! Ranking systems the app compares, and their runs over a loaded dataset.
//!
//! Every system is a [`RankingSystem`]: it scores the candidates of a query
//! group, higher is better. A [`SystemRun`] holds one system's ranking of every
//! group, evaluated with `r2r::metrics` (NDCG@10, MRR@10, Recall@10 per query);
//! a [`SignificanceTable`] holds paired randomization tests between systems.
//! BM25 and the random order rank the whole dataset when it loads; the
//! generalist backbone ranks one split at a time on demand
//! ([`SystemRun::compute_generalist`]); systems of an experiment directory come
//! from its TREC run files (`crate::workbench::experiment_runs`). The panels only see
//! `SystemKind` and `SystemRun`. This module holds no UI code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::bm25::{Bm25Index, Bm25Params};
use crate::data::{Dataset, QueryGroup, Split};
use crate::train::jobs::report_steps;
use crate::metrics::significance::{randomization_test, TestResult};
use crate::metrics::{group_metric, rank, Evaluation, Metric};
use crate::train::jobs::JobContext;
use crate::util::{seeded_rng, stable_hash};

/// Scores the candidates of one query group.
pub trait RankingSystem: Send + Sync {
    /// One score per candidate, in `group.candidates` order; higher ranks first.
    fn score(&self, group: &QueryGroup) -> Vec<f32>;
}

/// The systems the app knows how to run or load.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SystemKind {
    Bm25,
    RandomOrder,
    /// The loaded backbone, no adapter (ranked per split on demand).
    Generalist,
    /// A system of an experiment directory (`runs/<name>.<split>.trec`), e.g. `r2r_lsr`.
    Experiment(String),
}

impl SystemKind {
    /// The systems built into the app, in the order the panel lists them.
    pub const BUILT_IN: [SystemKind; 3] = [SystemKind::Bm25, SystemKind::RandomOrder, SystemKind::Generalist];
    /// The systems ranked over the whole dataset as soon as it loads.
    pub const EAGER: [SystemKind; 2] = [SystemKind::Bm25, SystemKind::RandomOrder];

    pub fn name(&self) -> &str {
        match self {
            SystemKind::Bm25 => "BM25",
            SystemKind::RandomOrder => "Random order (seeded)",
            SystemKind::Generalist => "Generalist backbone",
            SystemKind::Experiment(name) => name,
        }
    }

    /// True for systems computed one split at a time when a panel asks for them.
    pub fn per_split(&self) -> bool {
        matches!(self, SystemKind::Generalist)
    }

    pub fn description(&self) -> &'static str {
        match self {
            SystemKind::Bm25 => {
                "Lexical BM25 (k1 0.9, b 0.4) over each candidate, with term statistics from all passages of the query's domain."
            }
            SystemKind::RandomOrder => {
                "Candidates in a random order drawn from a seeded generator per query: the floor any learned system must beat."
            }
            SystemKind::Generalist => {
                "The backbone reranker (default assets/backbone) with no adapter; score = yes − no logit margin of the \
                 Qwen3-Reranker prompt. Ranked per split in a background job, on demand."
            }
            SystemKind::Experiment(name) => experiment_system_description(name),
        }
    }

    /// Builds a whole-dataset system (indexes, …); per-split and experiment systems are built elsewhere.
    pub fn build(&self, dataset: &Dataset, job: &JobContext) -> anyhow::Result<Box<dyn RankingSystem>> {
        Ok(match self {
            SystemKind::Bm25 => Box::new(Bm25System::build(dataset, job)?),
            SystemKind::RandomOrder => Box::new(RandomOrder { seed: RANDOM_ORDER_SEED }),
            other => anyhow::bail!("{} is not a whole-dataset system", other.name()),
        })
    }
}

/// What each system of `r2r experiment` is (docs/experiment.md).
pub fn experiment_system_description(name: &str) -> &'static str {
    match name {
        "bm25" => "Experiment: BM25 over the domain's passages (all splits).",
        "generalist" => "Experiment: the backbone, no adapter.",
        "direct" => "Experiment: the direct fine-tune (one adapter on the pooled domains).",
        "single_domain" => "Experiment: the single-domain fine-tune of the query's true domain (OOD queries: the LSR's pick).",
        "r2r_no_eag" => "Experiment: the single-domain fine-tunes (no EAG stage 1) routed by the LSR.",
        "r2r_lsr" => "Experiment: the EAG experts routed by the Latent Semantic Router (the paper's R2R).",
        "r2r_mlp" => "Experiment: the EAG experts routed by the MLP router.",
        "r2r_oracle" => "Experiment: the EAG expert of the query's true domain (target domains only).",
        "r2r_soft" => "Experiment: the LSR-probability mixture of the experts' yes probabilities.",
        _ => "A system from the experiment's run files.",
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

/// The metrics every run is evaluated on (through [`crate::metrics::group_metric`]).
pub const METRICS: [Metric; 3] = [Metric::Ndcg(Some(10)), Metric::Mrr(Some(10)), Metric::Recall(Some(10))];

/// How the app names a metric (`NDCG@10`, `MRR@10`, `Recall@10`).
pub fn metric_title(metric: Metric) -> String {
    let name = match metric {
        Metric::Ndcg(_) => "NDCG",
        Metric::Mrr(_) => "MRR",
        Metric::Recall(_) => "Recall",
        Metric::Precision(_) => "Precision",
        Metric::Map(_) => "MAP",
    };
    metric.cutoff().map_or_else(|| name.to_string(), |k| format!("{name}@{k}"))
}

/// One system's ranking of one query group.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// Candidate indices, best first (the metrics' order: score descending,
    /// then candidate index ascending).
    pub order: Vec<usize>,
    /// Scores by candidate index.
    pub scores: Vec<f32>,
    /// This query's value of each of [`METRICS`].
    pub metrics: BTreeMap<Metric, f64>,
}

impl Ranking {
    /// One group ranked by `scores` (one per candidate, in `group.candidates`
    /// order) and evaluated like every run; None when the counts differ.
    pub fn of_group(group: &QueryGroup, scores: Vec<f32>) -> Option<Ranking> {
        let scores = HashMap::from([(group.id.clone(), scores)]);
        let mut run = SystemRun::from_scores(SystemKind::Generalist, &[group], scores, 0, std::time::Instant::now());
        run.rankings.remove(&group.id)
    }

    /// 0-based rank of each candidate (inverse of `order`).
    pub fn rank_of(&self) -> Vec<usize> {
        let mut ranks = vec![0; self.scores.len()];
        for (rank, &cand) in self.order.iter().enumerate() {
            ranks[cand] = rank;
        }
        ranks
    }

    pub fn metric(&self, metric: Metric) -> f64 {
        self.metrics.get(&metric).copied().unwrap_or(0.0)
    }
}

/// A system's rankings of the query groups of a dataset (all of them, one
/// split, or those of a run file), evaluated with [`crate::metrics`] against
/// the dataset's relevance labels.
pub struct SystemRun {
    pub system: SystemKind,
    /// Candidates a run file did not list (scored −∞), over all its queries.
    pub missing_candidates: usize,
    /// Query id → ranking.
    pub rankings: HashMap<String, Ranking>,
    pub evaluation: Evaluation,
    /// (domain, split) → the query ids of that cell, in id order.
    pub cells: BTreeMap<(String, Split), Vec<String>>,
    pub seconds: f64,
}

impl SystemRun {
    /// Ranks every group of `dataset` with a whole-dataset `system`, reporting progress to `job`.
    pub fn compute(system: SystemKind, dataset: &Dataset, job: &JobContext) -> anyhow::Result<SystemRun> {
        let started = std::time::Instant::now();
        report_steps(job, &format!("building {}", system.name()), 0, dataset.groups.len());
        let ranker = system.build(dataset, job)?;
        let total = dataset.groups.len();
        let mut scores: HashMap<String, Vec<f32>> = HashMap::with_capacity(total);
        for (i, group) in dataset.groups.iter().enumerate() {
            if i % 64 == 0 {
                job.check_cancelled()?;
                report_steps(job, "ranking queries", i, total);
            }
            scores.insert(group.id.clone(), ranker.score(group));
        }
        let groups: Vec<&QueryGroup> = dataset.groups.iter().collect();
        let run = SystemRun::from_scores(system, &groups, scores, 0, started);
        job.log(format!("{}: ranked and evaluated {total} queries in {:.2} s", run.system.name(), run.seconds));
        Ok(run)
    }

    /// Ranks one split's groups with the backbone at `model_dir` (no adapter):
    /// the yes − no logit margin through [`Reranker::score`](crate::model::Reranker::score)
    /// (prefix reuse per query), a few queries per call.
    ///
    /// With a `cache` directory, the scores are kept there per (backbone
    /// fingerprint, fingerprint of the split's queries and candidates, split), and
    /// a later ranking of the same split with the same backbone reads them back.
    pub fn compute_generalist(model_dir: &std::path::Path, dataset: &Dataset, split: Split, cache: Option<&std::path::Path>, job: &JobContext) -> anyhow::Result<SystemRun> {
        use anyhow::Context;
        let started = std::time::Instant::now();
        let groups: Vec<&QueryGroup> = dataset.groups.iter().filter(|g| g.split == split).collect();
        anyhow::ensure!(!groups.is_empty(), "the dataset has no {split} queries");
        let cache_file = match cache {
            Some(dir) => {
                report_steps(job, "fingerprinting the backbone and the data", 0, groups.len());
                let backbone = crate::train::features::backbone_fingerprint(model_dir).with_context(|| format!("fingerprinting the backbone {}", model_dir.display()))?;
                let mut data = String::new();
                for g in &groups {
                    data.push_str(&format!("{}\u{1f}{}\u{1f}", g.id, g.query));
                    for c in &g.candidates {
                        data.push_str(&format!("{}\u{1f}{}\u{1e}", c.id, c.text));
                    }
                }
                let key = crate::util::sha256_hex(format!("{backbone}\n{}\n{split}", crate::util::sha256_hex(data.as_bytes())).as_bytes());
                Some(dir.join("generalist").join(format!("{split}-{}.json", &key[..32])))
            }
            None => None,
        };
        if let Some(file) = cache_file.as_ref().filter(|f| f.is_file()) {
            let cached: Option<HashMap<String, Vec<f32>>> = std::fs::read_to_string(file).ok().and_then(|t| serde_json::from_str(&t).ok());
            match cached {
                Some(scores) if groups.iter().all(|g| scores.get(&g.id).is_some_and(|s| s.len() == g.candidates.len())) => {
                    let run = SystemRun::from_scores(SystemKind::Generalist, &groups, scores, 0, started);
                    job.log(format!("Generalist backbone: {} {split} queries from the cache {}", groups.len(), file.display()));
                    return Ok(run);
                }
                _ => job.log(format!("ignoring the unreadable cache {}", file.display())),
            }
        }
        report_steps(job, "loading the backbone", 0, groups.len());
        let reranker = crate::model::Reranker::load(model_dir, &crate::model::LoadOptions::default())
            .with_context(|| format!("loading the backbone {}", model_dir.display()))?;
        job.log(format!("backbone {}; {} {split} queries", model_dir.display(), groups.len()));
        let options = crate::model::ScoreOptions::default();
        let mut scores: HashMap<String, Vec<f32>> = HashMap::with_capacity(groups.len());
        for (n, batch) in groups.chunks(GENERALIST_GROUPS_PER_CALL).enumerate() {
            job.check_cancelled()?;
            report_steps(job, &format!("scoring {split}"), n * GENERALIST_GROUPS_PER_CALL, groups.len());
            let requests: Vec<crate::model::ScoreRequest> = batch
                .iter()
                .flat_map(|g| g.candidates.iter().map(|c| crate::model::ScoreRequest { instruction: None, query: g.query.clone(), document: c.text.clone() }))
                .collect();
            let mut pairs = reranker.score(&requests, None, &options)?.into_iter();
            for group in batch {
                let margins = pairs.by_ref().take(group.candidates.len()).map(|p| p.yes_logit - p.no_logit).collect();
                scores.insert(group.id.clone(), margins);
            }
        }
        if let Some(file) = &cache_file {
            let written = serde_json::to_vec(&scores).map_err(anyhow::Error::from).and_then(|bytes| crate::util::atomic_write(file, &bytes));
            match written {
                Ok(()) => job.log(format!("cached the scores in {}", file.display())),
                Err(err) => job.log(format!("could not cache the scores: {err:#}")),
            }
        }
        let run = SystemRun::from_scores(SystemKind::Generalist, &groups, scores, 0, started);
        job.log(format!("Generalist backbone: ranked and evaluated {} {split} queries in {:.2} s", groups.len(), run.seconds));
        Ok(run)
    }

    /// A run from per-candidate scores (query id → one score per candidate, in
    /// `group.candidates` order) of `groups`; groups without scores are left out. Each group is
    /// ranked and evaluated by index ([`crate::metrics::formulas`]: ties keep the file order), as
    /// experiments and `r2r backbone eval` evaluate it.
    pub fn from_scores(system: SystemKind, groups: &[&QueryGroup], mut scores: HashMap<String, Vec<f32>>, missing_candidates: usize, started: std::time::Instant) -> SystemRun {
        let groups: Vec<&QueryGroup> = groups.iter().copied().filter(|g| scores.get(&g.id).is_some_and(|s| s.len() == g.candidates.len())).collect();
        let mut per_query = BTreeMap::new();
        let mut rankings = HashMap::with_capacity(groups.len());
        let mut cells: BTreeMap<(String, Split), Vec<String>> = BTreeMap::new();
        for group in &groups {
            let scores = scores.remove(group.id.as_str()).unwrap_or_default();
            let relevance: Vec<u32> = group.candidates.iter().map(|c| c.relevance).collect();
            let metrics: BTreeMap<Metric, f64> = METRICS.iter().map(|&m| (m, group_metric(m, &scores, &relevance))).collect();
            per_query.insert(group.id.clone(), metrics.clone());
            rankings.insert(group.id.clone(), Ranking { order: rank(&scores), scores, metrics });
            cells.entry((group.domain.clone(), group.split)).or_default().push(group.id.clone());
        }
        cells.values_mut().for_each(|ids| ids.sort());
        let evaluation = Evaluation::from_per_query(&METRICS, per_query);
        SystemRun { system, missing_candidates, rankings, evaluation, cells, seconds: started.elapsed().as_secs_f64() }
    }

    /// The query ids of one domain over the given splits, in a fixed order.
    pub fn query_ids(&self, domain: &str, splits: &[Split]) -> Vec<&str> {
        splits
            .iter()
            .filter_map(|split| self.cells.get(&(domain.to_string(), *split)))
            .flat_map(|ids| ids.iter().map(String::as_str))
            .collect()
    }

    /// One metric's values for these queries (0 for a query the run lacks).
    pub fn values(&self, metric: Metric, query_ids: &[&str]) -> Vec<f64> {
        query_ids.iter().map(|q| self.evaluation.per_query.get(*q).and_then(|m| m.get(&metric)).copied().unwrap_or(0.0)).collect()
    }

    /// Mean of a metric over one domain's queries of the given splits, and the number of queries.
    pub fn domain_mean(&self, metric: Metric, domain: &str, splits: &[Split]) -> Option<(f64, usize)> {
        let values = self.values(metric, &self.query_ids(domain, splits));
        (!values.is_empty()).then(|| (values.iter().sum::<f64>() / values.len() as f64, values.len()))
    }
}

/// Queries per [`Reranker::score`](crate::model::Reranker::score) call of the generalist.
const GENERALIST_GROUPS_PER_CALL: usize = 8;

/// Permutations and seed of the app's randomization tests.
pub const SIGNIFICANCE_PERMUTATIONS: usize = crate::metrics::significance::DEFAULT_PERMUTATIONS;
pub const SIGNIFICANCE_SEED: u64 = 42;

/// Which comparison a test answers: systems `a` and `b` (a < b), one domain,
/// one split or all (`None`), one metric.
type TestKey = (SystemKind, SystemKind, String, Option<Split>, Metric);

/// Paired randomization tests between every two systems, per domain, per split
/// (and over all splits), per metric; computed once all runs are ready.
#[derive(Default)]
pub struct SignificanceTable {
    tests: BTreeMap<TestKey, TestResult>,
}

impl SignificanceTable {
    pub fn compute(runs: &[Arc<SystemRun>], job: &JobContext) -> anyhow::Result<SignificanceTable> {
        let started = std::time::Instant::now();
        let mut tests = BTreeMap::new();
        let Some(first) = runs.first() else { return Ok(SignificanceTable { tests }) };
        let domains: BTreeSet<&str> = first.cells.keys().map(|(d, _)| d.as_str()).collect();
        let split_choices: Vec<Option<Split>> = std::iter::once(None).chain(Split::ALL.map(Some)).collect();
        let pairs: Vec<(&Arc<SystemRun>, &Arc<SystemRun>)> =
            runs.iter().enumerate().flat_map(|(i, a)| runs[i + 1..].iter().map(move |b| (a, b))).collect();
        let total = pairs.len() * domains.len();
        for (n, (domain, (a, b))) in domains.iter().flat_map(|d| pairs.iter().map(move |p| (d, p))).enumerate() {
            job.check_cancelled()?;
            report_steps(job, "randomization tests", n, total);
            let (a, b) = if a.system <= b.system { (a, b) } else { (b, a) };
            for &split in &split_choices {
                let splits = split.map_or_else(|| Split::ALL.to_vec(), |s| vec![s]);
                let ids = a.query_ids(domain, &splits);
                if ids.is_empty() {
                    continue;
                }
                for metric in METRICS {
                    let result = randomization_test(&a.values(metric, &ids), &b.values(metric, &ids), SIGNIFICANCE_PERMUTATIONS, SIGNIFICANCE_SEED)?;
                    tests.insert((a.system.clone(), b.system.clone(), domain.to_string(), split, metric), result);
                }
            }
        }
        job.log(format!(
            "{} randomization tests ({SIGNIFICANCE_PERMUTATIONS} permutations each) in {:.2} s",
            tests.len(),
            started.elapsed().as_secs_f64()
        ));
        Ok(SignificanceTable { tests })
    }

    /// The test of `other` against `reference` (statistic = mean of other − reference).
    pub fn compare(&self, reference: &SystemKind, other: &SystemKind, domain: &str, split: Option<Split>, metric: Metric) -> Option<TestResult> {
        if reference <= other {
            self.tests.get(&(reference.clone(), other.clone(), domain.to_string(), split, metric)).copied()
        } else {
            let result = self.tests.get(&(other.clone(), reference.clone(), domain.to_string(), split, metric))?;
            Some(TestResult { statistic: -result.statistic, p_value: result.p_value })
        }
    }

    pub fn len(&self) -> usize {
        self.tests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Candidate;
    use std::sync::atomic::AtomicBool;

    fn group(id: &str, domain: &str, query: &str, candidates: &[(&str, u32)]) -> QueryGroup {
        QueryGroup {
            id: id.into(),
            domain: domain.into(),
            split: Split::Test,
            query: query.into(),
            query_entities: vec![],
            candidates: candidates
                .iter()
                .enumerate()
                .map(|(i, &(text, relevance))| Candidate { id: format!("c{i}"), text: text.into(), relevance, entities: vec![] })
                .collect(),
            secondary_domain: None,
            meta: Default::default(),
        }
    }

    fn job() -> JobContext {
        JobContext::new(crossbeam_channel::unbounded().0, Arc::new(AtomicBool::new(false)), None)
    }

    fn dataset() -> Dataset {
        let mut groups = Vec::new();
        for i in 0..12 {
            // The relevant passage shares the query's words, and sits last in the file.
            groups.push(group(
                &format!("m{i:02}"),
                "medical",
                &format!("ibuprofen dose number{i}"),
                &[("knee surgery rehabilitation", 0), ("influenza vaccine", 0), (&format!("ibuprofen dose number{i} for adults"), 1)],
            ));
        }
        Dataset { groups, ..Default::default() }
    }

    #[test]
    fn runs_are_ranked_and_evaluated_by_the_metrics_module() {
        let data = dataset();
        let bm25 = SystemRun::compute(SystemKind::Bm25, &data, &job()).unwrap();
        let ranking = &bm25.rankings["m03"];
        assert_eq!(ranking.order[0], 2, "the matching passage ranks first");
        assert_eq!(ranking.rank_of()[2], 0);
        assert_eq!(ranking.metric(Metric::Ndcg(Some(10))), 1.0);
        assert_eq!(bm25.domain_mean(Metric::Mrr(Some(10)), "medical", &[Split::Test]), Some((1.0, 12)));
        assert_eq!(bm25.domain_mean(Metric::Mrr(Some(10)), "medical", &[Split::Train]), None);
        // The random baseline ranks the relevant passage lower on some queries; its
        // per-query values are exactly what `metrics::group_metric` gives for its order.
        let random = SystemRun::compute(SystemKind::RandomOrder, &data, &job()).unwrap();
        let (mean, n) = random.domain_mean(Metric::Ndcg(Some(10)), "medical", &[Split::Test]).unwrap();
        assert_eq!(n, 12);
        assert!(mean < 1.0, "{mean}");
        for (id, r) in &random.rankings {
            let rank = r.rank_of()[2];
            assert!((r.metric(Metric::Mrr(Some(10))) - 1.0 / (rank + 1) as f64).abs() < 1e-12, "{id}");
        }

        let table = SignificanceTable::compute(&[Arc::new(random), Arc::new(bm25)], &job()).unwrap();
        let metric = Metric::Ndcg(Some(10));
        let forward = table.compare(&SystemKind::Bm25, &SystemKind::RandomOrder, "medical", Some(Split::Test), metric).unwrap();
        let backward = table.compare(&SystemKind::RandomOrder, &SystemKind::Bm25, "medical", Some(Split::Test), metric).unwrap();
        assert!(forward.statistic < 0.0 && (forward.statistic + (1.0 - mean)).abs() < 1e-12, "{forward:?}");
        assert_eq!((backward.statistic, backward.p_value), (-forward.statistic, forward.p_value));
        assert!(forward.p_value < 0.05, "{forward:?}");
        assert!(table.compare(&SystemKind::Bm25, &SystemKind::RandomOrder, "medical", None, metric).is_some());
        assert!(table.compare(&SystemKind::Bm25, &SystemKind::RandomOrder, "medical", Some(Split::Dev), metric).is_none());
        assert!(table.compare(&SystemKind::Bm25, &SystemKind::RandomOrder, "legal", None, metric).is_none());
    }
}
