//! Ranking metrics, TREC run/qrels files and paired significance tests.
//!
//! Every metric is computed once, in [`formulas`], over a query's candidates by index; dev
//! evaluation, backbone evaluation, experiments and the app call it directly
//! ([`group_metric`]), TREC runs through [`evaluate`].
//!
//! Conventions (those of ranx and trec_eval, reproduced to 1e-6 against ranx in
//! `tests/metrics_ranx.rs`):
//! - **Ranking and tie-break** (one rule, [`rank`]): score descending, then position
//!   ascending among equal scores. A group evaluated by index ranks ties in its file order;
//!   a TREC run lists a query's documents in id order first, so its ties fall by document id
//!   ascending (byte order; see [`trec::rank_documents`]). The rank column of a TREC run is
//!   ignored.
//! - **NDCG@k**: linear gain, `DCG = Σ_{i≤k} rel_i / log2(i + 1)` (trec_eval's
//!   `ndcg_cut`); the ideal DCG ranks *all* judged documents of the query, including
//!   those the run never retrieved. Negative judgments count as gain 0.
//! - **Binary metrics** (MRR, Recall, Precision, MAP) count relevance ≥ 1 as relevant.
//!   Precision@k divides by k even when fewer documents were retrieved; MAP (and
//!   MAP@k) divides by the number of relevant judged documents.
//! - **Queries**: the qrels define the query set. A qrels query absent from the run
//!   scores 0 on every metric and counts in the mean; run queries absent from the
//!   qrels are dropped (and listed in [`Evaluation::dropped_run_queries`]). A query
//!   without relevant documents scores 0.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub mod bm25_baseline;
pub mod formulas;
pub mod ranking;
pub mod significance;
pub mod trec;

pub use self::formulas::{group_metric, rank};
pub use trec::{Qrels, Run, TrecError};

/// A ranking metric with an optional cutoff, named as ranx names it
/// (`ndcg@10`, `mrr@10`, `recall@5`, `precision@5`, `map`, `map@100`; no
/// cutoff = the whole ranking).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    Ndcg(Option<usize>),
    Mrr(Option<usize>),
    Recall(Option<usize>),
    Precision(Option<usize>),
    Map(Option<usize>),
}

impl Metric {
    pub fn cutoff(self) -> Option<usize> {
        match self {
            Metric::Ndcg(k) | Metric::Mrr(k) | Metric::Recall(k) | Metric::Precision(k) | Metric::Map(k) => k,
        }
    }

    fn base_name(self) -> &'static str {
        match self {
            Metric::Ndcg(_) => "ndcg",
            Metric::Mrr(_) => "mrr",
            Metric::Recall(_) => "recall",
            Metric::Precision(_) => "precision",
            Metric::Map(_) => "map",
        }
    }

    /// Parses a comma-separated list such as `ndcg@10,mrr@10,recall@10`.
    pub fn parse_list(list: &str) -> Result<Vec<Metric>, String> {
        let metrics: Vec<Metric> =
            list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect::<Result<_, _>>()?;
        if metrics.is_empty() {
            return Err("no metric given".into());
        }
        Ok(metrics)
    }

    /// This metric for one query, given the relevance of its ranked documents
    /// (best first; 0 for unjudged) and all of the query's judgments (through [`formulas`]).
    pub fn score(self, ranked_relevance: &[i32], judged: &BTreeMap<String, i32>) -> f64 {
        formulas::score_ranked(self, ranked_relevance, judged.values().copied())
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cutoff() {
            Some(k) => write!(f, "{}@{k}", self.base_name()),
            None => f.write_str(self.base_name()),
        }
    }
}

impl FromStr for Metric {
    type Err = String;

    fn from_str(text: &str) -> Result<Metric, String> {
        let lower = text.trim().to_ascii_lowercase();
        let (name, cutoff) = match lower.split_once('@') {
            Some((name, k)) => {
                let k: usize = k.parse().map_err(|_| format!("metric `{text}`: cutoff `{k}` is not a positive integer"))?;
                if k == 0 {
                    return Err(format!("metric `{text}`: cutoff must be at least 1"));
                }
                (name, Some(k))
            }
            None => (lower.as_str(), None),
        };
        Ok(match name {
            "ndcg" => Metric::Ndcg(cutoff),
            "mrr" => Metric::Mrr(cutoff),
            "recall" => Metric::Recall(cutoff),
            "precision" => Metric::Precision(cutoff),
            "map" => Metric::Map(cutoff),
            _ => return Err(format!("unknown metric `{text}` (expected ndcg, mrr, recall, precision or map, optionally @k)")),
        })
    }
}

