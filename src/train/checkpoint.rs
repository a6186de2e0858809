//! The run directory and crash-safe checkpoints.
//!
//! Layout of a run directory `RUN`:
//! - `config.toml` (the training config), `fingerprints.json` (data, backbone, config), `summary.json`
//! - `stage1/` — the kept EAG stage-1 adapter (PEFT: adapter_config.json + adapter_model.safetensors)
//! - `experts/<domain>/` — one expert per target domain (PEFT)
//! - `baselines/direct/`, `baselines/single-<domain>/` — baseline adapters (PEFT)
//! - `router/` — router.safetensors + router.json, report.json (routing metrics on the test split)
//! - `features/<split>.safetensors` — cached query hidden states, keyed by the backbone fingerprint
//! - `state/<job>/` — the job's last resumable checkpoint: the adapter (PEFT), `optimizer.safetensors`
//!   (AdamW moments) and `progress.json` (step, losses, dev history, best step, fingerprint);
//!   `state/<job>-best/` — the best-dev adapter so far.
//!
//! Every directory is published whole: its files are written into a fresh `.<name>.partial-*`
//! sibling, then the old directory is renamed aside to `.<name>.old`, the new one renamed into
//! place, and the old one deleted. A crash before the first rename leaves the old directory
//! untouched (the partial one is swept later); a crash between the two renames leaves `.<name>.old`,
//! which [`recover_dir`] renames back. Resuming restores the adapter, the optimiser moments and the
//! step, and rebuilds the seeded data order and dropout masks from (seed, job, step), so a resumed
//! job ends with the same adapter as an uninterrupted one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use super::dev_eval::DevPoint;
use super::optim::AdamW;
use crate::model::checkpoint::{read_safetensors, write_safetensors};
use crate::model::{LoraAdapter, ModelConfig};

pub const PROGRESS_FILE: &str = "progress.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Paths inside a run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub root: PathBuf,
}

/// A job name as a directory name (`expert:legal` → `expert-legal`).
pub fn safe_name(job: &str) -> String {
    job.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect()
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }
    pub fn stage1_dir(&self) -> PathBuf {
        self.root.join("stage1")
    }
    pub fn expert_dir(&self, domain: &str) -> PathBuf {
        self.root.join("experts").join(safe_name(domain))
    }
    pub fn baseline_dir(&self, name: &str) -> PathBuf {
        self.root.join("baselines").join(safe_name(name))
    }
    pub fn router_dir(&self) -> PathBuf {
        self.root.join("router")
    }
    pub fn features_path(&self, split: &str) -> PathBuf {
        self.root.join("features").join(format!("{split}.safetensors"))
    }
    pub fn state_dir(&self, job: &str) -> PathBuf {
        self.root.join("state").join(safe_name(job))
    }
    pub fn best_dir(&self, job: &str) -> PathBuf {
        self.root.join("state").join(format!("{}-best", safe_name(job)))
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn fingerprints_path(&self) -> PathBuf {
        self.root.join("fingerprints.json")
    }
    pub fn summary_path(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// Removes the temporary files that an interrupted `util::atomic_write` left in the run
    /// directory and its subdirectories (three levels deep). Call it under the run-directory lock.
    pub fn sweep_orphan_temp_files(&self) -> Result<Vec<PathBuf>> {
        fn walk(dir: &Path, depth: usize, removed: &mut Vec<PathBuf>) -> Result<()> {
            removed.extend(crate::util::sweep_orphan_temp_files(dir)?);
            if depth == 0 {
                return Ok(());
            }
            let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
            let mut subdirs: Vec<PathBuf> =
                entries.filter_map(|e| e.ok()).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
            subdirs.sort();
            for sub in subdirs {
                walk(&sub, depth - 1, removed)?;
            }
            Ok(())
        }
        let mut removed = Vec::new();
        walk(&self.root, 3, &mut removed)?;
        Ok(removed)
    }
}

fn sibling(dir: &Path, tag: &str) -> Result<(PathBuf, String)> {
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let name = dir.file_name().and_then(|n| n.to_str()).with_context(|| format!("{} has no usable name", dir.display()))?;
    Ok((parent.clone(), format!(".{name}.{tag}")))
}

/// Repairs the result of a crash inside [`publish_dir`]: restores `.<name>.old` when `dir` is
/// missing, and removes stale `.<name>.partial-*` directories.
pub fn recover_dir(dir: &Path) -> Result<()> {
    let (parent, old_name) = sibling(dir, "old")?;
    let old = parent.join(&old_name);
    if old.is_dir() {
        if dir.exists() {
            std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
        } else {
            std::fs::rename(&old, dir).with_context(|| format!("restoring {} from {}", dir.display(), old.display()))?;
        }
    }
    let (_, partial_prefix) = sibling(dir, "partial-")?;
    if let Ok(entries) = std::fs::read_dir(&parent) {
        let mut stale: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&partial_prefix)))
            .map(|e| e.path())
            .collect();
        stale.sort();
        for path in stale {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
    Ok(())
}

