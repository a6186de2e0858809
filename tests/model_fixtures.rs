//! Reproduces ../shared/fixtures/qwen3-tiny (computed by HF transformers + PEFT): prompt token ids, yes/no
//! logits, scores and final hidden states, base and with the PEFT adapter, single and in a padded batch;
//! checks the fast path (prefix reuse) against the naive one, PEFT save/load, and candle-transformers' own
//! qwen3 model as a second reference. Skips (with a note) when the shared fixtures are absent.

mod common;

use candle_core::{DType, Device, Tensor};
use r2r::model::{save_adapter, AdapterRun, LoadOptions, LoraAdapter, PairScore, PromptTemplate, Reranker, ScoreOptions, ScoreRequest, Truncation};
use serde_json::Value;
use std::path::{Path, PathBuf};

const SCORE_TOL: f32 = 1e-5;
const LOGIT_TOL: f32 = 1e-4;
const HIDDEN_TOL: f32 = 1e-4;

fn fixture_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // ../shared next to the main checkout; ../../shared from a worktree under /work/wt.
    let found = [root.join("../shared"), root.join("../../shared")].into_iter().map(|s| s.join("fixtures/qwen3-tiny")).find(|d| d.join("expected.json").is_file());
    if found.is_none() {
        common::missing("shared/fixtures/qwen3-tiny");
    }
    found
}

struct Fixture {
    dir: PathBuf,
    expected: Value,
    reranker: Reranker,
    adapter: LoraAdapter,
}

