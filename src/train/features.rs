//! Routing features: the frozen backbone's final-token hidden state of each query's query-only
//! prompt (template prefix + instruction + query up to `<Document>:`), computed in length-sorted
//! batches and cached per split as safetensors keyed by the backbone fingerprint and query ids.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

use super::jobs::JobContext;
use crate::data::QueryGroup;
use crate::model::scorer::length_batches;
use crate::model::{Reranker, ScoreOptions};
use crate::util::{file_fingerprint, sha256_hex};

/// SHA-256 over the files that define a backbone's behaviour (config, tokenizer, prompt, weights).
pub fn backbone_fingerprint(model_dir: &Path) -> Result<String> {
    let files = crate::model::checkpoint::locate(model_dir)?;
    let mut paths = vec![files.config.clone(), files.tokenizer.clone()];
    let prompt = files.dir.join(crate::model::prompt::PROMPT_FILE);
    if prompt.is_file() {
        paths.push(prompt);
    }
    paths.extend(files.weights.iter().cloned());
    if let Some(adapter) = &files.merge_adapter {
        paths.push(adapter.join("adapter_model.safetensors"));
    }
    // A GGUF file is config, tokenizer and weights at once: hash it once.
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(p.clone()));
    let parts = paths.iter().map(|p| file_fingerprint(p)).collect::<Result<Vec<_>>>()?;
    Ok(sha256_hex(parts.join("\n").as_bytes()))
}

/// Hidden states `[n][hidden]` of the groups' queries, in order (no cache).
pub fn query_features(reranker: &Reranker, groups: &[&QueryGroup], ctx: Option<&JobContext>) -> Result<Vec<Vec<f32>>> {
    let encoded: Vec<Vec<u32>> = groups.iter().map(|g| reranker.prompt.encode_query(None, &g.query)).collect::<Result<_>>()?;
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(encoded[i].len()), i));
    let options = ScoreOptions { max_batch: 32, ..Default::default() };
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); encoded.len()];
    for batch in length_batches(&order, |i| encoded[i].len(), &options) {
        if let Some(ctx) = ctx {
            ctx.check_cancelled()?;
        }
        let rows: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].as_slice()).collect();
        let hidden = reranker.final_hidden(&reranker.encode_batch(&rows)?, None)?.detach().to_dtype(DType::F32)?.to_vec2::<f32>()?;
        for (i, h) in batch.into_iter().zip(hidden) {
            out[i] = h;
        }
    }
    Ok(out)
}

fn ids_fingerprint(groups: &[&QueryGroup]) -> String {
    let text: Vec<&str> = groups.iter().flat_map(|g| [g.id.as_str(), g.query.as_str()]).collect();
    sha256_hex(text.join("\u{1f}").as_bytes())
}

/// As `query_features`, read from `cache` when it was written for the same backbone and queries,
/// else computed and written there (atomically).
pub fn cached_query_features(reranker: &Reranker, backbone: &str, groups: &[&QueryGroup], cache: &Path, ctx: Option<&JobContext>) -> Result<Vec<Vec<f32>>> {
    let queries = ids_fingerprint(groups);
    if cache.is_file() {
        if let Some(features) = read_cache(cache, backbone, &queries)? {
            return Ok(features);
        }
    }
    let features = query_features(reranker, groups, ctx)?;
    let d = features.first().map_or(0, Vec::len);
    let flat: Vec<f32> = features.iter().flatten().copied().collect();
    let tensor = Tensor::from_vec(flat, (features.len(), d), &Device::Cpu)?;
    let metadata = HashMap::from([("backbone".to_string(), backbone.to_string()), ("queries".to_string(), queries)]);
    crate::model::checkpoint::write_safetensors(cache, &BTreeMap::from([("hidden".to_string(), tensor)]), Some(metadata))?;
    Ok(features)
}

fn read_cache(path: &Path, backbone: &str, queries: &str) -> Result<Option<Vec<Vec<f32>>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let Ok((_, meta)) = safetensors::SafeTensors::read_metadata(&bytes) else { return Ok(None) };
    let fields = meta.metadata().clone().unwrap_or_default();
    if fields.get("backbone").map(String::as_str) != Some(backbone) || fields.get("queries").map(String::as_str) != Some(queries) {
        return Ok(None);
    }
    let tensors = crate::model::checkpoint::read_safetensors(path, DType::F32, &Device::Cpu)?;
    let Some((_, hidden)) = tensors.into_iter().find(|(n, _)| n == "hidden") else {
        bail!("{}: no `hidden` tensor", path.display())
    };
    Ok(Some(hidden.to_vec2::<f32>()?))
}
