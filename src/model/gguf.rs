//! GGUF models (llama.cpp's single-file format): the `gemma3.*` metadata as a `ModelConfig`, the tensors
//! dequantised (candle-core reads and dequantises every GGUF block type) under Hugging Face names, and
//! the tokenizer rebuilt from the `tokenizer.ggml.*` keys the way transformers' GGUF converter builds
//! Gemma's: a byte-fallback BPE whose merges come from the vocabulary order, spaces normalised to `▁`,
//! control tokens as special added tokens.

use super::checkpoint::Weights;
use super::config::ModelConfig;
use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_CONTROL: i64 = 3;

/// The parsed header of a GGUF file.
pub struct GgufFile {
    content: Content,
    path: std::path::PathBuf,
}

fn value_int(v: &Value) -> Option<i64> {
    match v {
        Value::U8(x) => Some(*x as i64),
        Value::I8(x) => Some(*x as i64),
        Value::U16(x) => Some(*x as i64),
        Value::I16(x) => Some(*x as i64),
        Value::U32(x) => Some(*x as i64),
        Value::I32(x) => Some(*x as i64),
        Value::U64(x) => i64::try_from(*x).ok(),
        Value::I64(x) => Some(*x),
        _ => None,
    }
}

fn value_float(v: &Value) -> Option<f64> {
    match v {
        Value::F32(x) => Some(*x as f64),
        Value::F64(x) => Some(*x),
        other => value_int(other).map(|i| i as f64),
    }
}