impl serde::Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Metric {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Metric, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Metrics per query and their mean over the qrels' queries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// The metrics in the order they were asked for.
    #[serde(skip)]
    pub metrics: Vec<Metric>,
    pub mean: BTreeMap<Metric, f64>,
    pub per_query: BTreeMap<String, BTreeMap<Metric, f64>>,
    /// Qrels queries the run has no ranking for (scored 0).
    #[serde(skip)]
    pub missing_from_run: Vec<String>,
    /// Run queries without judgments (ignored).
    #[serde(skip)]
    pub dropped_run_queries: Vec<String>,
}

impl Evaluation {
    /// These per-query values and their means over the queries (0 without queries).
    pub fn from_per_query(metrics: &[Metric], per_query: BTreeMap<String, BTreeMap<Metric, f64>>) -> Evaluation {
        let n = per_query.len();
        let mean = metrics
            .iter()
            .map(|&metric| {
                let sum: f64 = per_query.values().map(|m| m[&metric]).sum();
                (metric, if n == 0 { 0.0 } else { sum / n as f64 })
            })
            .collect();
        Evaluation { metrics: metrics.to_vec(), mean, per_query, ..Evaluation::default() }
    }

    /// One metric's per-query values in query-id order.
    pub fn values(&self, metric: Metric) -> Vec<f64> {
        self.per_query.values().map(|m| m.get(&metric).copied().unwrap_or(0.0)).collect()
    }

    /// `{"mean": {..}, "per_query": {..}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "mean": self.mean, "per_query": self.per_query })
    }

    /// A plain-text table of the means, one metric a line.
    pub fn render_table(&self) -> String {
        let width = self.metrics.iter().map(|m| m.to_string().len()).max().unwrap_or(6).max(6);
        let mut out = format!("{:<width$}  {:>8}\n", "metric", "mean");
        for metric in &self.metrics {
            out.push_str(&format!("{:<width$}  {:>8.4}\n", metric.to_string(), for_display(self.mean[metric])));
        }
        out
    }
}

/// `x` rounded to the 4 decimals tables print, with a negative zero (or a tiny negative value that
/// rounds to zero) made +0, so a table never shows `-0.0000`.
pub fn for_display(x: f64) -> f64 {
    let rounded = (x * 1e4).round() / 1e4;
    if rounded == 0.0 {
        0.0
    } else {
        x
    }
}

