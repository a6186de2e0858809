//! `r2r import adapters DIR --run RUN`: LoRA adapters trained elsewhere (PEFT format, e.g. by FlagEmbedding or
//! ms-swift from `r2r export training`) become the adapters of a run directory, so that the router stage,
//! `r2r route`, and the Router panel's expert comparison use them like the workbench's own.
//!
//! DIR holds one folder per adapter, named after its role: `stage1`, `direct`, `single-<domain>`, or a domain
//! name (an expert). Each is checked against the base model (layers, projections, shapes, rank; no pickle
//! files), fingerprinted (SHA-256 of its weights) and published atomically into the run; `RUN/imported.json`
//! records where each came from.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::adapter_io::{CONFIG_FILE, WEIGHTS_FILE};
use crate::model::{LoadOptions, Reranker};
use crate::train::checkpoint::{publish_adapter, RunDir};
use crate::train::TrainConfig;

/// One imported adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedAdapter {
    /// The folder name in DIR.
    pub name: String,
    /// "stage1", "expert" or "baseline".
    pub role: String,
    pub source: PathBuf,
    pub target: PathBuf,
    /// SHA-256 of the source's adapter_model.safetensors.
    pub sha256: String,
    pub rank: usize,
    pub alpha: f64,
    pub target_modules: Vec<String>,
}

/// What an import did (also written to `RUN/imported.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportReport {
    pub run: PathBuf,
    pub model: PathBuf,
    pub adapters: Vec<ImportedAdapter>,
}

fn role_and_target(run: &RunDir, name: &str) -> (String, PathBuf) {
    match name {
        "stage1" => ("stage1".into(), run.stage1_dir()),
        "direct" => ("baseline".into(), run.baseline_dir("direct")),
        n if n.starts_with("single-") => ("baseline".into(), run.baseline_dir(n)),
        n => ("expert".into(), run.expert_dir(n)),
    }
}

/// Imports every adapter folder of `dir` into the run directory `run`, checked against `model`.
pub fn import_adapters(dir: &Path, model: &Path, run_root: &Path) -> Result<ImportReport> {
    if dir.join(CONFIG_FILE).is_file() {
        bail!("{} is a single adapter: put each adapter in a folder named after its role (a domain, stage1, direct or single-<domain>) inside the folder you import", dir.display());
    }
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(CONFIG_FILE).is_file())
        .collect();
    folders.sort();
    if folders.is_empty() {
        bail!("{} holds no adapter folder (a folder with {CONFIG_FILE} and {WEIGHTS_FILE})", dir.display());
    }
    let model = crate::model::default_backbone::resolve(model);
    let reranker = Reranker::load(&model, &LoadOptions::default()).with_context(|| format!("loading the base model {}", model.display()))?;
    let run = RunDir::new(run_root);
    let _lock = crate::train::RunLock::acquire(run_root, "an adapter import")?;
    // An existing run must be on the same base model.
    let config_path = run.config_path();
    let mut config = if config_path.is_file() {
        let config = TrainConfig::load(&config_path)?;
        let theirs = crate::model::default_backbone::resolve(&config.model.path);
        if std::fs::canonicalize(&theirs).ok() != std::fs::canonicalize(&model).ok() {
            bail!("{} was made on {}, not on {}: import into another run directory", run_root.display(), theirs.display(), model.display());
        }
        config
    } else {
        let mut config = TrainConfig::default();
        config.model.path = model.clone();
        config.data.domains.clear();
        config
    };
    // Check every adapter before publishing any.
    let mut checked = Vec::new();
    for folder in &folders {
        let name = folder.file_name().and_then(|n| n.to_str()).with_context(|| format!("{}: the folder name is not UTF-8", folder.display()))?.to_string();
        let adapter = reranker.load_adapter(folder).with_context(|| format!("adapter {}", folder.display()))?;
        let sha256 = crate::model::store::sha256_file(&folder.join(WEIGHTS_FILE), |_| {})?;
        checked.push((name, folder.clone(), adapter, sha256));
    }
    let mut imported = Vec::new();
    for (name, source, adapter, sha256) in checked {
        let (role, target) = role_and_target(&run, &name);
        publish_adapter(&target, &adapter, &model.display().to_string()).with_context(|| format!("publishing {}", target.display()))?;
        if role == "expert" && !config.data.domains.contains(&name) {
            config.data.domains.push(name.clone());
        }
        if role == "stage1" {
            config.stage1.skip = false;
        }
        let c = &adapter.config;
        imported.push(ImportedAdapter {
            name,
            role,
            source,
            target,
            sha256,
            rank: c.r,
            alpha: c.alpha,
            target_modules: c.target_modules.iter().map(|p| p.name().to_string()).collect(),
        });
    }
    crate::util::atomic_write(&config_path, config.to_toml().as_bytes())?;
    let report = ImportReport { run: run_root.to_path_buf(), model, adapters: imported };
    crate::util::atomic_write_json(&run_root.join("imported.json"), &report)?;
    Ok(report)
}
