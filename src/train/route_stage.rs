//! The router stage: query hidden states of the frozen backbone (cached per split), the configured
//! router (Latent Semantic Router or MLP) trained on the target domains' training queries, its
//! routing report on the test split next to the random, static and oracle baselines, and optionally
//! the test reranking quality (NDCG@10) under hard, soft and oracle routing through the experts.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::checkpoint::{load_published_adapter, publish_dir};
use super::dev_eval::group_margins;
use super::features::cached_query_features;
use super::groups::encode_groups;
use super::pipeline::PreparedData;
use super::Trainer;
use crate::data::QueryGroup;
use crate::metrics::{group_metric, Metric};
use crate::model::scorer::yes_probability;
use crate::routing::{argmax, routed_scores, Router, RouterKind, RouterName, RoutingMode, RoutingPolicy, RoutingReport, TrainedRouter};

/// What the router stage reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterSummary {
    /// `lsr` or `mlp`.
    pub router: RouterName,
    pub train_queries: usize,
    /// The trained router on the test split.
    pub test: RoutingReport,
    /// Accuracy and macro-F1 on the test split of the other trained kind (`mlp` or `lsr`, not
    /// saved) and of the random, oracle and static routers.
    pub baselines: BTreeMap<RouterName, (f64, f64)>,
    /// Test NDCG@10 per routing policy (hard, soft, oracle, random, …), when evaluated.
    pub reranking: Option<BTreeMap<RoutingPolicy, f64>>,
    pub seconds: f64,
}

fn labels_of(groups: &[&QueryGroup], labels: &[String]) -> Result<Vec<usize>> {
    groups
        .iter()
        .map(|g| labels.iter().position(|l| *l == g.domain).with_context(|| format!("query {} has domain {} outside {labels:?}", g.id, g.domain)))
        .collect()
}

fn pick<'a>(by_domain: &'a BTreeMap<String, Vec<QueryGroup>>, labels: &[String]) -> Vec<&'a QueryGroup> {
    labels.iter().filter_map(|d| by_domain.get(d)).flatten().collect()
}

/// Predicted label indices of a router on features.
pub fn predict(router: &Router, features: &[Vec<f32>], groups: &[&QueryGroup], truth: &[usize]) -> Result<Vec<usize>> {
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    Ok(router.probabilities(features, &ids, Some(truth))?.iter().map(|p| argmax(p)).collect())
}

