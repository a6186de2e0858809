//! The `r2r` command line: a thin layer over the engine. With no subcommand the
//! desktop app opens; every subcommand runs headless.

use clap::{Parser, Subcommand};

pub mod backbone;
pub mod bench;
pub mod abstract_;
pub mod ner;
pub mod bench_abstract;
pub mod bench_train;
pub mod bm25;
pub mod data;
pub mod demo;
pub mod eval;
pub mod export_cmd;
pub mod progress;
pub mod experiment;
pub mod model;
pub mod route;
pub mod sample_data;
pub mod score;
pub mod serve;
pub mod train;

#[derive(Debug, Parser)]
#[command(name = "r2r", version, about = "R2R Workbench: multi-domain decoder-only rerankers with Route-to-Rerank")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub app: AppArgs,
}

/// Options of the desktop app (used when no subcommand is given).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AppArgs {
    /// Dataset to open at start (defaults to the bundled sample data).
    #[arg(long, global = false)]
    pub data: Option<std::path::PathBuf>,
    /// Render the app (on the sample data unless --data is given), save a PNG of the window, and exit.
    #[arg(long, value_name = "OUT.png")]
    pub screenshot: Option<std::path::PathBuf>,
    /// Panel to show first: Datasets, Abstraction, Training, Router or Rankings.
    #[arg(long, value_name = "NAME")]
    pub panel: Option<String>,
    /// Print frame-time percentiles (p50/p95/p99) when the app exits.
    #[arg(long)]
    pub frame_stats: bool,
    /// Expert corrections file of the Abstraction panel (default: corrections.json in the app's data directory).
    #[arg(long, value_name = "FILE")]
    pub corrections: Option<std::path::PathBuf>,
    /// A training config (TOML): the Training panel starts it at launch.
    #[arg(long, value_name = "CONFIG")]
    pub train: Option<std::path::PathBuf>,
    /// A trained run directory (the Router panel routes its test split at start) or an experiment directory (read back).
    #[arg(long, value_name = "RUN")]
    pub run: Option<std::path::PathBuf>,
    /// An `r2r experiment --out DIR` directory: the Rankings panel opens its systems once the data has loaded.
    #[arg(long, value_name = "DIR")]
    pub experiment: Option<std::path::PathBuf>,
    /// Start training at launch into a temporary directory: `tiny` (assets/configs/tiny.toml) or a config file
    /// (for measuring frame times while a job runs, with --frame-stats and --quit-after).
    #[arg(long, value_name = "tiny|CONFIG")]
    pub auto_train: Option<String>,
    /// Close the window after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub quit_after: Option<f64>,
    /// The generalist's backbone (a model directory, GGUF file or backbone bundle); default: the Gemma
    /// 3 270M generalist when Gemma is installed, else the bundled tiny backbone.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect and convert datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Generate the synthetic multi-domain sample data.
    #[command(subcommand, name = "sample-data")]
    SampleData(sample_data::SampleDataCommand),
    /// Ranking metrics of a TREC run against TREC qrels.
    Eval(eval::EvalArgs),
    /// BM25 first-stage baseline per domain and split.
    Bm25(bm25::Bm25Args),
    /// Entity abstraction (EAG stage 1): export, eval, coverage, show, correct.
    Abstract(Box<abstract_::AbstractArgs>),
    /// Learned entity recognition: build NER sets from public corpora, train and score heads on the backbone.
    Ner(ner::NerArgs),
    /// Score (query, document) pairs from JSONL with a reranker (and optional LoRA adapter).
    Score(score::ScoreArgs),
    /// The bundled generalist backbone: pretrain it from scratch, or evaluate a model on held-out groups.
    #[command(subcommand)]
    Backbone(backbone::BackboneCommand),
    /// Performance measurements.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Train EAG stage 1, the domain experts, the baselines and the router from a TOML config.
    Train(train::TrainArgs),
    /// Train once and evaluate every system of the R2R comparison per domain (results.json, report.md, CSVs, TREC runs).
    Experiment(experiment::ExperimentArgs),
    /// Route a split's queries with a router; print routing accuracy, macro-F1 and the confusion matrix.
    Route(route::RouteArgs),
    /// The model store: fetch a pretrained backbone (e.g. gemma-3-270m), list, verify.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Export for the engines users scale out to (FlagEmbedding, ms-swift).
    #[command(subcommand)]
    Export(export_cmd::ExportCommand),
    /// Import what the engines trained (PEFT adapters) into a run directory.
    #[command(subcommand)]
    Import(export_cmd::ImportCommand),
    /// The routed reranker of a run as a local HTTP rerank service (POST /rerank), or a load test of it.
    Serve(serve::ServeArgs),
    /// The shipped demo run: pack an experiment into it, or show which one the app opens.
    #[command(subcommand)]
    Demo(demo::DemoCommand),
}

/// Parses the arguments and runs the chosen command.
pub fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    match cli.command {
        None => run_app(cli.app),
        Some(Command::Data(cmd)) => data::run(cmd),
        Some(Command::SampleData(cmd)) => sample_data::run(cmd),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Bm25(args)) => bm25::run(args),
        Some(Command::Score(args)) => score::run(args),
        Some(Command::Bench(cmd)) => bench::run(cmd),
        Some(Command::Train(args)) => train::run(args),
        Some(Command::Route(args)) => route::run(args),
        Some(Command::Experiment(args)) => experiment::run(args),
        Some(Command::Abstract(args)) => abstract_::run(*args),
        Some(Command::Ner(args)) => ner::run(args),
        Some(Command::Backbone(cmd)) => backbone::run(cmd),
        Some(Command::Model(cmd)) => model::run(cmd),
        Some(Command::Export(cmd)) => export_cmd::run(cmd),
        Some(Command::Import(cmd)) => export_cmd::run_import(cmd),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Demo(cmd)) => demo::run(cmd),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("R2R_LOG").unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[cfg(feature = "gui")]
fn run_app(args: AppArgs) -> anyhow::Result<()> {
    let AppArgs { data, screenshot, panel, frame_stats, corrections, train, run, experiment, auto_train, quit_after, model } = args;
    crate::gui::run(crate::gui::Launch { data, screenshot, panel, frame_stats, corrections, train, run, experiment, auto_train, quit_after, model })
}

#[cfg(not(feature = "gui"))]
fn run_app(_args: AppArgs) -> anyhow::Result<()> {
    anyhow::bail!("this build has no GUI (built without the `gui` feature); run `r2r --help` for the headless commands")
}
