//! `r2r export training`: the sample data's stages in both engines' formats, with the launch script and
//! manifest, and errors for data the engines could not train on.

use std::path::Path;

use r2r::scaleout::{export_training, Engine};
use r2r::train::TrainConfig;

fn tiny_config() -> TrainConfig {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = TrainConfig::load(&root.join("assets/configs/tiny.toml")).unwrap();
    config.data.path = root.join("sample_data");
    config.data.max_train_queries = 12;
    config
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn every_stage_is_written_in_each_engines_format() {
    let config = tiny_config();
    for engine in [Engine::FlagEmbedding, Engine::Swift] {
        let out = tempfile::tempdir().unwrap();
        let export = export_training(&config, engine, out.path()).unwrap();
        let stages: Vec<&str> = export.files.iter().map(|f| f.stage.as_str()).collect();
        assert_eq!(stages, ["stage1", "stage2:legal", "stage2:medical", "stage2:financial", "direct"], "{engine:?}");
        let stage1 = lines(&out.path().join("data/stage1.jsonl"));
        let legal = lines(&out.path().join("data/stage2-legal.jsonl"));
        assert_eq!((stage1.len(), legal.len()), (36, 12));
        let query = |v: &serde_json::Value| match engine {
            Engine::FlagEmbedding => v["query"].as_str().unwrap().to_string(),
            Engine::Swift => v["messages"][0]["content"].as_str().unwrap().to_string(),
        };
        // Stage 1 is the abstracted union (placeholders); stage 2 the original text.
        assert!(stage1.iter().any(|v| query(v).contains("_1]")), "no placeholder in stage 1");
        assert!(legal.iter().all(|v| !query(v).contains("_1]")));
        let script = std::fs::read_to_string(out.path().join("launch.sh")).unwrap();
        for domain in ["legal", "medical", "financial"] {
            assert!(script.contains(&format!("data/stage2-{domain}.jsonl")), "{script}");
        }
        let negatives = config.objective.negatives;
        match engine {
            Engine::FlagEmbedding => assert!(script.contains(&format!("--train_group_size {}", negatives + 1)) && script.contains("--from_peft")),
            Engine::Swift => assert!(script.contains(&format!("MAX_NEGATIVE_SAMPLES={negatives}")) && script.contains("--adapters")),
        }
        let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["export"]["files"].as_array().unwrap().len(), 5);
    }
}

#[test]
fn unknown_domains_are_errors_naming_the_field() {
    let mut config = tiny_config();
    config.data.domains = vec!["maritime".into()];
    let out = tempfile::tempdir().unwrap();
    let err = format!("{:#}", export_training(&config, Engine::Swift, out.path()).unwrap_err());
    assert!(err.contains("data.domains") && err.contains("maritime"), "{err}");
}

mod common;

#[test]
fn adapters_trained_elsewhere_become_a_runs_adapters_and_misfits_are_refused() {
    use r2r::model::{LoraAdapter, LoraConfig, Proj, Reranker};
    let scratch = tempfile::tempdir().unwrap();
    let model = common::tiny_model(scratch.path());
    let reranker = Reranker::load(&model, &Default::default()).unwrap();
    let incoming = scratch.path().join("incoming");
    let config = LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, target_modules: vec![Proj::Q, Proj::V], use_rslora: false };
    for (name, seed) in [("legal", 1), ("stage1", 2)] {
        let adapter = LoraAdapter::new_random(config.clone(), reranker.config(), reranker.device(), seed).unwrap();
        r2r::model::save_adapter(&adapter, &incoming.join(name), "elsewhere").unwrap();
    }
    let run = scratch.path().join("run");
    let report = r2r::scaleout::import_adapters(&incoming, &model, &run).unwrap();
    let roles: Vec<(&str, &str)> = report.adapters.iter().map(|a| (a.name.as_str(), a.role.as_str())).collect();
    assert_eq!(roles, [("legal", "expert"), ("stage1", "stage1")]);
    assert_eq!(report.adapters[0].rank, 4);
    // The published expert is the imported adapter, and the run's config names it.
    let source = reranker.load_adapter(&incoming.join("legal")).unwrap();
    let published = reranker.load_adapter(&run.join("experts/legal")).unwrap();
    let flat = |a: &LoraAdapter| a.vars().iter().flat_map(|v| v.flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect::<Vec<f32>>();
    assert_eq!(flat(&source), flat(&published));
    // Round trip: the imported expert scores exactly as the adapter it came from.
    let requests = vec![r2r::model::ScoreRequest { instruction: None, query: "notice period".into(), document: "thirty days notice".into() }];
    let score = |a: &LoraAdapter| reranker.score(&requests, Some(a), &Default::default()).unwrap()[0].score;
    assert_eq!(score(&source), score(&published));
    let config = TrainConfig::load(&run.join("config.toml")).unwrap();
    assert_eq!(config.data.domains, ["legal"]);
    assert!(run.join("imported.json").is_file());

    // An adapter for another shape is refused, naming its folder, and nothing of that import is published.
    let mut other = reranker.config().clone();
    other.num_layers += 1;
    let misfit = LoraAdapter::new_random(config_for_misfit(), &other, reranker.device(), 3).unwrap();
    let bad = scratch.path().join("bad");
    r2r::model::save_adapter(&misfit, &bad.join("medical"), "elsewhere").unwrap();
    let err = format!("{:#}", r2r::scaleout::import_adapters(&bad, &model, &run).unwrap_err());
    assert!(err.contains("bad/medical") && err.contains("layer"), "{err}");
    assert!(!run.join("experts/medical").exists());
    // A single adapter folder given directly is explained.
    let err = format!("{:#}", r2r::scaleout::import_adapters(&incoming.join("legal"), &model, &run).unwrap_err());
    assert!(err.contains("single adapter"), "{err}");
}

