//! `r2r experiment` end to end on a tiny subset (the shared qwen3-tiny fixture, or a seeded random
//! model when ../shared is absent): every system × split × domain × metric is in results.json with
//! values in [0, 1], routing reports are consistent, significance and misroute impact are filled,
//! report.md has its tables, CSVs and TREC runs are written, a second run with the same seed gives
//! identical numbers, and a missing model is a clear error. Every ablation and study runs once
//! with the smallest settings: the schema of `studies` in results.json, its report sections and
//! CSVs, and the rows that must equal the main comparison (the unchanged config reuses its experts).

mod common;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use r2r::experiment::report::write_outputs;
use r2r::experiment::systems::METRICS;
use r2r::experiment::System;

/// The systems' names, in table order.
const SYSTEMS: [&str; 9] = {
    let mut names = [""; 9];
    let mut i = 0;
    while i < 9 {
        names[i] = System::ALL[i].name();
        i += 1;
    }
    names
};
use r2r::experiment::{run_experiment, ExperimentConfig};
use r2r::train::JobContext;
use serde_json::Value;

fn tiny_config(model: &Path) -> ExperimentConfig {
    let text = format!(
        "[train.data]\npath = {:?}\ndomains = [\"legal\", \"medical\"]\nood_domains = [\"general\"]\nmax_train_queries = 6\nmax_dev_queries = 2\n\
         [train.model]\npath = {:?}\nmax_length = 96\n[train.lora]\nrank = 4\nalpha = 8.0\n[train.objective]\nscore = \"logit\"\nnegatives = 3\n\
         [train.optim]\nlearning_rate = 0.001\nbatch_groups = 3\n[train.router]\nmax_train_queries = 6\n[experiment]\nmax_eval_queries = 3\npermutations = 500\n",
        common::root().join("sample_data").display().to_string(),
        model.display().to_string()
    );
    toml::from_str(&text).unwrap()
}