/// Scores `run` against `qrels` on `metrics` (see the module doc for the conventions).
pub fn evaluate(qrels: &Qrels, run: &Run, metrics: &[Metric]) -> Evaluation {
    let mut missing_from_run = Vec::new();
    let mut per_query = BTreeMap::new();
    for (query, judged) in &qrels.judgments {
        if !run.scores.contains_key(query) {
            missing_from_run.push(query.clone());
        }
        let ranked_relevance: Vec<i32> =
            run.ranked(query).iter().map(|(doc, _)| judged.get(*doc).copied().unwrap_or(0)).collect();
        per_query.insert(query.clone(), metrics.iter().map(|&m| (m, m.score(&ranked_relevance, judged))).collect());
    }
    let dropped_run_queries = run.scores.keys().filter(|q| !qrels.judgments.contains_key(*q)).cloned().collect();
    Evaluation { missing_from_run, dropped_run_queries, ..Evaluation::from_per_query(metrics, per_query) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qrels(rows: &[(&str, &str, i32)]) -> Qrels {
        let mut q = Qrels::default();
        for &(query, doc, rel) in rows {
            q.insert(query, doc, rel);
        }
        q
    }

    #[test]
    fn metric_names_round_trip_and_bad_names_are_rejected() {
        for name in ["ndcg@10", "mrr@10", "mrr", "recall@5", "precision@5", "map", "map@100", "ndcg"] {
            assert_eq!(name.parse::<Metric>().unwrap().to_string(), name);
        }
        assert_eq!("NDCG@3".parse::<Metric>(), Ok(Metric::Ndcg(Some(3))));
        assert!("ndcg@0".parse::<Metric>().is_err());
        assert!("ndcg@x".parse::<Metric>().is_err());
        assert!("bleu@4".parse::<Metric>().is_err());
        assert_eq!(Metric::parse_list("ndcg@10, mrr@10").unwrap(), vec![Metric::Ndcg(Some(10)), Metric::Mrr(Some(10))]);
        assert_eq!(serde_json::to_string(&Metric::Recall(Some(5))).unwrap(), "\"recall@5\"");
    }

    #[test]
    fn hand_computed_example() {
        // Ranking: d1 (rel 0), d2 (rel 2), d3 (unjudged), d4 (rel 1); d5 (rel 3) never retrieved.
        let q = qrels(&[("q", "d1", 0), ("q", "d2", 2), ("q", "d4", 1), ("q", "d5", 3)]);
        let mut run = Run::new("t");
        for (doc, score) in [("d1", 4.0), ("d2", 3.0), ("d3", 2.0), ("d4", 1.0)] {
            run.insert("q", doc, score);
        }
        let metrics = Metric::parse_list("ndcg@3,mrr@10,recall@2,precision@10,map").unwrap();
        let e = evaluate(&q, &run, &metrics);
        let v = &e.per_query["q"];
        // DCG@3 = 2/log2(3); IDCG@3 = 3 + 2/log2(3) + 1/2.
        let log3 = 3f64.log2();
        assert!((v[&Metric::Ndcg(Some(3))] - (2.0 / log3) / (3.0 + 2.0 / log3 + 0.5)).abs() < 1e-12);
        assert_eq!(v[&Metric::Mrr(Some(10))], 0.5);
        assert!((v[&Metric::Recall(Some(2))] - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(v[&Metric::Precision(Some(10))], 0.2);
        // AP = (1/2 + 2/4) / 3.
        assert!((v[&Metric::Map(None)] - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn ties_are_broken_by_document_id_ascending() {
        // All three documents tie; only `b` is relevant: rank 2 after `a`, before `c`.
        let q = qrels(&[("q", "b", 1)]);
        let mut run = Run::new("t");
        for doc in ["c", "b", "a"] {
            run.insert("q", doc, 1.0);
        }
        run.insert("q", "z", 5.0);
        let order: Vec<&str> = run.ranked("q").into_iter().map(|(d, _)| d).collect();
        assert_eq!(order, vec!["z", "a", "b", "c"]);
        let e = evaluate(&q, &run, &[Metric::Mrr(None)]);
        assert_eq!(e.per_query["q"][&Metric::Mrr(None)], 1.0 / 3.0);
    }

    #[test]
    fn missing_queries_score_zero_and_count_and_extra_run_queries_are_dropped() {
        let q = qrels(&[("q1", "d", 1), ("q2", "d", 1), ("q3", "d", 0)]);
        let mut run = Run::new("t");
        run.insert("q1", "d", 1.0);
        run.insert("q3", "d", 1.0);
        run.insert("q9", "d", 1.0);
        let e = evaluate(&q, &run, &[Metric::Ndcg(Some(10)), Metric::Recall(Some(10))]);
        assert_eq!(e.per_query.len(), 3);
        assert_eq!(e.missing_from_run, vec!["q2".to_string()]);
        assert_eq!(e.dropped_run_queries, vec!["q9".to_string()]);
        assert_eq!(e.per_query["q2"][&Metric::Ndcg(Some(10))], 0.0);
        assert_eq!(e.per_query["q3"][&Metric::Ndcg(Some(10))], 0.0, "no relevant document: 0");
        assert!((e.mean[&Metric::Ndcg(Some(10))] - 1.0 / 3.0).abs() < 1e-12);
        let json = e.to_json();
        assert_eq!(json["per_query"]["q1"]["recall@10"], 1.0);
        assert!(json["mean"]["ndcg@10"].is_number());
    }
}
