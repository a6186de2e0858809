//! The experiment configuration (TOML): the training config under `[train]` (every field of
//! `r2r train`'s config, e.g. `[train.data]`, `[train.lora]`) plus `[experiment]` options.
//! Unknown keys are errors.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::train::TrainConfig;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    pub train: TrainConfig,
    pub experiment: ExperimentOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentOptions {
    /// Evaluate at most this many queries per domain and split (0 = all).
    pub max_eval_queries: usize,
    /// Permutations of the paired randomization test.
    pub permutations: usize,
    /// Seed of the randomization test.
    pub seed: u64,
    /// Masking-intensity ablation (slow: retrains stage 1 and the experts per value; empty = off),
    /// e.g. `[0.0, 0.25, 0.5, 1.0]`.
    pub mask_intensities: Vec<f64>,
}

impl Default for ExperimentOptions {
    fn default() -> Self {
        ExperimentOptions { max_eval_queries: 0, permutations: crate::metrics::significance::DEFAULT_PERMUTATIONS, seed: 13, mask_intensities: Vec::new() }
    }
}

impl ExperimentConfig {
    /// Reads a TOML file; errors name the file and the offending key.
    pub fn load(path: &Path) -> anyhow::Result<ExperimentConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: ExperimentConfig = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.validate().with_context(|| format!("{}", path.display()))?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.train.validate()?;
        anyhow::ensure!(self.experiment.permutations > 0, "experiment.permutations must be > 0");
        for x in &self.experiment.mask_intensities {
            anyhow::ensure!((0.0..=1.0).contains(x), "experiment.mask_intensities: {x} is outside [0, 1]");
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_train_config_parses_and_typos_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exp.toml");
        std::fs::write(&path, "[train.lora]\nrank = 8\n[experiment]\nmax_eval_queries = 3\n").unwrap();
        let c = ExperimentConfig::load(&path).unwrap();
        assert_eq!((c.train.lora.rank, c.experiment.max_eval_queries), (8, 3));
        std::fs::write(&path, "[experiment]\npermutatons = 3\n").unwrap();
        let err = format!("{:#}", ExperimentConfig::load(&path).unwrap_err());
        assert!(err.contains("exp.toml") && err.contains("permutatons"), "{err}");
    }
}
