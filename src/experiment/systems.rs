//! The systems of the comparison and their evaluation. Training runs once (`run_training` with
//! stage 1, experts and baselines into `OUT/training`); then three steps, each testable alone:
//! `score_query` scores every test query once per adapter it needs (backbone, direct, each
//! single-domain adapter, each expert), [`compose`] makes the systems from those scores, and
//! [`aggregate`] averages their per-query metrics per domain and over domains (keys: [`System`],
//! [`EvalSplit`], [`Metric`]):
//!
//! | system | scores of a query |
//! |---|---|
//! | `bm25` | BM25 over the domain's passages |
//! | `generalist` | the backbone, no adapter |
//! | `direct` | the direct fine-tune (pooled domains) |
//! | `single_domain` | the single-domain fine-tune of the query's true domain (OOD queries: the LSR's pick) |
//! | `r2r_no_eag` | the single-domain fine-tunes (fresh adapters, no stage 1) routed by the LSR |
//! | `r2r_lsr` | the EAG experts routed by the Latent Semantic Router (the paper's R2R) |
//! | `r2r_mlp` | the EAG experts routed by the MLP router |
//! | `r2r_oracle` | the EAG expert of the true domain (target domains only) |
//! | `r2r_soft` | the LSR-probability mixture of the experts' yes probabilities |
//!
//! Splits: `test` (seen entities), `test_unseen`, and `ood` (the test split of the OOD domains,
//! routed like any query: forgetting).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::bench::{Bench, SplitDomain};
pub use super::keys::{Ablation, EvalSplit, MetricMeans, RouterName, System, SystemTable};
use super::config::ExperimentConfig;
use super::score_cache::{self, Keyed, ScoreCache};
use super::studies::{run_studies, Studies};
use crate::bm25::{Bm25Index, Bm25Params};
use crate::data::{QueryGroup, Split};
use crate::metrics::significance::{randomization_test, TestResult};
use crate::metrics::{group_metric, Metric, Run};
use crate::model::scorer::yes_probability;
use crate::model::{LoraAdapter, Reranker};
use crate::routing::{argmax, routed_scores, Router, RouterKind, RoutingMode, RoutingReport, TrainedRouter};
use crate::train::checkpoint::load_published_adapter;
use crate::train::expert::adapter_fingerprint;
use crate::train::features::query_features;
use crate::train::groups::{encode_groups, EncodedGroup};
use crate::train::jobs::Progress;
use crate::train::pipeline::{load_reranker, Fingerprints};
use crate::train::{run_training, JobContext, JobEvent, RunDir, RunSummary, Stage};

/// The reported metrics, in table order.
pub const METRICS: [Metric; 7] = [
    Metric::Ndcg(Some(5)),
    Metric::Ndcg(Some(10)),
    Metric::Mrr(Some(5)),
    Metric::Mrr(Some(10)),
    Metric::Recall(Some(5)),
    Metric::Recall(Some(10)),
    Metric::Precision(Some(5)),
];

/// The metric of the significance tests and of the misroute analysis.
pub const KEY_METRIC: Metric = Metric::Ndcg(Some(10));

/// The domain key of macro averages.
pub const MACRO: &str = "macro";

/// One misrouted query of the LSR (R2R) on a target-domain split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Misroute {
    pub query: String,
    pub split: EvalSplit,
    pub domain: String,
    pub chosen: String,
    /// NDCG@10 under the chosen expert and under the correct one.
    pub chosen_ndcg_at_10: f64,
    pub correct_ndcg_at_10: f64,
}

/// The misroute analysis of the LSR over the target-domain splits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MisrouteImpact {
    pub queries: usize,
    pub misrouted: usize,
    /// Mean NDCG@10 over the misrouted queries under the chosen and the correct expert.
    pub mean_chosen: f64,
    pub mean_correct: f64,
    /// Σ (correct − chosen) / all routed queries: the NDCG@10 that misrouting costs the mean.
    pub aggregate_cost: f64,
    pub items: Vec<Misroute>,
}

/// One paired test (`b` = R2R, `a` = the baseline; statistic = mean(b − a) of NDCG@10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Significance {
    pub system: System,
    pub baseline: System,
    pub split: EvalSplit,
    pub domain: String,
    pub metric: Metric,
    pub queries: usize,
    pub mean_difference: f64,
    pub p_value: f64,
}

