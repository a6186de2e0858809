//! `r2r bench train`: times the EAG pipeline — stage 1, one expert per target domain, the router —
//! on the sample data with the paper's training defaults on a 5-minute data budget
//! (assets/configs/sample.toml by default; assets/configs/tiny.toml is quicker) and prints the time
//! of each stage, the total against the 5-minute budget, and the router's test accuracy / macro-F1.
//! Without a backbone (`--model`, else assets/backbone) it writes a seeded random model of the
//! `--like` shape and says so.
//!
//! `--step` times single LoRA optimiser steps instead (the comparison with PyTorch + PEFT): one
//! group of 1 positive + 7 negatives of `--doc-tokens` words, LoRA r32 α64 on q, k, v, o, InfoNCE over
//! yes − no, AdamW; it prints seconds per step, tokens/s, achieved GFLOP/s and peak memory, and with
//! `--dump-ids` writes the group's token ids so `scripts/torch_bench.py train` runs the same step.

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
    /// Time single LoRA optimiser steps on one group instead of the pipeline.
    #[arg(long)]
    pub step: bool,
    /// --step: precision, f32 or bf16 (CPU bf16 kernel for the frozen projections).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// --step: candidates of the group (1 positive + the rest negatives).
    #[arg(long, default_value_t = 8)]
    pub candidates: usize,
    /// --step: words per document.
    #[arg(long, default_value_t = 128)]
    pub doc_tokens: usize,
    /// --step: timed steps (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    pub steps: usize,
    /// --step: LoRA rank (alpha = 2 × rank) on q, k, v, o.
    #[arg(long, default_value_t = 32)]
    pub rank: usize,
    /// --step: write the group's token ids (JSON) for scripts/torch_bench.py.
    #[arg(long)]
    pub dump_ids: Option<PathBuf>,
}

pub fn run(args: BenchTrainArgs) -> Result<()> {
    if args.step {
        return run_steps(&args);
    }
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

/// Token ids of one benchmark group, as `scripts/torch_bench.py` reads them: every candidate's prompt is
/// `shared + candidate` (the first candidate is the positive).
#[derive(serde::Serialize)]
pub struct DumpedGroup<'a> {
    pub shared: &'a [u32],
    pub candidates: Vec<&'a [u32]>,
    pub yes_id: u32,
    pub no_id: u32,
    pub pad_id: u32,
}

fn run_steps(args: &BenchTrainArgs) -> Result<()> {
    use crate::model::{AdapterRun, LoraAdapter, LoraConfig, Proj, ScoreOptions};
    use crate::train::loss::{group_scores, info_nce, ScoreForm};
    use candle_core::Tensor;
    use rand::Rng;
    let model = args.model.clone().unwrap_or_else(|| PathBuf::from(crate::model::default_backbone::AUTO));
    let model_args = super::score::ModelArgs { model, adapter: None, max_length: None, cuda: false, dtype: args.dtype.clone() };
    let (reranker, _) = model_args.load()?;
    let mut rng = crate::util::seeded_rng(0, 0);
    let words = crate::model::make_model::BENCH_WORDS;
    let mut text = |n: usize| (0..n).map(|_| words[rng.random_range(0..words.len())]).collect::<Vec<_>>().join(" ");
    let query = text(12);
    let encoded: Vec<_> = (0..args.candidates.max(2)).map(|_| reranker.prompt.encode_pair(None, &query, &text(args.doc_tokens))).collect::<Result<_>>()?;
    let shared = encoded[0].shared.clone();
    let candidates: Vec<&[u32]> = encoded.iter().map(|e| e.candidate.as_slice()).collect();
    let tokens: usize = encoded.iter().map(|e| e.shared.len() + e.candidate.len()).sum();
    if let Some(path) = &args.dump_ids {
        let group = DumpedGroup { shared: &shared, candidates: candidates.clone(), yes_id: reranker.prompt.yes_id, no_id: reranker.prompt.no_id, pad_id: reranker.prompt.pad_id };
        crate::util::atomic_write_json(path, &group)?;
    }
    let lora = LoraConfig { r: args.rank, alpha: 2.0 * args.rank as f64, dropout: 0.0, target_modules: vec![Proj::Q, Proj::K, Proj::V, Proj::O], use_rslora: false };
    let adapter = LoraAdapter::new_random(lora, reranker.config(), reranker.device(), 13)?;
    let vars = adapter.vars();
    let mut optimizer = crate::train::optim::AdamW::new(vars.clone(), candle_nn::ParamsAdamW { lr: 1e-4, ..Default::default() })?;
    let options = ScoreOptions { max_batch: candidates.len(), ..Default::default() };
    let mut times = Vec::new();
    let mut losses = Vec::new();
    for step in 0..=args.steps {
        let started = Instant::now();
        let (logits, _) = reranker.group_logits(&shared, &candidates, &AdapterRun::with(Some(&adapter)), &options)?;
        let loss = info_nce(&group_scores(&logits.unsqueeze(0)?, ScoreForm::Logit)?, 1.0)?;
        let grads = loss.backward()?;
        let grads: Vec<Tensor> = vars.iter().map(|v| grads.get(v.as_tensor()).cloned().ok_or_else(|| anyhow::anyhow!("a LoRA parameter got no gradient"))).collect::<Result<_>>()?;
        optimizer.step(&grads)?;
        losses.push(loss.to_scalar::<f32>()?);
        let seconds = started.elapsed().as_secs_f64();
        eprintln!("step {step}{}: {seconds:.3} s, loss {:.4}", if step == 0 { " (warm-up)" } else { "" }, losses[step]);
        if step > 0 {
            times.push(seconds);
        }
    }
    times.sort_by(f64::total_cmp);
    let (best, median) = (times[0], times[times.len() / 2]);
    // Forward matmul FLOPs (every layer at every position; the last layer's queries, output projection and
    // MLP at the last position only, as group_logits runs it), and the backward to the inputs of the frozen
    // projections costs as much again: about 2 × forward.
    let c = reranker.config();
    let forward = super::bench::forward_flops(c, 1, shared.len(), 0, true, 0, false)
        + candidates.iter().map(|cand| super::bench::forward_flops(c, 1, cand.len(), shared.len(), true, 2, false)).sum::<f64>();
    let flops = 2.0 * forward;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    let peak = crate::util::memory_bytes().map(|(_, peak)| peak as f64 / (1u64 << 30) as f64);
    println!("model {} ({} layers, hidden {}), precision {}, LoRA r{} α{} on q,k,v,o, 1 group of {} candidates × {} words ({tokens} prompt tokens, shared prefix {}), threads {threads}",
        args.model.as_ref().map_or("auto".into(), |p| p.display().to_string()), c.num_layers, c.hidden_size, if reranker.model.bf16_matmuls() { "bf16 matmuls" } else { "f32" }, args.rank, 2 * args.rank, candidates.len(), args.doc_tokens, shared.len());
    println!("step: best {best:.3} s (median {median:.3}), {:.0} tokens/s, ≈{:.1} GFLOP/s (2 × forward matmul FLOPs), peak memory {}, losses {:?}",
        tokens as f64 / best, flops / best / 1e9, peak.map_or("n/a".into(), |p| format!("{p:.2} GiB")), losses);
    println!("{}", serde_json::json!({"side": "candle", "best_s": best, "median_s": median, "tokens": tokens, "tokens_per_s": tokens as f64 / best,
        "gflops": flops / best / 1e9, "peak_gib": peak, "threads": threads, "precision": if reranker.model.bf16_matmuls() { "bf16" } else { "f32" }, "losses": losses}));
    Ok(())
}
