//! Unseen-domain study: one domain is held out of expert and router training; its `test` queries
//! are then served by soft routing (`r2r_soft`), hard LSR routing (`r2r_lsr`) over the other
//! domains' experts, and by the generalist (the backbone). NDCG@10 of each, the paired
//! randomization test of both R2R forms against the generalist, and where the LSR sends the queries.
//! When the held-out domain is a target domain, stage 1 and the experts are retrained on the other
//! target domains (through [`Bench::retrain_experts`]); otherwise the main experts serve it.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::bench::Bench;
use super::keys::{EvalSplit, System};
use super::systems::{mean, Significance, KEY_METRIC};
use crate::data::{QueryGroup, Split};
use crate::metrics::group_metric;
use crate::metrics::significance::randomization_test;
use crate::model::scorer::yes_probability;
use crate::routing::{argmax, routed_scores, RouterKind, RoutingMode, TrainedRouter};
use super::score_cache::Keyed;
use crate::train::expert::adapter_fingerprint;
use crate::train::features::query_features;
use crate::train::groups::encode_groups;

/// The systems of the study, in table order.
pub const UNSEEN_SYSTEMS: [System; 3] = [System::Generalist, System::R2rLsr, System::R2rSoft];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnseenDomainStudy {
    pub domain: String,
    /// The experts that served it (the other target domains).
    pub experts: Vec<String>,
    /// Whether stage 1 and the experts were retrained without the domain.
    pub retrained: bool,
    pub split: EvalSplit,
    pub queries: usize,
    /// system → mean NDCG@10.
    pub ndcg_at_10: BTreeMap<System, f64>,
    /// `r2r_lsr` and `r2r_soft` against `generalist`.
    pub significance: Vec<Significance>,
    /// Expert → queries the LSR sends there, and → mean LSR probability.
    pub routed_to: BTreeMap<String, usize>,
    pub mean_probability: BTreeMap<String, f64>,
}

pub fn unseen_domain_study(bench: &Bench, domain: &str) -> Result<UnseenDomainStudy> {
    let held = bench.labels.iter().position(|d| d == domain);
    let (config, experts) = bench.retrain_experts(&format!("study: unseen domain {domain}"), |c| c.data.domains.retain(|d| d != domain))?;
    let labels = config.data.domains.clone();
    // The routers' training rows of the remaining domains, relabelled in their order.
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (row, &label) in bench.x_train.iter().zip(bench.y_train) {
        if Some(label) != held {
            let name = &bench.labels[label];
            x.push(row.clone());
            y.push(labels.iter().position(|d| d == name).context("a router label outside the remaining domains")?);
        }
    }
    let tc = bench.train_config;
    let lsr = TrainedRouter::train_checked(RouterKind::Linear, &labels, &x, &y, &tc.router.train, None, &mut || bench.ctx.check_cancelled())?;

    let mut groups: Vec<&QueryGroup> = bench.dataset.select(Some(domain), Some(Split::Test)).collect();
    if bench.max_eval_queries > 0 {
        groups.truncate(bench.max_eval_queries);
    }
    anyhow::ensure!(!groups.is_empty(), "experiment.unseen_domain: `{domain}` has no test queries in {}", tc.data.path.display());
    let features = query_features(bench.reranker, &groups, Some(bench.ctx))?;
    let probabilities = lsr.probabilities(&features)?;
    let mut values: BTreeMap<System, Vec<f64>> = BTreeMap::new();
    let mut routed_to: BTreeMap<String, usize> = labels.iter().map(|l| (l.clone(), 0)).collect();
    let fingerprints: Vec<String> = experts.iter().map(adapter_fingerprint).collect::<Result<_>>()?;
    for (enc, p) in encode_groups(bench.reranker, &groups, Some(bench.ctx))?.iter().zip(&probabilities) {
        let expert_margins: Vec<Vec<f32>> = experts
            .iter()
            .zip(&fingerprints)
            .map(|(adapter, fingerprint)| {
                bench.ctx.check_cancelled()?;
                bench.scores.margins(bench.reranker, Some(Keyed { fingerprint, adapter }), enc)
            })
            .collect::<Result<_>>()?;
        bench.ctx.check_cancelled()?;
        let expert_probs: Vec<Vec<f32>> = expert_margins.iter().map(|m| m.iter().map(|&v| yes_probability(v, 0.0)).collect()).collect();
        let pick = argmax(p);
        *routed_to.entry(labels[pick].clone()).or_default() += 1;
        let scores = [bench.scores.margins(bench.reranker, None, enc)?, expert_margins[pick].clone(), routed_scores(p, &expert_probs, RoutingMode::Soft)?];
        for (system, s) in UNSEEN_SYSTEMS.iter().zip(&scores) {
            values.entry(*system).or_default().push(group_metric(KEY_METRIC, s, &enc.relevance));
        }
    }
    let mut significance = Vec::new();
    for system in [System::R2rLsr, System::R2rSoft] {
        let test = randomization_test(&values[&System::Generalist], &values[&system], bench.permutations, bench.seed)?;
        significance.push(Significance {
            system,
            baseline: System::Generalist,
            split: EvalSplit::Test,
            domain: domain.into(),
            metric: KEY_METRIC,
            queries: groups.len(),
            mean_difference: test.statistic,
            p_value: test.p_value,
        });
    }
    let mean_probability = labels.iter().enumerate().map(|(i, l)| (l.clone(), mean(&probabilities.iter().map(|p| p[i] as f64).collect::<Vec<_>>()))).collect();
    Ok(UnseenDomainStudy {
        domain: domain.into(),
        experts: labels,
        retrained: held.is_some(),
        split: EvalSplit::Test,
        queries: groups.len(),
        ndcg_at_10: values.iter().map(|(s, v)| (*s, mean(v))).collect(),
        significance,
        routed_to,
        mean_probability,
    })
}