impl GgufFile {
    /// Reads the header (metadata and tensor index) of `path`; errors name the file.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).with_context(|| format!("cannot open GGUF file {}", path.display()))?;
        let content = Content::read(&mut file).with_context(|| format!("{} is not a valid GGUF file (truncated or corrupted?)", path.display()))?;
        Ok(Self { content, path: path.to_path_buf() })
    }

    fn get(&self, key: &str) -> Result<&Value> {
        self.content.metadata.get(key).with_context(|| format!("GGUF {}: metadata key {key} is missing", self.path.display()))
    }

    fn int(&self, key: &str) -> Result<i64> {
        value_int(self.get(key)?).with_context(|| format!("GGUF {}: metadata key {key} is not an integer", self.path.display()))
    }

    fn usize(&self, key: &str) -> Result<usize> {
        let v = self.int(key)?;
        usize::try_from(v).with_context(|| format!("GGUF {}: metadata key {key} is negative ({v})", self.path.display()))
    }

    fn float(&self, key: &str) -> Result<f64> {
        value_float(self.get(key)?).with_context(|| format!("GGUF {}: metadata key {key} is not a number", self.path.display()))
    }

    fn string(&self, key: &str) -> Result<String> {
        Ok(self.get(key)?.to_string().with_context(|| format!("GGUF {}: metadata key {key} is not a string", self.path.display()))?.clone())
    }

    fn array(&self, key: &str) -> Result<&Vec<Value>> {
        self.get(key)?.to_vec().with_context(|| format!("GGUF {}: metadata key {key} is not an array", self.path.display()))
    }

    /// `general.architecture`.
    pub fn architecture(&self) -> Result<String> {
        self.string("general.architecture")
    }

    /// The model configuration as a Hugging Face `config.json` would state it.
    pub fn config(&self) -> Result<ModelConfig> {
        let arch = self.architecture()?;
        if arch != "gemma3" {
            bail!("GGUF {}: architecture {arch:?} is not supported (supported: gemma3)", self.path.display());
        }
        let key = |k: &str| format!("{arch}.{k}");
        let tokens = self.array("tokenizer.ggml.tokens")?.len();
        let hidden = self.usize(&key("embedding_length"))?;
        let heads = self.usize(&key("attention.head_count"))?;
        let head_dim = match self.usize(&key("attention.key_length")) {
            Ok(d) => d,
            Err(_) if heads > 0 => hidden / heads,
            Err(e) => return Err(e),
        };
        let value_dim = self.usize(&key("attention.value_length")).unwrap_or(head_dim);
        if value_dim != head_dim {
            bail!("GGUF {}: key_length {head_dim} ≠ value_length {value_dim} is not supported", self.path.display());
        }
        let embed_rows = self.content.tensor_infos.get("token_embd.weight").map(|t| t.shape.dims().first().copied().unwrap_or(0));
        let vocab_size = embed_rows.unwrap_or(tokens);
        // The sliding/full pattern (5 : 1), the local RoPE θ and query_pre_attn_scalar are not in the
        // keys; these are the values transformers' Gemma 3 config supplies.
        let config = serde_json::json!({
            "model_type": "gemma3_text",
            "vocab_size": vocab_size,
            "hidden_size": hidden,
            "intermediate_size": self.usize(&key("feed_forward_length"))?,
            "num_hidden_layers": self.usize(&key("block_count"))?,
            "num_attention_heads": heads,
            "num_key_value_heads": self.usize(&key("attention.head_count_kv")).unwrap_or(heads),
            "head_dim": head_dim,
            "rms_norm_eps": self.float(&key("attention.layer_norm_rms_epsilon"))?,
            "rope_theta": self.float(&key("rope.freq_base")).unwrap_or(1_000_000.0),
            "rope_local_base_freq": 10_000.0,
            "sliding_window": self.usize(&key("attention.sliding_window"))?,
            "_sliding_window_pattern": 6,
            "query_pre_attn_scalar": head_dim,
            "max_position_embeddings": self.usize(&key("context_length"))?,
            "tie_word_embeddings": !self.content.tensor_infos.contains_key("output.weight"),
            "hidden_activation": "gelu_pytorch_tanh",
        });
        ModelConfig::from_json(&config.to_string()).with_context(|| format!("GGUF {}: unusable model metadata", self.path.display()))
    }

    /// Every tensor dequantised to `dtype` on `device`, under Hugging Face names. Norm weights keep
    /// llama.cpp's convention for Gemma (the converter stores 1 + w).
    pub fn weights(&self, dtype: DType, device: &Device) -> Result<Weights> {
        let mut file = std::fs::File::open(&self.path).with_context(|| format!("cannot open GGUF file {}", self.path.display()))?;
        let mut names: Vec<&String> = self.content.tensor_infos.keys().collect();
        names.sort();
        let mut map = BTreeMap::new();
        for name in names {
            let Some(hf) = hf_tensor_name(name) else {
                bail!("GGUF {}: unexpected tensor {name}", self.path.display());
            };
            let tensor = self
                .content
                .tensor(&mut file, name, &Device::Cpu)
                .and_then(|q| q.dequantize(&Device::Cpu))
                .and_then(|t| t.to_dtype(dtype))
                .and_then(|t| t.to_device(device))
                .with_context(|| format!("GGUF {}: cannot read tensor {name}", self.path.display()))?;
            // x − x is NaN exactly where x is NaN or infinite: one reduction per tensor.
            #[allow(clippy::eq_op)]
            let check = (&tensor - &tensor).and_then(|d| d.to_dtype(DType::F32)).and_then(|d| d.sum_all()).and_then(|d| d.to_scalar::<f32>());
            if !check.is_ok_and(f32::is_finite) {
                bail!("GGUF {}: tensor {name} holds a non-finite value (NaN or infinity); refusing to use it", self.path.display());
            }
            map.insert(hf, tensor);
        }
        Ok(Weights::from_map(map, &self.path).with_norms_including_one())
    }

    /// The tokenizer described by the `tokenizer.ggml.*` keys.
    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer> {
        let model = self.string("tokenizer.ggml.model")?;
        let tokens: Vec<String> = self
            .array("tokenizer.ggml.tokens")?
            .iter()
            .map(|v| v.to_string().cloned().with_context(|| format!("GGUF {}: tokenizer.ggml.tokens holds a non-string", self.path.display())))
            .collect::<Result<_>>()?;
        let types: Vec<i64> = match self.array("tokenizer.ggml.token_type") {
            Ok(values) => values.iter().map(|v| value_int(v).unwrap_or(1)).collect(),
            Err(_) => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            bail!("GGUF {}: {} tokens but {} token types", self.path.display(), tokens.len(), types.len());
        }
        let gemma_like = tokens.iter().any(|t| !t.is_empty() && t.contains(' ') && t.trim().is_empty());
        if model != "llama" || !gemma_like {
            bail!("GGUF {}: tokenizer {model:?} is not supported (supported: Gemma's sentencepiece BPE)", self.path.display());
        }
        let unk = self.usize("tokenizer.ggml.unknown_token_id").ok().and_then(|i| tokens.get(i).cloned());
        gemma_tokenizer(&tokens, &types, unk).with_context(|| format!("GGUF {}: cannot build the tokenizer", self.path.display()))
    }

    /// `tokenizer.ggml.add_bos_token` (true when absent) and the BOS token's text.
    pub fn bos_token(&self) -> Option<String> {
        let add = self.get("tokenizer.ggml.add_bos_token").ok().and_then(|v| v.to_bool().ok()).unwrap_or(true);
        let id = self.usize("tokenizer.ggml.bos_token_id").ok()?;
        let tokens = self.array("tokenizer.ggml.tokens").ok()?;
        add.then(|| tokens.get(id).and_then(|v| v.to_string().ok().cloned())).flatten()
    }
}

/// llama.cpp's tensor names → Hugging Face's (Gemma 3).
fn hf_tensor_name(name: &str) -> Option<String> {
    match name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let module = rest.strip_suffix(".weight")?;
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "post_attention_norm" => "post_attention_layernorm",
        "ffn_norm" => "pre_feedforward_layernorm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "post_ffw_norm" => "post_feedforward_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.weight"))
}

