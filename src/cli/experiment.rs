//! `r2r experiment --config FILE --out DIR [--model DIR] [--data PATH]`: trains the adapters once
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
    /// default: every default (sample_data, assets/backbone).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output directory (results, report, runs, trained adapters under training/).
    #[arg(long)]
    pub out: PathBuf,
    /// Backbone model directory (overrides train.model.path).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Dataset (overrides train.data.path).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Masking-intensity ablation (slow; overrides experiment.mask_intensities), e.g. 0,0.25,0.5,1.
    #[arg(long, value_delimiter = ',')]
    pub mask_intensities: Vec<f64>,
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
    if !args.mask_intensities.is_empty() {
        config.experiment.mask_intensities = args.mask_intensities.clone();
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
        Ok(String::new())
    });
    super::progress::drive_job(job, "experiment", false)?;
    print!("{}", std::fs::read_to_string(out.join("report.md"))?);
    eprintln!("wrote {}/results.json, report.md, CSVs and runs/", out.display());
    Ok(())
}

