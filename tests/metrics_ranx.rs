//! Reproduces the ranx 0.3.21 reference values in `../shared/fixtures/metrics`
//! (per query and mean, every metric listed there) to 1e-6.

mod common;

use std::path::{Path, PathBuf};

use r2r::metrics::{evaluate, Metric, Qrels, Run};

fn fixture_dir() -> Option<PathBuf> {
    // `../shared` next to the checkout; `R2R_SHARED` overrides it (e.g. from a git worktree).
    let shared = std::env::var_os("R2R_SHARED").map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"), PathBuf::from);
    let dir = shared.join("fixtures/metrics");
    if dir.join("expected.json").is_file() {
        Some(dir)
    } else {
        common::missing(&dir.display().to_string());
        None
    }
}

#[test]
fn reproduces_ranx_per_query_and_mean() {
    let Some(dir) = fixture_dir() else { return };
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let qrels = Qrels::read(&dir.join("qrels.txt")).unwrap();
    let run = Run::read(&dir.join("run.txt")).unwrap();
    let metrics: Vec<Metric> =
        expected["metrics"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(metrics.len(), 13);
    let evaluation = evaluate(&qrels, &run, &metrics);

    let expected_queries = expected["per_query"].as_object().unwrap();
    assert_eq!(evaluation.per_query.len(), expected_queries.len());
    assert_eq!(evaluation.per_query.len() as u64, expected["n_queries"].as_u64().unwrap());
    let missing: Vec<&str> =
        expected["queries_missing_from_run"].as_array().unwrap().iter().map(|q| q.as_str().unwrap()).collect();
    assert_eq!(evaluation.missing_from_run, missing);

    let mut compared = 0;
    for (query, values) in expected_queries {
        let ours = &evaluation.per_query[query];
        for &metric in &metrics {
            let want = values[metric.to_string()].as_f64().unwrap();
            let got = ours[&metric];
            assert!((got - want).abs() < 1e-6, "{query} {metric}: ours {got}, ranx {want}");
            compared += 1;
        }
    }
    assert_eq!(compared, 40 * 13);
    for &metric in &metrics {
        let want = expected["mean"][metric.to_string()].as_f64().unwrap();
        let got = evaluation.mean[&metric];
        assert!((got - want).abs() < 1e-6, "mean {metric}: ours {got}, ranx {want}");
    }
}

#[test]
fn fixture_run_round_trips_through_our_writer() {
    let Some(dir) = fixture_dir() else { return };
    let run = Run::read(&dir.join("run.txt")).unwrap();
    let qrels = Qrels::read(&dir.join("qrels.txt")).unwrap();
    let out = tempfile::tempdir().unwrap();
    run.write(&out.path().join("run.txt")).unwrap();
    qrels.write(&out.path().join("qrels.txt")).unwrap();
    assert_eq!(Run::read(&out.path().join("run.txt")).unwrap(), run);
    assert_eq!(Qrels::read(&out.path().join("qrels.txt")).unwrap(), qrels);
}