fn config_for_misfit() -> r2r::model::LoraConfig {
    r2r::model::LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, target_modules: vec![r2r::model::Proj::Q], use_rslora: false }
}

#[test]
fn a_run_with_experts_and_a_router_becomes_a_serving_bundle() {
    use r2r::model::Reranker;
    use r2r::routing::TrainedRouter;
    let scratch = tempfile::tempdir().unwrap();
    let run = tiny_run_with_experts(scratch.path());
    let reranker = Reranker::load(&common::tiny_model(scratch.path()), &Default::default()).unwrap();
    let out = scratch.path().join("serve");
    // Without a router there is nothing to route with.
    let err = format!("{:#}", r2r::scaleout::export_serving(&run, &out).unwrap_err());
    assert!(err.contains("no trained router"), "{err}");

    save_tiny_router(&run, reranker.config().hidden_size);
    let manifest = r2r::scaleout::export_serving(&run, &out).unwrap();
    assert_eq!(manifest.experts.keys().collect::<Vec<_>>(), ["legal", "medical"]);
    assert_eq!(manifest.max_lora_rank, 8);
    assert!(manifest.router.query_prompt.contains("{query}"), "{}", manifest.router.query_prompt);
    // The bundle's experts load as the run's, the router reloads, and vllm.sh names every module.
    for domain in ["legal", "medical"] {
        reranker.load_adapter(&out.join("experts").join(domain)).unwrap();
    }
    TrainedRouter::load(&out.join("router")).unwrap();
    let script = std::fs::read_to_string(out.join("vllm.sh")).unwrap();
    assert!(script.contains("--enable-lora") && script.contains("legal=") && script.contains("medical="), "{script}");
    let parsed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("serving.json")).unwrap()).unwrap();
    assert_eq!(parsed["router"]["labels"], serde_json::json!(["legal", "medical"]));
}

/// A run with two imported random experts (non-zero B, so they score differently from the base).
fn tiny_run_with_experts(scratch: &Path) -> std::path::PathBuf {
    use r2r::model::{LoraAdapter, LoraConfig, Proj, Reranker};
    let model = common::tiny_model(scratch);
    let reranker = Reranker::load(&model, &Default::default()).unwrap();
    let incoming = scratch.join("incoming");
    let config = LoraConfig { r: 8, alpha: 16.0, dropout: 0.0, target_modules: vec![Proj::Q, Proj::V], use_rslora: false };
    for (name, seed) in [("legal", 1), ("medical", 2)] {
        let mut adapter = LoraAdapter::new_random(config.clone(), reranker.config(), reranker.device(), seed).unwrap();
        for pair in adapter.layers.iter_mut().flat_map(|m| m.values_mut()) {
            let shape = pair.b.shape().clone();
            pair.b.set(&candle_core::Tensor::randn(0f32, 0.05, shape, reranker.device()).unwrap()).unwrap();
        }
        r2r::model::save_adapter(&adapter, &incoming.join(name), "elsewhere").unwrap();
    }
    let run = scratch.join("run");
    r2r::scaleout::import_adapters(&incoming, &model, &run).unwrap();
    run
}

/// A linear router over {legal, medical} on separable `hidden`-dimensional features, saved in `run/router`.
fn save_tiny_router(run: &Path, hidden: usize) {
    use r2r::routing::{RouterKind, RouterTrainConfig, TrainedRouter};
    let labels = vec!["legal".to_string(), "medical".to_string()];
    let x: Vec<Vec<f32>> = (0..8).map(|i| (0..hidden).map(|j| if (j % 2 == 0) == (i % 2 == 0) { 1.0 } else { -1.0 }).collect()).collect();
    let y: Vec<usize> = (0..8).map(|i| i % 2).collect();
    TrainedRouter::train(RouterKind::Linear, &labels, &x, &y, &RouterTrainConfig::default(), None).unwrap().save(&run.join("router")).unwrap();
}