/// Gemma's tokenizer from its vocabulary, as transformers' GGUF converter makes it: runs of spaces
/// respelled with `▁` (the form the normaliser produces), merges derived from every split of every
/// token into two vocabulary pieces and ranked by the merged token's position, a BPE with byte
/// fallback, the normaliser " " → "▁", and control tokens (type 3) as special added tokens.
pub fn gemma_tokenizer(tokens: &[String], types: &[i64], unk: Option<String>) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::bpe::{Vocab, BPE};
    let spelled: Vec<String> = tokens
        .iter()
        .map(|t| if !t.is_empty() && t.contains(' ') && t.trim().is_empty() { "▁".repeat(t.chars().count()) } else { t.clone() })
        .collect();
    // token → (last id, as a Python dict built in order keeps), iterated in first-insertion order.
    let mut last_id: HashMap<&str, usize> = HashMap::with_capacity(spelled.len());
    let mut order: Vec<&str> = Vec::with_capacity(spelled.len());
    for (i, t) in spelled.iter().enumerate() {
        if last_id.insert(t.as_str(), i).is_none() {
            order.push(t.as_str());
        }
    }
    // Scores of Gemma's vocabulary are −id (merge ranks): the split order within one token uses the
    // pieces' ids, higher score (lower id) first.
    let mut merges: Vec<(usize, &str, &str, usize, usize)> = Vec::new();
    for token in &order {
        let rank = last_id[token];
        let mut local: Vec<(usize, &str, &str, usize, usize)> = Vec::new();
        for (index, _) in token.char_indices().skip(1) {
            let (left, right) = token.split_at(index);
            if let (Some(&l), Some(&r)) = (last_id.get(left), last_id.get(right)) {
                local.push((rank, left, right, l, r));
            }
        }
        local.sort_by(|a, b| (a.3, a.4).cmp(&(b.3, b.4)));
        merges.extend(local);
    }
    merges.sort_by_key(|m| m.0);
    let mut vocab = Vocab::new();
    for (i, t) in spelled.iter().enumerate() {
        vocab.insert(t.clone(), i as u32);
    }
    let merges: Vec<(String, String)> = merges.into_iter().map(|(_, l, r, _, _)| (l.to_string(), r.to_string())).collect();
    let mut builder = BPE::builder().vocab_and_merges(vocab, merges).fuse_unk(true).byte_fallback(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    let bpe = builder.build().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tokenizer = tokenizers::Tokenizer::new(bpe);
    tokenizer.with_normalizer(Some(tokenizers::normalizers::Replace::new(" ", "▁").map_err(|e| anyhow::anyhow!("{e}"))?)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let decoder = tokenizers::decoders::sequence::Sequence::new(vec![
        tokenizers::normalizers::Replace::new("▁", " ").map_err(|e| anyhow::anyhow!("{e}"))?.into(),
        tokenizers::decoders::byte_fallback::ByteFallback::default().into(),
        tokenizers::decoders::fuse::Fuse::default().into(),
    ]);
    tokenizer.with_decoder(Some(decoder));
    let special: Vec<tokenizers::AddedToken> = tokens
        .iter()
        .zip(types)
        .filter(|(_, &ty)| ty == TOKEN_CONTROL)
        .map(|(t, _)| tokenizers::AddedToken::from(t.clone(), true).normalized(false))
        .collect();
    tokenizer.add_special_tokens(special).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(tokenizer)
}

/// Dequantised tensors of a GGUF file by llama.cpp name (for tests and inspection).
pub fn read_tensor(path: &Path, name: &str) -> Result<Tensor> {
    let file = GgufFile::open(path)?;
    let mut reader = std::fs::File::open(path)?;
    Ok(file.content.tensor(&mut reader, name, &Device::Cpu)?.dequantize(&Device::Cpu)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_names_map_to_hugging_face() {
        assert_eq!(hf_tensor_name("blk.17.ffn_norm.weight").unwrap(), "model.layers.17.pre_feedforward_layernorm.weight");
        assert_eq!(hf_tensor_name("blk.0.attn_output.weight").unwrap(), "model.layers.0.self_attn.o_proj.weight");
        assert_eq!(hf_tensor_name("token_embd.weight").unwrap(), "model.embed_tokens.weight");
        assert!(hf_tensor_name("blk.x.attn_q.weight").is_none());
        assert!(hf_tensor_name("rope_freqs.weight").is_none());
    }

    #[test]
    fn tiny_vocabulary_merges_by_position_and_falls_back_to_bytes() {
        let mut tokens: Vec<String> = ["<pad>", "<eos>", "<bos>", "<unk>", "  ", "▁", "a", "b", "ab", "▁ab", "\n"].iter().map(|s| s.to_string()).collect();
        tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
        let mut types = vec![3, 3, 3, 3, 4, 1, 1, 1, 1, 1, 4];
        types.extend(std::iter::repeat_n(6, 256));
        let tok = gemma_tokenizer(&tokens, &types, Some("<unk>".into())).unwrap();
        let ids = |s: &str| tok.encode(s, false).unwrap().get_ids().to_vec();
        assert_eq!(ids("ab ab"), vec![8, 9]);
        assert_eq!(ids("  ab"), vec![4, 8]); // the run of spaces merges first (lower id)
        assert_eq!(ids("<bos>a\n"), vec![2, 6, 10]);
        // "é" is not in the vocabulary: its two UTF-8 bytes.
        assert_eq!(ids("é"), vec![11 + 0xC3, 11 + 0xA9]);
    }
}
