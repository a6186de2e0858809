//! The one implementation of every [`Metric`]: over a query group's candidates by index
//! (`scores[i]`, graded `relevance[i]`), with the formulas of the module doc of [`crate::metrics`].
//!
//! **Tie rule**: candidates are ranked by score descending, then by index ascending ([`rank`]).
//! Dev evaluation, backbone evaluation, experiments and the app evaluate groups this way, so the
//! index is the candidate's position in the data file. The id-based path ([`Metric::score`],
//! [`crate::metrics::evaluate`] over TREC runs) lists a query's documents in id order before ranking,
//! so there the same rule breaks ties by document id ascending (ranx, trec_eval); groups whose
//! candidate ids sort like their positions (`c01`, `c02`, …) get the same numbers either way.
//! A scorer that ties keeps the file order: on data whose positives come first (FlagEmbedding
//! files list `pos` before `neg`), ties favour the positives.

use super::Metric;

/// Candidate indices, best first: score descending, then index ascending (scores compared by
/// `f64::total_cmp`).
pub fn rank<S: Copy + Into<f64>>(scores: &[S]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].into().total_cmp(&scores[a].into()).then(a.cmp(&b)));
    order
}

/// `metric` of one group ranked by `scores` ([`rank`]), every candidate judged by `relevance`.
pub fn group_metric<S: Copy + Into<f64>, R: Copy + Into<f64>>(metric: Metric, scores: &[S], relevance: &[R]) -> f64 {
    assert_eq!(scores.len(), relevance.len(), "one score per candidate");
    let ranked: Vec<R> = rank(scores).into_iter().map(|i| relevance[i]).collect();
    score_ranked(metric, &ranked, relevance.iter().copied())
}

