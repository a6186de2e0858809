//! The shared path of the ablations and studies: "retrain stage 1 and the experts with this change
//! to the training config, then evaluate them on the experiment's queries under this routing".
//! A changed config trains into `OUT/variants/<fingerprint>` (so two studies asking for the same
//! config share one run, and a re-run resumes it); a change that leaves the training config as it
//! was reuses the main run's experts.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::keys::EvalSplit;
use super::systems::{with_macro, EvalSet, KEY_METRIC};
use crate::data::{Dataset, QueryGroup};
use crate::metrics::group_metric;
use crate::model::{LoraAdapter, Reranker};
use crate::train::checkpoint::load_published_adapter;
use super::score_cache::{Keyed, ScoreCache};
use crate::train::expert::adapter_fingerprint;
use crate::train::groups::EncodedGroup;
use crate::train::{run_training, JobContext, RunDir, Stage, TrainConfig};

/// split → domain (and `macro`) → NDCG@10.
pub type SplitDomain = BTreeMap<EvalSplit, BTreeMap<String, f64>>;

/// Which expert scores a target-domain query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// The main experiment's LSR pick (the router reads the frozen backbone, so its picks hold for
    /// every retrained set of experts).
    Lsr,
    /// The query's true domain.
    Oracle,
}

/// What the main experiment computed once and every study reuses.
pub struct Bench<'a> {
    pub reranker: &'a Reranker,
    /// The experiment's score cache (a rerun scores only what is new).
    pub scores: &'a ScoreCache,
    /// The main run's training config (its `output.dir` holds the main experts).
    pub train_config: &'a TrainConfig,
    pub out: &'a Path,
    pub ctx: &'a JobContext,
    pub dataset: &'a Dataset,
    /// The target domains (expert order).
    pub labels: &'a [String],
    pub sets: &'a [EvalSet],
    /// Per set: its groups tokenised, their query features and the LSR's picks.
    pub encoded: &'a [Vec<EncodedGroup>],
    pub features: &'a [Vec<Vec<f32>>],
    pub lsr_picks: &'a [Vec<usize>],
    /// The routers' training queries, their features and domain indices.
    pub train_groups: &'a [&'a QueryGroup],
    pub x_train: &'a [Vec<f32>],
    pub y_train: &'a [usize],
    /// `experiment.max_eval_queries` (0 = all).
    pub max_eval_queries: usize,
    /// Permutations and seed of the randomization tests (the seed also seeds the studies).
    pub permutations: usize,
    pub seed: u64,
}

impl Bench<'_> {
    /// Trains (or reuses) stage 1 and the experts of `change(main config)`; returns the config as
    /// trained and the experts of its `data.domains`, in order.
    pub fn retrain_experts(&self, what: &str, change: impl FnOnce(&mut TrainConfig)) -> Result<(TrainConfig, Vec<LoraAdapter>)> {
        let mut config = self.train_config.clone();
        change(&mut config);
        config.validate().with_context(|| format!("the config of {what}"))?;
        let fingerprint = config.training_fingerprint();
        if fingerprint == self.train_config.training_fingerprint() {
            self.ctx.log(format!("{what}: the main run's experts"));
        } else {
            config.output.dir = self.out.join("variants").join(&fingerprint[..16]);
            config.run.stages = vec![Stage::Stage1, Stage::Experts];
            self.reuse_main_stage1(&config)?;
            self.ctx.log(format!("{what}: stage 1 and the experts into {}", config.output.dir.display()));
            run_training(&config, self.ctx).with_context(|| format!("training {what}"))?;
        }
        let run = RunDir::new(&config.output.dir);
        let (base, device) = (self.reranker.config(), self.reranker.device());
        let experts = config
            .data
            .domains
            .iter()
            .map(|d| {
                let dir = run.expert_dir(d);
                load_published_adapter(&dir, base, device).with_context(|| format!("loading the adapter {}", dir.display()))
            })
            .collect::<Result<_>>()?;
        Ok((config, experts))
    }

    /// A variant that changes stage 2 only starts from the main run's stage 1: its published adapter and
    /// final state are copied into the variant's run directory (when absent), where the trainer finds the
    /// job completed (its fingerprint is checked as on any resume).
    fn reuse_main_stage1(&self, variant: &TrainConfig) -> Result<()> {
        let mut same_stage1 = variant.clone();
        same_stage1.stage2 = self.train_config.stage2.clone();
        if variant.stage1.skip || same_stage1.training_fingerprint() != self.train_config.training_fingerprint() {
            return Ok(());
        }
        let (main, target) = (RunDir::new(&self.train_config.output.dir), RunDir::new(&variant.output.dir));
        for (from, to) in [(main.stage1_dir(), target.stage1_dir()), (main.state_dir("stage1"), target.state_dir("stage1")), (main.best_dir("stage1"), target.best_dir("stage1"))] {
            if from.is_dir() && !to.exists() {
                // Whole or not at all: a copy cut short must not look like a checkpoint.
                crate::train::checkpoint::publish_dir(&to, |staging| crate::util::copy_dir_files(&from, staging))
                    .with_context(|| format!("reusing the main run's stage 1 ({})", from.display()))?;
            }
        }
        Ok(())
    }

    /// NDCG@10 of `experts` (one per target domain) on the target-domain sets, once per routing;
    /// a query is scored once per distinct expert the routings pick (through the score cache).
    pub fn evaluate(&self, experts: &[LoraAdapter], routings: &[Routing]) -> Result<Vec<SplitDomain>> {
        anyhow::ensure!(experts.len() == self.labels.len(), "{} experts for {} target domains", experts.len(), self.labels.len());
        let mut values: Vec<BTreeMap<EvalSplit, BTreeMap<String, Vec<f64>>>> = vec![BTreeMap::new(); routings.len()];
        let fingerprints: Vec<String> = experts.iter().map(adapter_fingerprint).collect::<Result<_>>()?;
        for ((set, encoded), picks) in self.sets.iter().zip(self.encoded).zip(self.lsr_picks) {
            let Some(truth) = set.truth else { continue };
            for (enc, &lsr_pick) in encoded.iter().zip(picks) {
                self.ctx.check_cancelled()?;
                let mut by_expert: BTreeMap<usize, f64> = BTreeMap::new();
                for (routing, out) in routings.iter().zip(values.iter_mut()) {
                    let expert = match routing {
                        Routing::Lsr => lsr_pick,
                        Routing::Oracle => truth,
                    };
                    let v = match by_expert.get(&expert) {
                        Some(v) => *v,
                        None => {
                            let adapter = Keyed { fingerprint: &fingerprints[expert], adapter: &experts[expert] };
                            let v = group_metric(KEY_METRIC, &self.scores.margins(self.reranker, Some(adapter), enc)?, &enc.relevance);
                            by_expert.insert(expert, v);
                            v
                        }
                    };
                    out.entry(set.split).or_default().entry(set.domain.clone()).or_default().push(v);
                }
            }
        }
        Ok(values.into_iter().map(|splits| splits.into_iter().map(|(split, d)| (split, with_macro(d))).collect()).collect())
    }

    /// `retrain_experts` then `evaluate` under one routing.
    pub fn variant(&self, what: &str, change: impl FnOnce(&mut TrainConfig), routing: Routing) -> Result<SplitDomain> {
        let (_, experts) = self.retrain_experts(what, change)?;
        Ok(self.evaluate(&experts, &[routing])?.remove(0))
    }
}
