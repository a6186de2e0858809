//! The training configuration (TOML). Every field has a documented default, the
//! paper's where it gives one; unknown keys are errors so typos don't pass
//! silently.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::loss::ScoreForm;
use crate::routing::RouterTrainConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub lora: LoraConfig,
    pub objective: ObjectiveConfig,
    pub optim: OptimConfig,
    pub stage1: StageConfig,
    pub stage2: StageConfig,
    pub router: RouterConfig,
    pub output: OutputConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Dataset (any supported format).
    pub path: PathBuf,
    /// Target domains: one expert each.
    pub domains: Vec<String>,
    /// Out-of-domain domains, evaluated for forgetting only.
    pub ood_domains: Vec<String>,
    /// Use at most this many training queries per domain (0 = all).
    pub max_train_queries: usize,
    /// Use at most this many dev queries per domain for checkpoint selection (0 = all).
    pub max_dev_queries: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Hugging Face model directory (config.json, model.safetensors, tokenizer.json).
    pub path: PathBuf,
    /// `cpu` or `cuda` (needs a build with the `cuda` feature).
    pub device: String,
    /// Maximum prompt length in tokens; documents are truncated to fit.
    pub max_length: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub target_modules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// InfoNCE temperature τ.
    pub temperature: f64,
    /// `probability` (the paper's sigmoid(yes − no)) or `logit` (yes − no).
    pub score: ScoreForm,
    /// Hard negatives per group (the positive makes 1 + negatives candidates).
    pub negatives: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Fraction of a stage's steps spent warming up.
    pub warmup_fraction: f64,
    /// Learning rate at the end of a stage, as a fraction of the peak.
    pub final_lr_fraction: f64,
    /// Gradient-norm clipping threshold (0 = off).
    pub grad_clip: f64,
    /// Query groups per optimiser micro-batch.
    pub batch_groups: usize,
    /// Micro-batches accumulated per optimiser step.
    pub grad_accumulation: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StageConfig {
    /// Skip this stage (stage 1 skipped = "R2R without EAG").
    pub skip: bool,
    pub epochs: usize,
    /// Entity types to mask in stage 1 (empty = all); ignored in stage 2.
    pub mask_types: Vec<String>,
    /// Fraction of distinct entities masked per group in stage 1.
    pub mask_intensity: f64,
    /// Evaluate on dev every this many optimiser steps (0 = at the end of each epoch).
    pub eval_every: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// `linear` (the Latent Semantic Router) or `mlp`.
    pub kind: String,
    pub mlp_hidden: usize,
    pub train: RouterTrainConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    pub dir: PathBuf,
    /// Write a resumable checkpoint every this many optimiser steps.
    pub checkpoint_every: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            path: PathBuf::from("sample_data"),
            domains: ["legal", "medical", "financial"].map(String::from).to_vec(),
            ood_domains: vec!["general".into()],
            max_train_queries: 0,
            max_dev_queries: 100,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { path: PathBuf::from("assets/backbone"), device: "cpu".into(), max_length: 256 }
    }
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            rank: 32,
            alpha: 64.0,
            dropout: 0.05,
            target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"].map(String::from).to_vec(),
        }
    }
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        ObjectiveConfig { temperature: 1.0, score: ScoreForm::Probability, negatives: 7 }
    }
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            learning_rate: 2e-4,
            weight_decay: 0.0,
            warmup_fraction: 0.1,
            final_lr_fraction: 0.1,
            grad_clip: 1.0,
            batch_groups: 4,
            grad_accumulation: 1,
            seed: 13,
        }
    }
}

impl Default for StageConfig {
    fn default() -> Self {
        StageConfig { skip: false, epochs: 1, mask_types: Vec::new(), mask_intensity: 1.0, eval_every: 0 }
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { kind: "linear".into(), mlp_hidden: 128, train: RouterTrainConfig::default() }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { dir: PathBuf::from("runs/default"), checkpoint_every: 50 }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: DataConfig::default(),
            model: ModelConfig::default(),
            lora: LoraConfig::default(),
            objective: ObjectiveConfig::default(),
            optim: OptimConfig::default(),
            stage1: StageConfig::default(),
            stage2: StageConfig::default(),
            router: RouterConfig::default(),
            output: OutputConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Reads a TOML file; errors name the file and the offending key.
    pub fn load(path: &Path) -> anyhow::Result<TrainConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: TrainConfig = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        config.validate().with_context(|| format!("{}", path.display()))?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config serialises")
    }

    /// Range checks that serde cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        let checks: [(bool, &str); 8] = [
            (self.lora.rank > 0, "lora.rank must be > 0"),
            (self.objective.temperature > 0.0, "objective.temperature must be > 0"),
            (self.objective.negatives > 0, "objective.negatives must be > 0"),
            (self.optim.learning_rate > 0.0, "optim.learning_rate must be > 0"),
            (self.optim.batch_groups > 0, "optim.batch_groups must be > 0"),
            (self.optim.grad_accumulation > 0, "optim.grad_accumulation must be > 0"),
            ((0.0..=1.0).contains(&self.stage1.mask_intensity), "stage1.mask_intensity must be in [0, 1]"),
            (["linear", "mlp"].contains(&self.router.kind.as_str()), "router.kind must be `linear` or `mlp`"),
        ];
        for (ok, message) in checks {
            anyhow::ensure!(ok, "{message}");
        }
        anyhow::ensure!(!self.data.domains.is_empty(), "data.domains lists no target domain");
        anyhow::ensure!(["cpu", "cuda"].contains(&self.model.device.as_str()), "model.device must be `cpu` or `cuda`");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers_and_round_trip_through_toml() {
        let config = TrainConfig::default();
        assert_eq!((config.lora.rank, config.lora.alpha), (32, 64.0));
        assert_eq!(config.objective.temperature, 1.0);
        assert_eq!(config.lora.target_modules, ["q_proj", "k_proj", "v_proj", "o_proj"]);
        let parsed: TrainConfig = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn partial_files_fill_defaults_and_typos_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.toml");
        std::fs::write(&path, "[lora]\nrank = 8\n[objective]\nscore = \"logit\"\n").unwrap();
        let config = TrainConfig::load(&path).unwrap();
        assert_eq!(config.lora.rank, 8);
        assert_eq!(config.lora.alpha, 64.0);
        assert_eq!(config.objective.score, ScoreForm::Logit);
        std::fs::write(&path, "[lora]\nrnak = 8\n").unwrap();
        let err = format!("{:#}", TrainConfig::load(&path).unwrap_err());
        assert!(err.contains("train.toml") && err.contains("rnak"), "{err}");
        std::fs::write(&path, "[objective]\ntemperature = 0.0\n").unwrap();
        let err = format!("{:#}", TrainConfig::load(&path).unwrap_err());
        assert!(err.contains("temperature"), "{err}");
    }
}
