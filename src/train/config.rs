//! The training configuration (TOML). Every field has a documented default, the
//! paper's where it gives one; unknown keys are errors so typos don't pass
//! silently.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::loss::ScoreForm;
use crate::model::Proj;
use crate::routing::RouterTrainConfig;

/// Most epochs of any stage or of the router (bounds the step count far below overflow).
pub const MAX_EPOCHS: usize = 100_000;
/// Highest LoRA rank (a rank beyond a layer's width adds parameters, never capacity).
pub const MAX_LORA_RANK: usize = 1024;
/// Most hard negatives per group.
pub const MAX_NEGATIVES: usize = 1024;
/// Most groups per micro-batch, and most accumulated micro-batches.
pub const MAX_BATCH: usize = 4096;
/// Widest MLP router hidden layer.
pub const MAX_ROUTER_HIDDEN: usize = 65_536;
/// Longest prompt in tokens.
pub const MAX_LENGTH: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub run: RunConfig,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub lora: LoraConfig,
    pub objective: ObjectiveConfig,
    pub optim: OptimConfig,
    pub stage1: StageConfig,
    pub stage2: StageConfig,
    pub baselines: BaselineConfig,
    pub router: RouterConfig,
    pub output: OutputConfig,
}

/// The parts of the pipeline `r2r train` runs, in this order: `stage1` (EAG stage 1 on the
/// entity-abstracted union), `experts` (stage 2: one expert per domain), `baselines` (direct and
/// single-domain fine-tunes), `router` (routers on the frozen backbone's query states).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub stages: Vec<Stage>,
}

/// One part of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Stage1,
    Experts,
    Baselines,
    Router,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Stage1 => "stage1",
            Stage::Experts => "experts",
            Stage::Baselines => "baselines",
            Stage::Router => "router",
        }
    }
}

/// Which dev metric picks the kept checkpoint of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SelectMetric {
    /// Precision@5 (the paper's choice for stage 1).
    #[default]
    #[serde(rename = "precision@5")]
    PrecisionAt5,
    #[serde(rename = "ndcg@10")]
    NdcgAt10,
}

impl SelectMetric {
    pub fn name(self) -> &'static str {
        match self {
            SelectMetric::PrecisionAt5 => "precision@5",
            SelectMetric::NdcgAt10 => "ndcg@10",
        }
    }
}

/// Baselines trained by the same loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineConfig {
    /// Direct fine-tune: one adapter on the pooled original training data of all target domains.
    pub direct: bool,
    /// Single-domain fine-tune: one adapter per domain on its original data, no stage 1.
    pub single_domain: bool,
    /// Epochs of each baseline (0 = `stage2.epochs`).
    pub epochs: usize,
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
    /// At most this many test queries per domain, the first in file order (0 = all): the router's test
    /// set and the test groups handed to evaluation. Left out of the TOML when 0, so the fingerprints of
    /// runs made before the field existed stay the same.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_test_queries: usize,
}

/// Where the model runs (`model.device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    #[default]
    Cpu,
    /// Needs a build with the `cuda` feature and a GPU.
    Cuda,
    /// CUDA when this build has it and a device answers, else the CPU.
    Auto,
}

