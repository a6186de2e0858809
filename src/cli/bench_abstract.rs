//! `r2r bench abstract`: throughput of entity abstraction (recognition plus
//! placeholder replacement, one thread) in MB of input text per second.

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

pub fn run(args: BenchAbstractArgs) -> anyhow::Result<()> {
    let path = args.data.clone().unwrap_or_else(super::abstract_::default_sample_data);
    let dataset = crate::data::load(&path, &LoadOptions::default())?;
    let abstractor = args.engine.build()?;
    let bytes: usize = dataset.groups.iter().map(|g| g.query.len() + g.candidates.iter().map(|c| c.text.len()).sum::<usize>()).sum();
    let mb = bytes as f64 / 1e6;
    let opts = AbstractionOptions::default();
    let (mut best_detect, mut best_abstract) = (f64::INFINITY, f64::INFINITY);
    let mut mentions = 0;
    for _ in 0..args.repeat.max(1) {
        let start = Instant::now();
        let found: usize = dataset.groups.iter().map(|g| detect_group(g, abstractor.recognizer()).iter().map(Vec::len).sum::<usize>()).sum();
        best_detect = best_detect.min(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let out = abstract_dataset(&dataset, &abstractor, &opts, 13);
        best_abstract = best_abstract.min(start.elapsed().as_secs_f64());
        mentions = found;
        std::hint::black_box(out);
    }
    let build = if cfg!(debug_assertions) { "debug build" } else { "release build" };
    println!("abstraction throughput on {} ({:.2} MB of text, {} groups, {mentions} mentions; one thread, {build}, best of {})", path.display(), mb, dataset.groups.len(), args.repeat.max(1));
    println!("  detect:           {:>8.2} MB/s ({:.3} s)", mb / best_detect, best_detect);
    println!("  detect+abstract:  {:>8.2} MB/s ({:.3} s)", mb / best_abstract, best_abstract);
    Ok(())
}
