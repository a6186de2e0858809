//! Runs and qrels built from a dataset's query groups: the bridge between a
//! reranker (or BM25) scoring candidates and the metrics.
//!
//! The qrels hold every candidate's `relevance` (0 = judged non-relevant). The
//! run holds one score per candidate; ranking then follows the tie-break of
//! TREC runs (score descending, then candidate id ascending; see
//! [`crate::metrics::formulas`]). A candidate id repeated within a group keeps its
//! first occurrence in both.

use crate::data::{Candidate, QueryGroup};

use super::{Qrels, Run};

/// Qrels of `groups`: query id → candidate id → relevance.
pub fn qrels_from_groups<'a>(groups: impl IntoIterator<Item = &'a QueryGroup>) -> Qrels {
    let mut qrels = Qrels::default();
    for group in groups {
        let judged = qrels.judgments.entry(group.id.clone()).or_default();
        for candidate in &group.candidates {
            let relevance = i32::try_from(candidate.relevance).unwrap_or(i32::MAX);
            judged.entry(candidate.id.clone()).or_insert(relevance);
        }
    }
    qrels
}

/// A run scoring every candidate of `groups` with `score(group, candidate)`.
pub fn run_from_groups<'a>(
    name: &str,
    groups: impl IntoIterator<Item = &'a QueryGroup>,
    mut score: impl FnMut(&QueryGroup, &Candidate) -> f64,
) -> Run {
    let mut run = Run::new(name);
    for group in groups {
        let scored = run.scores.entry(group.id.clone()).or_default();
        for candidate in &group.candidates {
            if !scored.contains_key(&candidate.id) {
                scored.insert(candidate.id.clone(), score(group, candidate));
            }
        }
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Split;
    use crate::metrics::{evaluate, Metric};

    fn group(id: &str, candidates: &[(&str, u32)]) -> QueryGroup {
        QueryGroup {
            id: id.into(),
            domain: "legal".into(),
            split: Split::Test,
            query: "q".into(),
            query_entities: Vec::new(),
            candidates: candidates
                .iter()
                .map(|&(id, relevance)| Candidate { id: id.into(), text: id.into(), relevance, entities: Vec::new() })
                .collect(),
            secondary_domain: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn groups_become_qrels_and_a_scored_run() {
        let groups = [group("g1", &[("a", 0), ("b", 2), ("c", 0)]), group("g2", &[("x", 1), ("y", 0)])];
        let qrels = qrels_from_groups(&groups);
        assert_eq!(qrels.judgments["g1"]["b"], 2);
        assert_eq!(qrels.judgments["g1"].len(), 3);
        // A constant score: every candidate ties, so ids decide (a, b, c / x, y).
        let run = run_from_groups("const", &groups, |_, _| 0.0);
        let e = evaluate(&qrels, &run, &[Metric::Mrr(Some(10))]);
        assert_eq!(e.per_query["g1"][&Metric::Mrr(Some(10))], 0.5);
        assert_eq!(e.per_query["g2"][&Metric::Mrr(Some(10))], 1.0);
        // An oracle score ranks the positive first.
        let oracle = run_from_groups("oracle", &groups, |_, c| f64::from(c.relevance));
        assert_eq!(evaluate(&qrels, &oracle, &[Metric::Ndcg(Some(10))]).mean[&Metric::Ndcg(Some(10))], 1.0);
    }
}
