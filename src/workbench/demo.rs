//! The shipped demo run: an `r2r experiment` output packed compactly (`r2r demo pack`) into
//! `assets/demo/<name>/`, which the app opens on first launch so the Router and Rankings panels
//! show R2R without any training. A packed demo is an experiment directory the panels open like
//! any other: the root's results, CSVs and TREC runs as written, and `training/` with the
//! experts (f16 weights), the LSR (`router/`), the run summary, config and fingerprints — no
//! checkpoints, no baselines' adapters. `assets/demo/gemma` is made on the Gemma 3 270M generalist,
//! `assets/demo/tiny` on the bundled backbone (used when Gemma is not installed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};

use crate::model::default_backbone;
use crate::train::RunDir;

/// The demo's files at the experiment root (the TREC runs under `runs/` are added).
const ROOT_FILES: [&str; 11] = [
    "results.json",
    "report.md",
    "systems_test.csv",
    "systems_test_unseen.csv",
    "systems_ood.csv",
    "routing.csv",
    "router_sweep.csv",
    "significance.csv",
    "misroute.csv",
    "ablations.csv",
    "study_many_domains.csv",
];

/// The training run's files kept (besides the experts and the router).
const TRAINING_FILES: [&str; 3] = ["summary.json", "config.toml", "fingerprints.json"];

/// The largest demo the repository ships (bytes).
pub const MAX_DEMO_BYTES: u64 = 40 * 1024 * 1024;

/// The directory holding the shipped demos (`assets/demo` under the project root).
pub fn demo_root() -> PathBuf {
    // Absolute: the path is remembered across launches, which may start in another directory.
    let root = crate::assets::project_root();
    std::fs::canonicalize(&root).unwrap_or(root).join("assets").join("demo")
}

/// The demo the app opens on first launch for the default `backbone`: the Gemma demo when it is the
/// Gemma generalist (Gemma installed), else the bundled-backbone demo; None when that one is not shipped.
pub fn shipped_demo(backbone: &default_backbone::DefaultBackbone) -> Option<PathBuf> {
    shipped_demo_for(&demo_root(), backbone.kind == default_backbone::BackboneKind::GemmaGeneralist)
}

/// As [`shipped_demo`], for a given demo root and backbone choice.
pub fn shipped_demo_for(root: &Path, gemma: bool) -> Option<PathBuf> {
    let dir = root.join(if gemma { "gemma" } else { "tiny" });
    dir.join("results.json").is_file().then_some(dir)
}

/// What `pack` wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct PackReport {
    /// Files written, relative to the demo directory, with their sizes.
    pub files: BTreeMap<String, u64>,
    pub total_bytes: u64,
}

