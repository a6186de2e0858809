//! The learned recogniser: one or more NER heads over one frozen backbone. A text costs one forward pass
//! up to the deepest layer its heads read (all heads of a backbone share it); every head proposes spans
//! with a confidence, and spans under the head's per-type threshold (or a global override, the GUI's
//! slider) are dropped. Raw proposals are cached per text, so a new threshold costs no forward pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use super::head::{byte_span, features, NerHead, TokenSpan};
use crate::model::Reranker;

/// The source name of a head's spans.
pub fn source_name(head: &str) -> String {
    format!("learned:{head}")
}

/// One proposal of a head, before thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub start: usize,
    pub end: usize,
    pub label: String,
    pub head: usize,
    pub confidence: f32,
}

/// Heads on a loaded backbone.
pub struct LearnedRecognizer {
    backbone: Reranker,
    backbone_path: PathBuf,
    heads: Vec<NerHead>,
    /// When set, replaces every head's per-type thresholds.
    threshold_override: Mutex<Option<f32>>,
    cache: Mutex<HashMap<String, std::sync::Arc<Vec<Proposal>>>>,
}

impl std::fmt::Debug for LearnedRecognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnedRecognizer").field("backbone", &self.backbone_path).field("heads", &self.heads.iter().map(|h| &h.meta.name).collect::<Vec<_>>()).finish()
    }
}

/// Tokens of a text the heads read (in windows of a head's `max_tokens`): a 1 MB passage costs 16
/// windows, not 250k tokens. Reranking prompts cut passages far shorter, so what abstraction masks
/// beyond this is never seen by the experts; gazetteers and patterns still read the whole text.
pub const MAX_TEXT_TOKENS: usize = 2048;
const CACHE_LIMIT: usize = 50_000;

impl LearnedRecognizer {
    /// Loads heads (directories with head.json + head.safetensors) and the backbone they read: `backbone`
    /// when given, else the one the first head records (under the project root when relative). Heads must
    /// agree with the backbone's hidden size; a recorded fingerprint that differs is an error.
    pub fn load(head_dirs: &[PathBuf], backbone: Option<&Path>) -> Result<LearnedRecognizer> {
        let heads: Vec<NerHead> = head_dirs.iter().map(|d| NerHead::load(d)).collect::<Result<_>>()?;
        let first = heads.first().context("no NER head given")?;
        let path = match backbone {
            Some(p) => crate::model::default_backbone::resolve(p),
            None => crate::assets::under_project_root(&first.meta.backbone.path),
        };
        if backbone.is_none() {
            if let Some(expected) = &first.meta.backbone.sha256 {
                let found = crate::train::features::backbone_fingerprint(&path)?;
                if &found != expected {
                    bail!("{}: the backbone at {} differs from the one the head was trained on (fingerprint {found}, head records {expected}); pass --ner-backbone", head_dirs[0].display(), path.display());
                }
            }
        }
        let reranker = Reranker::load(&path, &crate::model::LoadOptions::default()).with_context(|| format!("loading the NER heads' backbone {}", path.display()))?;
        Self::new(reranker, path, heads, head_dirs)
    }

    /// Heads on an already loaded backbone (checked against its hidden size and depth).
    pub fn new(backbone: Reranker, backbone_path: PathBuf, heads: Vec<NerHead>, head_dirs: &[PathBuf]) -> Result<LearnedRecognizer> {
        let c = backbone.config();
        for (i, head) in heads.iter().enumerate() {
            let name = head_dirs.get(i).map(|d| d.display().to_string()).unwrap_or_else(|| head.meta.name.clone());
            if head.meta.hidden_size != c.hidden_size || head.meta.layer > c.num_layers {
                bail!(
                    "{name}: the head reads layer {} of a backbone with hidden size {}; {} has {} layers of size {}",
                    head.meta.layer,
                    head.meta.hidden_size,
                    backbone_path.display(),
                    c.num_layers,
                    c.hidden_size
                );
            }
        }
        Ok(LearnedRecognizer { backbone, backbone_path, heads, threshold_override: Mutex::new(None), cache: Mutex::new(HashMap::new()) })
    }

    pub fn heads(&self) -> &[NerHead] {
        &self.heads
    }

