//! Gemma 3 parity: reproduces ../shared/fixtures/gemma3-tiny (transformers + PEFT: sliding window 16 on
//! 100–144-token prompts, 1 KV head, heads × head_dim ≠ hidden, query_pre_attn_scalar ≠ head_dim, LoRA
//! r8 α16) — base and adapter, single and left-padded batch, prefix reuse, truncation — and the real
//! Gemma 3 270M GGUF (`r2r model fetch gemma-3-270m`) against ../shared/fixtures/gemma3-270m: every
//! tokenizer case and the last-position logits and final hidden states of eight prompts.
//!
//! These tests fail when ../shared or the fetched model is missing, unless R2R_ALLOW_SKIP=1 is set.

use r2r::model::{AdapterRun, LoadOptions, LoraAdapter, PairScore, PromptTemplate, Reranker, ScoreOptions, ScoreRequest, Truncation};
use serde_json::Value;
use std::path::{Path, PathBuf};

const SCORE_TOL: f32 = 1e-5;
const LOGIT_TOL: f32 = 1e-4;
const HIDDEN_TOL: f32 = 1e-4;

fn allow_skip(what: &str) -> bool {
    if std::env::var("R2R_ALLOW_SKIP").is_ok_and(|v| v == "1") {
        eprintln!("note: {what} is missing; skipped (R2R_ALLOW_SKIP=1)");
        return true;
    }
    panic!("{what} is missing (set R2R_ALLOW_SKIP=1 to skip this test)");
}