/// Packs the experiment in `experiment` (its root) into `out` (replaced as a whole, atomically):
/// root results and TREC runs as they are, the experts' adapters in f16, the LSR, the training
/// summary. Refuses a directory that is not a finished experiment and a demo over [`MAX_DEMO_BYTES`].
pub fn pack(experiment: &Path, out: &Path) -> Result<PackReport> {
    let results = experiment.join("results.json");
    if !results.is_file() {
        bail!("{}: not a finished experiment (no results.json; run `r2r experiment --out {}` first)", experiment.display(), experiment.display());
    }
    let run = RunDir::new(experiment.join("training"));
    let domains = experiment_domains(&results)?;
    let mut files = BTreeMap::new();
    crate::train::checkpoint::publish_dir(out, |staging| {
        let copy = |from: &Path, rel: &str| -> Result<()> {
            let to = staging.join(rel);
            std::fs::create_dir_all(to.parent().expect("a file under the staging directory"))?;
            std::fs::copy(from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            Ok(())
        };
        std::fs::create_dir_all(staging.join("training"))?;
        for name in ROOT_FILES {
            let from = experiment.join(name);
            if from.is_file() {
                copy(&from, name)?;
            }
        }
        let runs_dir = experiment.join("runs");
        let mut trec: Vec<PathBuf> = std::fs::read_dir(&runs_dir)
            .with_context(|| format!("reading {}", runs_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "trec"))
            .collect();
        trec.sort();
        for path in &trec {
            let name = path.file_name().expect("a file").to_string_lossy().to_string();
            copy(path, &format!("runs/{name}"))?;
        }
        for name in TRAINING_FILES {
            let from = run.root.join(name);
            if name == "summary.json" {
                // With every job's per-step losses (the Training panel's curves; no checkpoints ship).
                let summary = super::run_curves::summary_with_losses(&run.root)?;
                crate::util::atomic_write_json(&staging.join("training").join(name), &summary)?;
            } else if from.is_file() {
                copy(&from, &format!("training/{name}"))?;
            }
        }
        let router = run.router_dir();
        for name in ["router.json", "router.safetensors"] {
            let from = router.join(name);
            if !from.is_file() {
                bail!("{}: the experiment saved no LSR (rerun `r2r experiment` with this build: it writes training/router)", from.display());
            }
            copy(&from, &format!("training/router/{name}"))?;
        }
        for domain in &domains {
            let from = run.expert_dir(domain);
            let rel = format!("training/experts/{domain}");
            let to = staging.join(&rel);
            std::fs::create_dir_all(&to)?;
            copy(&from.join("adapter_config.json"), &format!("{rel}/adapter_config.json"))?;
            let weights = from.join("adapter_model.safetensors");
            let tensors: BTreeMap<String, candle_core::Tensor> = crate::model::checkpoint::read_safetensors(&weights, DType::F32, &Device::Cpu)?
                .into_iter()
                .map(|(name, t)| Ok((name, t.to_dtype(DType::F16)?)))
                .collect::<Result<_>>()?;
            let out_weights = to.join("adapter_model.safetensors");
            crate::model::checkpoint::write_safetensors(&out_weights, &tensors, None)?;
        }
        list_files(staging, staging, &mut files)?;
        let total: u64 = files.values().sum();
        if total > MAX_DEMO_BYTES {
            bail!("the demo would be {:.1} MB, over the {:.0} MB the repository ships", total as f64 / 1e6, MAX_DEMO_BYTES as f64 / 1e6);
        }
        Ok(())
    })?;
    let total_bytes = files.values().sum();
    Ok(PackReport { files, total_bytes })
}

/// Every file under `dir`, relative to `base` ('/'-separated), with its size.
fn list_files(base: &Path, dir: &Path, out: &mut BTreeMap<String, u64>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            list_files(base, &path, out)?;
        } else {
            let rel = path.strip_prefix(base).expect("under base").components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            out.insert(rel, std::fs::metadata(&path)?.len());
        }
    }
    Ok(())
}

/// The target domains of an experiment (results.json `config.train.data.domains`).
fn experiment_domains(results: &Path) -> Result<Vec<String>> {
    let text = crate::util::read_text_limited(results, 64 * 1024 * 1024)?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", results.display()))?;
    let domains = value
        .pointer("/config/train/data/domains")
        .and_then(|d| d.as_array())
        .with_context(|| format!("{}: field `config.train.data.domains` is missing", results.display()))?;
    domains
        .iter()
        .map(|d| d.as_str().map(str::to_string).with_context(|| format!("{}: `config.train.data.domains` holds a non-string", results.display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_follows_the_backbone_and_needs_results() {
        let root = std::env::temp_dir().join(format!("r2r-demo-choice-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("gemma")).unwrap();
        std::fs::create_dir_all(root.join("tiny")).unwrap();
        // No results.json yet: nothing to open.
        assert_eq!(shipped_demo_for(&root, true), None);
        std::fs::write(root.join("tiny/results.json"), "{}").unwrap();
        assert_eq!(shipped_demo_for(&root, false), Some(root.join("tiny")));
        assert_eq!(shipped_demo_for(&root, true), None);
        std::fs::write(root.join("gemma/results.json"), "{}").unwrap();
        assert_eq!(shipped_demo_for(&root, true), Some(root.join("gemma")));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn packing_refuses_an_unfinished_experiment() {
        let dir = std::env::temp_dir().join(format!("r2r-demo-unfinished-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = pack(&dir, &dir.join("out")).unwrap_err().to_string();
        assert!(err.contains("no results.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