/// `metric` of one ranking: `ranked` holds the relevance of the retrieved candidates, best first
/// (0 for unjudged ones); `judged` the relevance of every judged candidate, retrieved or not.
pub fn score_ranked<R: Copy + Into<f64>>(metric: Metric, ranked: &[R], judged: impl IntoIterator<Item = R>) -> f64 {
    let mut ideal: Vec<f64> = judged.into_iter().map(|r| r.into().max(0.0)).collect();
    let n_relevant = ideal.iter().filter(|&&g| g >= 1.0).count();
    if n_relevant == 0 {
        return 0.0;
    }
    let depth = metric.cutoff().map_or(ranked.len(), |k| k.min(ranked.len()));
    let top: Vec<f64> = ranked[..depth].iter().map(|&r| r.into().max(0.0)).collect();
    let hits = top.iter().filter(|&&g| g >= 1.0).count();
    match metric {
        Metric::Ndcg(k) => {
            let dcg = |gains: &[f64]| -> f64 { gains.iter().enumerate().map(|(i, g)| g / ((i + 2) as f64).log2()).sum() };
            ideal.sort_unstable_by(|a, b| b.total_cmp(a));
            let idcg = dcg(&ideal[..k.map_or(ideal.len(), |k| k.min(ideal.len()))]);
            if idcg > 0.0 {
                dcg(&top) / idcg
            } else {
                0.0
            }
        }
        Metric::Mrr(_) => top.iter().position(|&g| g >= 1.0).map_or(0.0, |i| 1.0 / (i + 1) as f64),
        Metric::Recall(_) => hits as f64 / n_relevant as f64,
        Metric::Precision(k) => match k.unwrap_or(ranked.len()) {
            0 => 0.0,
            k => hits as f64 / k as f64,
        },
        Metric::Map(_) => {
            let mut seen = 0usize;
            let mut sum = 0.0;
            for (i, _) in top.iter().enumerate().filter(|(_, &g)| g >= 1.0) {
                seen += 1;
                sum += seen as f64 / (i + 1) as f64;
            }
            sum / n_relevant as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const LOG3: f64 = 1.584_962_500_721_156_3; // log2(3)

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn ties_fall_by_index_ascending() {
        assert_eq!(rank(&[0.5f32, 0.7, 0.5, 0.7, 0.1]), vec![1, 3, 0, 2, 4]);
        assert_eq!(rank(&[1.0f64, 1.0, 1.0]), vec![0, 1, 2]);
        assert_eq!(rank::<f32>(&[]), Vec::<usize>::new());
    }

    #[test]
    fn hand_computed_metrics_with_ties() {
        // Scores tie in pairs: rank = 1, 3, 0, 2, 4 → relevance 0, 2, 1, 0, 1 (3 relevant).
        let scores = [0.5f32, 0.7, 0.5, 0.7, 0.1];
        let relevance = [1u32, 0, 0, 2, 1];
        let m = |metric: &str| group_metric(metric.parse().unwrap(), &scores, &relevance);
        // DCG@3 = 2/log2(3) + 1/2; IDCG@3 = 2 + 1/log2(3) + 1/2.
        assert!(close(m("ndcg@3"), (2.0 / LOG3 + 0.5) / (2.5 + 1.0 / LOG3)));
        assert_eq!(m("mrr@10"), 0.5);
        assert_eq!(m("mrr@1"), 0.0);
        assert!(close(m("recall@3"), 2.0 / 3.0));
        assert_eq!(m("recall"), 1.0);
        assert!(close(m("precision@3"), 2.0 / 3.0));
        assert_eq!(m("precision@10"), 0.3, "divides by k, not by the 5 candidates");
        assert_eq!(m("precision"), 0.6);
        // AP = (1/2 + 2/3 + 3/5) / 3; MAP@3 keeps the divisor 3.
        assert!(close(m("map"), (0.5 + 2.0 / 3.0 + 0.6) / 3.0));
        assert!(close(m("map@3"), (0.5 + 2.0 / 3.0) / 3.0));
        // Swapping which tied candidate is relevant moves it behind its twin.
        assert_eq!(group_metric(Metric::Mrr(None), &[0.7f32, 0.7], &[0u32, 1]), 0.5);
        assert_eq!(group_metric(Metric::Mrr(None), &[0.7f32, 0.7], &[1u32, 0]), 1.0);
    }

    #[test]
    fn dev_evaluation_example() {
        // Formerly in train::dev_eval: ranking 0, 1, 3, 4, 2, 5.
        let (scores, relevance) = ([0.9f32, 0.8, 0.1, 0.7, 0.2, 0.0], [0u32, 2, 0, 1, 0, 0]);
        assert_eq!(rank(&scores), vec![0, 1, 3, 4, 2, 5]);
        assert!(close(group_metric(Metric::Precision(Some(5)), &scores, &relevance), 0.4));
        let (dcg, idcg) = (2.0 / LOG3 + 0.5, 2.0 + 1.0 / LOG3);
        assert!(close(group_metric(Metric::Ndcg(Some(10)), &scores, &relevance), dcg / idcg));
        assert_eq!(group_metric(Metric::Ndcg(Some(10)), &[0.1f32, 0.5, 0.0, 0.3, 0.0, 0.0], &relevance), 1.0);
    }

    #[test]
    fn a_group_without_relevant_candidates_scores_zero() {
        for metric in Metric::parse_list("ndcg@10,ndcg,mrr@10,recall@5,precision@5,precision,map").unwrap() {
            assert_eq!(group_metric(metric, &[0.3f32, 0.2, 0.1], &[0u32, 0, 0]), 0.0, "{metric}");
            assert_eq!(group_metric(metric, &[0.3f64, 0.2], &[-1i32, 0]), 0.0, "{metric}");
            assert_eq!(group_metric(metric, &[] as &[f32], &[] as &[u32]), 0.0, "{metric}");
        }
        assert!(close(group_metric(Metric::Ndcg(Some(10)), &[0.3f32, 0.2], &[0u32, 3]), 1.0 / LOG3));
    }

    #[test]
    fn the_id_path_agrees_with_the_index_path_when_ids_sort_like_indices() {
        let relevance = [0i32, 2, 0, 1, 0, 1, 0, 3, 0, 0, 1, 0];
        let scores = [0.9f64, 0.2, 0.9, 0.2, 0.5, 0.5, 0.5, 0.1, 0.9, 0.0, 0.2, 0.5];
        let mut run = super::super::Run::new("t");
        let mut qrels = super::super::Qrels::default();
        for (i, (&s, &r)) in scores.iter().zip(&relevance).enumerate() {
            run.insert("q", &format!("c{i:02}"), s);
            qrels.insert("q", &format!("c{i:02}"), r);
        }
        let metrics = Metric::parse_list("ndcg@3,ndcg@10,ndcg,mrr@3,mrr,recall@4,precision@5,precision,map@6,map").unwrap();
        let by_id = super::super::evaluate(&qrels, &run, &metrics);
        for &metric in &metrics {
            assert_eq!(by_id.per_query["q"][&metric], group_metric(metric, &scores, &relevance), "{metric}");
        }
        let order: Vec<String> = run.ranked("q").into_iter().map(|(id, _)| id.to_string()).collect();
        let by_index: Vec<String> = rank(&scores).into_iter().map(|i| format!("c{i:02}")).collect();
        assert_eq!(order, by_index);
        // Ids that do not sort like positions: the id path ranks the tied `a` (index 1) first.
        let judged = BTreeMap::from([("b".to_string(), 0), ("a".to_string(), 1)]);
        let mut run = super::super::Run::new("t");
        run.insert("q", "b", 1.0);
        run.insert("q", "a", 1.0);
        let ranked: Vec<i32> = run.ranked("q").iter().map(|(d, _)| judged[*d]).collect();
        assert_eq!(Metric::Mrr(None).score(&ranked, &judged), 1.0);
        assert_eq!(group_metric(Metric::Mrr(None), &[1.0f64, 1.0], &[0i32, 1]), 0.5);
    }
}
