//! `r2r bench`: performance measurements. `bench score` times the naive (model card) and the fast
//! (prefix reuse, last position, yes/no rows only, length-sorted batches) scoring paths against a measured
//! GEMM peak in the model's dtype on its device; `bench make-model` writes a seeded random checkpoint of a published shape.

use super::score::ModelArgs;
use crate::model::make_model::{write_random_model, BENCH_WORDS};
use crate::model::scorer::length_batches;
use crate::model::{ModelConfig, PairScore, Reranker, ScoreOptions, ScoreRequest};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use rand::Rng;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Scoring throughput of the naive and fast paths on 1 query × N candidates.
    Score(BenchScoreArgs),
    /// Write a seeded random checkpoint of a published shape (HF format, small tokenizer).
    #[command(name = "make-model")]
    MakeModel(MakeModelArgs),
    /// Entity-abstraction throughput (MB/s) on a dataset.
    Abstract(super::bench_abstract::BenchAbstractArgs),
    /// Time EAG training (stage 1, the experts, the router) on the sample data.
    Train(super::bench_train::BenchTrainArgs),
}

#[derive(Debug, clap::Args)]
pub struct BenchScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Candidates of the one query.
    #[arg(long, default_value_t = 32)]
    pub candidates: usize,
    /// Words per document (one token each with the make-model tokenizer).
    #[arg(long, default_value_t = 128)]
    pub doc_tokens: usize,
    /// Document lengths uniform in [0.3, 1.7] × --doc-tokens.
    #[arg(long)]
    pub vary: bool,
    /// Timed repetitions per path (after one warm-up).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Skip the (slow) model-card path.
    #[arg(long)]
    pub skip_naive: bool,
    /// Time the fast path only.
    #[arg(long)]
    pub fast_only: bool,
    /// Side of the square matmul that measures the GEMM peak (in the model's dtype, on its device);
    /// default 2048 on the CPU, 8192 on CUDA.
    #[arg(long)]
    pub gemm_size: Option<usize>,
    /// Write the query's token ids (JSON: shared prefix, candidates, yes/no/pad ids) for
    /// `scripts/torch_bench.py score`, so transformers scores the same prompts.
    #[arg(long)]
    pub dump_ids: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct MakeModelArgs {
    /// Shape to copy: qwen3-0.6b (hidden 1024, 16×128 heads, 8 kv heads, intermediate 3072, vocab 151936, tied) or qwen3-tiny.
    #[arg(long, default_value = "qwen3-0.6b")]
    pub like: String,
    /// Decoder layers (default: the model's own count).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Output directory (the 0.6B shape is ~600 MB at 4 layers: keep it out of the repository).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::MakeModel(a) => {
            let start = Instant::now();
            write_random_model(&a.out, &a.like, a.layers, a.seed)?;
            println!("wrote {} ({} shape) in {:.1} s", a.out.display(), a.like, start.elapsed().as_secs_f64());
            Ok(())
        }
        BenchCommand::Score(a) => bench_score(a),
        BenchCommand::Abstract(a) => super::bench_abstract::run(a),
        BenchCommand::Train(a) => super::bench_train::run(a),
    }
}

/// Best time of `repeats` runs after one warm-up, in seconds, and the last result.
fn time<T>(repeats: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, f64, T)> {
    let mut out = f()?;
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        out = f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[0], times[times.len() / 2], out))
}

/// Measured GEMM throughput through candle (GFLOP/s) of an n×n×n matmul in `dtype` on `device`
/// (waits for the device after each product, so GPU timings are not just launch times).
pub fn gemm_peak(n: usize, device: &Device, dtype: DType) -> Result<f64> {
    let a = Tensor::randn(0f32, 1.0, (n, n), device)?.to_dtype(dtype)?;
    let b = Tensor::randn(0f32, 1.0, (n, n), device)?.to_dtype(dtype)?;
    let (best, _, _) = time(3, || {
        let c = a.matmul(&b)?;
        device.synchronize()?;
        Ok(c)
    })?;
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}

/// Measured throughput (GFLOP/s) of the CPU bf16 kernel on an n×n·(n×n)ᵀ product.
pub fn bf16_gemm_peak(n: usize) -> Result<f64> {
    let mut rng = crate::util::seeded_rng(0, 1);
    let mut values = |len: usize| (0..len).map(|_| rng.random_range(-1f32..1.0)).collect::<Vec<f32>>();
    let (x, w) = (values(n * n), values(n * n));
    let packed = crate::model::bf16_matmul::PackedBf16::pack(&w, n, n);
    let (best, _, _) = time(3, || Ok(packed.matmul(&x, n)))?;
    Ok(2.0 * (n as f64).powi(3) / best / 1e9)
}

