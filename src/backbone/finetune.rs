//! The generalist reranking fine-tune of a pretrained language model (Gemma 3 270M): the "pretrained
//! reranker" R2R starts from, as Qwen3 → Qwen3-Reranker. LoRA on every linear layer of the frozen base,
//! listwise InfoNCE over the yes − no margins of 1 positive + k hard negatives, general-domain data only
//! (`general_pretrain`'s train split, plus the sample data's general train groups), documents cut to a
//! word budget. The loop is the project's LoRA trainer, so it checkpoints and resumes like any job.
//! The result is a backbone bundle (`r2r_backbone.json`: base + adapter merged at load + prompt), small
//! enough to ship: the adapter is saved in f16.

use super::corpus::Corpus;
use crate::model::checkpoint::{BackboneBundle, BACKBONE_FILE};
use crate::model::Reranker;
use crate::train::checkpoint::RunDir;
use crate::train::config::{SelectMetric, TrainConfig};
use crate::train::expert::{JobSpec, JobSummary, Trainer};
use crate::train::groups::encode_groups;
use crate::train::jobs::JobContext;
use crate::train::loss::ScoreForm;
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The recipe (defaults: the PyTorch + PEFT run of ../shared/NOTES.md that reached NDCG@10 0.914).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    /// Optimiser steps.
    pub steps: usize,
    /// Query groups per step.
    pub batch_groups: usize,
    /// Hard negatives per group.
    pub negatives: usize,
    pub rank: usize,
    pub alpha: f64,
    pub dropout: f64,
    pub target_modules: Vec<String>,
    pub learning_rate: f64,
    pub warmup_steps: usize,
    /// Documents are cut to this many words before tokenising.
    pub max_doc_words: usize,
    /// Longest prompt in tokens.
    pub max_length: usize,
    /// InfoNCE temperature over yes − no margins.
    pub temperature: f64,
    pub seed: u64,
    pub checkpoint_every: usize,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            steps: 400,
            batch_groups: 2,
            negatives: 3,
            rank: 32,
            alpha: 64.0,
            dropout: 0.0,
            target_modules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"].map(String::from).to_vec(),
            learning_rate: 2e-4,
            warmup_steps: 10,
            max_doc_words: 90,
            max_length: 192,
            temperature: 1.0,
            seed: 7,
            checkpoint_every: 10,
        }
    }
}

impl crate::config_file::ConfigFile for FinetuneConfig {
    fn check(&self) -> Result<()> {
        self.validate()
    }
}

impl FinetuneConfig {
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [("steps", self.steps), ("batch_groups", self.batch_groups), ("negatives", self.negatives), ("rank", self.rank), ("max_doc_words", self.max_doc_words), ("max_length", self.max_length), ("checkpoint_every", self.checkpoint_every)] {
            if value == 0 {
                bail!("finetune config: {field} must be positive");
            }
        }
        if self.rank > 1024 {
            bail!("finetune config: rank {} is larger than 1024", self.rank);
        }
        for (field, value) in [("alpha", self.alpha), ("learning_rate", self.learning_rate), ("temperature", self.temperature)] {
            if !(value.is_finite() && value > 0.0) {
                bail!("finetune config: {field} must be a positive number, not {value}");
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("finetune config: dropout must be in [0, 1), not {}", self.dropout);
        }
        Ok(())
    }

    /// The equivalent training config of the LoRA trainer (one job, one epoch over `steps × batch_groups` groups).
    fn train_config(&self, base: &Path, work: &Path) -> TrainConfig {
        let mut c = TrainConfig::default();
        c.model.path = base.to_path_buf();
        c.model.max_length = self.max_length;
        c.lora.rank = self.rank;
        c.lora.alpha = self.alpha;
        c.lora.dropout = self.dropout;
        c.lora.target_modules = self.target_modules.clone();
        c.objective.temperature = self.temperature;
        c.objective.score = ScoreForm::Logit;
        c.objective.negatives = self.negatives;
        c.optim.learning_rate = self.learning_rate;
        c.optim.warmup_fraction = self.warmup_steps as f64 / self.steps as f64;
        c.optim.final_lr_fraction = 0.0;
        c.optim.batch_groups = self.batch_groups;
        c.optim.grad_accumulation = 1;
        c.optim.seed = self.seed;
        c.output.dir = work.to_path_buf();
        c.output.checkpoint_every = self.checkpoint_every;
        c.output.resume = true;
        c
    }
}

