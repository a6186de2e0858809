//! What `r2r train` (and the GUI) runs: load the backbone and the data, check the run directory's
//! fingerprints, then the configured stages in order — EAG stage 1, the stage-2 experts, the
//! baselines, the router — reporting through a `JobContext`. Each job resumes from its checkpoint;
//! completed jobs are reused, so re-running a finished config only re-reads its results.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::checkpoint::RunDir;
use super::config::{Stage, TrainConfig};
use super::eag::{run_baselines, run_experts, run_stage1};
use super::expert::{JobSummary, Trainer};
use super::features::backbone_fingerprint;
use super::groups::{encode_groups, EncodedGroup};
use super::jobs::JobContext;
use super::loss::ScoreForm;
use super::route_stage::{run_router, RouterSummary};
use crate::data::{QueryGroup, Split};
use crate::model::Reranker;
use crate::util::sha256_hex;

/// The data of the target domains, per domain, with the training and dev groups tokenised.
pub struct PreparedData {
    pub train: BTreeMap<String, Vec<QueryGroup>>,
    /// The router's training queries per domain (`router.max_train_queries`).
    pub router_train: BTreeMap<String, Vec<QueryGroup>>,
    pub dev: BTreeMap<String, Vec<QueryGroup>>,
    pub test: BTreeMap<String, Vec<QueryGroup>>,
    pub train_encoded: BTreeMap<String, Vec<EncodedGroup>>,
    pub dev_encoded: BTreeMap<String, Vec<EncodedGroup>>,
    pub data_fingerprint: String,
    pub backbone_fingerprint: String,
}

/// Fingerprints stored in `RUN/fingerprints.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprints {
    pub data: String,
    pub backbone: String,
    pub config: String,
}

/// The outcome of `run_training` (also written to `RUN/summary.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_dir: PathBuf,
    pub backbone: String,
    pub device: String,
    pub score_form: ScoreForm,
    pub stages: Vec<Stage>,
    pub stage1: Option<JobSummary>,
    pub experts: BTreeMap<String, JobSummary>,
    pub baselines: BTreeMap<String, JobSummary>,
    pub router: Option<RouterSummary>,
    /// Wall-clock seconds per stage in this session, and in total.
    pub stage_seconds: BTreeMap<String, f64>,
    pub seconds: f64,
}

/// Loads the reranker named by the config on its device, in its precision (`model.precision`).
pub fn load_reranker(config: &TrainConfig) -> Result<Reranker> {
    let path = crate::model::default_backbone::resolve(&config.model.path);
    let device = config.device()?;
    Reranker::load_with_max_length(&path, device, config.model.precision.dtype(), Some(config.model.max_length))
        .with_context(|| format!("loading the backbone {} (model.path)", path.display()))
}

fn take(groups: impl Iterator<Item = QueryGroup>, limit: usize) -> Vec<QueryGroup> {
    if limit == 0 {
        groups.collect()
    } else {
        groups.take(limit).collect()
    }
}

/// Loads the dataset and keeps the target domains' train (limited), dev (limited) and test groups;
/// with a job context, cancellation is checked while tokenising.
pub fn prepare_data(config: &TrainConfig, reranker: &Reranker, ctx: Option<&JobContext>) -> Result<PreparedData> {
    let dataset = crate::data::load(&config.data.path, &crate::data::LoadOptions::default()).with_context(|| "data.path".to_string())?;
    let available = dataset.domains();
    let (mut train, mut dev, mut test, mut router_train) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut lines = Vec::new();
    for domain in &config.data.domains {
        if !available.contains(domain) {
            bail!("data.domains names `{domain}`, which {} does not hold (domains: {available:?})", config.data.path.display());
        }
        let of = |split| dataset.select(Some(domain), Some(split)).cloned();
        let tr = take(of(Split::Train), config.data.max_train_queries);
        if tr.is_empty() {
            bail!("domain `{domain}` has no training queries in {}", config.data.path.display());
        }
        let dv = take(of(Split::Dev), config.data.max_dev_queries);
        let rt = take(of(Split::Train), config.router.max_train_queries);
        lines.extend(rt.iter().map(crate::data::native::to_line));
        router_train.insert(domain.clone(), rt);
        let ts: Vec<QueryGroup> = take(of(Split::Test), config.data.max_test_queries);
        lines.extend(tr.iter().chain(&dv).chain(&ts).map(crate::data::native::to_line));
        train.insert(domain.clone(), tr);
        dev.insert(domain.clone(), dv);
        test.insert(domain.clone(), ts);
    }
    let encode = |m: &BTreeMap<String, Vec<QueryGroup>>| -> Result<BTreeMap<String, Vec<EncodedGroup>>> {
        m.iter().map(|(d, gs)| Ok((d.clone(), encode_groups(reranker, &gs.iter().collect::<Vec<_>>(), ctx)?))).collect()
    };
    Ok(PreparedData {
        train_encoded: encode(&train)?,
        dev_encoded: encode(&dev)?,
        train,
        router_train,
        dev,
        test,
        data_fingerprint: sha256_hex(lines.join("\n").as_bytes()),
        backbone_fingerprint: backbone_fingerprint(&crate::model::default_backbone::resolve(&config.model.path))?,
    })
}

