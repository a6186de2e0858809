//! Bad model and adapter directories give clear errors naming the file (written into temp dirs from the
//! `make-model` tiny shape, so no shared fixtures are needed); a made model loads and scores.

use r2r::model::make_model::write_random_model;
use r2r::model::{save_adapter, LoadOptions, LoraAdapter, LoraConfig, Proj, Reranker, ScoreOptions, ScoreRequest};
use std::path::Path;

fn tiny_model(dir: &Path) {
    write_random_model(dir, "qwen3-tiny", Some(2), 3).unwrap();
}

fn load_err(dir: &Path) -> String {
    match Reranker::load(dir, &LoadOptions::default()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

#[test]
fn made_model_loads_and_fast_equals_naive() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model(tmp.path());
    let r = Reranker::load(tmp.path(), &LoadOptions::default()).unwrap();
    let reqs: Vec<ScoreRequest> = ["the court", "a patient with a symptom of the bond", ""]
        .iter()
        .map(|d| ScoreRequest { instruction: None, query: "contract damages".into(), document: d.to_string() })
        .collect();
    let adapter = LoraAdapter::new_random(LoraConfig { r: 4, ..Default::default() }, r.config(), r.device(), 1).unwrap();
    for vars in adapter.vars().chunks(2) {
        vars[1].set(&vars[1].ones_like().unwrap()).unwrap();
    }
    for a in [None, Some(&adapter)] {
        let fast = r.score(&reqs, a, &ScoreOptions::default()).unwrap();
        let naive = r.score_naive(&reqs, a, &ScoreOptions { full_vocab: true, ..Default::default() }).unwrap();
        for (x, y) in fast.iter().zip(&naive) {
            assert!((x.score - y.score).abs() < 1e-5 && (x.yes_logit - y.yes_logit).abs() < 1e-4, "{x:?} vs {y:?}");
        }
    }
    let with = r.score(&reqs, Some(&adapter), &ScoreOptions::default()).unwrap();
    let without = r.score(&reqs, None, &ScoreOptions::default()).unwrap();
    assert!(with.iter().zip(&without).any(|(a, b)| (a.yes_logit - b.yes_logit).abs() > 1e-4), "the adapter changes nothing");
}

#[test]
fn missing_files_are_named() {
    for (file, needle) in [("config.json", "config.json"), ("model.safetensors", "model.safetensors"), ("tokenizer.json", "tokenizer.json")] {
        let tmp = tempfile::tempdir().unwrap();
        tiny_model(tmp.path());
        std::fs::remove_file(tmp.path().join(file)).unwrap();
        let err = load_err(tmp.path());
        assert!(err.contains(needle), "{file}: {err}");
    }
    let err = load_err(Path::new("/nonexistent/model"));
    assert!(err.contains("/nonexistent/model"), "{err}");
}

#[test]
fn unsupported_model_type_and_shape_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model(tmp.path());
    let config = tmp.path().join("config.json");
    edit_json(&config, |v| v["model_type"] = "mistral".into());
    let err = load_err(tmp.path());
    assert!(err.contains("config.json") && err.contains("mistral"), "{err}");
    edit_json(&config, |v| {
        v["model_type"] = "qwen3".into();
        v["num_hidden_layers"] = 3.into();
    });
    let err = load_err(tmp.path());
    assert!(err.contains("model.layers.2") && err.contains("model.safetensors"), "{err}");
    edit_json(&config, |v| {
        v["num_hidden_layers"] = 2.into();
        v["intermediate_size"] = 96.into();
    });
    let err = load_err(tmp.path());
    assert!(err.contains("shape") && err.contains("model.safetensors"), "{err}");
}

#[test]
fn tokenizer_without_yes_no_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model(tmp.path());
    edit_json(&tmp.path().join("tokenizer.json"), |v| {
        let vocab = v["model"]["vocab"].as_object_mut().unwrap();
        vocab.remove("yes");
        vocab.remove("Ġyes");
    });
    let err = load_err(tmp.path());
    assert!(err.contains("tokenizer.json") && err.contains("\"yes\""), "{err}");
}

#[test]
fn corrupted_safetensors_and_pickles_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model(tmp.path());
    let weights = tmp.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("model.safetensors") && err.contains("truncated or corrupted"), "{err}");
    std::fs::write(&weights, b"garbage header").unwrap();
    assert!(load_err(tmp.path()).contains("model.safetensors"));
    // Only a pickle checkpoint.
    std::fs::remove_file(&weights).unwrap();
    std::fs::write(tmp.path().join("pytorch_model.bin"), b"\x80\x04\x95pickle").unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("pytorch_model.bin") && err.contains("pickle"), "{err}");
    // A sharded index pointing at .pt shards.
    std::fs::write(tmp.path().join("model.safetensors.index.json"), r#"{"weight_map": {"model.norm.weight": "model-00001.pt"}}"#).unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("model-00001.pt") && err.contains("pickle"), "{err}");
    // A "safetensors" file that is really a torch.save zip.
    std::fs::remove_file(tmp.path().join("model.safetensors.index.json")).unwrap();
    std::fs::write(&weights, b"PK\x03\x04torch-zip").unwrap();
    let err = load_err(tmp.path());
    assert!(err.contains("model.safetensors") && err.contains("pickle"), "{err}");
}

