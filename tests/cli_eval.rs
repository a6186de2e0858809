//! `r2r eval` and `r2r bm25` through the binary: JSON output on the shared ranx
//! fixture, error messages naming file and line, BM25 on a small native dataset.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn r2r(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_r2r")).args(args).output().expect("running r2r")
}

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
fn eval_json_on_the_ranx_fixture() {
    let Some(dir) = fixture_dir() else { return };
    let (qrels, run) = (dir.join("qrels.txt"), dir.join("run.txt"));
    let out = r2r(&[
        "eval",
        "--qrels",
        qrels.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--metrics",
        "ndcg@10,mrr@10,recall@5,precision@5,map",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let keys: Vec<&String> = ours.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["mean", "per_query"]);
    assert_eq!(ours["per_query"].as_object().unwrap().len(), 40);
    for metric in ["ndcg@10", "mrr@10", "recall@5", "precision@5", "map"] {
        let (got, want) = (ours["mean"][metric].as_f64().unwrap(), expected["mean"][metric].as_f64().unwrap());
        assert!((got - want).abs() < 1e-6, "{metric}: {got} vs {want}");
        let (got, want) =
            (ours["per_query"]["q7_04"][metric].as_f64().unwrap(), expected["per_query"]["q7_04"][metric].as_f64().unwrap());
        assert!((got - want).abs() < 1e-6, "q7_04 {metric}: {got} vs {want}");
    }

    // The table form and a comparison of the run with itself (p = 1).
    let out = r2r(&["eval", "--qrels", qrels.to_str().unwrap(), "--run", run.to_str().unwrap(), "--baseline", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("1 judged queries missing from the run"), "{table}");
    let ndcg_row = table.lines().find(|l| l.starts_with("ndcg@10")).unwrap();
    let cells: Vec<&str> = ndcg_row.split_whitespace().collect();
    assert_eq!(cells, vec!["ndcg@10", "0.3771", "0.3771", "+0.0000", "1.0000", "1.0000"], "{table}");
}

#[test]
fn a_malformed_run_fails_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let qrels = dir.path().join("qrels.txt");
    let run = dir.path().join("bad_run.txt");
    std::fs::write(&qrels, "q1 0 d1 1\n").unwrap();
    std::fs::write(&run, "q1 Q0 d1 1 0.9 sys\nq1 Q0 d2 2 high sys\n").unwrap();
    let out = r2r(&["eval", "--qrels", qrels.to_str().unwrap(), "--run", run.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad_run.txt:2:12") && stderr.contains("score `high`"), "{stderr}");

    let out = r2r(&["eval", "--qrels", qrels.to_str().unwrap(), "--run", run.to_str().unwrap(), "--metrics", "ndcg@ten"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ndcg@ten"));

    let missing = dir.path().join("nope.txt");
    let out = r2r(&["eval", "--qrels", missing.to_str().unwrap(), "--run", run.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.txt"));
}

#[test]
fn bm25_prints_each_domain_and_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.jsonl");
    let record = |id: &str, domain: &str, split: &str, query: &str, candidates: &[(&str, &str, u32)]| {
        let candidates: Vec<serde_json::Value> = candidates
            .iter()
            .map(|(cid, text, rel)| serde_json::json!({"id": cid, "text": text, "relevance": rel}))
            .collect();
        serde_json::json!({"id": id, "domain": domain, "split": split, "query": query, "candidates": candidates}).to_string()
    };
    let lines = [
        record("m1", "medical", "test", "ibuprofen dose", &[("a", "aspirin dose", 0), ("b", "ibuprofen dose adults", 1)]),
        record("m2", "medical", "test_unseen", "warfarin bleeding", &[("a", "court fee", 0), ("b", "warfarin bleeding", 1)]),
        record("l1", "legal", "test", "appeal deadline", &[("a", "tax", 0), ("b", "appeal deadline", 1)]),
        record("l2", "legal", "train", "appeal", &[("a", "appeal", 1)]),
    ];
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let run_path = dir.path().join("bm25_run.txt");
    let out = r2r(&["bm25", "--data", data.to_str().unwrap(), "--json", "--write-run", run_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(row["mean"]["mrr@10"], 1.0, "{row}");
        assert!(row["mean"]["ndcg@10"].is_number() && row["mean"]["recall@10"].is_number());
    }
    assert_eq!(json["macro_average"]["test_unseen"]["ndcg@10"], 1.0);
    let written = std::fs::read_to_string(&run_path).unwrap();
    assert!(written.starts_with("l1 Q0 b 1 "), "{written}");

    let out = r2r(&["bm25", "--data", data.to_str().unwrap(), "--split", "test", "--metrics", "map"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("map") && !table.contains("test_unseen"), "{table}");

    let out = r2r(&["bm25", "--data", data.to_str().unwrap(), "--split", "dev"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no query group in split `dev`"));
}

#[test]
fn every_subcommand_has_help() {
    for command in ["eval", "bm25"] {
        let out = r2r(&[command, "--help"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("--json"));
    }
}

#[test]
fn the_bundled_sample_data_is_found_from_another_working_directory() {
    // The executable finds its project root without R2R_HOME and outside the checkout: above itself,
    // or the checkout it was built from (a target directory elsewhere, as CARGO_TARGET_DIR makes).
    let elsewhere = std::env::temp_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_r2r")).args(["abstract", "eval"]).current_dir(&elsewhere).env_remove("R2R_HOME").output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "from {}: {stderr}", elsewhere.display());
    assert!(stdout.contains("sample_data") && stdout.contains("DRUG"), "{stdout}");
}
