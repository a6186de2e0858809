//! `r2r sample-data`: the seeded generator of the synthetic sample data.

#[derive(Debug, clap::Subcommand)]
pub enum SampleDataCommand {
    /// Generate the sample data into a directory (one JSONL file per domain and a README.md).
    Generate {
        #[arg(long, default_value_t = crate::sample::DEFAULT_SEED)]
        seed: u64,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

pub fn run(cmd: SampleDataCommand) -> anyhow::Result<()> {
    match cmd {
        SampleDataCommand::Generate { seed, out } => {
            crate::sample::write_sample_data(seed, &out)?;
            println!("wrote the sample data (seed {seed}) to {}", out.display());
            Ok(())
        }
    }
}