/// What a fine-tune did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneReport {
    pub base: String,
    pub config: FinetuneConfig,
    pub train_groups: usize,
    pub job: JobSummary,
    pub bundle: PathBuf,
}

/// Cuts a document to its first `words` words.
pub fn cut_words(text: &str, words: usize) -> String {
    text.split_whitespace().take(words).collect::<Vec<_>>().join(" ")
}

/// Runs (or resumes) the fine-tune of `base` into the bundle folder `out`, with checkpoints in `work`.
/// `base_name` is what the bundle records as its base (a model-store name, or a path).
pub fn finetune(corpus: &Corpus, config: &FinetuneConfig, base: &Path, base_name: &str, out: &Path, work: &Path, ctx: &JobContext) -> Result<FinetuneReport> {
    config.validate()?;
    let train_config = config.train_config(base, work);
    let reranker = Reranker::load_with_max_length(base, candle_core::Device::Cpu, candle_core::DType::F32, Some(config.max_length))
        .with_context(|| format!("cannot load the base model {}", base.display()))?;
    // One epoch over a seeded sample of steps × batch_groups groups with at least `negatives` negatives.
    let mut pool: Vec<usize> = (0..corpus.train.len()).filter(|&i| corpus.train[i].candidates.iter().filter(|c| c.relevance == 0).count() >= config.negatives).collect();
    pool.shuffle(&mut crate::util::seeded_rng(config.seed, 17));
    pool.truncate(config.steps * config.batch_groups);
    if pool.len() < config.steps * config.batch_groups {
        ctx.log(format!("only {} usable training groups for {} steps × {} groups: the last steps repeat none", pool.len(), config.steps, config.batch_groups));
    }
    let groups: Vec<crate::data::QueryGroup> = pool
        .iter()
        .map(|&i| {
            let mut g = corpus.train[i].clone();
            for c in &mut g.candidates {
                c.text = cut_words(&c.text, config.max_doc_words);
            }
            g
        })
        .collect();
    ctx.log(format!("encoding {} training groups", groups.len()));
    let refs: Vec<&crate::data::QueryGroup> = groups.iter().collect();
    let encoded = encode_groups(&reranker, &refs, Some(ctx))?;
    let run = RunDir::new(work);
    std::fs::create_dir_all(work).with_context(|| format!("cannot create {}", work.display()))?;
    let trainer = Trainer { reranker: &reranker, config: &train_config, run: &run, ctx };
    let spec = JobSpec { job: "generalist".into(), train: &encoded, dev: &[], init: None, init_optimizer: None, epochs: 1, learning_rate: train_config.optim.learning_rate, eval_every: 0, select_best: false, select_metric: SelectMetric::NdcgAt10 };
    let (adapter, summary) = trainer.train(&spec)?;
    write_bundle(out, base_name, config, &adapter, &reranker)?;
    Ok(FinetuneReport { base: base_name.to_string(), config: config.clone(), train_groups: encoded.len(), job: summary, bundle: out.to_path_buf() })
}

/// Writes the bundle: `adapter/` (PEFT, f16), `r2r_backbone.json`, `r2r_prompt.json`.
pub fn write_bundle(out: &Path, base_name: &str, config: &FinetuneConfig, adapter: &crate::model::LoraAdapter, reranker: &Reranker) -> Result<()> {
    crate::model::save_adapter_as(adapter, &out.join("adapter"), base_name, candle_core::DType::F16)?;
    let base_sha256 = crate::model::store::known(base_name).ok().map(|m| m.sha256.to_string());
    let bundle = BackboneBundle {
        format_version: 1,
        base: base_name.to_string(),
        base_sha256,
        adapter: "adapter".into(),
        description: format!("generalist reranker: LoRA r{} α{} on {}, {} steps", config.rank, config.alpha, config.target_modules.join(","), config.steps),
    };
    crate::util::atomic_write_json(&out.join(BACKBONE_FILE), &bundle)?;
    let mut template = reranker.prompt.template.clone();
    template.max_length = config.max_length.max(512);
    crate::util::atomic_write_json(&out.join(crate::model::prompt::PROMPT_FILE), &template)?;
    Ok(())
}