impl DeviceChoice {
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
            DeviceChoice::Auto => "auto",
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Arithmetic of the frozen backbone (`model.precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 everywhere.
    #[default]
    F32,
    /// On the CPU: the frozen projections multiply in bf16 (f32 sums; 2× the f32 rate on AVX512-BF16
    /// CPUs), everything else f32; on CUDA: bf16 weights. Scores move by bf16 rounding.
    Bf16,
}

impl Precision {
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    pub fn dtype(self) -> candle_core::DType {
        match self {
            Precision::F32 => candle_core::DType::F32,
            Precision::Bf16 => candle_core::DType::BF16,
        }
    }
}

/// The router trained on the query states (`router.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterKindChoice {
    /// The Latent Semantic Router: softmax(W h + b).
    #[default]
    Linear,
    /// One hidden ReLU layer of `router.mlp_hidden` units.
    Mlp,
}

impl std::fmt::Display for RouterKindChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RouterKindChoice::Linear => "linear",
            RouterKindChoice::Mlp => "mlp",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Hugging Face model directory (config.json, model.safetensors, tokenizer.json).
    pub path: PathBuf,
    /// `cpu`, `cuda` (needs a build with the `cuda` feature and a GPU) or `auto` (CUDA when
    /// this build has it and a device answers, else the CPU).
    pub device: DeviceChoice,
    /// Maximum prompt length in tokens; documents are truncated to fit.
    pub max_length: usize,
    /// `f32` (default) or `bf16` (see [`Precision`]). Left out of the TOML when f32, so the fingerprints
    /// of runs made before the field existed stay the same.
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
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
    /// Negatives per group (the positive makes 1 + negatives candidates).
    pub negatives: usize,
    /// How many of those negatives are mined: the lower-relevance candidates that BM25 (over the
    /// group's own candidates) ranks highest for the query; the rest are drawn at random from the
    /// remaining lower-relevance candidates. 0 (the default) draws all at random.
    #[serde(skip_serializing_if = "is_zero")]
    pub hard_negatives: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_false(x: &bool) -> bool {
    !*x
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
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
    /// Peak learning rate of this stage's jobs (0, the default, = `optim.learning_rate`). Stage 2 continues
    /// a fitted stage-1 adapter, for which the rate of a fresh one may be too high; the baselines keep
    /// `optim.learning_rate`.
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub learning_rate: f64,
    /// Stage 2 only: each expert's AdamW starts from stage 1's final moments and step count (read from
    /// `RUN/state/stage1`), so stage 2 continues stage 1's optimisation on the original data instead
    /// of restarting it (a fresh AdamW's first updates move every weight by about the full rate).
    /// Refused in `stage1`; not written when false, so existing runs keep their fingerprints.
    #[serde(skip_serializing_if = "is_false")]
    pub continue_optimizer: bool,
    /// Entity types to mask in stage 1 (empty = all); ignored in stage 2.
    pub mask_types: Vec<String>,
    /// Fraction of distinct entities masked per group in stage 1.
    pub mask_intensity: f64,
    /// Fraction of the bundled gazetteer entries dropped (seeded by `optim.seed`) before stage 1's
    /// abstraction: degrades the recogniser's recall on purpose (the abstraction-coverage study).
    pub gazetteer_drop: f64,
    /// Stage 1's abstraction also runs the bundled learned NER heads (assets/ner/heads) on the backbone
    /// they record (docs/ner.md); ignored in stage 2.
    pub learned_heads: bool,
    /// Evaluate on dev every this many optimiser steps (0 = at the end of each epoch).
    pub eval_every: usize,
    /// Keep the checkpoint with the best dev metric (else the last one). Without dev data the
    /// last one is kept.
    pub select_best: bool,
    /// The dev metric that selects: `precision@5` or `ndcg@10`.
    pub select_metric: SelectMetric,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// `linear` (the Latent Semantic Router) or `mlp`.
    pub kind: RouterKindChoice,
    pub mlp_hidden: usize,
    /// Training queries per domain the router learns from (0 = all of the train split). Separate from
    /// `data.max_train_queries`: a router costs one forward pass per query, an expert far more.
    pub max_train_queries: usize,
    pub train: RouterTrainConfig,
    /// Also rerank the test split through the experts with hard, soft and oracle routing and
    /// report NDCG@10 (each expert scores every test query: costs experts × queries forwards).
    pub eval_reranking: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    pub dir: PathBuf,
    /// Write a resumable checkpoint every this many optimiser steps (and at the end of a job).
    pub checkpoint_every: usize,
    /// Continue from the checkpoints in `dir` (false: start every job afresh, overwriting them).
    pub resume: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig { stages: vec![Stage::Stage1, Stage::Experts, Stage::Router] }
    }
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig { direct: true, single_domain: true, epochs: 0 }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            path: PathBuf::from("sample_data"),
            domains: ["legal", "medical", "financial"].map(String::from).to_vec(),
            ood_domains: vec!["general".into()],
            max_train_queries: 0,
            max_dev_queries: 100,
            max_test_queries: 0,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { path: PathBuf::from(crate::model::default_backbone::AUTO), device: DeviceChoice::Cpu, max_length: 256, precision: Precision::F32 }
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
        ObjectiveConfig { temperature: 1.0, score: ScoreForm::Probability, negatives: 7, hard_negatives: 0 }
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
        StageConfig {
            skip: false,
            epochs: 1,
            learning_rate: 0.0,
            continue_optimizer: false,
            mask_types: Vec::new(),
            mask_intensity: 1.0,
            gazetteer_drop: 0.0,
            learned_heads: false,
            eval_every: 0,
            select_best: true,
            select_metric: SelectMetric::PrecisionAt5,
        }
    }
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig { kind: RouterKindChoice::Linear, mlp_hidden: 128, max_train_queries: 0, train: RouterTrainConfig::default(), eval_reranking: false }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig { dir: PathBuf::from("runs/default"), checkpoint_every: 50, resume: true }
    }
}