/// A run with two experts and a router, for the serving tests.
fn tiny_routed_run(scratch: &Path) -> std::path::PathBuf {
    let run = tiny_run_with_experts(scratch);
    let hidden = r2r::model::Reranker::load(&common::tiny_model(scratch), &Default::default()).unwrap().config().hidden_size;
    save_tiny_router(&run, hidden);
    run
}

#[test]
fn the_rerank_endpoint_routes_scores_and_refuses_bad_requests() {
    use r2r::scaleout::serve::{answer, Limits, RoutedReranker};
    let scratch = tempfile::tempdir().unwrap();
    let run = tiny_routed_run(scratch.path());
    let model = RoutedReranker::load(&run).unwrap();
    let limits = Limits { max_body_bytes: 4096, max_documents: 3 };
    let body = serde_json::json!({"query": "tenant notice period", "documents": ["the lease ends in May", "a tenant gives thirty days notice", "the weather"], "top_n": 2}).to_string();
    let (status, value) = answer(&model, limits, "POST", "/rerank", body.as_bytes());
    assert_eq!(status, 200, "{value}");
    let results = value["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "top_n");
    assert!(results[0]["relevance_score"].as_f64().unwrap() >= results[1]["relevance_score"].as_f64().unwrap());
    let expert = value["expert"].as_str().unwrap();
    assert!(["legal", "medical"].contains(&expert));
    let p: f64 = value["routing"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
    assert!((p - 1.0).abs() < 1e-4, "routing probabilities sum to {p}");
    // The same request gives the same answer (CPU determinism).
    assert_eq!(answer(&model, limits, "POST", "/rerank", body.as_bytes()).1, value);
    for (method, path, body, want, says) in [
        ("POST", "/rerank", "{\"query\": \"x\"".to_string(), 400, "invalid request JSON"),
        ("POST", "/rerank", "{\"documents\": []}".to_string(), 400, "query"),
        ("POST", "/rerank", serde_json::json!({"query": "q", "documents": ["a", "b", "c", "d"]}).to_string(), 413, "at most 3"),
        ("POST", "/rerank", "x".repeat(5000), 413, "over 4096 bytes"),
        ("POST", "/rerank", serde_json::json!({"query": "q", "documents": []}).to_string(), 400, "documents is empty"),
        ("GET", "/rerank", String::new(), 405, "not allowed"),
        ("GET", "/nothing", String::new(), 404, "no endpoint"),
    ] {
        let (status, value) = answer(&model, limits, method, path, body.as_bytes());
        assert_eq!(status, want, "{method} {path}: {value}");
        assert!(value["error"].as_str().unwrap().contains(says), "{value}");
    }
    assert_eq!(answer(&model, limits, "GET", "/health", b"").0, 200);
    // A 10 MB body under the default limits is refused before it is parsed.
    let huge = format!("{{\"query\": \"q\", \"documents\": [\"{}\"]}}", "x".repeat(10 << 20));
    assert_eq!(answer(&model, Limits::default(), "POST", "/rerank", huge.as_bytes()).0, 413);
    // An unknown run is an error naming it.
    let err = format!("{:#}", RoutedReranker::load(&scratch.path().join("no-such-run")).err().expect("an error"));
    assert!(err.contains("no-such-run"), "{err}");
}

#[test]
fn the_service_answers_concurrent_requests_over_http() {
    use r2r::scaleout::serve::{load_test, serve, Limits, RoutedReranker};
    let scratch = tempfile::tempdir().unwrap();
    let run = tiny_routed_run(scratch.path());
    let model = RoutedReranker::load(&run).unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || serve(model, "127.0.0.1:0", 2, Limits::default(), |bound| tx.send(bound).unwrap()));
    let bound = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
    let body = serde_json::json!({"query": "tenant notice period", "documents": ["a", "b", "c"]}).to_string();
    let report = load_test(bound, &body, 12, 3, 60.0).unwrap();
    assert_eq!((report.requests, report.errors), (12, 0), "{report:?}");
    assert!(report.p50_ms > 0.0 && report.p99_ms >= report.p50_ms);
    // Bad JSON over the wire is a 4xx, counted as an error by the load test.
    let bad = load_test(bound, "{not json", 2, 1, 60.0).unwrap();
    assert_eq!(bad.errors, 2);
}
