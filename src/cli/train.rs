//! `r2r train --config FILE [--only STAGE,..] [--out DIR] [--fresh]`: runs the training pipeline
//! (EAG stage 1, experts, baselines, router) on a background job and shows its progress as
//! indicatif bars; prints a summary at the end (or JSON with `--json`). Relative paths in the
//! config are taken from the current directory.

use std::path::PathBuf;

use anyhow::Result;

use crate::train::{run_training, spawn_job, RunSummary, Stage, TrainConfig};

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Training config (TOML; see assets/configs/default.toml for every field and its default).
    #[arg(long)]
    pub config: PathBuf,
    /// Run only these stages (comma-separated: stage1, experts, baselines, router); default: run.stages.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Stage>,
    /// Output (run) directory; default: output.dir.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Ignore existing checkpoints in the run directory and overwrite them.
    #[arg(long)]
    pub fresh: bool,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TrainArgs) -> Result<()> {
    let mut config = TrainConfig::load(&args.config)?;
    if !args.only.is_empty() {
        config.run.stages = args.only.clone();
    }
    if let Some(out) = args.out {
        config.output.dir = out;
    }
    if args.fresh {
        config.output.resume = false;
    }
    announce_backbone(&mut config.model.path);
    let summary = run_with_progress(config)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render_summary(&summary));
    }
    Ok(())
}

/// Resolves `model.path = "auto"` and says on stderr which backbone that is and how to get the other.
pub fn announce_backbone(path: &mut PathBuf) {
    if crate::model::default_backbone::is_auto(path) {
        let chosen = crate::model::default_backbone::default_backbone();
        eprintln!("{}", chosen.note);
        *path = chosen.path;
    }
}

/// Runs `run_training` on a job thread and draws its events as progress bars (on stderr).
pub fn run_with_progress(config: TrainConfig) -> Result<RunSummary> {
    let job = spawn_job("train", None, move |ctx| run_training(&config, ctx));
    super::progress::drive_job(job, "training", true)
}

/// A plain-text summary of a run.
pub fn render_summary(s: &RunSummary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "\nrun {} (backbone {}, {}, score form {:?})", s.run_dir.display(), s.backbone, s.device, s.score_form);
    let _ = writeln!(out, "{:<24} {:>6} {:>10} {:>10} {:>8} {:>8} {:>8}", "job", "steps", "loss start", "loss end", "P@5", "NDCG@10", "seconds");
    let jobs = s.stage1.iter().chain(s.experts.values()).chain(s.baselines.values());
    for j in jobs {
        let dev = j.kept.or(j.dev.last().copied());
        let (p5, ndcg) = dev.map_or(("-".into(), "-".into()), |d| (format!("{:.4}", d.precision_at_5), format!("{:.4}", d.ndcg_at_10)));
        let _ = writeln!(out, "{:<24} {:>6} {:>10.4} {:>10.4} {:>8} {:>8} {:>8.1}", j.job, j.steps, j.loss_start, j.loss_end, p5, ndcg, j.seconds);
    }
    if let Some(r) = &s.router {
        let _ = writeln!(out, "\nrouter {} on the test split ({} training queries):", r.router, r.train_queries);
        let _ = write!(out, "{}", r.test.render());
        let _ = writeln!(out, "\nother routers on the test split (accuracy, macro-F1):");
        for (name, (acc, f1)) in &r.baselines {
            let _ = writeln!(out, "  {name:<20} {acc:.4} {f1:.4}");
        }
        if let Some(reranking) = &r.reranking {
            let _ = writeln!(out, "\ntest NDCG@10 by routing policy:");
            for (name, v) in reranking {
                let _ = writeln!(out, "  {name:<20} {v:.4}");
            }
        }
    }
    let stages: Vec<String> = s.stage_seconds.iter().map(|(k, v)| format!("{k} {v:.1}s")).collect();
    let _ = writeln!(out, "\ntime: {} (total {:.1}s)", stages.join(", "), s.seconds);
    out
}
