//! Reranker scoring in the Qwen3-Reranker formulation: score = softmax over the last position's "yes" and
//! "no" logits. Two paths with equal results: the naive one (whole prompts in left-padded batches, the model
//! card's way, optionally with full-vocabulary logits at every position) and the fast one (per query, the
//! shared prefix's K/V is computed once, then the candidate suffixes run in length-sorted batches against it,
//! with only the last position and only the yes/no rows of the LM head). The tensor-returning methods keep
//! the autograd graph for training LoRA adapters.

use super::adapter_io;
use super::checkpoint::{self, Weights};
use super::config::ModelConfig;
use super::lora::{AdapterRun, LoraAdapter};
use super::prompt::{EncodedPair, PromptEncoder, PromptTemplate};
use super::transformer::{left_padded_inputs, PrefixCache, StepInput, Transformer};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where and how to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: Device,
    /// F32 or BF16 on the CPU (BF16: f32 weights and activations, projections through the bf16 kernel);
    /// BF16/F16 on CUDA.
    pub dtype: DType,
    /// Overrides the model directory's prompt settings.
    pub template: Option<PromptTemplate>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self { device: Device::Cpu, dtype: DType::F32, template: None }
    }
}

/// A left-padded batch of whole prompts: ids and positions [b, t], additive mask [b, 1, t, t].
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    pub ids: Tensor,
    pub positions: Tensor,
    pub mask: Tensor,
}

impl EncodedBatch {
    /// Left-pads the rows; positions count real tokens only, so padding never changes a row's result.
    pub fn left_padded(rows: &[&[u32]], pad_id: u32, device: &Device) -> Result<Self> {
        let (ids, positions, mask) = left_padded_inputs(rows, pad_id, 0, device)?;
        Ok(Self { ids, positions, mask })
    }

    pub fn len(&self) -> usize {
        self.ids.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One (query, document) pair to score.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ScoreRequest {
    #[serde(default)]
    pub instruction: Option<String>,
    pub query: String,
    pub document: String,
}

/// How to batch.
#[derive(Debug, Clone)]
pub struct ScoreOptions {
    /// Most candidates in one forward.
    pub max_batch: usize,
    /// Most (padded) tokens in one forward of the fast path.
    pub token_budget: usize,
    /// Return each prompt's final hidden state.
    pub want_hidden: bool,
    /// Naive path only: logits over the whole vocabulary at every position (the model card's code).
    pub full_vocab: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        Self { max_batch: 64, token_budget: 8192, want_hidden: false, full_vocab: false }
    }
}

/// The result for one pair.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PairScore {
    pub score: f32,
    pub yes_logit: f32,
    pub no_logit: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<f32>>,
    pub truncated: bool,
}

/// sigmoid(yes − no) = softmax([no, yes])[1], computed stably.
pub fn yes_probability(yes: f32, no: f32) -> f32 {
    let d = (yes - no) as f64;
    (if d >= 0.0 { 1.0 / (1.0 + (-d).exp()) } else { d.exp() / (1.0 + d.exp()) }) as f32
}

/// A backbone with its prompt encoder and yes/no head. Cloning is cheap; adapters are kept outside.
#[derive(Clone)]
pub struct Reranker {
    pub model: Transformer,
    pub prompt: PromptEncoder,
    /// LM-head rows of "yes" and "no": [2, hidden].
    yes_no_head: Tensor,
    pub model_dir: PathBuf,
}