/// Matmul FLOPs of one forward over b rows of t tokens after a prefix of p tokens. `last_only`: the last
/// layer runs queries, output projection and MLP for the last position only; `head_rows`: LM-head rows
/// multiplied per computed position (vocab for the model card, 2 for yes/no), at every position or the last.
pub(super) fn forward_flops(c: &ModelConfig, b: usize, t: usize, p: usize, last_only: bool, head_rows: usize, head_all_positions: bool) -> f64 {
    let (b, t, p) = (b as f64, t as f64, p as f64);
    let lin = c.layer_linear_flops_per_token();
    let (kin, kout) = c.proj_shape(crate::model::Proj::K);
    let kv = 2.0 * 2.0 * kin as f64 * kout as f64;
    let attn_per_query_key = 4.0 * (c.num_heads * c.head_dim) as f64;
    let layers = c.num_layers as f64;
    let full_layers = if last_only { layers - 1.0 } else { layers };
    let mut flops = full_layers * (lin * b * t + attn_per_query_key * b * t * (p + t));
    if last_only {
        flops += kv * b * t + (lin - kv) * b + attn_per_query_key * b * (p + t);
    }
    let head_positions = if head_all_positions { b * t } else { b };
    flops + 2.0 * c.hidden_size as f64 * head_rows as f64 * head_positions
}

struct PathResult {
    name: &'static str,
    best: f64,
    median: f64,
    flops: f64,
    scores: Vec<PairScore>,
}