/// Records (or, when resuming, checks) the run directory's config and fingerprints.
fn prepare_run_dir(config: &TrainConfig, run: &RunDir, data: &PreparedData) -> Result<()> {
    let fingerprints = Fingerprints { data: data.data_fingerprint.clone(), backbone: data.backbone_fingerprint.clone(), config: config.training_fingerprint() };
    let path = run.fingerprints_path();
    if config.output.resume && path.is_file() {
        let text = crate::util::read_text_limited(&path, crate::util::MAX_CONFIG_FILE_BYTES)?;
        let old: Fingerprints = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for (what, a, b) in [("data", &old.data, &fingerprints.data), ("backbone", &old.backbone, &fingerprints.backbone)] {
            if a != b {
                bail!(
                    "{}: this run directory was trained on other {what}; use another output directory or start afresh (`--fresh`)",
                    run.root.display()
                );
            }
        }
    }
    crate::util::atomic_write(&run.config_path(), config.to_toml().as_bytes())?;
    crate::util::atomic_write_json(&path, &fingerprints)
}

/// Runs the stages of `config.run.stages` (in pipeline order) and writes `RUN/summary.json`.
pub fn run_training(config: &TrainConfig, ctx: &JobContext) -> Result<RunSummary> {
    config.validate()?;
    ctx.check_cancelled()?;
    let started = Instant::now();
    let mut stages = config.run.stages.clone();
    stages.sort();
    stages.dedup();
    if stages.is_empty() {
        bail!("run.stages is empty: nothing to train");
    }
    // One job per run directory: a second training into the same directory fails here, before it
    // could overwrite adapters the first one is writing and describing.
    let _lock = super::lock::RunLock::acquire(&config.output.dir, "a training job")?;
    let run = RunDir::new(&config.output.dir);
    for removed in run.sweep_orphan_temp_files()? {
        ctx.log(format!("removed {}, left by an interrupted write", removed.display()));
    }
    let reranker = load_reranker(config)?;
    ctx.log(format!(
        "backbone {} ({} layers, hidden {}) on {:?}; score form {:?}, tau {}",
        config.model.path.display(),
        reranker.config().num_layers,
        reranker.config().hidden_size,
        reranker.device(),
        config.objective.score,
        config.objective.temperature
    ));
    ctx.check_cancelled()?;
    let data = prepare_data(config, &reranker, Some(ctx))?;
    prepare_run_dir(config, &run, &data)?;
    let trainer = Trainer { reranker: &reranker, config, run: &run, ctx };
    let mut summary = RunSummary {
        run_dir: run.root.clone(),
        backbone: config.model.path.display().to_string(),
        device: format!("{:?}", reranker.device()),
        score_form: config.objective.score,
        stages: stages.clone(),
        stage1: None,
        experts: BTreeMap::new(),
        baselines: BTreeMap::new(),
        router: None,
        stage_seconds: BTreeMap::new(),
        seconds: 0.0,
    };
    for stage in stages {
        ctx.check_cancelled()?;
        let stage_started = Instant::now();
        match stage {
            Stage::Stage1 if config.stage1.skip => ctx.log("stage1: skipped (stage1.skip = true)"),
            Stage::Stage1 => summary.stage1 = Some(run_stage1(&trainer, &data)?),
            Stage::Experts => summary.experts = run_experts(&trainer, &data)?,
            Stage::Baselines => summary.baselines = run_baselines(&trainer, &data)?,
            Stage::Router => summary.router = Some(run_router(&trainer, &data)?),
        }
        summary.stage_seconds.insert(stage.as_str().into(), stage_started.elapsed().as_secs_f64());
    }
    summary.seconds = started.elapsed().as_secs_f64();
    crate::util::atomic_write_json(&run.summary_path(), &summary)?;
    Ok(summary)
}