impl Reranker {
    /// Loads a local Hugging Face directory (config.json, safetensors weights, tokenizer.json) or a GGUF
    /// model (a `.gguf` file, or a folder holding one); the prompt is the folder's `r2r_prompt.json`, else
    /// the architecture's default.
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Self> {
        let files = checkpoint::locate(dir)?;
        let gguf = match files.format {
            checkpoint::ModelFormat::Gguf => Some(super::gguf::GgufFile::open(&files.config)?),
            checkpoint::ModelFormat::HuggingFace => None,
        };
        let config = match &gguf {
            Some(g) => g.config()?,
            None => ModelConfig::from_file(&files.config)?,
        };
        let mut template = match &options.template {
            Some(t) => t.clone(),
            None => PromptTemplate::for_model(&files.dir, config.arch)?,
        };
        template.max_length = template.max_length.min(config.max_position_embeddings);
        let prompt = match &gguf {
            Some(g) => PromptEncoder::new(g.tokenizer()?, template, &files.tokenizer)?,
            None => PromptEncoder::from_file(&files.tokenizer, template)?,
        };
        for (role, id) in [("yes", prompt.yes_id), ("no", prompt.no_id)] {
            if id as usize >= config.vocab_size {
                bail!("tokenizer {}: the {role} token id {id} is outside the model's vocab_size {} ({})", files.tokenizer.display(), config.vocab_size, files.config.display());
            }
        }
        // bf16 on the CPU: f32 weights and activations, projections through the bf16 kernel.
        let cpu_bf16 = options.device.is_cpu() && options.dtype == DType::BF16;
        let dtype = if cpu_bf16 { DType::F32 } else { options.dtype };
        let weights = match &gguf {
            Some(g) => g.weights(dtype, &options.device)?,
            None => Weights::load(&files.weights, dtype, &options.device)?,
        };
        let mut model = Transformer::new(config, &weights, &options.device, dtype)
            .with_context(|| format!("weights of {} do not match {}", dir.display(), files.config.display()))?;
        if let Some(adapter_dir) = &files.merge_adapter {
            let adapter = adapter_io::load_adapter(adapter_dir, &model.config, &options.device)?;
            model.merge_adapter(&adapter).with_context(|| format!("cannot merge {} into its base", adapter_dir.display()))?;
        }
        if cpu_bf16 {
            model.use_bf16_matmuls()?;
        }
        Self::from_parts(model, prompt, dir)
    }

    pub fn from_parts(model: Transformer, prompt: PromptEncoder, dir: &Path) -> Result<Self> {
        let yes_no_head = model.lm_head_rows(&[prompt.yes_id, prompt.no_id])?;
        Ok(Self { model, prompt, yes_no_head, model_dir: dir.to_path_buf() })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.model.config
    }

    /// Loads `path` with its own prompt settings (the folder's `r2r_prompt.json`, else the architecture's
    /// default), the longest prompt changed to `max_length` when given (capped by the model's positions).
    pub fn load_with_max_length(path: &Path, device: Device, dtype: DType, max_length: Option<usize>) -> Result<Self> {
        let mut reranker = Self::load(path, &LoadOptions { device, dtype, template: None })?;
        if let Some(max_length) = max_length {
            let cap = reranker.config().max_position_embeddings;
            reranker.prompt.set_max_length(max_length.min(cap))?;
        }
        Ok(reranker)
    }

    pub fn device(&self) -> &Device {
        self.model.device()
    }

    /// Loads a PEFT adapter for this backbone (shares no base weights; any number can be resident).
    pub fn load_adapter(&self, dir: &Path) -> Result<LoraAdapter> {
        adapter_io::load_adapter(dir, self.config(), self.device())
    }

    pub fn encode_batch(&self, rows: &[&[u32]]) -> Result<EncodedBatch> {
        EncodedBatch::left_padded(rows, self.prompt.pad_id, self.device())
    }

    fn last_hidden(&self, batch: &EncodedBatch, run: &AdapterRun) -> Result<Tensor> {
        let input = StepInput { ids: &batch.ids, positions: &batch.positions, mask: &batch.mask, prefix: None };
        let (hidden, _) = self.model.forward(&input, run, true, false)?;
        Ok(hidden.squeeze(1)?)
    }

    fn head(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(hidden.matmul(&self.yes_no_head.t()?)?.to_dtype(DType::F32)?)
    }

    /// [b, 2] logits (column 0 "yes", column 1 "no") at each row's last position; keeps the graph.
    pub fn yes_no_logits(&self, batch: &EncodedBatch, adapter: Option<&LoraAdapter>) -> Result<Tensor> {
        self.yes_no_logits_with(batch, &AdapterRun::with(adapter))
    }

    /// As `yes_no_logits`, with full control of the adapter run (dropout for training).
    pub fn yes_no_logits_with(&self, batch: &EncodedBatch, run: &AdapterRun) -> Result<Tensor> {
        self.head(&self.last_hidden(batch, run)?)
    }