fn bench_score(a: BenchScoreArgs) -> Result<()> {
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    let memory_before = crate::util::memory_bytes();
    let load_started = std::time::Instant::now();
    let (reranker, adapter) = a.model.load()?;
    let load_seconds = load_started.elapsed().as_secs_f64();
    let memory_loaded = crate::util::memory_bytes();
    let (device, dtype) = (reranker.device().clone(), reranker.model.dtype());
    let gemm_size = a.gemm_size.unwrap_or(if device.is_cpu() { 2048 } else { 8192 });
    let bf16_mode = reranker.model.bf16_matmuls();
    let peak_of = |n: usize| if bf16_mode { bf16_gemm_peak(n) } else { gemm_peak(n, &device, dtype) };
    let peak_before = peak_of(gemm_size)?;
    let mut rng = crate::util::seeded_rng(a.seed, 0);
    let lengths: Vec<usize> = (0..a.candidates)
        .map(|_| if a.vary { rng.random_range((3 * a.doc_tokens / 10)..=(17 * a.doc_tokens / 10)) } else { a.doc_tokens })
        .collect();
    let mut words = |n: usize| (0..n).map(|_| BENCH_WORDS[rng.random_range(0..BENCH_WORDS.len())]).collect::<Vec<_>>().join(" ");
    let query = words(12);
    let requests: Vec<ScoreRequest> = lengths.iter().map(|&n| ScoreRequest { instruction: None, query: query.clone(), document: words(n) }).collect();
    let encoded: Vec<_> = requests.iter().map(|r| reranker.prompt.encode_pair(None, &r.query, &r.document)).collect::<Result<_>>()?;
    let prompt_tokens: usize = encoded.iter().map(|e| e.shared.len() + e.candidate.len()).sum();
    let padded_len = encoded.iter().map(|e| e.shared.len() + e.candidate.len()).max().unwrap_or(0);
    let shared_len = encoded.first().map_or(0, |e| e.shared.len());
    if let Some(path) = &a.dump_ids {
        let shared = encoded.first().map_or(&[][..], |e| e.shared.as_slice());
        let group = super::bench_train::DumpedGroup { shared, candidates: encoded.iter().map(|e| e.candidate.as_slice()).collect(), yes_id: reranker.prompt.yes_id, no_id: reranker.prompt.no_id, pad_id: reranker.prompt.pad_id };
        crate::util::atomic_write_json(path, &group)?;
    }
    let c = reranker.config().clone();
    let n = a.candidates;
    let mut results = Vec::new();
    let mut run_path = |name: &'static str, flops: f64, f: &mut dyn FnMut(&Reranker) -> Result<Vec<PairScore>>| -> Result<()> {
        eprintln!("timing {name} ...");
        let (best, median, scores) = time(a.repeats, || f(&reranker))?;
        results.push(PathResult { name, best, median, flops, scores });
        Ok(())
    };
    let naive_opts = ScoreOptions { max_batch: n.max(1), full_vocab: true, ..Default::default() };
    if !a.skip_naive && !a.fast_only {
        run_path("naive (model card: padded batch, full-vocab logits at every position)", forward_flops(&c, n, padded_len, 0, false, c.vocab_size, true), &mut |r| r.score_naive(&requests, adapter.as_ref(), &naive_opts))?;
    }
    let last_opts = ScoreOptions { full_vocab: false, ..naive_opts.clone() };
    if !a.fast_only {
        run_path("padded, last position only (yes/no rows, no prefix reuse)", forward_flops(&c, n, padded_len, 0, true, 2, false), &mut |r| r.score_naive(&requests, adapter.as_ref(), &last_opts))?;
    }
    let fast_opts = ScoreOptions::default();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].candidate.len()));
    let mut fast_flops = forward_flops(&c, 1, shared_len, 0, true, 0, false);
    for batch in length_batches(&order, |i| encoded[i].candidate.len(), &fast_opts) {
        let t = batch.iter().map(|&i| encoded[i].candidate.len()).max().unwrap_or(0);
        fast_flops += forward_flops(&c, batch.len(), t, shared_len, true, 2, false);
    }
    run_path("fast (prefix K/V reuse, length-sorted batches, last position, yes/no rows)", fast_flops, &mut |r| r.score(&requests, adapter.as_ref(), &fast_opts))?;

    // Other processes on the machine lower the measured peak: take the better of two measurements.
    let peak_after = peak_of(gemm_size)?;
    let peak = peak_before.max(peak_after);
    println!("model {} ({} layers, hidden {}, vocab {}), adapter: {}", a.model.model.display(), c.num_layers, c.hidden_size, c.vocab_size, a.model.adapter.as_ref().map_or("none".into(), |p| p.display().to_string()));
    let device_name = if device.is_cpu() { format!("cpu, threads: {threads}") } else { format!("{device:?}") };
    println!("1 query x {n} candidates, doc tokens {}{}, prompt tokens {prompt_tokens} (shared prefix {shared_len}, longest prompt {padded_len}), device: {device_name}", a.doc_tokens, if a.vary { " (varied)" } else { "" });
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    match (memory_before, memory_loaded, crate::util::memory_bytes()) {
        (Some((before, _)), Some((loaded, _)), Some((_, peak))) => println!(
            "load {load_seconds:.1} s; resident memory {:.2} GiB after loading (+{:.2} GiB for the model), peak {:.2} GiB while scoring",
            gib(loaded),
            gib(loaded.saturating_sub(before)),
            gib(peak)
        ),
        _ => println!("load {load_seconds:.1} s (memory figures need Linux /proc)"),
    }
    let precision = if bf16_mode { "bf16 matmuls (CPU kernel), f32 elsewhere".to_string() } else { format!("{dtype:?}") };
    let peak_name = if bf16_mode { format!("bf16 kernel ({}) GEMM peak ({gemm_size}^3)", crate::model::bf16_matmul::Bf16Kernel::selected().name()) } else { format!("{dtype:?} GEMM peak ({gemm_size}^3 matmul in candle)") };
    println!("precision: {precision}");
    println!("{peak_name}: {peak:.1} GFLOP/s (before {peak_before:.1}, after {peak_after:.1})");
    let reference = results.last().map(|r| r.scores.clone()).unwrap_or_default();
    let naive_best = results.first().map(|r| r.best).unwrap_or(f64::NAN);
    for r in &results {
        let max_diff = r.scores.iter().zip(&reference).map(|(x, y)| (x.score - y.score).abs()).fold(0f32, f32::max);
        let gflops = r.flops / r.best / 1e9;
        println!(
            "{}\n    best {:.3} s (median {:.3}), {:.1} pairs/s, {:.0} tokens/s, {:.1} GFLOP/s ({:.0}% of peak), {:.2}x vs first path, max |score - fast| {:.1e}",
            r.name, r.best, r.median, n as f64 / r.best, prompt_tokens as f64 / r.best, gflops, 100.0 * gflops / peak, naive_best / r.best, max_diff
        );
    }
    let summary = serde_json::json!({
        "candidates": n, "doc_tokens": a.doc_tokens, "vary": a.vary, "prompt_tokens": prompt_tokens, "gemm_peak_gflops": peak, "gemm_peak_before": peak_before, "gemm_peak_after": peak_after, "gemm_size": gemm_size, "threads": threads,
        "device": if device.is_cpu() { "cpu".to_string() } else { format!("{device:?}") }, "dtype": if bf16_mode { "BF16-CPU".to_string() } else { format!("{dtype:?}") },
        "paths": results.iter().map(|r| serde_json::json!({"name": r.name, "best_s": r.best, "median_s": r.median,
            "pairs_per_s": n as f64 / r.best, "tokens_per_s": prompt_tokens as f64 / r.best, "gflops": r.flops / r.best / 1e9})).collect::<Vec<_>>(),
    });
    println!("{summary}");
    Ok(())
}