/// Everything `r2r experiment` measures (written as results.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResults {
    /// system → split → domain (and `macro`) → metric → mean.
    #[serde(serialize_with = "super::keys::metric_tables")]
    pub systems: SystemTable,
    /// router → routing report on the target domains' seen-entity test split.
    pub routing: BTreeMap<RouterName, RoutingReport>,
    /// Where the LSR sends the OOD queries: OOD domain → expert → count.
    pub ood_routing: BTreeMap<String, BTreeMap<String, usize>>,
    pub significance: Vec<Significance>,
    pub misroute: MisrouteImpact,
    /// Queries evaluated per split and domain.
    pub queries: BTreeMap<EvalSplit, BTreeMap<String, usize>>,
    pub config: ExperimentConfig,
    /// data, backbone, config (from the training run) and `adapter:<name>` fingerprints.
    pub fingerprints: BTreeMap<String, String>,
    /// Router sweep: router → split → domain (and `macro`) → NDCG@10 of the experts under that
    /// router's hard choice (target domains).
    pub router_sweep: BTreeMap<RouterName, SplitDomain>,
    /// Ablations (when enabled): `mask_intensity:<x>` → split → domain (and `macro`) → NDCG@10 of
    /// R2R (LSR-routed experts trained with that stage-1 masking intensity).
    pub ablations: BTreeMap<Ablation, SplitDomain>,
    /// LoRA rank, per-type masking, many domains, abstraction coverage, unseen domain (when enabled).
    #[serde(default)]
    pub studies: Studies,
    /// Seconds: training stages, features, evaluation, studies, total.
    pub timings: BTreeMap<String, f64>,
    pub training: RunSummary,
    /// TREC runs per system and split (written as files, not in the JSON).
    #[serde(skip)]
    pub runs: BTreeMap<(System, EvalSplit), Run>,
}

/// A split and domain's evaluated groups.
pub struct EvalSet {
    pub split: EvalSplit,
    pub domain: String,
    /// Index of the true domain among the experts (None for OOD).
    pub truth: Option<usize>,
    pub groups: Vec<QueryGroup>,
}

fn eval_sets(config: &ExperimentConfig, dataset: &crate::data::Dataset) -> Vec<EvalSet> {
    let c = &config.train;
    let limit = config.experiment.max_eval_queries;
    let take = |domain: &str, split: Split| -> Vec<QueryGroup> {
        let it = dataset.select(Some(domain), Some(split)).cloned();
        if limit == 0 {
            it.collect()
        } else {
            it.take(limit).collect()
        }
    };
    let mut sets = Vec::new();
    for (split, name) in [(Split::Test, EvalSplit::Test), (Split::TestUnseen, EvalSplit::TestUnseen)] {
        for (i, domain) in c.data.domains.iter().enumerate() {
            sets.push(EvalSet { split: name, domain: domain.clone(), truth: Some(i), groups: take(domain, split) });
        }
    }
    for domain in c.data.ood_domains.iter().filter(|d| !c.data.domains.contains(d)) {
        sets.push(EvalSet { split: EvalSplit::Ood, domain: domain.clone(), truth: None, groups: take(domain, Split::Test) });
    }
    sets.retain(|s| !s.groups.is_empty());
    sets
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Per-domain means of per-query values, plus their macro average.
pub fn with_macro(values: BTreeMap<String, Vec<f64>>) -> BTreeMap<String, f64> {
    let mut means: BTreeMap<String, f64> = values.into_iter().map(|(d, v)| (d, mean(&v))).collect();
    let macro_avg = mean(&means.values().copied().collect::<Vec<_>>());
    means.insert(MACRO.into(), macro_avg);
    means
}

/// Per-query metric rows: system → split → domain → one row per query.
pub type PerQuery = BTreeMap<System, BTreeMap<EvalSplit, BTreeMap<String, Vec<MetricMeans>>>>;

/// One query's routing: the LSR's probabilities, the LSR's and the MLP's picks, the true domain.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryRouting {
    pub p_lsr: Vec<f32>,
    pub lsr: usize,
    pub mlp: usize,
    pub truth: Option<usize>,
}

impl QueryRouting {
    /// The single-domain fine-tune of the query: its true domain's, else the LSR's pick.
    pub fn single(&self) -> usize {
        self.truth.unwrap_or(self.lsr)
    }

