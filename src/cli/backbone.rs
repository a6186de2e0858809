//! `r2r backbone`: make the bundled generalist backbone (`pretrain`) and measure a model on held-out
//! general-domain groups against BM25 and random order (`eval`).

use crate::backbone::{self, corpus, Comparison, Corpus, CorpusOptions, PretrainConfig};
use crate::data::{self, Split};
use crate::model::Reranker;
use crate::train::jobs::{spawn_job, JobEvent};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum BackboneCommand {
    /// Train the tokenizer and the generalist reranker from scratch and save it as a HF directory.
    Pretrain(PretrainArgs),
    /// NDCG@10 / MRR@10 of a model vs BM25 vs random order, per domain and split.
    Eval(EvalArgs),
    /// Shift a model's yes − no margin to a target mean without changing its rankings (writes calibration.json).
    Calibrate(CalibrateArgs),
    /// Turn a pretrained LM (default: Gemma 3 270M from the model store) into the generalist reranker R2R
    /// starts from: LoRA fine-tune on general-domain data, checkpointed and resumable; writes a backbone bundle.
    Finetune(FinetuneArgs),
}

#[derive(Debug, clap::Args)]
pub struct FinetuneArgs {
    /// Base model: a model-store name (`r2r model list`) or a model path.
    #[arg(long, default_value = "gemma-3-270m")]
    pub base: String,
    /// The backbone bundle to write (r2r_backbone.json, adapter/, r2r_prompt.json).
    #[arg(long, default_value = "assets/gemma-generalist")]
    pub out: PathBuf,
    /// Checkpoint folder (default: `finetune/<base>` beside the model store); rerun the same command to resume.
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// TOML file of `FinetuneConfig` fields (defaults: the recipe in docs/gemma.md).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Optimiser steps (overrides the config).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Stop (at a checkpoint boundary, resumable) after this many minutes.
    #[arg(long)]
    pub minutes: Option<f64>,
    /// general_pretrain JSONL(.xz) (default: ../shared/realdata/general_pretrain.jsonl.xz).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Dataset whose `general` train groups join the training data.
    #[arg(long, default_value = "sample_data")]
    pub sample_data: Option<PathBuf>,
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Model directory to calibrate.
    #[arg(long)]
    pub model: PathBuf,
    /// Where to write the calibrated model (default: in place, every file replaced atomically).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Calibration groups (default: the dev split of ../shared/realdata/general_pretrain.jsonl.xz).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Split the groups come from.
    #[arg(long, default_value = "dev")]
    pub split: String,
    /// Number of groups (the first ones in file order).
    #[arg(long, default_value_t = 200)]
    pub groups: usize,
    /// Wanted mean margin yes − no (0: mean probability score near 0.5).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub target: f64,
    /// Ridge added to the hidden-state covariance, relative to its mean variance (larger: a smaller,
    /// less exact shift that disturbs the rankings less).
    #[arg(long, default_value_t = 0.1)]
    pub ridge: f64,
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct PretrainArgs {
    /// Output model directory.
    #[arg(long)]
    pub out: PathBuf,
    /// Wall-clock budget in minutes (plans the step counts from timed trial steps; stops at the limit).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Reranking steps (instead of planning them from --minutes).
    #[arg(long)]
    pub rank_steps: Option<usize>,
    /// Causal-LM warm-up steps (instead of planning them from --minutes).
    #[arg(long)]
    pub lm_steps: Option<usize>,
    /// Share of the planned time given to the causal-LM warm-up (with --minutes).
    #[arg(long)]
    pub lm_fraction: Option<f64>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// CPU threads for the tensor maths (default: all physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// general_pretrain JSONL(.xz) (default: ../shared/realdata/general_pretrain.jsonl.xz).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Dataset whose `general` train groups join the training data.
    #[arg(long, default_value = "sample_data")]
    pub sample_data: Option<PathBuf>,
    #[arg(long, default_value_t = 300)]
    pub dev_groups: usize,
    #[arg(long, default_value_t = 1000)]
    pub test_groups: usize,
    /// TOML/JSON file of `PretrainConfig` fields overriding the defaults (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Model: a Hugging Face directory, a GGUF file or a backbone bundle; `auto` (default): the Gemma
    /// generalist when Gemma is installed, else the bundled backbone.
    #[arg(long, default_value = "auto")]
    pub model: PathBuf,
    /// Longest prompt in tokens (documents are cut to fit); default: the model's prompt settings.
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Dataset (any format `r2r data` reads; default: general_pretrain's test split).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Splits to evaluate (default: test and test_unseen).
    #[arg(long, value_delimiter = ',')]
    pub splits: Option<Vec<String>>,
    /// At most this many groups per (domain, split), the first ones in file order.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    #[arg(long)]
    pub threads: Option<usize>,
    /// Precision: f32 (default) or bf16 (the frozen projections in bf16 with f32 sums: 2.7× the f32
    /// scoring speed measured on an AVX512-BF16 EPYC; scores move by bf16 rounding).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(cmd: BackboneCommand) -> Result<()> {
    match cmd {
        BackboneCommand::Pretrain(args) => run_pretrain(args),
        BackboneCommand::Eval(args) => run_eval(args),
        BackboneCommand::Calibrate(args) => run_calibrate(args),
        BackboneCommand::Finetune(args) => run_finetune(args),
    }
}

fn run_finetune(args: FinetuneArgs) -> Result<()> {
    use crate::backbone::finetune::{finetune, FinetuneConfig};
    set_threads(args.threads);
    let mut config: FinetuneConfig = match &args.config {
        Some(path) => crate::config_file::load(path)?,
        None => FinetuneConfig::default(),
    };
    if let Some(steps) = args.steps {
        config.steps = steps;
    }
    config.validate()?;
    let base_path = match crate::model::store::known(&args.base) {
        Ok(model) => crate::model::store::installed_path(model.name).with_context(|| format!("{} is not installed: run `r2r model fetch {}` first", model.name, model.name))?,
        Err(_) => PathBuf::from(&args.base),
    };
    let work = args.work.clone().unwrap_or_else(|| crate::model::store::store_dir().with_file_name("finetune").join(crate::train::checkpoint::safe_name(&args.base)));
    // Train on the general data's train split only; no dev or test group is read for training.
    let options = CorpusOptions { general_pretrain: general_data(args.data)?, sample_data: args.sample_data.filter(|p| p.exists()), dev_groups: 0, test_groups: 0 };
    eprintln!("loading {}", options.general_pretrain.display());
    let corpus = Corpus::load(&options)?;
    eprintln!("checkpoints in {} (rerun the same command to resume)", work.display());
    let (out, base_name) = (args.out.clone(), args.base.clone());
    let mut job = spawn_job("finetune", None, move |ctx| {
        let report = finetune(&corpus, &config, &base_path, &base_name, &out, &work, ctx)?;
        crate::util::atomic_write_json(&out.join("finetune_report.json"), &report)?;
        Ok(report)
    });
    if let Some(minutes) = args.minutes {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(minutes * 60.0);
        let cancel = job.canceller();
        std::thread::spawn(move || {
            while std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            cancel();
        });
    }
    for event in job.events.iter() {
        match event {
            JobEvent::Log(m) => eprintln!("{m}"),
            JobEvent::Progress(p) => eprintln!("step {}/{}: loss {:.4} lr {:.2e} ({:.2} groups/s, eta {:.0} s)", p.step, p.total_steps, p.loss, p.learning_rate, p.examples_per_second, p.eta_seconds),
            JobEvent::DevMetrics { .. } => {}
            JobEvent::Checkpoint(dir) => eprintln!("checkpoint {dir}"),
            JobEvent::Finished => {
                job.join_timeout(std::time::Duration::from_secs(30));
                let report = job.take_result().context("the fine-tune ended without a result")??;
                println!("{}", serde_json::to_string_pretty(&report)?);
                println!("saved {}", args.out.display());
                break;
            }
            JobEvent::Failed(message) => anyhow::bail!("fine-tune failed: {message}"),
            JobEvent::Cancelled => {
                eprintln!("stopped at the time limit; the last checkpoint is kept: rerun the same command to resume");
                break;
            }
        }
    }
    job.join_timeout(std::time::Duration::from_secs(30));
    Ok(())
}

fn run_calibrate(args: CalibrateArgs) -> Result<()> {
    set_threads(args.threads);
    let path = general_data(args.data)?;
    let split = Split::parse(&args.split).with_context(|| format!("unknown split {:?}", args.split))?;
    let dataset = data::load(&path, &data::LoadOptions::default()).with_context(|| format!("cannot load {}", path.display()))?;
    let groups: Vec<_> = dataset.select(None, Some(split)).take(args.groups).cloned().collect();
    anyhow::ensure!(!groups.is_empty(), "{}: no groups in split {}", path.display(), split.as_str());
    let out = args.out.unwrap_or_else(|| args.model.clone());
    eprintln!("calibrating {} on {} {} groups of {}", args.model.display(), groups.len(), split.as_str(), path.display());
    let report = backbone::calibrate::calibrate(&args.model, &out, &groups, args.target, args.ridge)?;
    let record = serde_json::json!({"data": path, "split": split.as_str(), "ridge": args.ridge, "report": report});
    crate::util::atomic_write_json(&out.join("calibration.json"), &record)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    println!("saved {} (and calibration.json)", out.display());
    Ok(())
}

fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        // candle's CPU kernels read this when they first size their thread pool.
        std::env::set_var("RAYON_NUM_THREADS", n.max(1).to_string());
    }
}

