//! `r2r data`: dataset statistics and conversion to the native format.

use std::path::PathBuf;
use std::time::Instant;

use crate::data::{self, LoadOptions};

/// Options shared by every command that reads a dataset.
#[derive(Debug, Clone, clap::Args)]
pub struct DataSourceArgs {
    /// Domain for records that carry none (FlagEmbedding, BEIR); overrides the file's.
    #[arg(long)]
    pub domain: Option<String>,
    /// Candidates per query built for BEIR directories (judged + BM25-mined).
    #[arg(long, default_value_t = 16)]
    pub candidates: usize,
    /// Seed for BEIR's random negatives.
    #[arg(long, default_value_t = 13)]
    pub load_seed: u64,
}

impl DataSourceArgs {
    pub fn options(&self) -> LoadOptions {
        LoadOptions { domain: self.domain.clone(), candidates_per_query: self.candidates, seed: self.load_seed }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Per-domain, per-split statistics of a dataset in any supported format
    /// (native JSONL, a BEIR directory, FlagEmbedding JSONL, or a directory of JSONL files).
    Stats {
        /// File or directory.
        path: PathBuf,
        #[command(flatten)]
        source: DataSourceArgs,
        /// Print the statistics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Convert a dataset in any supported format to one native JSONL file.
    Convert {
        /// File or directory to read.
        input: PathBuf,
        /// Native JSONL file to write (atomically).
        output: PathBuf,
        #[command(flatten)]
        source: DataSourceArgs,
    },
}

pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Stats { path, source, json } => {
            let format = data::detect_format(&path)?;
            let started = Instant::now();
            let dataset = data::load(&path, &source.options())?;
            let elapsed = started.elapsed();
            let stats = data::stats::compute(&dataset);
            if json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                println!(
                    "{}: {format}, {} query groups in {} domains, loaded in {:.2} s\n",
                    path.display(),
                    dataset.groups.len(),
                    stats.len(),
                    elapsed.as_secs_f64()
                );
                print!("{}", data::stats::render_table(&stats));
            }
        }
        DataCommand::Convert { input, output, source } => {
            let dataset = data::load(&input, &source.options())?;
            data::native::write(&output, &dataset.groups)?;
            println!("wrote {} query groups to {}", dataset.groups.len(), output.display());
        }
    }
    Ok(())
}
