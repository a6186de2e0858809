//! The training curves of a finished run, read back for the Training panel: every job's per-step
//! loss and dev points from the run's `summary.json` (a `r2r train` run directory, or an
//! experiment's root or its `training/`). Runs written before `JobSummary::losses` existed take
//! the losses from their checkpoints (`state/<job>/progress.json`) when those are there.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::train::checkpoint::read_progress;
use crate::train::dev_eval::DevPoint;
use crate::train::{JobSummary, RunDir, RunSummary};

/// One job's curve.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCurve {
    /// `stage1`, `expert:legal`, `baseline:direct`, …
    pub job: String,
    /// Loss per optimiser step (step i + 1 at index i).
    pub losses: Vec<f64>,
    pub dev: Vec<DevPoint>,
    pub seconds: f64,
}

/// The curves of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCurves {
    /// The run directory (holding summary.json).
    pub dir: PathBuf,
    pub backbone: String,
    pub jobs: Vec<JobCurve>,
}

impl RunCurves {
    /// Reads `path` (a run directory, or an experiment root holding `training/`).
    pub fn load(path: &Path) -> Result<RunCurves> {
        let dir = if path.join("summary.json").is_file() { path.to_path_buf() } else { path.join("training") };
        if !dir.join("summary.json").is_file() {
            anyhow::bail!("{}: no summary.json here or in training/ (not a finished `r2r train` run or experiment)", path.display());
        }
        let summary = read_summary(&dir)?;
        let run = RunDir::new(&dir);
        let jobs: Vec<&JobSummary> = summary.stage1.iter().chain(summary.experts.values()).chain(summary.baselines.values()).collect();
        let jobs = jobs.into_iter().map(|job| Ok(JobCurve { job: job.job.clone(), losses: losses_of(job, &run)?, dev: job.dev.clone(), seconds: job.seconds })).collect::<Result<_>>()?;
        Ok(RunCurves { dir, backbone: summary.backbone, jobs })
    }
}

/// The job's per-step losses: from the summary, else from its checkpoint.
fn losses_of(job: &JobSummary, run: &RunDir) -> Result<Vec<f64>> {
    if !job.losses.is_empty() {
        return Ok(job.losses.clone());
    }
    Ok(read_progress(&run.state_dir(&job.job))?.map(|p| p.losses).unwrap_or_default())
}

/// The run's `summary.json`.
fn read_summary(run: &Path) -> Result<RunSummary> {
    let path = run.join("summary.json");
    let text = crate::util::read_text_limited(&path, crate::util::MAX_CONFIG_FILE_BYTES)?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// `summary.json` of `run` with every job's losses filled in (from the checkpoints where the
/// summary lacks them): what a packed demo ships, as it ships no checkpoints.
pub fn summary_with_losses(run: &Path) -> Result<serde_json::Value> {
    let mut summary = read_summary(run)?;
    let dir = RunDir::new(run);
    let fill = |job: &mut JobSummary| -> Result<()> {
        job.losses = losses_of(job, &dir)?;
        Ok(())
    };
    if let Some(job) = summary.stage1.as_mut() {
        fill(job)?;
    }
    for job in summary.experts.values_mut().chain(summary.baselines.values_mut()) {
        fill(job)?;
    }
    Ok(serde_json::to_value(&summary)?)
}
