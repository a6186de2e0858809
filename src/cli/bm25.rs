//! `r2r bm25`: the BM25 baseline per domain and test split.

#[derive(Debug, clap::Args)]
pub struct Bm25Args {
    /// Dataset (any supported format).
    #[arg(long)]
    pub data: std::path::PathBuf,
}

pub fn run(_args: Bm25Args) -> anyhow::Result<()> {
    anyhow::bail!("`r2r bm25` is not implemented yet")
}