#[test]
fn sharded_checkpoints_load() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_model(tmp.path());
    let whole = Reranker::load(tmp.path(), &LoadOptions::default()).unwrap();
    // Split the weights into two shards + index.
    let tensors = r2r::model::checkpoint::read_safetensors(&tmp.path().join("model.safetensors"), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let (mut a, mut b, mut map) = (std::collections::BTreeMap::new(), std::collections::BTreeMap::new(), serde_json::Map::new());
    for (i, (name, t)) in tensors.into_iter().enumerate() {
        let shard = if i % 2 == 0 { "model-00001-of-00002.safetensors" } else { "model-00002-of-00002.safetensors" };
        map.insert(name.clone(), shard.into());
        if i % 2 == 0 { a.insert(name, t) } else { b.insert(name, t) };
    }
    r2r::model::checkpoint::write_safetensors(&tmp.path().join("model-00001-of-00002.safetensors"), &a, None).unwrap();
    r2r::model::checkpoint::write_safetensors(&tmp.path().join("model-00002-of-00002.safetensors"), &b, None).unwrap();
    std::fs::write(tmp.path().join("model.safetensors.index.json"), serde_json::json!({"metadata": {}, "weight_map": map}).to_string()).unwrap();
    std::fs::remove_file(tmp.path().join("model.safetensors")).unwrap();
    let sharded = Reranker::load(tmp.path(), &LoadOptions::default()).unwrap();
    let req = [ScoreRequest { instruction: None, query: "bond rate".into(), document: "the bond rate".into() }];
    assert_eq!(whole.score(&req, None, &ScoreOptions::default()).unwrap(), sharded.score(&req, None, &ScoreOptions::default()).unwrap());
}

#[test]
fn adapters_that_do_not_fit_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model_dir = tmp.path().join("model");
    tiny_model(&model_dir);
    let r = Reranker::load(&model_dir, &LoadOptions::default()).unwrap();
    // Shapes: an adapter made for a wider model.
    let mut wide = r.config().clone();
    wide.hidden_size = 128;
    let bad = LoraAdapter::new_random(LoraConfig { r: 4, ..Default::default() }, &wide, r.device(), 1).unwrap();
    let dir = tmp.path().join("wide");
    save_adapter(&bad, &dir, "other").unwrap();
    let err = format!("{:#}", r.load_adapter(&dir).unwrap_err());
    assert!(err.contains("adapter_model.safetensors") && err.contains("q_proj"), "{err}");
    // Target modules: the config says q_proj only, the weights also hold v_proj.
    let good = LoraAdapter::new_random(LoraConfig { r: 4, target_modules: vec![Proj::Q, Proj::V], ..Default::default() }, r.config(), r.device(), 1).unwrap();
    let dir = tmp.path().join("targets");
    save_adapter(&good, &dir, "tiny").unwrap();
    r.load_adapter(&dir).unwrap();
    edit_json(&dir.join("adapter_config.json"), |v| v["target_modules"] = serde_json::json!(["q_proj"]));
    let err = format!("{:#}", r.load_adapter(&dir).unwrap_err());
    assert!(err.contains("v_proj") && err.contains("target_modules"), "{err}");
    edit_json(&dir.join("adapter_config.json"), |v| v["target_modules"] = serde_json::json!(["q_proj", "v_proj", "lm_head"]));
    let err = format!("{:#}", r.load_adapter(&dir).unwrap_err());
    assert!(err.contains("adapter_config.json") && err.contains("lm_head"), "{err}");
    // More layers than the base.
    let mut deep = r.config().clone();
    deep.num_layers = 3;
    let deep = LoraAdapter::new_random(LoraConfig { r: 4, ..Default::default() }, &deep, r.device(), 1).unwrap();
    let dir = tmp.path().join("deep");
    save_adapter(&deep, &dir, "tiny").unwrap();
    let err = format!("{:#}", r.load_adapter(&dir).unwrap_err());
    assert!(err.contains("layer 2"), "{err}");
    // Missing files and pickled adapters.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(format!("{:#}", r.load_adapter(&empty).unwrap_err()).contains("adapter_config.json"));
    std::fs::copy(tmp.path().join("deep/adapter_config.json"), empty.join("adapter_config.json")).unwrap();
    std::fs::write(empty.join("adapter_model.bin"), b"\x80\x04").unwrap();
    let err = format!("{:#}", r.load_adapter(&empty).unwrap_err());
    assert!(err.contains("adapter_model.bin") && err.contains("pickle"), "{err}");
}
