//! `r2r export training --engine flagembedding|swift --config FILE --out DIR`: each R2R stage's training
//! data in a scale-out engine's format, its settings translated, and a multi-GPU launch script
//! (docs/scale-out.md); `r2r import adapters DIR --run RUN`: what those engines trained, back into a run.

use std::path::PathBuf;

use anyhow::Result;

use crate::scaleout::{export_training, Engine};
use crate::train::TrainConfig;

#[derive(Debug, clap::Subcommand)]
pub enum ExportCommand {
    /// Stage 1 (entity-abstracted union), stage 2 per domain and the baselines as an engine's training
    /// data, with launch.sh and manifest.json.
    Training(TrainingArgs),
    /// A multi-LoRA serving bundle of a trained run: experts as LoRA modules, the router with the prompt it
    /// reads, the scoring prompt, serving.json (request flow) and vllm.sh.
    Serving(ServingArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServingArgs {
    /// A training run directory with experts and a router.
    #[arg(long)]
    pub run: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EngineArg {
    Flagembedding,
    Swift,
}

#[derive(Debug, clap::Args)]
pub struct TrainingArgs {
    #[arg(long, value_enum)]
    pub engine: EngineArg,
    /// Training config (the one `r2r train` would run).
    #[arg(long)]
    pub config: PathBuf,
    /// Folder to write (data/*.jsonl, launch.sh, manifest.json).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// PEFT adapters trained elsewhere (one folder per adapter: a domain name, stage1, direct or
    /// single-<domain>) checked against the base model and published into a run directory.
    Adapters(ImportAdaptersArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportAdaptersArgs {
    /// Folder of adapter folders.
    pub dir: PathBuf,
    /// The run directory to import into (created when absent).
    #[arg(long)]
    pub run: PathBuf,
    /// The base model the adapters were trained on (default: the default backbone).
    #[arg(long, default_value = "auto")]
    pub model: PathBuf,
}

pub fn run_import(command: ImportCommand) -> Result<()> {
    match command {
        ImportCommand::Adapters(args) => {
            let report = crate::scaleout::import_adapters(&args.dir, &args.model, &args.run)?;
            for a in &report.adapters {
                println!("{:<10} {:<16} r{} α{} [{}]  sha256 {}…  → {}", a.role, a.name, a.rank, a.alpha, a.target_modules.join(","), &a.sha256[..12], a.target.display());
            }
            println!("base {}; recorded in {}", report.model.display(), report.run.join("imported.json").display());
            Ok(())
        }
    }
}

pub fn run(command: ExportCommand) -> Result<()> {
    match command {
        ExportCommand::Training(args) => {
            let config = TrainConfig::load(&args.config)?;
            let engine = match args.engine {
                EngineArg::Flagembedding => Engine::FlagEmbedding,
                EngineArg::Swift => Engine::Swift,
            };
            let export = export_training(&config, engine, &args.out)?;
            for file in &export.files {
                let skipped = if file.skipped > 0 { format!(" ({} without a positive or a negative left out)", file.skipped) } else { String::new() };
                println!("{:<18} {:>6} groups  {}{skipped}", file.stage, file.groups, export.out.join(&file.path).display());
            }
            for caveat in &export.caveats {
                println!("note: {caveat}");
            }
            println!("launch: BASE_MODEL=<HF model dir> NPROC_PER_NODE=<gpus> {}", export.out.join("launch.sh").display());
            Ok(())
        }
        ExportCommand::Serving(args) => {
            let manifest = crate::scaleout::export_serving(&args.run, &args.out)?;
            println!("experts: {}", manifest.experts.keys().cloned().collect::<Vec<_>>().join(", "));
            println!("router reads: {:?}", manifest.router.query_prompt);
            if let Some(adapter) = &manifest.merge_first {
                println!("note: merge the generalist adapter {} into the base before serving", adapter.display());
            }
            println!("wrote {} (serving.json, vllm.sh)", args.out.display());
            Ok(())
        }
    }
}
