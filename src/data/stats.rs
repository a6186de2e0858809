//! Per-domain, per-split statistics of a dataset (counts, lengths, entity density).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{Dataset, Split};

/// Statistics of one (domain, split) cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SplitStats {
    pub queries: usize,
    pub candidates: usize,
    pub positives: usize,
    /// Queries that also touch a secondary domain.
    pub cross_domain_queries: usize,
    pub mean_query_words: f64,
    pub mean_passage_words: f64,
    /// Gold entity mentions per 100 words (queries and passages), where annotated.
    pub entities_per_100_words: f64,
    pub annotated: bool,
}

/// domain → split → statistics.
pub type DatasetStats = BTreeMap<String, BTreeMap<Split, SplitStats>>;

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

pub fn compute(dataset: &Dataset) -> DatasetStats {
    #[derive(Default)]
    struct Acc {
        stats: SplitStats,
        query_words: usize,
        passage_words: usize,
        entities: usize,
    }
    let mut acc: BTreeMap<(String, Split), Acc> = BTreeMap::new();
    for group in &dataset.groups {
        let a = acc.entry((group.domain.clone(), group.split)).or_default();
        a.stats.queries += 1;
        a.stats.candidates += group.candidates.len();
        a.stats.positives += group.positives().count();
        a.stats.cross_domain_queries += usize::from(group.secondary_domain.is_some());
        a.query_words += words(&group.query);
        a.entities += group.query_entities.len();
        for cand in &group.candidates {
            a.passage_words += words(&cand.text);
            a.entities += cand.entities.len();
        }
    }
    let mut out = DatasetStats::new();
    for ((domain, split), a) in acc {
        let mut stats = a.stats;
        stats.mean_query_words = a.query_words as f64 / stats.queries.max(1) as f64;
        stats.mean_passage_words = a.passage_words as f64 / stats.candidates.max(1) as f64;
        stats.annotated = a.entities > 0;
        stats.entities_per_100_words = 100.0 * a.entities as f64 / (a.query_words + a.passage_words).max(1) as f64;
        out.entry(domain).or_default().insert(split, stats);
    }
    out
}

/// A plain-text table of the statistics.
pub fn render_table(stats: &DatasetStats) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:<12} {:>7} {:>9} {:>7} {:>6} {:>8} {:>9} {:>9}",
        "domain", "split", "queries", "cands", "cand/q", "pos/q", "cross", "q words", "p words"
    );
    let mut entity_lines = String::new();
    for (domain, splits) in stats {
        for (split, s) in splits {
            let _ = writeln!(
                out,
                "{:<12} {:<12} {:>7} {:>9} {:>7.1} {:>6.2} {:>8} {:>9.1} {:>9.1}",
                domain,
                split.as_str(),
                s.queries,
                s.candidates,
                s.candidates as f64 / s.queries.max(1) as f64,
                s.positives as f64 / s.queries.max(1) as f64,
                s.cross_domain_queries,
                s.mean_query_words,
                s.mean_passage_words
            );
            if s.annotated {
                let _ = writeln!(entity_lines, "{domain:<12} {:<12} {:>8.2}", split.as_str(), s.entities_per_100_words);
            }
        }
    }
    if !entity_lines.is_empty() {
        let _ = writeln!(out, "\ngold entities per 100 words:\n{entity_lines}");
    }
    out
}
