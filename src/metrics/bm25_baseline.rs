//! The BM25 baseline per domain and split: for each domain, one
//! [`Bm25Index`] over all distinct passages of that domain (every split, so idf
//! and average length see the whole domain), then each evaluated query group's
//! candidates reranked by [`Bm25Index::score_text`] and scored against the
//! group's own relevance labels through a TREC run, so ties (e.g. candidates
//! sharing no query term) fall by candidate id ascending (see [`crate::metrics::formulas`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::bm25::{Bm25Index, Bm25Params};
use crate::data::{Dataset, Split};

use super::ranking::{qrels_from_groups, run_from_groups};
use super::{evaluate, Metric, Run};

/// The metrics of one domain on one split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainSplitScores {
    pub domain: String,
    pub split: Split,
    pub queries: usize,
    pub mean: BTreeMap<Metric, f64>,
}

/// Every (domain, split) result, the macro average over domains per split, and
/// the BM25 run itself (all evaluated groups).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bm25Baseline {
    #[serde(skip)]
    pub metrics: Vec<Metric>,
    pub k1: f32,
    pub b: f32,
    pub results: Vec<DomainSplitScores>,
    /// Split → metric → mean over the domains that have this split.
    pub macro_average: BTreeMap<Split, BTreeMap<Metric, f64>>,
    #[serde(skip)]
    pub run: Run,
}

/// The splits `evaluate_bm25` uses by default: every test-like split present.
pub fn test_splits_present(dataset: &Dataset) -> Vec<Split> {
    let present: BTreeSet<Split> = dataset.groups.iter().map(|g| g.split).filter(|s| s.is_test()).collect();
    present.into_iter().collect()
}

/// Evaluates BM25 reranking of `splits` per domain. Domains without a group in
/// a split get no row for it.
pub fn evaluate_bm25(dataset: &Dataset, splits: &[Split], metrics: &[Metric], params: Bm25Params) -> Bm25Baseline {
    let mut results = Vec::new();
    let mut run = Run::new("bm25");
    for domain in dataset.domains() {
        let passages: BTreeSet<&str> =
            dataset.select(Some(domain.as_str()), None).flat_map(|g| g.candidates.iter().map(|c| c.text.as_str())).collect();
        let passages: Vec<&str> = passages.into_iter().collect();
        let index = Bm25Index::new(&passages, params);
        for &split in splits {
            let groups: Vec<_> = dataset.select(Some(domain.as_str()), Some(split)).collect();
            if groups.is_empty() {
                continue;
            }
            let qrels = qrels_from_groups(groups.iter().copied());
            let split_run =
                run_from_groups("bm25", groups.iter().copied(), |g, c| f64::from(index.score_text(&g.query, &c.text)));
            let evaluation = evaluate(&qrels, &split_run, metrics);
            run.scores.extend(split_run.scores);
            results.push(DomainSplitScores { domain: domain.clone(), split, queries: groups.len(), mean: evaluation.mean });
        }
    }
    let mut macro_average = BTreeMap::new();
    for &split in splits {
        let rows: Vec<&DomainSplitScores> = results.iter().filter(|r| r.split == split).collect();
        if rows.is_empty() {
            continue;
        }
        let means = metrics.iter().map(|m| (*m, rows.iter().map(|r| r.mean[m]).sum::<f64>() / rows.len() as f64)).collect();
        macro_average.insert(split, means);
    }
    Bm25Baseline { metrics: metrics.to_vec(), k1: params.k1, b: params.b, results, macro_average, run }
}

impl Bm25Baseline {
    /// A plain-text table: one row per domain and split, then the macro averages.
    pub fn render_table(&self) -> String {
        let mut out = format!("{:<16} {:<12} {:>7}", "domain", "split", "queries");
        for metric in &self.metrics {
            out.push_str(&format!(" {:>12}", metric.to_string()));
        }
        out.push('\n');
        let mut row = |domain: &str, split: Split, queries: usize, mean: &BTreeMap<Metric, f64>| {
            out.push_str(&format!("{domain:<16} {:<12} {queries:>7}", split.as_str()));
            for metric in &self.metrics {
                out.push_str(&format!(" {:>12.4}", mean[metric]));
            }
            out.push('\n');
        };
        for r in &self.results {
            row(&r.domain, r.split, r.queries, &r.mean);
        }
        for (split, mean) in &self.macro_average {
            let queries = self.results.iter().filter(|r| r.split == *split).map(|r| r.queries).sum();
            row("macro average", *split, queries, mean);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Candidate, QueryGroup};

    fn group(id: &str, domain: &str, split: Split, query: &str, candidates: &[(&str, u32)]) -> QueryGroup {
        QueryGroup {
            id: id.into(),
            domain: domain.into(),
            split,
            query: query.into(),
            query_entities: Vec::new(),
            candidates: candidates
                .iter()
                .enumerate()
                .map(|(i, &(text, relevance))| Candidate { id: format!("{id}-{i}"), text: text.into(), relevance, entities: Vec::new() })
                .collect(),
            secondary_domain: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn bm25_reranks_each_domain_and_split() {
        // Relevant passages are listed last, so only BM25 (not the id tie-break) can put them first.
        let dataset = Dataset {
            source: None,
            groups: vec![
                group("m1", "medical", Split::Test, "ibuprofen dose", &[("tax law", 0), ("aspirin dose", 0), ("ibuprofen dose adult", 1)]),
                group("m2", "medical", Split::TestUnseen, "warfarin bleeding", &[("court fees", 0), ("warfarin bleeding risk", 1)]),
                group("m3", "medical", Split::Train, "x", &[("warfarin warfarin", 1)]),
                group("l1", "legal", Split::Test, "appeal deadline", &[("ibuprofen", 0), ("appeal deadline thirty days", 2)]),
            ],
        };
        assert_eq!(test_splits_present(&dataset), vec![Split::Test, Split::TestUnseen]);
        let metrics = [Metric::Mrr(Some(10)), Metric::Ndcg(Some(10))];
        let baseline = evaluate_bm25(&dataset, &test_splits_present(&dataset), &metrics, Bm25Params::default());
        let rows: Vec<(&str, Split, usize)> = baseline.results.iter().map(|r| (r.domain.as_str(), r.split, r.queries)).collect();
        assert_eq!(rows, vec![("legal", Split::Test, 1), ("medical", Split::Test, 1), ("medical", Split::TestUnseen, 1)]);
        for r in &baseline.results {
            assert_eq!(r.mean[&Metric::Mrr(Some(10))], 1.0, "{r:?}");
        }
        assert_eq!(baseline.macro_average[&Split::Test][&Metric::Ndcg(Some(10))], 1.0);
        assert_eq!(baseline.run.scores.len(), 3, "train groups are not scored");
        let table = baseline.render_table();
        assert!(table.contains("macro average") && table.contains("test_unseen"), "{table}");
    }
}