fn shared_fixture(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = [root.join("../shared"), root.join("../../shared")].into_iter().map(|s| s.join("fixtures").join(name)).find(|d| d.join("expected.json").is_file());
    if found.is_none() && allow_skip(&format!("../shared/fixtures/{name}")) {
        return None;
    }
    found
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

struct Tiny {
    dir: PathBuf,
    expected: Value,
    reranker: Reranker,
    adapter: LoraAdapter,
}

fn tiny() -> Option<Tiny> {
    let dir = shared_fixture("gemma3-tiny")?;
    let expected = read_json(&dir.join("expected.json"));
    let reranker = Reranker::load(&dir.join("model"), &LoadOptions::default()).unwrap();
    let adapter = reranker.load_adapter(&dir.join("adapter")).unwrap();
    Some(Tiny { dir, expected, reranker, adapter })
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

fn check(label: &str, scores: &[PairScore], expected: &Value, variant: &str) {
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
fn gemma3_tiny_config_reads_the_variant() {
    let Some(fx) = tiny() else { return };
    let c = fx.reranker.config();
    assert_eq!(c.arch, r2r::model::Arch::Gemma3);
    assert_eq!(c.layer_kinds, vec![r2r::model::LayerKind::Sliding, r2r::model::LayerKind::Sliding, r2r::model::LayerKind::Full]);
    assert_eq!((c.sliding_window, c.rope_theta, c.rope_local_theta), (16, 1e6, 1e4));
    assert!((c.attn_scale - 24f64.powf(-0.5)).abs() < 1e-12);
    assert_eq!(c.activation, r2r::model::Activation::GeluTanh);
}

#[test]
fn gemma3_tiny_layer_by_layer_matches_transformers() {
    let Some(fx) = tiny() else { return };
    let pair = &fx.expected["pairs"][0];
    let states = fx.reranker.model.layer_states(&u32s(&pair["input_ids"]), &AdapterRun::base()).unwrap();
    let want = &pair["base"]["per_layer_last_token"];
    for (i, name) in ["embed", "layer0", "layer1", "layer2"].iter().enumerate() {
        let d = max_diff(&states[i], &f32s(&want[name]));
        assert!(d < HIDDEN_TOL, "{name}: differs by {d}: {:?} vs {:?}", &states[i][..4], &f32s(&want[name])[..4]);
    }
}

#[test]
fn gemma3_tiny_prompt_ids_match_transformers() {
    let Some(fx) = tiny() else { return };
    for (req, p) in requests(&fx.expected).iter().zip(fx.expected["pairs"].as_array().unwrap()) {
        let enc = fx.reranker.prompt.encode_pair(req.instruction.as_deref(), &req.query, &req.document).unwrap();
        assert_eq!(enc.ids(), u32s(&p["input_ids"]), "pair {}", p["id"]);
        // Longer than the window, so a layer that ignored it would fail below.
        assert!(enc.ids().len() > 16 * 6);
    }
}

#[test]
fn gemma3_tiny_single_batch_and_prefix_reuse_match_transformers_and_peft() {
    let Some(fx) = tiny() else { return };
    let reqs = requests(&fx.expected);
    let single = ScoreOptions { max_batch: 1, want_hidden: true, ..Default::default() };
    let batched = ScoreOptions { max_batch: reqs.len(), want_hidden: true, ..Default::default() };
    for (variant, adapter) in [("base", None), ("adapter", Some(&fx.adapter))] {
        let one = fx.reranker.score_naive(&reqs, adapter, &single).unwrap();
        check(&format!("{variant} single"), &one, &fx.expected, variant);
        let all = fx.reranker.score_naive(&reqs, adapter, &batched).unwrap();
        check(&format!("{variant} padded batch"), &all, &fx.expected, variant);
        let got: Vec<f32> = all.iter().map(|s| s.score).collect();
        let want = f32s(&fx.expected["batch"][variant]["scores_mask_positions"]);
        assert!(max_diff(&got, &want) < SCORE_TOL, "{variant} batch scores differ by {}", max_diff(&got, &want));
        let fast = fx.reranker.score(&reqs, adapter, &batched).unwrap();
        check(&format!("{variant} fast"), &fast, &fx.expected, variant);
        let full = fx.reranker.score_naive(&reqs, adapter, &ScoreOptions { full_vocab: true, ..batched.clone() }).unwrap();
        check(&format!("{variant} full-vocab"), &full, &fx.expected, variant);
    }
}

#[test]
fn gemma3_tiny_prefix_reuse_is_exact_across_the_window() {
    // One query, candidates of different lengths: the shared prefix is longer than the window, so the
    // sliding layers of the candidates see only part of it.
    let Some(fx) = tiny() else { return };
    let query = "Which court decides appeals on contract disputes between two companies under the commercial code of the state?";
    let docs = ["short answer", "a much longer document that talks about appeals, courts, companies and the commercial code, with many words to exceed the window", "medium length document on courts"];
    let reqs: Vec<ScoreRequest> = docs.iter().map(|d| ScoreRequest { instruction: None, query: query.into(), document: (*d).into() }).collect();
    for adapter in [None, Some(&fx.adapter)] {
        let naive = fx.reranker.score_naive(&reqs, adapter, &ScoreOptions { max_batch: 1, ..Default::default() }).unwrap();
        let fast = fx.reranker.score(&reqs, adapter, &ScoreOptions::default()).unwrap();
        for (a, b) in naive.iter().zip(&fast) {
            assert!((a.yes_logit - b.yes_logit).abs() < LOGIT_TOL && (a.no_logit - b.no_logit).abs() < LOGIT_TOL, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn gemma3_tiny_truncation_matches_the_model_card_rule() {
    let Some(fx) = tiny() else { return };
    let case = &fx.expected["truncation_case"];
    let max_length = case["max_length"].as_u64().unwrap() as usize;
    let req = ScoreRequest { instruction: None, query: case["query"].as_str().unwrap().into(), document: case["document"].as_str().unwrap().into() };
    let template = PromptTemplate { max_length, truncation: Truncation::Body, ..PromptTemplate::for_model_dir(&fx.dir.join("model")).unwrap() };
    let card = Reranker::load(&fx.dir.join("model"), &LoadOptions { template: Some(template), ..Default::default() }).unwrap();
    let enc = card.prompt.encode_pair(None, &req.query, &req.document).unwrap();
    assert_eq!(enc.ids(), u32s(&case["input_ids"]));
    assert!(enc.truncated);
    for (variant, adapter) in [("base", None), ("adapter", Some(&fx.adapter))] {
        for scores in [card.score(std::slice::from_ref(&req), adapter, &ScoreOptions::default()).unwrap(), card.score_naive(std::slice::from_ref(&req), adapter, &ScoreOptions::default()).unwrap()] {
            let s = &scores[0];
            assert!(s.truncated);
            assert!((s.score - case[variant]["score"].as_f64().unwrap() as f32).abs() < SCORE_TOL, "{variant} {} vs {}", s.score, case[variant]["score"]);
            assert!((s.yes_logit - case[variant]["yes_logit"].as_f64().unwrap() as f32).abs() < LOGIT_TOL);
        }
    }
}

#[test]
fn gemma3_tiny_lora_gets_gradients_through_every_gemma_block() {
    let Some(fx) = tiny() else { return };
    let rng = std::cell::RefCell::new(r2r::util::seeded_rng(1, 0));
    let adapter = LoraAdapter::new_random(r2r::model::LoraConfig { r: 4, alpha: 8.0, ..Default::default() }, fx.reranker.config(), &candle_core::Device::Cpu, 3).unwrap();
    // B starts at zero (PEFT's init): move it so A gets a gradient too.
    for v in adapter.vars() {
        let bumped = (v.as_tensor() + 0.01).unwrap();
        v.set(&bumped).unwrap();
    }
    let enc = fx.reranker.prompt.encode_pair(None, "q about a court", "a document about a court case").unwrap();
    let batch = fx.reranker.encode_batch(&[enc.ids().as_slice()]).unwrap();
    let logits = fx.reranker.yes_no_logits_with(&batch, &AdapterRun::train(&adapter, &rng)).unwrap();
    let grads = logits.sum_all().unwrap().backward().unwrap();
    let with_grad = adapter.vars().iter().filter(|v| grads.get(v.as_tensor()).is_some_and(|g| g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0)).count();
    assert_eq!(with_grad, adapter.vars().len(), "every LoRA parameter needs a gradient");
}

// ---- the real Gemma 3 270M ----

fn gemma_270m() -> Option<(Reranker, Value)> {
    let dir = shared_fixture("gemma3-270m")?;
    let expected = read_json(&dir.join("expected.json"));
    let model = match r2r::model::store::installed_path("gemma-3-270m") {
        Some(p) => p,
        None if allow_skip("the Gemma 3 270M GGUF (run `r2r model fetch gemma-3-270m`)") => return None,
        None => unreachable!(),
    };
    let reranker = Reranker::load(&model, &LoadOptions::default()).unwrap();
    Some((reranker, expected))
}

#[test]
fn gemma3_270m_gguf_reproduces_transformers() {
    let Some((reranker, expected)) = gemma_270m() else { return };
    let t = &expected["tokenizer"];
    // Every tokenizer case, exactly.
    for case in t["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(reranker.prompt.encode(text).unwrap(), u32s(&case["ids_without_special"]), "tokenizer case {text:?}");
    }
    for (word, id) in t["single_token_ids"].as_object().unwrap() {
        assert_eq!(reranker.prompt.encode(word).unwrap(), vec![id.as_u64().unwrap() as u32], "{word:?}");
    }
    // The shipped prompt: " Yes" / " No" after "Answer:".
    assert_eq!((reranker.prompt.yes_id, reranker.prompt.no_id, reranker.prompt.pad_id), (8438, 2301, 0));
    let config = reranker.config();
    assert_eq!((config.num_layers, config.hidden_size, config.num_heads, config.num_kv_heads, config.head_dim, config.vocab_size), (18, 640, 4, 1, 256, 262144));
    assert_eq!(config.layer_kinds.iter().filter(|k| **k == r2r::model::LayerKind::Full).count(), 3);
    let tol = expected["suggested_tolerances"]["logit_abs"].as_f64().unwrap() as f32;
    let hidden_tol = expected["suggested_tolerances"]["hidden_abs"].as_f64().unwrap() as f32;
    let words: Vec<(String, u32)> = t["single_token_ids"].as_object().unwrap().iter().map(|(w, id)| (w.clone(), id.as_u64().unwrap() as u32)).collect();
    let ids: Vec<u32> = words.iter().map(|w| w.1).collect();
    let head = reranker.model.lm_head_rows(&ids).unwrap();
    for (i, pair) in expected["pairs"].as_array().unwrap().iter().enumerate() {
        let input_ids = u32s(&pair["input_ids"]);
        // The project's prompt builds the same ids as the reference's raw prompt.
        let enc = reranker.prompt.encode_pair(None, pair["query"].as_str().unwrap(), pair["document"].as_str().unwrap()).unwrap();
        assert_eq!(enc.ids(), input_ids, "pair {i}: prompt ids");
        let batch = reranker.encode_batch(&[input_ids.as_slice()]).unwrap();
        let hidden = reranker.final_hidden(&batch, None).unwrap();
        let h = hidden.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let d = max_diff(&h[..16], &f32s(&pair["final_hidden_first16"]));
        assert!(d < hidden_tol, "pair {i}: final hidden differs by {d}");
        let l2 = h.iter().map(|v| v * v).sum::<f32>().sqrt();
        let want_l2 = pair["final_hidden_l2"].as_f64().unwrap() as f32;
        assert!((l2 - want_l2).abs() < 1e-3 * want_l2.max(1.0), "pair {i}: |h| {l2} vs {want_l2}");
        let logits = hidden.matmul(&head.t().unwrap()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for ((word, _), got) in words.iter().zip(&logits) {
            let want = pair["last_logits"][word].as_f64().unwrap() as f32;
            assert!((got - want).abs() < tol, "pair {i}: logit of {word:?} {got} vs {want}");
        }
        // Scoring through the fast path (prefix reuse) gives the same yes/no logits.
        let fast = reranker.score(&[ScoreRequest { instruction: None, query: pair["query"].as_str().unwrap().into(), document: pair["document"].as_str().unwrap().into() }], None, &ScoreOptions::default()).unwrap();
        let want_yes = pair["last_logits"][" Yes"].as_f64().unwrap() as f32;
        assert!((fast[0].yes_logit - want_yes).abs() < tol, "pair {i}: fast-path yes {} vs {want_yes}", fast[0].yes_logit);
    }
}


#[test]
fn gemma3_tiny_resident_bytes_count_every_weight_once() {
    let Some(fx) = tiny() else { return };
    // f32 as loaded: 4 bytes per parameter of the checkpoint, the tied head counted once.
    let tensors = candle_core::safetensors::load(fx.dir.join("model/model.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert!(!tensors.contains_key("lm_head.weight") && fx.reranker.config().tie_word_embeddings);
    let parameters: usize = tensors.values().map(|t| t.elem_count()).sum();
    assert_eq!(fx.reranker.model.resident_bytes(), 4 * parameters);
    // bf16 mode adds the packed bf16 copies of the projections (2 bytes per weight, at least).
    let bf16 = Reranker::load(&fx.dir.join("model"), &LoadOptions { dtype: candle_core::DType::BF16, ..Default::default() }).unwrap();
    let projections: usize = tensors.iter().filter(|(name, _)| name.ends_with("_proj.weight")).map(|(_, t)| t.elem_count()).sum();
    let extra = bf16.model.resident_bytes() - 4 * parameters;
    assert!(extra >= 2 * projections && extra < 3 * projections, "bf16 packing adds {extra} bytes for {projections} projection weights");
}

// ---- bf16 mode on the CPU (projections through the bf16 kernel, vectorised gelu-tanh) ----

#[test]
fn gemma3_tiny_bf16_mode_scores_and_gradients_stay_close_to_f32() {
    let Some(fx) = tiny() else { return };
    let bf16 = Reranker::load(&fx.dir.join("model"), &LoadOptions { dtype: candle_core::DType::BF16, ..Default::default() }).unwrap();
    assert!(bf16.model.bf16_matmuls() && !fx.reranker.model.bf16_matmuls());
    let reqs = requests(&fx.expected);
    let opts = ScoreOptions { max_batch: reqs.len(), ..Default::default() };
    for (variant, adapter) in [("base", None), ("adapter", Some(&fx.adapter))] {
        let exact = fx.reranker.score(&reqs, adapter, &opts).unwrap();
        let fast = bf16.score(&reqs, adapter, &opts).unwrap();
        let logit_diff = exact.iter().zip(&fast).map(|(a, b)| (a.yes_logit - b.yes_logit).abs().max((a.no_logit - b.no_logit).abs())).fold(0f32, f32::max);
        // bf16 rounding must show, and stay at the bf16 level (8 bits of mantissa).
        assert!(logit_diff > 0.0 && logit_diff < 0.05, "{variant}: bf16 logits differ from f32 by {logit_diff}");
    }
    // LoRA gradients through the bf16 products and the fast gelu: same direction and size as f32's.
    let enc = fx.reranker.prompt.encode_pair(None, "q about a court", "a document about a court case").unwrap();
    let grads = |r: &Reranker| -> Vec<f32> {
        let adapter = LoraAdapter::new_random(r2r::model::LoraConfig { r: 4, alpha: 8.0, dropout: 0.0, ..Default::default() }, r.config(), &candle_core::Device::Cpu, 3).unwrap();
        for v in adapter.vars() {
            v.set(&(v.as_tensor() + 0.01).unwrap()).unwrap();
        }
        let batch = r.encode_batch(&[enc.ids().as_slice()]).unwrap();
        let logits = r.yes_no_logits_with(&batch, &AdapterRun::with(Some(&adapter))).unwrap();
        let g = logits.sum_all().unwrap().backward().unwrap();
        adapter.vars().iter().flat_map(|v| g.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    };
    let (exact, fast) = (grads(&fx.reranker), grads(&bf16));
    let dot: f64 = exact.iter().zip(&fast).map(|(a, b)| *a as f64 * *b as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let cosine = dot / (norm(&exact) * norm(&fast));
    let ratio = norm(&fast) / norm(&exact);
    assert!(cosine > 0.999 && (ratio - 1.0).abs() < 0.02, "bf16 gradients: cosine {cosine}, norm ratio {ratio}");
}

#[test]
fn gemma3_270m_bf16_mode_stays_close_to_transformers() {
    let Some(dir) = shared_fixture("gemma3-270m") else { return };
    let expected = read_json(&dir.join("expected.json"));
    let Some(model) = r2r::model::store::installed_path("gemma-3-270m") else {
        assert!(allow_skip("the Gemma 3 270M GGUF (run `r2r model fetch gemma-3-270m`)"));
        return;
    };
    let reranker = Reranker::load(&model, &LoadOptions { dtype: candle_core::DType::BF16, ..Default::default() }).unwrap();
    let mut worst = 0f32;
    for (i, pair) in expected["pairs"].as_array().unwrap().iter().enumerate() {
        let req = ScoreRequest { instruction: None, query: pair["query"].as_str().unwrap().into(), document: pair["document"].as_str().unwrap().into() };
        let got = reranker.score(&[req], None, &ScoreOptions::default()).unwrap().remove(0);
        let (yes, no) = (pair["last_logits"][" Yes"].as_f64().unwrap() as f32, pair["last_logits"][" No"].as_f64().unwrap() as f32);
        let d = (got.yes_logit - yes).abs().max((got.no_logit - no).abs());
        worst = worst.max(d);
        // The score is what ranking uses: the softmax of (yes, no), bf16 noise included.
        let want = 1.0 / (1.0 + (no - yes).exp());
        assert!((got.score - want).abs() < 0.03, "pair {i}: bf16 score {} vs transformers' {want}", got.score);
    }
    assert!(worst < 0.15, "bf16 yes/no logits are up to {worst} from transformers' f32 logits");
    eprintln!("bf16 mode: yes/no logits within {worst:.4} of transformers");
}