fn general_data(path: Option<PathBuf>) -> Result<PathBuf> {
    path.or_else(corpus::default_general_pretrain).context("no --data given and ../shared/realdata/general_pretrain.jsonl.xz was not found")
}

fn run_pretrain(args: PretrainArgs) -> Result<()> {
    set_threads(args.threads);
    let mut config = match &args.config {
        Some(path) => crate::config_file::load(path)?,
        None => PretrainConfig::default(),
    };
    config.seed = args.seed;
    if let Some(m) = args.minutes {
        config.minutes = Some(m);
    }
    if let Some(f) = args.lm_fraction {
        config.lm_fraction = f;
    }
    if args.rank_steps.is_some() || args.lm_steps.is_some() {
        config.minutes = None;
        config.rank_steps = args.rank_steps.unwrap_or(config.rank_steps);
        config.lm_steps = args.lm_steps.unwrap_or(0);
    }
    config.validate().with_context(|| args.config.as_ref().map_or("flags".to_string(), |p| p.display().to_string()))?;
    let options = CorpusOptions { general_pretrain: general_data(args.data)?, sample_data: args.sample_data.filter(|p| p.exists()), dev_groups: args.dev_groups, test_groups: args.test_groups };
    eprintln!("loading {}", options.general_pretrain.display());
    let corpus = Corpus::load(&options)?;
    let out = args.out.clone();
    let mut job = spawn_job("backbone", None, move |ctx| {
        backbone::pretrain(&corpus, &config, &out, ctx)
    });
    let bar = ProgressBar::new(1);
    bar.set_style(ProgressStyle::with_template("{prefix:>5} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}").expect("valid template"));
    // Without a terminal the bar is hidden: print lines (and every 10th step) to stderr instead.
    let say = |bar: &ProgressBar, line: String| if bar.is_hidden() { eprintln!("{line}") } else { bar.println(line) };
    for event in job.events.iter() {
        match event {
            JobEvent::Log(m) => say(&bar, m),
            JobEvent::Progress(p) => {
                bar.set_prefix(p.stage.clone());
                bar.set_length(p.total_steps as u64);
                bar.set_position(p.step as u64);
                let message = format!("loss {:.4} lr {:.1e} eta {:.0}s", p.loss, p.learning_rate, p.eta_seconds);
                if bar.is_hidden() && (p.step % 10 == 0 || p.step == p.total_steps) {
                    eprintln!("{} step {}/{}: {message} ({:.1} examples/s)", p.stage, p.step, p.total_steps, p.examples_per_second);
                }
                bar.set_message(message);
            }
            JobEvent::DevMetrics { step, metrics, .. } => {
                let text: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                say(&bar, format!("dev @ step {step}: {}", text.join(", ")));
            }
            JobEvent::Checkpoint(dir) => say(&bar, format!("checkpoint {dir}")),
            JobEvent::Finished => {
                bar.finish_and_clear();
                job.join_timeout(std::time::Duration::from_secs(30));
                let report = job.take_result().context("pretraining ended without a result")??;
                println!("{}", serde_json::to_string_pretty(&report)?);
                println!("saved {}", args.out.display());
                break;
            }
            JobEvent::Failed(message) => {
                bar.abandon();
                anyhow::bail!("backbone pretraining failed: {message}");
            }
            JobEvent::Cancelled => anyhow::bail!("cancelled"),
        }
    }
    job.join_timeout(std::time::Duration::from_secs(5));
    Ok(())
}

