//! The Qwen2 and Llama variants (no q/k norm; Qwen2's q/k/v biases; Llama-3 RoPE scaling; untied head)
//! against candle-transformers' own qwen2 and llama models on seeded random checkpoints.

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{llama, qwen2};
use r2r::model::make_model::tokenizer_json;
use r2r::model::{LoadOptions, Reranker, ScoreOptions, ScoreRequest};
use rand::Rng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const HEAD_DIM: usize = 16;
const INTER: usize = 96;
const VOCAB: usize = 512;
const LAYERS: usize = 2;

/// Writes a random checkpoint for `config`; biases on q/k/v when `qkv_bias`.
fn write_checkpoint(dir: &Path, config: serde_json::Value, qkv_bias: bool, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = r2r::util::seeded_rng(seed, 0);
    let mut tensors = BTreeMap::new();
    let mut add = |name: String, shape: Vec<usize>, lo: f32, hi: f32| {
        let n = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
        tensors.insert(name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap());
    };
    add("model.embed_tokens.weight".into(), vec![VOCAB, HIDDEN], -1.0, 1.0);
    add("lm_head.weight".into(), vec![VOCAB, HIDDEN], -0.3, 0.3);
    add("model.norm.weight".into(), vec![HIDDEN], 0.5, 1.5);
    for i in 0..LAYERS {
        let p = format!("model.layers.{i}");
        for (name, out, inp) in [("self_attn.q_proj", HEADS * HEAD_DIM, HIDDEN), ("self_attn.k_proj", KV_HEADS * HEAD_DIM, HIDDEN), ("self_attn.v_proj", KV_HEADS * HEAD_DIM, HIDDEN), ("self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM), ("mlp.gate_proj", INTER, HIDDEN), ("mlp.up_proj", INTER, HIDDEN), ("mlp.down_proj", HIDDEN, INTER)] {
            add(format!("{p}.{name}.weight"), vec![out, inp], -0.25, 0.25);
            if qkv_bias && !name.contains("o_proj") && name.starts_with("self_attn") {
                add(format!("{p}.{name}.bias"), vec![out], -0.5, 0.5);
            }
        }
        add(format!("{p}.input_layernorm.weight"), vec![HIDDEN], 0.5, 1.5);
        add(format!("{p}.post_attention_layernorm.weight"), vec![HIDDEN], 0.5, 1.5);
    }
    std::fs::create_dir_all(dir).unwrap();
    r2r::model::checkpoint::write_safetensors(&dir.join("model.safetensors"), &tensors, None).unwrap();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json().to_string()).unwrap();
    tensors.into_iter().collect()
}

fn base_config(model_type: &str) -> serde_json::Value {
    serde_json::json!({"model_type": model_type, "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": INTER,
        "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "max_position_embeddings": 512,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": false, "hidden_act": "silu"})
}

fn prompts(r: &Reranker) -> Vec<Vec<u32>> {
    ["the court of the statute", "a patient with a symptom and a diagnosis for the treatment"]
        .iter()
        .map(|d| r.prompt.encode_pair(None, "contract damages for the plaintiff", d).unwrap().ids())
        .collect()
}

fn compare(r: &Reranker, ids: &[u32], theirs: &[f32]) {
    let ours = r.yes_no_logits(&r.encode_batch(&[ids]).unwrap(), None).unwrap().to_vec2::<f32>().unwrap();
    let (yes, no) = (r.prompt.yes_id as usize, r.prompt.no_id as usize);
    assert!((ours[0][0] - theirs[yes]).abs() < 1e-4 && (ours[0][1] - theirs[no]).abs() < 1e-4, "ours {:?} theirs {} {}", ours[0], theirs[yes], theirs[no]);
    assert!((theirs[yes] - theirs[no]).abs() > 1e-3, "degenerate logits");
}

fn fast_equals_naive(r: &Reranker) {
    let reqs: Vec<ScoreRequest> = ["the bond", "", "equity and the dividend of the revenue"].iter().map(|d| ScoreRequest { instruction: None, query: "rate".into(), document: d.to_string() }).collect();
    let fast = r.score(&reqs, None, &ScoreOptions::default()).unwrap();
    let naive = r.score_naive(&reqs, None, &ScoreOptions::default()).unwrap();
    for (a, b) in fast.iter().zip(&naive) {
        assert!((a.score - b.score).abs() < 1e-5, "{a:?} {b:?}");
    }
}

#[test]
fn qwen2_with_qkv_biases_matches_candle_transformers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = base_config("qwen2");
    config["sliding_window"] = 4096.into();
    config["max_window_layers"] = LAYERS.into();
    config["use_sliding_window"] = false.into();
    let tensors = write_checkpoint(tmp.path(), config.clone(), true, 1);
    let r = Reranker::load(tmp.path(), &LoadOptions::default()).unwrap();
    assert!(r.config().qkv_bias && !r.config().qk_norm);
    let cfg: qwen2::Config = serde_json::from_value(config).unwrap();
    for ids in prompts(&r) {
        let vb = candle_nn::VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
        let mut model = qwen2::ModelForCausalLM::new(&cfg, vb).unwrap();
        let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let theirs = model.forward(&input, 0).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        compare(&r, &ids, &theirs);
    }
    fast_equals_naive(&r);
}

#[test]
fn llama_with_and_without_llama3_rope_scaling_matches_candle_transformers() {
    for scaled in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = base_config("llama");
        if scaled {
            config["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64});
        }
        let tensors = write_checkpoint(tmp.path(), config.clone(), false, 2);
        let r = Reranker::load(tmp.path(), &LoadOptions::default()).unwrap();
        assert_eq!(r.config().rope_scaling.is_some(), scaled);
        let cfg = serde_json::from_value::<llama::LlamaConfig>(config).unwrap().into_config(false);
        for ids in prompts(&r) {
            let vb = candle_nn::VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
            let model = llama::Llama::load(vb, &cfg).unwrap();
            let mut cache = llama::Cache::new(false, DType::F32, &cfg, &Device::Cpu).unwrap();
            let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let theirs = model.forward(&input, 0, &mut cache).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            compare(&r, &ids, &theirs);
        }
        fast_equals_naive(&r);
    }
}