pub fn run_router(trainer: &Trainer, data: &PreparedData) -> Result<RouterSummary> {
    let (c, ctx, run) = (trainer.config, trainer.ctx, trainer.run);
    let started = std::time::Instant::now();
    let labels = c.data.domains.clone();
    let (train, test) = (pick(&data.router_train, &labels), pick(&data.test, &labels));
    anyhow::ensure!(!train.is_empty() && !test.is_empty(), "the router stage needs train and test queries of the target domains");
    ctx.log(format!("router: hidden states of {} train and {} test queries", train.len(), test.len()));
    // Progress in three steps (train features, test features, fitting) so front ends show the stage.
    let report = |step: usize| {
        ctx.send(super::jobs::JobEvent::Progress(super::jobs::Progress {
            stage: "router".into(),
            step,
            total_steps: 3,
            loss: f64::NAN,
            learning_rate: f64::NAN,
            examples_per_second: f64::NAN,
            eta_seconds: f64::NAN,
        }))
    };
    report(0);
    let x_train = cached_query_features(trainer.reranker, &data.backbone_fingerprint, &train, &run.features_path("train"), Some(ctx))?;
    report(1);
    let x_test = cached_query_features(trainer.reranker, &data.backbone_fingerprint, &test, &run.features_path("test"), Some(ctx))?;
    report(2);
    let (y_train, y_test) = (labels_of(&train, &labels)?, labels_of(&test, &labels)?);
    let kind = match c.router.kind {
        crate::train::config::RouterKindChoice::Mlp => RouterKind::Mlp { hidden: c.router.mlp_hidden },
        crate::train::config::RouterKindChoice::Linear => RouterKind::Linear,
    };
    let backbone = Some(crate::routing::BackboneRef { path: trainer.reranker.model_dir.clone(), sha256: Some(data.backbone_fingerprint.clone()) });
    let trained = TrainedRouter::train_checked(kind, &labels, &x_train, &y_train, &c.router.train, backbone, &mut || ctx.check_cancelled())?;
    let router = Router::Trained(trained.clone());
    let test_report = RoutingReport::new(&labels, &y_test, &predict(&router, &x_test, &test, &y_test)?);
    ctx.log(format!("router {}: test accuracy {:.4}, macro-F1 {:.4}", router.name(), test_report.accuracy, test_report.macro_f1));

    let mut baselines = BTreeMap::new();
    // The other trained kind, for comparison (not saved).
    let other_kind = match kind {
        RouterKind::Linear => RouterKind::Mlp { hidden: c.router.mlp_hidden },
        RouterKind::Mlp { .. } => RouterKind::Linear,
    };
    let other = Router::Trained(TrainedRouter::train_checked(other_kind, &labels, &x_train, &y_train, &c.router.train, None, &mut || ctx.check_cancelled())?);
    let report = RoutingReport::new(&labels, &y_test, &predict(&other, &x_test, &test, &y_test)?);
    baselines.insert(other.name(), (report.accuracy, report.macro_f1));
    let mut others = vec![Router::Random { labels: labels.clone(), seed: c.optim.seed }, Router::Oracle { labels: labels.clone() }];
    others.extend((0..labels.len()).map(|expert| Router::Static { labels: labels.clone(), expert }));
    for other in &others {
        let report = RoutingReport::new(&labels, &y_test, &predict(other, &x_test, &test, &y_test)?);
        baselines.insert(other.name(), (report.accuracy, report.macro_f1));
    }
    let reranking = if c.router.eval_reranking { Some(reranking_eval(trainer, &router, &others, &test, &x_test, &y_test)?) } else { None };
    let summary = RouterSummary {
        router: router.name(),
        train_queries: train.len(),
        test: test_report,
        baselines,
        reranking,
        seconds: started.elapsed().as_secs_f64(),
    };
    publish_dir(&run.router_dir(), |staging| {
        trained.save(staging)?;
        crate::util::atomic_write_json(&staging.join("report.json"), &summary)
    })?;
    Ok(summary)
}

/// Mean test NDCG@10 when each query is reranked through the experts chosen by each policy.
fn reranking_eval(trainer: &Trainer, router: &Router, others: &[Router], test: &[&QueryGroup], x_test: &[Vec<f32>], y_test: &[usize]) -> Result<BTreeMap<RoutingPolicy, f64>> {
    let labels = &trainer.config.data.domains;
    let experts = labels
        .iter()
        .map(|d| load_published_adapter(&trainer.run.expert_dir(d), trainer.reranker.config(), trainer.reranker.device()))
        .collect::<Result<Vec<_>>>()
        .context("reranking evaluation needs the experts: run the experts stage first")?;
    trainer.ctx.log(format!("router: reranking {} test queries with {} experts", test.len(), experts.len()));
    let encoded = encode_groups(trainer.reranker, test, Some(trainer.ctx))?;
    let ids: Vec<String> = test.iter().map(|g| g.id.clone()).collect();
    let probabilities = router.probabilities(x_test, &ids, Some(y_test))?;
    let mut policies: Vec<(RoutingPolicy, Vec<Vec<f32>>, RoutingMode)> = [RoutingMode::Hard, RoutingMode::Soft]
        .into_iter()
        .map(|mode| (RoutingPolicy { router: router.name(), mode: Some(mode) }, probabilities.clone(), mode))
        .collect();
    for other in others {
        policies.push((RoutingPolicy { router: other.name(), mode: None }, other.probabilities(x_test, &ids, Some(y_test))?, RoutingMode::Hard));
    }
    let mut totals = vec![0.0; policies.len()];
    for (q, group) in encoded.iter().enumerate() {
        trainer.ctx.check_cancelled()?;
        let per_expert: Vec<Vec<f32>> = experts
            .iter()
            .map(|a| Ok(group_margins(trainer.reranker, Some(a), group)?.into_iter().map(|m| yes_probability(m, 0.0)).collect()))
            .collect::<Result<_>>()?;
        for (total, (_, probs, mode)) in totals.iter_mut().zip(&policies) {
            *total += group_metric(Metric::Ndcg(Some(10)), &routed_scores(&probs[q], &per_expert, *mode)?, &group.relevance);
        }
    }
    Ok(policies.into_iter().zip(totals).map(|((name, _, _), t)| (name, t / encoded.len().max(1) as f64)).collect())
}