fn print_row(domain: &str, split: &str, c: &Comparison) {
    let m = c.model.unwrap_or_default();
    println!(
        "| {domain} | {split} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
        c.bm25.groups, m.ndcg10, c.bm25.ndcg10, c.random.ndcg10, m.mrr10, c.bm25.mrr10, c.random.mrr10
    );
}

fn run_eval(args: EvalArgs) -> Result<()> {
    set_threads(args.threads);
    let model = crate::model::default_backbone::resolve(&args.model);
    let started = std::time::Instant::now();
    let dtype = match args.dtype.as_str() {
        "f32" => candle_core::DType::F32,
        "bf16" => candle_core::DType::BF16,
        other => anyhow::bail!("--dtype {other:?}: expected f32 or bf16"),
    };
    let reranker = Reranker::load_with_max_length(&model, candle_core::Device::Cpu, dtype, args.max_length)?;
    eprintln!("model {} ({}) loaded in {:.1} s", model.display(), args.dtype, started.elapsed().as_secs_f64());
    let path = general_data(args.data)?;
    let dataset = data::load(&path, &data::LoadOptions::default()).with_context(|| format!("cannot load {}", path.display()))?;
    let splits: Vec<Split> = match &args.splits {
        Some(names) => names.iter().map(|n| Split::parse(n).with_context(|| format!("unknown split {n:?}"))).collect::<Result<_>>()?,
        None => vec![Split::Test, Split::TestUnseen],
    };
    println!("| domain | split | groups | model NDCG@10 | BM25 NDCG@10 | random NDCG@10 | model MRR@10 | BM25 MRR@10 | random MRR@10 |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for domain in dataset.domains() {
        for &split in &splits {
            let groups: Vec<_> = dataset.select(Some(&domain), Some(split)).take(args.limit.unwrap_or(usize::MAX)).cloned().collect();
            if groups.is_empty() {
                continue;
            }
            let bar = ProgressBar::new(groups.len() as u64).with_message(format!("{domain}/{split}"));
            let comparison = backbone::evaluate_groups(Some(&reranker), &groups, args.seed, &mut |n| {
                bar.set_position(n as u64);
                Ok(())
            })?;
            bar.finish_and_clear();
            print_row(&domain, split.as_str(), &comparison);
            results.push(serde_json::json!({"domain": domain, "split": split.as_str(), "metrics": comparison}));
        }
    }
    if let Some(json_path) = &args.json {
        crate::util::atomic_write_json(json_path, &serde_json::json!({"model": model, "dtype": args.dtype, "max_length": reranker.prompt.template.max_length, "data": path, "results": results}))?;
    }
    Ok(())
}