/// Writes a directory whole: `write` fills a fresh sibling, which then replaces `dir` (see the
/// module docs). On error the old directory stays as it was.
pub fn publish_dir(dir: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    recover_dir(dir)?;
    let (parent, partial_prefix) = sibling(dir, "partial-")?;
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(&partial_prefix)
        .tempdir_in(&parent)
        .with_context(|| format!("creating a staging directory in {}", parent.display()))?;
    write(staging.path()).with_context(|| format!("writing {}", dir.display()))?;
    let staged = staging.keep();
    let (_, old_name) = sibling(dir, "old")?;
    let old = parent.join(old_name);
    if dir.exists() {
        std::fs::rename(dir, &old).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    std::fs::rename(&staged, dir).with_context(|| format!("renaming {} to {}", staged.display(), dir.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

/// Publishes an adapter directory in PEFT format.
pub fn publish_adapter(dir: &Path, adapter: &LoraAdapter, base_model: &str) -> Result<()> {
    publish_dir(dir, |staging| crate::model::save_adapter(adapter, staging, base_model))
}

/// Loads a published adapter directory (after repairing a crashed publish).
pub fn load_published_adapter(dir: &Path, base: &ModelConfig, device: &Device) -> Result<LoraAdapter> {
    recover_dir(dir)?;
    crate::model::load_adapter(dir, base, device)
}

/// Everything about a job's progress that a checkpoint records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub job: String,
    /// Optimiser steps done.
    pub step: usize,
    pub total_steps: usize,
    /// Loss of every step done.
    pub losses: Vec<f64>,
    pub dev: Vec<DevPoint>,
    /// The dev point of the adapter in `state/<job>-best/`.
    pub best: Option<DevPoint>,
    /// Fingerprint of what shapes the job (config sections, data, initial adapter).
    pub fingerprint: String,
    pub completed: bool,
    /// Seconds spent training so far (over all sessions).
    pub seconds: f64,
}

/// Writes a resumable checkpoint of a job.
pub fn save_checkpoint(dir: &Path, adapter: &LoraAdapter, optimizer: &AdamW, progress: &Progress, base_model: &str) -> Result<()> {
    publish_dir(dir, |staging| {
        crate::model::save_adapter(adapter, staging, base_model)?;
        write_safetensors(&staging.join(OPTIMIZER_FILE), &optimizer.state_tensors(), None)?;
        crate::util::atomic_write_json(&staging.join(PROGRESS_FILE), progress)
    })
}

/// A checkpoint read back.
pub struct Checkpoint {
    pub adapter: LoraAdapter,
    pub moments: BTreeMap<String, candle_core::Tensor>,
    pub progress: Progress,
}

/// Reads the progress record of the checkpoint in `dir` (no repair, no tensors); `Ok(None)` when there is none.
pub fn read_progress(dir: &Path) -> Result<Option<Progress>> {
    let path = dir.join(PROGRESS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = crate::util::read_text_limited(&path, crate::util::MAX_CONFIG_FILE_BYTES)?;
    Ok(Some(serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?))
}

/// Reads a job's checkpoint; `Ok(None)` when there is none.
pub fn load_checkpoint(dir: &Path, base: &ModelConfig, device: &Device) -> Result<Option<Checkpoint>> {
    recover_dir(dir)?;
    let Some(progress) = read_progress(dir)? else { return Ok(None) };
    let progress_path = dir.join(PROGRESS_FILE);
    // Both reads refuse NaN / infinite tensors: training never resumes from a non-finite checkpoint.
    let refuse = || format!("checkpoint {}: refusing to resume from it (start afresh with `--fresh` / output.resume = false)", dir.display());
    let adapter = crate::model::load_adapter(dir, base, device).with_context(refuse)?;
    let moments: BTreeMap<_, _> = read_safetensors(&dir.join(OPTIMIZER_FILE), DType::F32, device).with_context(refuse)?.into_iter().collect();
    if progress.step > progress.total_steps {
        bail!("{}: step {} beyond total {}", progress_path.display(), progress.step, progress.total_steps);
    }
    Ok(Some(Checkpoint { adapter, moments, progress }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LoraConfig;

    fn tiny() -> ModelConfig {
        ModelConfig::from_json(
            r#"{"model_type":"qwen3","vocab_size":10,"hidden_size":8,"intermediate_size":12,"num_hidden_layers":2,
            "num_attention_heads":2,"num_key_value_heads":1,"head_dim":4,"rms_norm_eps":1e-6,"max_position_embeddings":32}"#,
        )
        .unwrap()
    }

    fn progress(step: usize) -> Progress {
        Progress {
            job: "expert:legal".into(),
            step,
            total_steps: 10,
            losses: vec![1.0; step],
            dev: vec![],
            best: None,
            fingerprint: "f".into(),
            completed: false,
            seconds: 0.0,
        }
    }

    fn adapter_with(value: f32) -> LoraAdapter {
        let adapter = LoraAdapter::new_random(LoraConfig { r: 2, ..Default::default() }, &tiny(), &Device::Cpu, 1).unwrap();
        for var in adapter.vars() {
            var.set(&(var.as_tensor().ones_like().unwrap() * value as f64).unwrap()).unwrap();
        }
        adapter
    }

    fn first_value(adapter: &LoraAdapter) -> f32 {
        adapter.vars()[0].flatten_all().unwrap().to_vec1::<f32>().unwrap()[0]
    }

    #[test]
    fn a_crash_during_a_checkpoint_write_leaves_the_previous_one_loadable() {
        let run = tempfile::tempdir().unwrap();
        let dir = RunDir::new(run.path()).state_dir("expert:legal");
        let optimizer = AdamW::new(adapter_with(1.0).vars(), Default::default()).unwrap();
        save_checkpoint(&dir, &adapter_with(1.0), &optimizer, &progress(3), "base").unwrap();
        let load = || load_checkpoint(&dir, &tiny(), &Device::Cpu).unwrap().unwrap();
        assert_eq!((load().progress.step, first_value(&load().adapter)), (3, 1.0));

        // 1. Killed while writing the new checkpoint: a partial staging directory with a torn file.
        let parent = dir.parent().unwrap();
        let partial = parent.join(".expert-legal.partial-crash1");
        std::fs::create_dir_all(&partial).unwrap();
        let bytes = std::fs::read(dir.join(crate::model::adapter_io::WEIGHTS_FILE)).unwrap();
        std::fs::write(partial.join(crate::model::adapter_io::WEIGHTS_FILE), &bytes[..bytes.len() / 2]).unwrap();
        // ... and a torn temporary file left by an atomic write inside the live directory.
        std::fs::write(dir.join(".tmpXYZ123"), &bytes[..10]).unwrap();
        assert_eq!(load().progress.step, 3);
        assert!(!partial.exists(), "the stale staging directory is swept");

        // 2. Killed between the two renames: the old directory moved aside, the new one not yet in place.
        let old = parent.join(".expert-legal.old");
        std::fs::rename(&dir, &old).unwrap();
        std::fs::create_dir_all(parent.join(".expert-legal.partial-crash2")).unwrap();
        assert!(!dir.exists());
        let restored = load();
        assert_eq!((restored.progress.step, first_value(&restored.adapter)), (3, 1.0));
        assert!(!old.exists());

        // 3. A write that fails half-way (an error inside the staging callback) changes nothing.
        let err = publish_dir(&dir, |staging| {
            std::fs::write(staging.join(PROGRESS_FILE), b"{ torn")?;
            anyhow::bail!("disk full")
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("disk full"));
        assert_eq!(load().progress.step, 3);

        // A complete save replaces it.
        save_checkpoint(&dir, &adapter_with(2.0), &optimizer, &progress(6), "base").unwrap();
        let latest = load();
        assert_eq!((latest.progress.step, first_value(&latest.adapter)), (6, 2.0));
        assert_eq!(latest.moments.len(), 2 * adapter_with(1.0).vars().len());
        let leftovers: Vec<_> = std::fs::read_dir(parent).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn a_non_finite_checkpoint_is_never_resumed_from() {
        let run = tempfile::tempdir().unwrap();
        let dir = RunDir::new(run.path()).state_dir("expert:legal");
        let optimizer = AdamW::new(adapter_with(1.0).vars(), Default::default()).unwrap();
        save_checkpoint(&dir, &adapter_with(f32::NAN), &optimizer, &progress(3), "base").unwrap();
        let err = format!("{:#}", load_checkpoint(&dir, &tiny(), &Device::Cpu).err().expect("a NaN checkpoint must be refused"));
        assert!(err.contains("non-finite") && err.contains("--fresh") && err.contains("adapter_model.safetensors"), "{err}");
    }

    #[test]
    fn orphan_temporary_files_in_the_run_directory_are_swept() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir::new(root.path());
        let expert = run.expert_dir("legal");
        std::fs::create_dir_all(&expert).unwrap();
        std::fs::write(run.root.join(".fingerprints.json.r2r-tmp-a1B2c3"), b"{\"da").unwrap();
        std::fs::write(expert.join(".adapter_config.json.r2r-tmp-x"), b"{").unwrap();
        std::fs::write(run.fingerprints_path(), b"{}").unwrap();
        assert_eq!(run.sweep_orphan_temp_files().unwrap().len(), 2);
        assert!(run.fingerprints_path().is_file());
        assert_eq!(std::fs::read_dir(&expert).unwrap().count(), 0);
    }

    #[test]
    fn missing_checkpoint_is_none_and_broken_progress_names_the_file() {
        let run = tempfile::tempdir().unwrap();
        let dir = run.path().join("state").join("x");
        assert!(load_checkpoint(&dir, &tiny(), &Device::Cpu).unwrap().is_none());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(PROGRESS_FILE), "{").unwrap();
        let err = format!("{:#}", load_checkpoint(&dir, &tiny(), &Device::Cpu).err().unwrap());
        assert!(err.contains("progress.json"), "{err}");
        assert_eq!(safe_name("expert:legal/x"), "expert-legal-x");
    }
}