impl TrainConfig {
    /// Reads a TOML file; errors name the file and the offending key.
    pub fn load(path: &Path) -> anyhow::Result<TrainConfig> {
        crate::config_file::load(path)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config serialises")
    }

    /// Range checks that serde cannot express. Every bound is documented in
    /// assets/configs/default.toml and the README ("What the tool refuses and why").
    pub fn validate(&self) -> anyhow::Result<()> {
        let finite_positive = |x: f64| x.is_finite() && x > 0.0;
        let finite_non_negative = |x: f64| x.is_finite() && x >= 0.0;
        let fraction = |x: f64| (0.0..=1.0).contains(&x);
        let checks: [(bool, String); 20] = [
            ((1..=MAX_LORA_RANK).contains(&self.lora.rank), format!("lora.rank must be in 1..={MAX_LORA_RANK}, found {}", self.lora.rank)),
            (finite_positive(self.lora.alpha), format!("lora.alpha must be a positive finite number, found {}", self.lora.alpha)),
            (finite_positive(self.objective.temperature), format!("objective.temperature must be > 0 and finite, found {}", self.objective.temperature)),
            ((1..=MAX_NEGATIVES).contains(&self.objective.negatives), format!("objective.negatives must be in 1..={MAX_NEGATIVES}, found {}", self.objective.negatives)),
            (self.objective.hard_negatives <= self.objective.negatives, format!("objective.hard_negatives ({}) must not exceed objective.negatives ({})", self.objective.hard_negatives, self.objective.negatives)),
            (finite_positive(self.optim.learning_rate), format!("optim.learning_rate must be > 0 and finite, found {}", self.optim.learning_rate)),
            (finite_non_negative(self.optim.weight_decay), format!("optim.weight_decay must be >= 0 and finite, found {}", self.optim.weight_decay)),
            (finite_non_negative(self.optim.grad_clip), format!("optim.grad_clip must be >= 0 and finite (0 = off), found {}", self.optim.grad_clip)),
            (fraction(self.optim.final_lr_fraction), format!("optim.final_lr_fraction must be in [0, 1], found {}", self.optim.final_lr_fraction)),
            ((1..=MAX_BATCH).contains(&self.optim.batch_groups), format!("optim.batch_groups must be in 1..={MAX_BATCH}, found {}", self.optim.batch_groups)),
            ((1..=MAX_BATCH).contains(&self.optim.grad_accumulation), format!("optim.grad_accumulation must be in 1..={MAX_BATCH}, found {}", self.optim.grad_accumulation)),
            (fraction(self.stage1.mask_intensity), "stage1.mask_intensity must be in [0, 1]".into()),
            (fraction(self.stage1.gazetteer_drop), "stage1.gazetteer_drop must be in [0, 1]".into()),
            (self.router.kind != RouterKindChoice::Mlp || (1..=MAX_ROUTER_HIDDEN).contains(&self.router.mlp_hidden), format!("router.mlp_hidden must be in 1..={MAX_ROUTER_HIDDEN}, found {}", self.router.mlp_hidden)),
            ((1..=MAX_EPOCHS).contains(&self.router.train.epochs), format!("router.train.epochs must be in 1..={MAX_EPOCHS}, found {}", self.router.train.epochs)),
            (finite_positive(self.router.train.learning_rate), format!("router.train.learning_rate must be > 0 and finite, found {}", self.router.train.learning_rate)),
            (finite_non_negative(self.router.train.weight_decay), format!("router.train.weight_decay must be >= 0 and finite, found {}", self.router.train.weight_decay)),
            ((1..=MAX_LENGTH).contains(&self.model.max_length), format!("model.max_length must be in 1..={MAX_LENGTH} tokens, found {}", self.model.max_length)),
            (self.baselines.epochs <= MAX_EPOCHS, format!("baselines.epochs must be at most {MAX_EPOCHS} (0 = stage2.epochs), found {}", self.baselines.epochs)),
            (self.output.checkpoint_every > 0, "output.checkpoint_every must be > 0".into()),
        ];
        for (ok, message) in checks {
            anyhow::ensure!(ok, "{message}");
        }
        for (name, stage) in [("stage1", &self.stage1), ("stage2", &self.stage2)] {
            anyhow::ensure!(
                stage.learning_rate.is_finite() && stage.learning_rate >= 0.0,
                "{name}.learning_rate must be a finite rate >= 0 (0 = optim.learning_rate), found {}",
                stage.learning_rate
            );
            anyhow::ensure!(
                stage.skip || (1..=MAX_EPOCHS).contains(&stage.epochs),
                "{name}.epochs must be in 1..={MAX_EPOCHS}, found {}",
                stage.epochs
            );
        }
        anyhow::ensure!(
            !self.stage1.continue_optimizer,
            "stage1.continue_optimizer: only stage 2 can continue an optimiser (stage 1's); set stage2.continue_optimizer"
        );
        anyhow::ensure!(
            !(self.stage2.continue_optimizer && self.stage1.skip),
            "stage2.continue_optimizer needs stage 1 (stage1.skip = true leaves no optimiser to continue)"
        );
        anyhow::ensure!(!self.data.domains.is_empty(), "data.domains lists no target domain");
        let mut seen = std::collections::BTreeSet::new();
        for domain in &self.data.domains {
            anyhow::ensure!(!domain.trim().is_empty(), "data.domains holds an empty name");
            anyhow::ensure!(seen.insert(domain.as_str()), "data.domains names `{domain}` twice (each target domain gets one expert)");
        }
        let mut seen_ood = std::collections::BTreeSet::new();
        for domain in &self.data.ood_domains {
            anyhow::ensure!(seen_ood.insert(domain.as_str()), "data.ood_domains names `{domain}` twice");
            anyhow::ensure!(!seen.contains(domain.as_str()), "`{domain}` is both in data.domains and data.ood_domains");
        }
        anyhow::ensure!((0.0..1.0).contains(&self.lora.dropout), "lora.dropout must be in [0, 1)");
        anyhow::ensure!((0.0..=1.0).contains(&self.optim.warmup_fraction), "optim.warmup_fraction must be in [0, 1]");
        anyhow::ensure!(!self.lora.target_modules.is_empty(), "lora.target_modules lists no layer");
        for name in &self.lora.target_modules {
            anyhow::ensure!(
                Proj::from_name(name).is_some(),
                "lora.target_modules: `{name}` is not a linear layer (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)"
            );
        }
        Ok(())
    }

