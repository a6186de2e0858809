//! `r2r eval`: metrics of a TREC run against TREC qrels, optionally compared
//! with a baseline run by paired significance tests.

use std::path::PathBuf;

use crate::metrics::significance::{self, DEFAULT_PERMUTATIONS};
use crate::metrics::{evaluate, for_display, Evaluation, Metric, Qrels, Run};

/// The metrics `r2r eval` reports unless `--metrics` says otherwise.
pub const DEFAULT_METRICS: &str = "ndcg@5,ndcg@10,mrr@10,recall@5,recall@10,precision@5,precision@10,map";

/// A `--metrics` value: comma-separated ranx metric names.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricList(pub Vec<Metric>);

impl MetricList {
    pub fn parse(list: &str) -> Result<MetricList, String> {
        Metric::parse_list(list).map(MetricList)
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Conventions: linear-gain NDCG (trec_eval's ndcg_cut), ideal DCG from all judged documents; \
relevance >= 1 is relevant; ties ranked by document id ascending; qrels queries missing from the run score 0 \
and count in the mean; run queries without judgments are ignored.")]
pub struct EvalArgs {
    /// TREC qrels file (`qid 0 docid relevance`).
    #[arg(long)]
    pub qrels: PathBuf,
    /// TREC run file (`qid Q0 docid rank score tag`).
    #[arg(long)]
    pub run: PathBuf,
    /// Comma-separated metrics in ranx's names: ndcg@k, mrr[@k], recall@k, precision@k, map[@k].
    #[arg(long, default_value = DEFAULT_METRICS, value_parser = MetricList::parse)]
    pub metrics: MetricList,
    /// A baseline TREC run: adds paired randomization and t-test p-values of `--run` against it.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Permutations of the randomization test.
    #[arg(long, default_value_t = DEFAULT_PERMUTATIONS)]
    pub permutations: usize,
    /// Seed of the randomization test.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Also print every query's metrics in the table.
    #[arg(long)]
    pub per_query: bool,
    /// Print `{"mean": {..}, "per_query": {..}}` as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let metrics = args.metrics.0.clone();
    let qrels = Qrels::read(&args.qrels)?;
    anyhow::ensure!(!qrels.is_empty(), "{}: no judgments", args.qrels.display());
    let run = Run::read(&args.run)?;
    let evaluation = evaluate(&qrels, &run, &metrics);
    let comparison = match &args.baseline {
        Some(path) => Some(compare(&qrels, &Run::read(path)?, &evaluation, &args)?),
        None => None,
    };
    if args.json {
        let mut json = evaluation.to_json();
        if let Some(comparison) = comparison {
            json["baseline"] = comparison.to_json();
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!(
        "{}: {} queries judged in {}, {} ranked in the run{}",
        args.run.display(),
        qrels.len(),
        args.qrels.display(),
        run.scores.len(),
        note_counts(&evaluation)
    );
    match comparison {
        Some(comparison) => print!("{}", comparison.render_table(&evaluation)),
        None => print!("{}", evaluation.render_table()),
    }
    if args.per_query {
        print!("\n{}", render_per_query(&evaluation));
    }
    Ok(())
}

fn note_counts(evaluation: &Evaluation) -> String {
    let mut notes = Vec::new();
    if !evaluation.missing_from_run.is_empty() {
        notes.push(format!("{} judged queries missing from the run (scored 0)", evaluation.missing_from_run.len()));
    }
    if !evaluation.dropped_run_queries.is_empty() {
        notes.push(format!("{} run queries without judgments ignored", evaluation.dropped_run_queries.len()));
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    }
}

fn render_per_query(evaluation: &Evaluation) -> String {
    let mut out = format!("{:<16}", "query");
    for metric in &evaluation.metrics {
        out.push_str(&format!(" {:>12}", metric.to_string()));
    }
    out.push('\n');
    for (query, values) in &evaluation.per_query {
        out.push_str(&format!("{query:<16}"));
        for metric in &evaluation.metrics {
            out.push_str(&format!(" {:>12.4}", for_display(values[metric])));
        }
        out.push('\n');
    }
    out
}

/// The run against a baseline: the baseline's means and both tests per metric.
struct Comparison {
    baseline: Evaluation,
    tests: Vec<(Metric, significance::TestResult, significance::TestResult)>,
}

fn compare(qrels: &Qrels, baseline_run: &Run, evaluation: &Evaluation, args: &EvalArgs) -> anyhow::Result<Comparison> {
    let baseline = evaluate(qrels, baseline_run, &evaluation.metrics);
    let mut tests = Vec::new();
    for &metric in &evaluation.metrics {
        let (base, system) = significance::paired_values(&baseline, evaluation, metric)?;
        let randomization = significance::randomization_test(&base, &system, args.permutations, args.seed)?;
        let t_test = if base.len() >= 2 {
            significance::paired_t_test(&base, &system)?
        } else {
            significance::TestResult { statistic: f64::NAN, p_value: f64::NAN }
        };
        tests.push((metric, randomization, t_test));
    }
    Ok(Comparison { baseline, tests })
}

impl Comparison {
    fn to_json(&self) -> serde_json::Value {
        let tests: serde_json::Map<String, serde_json::Value> = self
            .tests
            .iter()
            .map(|(metric, randomization, t_test)| {
                let value = serde_json::json!({
                    "difference": randomization.statistic,
                    "randomization_p": randomization.p_value,
                    "t": finite_or_null(t_test.statistic),
                    "t_test_p": finite_or_null(t_test.p_value),
                });
                (metric.to_string(), value)
            })
            .collect();
        serde_json::json!({ "mean": self.baseline.mean, "tests": tests })
    }

    fn render_table(&self, evaluation: &Evaluation) -> String {
        let mut out = format!("{:<14} {:>9} {:>9} {:>9} {:>12} {:>10}\n", "metric", "baseline", "run", "diff", "p(random.)", "p(t-test)");
        for (metric, randomization, t_test) in &self.tests {
            out.push_str(&format!(
                "{:<14} {:>9.4} {:>9.4} {:>+9.4} {:>12.4} {:>10.4}\n",
                metric.to_string(),
                for_display(self.baseline.mean[metric]),
                for_display(evaluation.mean[metric]),
                for_display(randomization.statistic),
                for_display(randomization.p_value),
                for_display(t_test.p_value)
            ));
        }
        out
    }
}

fn finite_or_null(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::json!(x)
    } else {
        serde_json::Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_never_print_negative_zero() {
        let metric = Metric::parse_list("ndcg@10").unwrap()[0];
        let mut evaluation = Evaluation::default();
        evaluation.metrics = vec![metric];
        evaluation.mean.insert(metric, -0.0);
        evaluation.per_query.insert("q1".into(), [(metric, -1e-12)].into_iter().collect());
        let table = evaluation.render_table() + &render_per_query(&evaluation);
        let comparison = Comparison {
            baseline: evaluation.clone(),
            tests: vec![(
                metric,
                significance::TestResult { statistic: -1e-17, p_value: 1.0 },
                significance::TestResult { statistic: -0.0, p_value: 1.0 },
            )],
        };
        let table = table + &comparison.render_table(&evaluation);
        assert!(!table.contains("-0.0000"), "{table}");
        assert!(table.contains("+0.0000"), "{table}");
    }
}
