//! The ablations and open-question studies that retrain (all through [`Bench`]): masking
//! intensity, the stage-2 learning rate and optimiser start (`ablations`), LoRA rank, per-type masking and abstraction coverage (`studies`), plus
//! the driver that runs every enabled one, including many domains and the unseen domain.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::bench::{Bench, Routing, SplitDomain};
use super::config::ExperimentConfig;
use super::keys::Ablation;
use super::many_domains::{many_domains_study, ManyDomainsRow};
use super::unseen::{unseen_domain_study, UnseenDomainStudy};
use crate::abstraction::evaluate_checked as recognizer_quality;
use crate::data::Dataset;
use crate::train::eag::stage1_recognizer;
use crate::train::jobs::Cancelled;

/// LoRA-rank ablation: one row per rank (alpha = 2 × rank).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraRankRow {
    pub rank: usize,
    pub alpha: f64,
    /// Parameters of one expert and their bytes as resident f32 tensors.
    pub adapter_parameters: usize,
    pub adapter_bytes: usize,
    pub r2r_lsr: SplitDomain,
    pub r2r_oracle: SplitDomain,
}

/// Per-type masking ablation: stage 1 masked only `types` (`all`: every type; `none`: intensity 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskTypesRow {
    /// `all`, `none`, or the types joined by `+`.
    pub masked: String,
    pub types: Vec<String>,
    pub r2r_lsr: SplitDomain,
}

/// Abstraction-coverage study: stage 1 abstracted with a recogniser missing `drop` of its gazetteer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageRow {
    pub drop: f64,
    /// Bundled gazetteer entries kept.
    pub gazetteer_entries: usize,
    /// Recall and precision (exact spans and types) against the gold spans of stage 1's training
    /// queries and passages; None when the data carries no gold spans.
    pub recall: Option<f64>,
    pub precision: Option<f64>,
    pub r2r_lsr: SplitDomain,
}

/// The studies of `results.json` (each present when enabled).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Studies {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lora_rank: Vec<LoraRankRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mask_types: Vec<MaskTypesRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub many_domains: Vec<ManyDomainsRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coverage: Vec<CoverageRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unseen_domain: Option<UnseenDomainStudy>,
}

/// Runs every enabled ablation and study; returns the masking-intensity `ablations` table and the
/// `studies`, and records a timing per study.
pub fn run_studies(bench: &Bench, config: &ExperimentConfig, timings: &mut BTreeMap<String, f64>) -> Result<(BTreeMap<Ablation, SplitDomain>, Studies)> {
    let e = &config.experiment;
    let mut timed = |name: String, started: Instant| {
        timings.insert(name, started.elapsed().as_secs_f64());
    };
    let mut ablations = BTreeMap::new();
    let flipped_optimizer = e.stage2_optimizer_ablation.then_some(Ablation::Stage2ContinuedOptimizer(!bench.train_config.stage2.continue_optimizer));
    let single_changes = e
        .mask_intensities
        .iter()
        .map(|&x| Ablation::MaskIntensity(x))
        .chain(e.stage2_learning_rates.iter().map(|&x| Ablation::Stage2LearningRate(x)))
        .chain(flipped_optimizer);
    for ablation in single_changes {
        let started = Instant::now();
        let (what, change): (String, &dyn Fn(&mut crate::train::TrainConfig)) = match ablation {
            Ablation::MaskIntensity(x) => (format!("stage-1 masking intensity {x}"), &move |c| c.stage1.mask_intensity = x),
            Ablation::Stage2LearningRate(x) => (format!("stage-2 learning rate {x}"), &move |c| c.stage2.learning_rate = x),
            Ablation::Stage2ContinuedOptimizer(on) => {
                (format!("stage 2 {} stage 1's optimiser", if on { "continuing" } else { "not continuing" }), &move |c| c.stage2.continue_optimizer = on)
            }
        };
        ablations.insert(ablation, bench.variant(&format!("ablation: {what}"), change, Routing::Lsr)?);
        timed(format!("ablation:{ablation}"), started);
    }

    let mut studies = Studies::default();
    for &rank in &e.lora_ranks {
        let started = Instant::now();
        let alpha = 2.0 * rank as f64;
        let (_, experts) = bench.retrain_experts(&format!("ablation: LoRA rank {rank}"), |c| {
            c.lora.rank = rank;
            c.lora.alpha = alpha;
        })?;
        let mut values = bench.evaluate(&experts, &[Routing::Lsr, Routing::Oracle])?.into_iter();
        let adapter_parameters = experts[0].num_parameters();
        studies.lora_rank.push(LoraRankRow {
            rank,
            alpha,
            adapter_parameters,
            adapter_bytes: adapter_parameters * std::mem::size_of::<f32>(),
            r2r_lsr: values.next().unwrap_or_default(),
            r2r_oracle: values.next().unwrap_or_default(),
        });
        timed(format!("ablation:lora_rank:{rank}"), started);
    }

    let type_sets = config.mask_type_sets();
    if !type_sets.is_empty() {
        // "all": every type (the main run's stage 1); "none": nothing masked (intensity 0); the
        // type sets keep the configured intensity.
        let rows: Vec<(String, Vec<String>, Option<f64>)> = [("all".to_string(), Vec::new(), None), ("none".to_string(), Vec::new(), Some(0.0))]
            .into_iter()
            .chain(type_sets.into_iter().map(|t| (t.join("+"), t, None)))
            .collect();
        for (masked, types, intensity) in rows {
            let started = Instant::now();
            let change = |c: &mut crate::train::TrainConfig| {
                c.stage1.mask_types = types.clone();
                c.stage1.mask_intensity = intensity.unwrap_or(c.stage1.mask_intensity);
            };
            let r2r_lsr = bench.variant(&format!("ablation: stage 1 masking {masked}"), change, Routing::Lsr)?;
            timed(format!("ablation:mask_types:{masked}"), started);
            studies.mask_types.push(MaskTypesRow { masked, types, r2r_lsr });
        }
    }

    for &drop in &e.coverage_drop {
        let started = Instant::now();
        let (trained, experts) = bench.retrain_experts(&format!("study: abstraction coverage, gazetteer drop {drop}"), |c| c.stage1.gazetteer_drop = drop)?;
        let recognizer = stage1_recognizer(&trained)?;
        let gold = Dataset { source: None, groups: bench.train_groups.iter().map(|g| (*g).clone()).collect() };
        // No gold spans: no recall and precision; a cancel stops the study.
        let quality = match recognizer_quality(&gold, &recognizer, &mut || bench.ctx.check_cancelled()) {
            Ok(quality) => Some(quality),
            Err(err) if err.is::<Cancelled>() => return Err(err),
            Err(_) => None,
        };
        studies.coverage.push(CoverageRow {
            drop,
            gazetteer_entries: recognizer.gazetteer_entries().count(),
            recall: quality.as_ref().map(|q| q.overall.recall),
            precision: quality.as_ref().map(|q| q.overall.precision),
            r2r_lsr: bench.evaluate(&experts, &[Routing::Lsr])?.remove(0),
        });
        timed(format!("study:coverage:{drop}"), started);
    }

    if !e.many_domains.is_empty() {
        let started = Instant::now();
        studies.many_domains = many_domains_study(bench, &e.many_domains)?;
        timed("study:many_domains".into(), started);
    }
    if !e.unseen_domain.is_empty() {
        let started = Instant::now();
        studies.unseen_domain = Some(unseen_domain_study(bench, &e.unseen_domain)?);
        timed("study:unseen_domain".into(), started);
    }
    Ok((ablations, studies))
}
