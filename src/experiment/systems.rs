//! The systems of the comparison and their evaluation. Training runs once (`run_training` with
//! stage 1, experts and baselines into `OUT/training`); every test query is then scored once per
//! adapter (backbone, direct, each single-domain adapter, each expert) and the systems are
//! composed from those scores:
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

use super::bench::Bench;
use super::config::ExperimentConfig;
use super::studies::{run_studies, Studies};
use crate::bm25::{Bm25Index, Bm25Params};
use crate::data::{QueryGroup, Split};
use crate::metrics::significance::{randomization_test, TestResult};
use crate::metrics::{group_metric, Metric, Run};
use crate::model::scorer::yes_probability;
use crate::model::LoraAdapter;
use crate::routing::{argmax, routed_scores, Router, RouterKind, RoutingMode, RoutingReport, TrainedRouter};
use crate::train::checkpoint::load_published_adapter;
use crate::train::dev_eval::group_margins;
use crate::train::expert::adapter_fingerprint;
use crate::train::features::query_features;
use crate::train::groups::encode_groups;
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

/// The systems, in table order.
pub const SYSTEMS: [&str; 9] = ["bm25", "generalist", "direct", "single_domain", "r2r_no_eag", "r2r_lsr", "r2r_mlp", "r2r_oracle", "r2r_soft"];

/// The metric of the significance tests and of the misroute analysis.
pub const KEY_METRIC: Metric = Metric::Ndcg(Some(10));

/// The domain key of macro averages.
pub const MACRO: &str = "macro";

/// metric name → mean.
pub type MetricMeans = BTreeMap<String, f64>;

/// One misrouted query of the LSR (R2R) on a target-domain split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Misroute {
    pub query: String,
    pub split: String,
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
    pub system: String,
    pub baseline: String,
    pub split: String,
    pub domain: String,
    pub metric: String,
    pub queries: usize,
    pub mean_difference: f64,
    pub p_value: f64,
}

/// Everything `r2r experiment` measures (written as results.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResults {
    /// system → split → domain (and `macro`) → metric → mean.
    pub systems: BTreeMap<String, BTreeMap<String, BTreeMap<String, MetricMeans>>>,
    /// router → routing report on the target domains' seen-entity test split.
    pub routing: BTreeMap<String, RoutingReport>,
    /// Where the LSR sends the OOD queries: OOD domain → expert → count.
    pub ood_routing: BTreeMap<String, BTreeMap<String, usize>>,
    pub significance: Vec<Significance>,
    pub misroute: MisrouteImpact,
    /// Queries evaluated per split and domain.
    pub queries: BTreeMap<String, BTreeMap<String, usize>>,
    pub config: ExperimentConfig,
    /// data, backbone, config (from the training run) and `adapter:<name>` fingerprints.
    pub fingerprints: BTreeMap<String, String>,
    /// Router sweep: router → split → domain (and `macro`) → NDCG@10 of the experts under that
    /// router's hard choice (target domains).
    pub router_sweep: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    /// Ablations (when enabled): `mask_intensity:<x>` → split → domain (and `macro`) → NDCG@10 of
    /// R2R (LSR-routed experts trained with that stage-1 masking intensity).
    pub ablations: BTreeMap<String, BTreeMap<String, BTreeMap<String, f64>>>,
    /// LoRA rank, per-type masking, many domains, abstraction coverage, unseen domain (when enabled).
    #[serde(default)]
    pub studies: Studies,
    /// Seconds: training stages, features, evaluation, studies, total.
    pub timings: BTreeMap<String, f64>,
    pub training: RunSummary,
    /// TREC runs per system and split (written as files, not in the JSON).
    #[serde(skip)]
    pub runs: BTreeMap<(String, String), Run>,
}

