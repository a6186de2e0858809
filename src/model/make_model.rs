//! Seeded random checkpoints with the shape of a published model, in Hugging Face format (config.json,
//! model.safetensors, a small byte-level BPE tokenizer.json), so compute-bound speed can be measured
//! without downloads. The tokenizer has one token per benchmark word, so N words make N document tokens.

use anyhow::{bail, Context, Result};
use rand::Rng;
use serde_json::json;
use std::path::Path;

/// Words of the benchmark documents (the same list as shared/tools/torch_score_bench.py).
pub const BENCH_WORDS: &[&str] = &[
    "contract", "statute", "court", "plaintiff", "liability", "damages", "patient", "dosage", "symptom", "treatment", "diagnosis", "revenue",
    "earnings", "dividend", "ticker", "interest", "rate", "bond", "equity", "the", "a", "of", "to", "and", "in", "for", "with", "on", "is", "was", "by",
];

/// Words of the Qwen3-Reranker template and default instruction, so prompts stay short.
const TEMPLATE_WORDS: &[&str] = &[
    "system", "Judge", "whether", "Document", "meets", "requirements", "based", "Query", "Instruct", "provided", "Note", "that", "answer", "can",
    "only", "be", "user", "assistant", "Given", "web", "search", "query", "retrieve", "relevant", "passages", "yes", "no",
];

const SPECIAL_TOKENS: [(&str, bool); 5] = [("<|endoftext|>", true), ("<|im_start|>", true), ("<|im_end|>", true), ("<think>", false), ("</think>", false)];

/// The config.json of a named shape with `layers` decoder layers.
pub fn config_like(like: &str, layers: Option<usize>) -> Result<serde_json::Value> {
    let (hidden, heads, kv_heads, head_dim, intermediate, vocab, tied, default_layers, theta) = match like {
        "qwen3-0.6b" => (1024, 16, 8, 128, 3072, 151_936, true, 28, 1_000_000.0),
        "qwen3-tiny" => (64, 4, 2, 16, 128, 512, true, 2, 10_000.0),
        other => bail!("unknown model shape {other:?} (known: qwen3-0.6b, qwen3-tiny)"),
    };
    let layers = layers.unwrap_or(default_layers);
    if layers == 0 {
        bail!("--layers must be at least 1");
    }
    Ok(json!({
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": vocab_tokens().len(), "eos_token_id": vocab_tokens().len() + 2, "pad_token_id": vocab_tokens().len(),
        "head_dim": head_dim, "hidden_act": "silu", "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": intermediate,
        "max_position_embeddings": 40960, "max_window_layers": layers, "num_attention_heads": heads, "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads, "rms_norm_eps": 1e-6, "rope_scaling": null, "rope_theta": theta, "sliding_window": null,
        "tie_word_embeddings": tied, "torch_dtype": "float32", "use_cache": true, "use_sliding_window": false, "vocab_size": vocab,
    }))
}

/// GPT-2's byte → printable character map used by byte-level BPE.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).chain(0xA1..=0xAC).chain(0xAE..=0xFF).collect();
    let mut chars: Vec<u32> = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    let mut map = vec![' '; 256];
    for (b, c) in printable.iter().zip(chars) {
        map[*b as usize] = char::from_u32(c).expect("valid char");
    }
    map
}

/// Base vocabulary: 256 byte characters, then each word with and without a leading space ("Ġ").
fn vocab_tokens() -> Vec<String> {
    let mut tokens: Vec<String> = byte_chars().into_iter().map(String::from).collect();
    for word in BENCH_WORDS.iter().chain(TEMPLATE_WORDS) {
        for token in [word.to_string(), format!("Ġ{word}")] {
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
    }
    tokens
}

/// A byte-level BPE tokenizer.json like Qwen's (NFC, Qwen split regex, ByteLevel) whose vocabulary holds
/// whole words (`ignore_merges`: a pre-token found in the vocabulary is one token; others fall back to bytes).
pub fn tokenizer_json() -> serde_json::Value {
    let tokens = vocab_tokens();
    let vocab: serde_json::Map<String, serde_json::Value> = tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    let added: Vec<serde_json::Value> = SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(i, (content, special))| json!({"id": tokens.len() + i, "content": content, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": special}))
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false});
    json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added, "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"}, "behavior": "Isolated", "invert": false},
            byte_level.clone()]},
        "post_processor": byte_level.clone(), "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": true, "vocab": vocab, "merges": []},
    })
}

/// Writes a seeded random checkpoint of shape `like` into `out` (weights ~ U(±0.02·√3), norms 1).
pub fn write_random_model(out: &Path, like: &str, layers: Option<usize>, seed: u64) -> Result<()> {
    let config = config_like(like, layers)?;
    let c = super::config::ModelConfig::from_json(&config.to_string())?;
    let mut rng = crate::util::seeded_rng(seed, crate::util::stable_hash("make-model"));
    let bound = 0.02f32 * 3f32.sqrt();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut random = |name: String, shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        let bytes: Vec<u8> = (0..n).flat_map(|_| rng.random_range(-bound..bound).to_le_bytes()).collect();
        tensors.push((name, shape, bytes));
    };
    random("model.embed_tokens.weight".into(), vec![c.vocab_size, c.hidden_size]);
    for i in 0..c.num_layers {
        for proj in super::transformer::Proj::ALL {
            let (fan_in, fan_out) = c.proj_shape(proj);
            random(format!("{}.weight", proj.path(i)), vec![fan_out, fan_in]);
        }
    }
    if !c.tie_word_embeddings {
        random("lm_head.weight".into(), vec![c.vocab_size, c.hidden_size]);
    }
    let ones = |n: usize| (0..n).flat_map(|_| 1f32.to_le_bytes()).collect::<Vec<u8>>();
    for i in 0..c.num_layers {
        for norm in ["input_layernorm", "post_attention_layernorm"] {
            tensors.push((format!("model.layers.{i}.{norm}.weight"), vec![c.hidden_size], ones(c.hidden_size)));
        }
        for norm in ["q_norm", "k_norm"] {
            tensors.push((format!("model.layers.{i}.self_attn.{norm}.weight"), vec![c.head_dim], ones(c.head_dim)));
        }
    }
    tensors.push(("model.norm.weight".into(), vec![c.hidden_size], ones(c.hidden_size)));
    let views = tensors
        .iter()
        .map(|(n, s, b)| Ok((n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>>>()?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let data = safetensors::serialize(views, Some(meta)).context("serialising random weights")?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    crate::util::atomic_write(&out.join("model.safetensors"), &data)?;
    crate::util::atomic_write_json(&out.join("config.json"), &config)?;
    crate::util::atomic_write_json(&out.join("tokenizer.json"), &tokenizer_json())?;
    crate::util::atomic_write_json(&out.join("tokenizer_config.json"), &json!({"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<|endoftext|>", "eos_token": "<|im_end|>"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_has_one_token_per_word_and_yes_no() {
        let tok = tokenizers::Tokenizer::from_bytes(tokenizer_json().to_string().as_bytes()).unwrap();
        let text = BENCH_WORDS.iter().map(|w| format!(" {w}")).collect::<String>();
        assert_eq!(tok.encode(text.as_str(), false).unwrap().get_ids().len(), BENCH_WORDS.len());
        assert!(tok.token_to_id("yes").is_some() && tok.token_to_id("no").is_some());
        let enc = tok.encode("<|im_start|>system\nxyz ü<|im_end|>", false).unwrap();
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), "<|im_start|>system\nxyz ü<|im_end|>");
    }
}
