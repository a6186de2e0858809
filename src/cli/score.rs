//! `r2r score`: scores (query, document) pairs from JSONL with a reranker and optional LoRA adapter,
//! printing one JSON line per pair (score, yes/no logits, optionally the final hidden state).

use crate::model::{select_device, Reranker, ScoreOptions, ScoreRequest};
use anyhow::{bail, Context, Result};
use candle_core::DType;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Options for loading a reranker, shared by `score` and `bench score`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model: a Hugging Face directory (config.json, model.safetensors[.index.json], tokenizer.json), a
    /// GGUF file, a backbone bundle, a model-store name (`gemma-3-270m`), or `auto` (the default backbone).
    #[arg(long)]
    pub model: PathBuf,
    /// PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Longest prompt in tokens; longer documents are cut (never the query or template).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Run on CUDA device 0 (needs a build with `--features cuda`).
    #[arg(long)]
    pub cuda: bool,
    /// Precision: f32; bf16 (CPU: projections in bf16 with f32 sums, 2× the f32 rate on AVX512-BF16
    /// CPUs; CUDA: bf16 weights); f16 (CUDA).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

impl ModelArgs {
    pub fn load(&self) -> Result<(Reranker, Option<crate::model::LoraAdapter>)> {
        let device = select_device(self.cuda)?;
        let dtype = match self.dtype.as_str() {
            "f32" => DType::F32,
            "bf16" => DType::BF16,
            "f16" => DType::F16,
            other => bail!("--dtype {other:?}: expected f32, bf16 or f16"),
        };
        if dtype == DType::F16 && device.is_cpu() {
            bail!("--dtype f16 needs --cuda; the CPU runs f32 or bf16");
        }
        let model = crate::model::default_backbone::resolve(&self.model);
        let reranker = Reranker::load_with_max_length(&model, device, dtype, self.max_length)?;
        let adapter = self.adapter.as_deref().map(|dir| reranker.load_adapter(dir)).transpose()?;
        Ok((reranker, adapter))
    }
}

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// JSONL with {"query", "document"[, "instruction"][, "id"]} per line.
    #[arg(long)]
    pub pairs: PathBuf,
    /// Also print each prompt's final hidden state (last token, after the final norm).
    #[arg(long)]
    pub hidden: bool,
    /// Most candidates per forward pass (padded batches).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Score whole prompts in input order without prefix reuse (the model card's way).
    #[arg(long)]
    pub naive: bool,
}

/// Reads scoring pairs; errors name the file, line and field.
pub fn read_pairs(path: &Path) -> Result<(Vec<ScoreRequest>, Vec<Option<serde_json::Value>>)> {
    // A leading byte-order mark is stripped (as every dataset loader does); only regular files are read.
    let text = crate::util::read_text_limited(path, crate::util::MAX_TEXT_FILE_BYTES)?;
    let (mut requests, mut ids) = (Vec::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), n + 1);
        let value: serde_json::Value = serde_json::from_str(line).with_context(|| format!("{}: invalid JSON", at()))?;
        let field = |name: &str, required: bool| -> Result<Option<String>> {
            match value.get(name) {
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                None | Some(serde_json::Value::Null) if !required => Ok(None),
                None => bail!("{}: field {name:?} is missing", at()),
                Some(_) => bail!("{}: field {name:?} must be a string", at()),
            }
        };
        requests.push(ScoreRequest { query: field("query", true)?.unwrap_or_default(), document: field("document", true)?.unwrap_or_default(), instruction: field("instruction", false)? });
        ids.push(value.get("id").cloned());
    }
    Ok((requests, ids))
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let (requests, ids) = read_pairs(&args.pairs)?;
    let (reranker, adapter) = args.model.load()?;
    let options = ScoreOptions { max_batch: args.batch.max(1), want_hidden: args.hidden, ..Default::default() };
    let scores = if args.naive { reranker.score_naive(&requests, adapter.as_ref(), &options)? } else { reranker.score(&requests, adapter.as_ref(), &options)? };
    let mut out = std::io::stdout().lock();
    for (score, id) in scores.iter().zip(ids) {
        let mut line = serde_json::to_value(score)?;
        if let Some(id) = id {
            line["id"] = id;
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_file_errors_name_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.jsonl");
        std::fs::write(&path, "{\"query\": \"q\", \"document\": \"d\", \"id\": 7}\n\n{\"query\": \"q\", \"instruction\": \"i\", \"document\": \"\"}\n").unwrap();
        let (reqs, ids) = read_pairs(&path).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1].instruction.as_deref(), Some("i"));
        assert_eq!(ids[0], Some(serde_json::json!(7)));
        std::fs::write(&path, "{\"query\": \"q\", \"document\": \"d\"}\n{\"query\": \"q\"}\n").unwrap();
        let err = format!("{:#}", read_pairs(&path).unwrap_err());
        assert!(err.contains("pairs.jsonl line 2") && err.contains("document"), "{err}");
        std::fs::write(&path, "{\"query\": 3, \"document\": \"d\"}\n").unwrap();
        let err = format!("{:#}", read_pairs(&path).unwrap_err());
        assert!(err.contains("line 1") && err.contains("must be a string"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_stripped_like_the_dataset_loaders_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.jsonl");
        std::fs::write(&path, "\u{feff}{\"query\": \"q\", \"document\": \"d\"}\n").unwrap();
        let (reqs, _) = read_pairs(&path).unwrap();
        assert_eq!((reqs[0].query.as_str(), reqs[0].document.as_str()), ("q", "d"));
    }
}
