//! `r2r bench train`: times the EAG pipeline — stage 1, one expert per target domain, the router —
//! on the sample data with the paper's training defaults on a 5-minute data budget
//! (assets/configs/sample.toml by default; assets/configs/tiny.toml is quicker) and prints the time
//! of each stage, the total against the 5-minute budget, and the router's test accuracy / macro-F1.
//! Without a backbone (`--model`, else assets/backbone) it writes a seeded random model of the
//! `--like` shape and says so.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::train::{Stage, TrainConfig};

#[derive(Debug, clap::Args)]
pub struct BenchTrainArgs {
    /// Training config (its model and output paths are replaced).
    #[arg(long, default_value = "assets/configs/sample.toml")]
    pub config: PathBuf,
    /// Backbone directory; default assets/backbone, else a random model (see --like).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Shape of the random model used when there is no backbone: qwen3-tiny or qwen3-0.6b.
    #[arg(long, default_value = "qwen3-tiny")]
    pub like: String,
    /// Layers of the random model.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Dataset (default: the config's data.path).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Keep the run here (default: a temporary directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Time budget in seconds the total is compared with.
    #[arg(long, default_value_t = 300.0)]
    pub budget: f64,
}

pub fn run(args: BenchTrainArgs) -> Result<()> {
    let mut config = TrainConfig::load(&args.config)?;
    let scratch = tempfile::tempdir()?;
    let model = match args.model.clone().or_else(|| Some(PathBuf::from("assets/backbone")).filter(|p| p.join("config.json").is_file())) {
        Some(model) => model,
        None => {
            let dir = scratch.path().join("random-model");
            crate::model::make_model::write_random_model(&dir, &args.like, args.layers, 13)?;
            eprintln!("note: no backbone at assets/backbone: timing a seeded random {} model (written to {})", args.like, dir.display());
            dir
        }
    };
    config.model.path = model;
    if let Some(data) = args.data {
        config.data.path = data;
    }
    config.output.dir = args.out.unwrap_or_else(|| scratch.path().join("run"));
    config.output.resume = false;
    config.run.stages = vec![Stage::Stage1, Stage::Experts, Stage::Router];
    config.router.eval_reranking = false;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| format!("all ({} available)", std::thread::available_parallelism().map_or(0, |n| n.get())));
    let started = Instant::now();
    let summary = super::train::run_with_progress(config.clone())?;
    let total = started.elapsed().as_secs_f64();
    print!("{}", super::train::render_summary(&summary));
    let experts = summary.experts.len();
    println!(
        "\nbench train: stage 1 + {experts} experts + {} router on {} ({} train queries/domain, {} epochs stage 1, {} epochs stage 2), threads {threads}",
        config.router.kind,
        config.model.path.display(),
        if config.data.max_train_queries == 0 { "all".into() } else { config.data.max_train_queries.to_string() },
        config.stage1.epochs,
        config.stage2.epochs,
    );
    if let Some(r) = &summary.router {
        println!("router test accuracy {:.4}, macro-F1 {:.4}", r.test.accuracy, r.test.macro_f1);
    }
    println!("total {total:.1} s (budget {:.0} s: {})", args.budget, if total <= args.budget { "within" } else { "OVER" });
    println!(
        "{}",
        serde_json::json!({"total_s": total, "stage_s": summary.stage_seconds, "threads": threads, "model": config.model.path,
            "router_accuracy": summary.router.as_ref().map(|r| r.test.accuracy), "router_macro_f1": summary.router.as_ref().map(|r| r.test.macro_f1)})
    );
    Ok(())
}