    /// The adapter hyper-parameters in the model's terms.
    pub fn lora_config(&self) -> crate::model::LoraConfig {
        let mut targets: Vec<Proj> = self.lora.target_modules.iter().filter_map(|n| Proj::from_name(n)).collect();
        targets.sort();
        targets.dedup();
        crate::model::LoraConfig {
            r: self.lora.rank,
            alpha: self.lora.alpha,
            dropout: self.lora.dropout as f32,
            target_modules: targets,
            use_rslora: false,
        }
    }

    /// The peak learning rate of `stage`'s jobs: its own, else `optim.learning_rate`.
    pub fn stage_learning_rate(&self, stage: &StageConfig) -> f64 {
        if stage.learning_rate > 0.0 {
            stage.learning_rate
        } else {
            self.optim.learning_rate
        }
    }

    /// Epochs of the baselines.
    pub fn baseline_epochs(&self) -> usize {
        if self.baselines.epochs == 0 {
            self.stage2.epochs
        } else {
            self.baselines.epochs
        }
    }

    /// The compute device named by `model.device`.
    pub fn device(&self) -> anyhow::Result<candle_core::Device> {
        match self.model.device {
            DeviceChoice::Cuda => crate::model::select_device(true),
            DeviceChoice::Auto => Ok(crate::model::select_device(true).unwrap_or(candle_core::Device::Cpu)),
            DeviceChoice::Cpu => Ok(candle_core::Device::Cpu),
        }
    }

    /// A fingerprint of everything that shapes training results (not the output settings).
    pub fn training_fingerprint(&self) -> String {
        let mut copy = self.clone();
        copy.output = OutputConfig::default();
        copy.run = RunConfig::default();
        crate::util::sha256_hex(copy.to_toml().as_bytes())
    }
}