fn run(config: &ExperimentConfig, out: &Path) -> Value {
    let (tx, _rx) = crossbeam_channel::unbounded();
    let ctx = JobContext::new(tx, Arc::new(AtomicBool::new(false)), None);
    let results = run_experiment(config, out, &ctx).unwrap();
    write_outputs(&results, out).unwrap();
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

#[test]
fn experiment_end_to_end_schema_report_and_determinism() {
    let scratch = tempfile::tempdir().unwrap();
    let config = tiny_config(&common::tiny_model(scratch.path()));
    let out = scratch.path().join("exp");
    let results = run(&config, &out);

    let domains = ["legal", "medical"];
    for system in SYSTEMS {
        for (split, split_domains) in [("test", &domains[..]), ("test_unseen", &domains[..]), ("ood", &["general"][..])] {
            let by_domain = &results["systems"][system][split];
            if system == "r2r_oracle" && split == "ood" {
                assert!(by_domain.is_null(), "oracle routing has no OOD expert");
                continue;
            }
            for domain in split_domains.iter().copied().chain(["macro"]) {
                for metric in METRICS {
                    let v = by_domain[domain][metric.to_string()].as_f64().unwrap_or_else(|| panic!("{system}/{split}/{domain}/{metric} missing"));
                    assert!((0.0..=1.0).contains(&v), "{system}/{split}/{domain}/{metric} = {v}");
                }
            }
            // The macro average is the mean over domains.
            let m = "ndcg@10";
            let mean: f64 = split_domains.iter().map(|d| by_domain[*d][m].as_f64().unwrap()).sum::<f64>() / split_domains.len() as f64;
            assert!((by_domain["macro"][m].as_f64().unwrap() - mean).abs() < 1e-12);
        }
    }
    assert_eq!(results["queries"]["test"]["legal"].as_u64(), Some(3));

    let routing = &results["routing"];
    for router in ["lsr", "mlp", "random", "oracle", "static:legal", "static:medical"] {
        let r = &routing[router];
        assert_eq!(r["labels"], serde_json::json!(["legal", "medical"]), "{router}");
        let total: u64 = r["confusion"].as_array().unwrap().iter().flat_map(|row| row.as_array().unwrap()).map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(total, 6, "{router}");
        assert_eq!(r["per_class"].as_array().unwrap().len(), 2);
        assert!(r["macro_f1"].as_f64().is_some());
    }
    assert_eq!(routing["oracle"]["accuracy"].as_f64(), Some(1.0));
    assert_eq!(routing["static:legal"]["accuracy"].as_f64(), Some(0.5));
    let ood_routed: u64 = results["ood_routing"]["general"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(ood_routed, 3);

    let significance = results["significance"].as_array().unwrap();
    assert_eq!(significance.len(), 2 * 2 * 2, "splits × domains × baselines");
    for s in significance {
        let p = s["p_value"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{s}");
    }
    let misroute = &results["misroute"];
    assert_eq!(misroute["queries"].as_u64(), Some(12));
    assert_eq!(misroute["misrouted"].as_u64().unwrap() as usize, misroute["items"].as_array().unwrap().len());
    for key in ["data", "backbone", "config", "adapter:expert-legal", "adapter:direct", "adapter:single-medical"] {
        assert_eq!(results["fingerprints"][key].as_str().map(str::len), Some(64), "{key}");
    }
    assert!(results["timings"]["total"].as_f64().unwrap() > 0.0);
    assert_eq!(results["config"]["train"]["lora"]["rank"].as_u64(), Some(4));

    // The sweep's oracle and LSR rows are the r2r_oracle and r2r_lsr systems.
    for (router, system) in [("oracle", "r2r_oracle"), ("lsr", "r2r_lsr")] {
        for split in ["test", "test_unseen"] {
            for domain in ["legal", "medical", "macro"] {
                let a = results["router_sweep"][router][split][domain].as_f64().unwrap();
                let b = results["systems"][system][split][domain]["ndcg@10"].as_f64().unwrap();
                assert!((a - b).abs() < 1e-12, "{router}/{split}/{domain}: {a} vs {b}");
            }
        }
    }
    assert!(results["router_sweep"]["random"]["test"]["macro"].as_f64().is_some());

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for heading in ["## test: ndcg@10 per domain", "## test_unseen: macro average", "## ood: ndcg@10 per domain", "## Routing", "## Significance", "## Misroute impact"] {
        assert!(report.contains(heading), "report lacks {heading}:\n{report}");
    }
    for system in SYSTEMS {
        assert!(report.contains(&format!("| {system} |")), "report lacks the row of {system}");
    }
    let csv = std::fs::read_to_string(out.join("systems_test.csv")).unwrap();
    assert!(csv.starts_with("system,domain,ndcg@5,ndcg@10,mrr@5,mrr@10,recall@5,recall@10,precision@5\n"));
    assert_eq!(csv.lines().count(), 1 + SYSTEMS.len() * 3, "every system × (2 domains + macro)");
    let trec_path = out.join("runs/r2r_lsr.test.trec");
    r2r::metrics::Run::read(&trec_path).unwrap();
    let trec = std::fs::read_to_string(&trec_path).unwrap();
    let queries: std::collections::BTreeSet<&str> = trec.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(queries.len(), 6, "3 test queries of each of 2 domains");
    assert!(out.join("runs/bm25.ood.trec").is_file() && !out.join("runs/r2r_oracle.ood.trec").exists());

    // Same seed, fresh directory: identical numbers (this run adds the masking ablation).
    let mut with_ablation = config.clone();
    with_ablation.experiment.mask_intensities = vec![0.0];
    let stage2_rate = config.train.optim.learning_rate / 10.0;
    with_ablation.experiment.stage2_learning_rates = vec![stage2_rate];
    with_ablation.experiment.stage2_optimizer_ablation = true;
    let again = run(&with_ablation, &scratch.path().join("exp2"));
    for name in ["mask_intensity:0".to_string(), format!("stage2_learning_rate:{stage2_rate}"), "stage2_optimizer:continued".to_string()] {
        let ablation = &again["ablations"][&name];
        for split in ["test", "test_unseen"] {
            for domain in ["legal", "medical", "macro"] {
                let v = ablation[split][domain].as_f64().unwrap_or_else(|| panic!("ablation {name} {split}/{domain} missing"));
                assert!((0.0..=1.0).contains(&v));
            }
        }
    }
    // The stage-2 variants (rate, optimiser) start from the main run's stage 1 (copied, not retrained)
    // and train other experts; the masking variant retrains stage 1.
    let main_training = scratch.path().join("exp2/training");
    let read = |path: std::path::PathBuf| std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let main_stage1 = read(main_training.join("state/stage1/progress.json"));
    let variants: Vec<std::path::PathBuf> = std::fs::read_dir(scratch.path().join("exp2/variants")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(variants.len(), 3, "{variants:?}");
    let reusing: Vec<&std::path::PathBuf> = variants.iter().filter(|v| read(v.join("state/stage1/progress.json")) == main_stage1).collect();
    assert_eq!(reusing.len(), 2, "exactly the stage-2 variants reuse stage 1");
    let expert = "experts/legal/adapter_model.safetensors";
    for variant in &reusing {
        assert_ne!(read(variant.join(expert)), read(main_training.join(expert)), "{}: the same expert as the main run's", variant.display());
    }
    assert_ne!(read(reusing[0].join(expert)), read(reusing[1].join(expert)));
    assert!(std::fs::read_to_string(scratch.path().join("exp2/report.md")).unwrap().contains("## Ablations"));
    for key in ["systems", "routing", "significance", "misroute", "fingerprints", "router_sweep"] {
        assert_eq!(results[key], again[key], "{key} differs between runs");
    }

    // The experiment's LSR is published where `r2r train` puts a router.
    let router = r2r::routing::TrainedRouter::load(&out.join("training").join("router")).unwrap();
    assert_eq!(router.meta.labels, ["legal", "medical"]);

    // Scoring only the adapters a system picks (same directory: the finished jobs are reused) gives
    // the same numbers for every system but r2r_soft, which needs every expert and is left out.
    // A rerun in the same directory takes every score from the cache: the same numbers, nothing appended.
    let cache_path = out.join("score_cache.jsonl");
    let cached_lines = std::fs::read_to_string(&cache_path).unwrap().lines().count();
    assert!(cached_lines > 0);
    let rerun = run(&config, &out);
    assert_eq!(std::fs::read_to_string(&cache_path).unwrap().lines().count(), cached_lines, "the rerun scored something again");
    for key in ["systems", "routing", "significance", "misroute", "router_sweep"] {
        assert_eq!(rerun[key], results[key], "{key} differs on the cached rerun");
    }
    std::fs::remove_file(&cache_path).unwrap();
    let mut picked = config.clone();
    picked.experiment.score_all_adapters = false;
    let lean = run(&picked, &out);
    let lean_lines = std::fs::read_to_string(&cache_path).unwrap().lines().count();
    assert!(lean_lines < cached_lines, "scoring only the picked adapters scores less ({lean_lines} vs {cached_lines} groups)");
    for system in SYSTEMS {
        if system == "r2r_soft" {
            assert!(lean["systems"][system].is_null(), "r2r_soft without every expert scored");
        } else {
            assert_eq!(lean["systems"][system], results["systems"][system], "{system} differs when only picked adapters are scored");
        }
    }
    for key in ["routing", "significance", "misroute"] {
        assert_eq!(lean[key], results[key], "{key}");
    }
    let sweep: Vec<&String> = lean["router_sweep"].as_object().unwrap().keys().collect();
    assert_eq!(sweep, ["lsr", "mlp", "oracle"]);
    assert_eq!(lean["router_sweep"]["lsr"], results["router_sweep"]["lsr"]);
}

#[test]
fn a_cancel_during_the_evaluation_stops_the_experiment_within_a_second() {
    use r2r::train::{spawn_job, JobEvent};
    use std::time::Duration;
    let scratch = tempfile::tempdir().unwrap();
    let config = tiny_config(&common::tiny_model(scratch.path()));
    let out = scratch.path().join("exp");
    let job_out = out.clone();
    let mut job = spawn_job("experiment", None, move |ctx| run_experiment(&config, &job_out, ctx));
    common::cancel_at(&mut job, Duration::from_secs(120), |event| matches!(event, JobEvent::Progress(p) if p.stage == "evaluate"));
    assert!(job.take_result().unwrap().unwrap_err().is::<r2r::train::jobs::Cancelled>());
    assert!(!out.join("results.json").exists());
    // Resumed in the same directory (the finished jobs and scores reused), the experiment reports what an
    // uninterrupted run reports.
    let config = tiny_config(&common::tiny_model(scratch.path()));
    let resumed = run(&config, &out);
    let uninterrupted = run(&config, &scratch.path().join("uninterrupted"));
    for key in ["systems", "routing", "significance", "misroute", "router_sweep", "fingerprints"] {
        assert_eq!(resumed[key], uninterrupted[key], "{key}");
    }
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let scratch = tempfile::tempdir().unwrap();
    let config = tiny_config(&scratch.path().join("no-model"));
    let (tx, _rx) = crossbeam_channel::unbounded();
    let ctx = JobContext::new(tx, Arc::new(AtomicBool::new(false)), None);
    let err = format!("{:#}", run_experiment(&config, &scratch.path().join("out"), &ctx).unwrap_err());
    assert!(err.contains("--model") && err.contains("no-model"), "{err}");
}

#[test]
fn cli_names_the_missing_model_and_bad_config_keys() {
    let scratch = tempfile::tempdir().unwrap();
    let r2r = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_r2r")).args(args).current_dir(common::root()).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let out = scratch.path().join("out");
    let (ok, stderr) = r2r(&["experiment", "--out", out.to_str().unwrap(), "--model", "/nonexistent/backbone"]);
    assert!(!ok && stderr.contains("--model") && stderr.contains("/nonexistent/backbone"), "{stderr}");
    let config = scratch.path().join("bad.toml");
    std::fs::write(&config, "[experiment]\nmask_intensities = [2.0]\n").unwrap();
    let (ok, stderr) = r2r(&["experiment", "--config", config.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("bad.toml") && stderr.contains("mask_intensities"), "{stderr}");
    let (ok, stderr) = r2r(&["experiment", "--out", out.to_str().unwrap(), "--coverage-drop", "0,1.5"]);
    assert!(!ok && stderr.contains("coverage_drop") && stderr.contains("1.5"), "{stderr}");
    let (ok, stderr) = r2r(&["experiment", "--out", out.to_str().unwrap(), "--mask-type-set", "DRUG,NOT_A_TYPE"]);
    assert!(!ok && stderr.contains("NOT_A_TYPE"), "{stderr}");
}

#[test]
fn an_unseen_domain_without_test_queries_is_a_clear_error() {
    let scratch = tempfile::tempdir().unwrap();
    let mut config = tiny_config(&common::tiny_model(scratch.path()));
    config.experiment.unseen_domain = "astrology".into();
    let (tx, _rx) = crossbeam_channel::unbounded();
    let ctx = JobContext::new(tx, Arc::new(AtomicBool::new(false)), None);
    let err = format!("{:#}", run_experiment(&config, &scratch.path().join("out"), &ctx).unwrap_err());
    assert!(err.contains("unseen_domain") && err.contains("astrology"), "{err}");
}

/// NDCG@10 of `values` (split → domain → value) for the target domains' splits, each in [0, 1].
fn check_split_domain(values: &Value, what: &str) {
    for split in ["test", "test_unseen"] {
        for domain in ["legal", "medical", "macro"] {
            let v = values[split][domain].as_f64().unwrap_or_else(|| panic!("{what}: {split}/{domain} missing"));
            assert!((0.0..=1.0).contains(&v), "{what}: {split}/{domain} = {v}");
        }
    }
}

/// `values` equals the main comparison's `system` NDCG@10 (the study reused the main experts).
fn same_as_system(results: &Value, values: &Value, system: &str, what: &str) {
    for split in ["test", "test_unseen"] {
        for domain in ["legal", "medical", "macro"] {
            let (a, b) = (values[split][domain].as_f64().unwrap(), results["systems"][system][split][domain]["ndcg@10"].as_f64().unwrap());
            assert!((a - b).abs() < 1e-12, "{what} vs {system} on {split}/{domain}: {a} vs {b}");
        }
    }
}

#[test]
fn every_study_with_the_smallest_settings() {
    let scratch = tempfile::tempdir().unwrap();
    let mut config = tiny_config(&common::tiny_model(scratch.path()));
    let e = &mut config.experiment;
    e.lora_ranks = vec![2, 4];
    e.mask_type_sets = vec![vec!["PARTY".into()]];
    e.many_domains = vec![6];
    e.coverage_drop = vec![0.0, 0.5];
    e.unseen_domain = "medical".into();
    let out = scratch.path().join("exp");
    let results = run(&config, &out);
    let studies = &results["studies"];

    // LoRA rank: rank 4 (alpha 8) is the main run's setting, so its row is the main experts'.
    let ranks = studies["lora_rank"].as_array().unwrap();
    assert_eq!(ranks.iter().map(|r| r["rank"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 4]);
    for r in ranks {
        assert_eq!(r["alpha"].as_f64().unwrap(), 2.0 * r["rank"].as_f64().unwrap());
        assert_eq!(r["adapter_bytes"].as_u64().unwrap(), 4 * r["adapter_parameters"].as_u64().unwrap());
        check_split_domain(&r["r2r_lsr"], "lora_rank r2r_lsr");
        check_split_domain(&r["r2r_oracle"], "lora_rank r2r_oracle");
    }
    assert_eq!(ranks[1]["adapter_bytes"].as_u64().unwrap(), 2 * ranks[0]["adapter_bytes"].as_u64().unwrap(), "LoRA size is linear in the rank");
    same_as_system(&results, &ranks[1]["r2r_lsr"], "r2r_lsr", "rank 4");
    same_as_system(&results, &ranks[1]["r2r_oracle"], "r2r_oracle", "rank 4");

    // Per-type masking: the reference rows, then the set; "all" is the main run.
    let masks = studies["mask_types"].as_array().unwrap();
    assert_eq!(masks.iter().map(|r| r["masked"].as_str().unwrap()).collect::<Vec<_>>(), ["all", "none", "PARTY"]);
    masks.iter().for_each(|r| check_split_domain(&r["r2r_lsr"], "mask_types"));
    same_as_system(&results, &masks[0]["r2r_lsr"], "r2r_lsr", "mask all");

    // Coverage: dropping half of the gazetteer halves its entries and lowers the measured recall.
    let coverage = studies["coverage"].as_array().unwrap();
    let entries: Vec<u64> = coverage.iter().map(|r| r["gazetteer_entries"].as_u64().unwrap()).collect();
    assert_eq!(entries[1], entries[0] - (entries[0] as f64 * 0.5).round() as u64);
    let recall: Vec<f64> = coverage.iter().map(|r| r["recall"].as_f64().expect("the sample data has gold spans")).collect();
    assert!(recall[0] <= 1.0 && recall[1] < recall[0], "recall {recall:?}");
    coverage.iter().for_each(|r| check_split_domain(&r["r2r_lsr"], "coverage"));
    same_as_system(&results, &coverage[0]["r2r_lsr"], "r2r_lsr", "drop 0");

    // Many domains: N = 2 (the domains, for reference) and 6 random sub-domains.
    let many = studies["many_domains"].as_array().unwrap();
    assert_eq!(many.iter().map(|r| r["experts"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 6]);
    assert_eq!(many[1]["per_domain"], serde_json::json!({"legal": 3, "medical": 3}));
    assert_eq!(many[0]["routing"]["lsr"]["accuracy"], results["routing"]["lsr"]["accuracy"], "N = D trains the main LSR again");
    for r in many {
        let n = r["experts"].as_u64().unwrap();
        assert_eq!(r["test_queries"].as_u64(), Some(6));
        assert_eq!(r["train_queries"].as_u64(), Some(12));
        for router in ["lsr", "mlp"] {
            let m = &r["routing"][router];
            let (acc, parent) = (m["accuracy"].as_f64().unwrap(), m["parent_accuracy"].as_f64().unwrap());
            assert!((0.0..=1.0).contains(&acc) && acc <= parent && parent <= 1.0, "{n}/{router}: {m}");
            assert!(m["macro_f1"].as_f64().is_some());
        }
        let memory = &r["memory"];
        assert_eq!(memory["adapter_bytes"], ranks[1]["adapter_bytes"], "copies of a rank-4 expert");
        assert_eq!(memory["adapters_bytes"].as_u64().unwrap(), n * memory["adapter_bytes"].as_u64().unwrap());
        assert!(memory["backbone_bytes"].as_u64().unwrap() > 0);
        assert_eq!(r["latency"]["queries"].as_u64(), Some(6));
        assert!(r["latency"]["total_ms"].as_f64().unwrap() > 0.0);
    }

    // Unseen domain: medical held out, one legal expert left, so soft and hard routing agree.
    let unseen = &studies["unseen_domain"];
    assert_eq!((unseen["domain"].as_str(), unseen["retrained"].as_bool(), unseen["queries"].as_u64()), (Some("medical"), Some(true), Some(3)));
    assert_eq!(unseen["experts"], serde_json::json!(["legal"]));
    assert_eq!(unseen["routed_to"], serde_json::json!({"legal": 3}));
    for system in ["generalist", "r2r_lsr", "r2r_soft"] {
        assert!((0.0..=1.0).contains(&unseen["ndcg_at_10"][system].as_f64().unwrap()), "{system}");
    }
    assert_eq!(unseen["ndcg_at_10"]["r2r_lsr"], unseen["ndcg_at_10"]["r2r_soft"]);
    let tests = unseen["significance"].as_array().unwrap();
    assert_eq!(tests.len(), 2);
    for t in tests {
        assert_eq!(t["baseline"], "generalist");
        let p = t["p_value"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0, "{t}");
    }
    assert!(out.join("variants").is_dir(), "retrained variants live under variants/");

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for heading in ["## Ablation: LoRA rank", "## Ablation: per-type masking", "## Study: many domains", "## Study: abstraction coverage", "## Study: unseen domain `medical`"] {
        assert!(report.contains(heading), "report lacks {heading}:\n{report}");
    }
    for (file, header, rows) in [
        ("ablation_lora_rank.csv", "rank,alpha,adapter_parameters,adapter_bytes,system,split,domain,ndcg@10", 2 * 2 * 2 * 3),
        ("ablation_mask_types.csv", "masked,split,domain,ndcg@10", 3 * 2 * 3),
        ("study_many_domains.csv", "experts,router,accuracy,", 2 * 2),
        ("study_coverage.csv", "drop,gazetteer_entries,recall,precision,split,domain,ndcg@10", 2 * 2 * 3),
        ("study_unseen_domain.csv", "domain,system,queries,ndcg@10,mean_difference,p_value", 3),
    ] {
        let csv = std::fs::read_to_string(out.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(csv.starts_with(header), "{file}: {csv}");
        assert_eq!(csv.lines().count(), 1 + rows, "{file}:\n{csv}");
    }
}