    /// Which of `n` experts and of `n` single-domain fine-tunes some system needs (all when `all`).
    pub fn wanted(&self, n: usize, all: bool) -> (Vec<bool>, Vec<bool>) {
        let experts = (0..n).map(|k| all || k == self.lsr || k == self.mlp || self.truth == Some(k)).collect();
        let singles = (0..n).map(|k| all || k == self.lsr || k == self.single()).collect();
        (experts, singles)
    }
}

/// One query's scores under each adapter (yes-vs-no margins; BM25 scores), each computed once;
/// `None`: an adapter that no system of this query picks.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryScores {
    pub bm25: Vec<f32>,
    pub generalist: Vec<f32>,
    pub direct: Vec<f32>,
    pub experts: Vec<Option<Vec<f32>>>,
    pub singles: Vec<Option<Vec<f32>>>,
}

/// The trained adapters of the comparison (experts and single-domain fine-tunes in domain order), each
/// with its fingerprint (the score cache's key).
struct Adapters {
    experts: Vec<(String, LoraAdapter)>,
    singles: Vec<(String, LoraAdapter)>,
    direct: (String, LoraAdapter),
}

/// Scores one query under the adapters its routing needs (every adapter when `all`), checking for
/// cancellation before each adapter's forward pass.
#[allow(clippy::too_many_arguments)]
fn score_query(
    reranker: &Reranker,
    cache: &ScoreCache,
    adapters: &Adapters,
    bm25: &Bm25Index,
    group: &QueryGroup,
    enc: &EncodedGroup,
    routing: &QueryRouting,
    all: bool,
    ctx: &JobContext,
) -> Result<QueryScores> {
    let margins = |a: Option<&(String, LoraAdapter)>| {
        ctx.check_cancelled()?;
        cache.margins(reranker, a.map(|(fingerprint, adapter)| Keyed { fingerprint, adapter }), enc)
    };
    let (wanted_experts, wanted_singles) = routing.wanted(adapters.experts.len(), all);
    let score = |list: &[(String, LoraAdapter)], wanted: &[bool]| -> Result<Vec<Option<Vec<f32>>>> {
        list.iter().zip(wanted).map(|(a, &w)| if w { margins(Some(a)).map(Some) } else { Ok(None) }).collect()
    };
    Ok(QueryScores {
        experts: score(&adapters.experts, &wanted_experts)?,
        singles: score(&adapters.singles, &wanted_singles)?,
        bm25: group.candidates.iter().map(|c| bm25.score_text(&group.query, &c.text)).collect(),
        generalist: margins(None)?,
        direct: margins(Some(&adapters.direct))?,
    })
}

/// The systems' scores of one query from its adapter scores and routing; `r2r_oracle` only with a
/// true domain, `r2r_soft` only when `soft` (every expert scored). An adapter a system needs but
/// that was not scored is an error.
pub fn compose(scores: &QueryScores, routing: &QueryRouting, soft: bool) -> Result<Vec<(System, Vec<f32>)>> {
    let pick = |list: &[Option<Vec<f32>>], k: usize, what: &str| list.get(k).cloned().flatten().with_context(|| format!("{what} {k} was not scored"));
    let mut systems = vec![
        (System::Bm25, scores.bm25.clone()),
        (System::Generalist, scores.generalist.clone()),
        (System::Direct, scores.direct.clone()),
        (System::SingleDomain, pick(&scores.singles, routing.single(), "single-domain fine-tune")?),
        (System::R2rNoEag, pick(&scores.singles, routing.lsr, "single-domain fine-tune")?),
        (System::R2rLsr, pick(&scores.experts, routing.lsr, "expert")?),
        (System::R2rMlp, pick(&scores.experts, routing.mlp, "expert")?),
    ];
    if let Some(t) = routing.truth {
        systems.push((System::R2rOracle, pick(&scores.experts, t, "expert")?));
    }
    if soft {
        let probs: Vec<Vec<f32>> =
            (0..scores.experts.len()).map(|k| Ok(pick(&scores.experts, k, "expert")?.iter().map(|&m| yes_probability(m, 0.0)).collect())).collect::<Result<_>>()?;
        systems.push((System::R2rSoft, routed_scores(&routing.p_lsr, &probs, RoutingMode::Soft)?));
    }
    Ok(systems)
}

/// Every reported metric of one ranking.
pub fn metric_row(scores: &[f32], relevance: &[u32]) -> MetricMeans {
    METRICS.iter().map(|&m| (m, group_metric(m, scores, relevance))).collect()
}