    pub fn backbone(&self) -> &Reranker {
        &self.backbone
    }

    pub fn backbone_path(&self) -> &Path {
        &self.backbone_path
    }

    /// Sets (or clears) one threshold for every head and type.
    pub fn set_threshold_override(&self, threshold: Option<f32>) {
        *self.threshold_override.lock().expect("threshold lock") = threshold;
    }

    pub fn threshold_override(&self) -> Option<f32> {
        *self.threshold_override.lock().expect("threshold lock")
    }

    /// The threshold a proposal must reach.
    pub fn threshold(&self, p: &Proposal) -> f32 {
        self.threshold_override().unwrap_or_else(|| self.heads[p.head].meta.threshold(&p.label))
    }

    /// Proposals of every head for each text (cached), computed in batches.
    pub fn propose_all(&self, texts: &[&str]) -> Result<Vec<std::sync::Arc<Vec<Proposal>>>> {
        self.propose_all_checked(texts, &mut || Ok(()))
    }

    /// [`Self::propose_all`], calling `check` before each batch's forward pass (a job's cancellation
    /// check) and stopping at its first error; the batches are the same.
    pub fn propose_all_checked(&self, texts: &[&str], check: &mut dyn FnMut() -> Result<()>) -> Result<Vec<std::sync::Arc<Vec<Proposal>>>> {
        let mut found: HashMap<&str, std::sync::Arc<Vec<Proposal>>> = {
            let cache = self.cache.lock().expect("cache lock");
            texts.iter().filter_map(|t| cache.get(*t).map(|p| (*t, p.clone()))).collect()
        };
        let mut missing: Vec<&str> = texts.iter().copied().filter(|t| !found.contains_key(t)).collect();
        missing.sort_unstable();
        missing.dedup();
        for chunk in missing.chunks(64) {
            check()?;
            let computed = self.compute(chunk)?;
            let mut cache = self.cache.lock().expect("cache lock");
            if cache.len() + computed.len() > CACHE_LIMIT {
                cache.clear();
            }
            for (text, proposals) in chunk.iter().zip(computed) {
                let proposals = std::sync::Arc::new(proposals);
                cache.insert(text.to_string(), proposals.clone());
                found.insert(text, proposals);
            }
        }
        Ok(texts.iter().map(|t| found[t].clone()).collect())
    }

    /// Whether every text's proposals are cached (no forward pass needed).
    pub fn is_cached(&self, texts: &[String]) -> bool {
        let cache = self.cache.lock().expect("cache lock");
        texts.iter().all(|t| cache.contains_key(t))
    }

    /// Proposals of one text (cached).
    pub fn propose(&self, text: &str) -> Result<std::sync::Arc<Vec<Proposal>>> {
        Ok(self.propose_all(&[text])?.remove(0))
    }

    fn compute(&self, texts: &[&str]) -> Result<Vec<Vec<Proposal>>> {
        let mut out: Vec<Vec<Proposal>> = vec![Vec::new(); texts.len()];
        let mut plans: Vec<(usize, usize)> = self.heads.iter().map(|h| (h.meta.layer, h.meta.max_tokens)).collect();
        plans.sort();
        plans.dedup();
        for (layer, window) in plans {
            let states = self.backbone.token_states(texts, layer, window, MAX_TEXT_TOKENS)?;
            for (text_index, (text, (state, offsets))) in texts.iter().zip(&states).enumerate() {
                for (hi, head) in self.heads.iter().enumerate().filter(|(_, h)| (h.meta.layer, h.meta.max_tokens) == (layer, window)) {
                    let x = features(state, head.meta.right_context)?;
                    let log_probs = head.log_probs(&x)?;
                    let path = head.meta.decode(&log_probs);
                    for span in super::head::spans_of_path(&path, &log_probs) {
                        if let Some(p) = self.proposal(text, offsets, &span, hi) {
                            out[text_index].push(p);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn proposal(&self, text: &str, offsets: &[(usize, usize)], span: &TokenSpan, head: usize) -> Option<Proposal> {
        let (s, e) = byte_span(text, offsets, span)?;
        Some(Proposal { start: s, end: e, label: self.heads[head].meta.types[span.type_index].clone(), head, confidence: span.confidence })
    }
}