    /// [b, hidden] final-token hidden states after the final norm (e.g. of query prompts, for routing).
    pub fn final_hidden(&self, batch: &EncodedBatch, adapter: Option<&LoraAdapter>) -> Result<Tensor> {
        self.last_hidden(batch, &AdapterRun::with(adapter))
    }

    /// Per-token residual states of plain texts (no reranking template; `<bos>` first where the vocabulary
    /// has one) after decoder layer `layer` (0 = the embeddings), with each text token's byte range.
    /// A text is read in windows of `window` tokens (each its own sequence), up to `max_tokens` tokens in
    /// all; the rest of a longer text is not read. Returns, per text, ([n, hidden] f32 states of its
    /// tokens read, their byte ranges); an empty text gives zero rows.
    pub fn token_states(&self, texts: &[&str], layer: usize, window: usize, max_tokens: usize) -> Result<Vec<(Tensor, Vec<(usize, usize)>)>> {
        if window == 0 {
            bail!("token window must be at least 1");
        }
        let bos: Vec<u32> = self.prompt.bos_id().into_iter().collect();
        let hidden = self.config().hidden_size;
        // (text, window index, ids with <bos>) of every window.
        let mut encoded = Vec::with_capacity(texts.len());
        let mut rows: Vec<(usize, usize, Vec<u32>)> = Vec::new();
        for (ti, text) in texts.iter().enumerate() {
            let (mut ids, mut offsets) = self.prompt.encode_with_offsets(text)?;
            ids.truncate(max_tokens);
            offsets.truncate(max_tokens);
            for (wi, piece) in ids.chunks(window).enumerate() {
                let mut row = bos.clone();
                row.extend_from_slice(piece);
                rows.push((ti, wi, row));
            }
            encoded.push(offsets);
        }
        let mut parts: Vec<Vec<Option<Tensor>>> = encoded.iter().map(|o| vec![None; o.len().div_ceil(window)]).collect();
        // Length-sorted batches of up to 16 rows (left padding: a row's tokens are its last positions).
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(rows[i].2.len()));
        for chunk in order.chunks(16) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| rows[i].2.as_slice()).collect();
            let (ids, positions, mask) = left_padded_inputs(&batch, self.prompt.pad_id, 0, self.device())?;
            let input = StepInput { ids: &ids, positions: &positions, mask: &mask, prefix: None };
            let states = self.model.residual_states(&input, &[layer])?.remove(0).to_dtype(DType::F32)?;
            let t = states.dim(1)?;
            for (b, &i) in chunk.iter().enumerate() {
                let (ti, wi, row) = &rows[i];
                let n = row.len() - bos.len();
                parts[*ti][*wi] = Some(states.get(b)?.narrow(0, t - n, n)?);
            }
        }
        encoded
            .into_iter()
            .zip(parts)
            .map(|(offsets, pieces)| {
                let pieces: Vec<Tensor> = pieces.into_iter().map(|p| p.expect("every window run")).collect();
                let states = if pieces.is_empty() { Tensor::zeros((0, hidden), DType::F32, self.device())? } else { Tensor::cat(&pieces, 0)? };
                Ok((states, offsets))
            })
            .collect()
    }

    /// The routing representation of a query: final hidden state of its shared prompt part
    /// (prefix + instruction + query up to `<Document>:`) under the frozen backbone.
    pub fn query_hidden(&self, instruction: Option<&str>, query: &str) -> Result<Vec<f32>> {
        let ids = self.prompt.encode_query(instruction, query)?;
        let batch = self.encode_batch(&[&ids])?;
        Ok(self.final_hidden(&batch, None)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
    }

    /// K/V of a query's shared part (per adapter: LoRA changes K and V). Also returns its final hidden state.
    pub fn prefix_cache(&self, shared: &[u32], run: &AdapterRun) -> Result<(PrefixCache, Tensor)> {
        let (ids, positions, mask) = left_padded_inputs(&[shared], self.prompt.pad_id, 0, self.device())?;
        let (hidden, cache) = self.model.forward(&StepInput { ids: &ids, positions: &positions, mask: &mask, prefix: None }, run, true, true)?;
        Ok((cache.context("prefix cache")?, hidden.squeeze(1)?.squeeze(0)?))
    }

    /// Fast path for one query: yes/no logits [n, 2] and final hidden states [n, hidden] of its candidates
    /// (in the given order), with the shared part's K/V computed once. Keeps the graph.
    pub fn group_logits(&self, shared: &[u32], candidates: &[&[u32]], run: &AdapterRun, options: &ScoreOptions) -> Result<(Tensor, Tensor)> {
        if candidates.is_empty() {
            bail!("no candidates");
        }
        if let Some(i) = candidates.iter().position(|c| c.is_empty()) {
            bail!("candidate {i} has no tokens (the prompt template has no suffix)");
        }
        let (cache, _) = self.prefix_cache(shared, run)?;
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(candidates[i].len()));
        let mut hidden_parts = Vec::new();
        for chunk in length_batches(&order, |i| candidates[i].len(), options) {
            let rows: Vec<&[u32]> = chunk.iter().map(|&i| candidates[i]).collect();
            let (ids, positions, mask) = left_padded_inputs(&rows, self.prompt.pad_id, cache.len, self.device())?;
            let input = StepInput { ids: &ids, positions: &positions, mask: &mask, prefix: Some(&cache) };
            hidden_parts.push(self.model.forward(&input, run, true, false)?.0.squeeze(1)?);
        }
        let hidden = Tensor::cat(&hidden_parts, 0)?; // sorted order
        let mut inverse = vec![0u32; order.len()];
        for (pos, &i) in order.iter().enumerate() {
            inverse[i] = pos as u32;
        }
        let hidden = hidden.index_select(&Tensor::new(inverse.as_slice(), self.device())?, 0)?;
        Ok((self.head(&hidden)?, hidden))
    }

    fn encode_requests(&self, requests: &[ScoreRequest]) -> Result<Vec<EncodedPair>> {
        requests.iter().map(|r| self.prompt.encode_pair(r.instruction.as_deref(), &r.query, &r.document)).collect()
    }

    /// Scores pairs with prefix reuse: pairs sharing (instruction, query) form one group, in first-seen order.
    pub fn score(&self, requests: &[ScoreRequest], adapter: Option<&LoraAdapter>, options: &ScoreOptions) -> Result<Vec<PairScore>> {
        let encoded = self.encode_requests(requests)?;
        let mut groups: BTreeMap<&[u32], Vec<usize>> = BTreeMap::new();
        for (i, pair) in encoded.iter().enumerate() {
            groups.entry(pair.shared.as_slice()).or_default().push(i);
        }
        let run = AdapterRun::inference(adapter);
        let mut out: Vec<Option<PairScore>> = vec![None; requests.len()];
        for (shared, members) in groups {
            let candidates: Vec<&[u32]> = members.iter().map(|&i| encoded[i].candidate.as_slice()).collect();
            let (logits, hidden) = self.group_logits(shared, &candidates, &run, options)?;
            for (k, score) in to_scores(&logits, &hidden, options.want_hidden)?.into_iter().enumerate() {
                out[members[k]] = Some(PairScore { truncated: encoded[members[k]].truncated, ..score });
            }
        }
        Ok(out.into_iter().map(|s| s.expect("every pair belongs to a group")).collect())
    }

    /// Scores whole prompts in left-padded batches of `max_batch`, in input order (no prefix reuse).
    pub fn score_naive(&self, requests: &[ScoreRequest], adapter: Option<&LoraAdapter>, options: &ScoreOptions) -> Result<Vec<PairScore>> {
        let encoded = self.encode_requests(requests)?;
        let ids: Vec<Vec<u32>> = encoded.iter().map(|p| p.ids()).collect();
        let mut out = Vec::with_capacity(ids.len());
        for (chunk, pairs) in ids.chunks(options.max_batch.max(1)).zip(encoded.chunks(options.max_batch.max(1))) {
            let rows: Vec<&[u32]> = chunk.iter().map(|r| r.as_slice()).collect();
            let (logits, hidden) = self.naive_logits(&rows, adapter, options.full_vocab)?;
            for (score, pair) in to_scores(&logits, &hidden, options.want_hidden)?.into_iter().zip(pairs) {
                out.push(PairScore { truncated: pair.truncated, ..score });
            }
        }
        Ok(out)
    }

    /// One padded batch of whole prompts: ([b, 2] yes/no logits, [b, hidden] last hidden). With `full_vocab`
    /// it computes logits over the whole vocabulary at every position first, as the model card does.
    pub fn naive_logits(&self, rows: &[&[u32]], adapter: Option<&LoraAdapter>, full_vocab: bool) -> Result<(Tensor, Tensor)> {
        let batch = self.encode_batch(rows)?;
        let run = AdapterRun::inference(adapter);
        if !full_vocab {
            let hidden = self.last_hidden(&batch, &run)?;
            return Ok((self.head(&hidden)?, hidden));
        }
        let input = StepInput { ids: &batch.ids, positions: &batch.positions, mask: &batch.mask, prefix: None };
        let (hidden, _) = self.model.forward(&input, &run, false, false)?; // [b, t, hidden]
        let (b, t, h) = hidden.dims3()?;
        let logits = hidden.reshape((b * t, h))?.matmul(&self.model.lm_head().t()?)?.reshape((b, t, ()))?;
        let last = logits.narrow(1, t - 1, 1)?.squeeze(1)?.contiguous()?;
        let ids = Tensor::new(&[self.prompt.yes_id, self.prompt.no_id], self.device())?;
        Ok((last.index_select(&ids, D::Minus1)?.to_dtype(DType::F32)?, hidden.narrow(1, t - 1, 1)?.squeeze(1)?))
    }
}

