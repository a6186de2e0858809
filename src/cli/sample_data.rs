//! `r2r sample-data`: the seeded generator of the synthetic sample data.

#[derive(Debug, clap::Subcommand)]
pub enum SampleDataCommand {
    /// Generate the sample data into a directory.
    Generate {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

pub fn run(_cmd: SampleDataCommand) -> anyhow::Result<()> {
    anyhow::bail!("`r2r sample-data` is not implemented yet")
}
