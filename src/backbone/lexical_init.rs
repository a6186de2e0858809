//! The "lexical" structured initialisation: weights set by hand so that, before any training, the
//! Qwen3 decoder already computes a BM25-like query–document overlap in three layers; training then
//! adjusts every weight from there. (From random weights the reranking objective stayed at random
//! order within the CPU budget; see assets/backbone/README.md.)
//!
//! Residual dimensions 0–4 carry the circuit's features, the rest carry token identity:
//! - embeddings: dim 0 marks the `<Document` token, dim 1 is a constant, dim 4 marks "function" tokens
//!   (template words and BM25 stop words); dims 5..64 are per-token random; dims 64.. hold a random
//!   vector shared by case and leading-space variants of a content token (so "Tower" matches " tower").
//! - layer 0, head 0: every position attends to the `<Document` marker → dim 2 = "inside the document".
//! - layer 1, head 0: query = key = a projection of the content dims (low-frequency RoPE pairs only, so
//!   matching ignores distance); value = −dim 2 → dim 3 = −(share of this token's equal copies that lie
//!   inside the document). A document token also found in the query gets a less negative value.
//! - layer 2, head 0: the last position attends evenly to the document's content tokens (key = dim 2 −
//!   dim 4) and reads dim 3 + κ·dim 2 (the match share), writing it along e(yes) − e(no).
//!
//! Every other head and MLP starts with a zero output projection (an identity residual block) and
//! random input projections, so gradients can grow them.

use super::pretrain::TrainableBackbone;
use crate::model::{PromptEncoder, Proj};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use rand::Rng;
use std::collections::BTreeSet;

const DOC_MARK: usize = 0;
const CONSTANT: usize = 1;
const IN_DOC: usize = 2;
const MATCH: usize = 3;
const FUNCTION: usize = 4;
const PRIVATE: std::ops::Range<usize> = 5..64;
const CONTENT_FROM: usize = 64;