impl crate::config_file::ConfigFile for TrainConfig {
    fn check(&self) -> anyhow::Result<()> {
        self.validate()
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
    fn stage_learning_rates_and_a_continued_optimiser_are_written_only_when_set() {
        let mut config = TrainConfig::default();
        let before = config.training_fingerprint();
        assert_eq!(config.stage_learning_rate(&config.stage2), config.optim.learning_rate);
        let written: toml::Table = toml::from_str(&config.to_toml()).unwrap();
        for stage in ["stage1", "stage2"] {
            assert!(!written[stage].as_table().unwrap().contains_key("learning_rate"), "unset: not written, so existing runs keep their fingerprints");
        }
        assert!(!written["stage2"].as_table().unwrap().contains_key("continue_optimizer"), "false: not written");
        config.stage2.learning_rate = 1e-5;
        assert_eq!((config.stage_learning_rate(&config.stage2), config.stage_learning_rate(&config.stage1)), (1e-5, config.optim.learning_rate));
        assert_ne!(config.training_fingerprint(), before);
        let parsed: TrainConfig = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(parsed, config);
        let rate_only = config.training_fingerprint();
        config.stage2.continue_optimizer = true;
        assert_ne!(config.training_fingerprint(), rate_only);
        let parsed: TrainConfig = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn the_shipped_configs_parse_and_default_toml_is_the_defaults() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs");
        assert_eq!(TrainConfig::load(&dir.join("default.toml")).unwrap(), TrainConfig::default());
        let tiny = TrainConfig::load(&dir.join("tiny.toml")).unwrap();
        assert_eq!((tiny.lora.rank, tiny.objective.score), (8, ScoreForm::Logit));
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

    #[test]
    fn closed_sets_are_enums_whose_unknown_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.toml");
        std::fs::write(&path, "[model]\ndevice = \"auto\"\n[router]\nkind = \"mlp\"\n").unwrap();
        let config = TrainConfig::load(&path).unwrap();
        assert_eq!((config.model.device, config.router.kind), (DeviceChoice::Auto, RouterKindChoice::Mlp));
        // The names written back are the ones read (fingerprints of existing runs stay valid).
        assert!(config.to_toml().contains("device = \"auto\"") && config.to_toml().contains("kind = \"mlp\""));
        for (text, field, value) in [("[model]\ndevice = \"gpu\"\n", "device", "gpu"), ("[router]\nkind = \"tree\"\n", "kind", "tree")] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", TrainConfig::load(&path).unwrap_err());
            assert!(err.contains("train.toml") && err.contains(field) && err.contains(value), "{err}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.toml");
        let cases = [
            ("[data]\ndomains = [\"legal\", \"legal\"]\n", "data.domains names `legal` twice"),
            ("[data]\ndomains = [\"legal\"]\nood_domains = [\"legal\"]\n", "both in data.domains and data.ood_domains"),
            ("[stage2]\nepochs = 9223372036854775807\n", "stage2.epochs"),
            ("[stage1]\nepochs = 0\n", "stage1.epochs"),
            ("[baselines]\nepochs = 1000000000\n", "baselines.epochs"),
            ("[lora]\nrank = 100000\n", "lora.rank"),
            ("[lora]\nalpha = nan\n", "lora.alpha"),
            ("[model]\nmax_length = 0\n", "model.max_length"),
            ("[objective]\ntemperature = inf\n", "objective.temperature"),
            ("[objective]\nnegatives = 3\nhard_negatives = 4\n", "objective.hard_negatives (4) must not exceed objective.negatives (3)"),
            ("[optim]\nlearning_rate = nan\n", "optim.learning_rate"),
            ("[stage2]\nlearning_rate = -0.001\n", "stage2.learning_rate must be a finite rate >= 0"),
            ("[stage1]\nlearning_rate = inf\n", "stage1.learning_rate"),
            ("[stage1]\ncontinue_optimizer = true\n", "stage1.continue_optimizer"),
            ("[stage1]\nskip = true\n[stage2]\ncontinue_optimizer = true\n", "stage2.continue_optimizer needs stage 1"),
            ("[optim]\ngrad_clip = -1.0\n", "optim.grad_clip"),
            ("[router.train]\nepochs = 0\n", "router.train.epochs"),
            ("[router]\nkind = \"mlp\"\nmlp_hidden = 0\n", "router.mlp_hidden"),
        ];
        for (text, expected) in cases {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", TrainConfig::load(&path).expect_err(text));
            assert!(err.contains("train.toml") && err.contains(expected), "{text}: {err}");
        }
        // A byte-order mark is stripped, as for every other input file.
        std::fs::write(&path, "\u{feff}[lora]\nrank = 8\n").unwrap();
        assert_eq!(TrainConfig::load(&path).unwrap().lora.rank, 8);
    }
}
