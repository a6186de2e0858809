//! `r2r experiment --config FILE --out DIR [--model DIR] [--data PATH] [study flags]`: trains the adapters once
//! and evaluates every system of the comparison (`r2r::experiment`), with indicatif progress bars
//! (plain lines without a terminal); writes results.json, report.md, CSVs and TREC runs into DIR
//! and prints the report.

use std::path::PathBuf;

use anyhow::Result;

use crate::experiment::report::write_outputs;
use crate::experiment::{run_experiment, ExperimentConfig};
use crate::train::spawn_job;

#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// Experiment config (TOML: `[train.*]` as in `r2r train`'s config, plus `[experiment]`);
    /// default: every default (sample_data, the default backbone: see `model.path = "auto"`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output directory (results, report, runs, trained adapters under training/).
    #[arg(long)]
    pub out: PathBuf,
    /// Backbone: a model directory, GGUF file or backbone bundle (overrides train.model.path).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Dataset (overrides train.data.path).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Masking-intensity ablation (slow; overrides experiment.mask_intensities), e.g. 0,0.25,0.5,1.
    #[arg(long, value_delimiter = ',')]
    pub mask_intensities: Vec<f64>,
    /// Stage-2 learning-rate ablation (slow; overrides experiment.stage2_learning_rates), e.g. 0.0001,0.00005.
    #[arg(long, value_delimiter = ',')]
    pub stage2_learning_rates: Vec<f64>,
    /// Stage-2 optimiser ablation: the experts retrained with stage2.continue_optimizer flipped (slow;
    /// sets experiment.stage2_optimizer_ablation).
    #[arg(long)]
    pub stage2_optimizer_ablation: bool,
    /// LoRA-rank ablation (slow; alpha = 2 × rank; overrides experiment.lora_ranks), e.g. 8,16,32,64.
    #[arg(long, value_delimiter = ',')]
    pub lora_ranks: Vec<usize>,
    /// Per-type masking ablation: a set of stage-1 types, comma-separated (repeatable; overrides
    /// experiment.mask_type_sets), e.g. --mask-type-set DRUG --mask-type-set DISEASE,SYMPTOM.
    #[arg(long)]
    pub mask_type_set: Vec<String>,
    /// Per-type masking ablation with one set per entity type of the target domains (slow).
    #[arg(long)]
    pub mask_each_type: bool,
    /// Many-domains study: numbers of experts (overrides experiment.many_domains), e.g. 20,50.
    #[arg(long, value_delimiter = ',')]
    pub many_domains: Vec<usize>,
    /// Abstraction-coverage study: fractions of the gazetteer dropped (slow; overrides
    /// experiment.coverage_drop), e.g. 0,0.25,0.5,0.75.
    #[arg(long, value_delimiter = ',')]
    pub coverage_drop: Vec<f64>,
    /// Unseen-domain study: hold this domain out of expert and router training (overrides
    /// experiment.unseen_domain).
    #[arg(long)]
    pub unseen_domain: Option<String>,
    /// Evaluate at most this many queries per domain and split (overrides experiment.max_eval_queries).
    #[arg(long)]
    pub max_eval_queries: Option<usize>,
}

pub fn run(args: ExperimentArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => ExperimentConfig::load(path)?,
        None => ExperimentConfig::default(),
    };
    if let Some(model) = args.model {
        config.train.model.path = model;
    }
    if let Some(data) = args.data {
        config.train.data.path = data;
    }
    super::train::announce_backbone(&mut config.train.model.path);
    if !args.mask_intensities.is_empty() {
        config.experiment.mask_intensities = args.mask_intensities.clone();
    }
    let e = &mut config.experiment;
    if !args.stage2_learning_rates.is_empty() {
        e.stage2_learning_rates = args.stage2_learning_rates.clone();
    }
    if !args.lora_ranks.is_empty() {
        e.lora_ranks = args.lora_ranks.clone();
    }
    if !args.mask_type_set.is_empty() {
        e.mask_type_sets = args.mask_type_set.iter().map(|s| s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()).collect();
    }
    e.mask_each_type |= args.mask_each_type;
    e.stage2_optimizer_ablation |= args.stage2_optimizer_ablation;
    if !args.many_domains.is_empty() {
        e.many_domains = args.many_domains.clone();
    }
    if !args.coverage_drop.is_empty() {
        e.coverage_drop = args.coverage_drop.clone();
    }
    if let Some(domain) = &args.unseen_domain {
        e.unseen_domain = domain.clone();
    }
    if let Some(n) = args.max_eval_queries {
        config.experiment.max_eval_queries = n;
    }
    config.validate()?;
    let out = args.out.clone();
    std::fs::create_dir_all(&out)?;
    let job_out = out.clone();
    let job = spawn_job("experiment", None, move |ctx| {
        let results = run_experiment(&config, &job_out, ctx)?;
        write_outputs(&results, &job_out)?;
        Ok(results)
    });
    let results = super::progress::drive_job(job, "experiment", false)?;
    print!("{}", crate::experiment::report::render_markdown(&results));
    eprintln!("wrote {}/results.json, report.md, CSVs and runs/", out.display());
    Ok(())
}