fn load() -> Option<Fixture> {
    let dir = fixture_dir()?;
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let reranker = Reranker::load(&dir.join("model"), &LoadOptions::default()).unwrap();
    let adapter = reranker.load_adapter(&dir.join("adapter")).unwrap();
    Some(Fixture { dir, expected, reranker, adapter })
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn requests(expected: &Value) -> Vec<ScoreRequest> {
    expected["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| ScoreRequest {
            instruction: (!p["instruction_is_default"].as_bool().unwrap()).then(|| p["instruction"].as_str().unwrap().to_string()),
            query: p["query"].as_str().unwrap().into(),
            document: p["document"].as_str().unwrap().into(),
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Compares scores (and hidden states when present) with one variant ("base"/"adapter") of every pair.
fn check_against_pairs(label: &str, scores: &[PairScore], expected: &Value, variant: &str) {
    for (s, p) in scores.iter().zip(expected["pairs"].as_array().unwrap()) {
        let e = &p[variant];
        let id = p["id"].as_str().unwrap();
        assert!((s.yes_logit - e["yes_logit"].as_f64().unwrap() as f32).abs() < LOGIT_TOL, "{label} {id} yes {} vs {}", s.yes_logit, e["yes_logit"]);
        assert!((s.no_logit - e["no_logit"].as_f64().unwrap() as f32).abs() < LOGIT_TOL, "{label} {id} no {} vs {}", s.no_logit, e["no_logit"]);
        assert!((s.score - e["score"].as_f64().unwrap() as f32).abs() < SCORE_TOL, "{label} {id} score {} vs {}", s.score, e["score"]);
        if let Some(h) = &s.hidden {
            let d = max_diff(h, &f32s(&e["last_hidden"]));
            assert!(d < HIDDEN_TOL, "{label} {id} hidden differs by {d}");
        }
    }
}

#[test]
fn prompt_token_ids_match_transformers() {
    let Some(fx) = load() else { return };
    let prompt = &fx.reranker.prompt;
    assert_eq!(prompt.prefix_ids(), u32s(&fx.expected["prompt"]["prefix_ids"]).as_slice());
    assert_eq!(prompt.suffix_ids(), u32s(&fx.expected["prompt"]["suffix_ids"]).as_slice());
    assert_eq!((prompt.yes_id, prompt.no_id, prompt.pad_id), (288, 287, 1628));
    for (req, p) in requests(&fx.expected).iter().zip(fx.expected["pairs"].as_array().unwrap()) {
        let enc = prompt.encode_pair(req.instruction.as_deref(), &req.query, &req.document).unwrap();
        assert_eq!(enc.ids(), u32s(&p["input_ids"]), "pair {}", p["id"]);
        assert_eq!(prompt.prompt_text(req.instruction.as_deref(), &req.query, &req.document), p["prompt_text"].as_str().unwrap());
        assert!(!enc.truncated);
    }
}

#[test]
fn single_and_padded_batch_scores_match_transformers_and_peft() {
    let Some(fx) = load() else { return };
    let reqs = requests(&fx.expected);
    let single = ScoreOptions { max_batch: 1, want_hidden: true, ..Default::default() };
    let batched = ScoreOptions { max_batch: reqs.len(), want_hidden: true, ..Default::default() };
    for (variant, adapter) in [("base", None), ("adapter", Some(&fx.adapter))] {
        let one = fx.reranker.score_naive(&reqs, adapter, &single).unwrap();
        check_against_pairs(&format!("{variant} single"), &one, &fx.expected, variant);
        let all = fx.reranker.score_naive(&reqs, adapter, &batched).unwrap();
        check_against_pairs(&format!("{variant} padded batch"), &all, &fx.expected, variant);
        let got: Vec<f32> = all.iter().map(|s| s.score).collect();
        let want = f32s(&fx.expected["batch"][variant]["scores_mask_positions"]);
        assert!(max_diff(&got, &want) < SCORE_TOL, "{variant} batch scores differ by {}", max_diff(&got, &want));
        // Prefix reuse equals the naive path.
        let fast = fx.reranker.score(&reqs, adapter, &batched).unwrap();
        check_against_pairs(&format!("{variant} fast"), &fast, &fx.expected, variant);
        let d = max_diff(&fast.iter().map(|s| s.score).collect::<Vec<_>>(), &got);
        assert!(d < SCORE_TOL, "{variant} fast vs naive {d}");
        // The model card's full-vocabulary path gives the same yes/no logits.
        let full = fx.reranker.score_naive(&reqs, adapter, &ScoreOptions { full_vocab: true, ..batched.clone() }).unwrap();
        check_against_pairs(&format!("{variant} full-vocab"), &full, &fx.expected, variant);
    }
}

#[test]
fn full_vocabulary_logits_of_p00_match() {
    let Some(fx) = load() else { return };
    let p = &fx.expected["pairs"][0];
    let ids = u32s(&p["input_ids"]);
    let batch = fx.reranker.encode_batch(&[&ids]).unwrap();
    let hidden = fx.reranker.final_hidden(&batch, None).unwrap();
    let logits = hidden.matmul(&fx.reranker.model.lm_head().t().unwrap()).unwrap().squeeze(0).unwrap().to_vec1::<f32>().unwrap();
    let d = max_diff(&logits, &f32s(&p["base"]["all_logits_last_token"]));
    assert!(d < LOGIT_TOL, "all logits differ by {d}");
}

#[test]
fn truncation_follows_the_model_card_or_keeps_the_query() {
    let Some(fx) = load() else { return };
    let case = &fx.expected["truncation_case"];
    let max_length = case["max_length"].as_u64().unwrap() as usize;
    let req = ScoreRequest { instruction: None, query: case["query"].as_str().unwrap().into(), document: case["document"].as_str().unwrap().into() };
    let load_with = |max_length: usize, truncation: Truncation| {
        let template = PromptTemplate { max_length, truncation, ..PromptTemplate::default() };
        Reranker::load(&fx.dir.join("model"), &LoadOptions { template: Some(template), ..Default::default() }).unwrap()
    };
    // The model card's rule (the fixture's long instruction makes it cut into the query): exact ids and outputs.
    let card = load_with(max_length, Truncation::Body);
    let enc = card.prompt.encode_pair(None, &req.query, &req.document).unwrap();
    assert_eq!(enc.ids(), u32s(&case["input_ids"]));
    assert!(enc.truncated);
    for (variant, adapter) in [("base", None), ("adapter", Some(&fx.adapter))] {
        for scores in [card.score(std::slice::from_ref(&req), adapter, &ScoreOptions::default()).unwrap(), card.score_naive(std::slice::from_ref(&req), adapter, &ScoreOptions::default()).unwrap()] {
            let s = &scores[0];
            assert!(s.truncated);
            assert!((s.score - case[variant]["score"].as_f64().unwrap() as f32).abs() < SCORE_TOL, "{variant} {} vs {}", s.score, case[variant]["score"]);
            assert!((s.yes_logit - case[variant]["yes_logit"].as_f64().unwrap() as f32).abs() < LOGIT_TOL);
            assert!((s.no_logit - case[variant]["no_logit"].as_f64().unwrap() as f32).abs() < LOGIT_TOL);
        }
    }
    // Document-only truncation keeps the whole query even here ...
    let doc_only = load_with(max_length, Truncation::Document);
    let enc = doc_only.prompt.encode_pair(None, &req.query, &req.document).unwrap();
    assert_eq!(enc.shared, doc_only.prompt.encode_query(None, &req.query).unwrap());
    assert_eq!(enc.candidate, doc_only.prompt.suffix_ids());
    // ... and equals the model card's cut whenever that cut falls inside the document.
    for max_length in [110, 150, 200] {
        let r = load_with(max_length, Truncation::Document);
        let p = &r.prompt;
        let body = p.encode(&p.prompt_text(None, &req.query, &req.document)[p.template.prefix.len()..p.prompt_text(None, &req.query, &req.document).len() - p.template.suffix.len()]).unwrap();
        let card_ids = [p.prefix_ids(), &body[..max_length - p.prefix_ids().len() - p.suffix_ids().len()], p.suffix_ids()].concat();
        let enc = p.encode_pair(None, &req.query, &req.document).unwrap();
        assert_eq!(enc.ids(), card_ids, "max_length {max_length}");
        assert_eq!(enc.ids().len(), max_length);
        let long = r.score(std::slice::from_ref(&req), None, &ScoreOptions::default()).unwrap();
        let naive = r.score_naive(std::slice::from_ref(&req), None, &ScoreOptions::default()).unwrap();
        assert!((long[0].score - naive[0].score).abs() < SCORE_TOL && long[0].truncated);
    }
}

#[test]
fn peft_adapter_saved_and_reloaded_scores_identically() {
    let Some(fx) = load() else { return };
    let reqs = requests(&fx.expected);
    let opts = ScoreOptions::default();
    let before = fx.reranker.score(&reqs, Some(&fx.adapter), &opts).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    save_adapter(&fx.adapter, tmp.path(), "qwen3-tiny").unwrap();
    let reloaded = fx.reranker.load_adapter(tmp.path()).unwrap();
    assert_eq!(reloaded.config, fx.adapter.config);
    let after = fx.reranker.score(&reqs, Some(&reloaded), &opts).unwrap();
    assert_eq!(before, after);
    // Same key names and shapes as the PEFT-written file.
    let names = |dir: &Path| {
        let bytes = std::fs::read(dir.join("adapter_model.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut v: Vec<(String, Vec<usize>)> = st.tensors().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
        v.sort();
        v
    };
    assert_eq!(names(tmp.path()), names(&fx.dir.join("adapter")));
}

#[test]
fn edge_cases_zero_one_candidates_and_empty_document() {
    let Some(fx) = load() else { return };
    let opts = ScoreOptions::default();
    assert!(fx.reranker.score(&[], None, &opts).unwrap().is_empty());
    assert!(fx.reranker.score_naive(&[], None, &opts).unwrap().is_empty());
    let empty = ScoreRequest { instruction: None, query: "symptoms of influenza".into(), document: String::new() };
    let fast = fx.reranker.score(std::slice::from_ref(&empty), None, &opts).unwrap();
    let naive = fx.reranker.score_naive(std::slice::from_ref(&empty), None, &opts).unwrap();
    assert!((fast[0].score - naive[0].score).abs() < SCORE_TOL && fast[0].score.is_finite());
    // Mixed lengths and groups: results do not depend on batch composition.
    let mut reqs = requests(&fx.expected);
    reqs.push(empty);
    let together = fx.reranker.score(&reqs, Some(&fx.adapter), &opts).unwrap();
    let small = fx.reranker.score(&reqs, Some(&fx.adapter), &ScoreOptions { max_batch: 3, ..opts.clone() }).unwrap();
    let alone: Vec<PairScore> = reqs.iter().map(|r| fx.reranker.score(std::slice::from_ref(r), Some(&fx.adapter), &opts).unwrap().remove(0)).collect();
    for ((a, b), c) in together.iter().zip(&small).zip(&alone) {
        assert!((a.score - b.score).abs() < SCORE_TOL && (a.score - c.score).abs() < SCORE_TOL, "{} {} {}", a.score, b.score, c.score);
    }
}

#[test]
fn every_lora_parameter_gets_a_gradient() {
    let Some(fx) = load() else { return };
    let reqs = requests(&fx.expected);
    let ids: Vec<Vec<u32>> = reqs.iter().take(3).map(|r| fx.reranker.prompt.encode_pair(r.instruction.as_deref(), &r.query, &r.document).unwrap().ids()).collect();
    let rows: Vec<&[u32]> = ids.iter().map(|r| r.as_slice()).collect();
    let batch = fx.reranker.encode_batch(&rows).unwrap();
    let config = r2r::model::LoraConfig { r: 4, alpha: 8.0, dropout: 0.1, target_modules: r2r::model::Proj::ALL.to_vec(), use_rslora: false };
    let adapter = LoraAdapter::new_random(config, fx.reranker.config(), &Device::Cpu, 5).unwrap();
    // B = 0 at init: the adapter starts as the base model.
    let base = fx.reranker.yes_no_logits(&batch, None).unwrap();
    let init = fx.reranker.yes_no_logits(&batch, Some(&adapter)).unwrap();
    let (base, init) = (base.flatten_all().unwrap().to_vec1::<f32>().unwrap(), init.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    assert!(max_diff(&base, &init) < 1e-5, "{base:?} vs {init:?}");
    // Make B non-zero so gradients reach A too, then train-mode forward with dropout.
    for var in adapter.vars().iter().skip(1).step_by(2) {
        var.set(&Tensor::full(0.01f32, var.shape(), &Device::Cpu).unwrap()).unwrap();
    }
    let rng = std::cell::RefCell::new(r2r::util::seeded_rng(1, 2));
    let logits = fx.reranker.yes_no_logits_with(&batch, &AdapterRun::train(&adapter, &rng)).unwrap();
    let loss = (logits.narrow(1, 0, 1).unwrap() - logits.narrow(1, 1, 1).unwrap()).unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    for (i, var) in adapter.vars().iter().enumerate() {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("variable {i} got no gradient"));
        assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0, "variable {i} has a zero gradient");
    }
    // The grouped fast path keeps the graph as well.
    let enc: Vec<_> = reqs.iter().take(2).map(|r| fx.reranker.prompt.encode_pair(None, &r.query, &r.document).unwrap()).collect();
    let cands: Vec<&[u32]> = enc.iter().map(|e| e.candidate.as_slice()).collect();
    let (logits, _) = fx.reranker.group_logits(&enc[0].shared, &cands, &AdapterRun::with(Some(&adapter)), &ScoreOptions::default()).unwrap();
    let grads = logits.sum_all().unwrap().backward().unwrap();
    assert!(adapter.vars().iter().all(|v| grads.get(v.as_tensor()).is_some()));
}

#[test]
fn differentiable_path_equals_the_inference_kernels() {
    let Some(fx) = load() else { return };
    // With the PEFT adapter and no detaching, the forward runs the basic-op RMSNorm and softmax (the training
    // path); scoring runs candle's fused kernels. Both must reproduce the fixture.
    let reqs = requests(&fx.expected);
    let ids: Vec<Vec<u32>> = reqs.iter().map(|r| fx.reranker.prompt.encode_pair(r.instruction.as_deref(), &r.query, &r.document).unwrap().ids()).collect();
    let rows: Vec<&[u32]> = ids.iter().map(|r| r.as_slice()).collect();
    let batch = fx.reranker.encode_batch(&rows).unwrap();
    let logits = fx.reranker.yes_no_logits(&batch, Some(&fx.adapter)).unwrap().to_vec2::<f32>().unwrap();
    for (l, p) in logits.iter().zip(fx.expected["pairs"].as_array().unwrap()) {
        assert!((l[0] - p["adapter"]["yes_logit"].as_f64().unwrap() as f32).abs() < LOGIT_TOL, "{} {l:?}", p["id"]);
        assert!((l[1] - p["adapter"]["no_logit"].as_f64().unwrap() as f32).abs() < LOGIT_TOL, "{} {l:?}", p["id"]);
    }
}

#[test]
fn candle_transformers_qwen3_agrees_on_the_base_forward() {
    let Some(fx) = load() else { return };
    use candle_transformers::models::qwen3;
    let model_dir = fx.dir.join("model");
    let cfg: qwen3::Config = serde_json::from_str(&std::fs::read_to_string(model_dir.join("config.json")).unwrap()).unwrap();
    let tensors = candle_core::safetensors::load(model_dir.join("model.safetensors"), &Device::Cpu).unwrap();
    for p in fx.expected["pairs"].as_array().unwrap().iter().take(4) {
        let ids = u32s(&p["input_ids"]);
        let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        // A fresh model per input: its KV cache only appends.
        let vb = candle_nn::VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
        let mut lm = qwen3::ModelForCausalLM::new(&cfg, vb.clone()).unwrap();
        let theirs = lm.forward(&input, 0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mut base = qwen3::Model::new(&cfg, vb).unwrap();
        let their_hidden = base.forward(&input, 0).unwrap();
        let their_hidden = their_hidden.narrow(1, ids.len() - 1, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let batch = fx.reranker.encode_batch(&[&ids]).unwrap();
        let ours = fx.reranker.yes_no_logits(&batch, None).unwrap().to_vec2::<f32>().unwrap();
        let hidden = fx.reranker.final_hidden(&batch, None).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!((ours[0][0] - theirs[288]).abs() < LOGIT_TOL && (ours[0][1] - theirs[287]).abs() < LOGIT_TOL, "{:?} vs {} {}", ours, theirs[288], theirs[287]);
        assert!(max_diff(&hidden, &their_hidden) < HIDDEN_TOL);
    }
}