/// Splits indices (sorted by decreasing length) into batches that respect the size and token limits and
/// waste little on padding: a batch closes when its padded size would exceed the real tokens by 15 %.
pub fn length_batches(order: &[usize], len: impl Fn(usize) -> usize, options: &ScoreOptions) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let (mut current, mut real, mut longest) = (Vec::new(), 0usize, 0usize);
    for &i in order {
        let l = len(i);
        let (n, longest_new, real_new) = (current.len() + 1, longest.max(l), real + l);
        let fits = n <= options.max_batch.max(1) && n * longest_new <= options.token_budget.max(longest_new) && (n * longest_new) as f64 <= 1.15 * real_new as f64;
        if !current.is_empty() && !fits {
            batches.push(std::mem::take(&mut current));
            (real, longest) = (0, 0);
        }
        current.push(i);
        real += l;
        longest = longest.max(l);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

fn to_scores(logits: &Tensor, hidden: &Tensor, want_hidden: bool) -> Result<Vec<PairScore>> {
    let logits = logits.detach().to_vec2::<f32>()?;
    let hidden = if want_hidden { Some(hidden.detach().to_dtype(DType::F32)?.to_vec2::<f32>()?) } else { None };
    Ok(logits
        .iter()
        .enumerate()
        .map(|(i, l)| PairScore { score: yes_probability(l[0], l[1]), yes_logit: l[0], no_logit: l[1], hidden: hidden.as_ref().map(|h| h[i].clone()), truncated: false })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_follow_limits_and_padding_waste() {
        let lens = [100, 98, 97, 60, 59, 10];
        let opts = ScoreOptions { max_batch: 2, ..Default::default() };
        let b = length_batches(&[0, 1, 2, 3, 4, 5], |i| lens[i], &opts);
        assert_eq!(b, vec![vec![0, 1], vec![2], vec![3, 4], vec![5]]);
        let opts = ScoreOptions { max_batch: 64, token_budget: 250, ..Default::default() };
        let b = length_batches(&[0, 1, 2, 3, 4, 5], |i| lens[i], &opts);
        assert_eq!(b, vec![vec![0, 1], vec![2], vec![3, 4], vec![5]]);
        assert!(yes_probability(80.0, -80.0) > 0.999 && yes_probability(-80.0, 80.0) < 1e-30);
        assert!((yes_probability(1.0, 0.0) - 0.731_058_6).abs() < 1e-6);
    }
}
