//! The bundled generalist backbone: a small Qwen3-architecture reranker made here from scratch, so the
//! app works offline. R2R specialises it like any downloaded model (it loads through `model::Reranker`).
//!
//! - `tokenizer` — training the byte-level BPE (Qwen-style, chat special tokens, single-token yes/no)
//! - `corpus` — the general-domain training data and its held-out dev/test groups
//! - `pretrain` — the recipe: seeded init, optional causal-LM warm-up, then listwise distillation from
//!   BM25 mixed with the relevance label, easy negatives before hard ones; saving as a HF directory
//! - `lexical_init` — an optional structured init that starts the decoder as a lexical matcher
//! - `calibrate` — shifts the yes − no margin to a target mean without changing rankings
//! - `finetune` — the generalist reranking fine-tune of a pretrained LM (Gemma 3) as a backbone bundle
//! - `eval` — NDCG@10 / MRR@10 of a model against BM25 and seeded random order on held-out groups

pub mod calibrate;
pub mod corpus;
pub mod eval;
pub mod finetune;
pub mod lexical_init;
pub mod pretrain;
pub mod tokenizer;

pub use corpus::{Corpus, CorpusOptions};
pub use eval::{evaluate_groups, Comparison, RankMetrics};
pub use pretrain::{pretrain, PretrainConfig, PretrainReport};
pub use tokenizer::train_tokenizer;
