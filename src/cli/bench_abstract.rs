//! `r2r bench abstract`: throughput of entity abstraction (recognition plus
//! placeholder replacement, one thread) in MB of input text per second, per
//! CPU second of the thread (robust on a shared machine) and per wall second.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::abstraction::{abstract_dataset, detect_group, AbstractionOptions};
use crate::data::LoadOptions;

#[derive(Debug, Args)]
pub struct BenchAbstractArgs {
    /// Dataset to abstract (default: the sample data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Passes over the data; the best pass is reported.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    #[command(flatten)]
    pub engine: super::abstract_::EngineArgs,
}

/// CPU time this thread has run, from Linux's `/proc/thread-self/schedstat`
/// (`None` elsewhere): on a busy machine it measures the work, not the wait.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(nanos / 1e9)
}

/// Runs `work`, returning (wall seconds, CPU seconds of this thread if known).
fn timed(work: impl FnOnce()) -> (f64, Option<f64>) {
    let cpu_before = thread_cpu_seconds();
    let start = Instant::now();
    work();
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_before.zip(thread_cpu_seconds()).map(|(a, b)| b - a);
    (wall, cpu)
}

fn rate(label: &str, mb: f64, wall: f64, cpu: Option<f64>) {
    match cpu {
        Some(cpu) => println!("  {label:<17} {:>8.2} MB/s per CPU second ({cpu:.3} s CPU); {:>8.2} MB/s wall ({wall:.3} s)", mb / cpu, mb / wall),
        None => println!("  {label:<17} {:>8.2} MB/s wall ({wall:.3} s)", mb / wall),
    }
}

pub fn run(args: BenchAbstractArgs) -> anyhow::Result<()> {
    let path = args.data.clone().unwrap_or_else(crate::assets::sample_data_dir);
    let dataset = crate::data::load(&path, &LoadOptions::default())?;
    let abstractor = args.engine.build()?;
    let bytes: usize = dataset.groups.iter().map(|g| g.query.len() + g.candidates.iter().map(|c| c.text.len()).sum::<usize>()).sum();
    let mb = bytes as f64 / 1e6;
    let opts = AbstractionOptions::default();
    let texts: Vec<&str> = dataset.groups.iter().flat_map(crate::abstraction::abstractor::group_texts).collect();
    if let Some(learned) = abstractor.recognizer().learned() {
        // The learned heads' cost: every text once through the backbone (cold cache, batched, all threads).
        let start = Instant::now();
        for chunk in texts.chunks(256) {
            learned.propose_all(chunk)?;
        }
        let wall = start.elapsed().as_secs_f64();
        let heads: Vec<String> = learned.heads().iter().map(|h| format!("{} (layer {})", h.meta.name, h.meta.layer)).collect();
        println!(
            "learned recognition ({}; backbone {}, {} threads): {} texts, {:.2} MB in {wall:.1} s wall: {:.1} texts/s, {:.3} MB/s, backbone forward included",
            heads.join(", "),
            learned.backbone_path().display(),
            candle_core::utils::get_num_threads(),
            texts.len(),
            mb,
            texts.len() as f64 / wall,
            mb / wall
        );
        println!("(the passes below reuse the heads' cached spans: they time gazetteers, patterns, overlap resolution and abstraction)");
    }
    let (mut best_detect, mut best_abstract) = ((f64::INFINITY, None), (f64::INFINITY, None));
    let mut mentions = 0;
    let better = |best: (f64, Option<f64>), new: (f64, Option<f64>)| match (best.1, new.1) {
        (Some(b), Some(n)) if n < b => new,
        (None, _) | (_, None) if new.0 < best.0 => new,
        _ => best,
    };
    for _ in 0..args.repeat.max(1) {
        let run = timed(|| {
            mentions = dataset.groups.iter().map(|g| detect_group(g, abstractor.recognizer()).iter().map(Vec::len).sum::<usize>()).sum();
        });
        best_detect = better(best_detect, run);
        let run = timed(|| {
            std::hint::black_box(abstract_dataset(&dataset, &abstractor, &opts, 13));
        });
        best_abstract = better(best_abstract, run);
    }
    let build = if cfg!(debug_assertions) { "debug build" } else { "release build" };
    println!(
        "abstraction throughput on {} ({:.2} MB of text, {} groups, {mentions} mentions; one thread, {build}, best of {})",
        path.display(),
        mb,
        dataset.groups.len(),
        args.repeat.max(1)
    );
    println!("  {:.0} texts/s detect, wall", texts.len() as f64 / best_detect.0);
    rate("detect:", mb, best_detect.0, best_detect.1);
    rate("detect+abstract:", mb, best_abstract.0, best_abstract.1);
    Ok(())
}