/// A split and domain's evaluated groups.
pub struct EvalSet {
    pub split: String,
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
    for (split, name) in [(Split::Test, "test"), (Split::TestUnseen, "test_unseen")] {
        for (i, domain) in c.data.domains.iter().enumerate() {
            sets.push(EvalSet { split: name.into(), domain: domain.clone(), truth: Some(i), groups: take(domain, split) });
        }
    }
    for domain in c.data.ood_domains.iter().filter(|d| !c.data.domains.contains(d)) {
        sets.push(EvalSet { split: "ood".into(), domain: domain.clone(), truth: None, groups: take(domain, Split::Test) });
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

/// Trains (or resumes) the adapters, then evaluates every system; `out` receives the training run.
pub fn run_experiment(config: &ExperimentConfig, out: &Path, ctx: &JobContext) -> Result<ExperimentResults> {
    config.validate()?;
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
    for (d, a) in labels.iter().zip(&experts) {
        fingerprints.insert(format!("adapter:expert-{d}"), adapter_fingerprint(a)?);
    }
    for (d, a) in labels.iter().zip(&singles) {
        fingerprints.insert(format!("adapter:single-{d}"), adapter_fingerprint(a)?);
    }
    fingerprints.insert("adapter:direct".to_string(), adapter_fingerprint(&direct)?);

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
    let lsr_trained = TrainedRouter::train(RouterKind::Linear, &labels, &x_train, &y_train, &tc.router.train, Some(backbone))?;
    // The LSR is also published where `r2r train` puts its router (OUT/training/router), so the
    // Router panel, `r2r route`, `r2r serve` and `r2r export serving` open the experiment's run.
    crate::train::checkpoint::publish_dir(&run.router_dir(), |staging| lsr_trained.save(staging)).context("saving the LSR")?;
    let lsr = Router::Trained(lsr_trained);
    let mlp = Router::Trained(TrainedRouter::train(RouterKind::Mlp { hidden: tc.router.mlp_hidden }, &labels, &x_train, &y_train, &tc.router.train, None)?);
    let mut sweep = vec![("lsr".to_string(), lsr.clone()), ("mlp".to_string(), mlp.clone())];
    sweep.push(("random".into(), Router::Random { labels: labels.clone(), seed: tc.optim.seed }));
    sweep.push(("oracle".into(), Router::Oracle { labels: labels.clone() }));
    for (i, d) in labels.iter().enumerate() {
        sweep.push((format!("static:{d}"), Router::Static { labels: labels.clone(), expert: i }));
    }
    timings.insert("router_features".into(), features_started.elapsed().as_secs_f64());

    // Score every evaluated query under every adapter, then compose the systems.
    let eval_started = Instant::now();
    let sets = eval_sets(config, &dataset);
    let total: usize = sets.iter().map(|s| s.groups.len()).sum();
    let mut done = 0usize;
    // system → split → domain → per-query metric values
    let mut per_query: BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<BTreeMap<String, f64>>>>> = BTreeMap::new();
    let mut runs: BTreeMap<(String, String), Run> = BTreeMap::new();
    let mut route_truth: BTreeMap<String, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    let mut ood_routing: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut misroutes = Vec::new();
    let mut routed_queries = 0usize;
    let mut misroute_cost = 0.0;
    let mut queries: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut sweep_values: BTreeMap<String, BTreeMap<String, BTreeMap<String, Vec<f64>>>> = BTreeMap::new();
    let mut lsr_picks: Vec<Vec<usize>> = Vec::new();
    let mut set_features: Vec<Vec<Vec<f32>>> = Vec::new();
    let mut set_encoded = Vec::new();
    let bm25_params = Bm25Params::default();
    for set in &sets {
        ctx.check_cancelled()?;
        queries.entry(set.split.clone()).or_default().insert(set.domain.clone(), set.groups.len());
        let refs: Vec<&QueryGroup> = set.groups.iter().collect();
        let ids: Vec<String> = refs.iter().map(|g| g.id.clone()).collect();
        let x = query_features(&reranker, &refs, Some(ctx))?;
        let truth: Option<Vec<usize>> = set.truth.map(|t| vec![t; refs.len()]);
        let p_lsr = lsr.probabilities(&x, &ids, truth.as_deref())?;
        let p_mlp = mlp.probabilities(&x, &ids, truth.as_deref())?;
        lsr_picks.push(p_lsr.iter().map(|p| argmax(p)).collect());
        let sweep_picks: Vec<(String, Vec<usize>)> = match &truth {
            // Without every adapter scored, only the routers whose picks are always scored.
            Some(t) => sweep.iter().filter(|(name, _)| config.experiment.score_all_adapters || ["lsr", "mlp", "oracle"].contains(&name.as_str())).map(|(name, r)| Ok((name.clone(), r.probabilities(&x, &ids, Some(t))?.iter().map(|p| argmax(p)).collect()))).collect::<Result<_>>()?,
            None => Vec::new(),
        };
        if let Some(t) = &truth {
            if set.split == "test" {
                for (name, router) in &sweep {
                    let predicted: Vec<usize> = router.probabilities(&x, &ids, Some(t))?.iter().map(|p| argmax(p)).collect();
                    let entry = route_truth.entry(name.clone()).or_default();
                    entry.0.extend(t);
                    entry.1.extend(predicted);
                }
            }
        } else {
            let counts = ood_routing.entry(set.domain.clone()).or_default();
            for p in &p_lsr {
                *counts.entry(labels[argmax(p)].clone()).or_default() += 1;
            }
        }
        let passages: std::collections::BTreeSet<&str> =
            dataset.select(Some(set.domain.as_str()), None).flat_map(|g| g.candidates.iter().map(|c| c.text.as_str())).collect();
        let passages: Vec<&str> = passages.into_iter().collect();
        let bm25 = Bm25Index::new(&passages, bm25_params);
        let encoded = encode_groups(&reranker, &refs)?;
        set_features.push(x);
        for (q, (group, enc)) in refs.iter().zip(&encoded).enumerate() {
            ctx.check_cancelled()?;
            let margins = |a: Option<&LoraAdapter>| group_margins(&reranker, a, enc);
            let (lsr_pick, mlp_pick) = (argmax(&p_lsr[q]), argmax(&p_mlp[q]));
            // The adapters this query needs: all of them, or only those a system picks.
            let all = config.experiment.score_all_adapters;
            let single_pick = set.truth.unwrap_or(lsr_pick);
            let wanted_experts: Vec<bool> = (0..experts.len()).map(|k| all || k == lsr_pick || k == mlp_pick || set.truth == Some(k)).collect();
            let wanted_singles: Vec<bool> = (0..singles.len()).map(|k| all || k == lsr_pick || k == single_pick).collect();
            let score_wanted = |adapters: &[LoraAdapter], wanted: &[bool]| -> Result<Vec<Vec<f32>>> {
                adapters.iter().zip(wanted).map(|(a, &w)| if w { margins(Some(a)) } else { Ok(Vec::new()) }).collect()
            };
            let expert_scores = score_wanted(&experts, &wanted_experts)?;
            let single_scores = score_wanted(&singles, &wanted_singles)?;
            let mut systems: Vec<(&str, Vec<f32>)> = vec![
                ("bm25", group.candidates.iter().map(|c| bm25.score_text(&group.query, &c.text)).collect()),
                ("generalist", margins(None)?),
                ("direct", margins(Some(&direct))?),
                ("single_domain", single_scores[single_pick].clone()),
                ("r2r_no_eag", single_scores[lsr_pick].clone()),
                ("r2r_lsr", expert_scores[lsr_pick].clone()),
                ("r2r_mlp", expert_scores[mlp_pick].clone()),
            ];
            if all {
                let expert_probs: Vec<Vec<f32>> = expert_scores.iter().map(|s| s.iter().map(|&m| yes_probability(m, 0.0)).collect()).collect();
                systems.push(("r2r_soft", routed_scores(&p_lsr[q], &expert_probs, RoutingMode::Soft)?));
            }
            for (name, picks) in &sweep_picks {
                let v = group_metric(KEY_METRIC, &expert_scores[picks[q]], &enc.relevance);
                sweep_values.entry(name.clone()).or_default().entry(set.split.clone()).or_default().entry(set.domain.clone()).or_default().push(v);
            }
            if let Some(t) = set.truth {
                systems.push(("r2r_oracle", expert_scores[t].clone()));
                routed_queries += 1;
                if lsr_pick != t {
                    let chosen = group_metric(KEY_METRIC, &expert_scores[lsr_pick], &enc.relevance);
                    let correct = group_metric(KEY_METRIC, &expert_scores[t], &enc.relevance);
                    misroute_cost += correct - chosen;
                    misroutes.push(Misroute {
                        query: group.id.clone(),
                        split: set.split.clone(),
                        domain: set.domain.clone(),
                        chosen: labels[lsr_pick].clone(),
                        chosen_ndcg_at_10: chosen,
                        correct_ndcg_at_10: correct,
                    });
                }
            }
            for (system, scores) in systems {
                let values: BTreeMap<String, f64> = METRICS.iter().map(|m| (m.to_string(), group_metric(*m, &scores, &enc.relevance))).collect();
                per_query.entry(system.into()).or_default().entry(set.split.clone()).or_default().entry(set.domain.clone()).or_default().push(values);
                let run = runs.entry((system.to_string(), set.split.clone())).or_insert_with(|| Run::new(system));
                for (c, s) in group.candidates.iter().zip(&scores) {
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

    // Means per domain and macro averages over domains.
    let mut systems = BTreeMap::new();
    for (system, splits) in &per_query {
        let mut by_split = BTreeMap::new();
        for (split, domains) in splits {
            let mut by_domain: BTreeMap<String, MetricMeans> = BTreeMap::new();
            for (domain, rows) in domains {
                let means = METRICS.iter().map(|m| (m.to_string(), mean(&rows.iter().map(|r| r[&m.to_string()]).collect::<Vec<_>>()))).collect();
                by_domain.insert(domain.clone(), means);
            }
            let macro_avg: MetricMeans =
                METRICS.iter().map(|m| (m.to_string(), mean(&by_domain.values().map(|v| v[&m.to_string()]).collect::<Vec<_>>()))).collect();
            by_domain.insert(MACRO.into(), macro_avg);
            by_split.insert(split.clone(), by_domain);
        }
        systems.insert(system.clone(), by_split);
    }

    // R2R against the generalist and the direct fine-tune, per split and domain.
    let mut significance = Vec::new();
    let key = KEY_METRIC.to_string();
    let values = |system: &str, split: &str, domain: &str| -> Vec<f64> {
        per_query.get(system).and_then(|s| s.get(split)).and_then(|d| d.get(domain)).map(|rows| rows.iter().map(|r| r[&key]).collect()).unwrap_or_default()
    };
    for set in sets.iter().filter(|s| s.truth.is_some()) {
        let r2r = values("r2r_lsr", &set.split, &set.domain);
        for baseline in ["generalist", "direct"] {
            let base = values(baseline, &set.split, &set.domain);
            let TestResult { statistic, p_value } = randomization_test(&base, &r2r, config.experiment.permutations, config.experiment.seed)?;
            significance.push(Significance {
                system: "r2r_lsr".into(),
                baseline: baseline.into(),
                split: set.split.clone(),
                domain: set.domain.clone(),
                metric: key.clone(),
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
