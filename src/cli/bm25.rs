//! `r2r bm25`: the BM25 baseline per domain and test split.

use std::path::PathBuf;

use anyhow::Context;

use super::data::DataSourceArgs;
use super::eval::MetricList;
use crate::bm25::Bm25Params;
use crate::data::{self, Split};
use crate::metrics::bm25_baseline::{evaluate_bm25, test_splits_present};

#[derive(Debug, clap::Args)]
#[command(after_help = "For each domain, one BM25 index over all distinct passages of that domain (all splits); \
each evaluated query's candidates are reranked by BM25 and scored against their relevance labels. Ties are \
ranked by candidate id ascending.")]
pub struct Bm25Args {
    /// Dataset (any supported format).
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub source: DataSourceArgs,
    /// Splits to evaluate, comma-separated (train, dev, test, test_unseen); default: every test split present.
    #[arg(long, value_delimiter = ',', value_parser = parse_split)]
    pub split: Vec<Split>,
    /// Comma-separated metrics in ranx's names: ndcg@k, mrr[@k], recall@k, precision@k, map[@k].
    #[arg(long, default_value = "ndcg@10,mrr@10,recall@10", value_parser = MetricList::parse)]
    pub metrics: MetricList,
    /// BM25 k1 (finite, >= 0).
    #[arg(long, default_value_t = Bm25Params::default().k1, value_parser = parse_k1)]
    pub k1: f32,
    /// BM25 b (in [0, 1]).
    #[arg(long, default_value_t = Bm25Params::default().b, value_parser = parse_b)]
    pub b: f32,
    /// Also write the BM25 run of every evaluated query as a TREC run file.
    #[arg(long)]
    pub write_run: Option<PathBuf>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_k1(text: &str) -> Result<f32, String> {
    let k1: f32 = text.trim().parse().map_err(|_| format!("`{text}` is not a number"))?;
    Bm25Params { k1, ..Bm25Params::default() }.validate().map(|_| k1)
}

fn parse_b(text: &str) -> Result<f32, String> {
    let b: f32 = text.trim().parse().map_err(|_| format!("`{text}` is not a number"))?;
    Bm25Params { b, ..Bm25Params::default() }.validate().map(|_| b)
}

fn parse_split(name: &str) -> Result<Split, String> {
    Split::parse(name.trim()).ok_or_else(|| format!("unknown split `{name}` (expected train, dev, test or test_unseen)"))
}

pub fn run(args: Bm25Args) -> anyhow::Result<()> {
    let dataset = data::load(&args.data, &args.source.options())?;
    let splits = if args.split.is_empty() { test_splits_present(&dataset) } else { args.split.clone() };
    anyhow::ensure!(
        !splits.is_empty(),
        "{}: no test or test_unseen query groups; choose splits with --split",
        args.data.display()
    );
    for &split in &splits {
        anyhow::ensure!(
            dataset.groups.iter().any(|g| g.split == split),
            "{}: no query group in split `{split}`",
            args.data.display()
        );
    }
    let params = Bm25Params { k1: args.k1, b: args.b };
    params.validate().map_err(|e| anyhow::anyhow!("--k1/--b: {e}"))?;
    let baseline = evaluate_bm25(&dataset, &splits, &args.metrics.0, params);
    if let Some(path) = &args.write_run {
        baseline.run.write(path).with_context(|| format!("writing the BM25 run to {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&baseline)?);
    } else {
        println!("BM25 (k1 {}, b {}) reranking the candidates of {}\n", params.k1, params.b, args.data.display());
        print!("{}", baseline.render_table());
    }
    Ok(())
}
