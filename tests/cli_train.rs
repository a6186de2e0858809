//! The training CLI end to end: `r2r train --only router` writes a router whose test report
//! `r2r route --json` reproduces, the table form prints the confusion matrix, baseline routers
//! need no model, and a broken config names the file and key.

mod common;
use std::process::Command;

fn r2r(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_r2r")).args(args).current_dir(common::root()).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn train_router_then_route_reproduces_the_report() {
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("c.toml");
    let text = format!(
        "[data]\npath = \"sample_data\"\ndomains = [\"legal\", \"medical\", \"financial\"]\nmax_train_queries = 20\n[model]\npath = {:?}\n",
        common::tiny_model(scratch.path()).display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    let out = scratch.path().join("run");
    let (ok, stdout, stderr) = r2r(&["train", "--config", config.to_str().unwrap(), "--only", "router", "--out", out.to_str().unwrap(), "--json"]);
    assert!(ok, "{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let accuracy = summary["router"]["test"]["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.5, "3 domains, chance 1/3: {accuracy}");

    let router = out.join("router");
    let (ok, stdout, stderr) = r2r(&["route", "--router", router.to_str().unwrap(), "--data", "sample_data", "--json"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("150 test queries of domains outside"), "the general domain is skipped: {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["accuracy"].as_f64().unwrap(), accuracy);
    assert_eq!(report["labels"], serde_json::json!(["legal", "medical", "financial"]));
    assert_eq!(report["confusion"].as_array().unwrap().len(), 3);
    assert_eq!(report["per_class"].as_array().unwrap().len(), 3);
    assert!(report["macro_f1"].as_f64().unwrap() > 0.0);

    let (ok, stdout, _) = r2r(&["route", "--router", router.to_str().unwrap(), "--data", "sample_data", "--split", "dev"]);
    assert!(ok && stdout.contains("confusion (rows: true domain") && stdout.contains("macro-F1"), "{stdout}");
}

#[test]
fn baseline_routers_and_errors() {
    let (ok, stdout, stderr) = r2r(&["route", "--router", "oracle", "--data", "sample_data", "--json"]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["accuracy"].as_f64(), Some(1.0));
    assert_eq!(report["queries"].as_u64(), Some(600));
    let (ok, stdout, _) = r2r(&["route", "--router", "static:legal", "--data", "sample_data", "--domains", "legal,medical", "--json"]);
    assert!(ok);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["accuracy"].as_f64(), Some(0.5));
    let (ok, _, stderr) = r2r(&["route", "--router", "static:astrology", "--data", "sample_data"]);
    assert!(!ok && stderr.contains("astrology"), "{stderr}");
    let (ok, _, stderr) = r2r(&["route", "--router", "/nonexistent/router", "--data", "sample_data"]);
    assert!(!ok && stderr.contains("router.json"), "{stderr}");

    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("bad.toml");
    std::fs::write(&config, "[optim]\nlearnig_rate = 0.1\n").unwrap();
    let (ok, _, stderr) = r2r(&["train", "--config", config.to_str().unwrap()]);
    assert!(!ok && stderr.contains("bad.toml") && stderr.contains("learnig_rate"), "{stderr}");
}