fn normal(rng: &mut crate::util::SeededRng) -> f32 {
    let (u1, u2): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn unit_random(rng: &mut crate::util::SeededRng, n: usize, norm: f32) -> Vec<f32> {
    let v: Vec<f32> = (0..n).map(|_| normal(rng)).collect();
    let len = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.into_iter().map(|x| x * norm / len).collect()
}

/// The content-matching key of a token: lower-cased, without the byte-level leading-space mark.
fn match_key(token: &str) -> String {
    token.trim_start_matches('Ġ').to_lowercase()
}

/// Overwrites `model`'s weights with the lexical circuit (see the module docs).
pub fn apply(model: &TrainableBackbone, prompt: &PromptEncoder, tokenizer: &tokenizers::Tokenizer, seed: u64) -> Result<()> {
    let c = &model.config;
    let (h, d, vocab) = (c.hidden_size, c.head_dim, c.vocab_size);
    if c.num_layers < 3 || h < CONTENT_FROM + 32 || d < 8 || d % 4 != 0 {
        bail!("the lexical init needs at least 3 layers, hidden size ≥ {} and head_dim a multiple of 4 (≥ 8)", CONTENT_FROM + 32);
    }
    let mut rng = crate::util::seeded_rng(seed, crate::util::stable_hash("lexical-init"));
    // Token classes.
    let template: Vec<u32> = prompt.encode_pair(None, "", "")?.ids();
    let template_ids: BTreeSet<u32> = template.iter().copied().collect();
    // The marker: the first token of "<Document>:" that occurs only once in the whole template.
    let marker = prompt
        .encode("\n<Document>:")?
        .into_iter()
        .find(|&id| template.iter().filter(|&&t| t == id).count() == 1)
        .context("no token of the <Document> marker is unique in the prompt template")?;
    let stop: BTreeSet<&str> = crate::bm25::STOPWORDS.iter().copied().collect();
    let (yes, no) = (prompt.yes_id, prompt.no_id);
    let content_norm = 16.0f32;
    let mut embed = vec![0f32; vocab * h];
    for id in 0..vocab as u32 {
        let token = tokenizer.id_to_token(id).unwrap_or_default();
        let key = match_key(&token);
        let function = (template_ids.contains(&id) || stop.contains(key.as_str())) && id != yes && id != no;
        let row = &mut embed[id as usize * h..(id as usize + 1) * h];
        row[CONSTANT] = 2.0;
        if id == marker {
            row[DOC_MARK] = 16.0;
        }
        let private = unit_random(&mut rng, PRIVATE.len(), if function { content_norm } else { 6.0 });
        row[PRIVATE].copy_from_slice(&private);
        if function {
            row[FUNCTION] = 8.0;
        } else {
            let mut shared = crate::util::seeded_rng(seed, crate::util::stable_hash(&format!("content:{key}")));
            row[CONTENT_FROM..].copy_from_slice(&unit_random(&mut shared, h - CONTENT_FROM, content_norm));
        }
    }
    let set = |name: &str, data: Vec<f32>| -> Result<()> {
        let var = model.vars.get(name).with_context(|| format!("no variable {name}"))?;
        var.set(&Tensor::from_vec(data, var.shape(), var.device())?)?;
        Ok(())
    };
    let get = |name: &str| -> Result<Vec<f32>> { Ok(model.vars[name].as_tensor().flatten_all()?.to_vec1::<f32>()?) };
    // Low-frequency RoPE dimensions of a head (pairs i and i + d/2 with i ≥ d/4).
    let slow: Vec<usize> = (d / 4..d / 2).chain(3 * d / 4..d).collect();
    let yes_dir: Vec<f32> = {
        let diff: Vec<f32> = (0..h).map(|j| embed[yes as usize * h + j] - embed[no as usize * h + j]).collect();
        let len = diff.iter().map(|x| x * x).sum::<f32>().sqrt();
        diff.into_iter().map(|x| x / len).collect()
    };
    let projection: Vec<Vec<f32>> = slow.iter().map(|_| (0..h).map(|j| if j >= CONTENT_FROM { normal(&mut rng) } else { 0.0 }).collect()).collect();
    set("model.embed_tokens.weight", embed)?;
    for layer in 0..c.num_layers {
        let path = |p: Proj| format!("{}.weight", p.path(layer));
        let (mut q, mut k, mut v) = (get(&path(Proj::Q))?, get(&path(Proj::K))?, get(&path(Proj::V))?);
        let mut o = vec![0f32; h * c.num_heads * d]; // [h, heads·d]
        // Head 0's query rows and kv head 0's key/value rows start from zero in the circuit layers.
        if layer < 3 {
            q[..d * h].fill(0.0);
            k[..d * h].fill(0.0);
            v[..d * h].fill(0.0);
        }
        let qk_weight = match layer {
            0 => {
                // Attend to the <Document marker: query reads the constant, key reads the marker flag.
                for &r in &slow {
                    q[r * h + CONSTANT] = 1.0;
                    k[r * h + DOC_MARK] = 1.0;
                }
                v[DOC_MARK] = 1.0; // head dim 0 ← marker flag
                o[IN_DOC * c.num_heads * d] = 0.3;
                (12.0f32 / 8.0).sqrt()
            }
            1 => {
                for (i, &r) in slow.iter().enumerate() {
                    q[r * h..(r + 1) * h].copy_from_slice(&projection[i]);
                    k[r * h..(r + 1) * h].copy_from_slice(&projection[i]);
                }
                v[IN_DOC] = -1.0;
                o[MATCH * c.num_heads * d] = 1.0;
                (10.0f32 / 8.0).sqrt()
            }
            2 => {
                for &r in &slow {
                    q[r * h + CONSTANT] = 1.0;
                    k[r * h + IN_DOC] = 1.0;
                    k[r * h + FUNCTION] = -1.0;
                }
                v[MATCH] = 1.0;
                v[IN_DOC] = 0.97;
                for (j, y) in yes_dir.iter().enumerate() {
                    o[j * c.num_heads * d] = *y;
                }
                (12.0f32 / 8.0).sqrt()
            }
            _ => 1.0,
        };
        set(&path(Proj::Q), q)?;
        set(&path(Proj::K), k)?;
        set(&path(Proj::V), v)?;
        set(&path(Proj::O), o)?;
        set(&path(Proj::Down), vec![0.0; h * c.intermediate_size])?;
        for norm in ["q_norm", "k_norm"] {
            set(&format!("model.layers.{layer}.self_attn.{norm}.weight"), vec![qk_weight; d])?;
        }
    }
    Ok(())
}