/// Per-domain means of the per-query rows, plus the macro average over domains.
pub fn aggregate(per_query: &PerQuery) -> SystemTable {
    let means = |rows: &mut dyn Iterator<Item = &MetricMeans>| -> MetricMeans {
        let rows: Vec<&MetricMeans> = rows.collect();
        METRICS.iter().map(|m| (*m, mean(&rows.iter().map(|r| r[m]).collect::<Vec<_>>()))).collect()
    };
    let by_split = |domains: &BTreeMap<String, Vec<MetricMeans>>| {
        let mut by_domain: BTreeMap<String, MetricMeans> = domains.iter().map(|(d, rows)| (d.clone(), means(&mut rows.iter()))).collect();
        let macro_avg = means(&mut by_domain.values());
        by_domain.insert(MACRO.into(), macro_avg);
        by_domain
    };
    per_query.iter().map(|(system, splits)| (*system, splits.iter().map(|(split, domains)| (*split, by_split(domains))).collect())).collect()
}

/// Trains (or resumes) the adapters, then evaluates every system; `out` receives the training run.
pub fn run_experiment(config: &ExperimentConfig, out: &Path, ctx: &JobContext) -> Result<ExperimentResults> {
    config.validate()?;
    ctx.check_cancelled()?;
    let started = Instant::now();
    let mut timings = BTreeMap::new();
    let mut tc = config.train.clone();
    tc.output.dir = out.join("training");
    tc.run.stages = vec![Stage::Stage1, Stage::Experts, Stage::Baselines];
    tc.stage1.skip = false;
    tc.baselines.direct = true;
    tc.baselines.single_domain = true;
    tc.model.path = crate::model::default_backbone::resolve(&tc.model.path);
    crate::model::checkpoint::locate(&tc.model.path).with_context(|| {
        format!("no model at {} (train.model.path): pass --model DIR (e.g. a Qwen3-Reranker directory) or set [train.model] path", tc.model.path.display())
    })?;
    let training = run_training(&tc, ctx).context("training the adapters")?;
    for (stage, seconds) in &training.stage_seconds {
        timings.insert(format!("train:{stage}"), *seconds);
    }
    let run = RunDir::new(&tc.output.dir);
    let reranker = load_reranker(&tc)?;
    let (base, device) = (reranker.config().clone(), reranker.device().clone());
    let labels = tc.data.domains.clone();
    let load = |dir: std::path::PathBuf| load_published_adapter(&dir, &base, &device).with_context(|| format!("loading the adapter {}", dir.display()));
    let experts: Vec<LoraAdapter> = labels.iter().map(|d| load(run.expert_dir(d))).collect::<Result<_>>()?;
    let singles: Vec<LoraAdapter> = labels.iter().map(|d| load(run.baseline_dir(&format!("single-{d}")))).collect::<Result<_>>()?;
    let direct = load(run.baseline_dir("direct"))?;

    let mut fingerprints = BTreeMap::new();
    let fp_text = std::fs::read_to_string(run.fingerprints_path()).with_context(|| format!("reading {}", run.fingerprints_path().display()))?;
    let fp: Fingerprints = serde_json::from_str(&fp_text)?;
    fingerprints.insert("data".to_string(), fp.data);
    fingerprints.insert("backbone".to_string(), fp.backbone);
    fingerprints.insert("config".to_string(), fp.config);
    let keyed = |a: LoraAdapter| -> Result<(String, LoraAdapter)> { Ok((adapter_fingerprint(&a)?, a)) };
    let experts: Vec<(String, LoraAdapter)> = experts.into_iter().map(keyed).collect::<Result<_>>()?;
    let singles: Vec<(String, LoraAdapter)> = singles.into_iter().map(keyed).collect::<Result<_>>()?;
    let direct = keyed(direct)?;
    for (d, (fingerprint, _)) in labels.iter().zip(&experts) {
        fingerprints.insert(format!("adapter:expert-{d}"), fingerprint.clone());
    }
    for (d, (fingerprint, _)) in labels.iter().zip(&singles) {
        fingerprints.insert(format!("adapter:single-{d}"), fingerprint.clone());
    }
    fingerprints.insert("adapter:direct".to_string(), direct.0.clone());
    let cache_context = format!(
        "score cache v1; r2r {}; backbone {}; precision {:?}; device {}; bf16 kernel {}",
        env!("CARGO_PKG_VERSION"),
        fingerprints["backbone"],
        tc.model.precision,
        if device.is_cpu() { "cpu" } else { "gpu" },
        crate::model::bf16_matmul::Bf16Kernel::selected().name()
    );
    let cache = ScoreCache::open(&out.join(score_cache::FILE), &cache_context, !tc.output.resume)?;
    if cache.loaded > 0 || cache.skipped_lines > 0 {
        ctx.log(format!("experiment: {} scores cached in {} ({} unreadable lines skipped)", cache.loaded, out.join(score_cache::FILE).display(), cache.skipped_lines));
    }

    // Routers on the frozen backbone's query states of the training queries (as `r2r train`).
    let features_started = Instant::now();
    let dataset = crate::data::load(&tc.data.path, &crate::data::LoadOptions::default()).context("train.data.path")?;
    let unseen = &config.experiment.unseen_domain;
    anyhow::ensure!(
        unseen.is_empty() || dataset.select(Some(unseen.as_str()), Some(Split::Test)).next().is_some(),
        "experiment.unseen_domain: `{unseen}` has no test queries in {} (domains: {:?})",
        tc.data.path.display(),
        dataset.domains()
    );
    let mut train_groups: Vec<&QueryGroup> = Vec::new();
    let mut y_train = Vec::new();
    for (i, d) in labels.iter().enumerate() {
        let it = dataset.select(Some(d.as_str()), Some(Split::Train));
        let groups: Vec<&QueryGroup> = if tc.router.max_train_queries == 0 { it.collect() } else { it.take(tc.router.max_train_queries).collect() };
        y_train.extend(std::iter::repeat_n(i, groups.len()));
        train_groups.extend(groups);
    }
    ctx.log(format!("experiment: router features of {} training queries", train_groups.len()));
    let x_train = query_features(&reranker, &train_groups, Some(ctx))?;
    let backbone = crate::routing::BackboneRef { path: tc.model.path.clone(), sha256: fingerprints.get("backbone").cloned() };
    let lsr_trained = TrainedRouter::train_checked(RouterKind::Linear, &labels, &x_train, &y_train, &tc.router.train, Some(backbone), &mut || ctx.check_cancelled())?;
    // The LSR is also published where `r2r train` puts its router (OUT/training/router), so the
    // Router panel, `r2r route`, `r2r serve` and `r2r export serving` open the experiment's run.
    crate::train::checkpoint::publish_dir(&run.router_dir(), |staging| lsr_trained.save(staging)).context("saving the LSR")?;
    let lsr = Router::Trained(lsr_trained);
    let mlp_kind = RouterKind::Mlp { hidden: tc.router.mlp_hidden };
    let mlp = Router::Trained(TrainedRouter::train_checked(mlp_kind, &labels, &x_train, &y_train, &tc.router.train, None, &mut || ctx.check_cancelled())?);
    let mut sweep = vec![lsr.clone(), mlp.clone(), Router::Random { labels: labels.clone(), seed: tc.optim.seed }, Router::Oracle { labels: labels.clone() }];
    sweep.extend((0..labels.len()).map(|expert| Router::Static { labels: labels.clone(), expert }));
    let sweep: Vec<(RouterName, Router)> = sweep.into_iter().map(|r| (r.name(), r)).collect();
    timings.insert("router_features".into(), features_started.elapsed().as_secs_f64());

    // Score every evaluated query once per adapter it needs, compose the systems, aggregate.
    let eval_started = Instant::now();
    let sets = eval_sets(config, &dataset);
    let total: usize = sets.iter().map(|s| s.groups.len()).sum();
    let all = config.experiment.score_all_adapters;
    let adapters = Adapters { experts, singles, direct };
    let mut done = 0usize;
    let mut per_query: PerQuery = BTreeMap::new();
    let mut runs: BTreeMap<(System, EvalSplit), Run> = BTreeMap::new();
    let mut route_truth: BTreeMap<RouterName, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    let mut ood_routing: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut misroutes = Vec::new();
    let mut routed_queries = 0usize;
    let mut misroute_cost = 0.0;
    let mut queries: BTreeMap<EvalSplit, BTreeMap<String, usize>> = BTreeMap::new();
    let mut sweep_values: BTreeMap<RouterName, BTreeMap<EvalSplit, BTreeMap<String, Vec<f64>>>> = BTreeMap::new();
    let mut lsr_picks: Vec<Vec<usize>> = Vec::new();
    let mut set_features: Vec<Vec<Vec<f32>>> = Vec::new();
    let mut set_encoded = Vec::new();
    let bm25_params = Bm25Params::default();
    for set in &sets {
        ctx.check_cancelled()?;
        queries.entry(set.split).or_default().insert(set.domain.clone(), set.groups.len());
        let refs: Vec<&QueryGroup> = set.groups.iter().collect();
        let ids: Vec<String> = refs.iter().map(|g| g.id.clone()).collect();
        let x = query_features(&reranker, &refs, Some(ctx))?;
        let truth: Option<Vec<usize>> = set.truth.map(|t| vec![t; refs.len()]);
        let p_lsr = lsr.probabilities(&x, &ids, truth.as_deref())?;
        let p_mlp = mlp.probabilities(&x, &ids, truth.as_deref())?;
        let routings: Vec<QueryRouting> =
            p_lsr.iter().zip(&p_mlp).map(|(p, m)| QueryRouting { p_lsr: p.clone(), lsr: argmax(p), mlp: argmax(m), truth: set.truth }).collect();
        lsr_picks.push(routings.iter().map(|r| r.lsr).collect());
        // Every router's hard picks, once per set: the routing reports (test split) and the sweep.
        let picks: Vec<(&RouterName, Vec<usize>)> = match &truth {
            Some(t) => sweep.iter().map(|(name, r)| Ok((name, r.probabilities(&x, &ids, Some(t))?.iter().map(|p| argmax(p)).collect()))).collect::<Result<_>>()?,
            None => Vec::new(),
        };
        match &truth {
            Some(t) if set.split == EvalSplit::Test => {
                for (name, predicted) in &picks {
                    let entry = route_truth.entry((*name).clone()).or_default();
                    entry.0.extend(t);
                    entry.1.extend(predicted);
                }
            }
            Some(_) => {}
            None => {
                let counts = ood_routing.entry(set.domain.clone()).or_default();
                for r in &routings {
                    *counts.entry(labels[r.lsr].clone()).or_default() += 1;
                }
            }
        }
        // Without every adapter scored, only the routers whose picks are always scored.
        let sweep_picks: Vec<&(&RouterName, Vec<usize>)> =
            picks.iter().filter(|(name, _)| all || matches!(name, RouterName::Lsr | RouterName::Mlp | RouterName::Oracle)).collect();
        let passages: std::collections::BTreeSet<&str> =
            dataset.select(Some(set.domain.as_str()), None).flat_map(|g| g.candidates.iter().map(|c| c.text.as_str())).collect();
        let passages: Vec<&str> = passages.into_iter().collect();
        let bm25 = Bm25Index::new(&passages, bm25_params);
        let encoded = encode_groups(&reranker, &refs, Some(ctx))?;
        set_features.push(x);
        for (q, (group, enc)) in refs.iter().zip(&encoded).enumerate() {
            let routing = &routings[q];
            let scores = score_query(&reranker, &cache, &adapters, &bm25, group, enc, routing, all, ctx)?;
            let expert = |k: usize| scores.experts[k].as_deref().with_context(|| format!("expert {k} was not scored"));
            for (name, picks) in &sweep_picks {
                let v = group_metric(KEY_METRIC, expert(picks[q])?, &enc.relevance);
                sweep_values.entry((*name).clone()).or_default().entry(set.split).or_default().entry(set.domain.clone()).or_default().push(v);
            }
            if let Some(t) = set.truth {
                routed_queries += 1;
                if routing.lsr != t {
                    let chosen = group_metric(KEY_METRIC, expert(routing.lsr)?, &enc.relevance);
                    let correct = group_metric(KEY_METRIC, expert(t)?, &enc.relevance);
                    misroute_cost += correct - chosen;
                    misroutes.push(Misroute {
                        query: group.id.clone(),
                        split: set.split,
                        domain: set.domain.clone(),
                        chosen: labels[routing.lsr].clone(),
                        chosen_ndcg_at_10: chosen,
                        correct_ndcg_at_10: correct,
                    });
                }
            }
            for (system, system_scores) in compose(&scores, routing, all)? {
                per_query.entry(system).or_default().entry(set.split).or_default().entry(set.domain.clone()).or_default().push(metric_row(&system_scores, &enc.relevance));
                let run = runs.entry((system, set.split)).or_insert_with(|| Run::new(system.name()));
                for (c, s) in group.candidates.iter().zip(&system_scores) {
                    run.insert(&group.id, &c.id, *s as f64);
                }
            }
            done += 1;
            let elapsed = eval_started.elapsed().as_secs_f64();
            ctx.send(JobEvent::Progress(Progress {
                stage: "evaluate".into(),
                step: done,
                total_steps: total,
                loss: 0.0,
                learning_rate: 0.0,
                examples_per_second: done as f64 / elapsed.max(1e-9),
                eta_seconds: elapsed / done as f64 * (total - done) as f64,
            }));
        }
        set_encoded.push(encoded);
    }
    timings.insert("evaluate".into(), eval_started.elapsed().as_secs_f64());
    let systems = aggregate(&per_query);

    // R2R against the generalist and the direct fine-tune, per split and domain.
    let mut significance = Vec::new();
    let values = |system: System, split: EvalSplit, domain: &str| -> Vec<f64> {
        per_query.get(&system).and_then(|s| s.get(&split)).and_then(|d| d.get(domain)).map(|rows| rows.iter().map(|r| r[&KEY_METRIC]).collect()).unwrap_or_default()
    };
    for set in sets.iter().filter(|s| s.truth.is_some()) {
        let r2r = values(System::R2rLsr, set.split, &set.domain);
        for baseline in [System::Generalist, System::Direct] {
            let base = values(baseline, set.split, &set.domain);
            let TestResult { statistic, p_value } = randomization_test(&base, &r2r, config.experiment.permutations, config.experiment.seed)?;
            significance.push(Significance {
                system: System::R2rLsr,
                baseline,
                split: set.split,
                domain: set.domain.clone(),
                metric: KEY_METRIC,
                queries: r2r.len(),
                mean_difference: statistic,
                p_value,
            });
        }
    }

    let routing = route_truth.into_iter().map(|(name, (t, p))| (name, RoutingReport::new(&labels, &t, &p))).collect();
    let misroute = MisrouteImpact {
        queries: routed_queries,
        misrouted: misroutes.len(),
        mean_chosen: mean(&misroutes.iter().map(|m| m.chosen_ndcg_at_10).collect::<Vec<_>>()),
        mean_correct: mean(&misroutes.iter().map(|m| m.correct_ndcg_at_10).collect::<Vec<_>>()),
        aggregate_cost: if routed_queries == 0 { 0.0 } else { misroute_cost / routed_queries as f64 },
        items: misroutes,
    };
    let router_sweep = sweep_values.into_iter().map(|(name, splits)| (name, splits.into_iter().map(|(split, d)| (split, with_macro(d))).collect())).collect();

    // Ablations and studies, retraining through the shared path.
    let bench = Bench {
        reranker: &reranker,
        scores: &cache,
        train_config: &tc,
        out,
        ctx,
        dataset: &dataset,
        labels: &labels,
        sets: &sets,
        encoded: &set_encoded,
        features: &set_features,
        lsr_picks: &lsr_picks,
        train_groups: &train_groups,
        x_train: &x_train,
        y_train: &y_train,
        max_eval_queries: config.experiment.max_eval_queries,
        permutations: config.experiment.permutations,
        seed: config.experiment.seed,
    };
    let (ablations, studies) = run_studies(&bench, config, &mut timings)?;
    timings.insert("total".into(), started.elapsed().as_secs_f64());
    Ok(ExperimentResults {
        systems,
        routing,
        ood_routing,
        significance,
        misroute,
        queries,
        config: config.clone(),
        fingerprints,
        timings,
        training,
        router_sweep,
        ablations,
        studies,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(experts: Vec<Option<Vec<f32>>>, singles: Vec<Option<Vec<f32>>>) -> QueryScores {
        QueryScores { bm25: vec![1.0, 0.0], generalist: vec![0.0, 1.0], direct: vec![2.0, 2.5], experts, singles }
    }

    #[test]
    fn compose_picks_each_systems_adapter_and_needs_only_what_the_routing_wants() {
        let routing = QueryRouting { p_lsr: vec![0.25, 0.75], lsr: 1, mlp: 0, truth: Some(0) };
        let (wanted_experts, wanted_singles) = routing.wanted(2, false);
        assert_eq!((wanted_experts, wanted_singles), (vec![true, true], vec![true, true]));
        let s = scores(vec![Some(vec![0.0, 0.0]), Some(vec![1.0, -1.0])], vec![Some(vec![3.0, 4.0]), Some(vec![5.0, 6.0])]);
        let systems: BTreeMap<System, Vec<f32>> = compose(&s, &routing, true).unwrap().into_iter().collect();
        assert_eq!(systems.len(), 9);
        assert_eq!(systems[&System::SingleDomain], [3.0, 4.0], "the true domain's fine-tune");
        assert_eq!(systems[&System::R2rNoEag], [5.0, 6.0], "the LSR's pick among the fine-tunes");
        assert_eq!(systems[&System::R2rLsr], [1.0, -1.0]);
        assert_eq!(systems[&System::R2rMlp], [0.0, 0.0]);
        assert_eq!(systems[&System::R2rOracle], [0.0, 0.0]);
        assert_eq!(systems[&System::Direct], [2.0, 2.5]);
        // Soft: 0.25 · σ(expert 0) + 0.75 · σ(expert 1); candidate 0 wins.
        let soft = &systems[&System::R2rSoft];
        let expected0 = 0.25 * yes_probability(0.0, 0.0) + 0.75 * yes_probability(1.0, 0.0);
        assert!((soft[0] - expected0).abs() < 1e-6 && soft[0] > soft[1], "{soft:?}");

        // OOD query, one expert scored: no oracle, no soft; the single-domain system follows the LSR.
        let ood = QueryRouting { p_lsr: vec![0.9, 0.1], lsr: 0, mlp: 0, truth: None };
        assert_eq!(ood.wanted(2, false), (vec![true, false], vec![true, false]));
        let s = scores(vec![Some(vec![0.5, 0.0]), None], vec![Some(vec![3.0, 4.0]), None]);
        let systems: BTreeMap<System, Vec<f32>> = compose(&s, &ood, false).unwrap().into_iter().collect();
        assert!(!systems.contains_key(&System::R2rOracle) && !systems.contains_key(&System::R2rSoft));
        assert_eq!(systems[&System::SingleDomain], [3.0, 4.0]);
        // A system whose adapter was not scored is an error, not a silent zero.
        assert!(compose(&s, &QueryRouting { lsr: 1, ..ood.clone() }, false).is_err());
        assert!(compose(&s, &ood, true).is_err(), "soft needs every expert");
    }

    #[test]
    fn a_job_cancelled_before_it_starts_returns_cancelled_at_once_and_writes_nothing() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = crossbeam_channel::unbounded();
        let ctx = JobContext::new(tx, Arc::new(AtomicBool::new(true)), None);
        // Neither a model nor data: reaching them would be a different error.
        let mut config = ExperimentConfig::default();
        config.train.model.path = dir.path().join("no-model");
        config.train.data.path = dir.path().join("no-data");
        let out = dir.path().join("exp");
        let started = Instant::now();
        let err = run_experiment(&config, &out, &ctx).unwrap_err();
        assert!(err.is::<crate::train::jobs::Cancelled>(), "{err:#}");
        let mut train = config.train.clone();
        train.output.dir = out.join("training");
        let err = run_training(&train, &ctx).unwrap_err();
        assert!(err.is::<crate::train::jobs::Cancelled>(), "{err:#}");
        assert!(started.elapsed().as_secs_f64() < 1.0);
        assert!(!out.exists(), "nothing written");
    }

    #[test]
    fn aggregate_means_per_domain_and_macro_over_domains() {
        let row = |v: f64| -> MetricMeans { METRICS.iter().map(|&m| (m, if m == KEY_METRIC { v } else { 0.0 })).collect() };
        let mut per_query: PerQuery = BTreeMap::new();
        let test = per_query.entry(System::R2rLsr).or_default().entry(EvalSplit::Test).or_default();
        test.insert("legal".into(), vec![row(1.0), row(0.0), row(0.5)]);
        test.insert("medical".into(), vec![row(0.25)]);
        let table = aggregate(&per_query);
        let test = &table[&System::R2rLsr][&EvalSplit::Test];
        assert_eq!(test["legal"][&KEY_METRIC], 0.5);
        assert_eq!(test["medical"][&KEY_METRIC], 0.25);
        assert_eq!(test[MACRO][&KEY_METRIC], 0.375, "macro: the mean of the domain means, not of the queries");
        assert_eq!(test[MACRO].len(), METRICS.len());
        assert_eq!(table.len(), 1);
    }
}
