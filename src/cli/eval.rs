//! `r2r eval`: metrics of a TREC run against TREC qrels.

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// TREC qrels file (`qid 0 docid relevance`).
    #[arg(long)]
    pub qrels: std::path::PathBuf,
    /// TREC run file (`qid Q0 docid rank score tag`).
    #[arg(long)]
    pub run: std::path::PathBuf,
    /// Print `{"mean": {..}, "per_query": {..}}` as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("`r2r eval` is not implemented yet")
}
