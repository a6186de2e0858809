//! Training the backbone's byte-level BPE tokenizer with the `tokenizers` crate, shaped like Qwen3's:
//! NFC normaliser, the Qwen split regex then ByteLevel pre-tokenizer, ByteLevel decoder; special tokens
//! `<|endoftext|>` (padding), `<|im_start|>`, `<|im_end|>`; added tokens `<think>`, `</think>`; and the
//! reranker's answer words "yes" and "no" guaranteed to be single tokens (lowest-priority merges are
//! appended when training did not produce them).

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokenizers::models::bpe::BpeTrainer;
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Model, Tokenizer};

/// Special tokens (matched before pre-tokenisation, skipped when decoding).
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
/// Added, non-special tokens (Qwen3's thinking markers).
pub const ADDED_TOKENS: [&str; 2] = ["<think>", "</think>"];
/// Words that must be single tokens (the reranker reads their logits).
pub const SINGLE_TOKEN_WORDS: [&str; 2] = ["yes", "no"];

/// Qwen2/Qwen3's pre-tokenisation regex.
pub const QWEN_SPLIT_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// An untrained tokenizer with Qwen's normaliser, pre-tokenizer, post-processor and decoder.
fn empty_qwen_style() -> Result<Tokenizer> {
    let spec = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN_SPLIT_REGEX}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": {}, "merges": []},
    });
    spec.to_string().parse::<Tokenizer>().map_err(|e| anyhow!("cannot build the tokenizer skeleton: {e}"))
}

/// Trains a byte-level BPE of about `vocab_size` entries (special and added tokens included) on `texts`.
/// Deterministic: the same texts give the same tokenizer.
pub fn train_tokenizer<I, S>(texts: I, vocab_size: usize) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let reserved = SPECIAL_TOKENS.len() + ADDED_TOKENS.len() + 4; // room for yes/no repair merges
    if vocab_size < 256 + reserved + 1 {
        bail!("vocab size {vocab_size} is too small for a byte-level BPE (at least {})", 256 + reserved + 1);
    }
    let mut tokenizer = empty_qwen_style()?;
    let specials: Vec<AddedToken> = SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect();
    let trainer = BpeTrainer::builder()
        .vocab_size(vocab_size - reserved + SPECIAL_TOKENS.len())
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut trainer = TrainerWrapper::BpeTrainer(trainer);
    tokenizer.train(&mut trainer, texts).map_err(|e| anyhow!("tokenizer training failed: {e}"))?;
    tokenizer.add_tokens(ADDED_TOKENS.iter().map(|t| AddedToken::from(*t, false)).collect::<Vec<_>>()).map_err(|e| anyhow!("cannot add tokens: {e}"))?;
    let mut spec: Value = serde_json::from_str(&tokenizer.to_string(false).map_err(|e| anyhow!("{e}"))?)?;
    for word in SINGLE_TOKEN_WORDS {
        let pieces: Vec<String> = tokenizer.get_model().tokenize(word).map_err(|e| anyhow!("{e}"))?.into_iter().map(|t| t.value).collect();
        append_merges(&mut spec, &pieces)?;
    }
    let tokenizer: Tokenizer = spec.to_string().parse().map_err(|e| anyhow!("trained tokenizer does not reload: {e}"))?;
    for word in SINGLE_TOKEN_WORDS {
        let ids = tokenizer.encode(word, false).map_err(|e| anyhow!("{e}"))?;
        if ids.get_ids().len() != 1 || tokenizer.token_to_id(word).is_none() {
            bail!("internal error: {word:?} is not a single token after training");
        }
    }
    Ok(tokenizer)
}

/// Makes the concatenation of `pieces` one token: appends merges (lowest priority) that join the pieces
/// left to right, adding each new token to the vocabulary and shifting added tokens' ids up.
fn append_merges(spec: &mut Value, pieces: &[String]) -> Result<()> {
    let mut current = pieces.first().context("cannot make an empty word a token")?.clone();
    for piece in &pieces[1..] {
        let joined = format!("{current}{piece}");
        let model = spec["model"].as_object_mut().context("tokenizer has no model")?;
        let vocab = model["vocab"].as_object_mut().context("tokenizer model has no vocab")?;
        if !vocab.contains_key(&joined) {
            let id = vocab.len();
            vocab.insert(joined.clone(), json!(id));
            let merges = model["merges"].as_array_mut().context("tokenizer model has no merges")?;
            merges.push(json!([current, piece]));
            // Added tokens live after the model vocabulary: move any at or beyond the new id up by one.
            for added in spec["added_tokens"].as_array_mut().context("tokenizer has no added_tokens")? {
                let added_id = added["id"].as_u64().context("added token without id")? as usize;
                if added_id >= id {
                    added["id"] = json!(added_id + 1);
                }
            }
        }
        current = joined;
    }
    Ok(())
}

/// The tokenizer_config.json written next to tokenizer.json (what transformers reads).
pub fn tokenizer_config() -> Value {
    json!({
        "tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": false, "add_prefix_space": false,
        "bos_token": null, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "clean_up_tokenization_spaces": false,
        "model_max_length": 8192, "padding_side": "left", "errors": "replace",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_make_a_word_one_token() {
        let corpus = ["the cat sat on the mat", "a dog and a cat", "nothing more"];
        let tok = train_tokenizer(corpus.iter().cycle().take(30), 300).unwrap();
        for word in ["yes", "no"] {
            assert_eq!(tok.encode(word, false).unwrap().get_ids().len(), 1, "{word}");
        }
        let enc = tok.encode("<|im_start|>user\nthe cat<|im_end|><think>", false).unwrap();
        assert_eq!(tok.decode(enc.get_ids(), false).unwrap(), "<|im_start|>user\nthe cat<|im_end|><think>");
        assert_eq!(enc.get_ids()[0], tok.token_to_id("<|im_start|>").unwrap());
    }
}
