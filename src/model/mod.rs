//! The decoder-only reranker in candle: a Qwen3 / Qwen2 / Llama backbone loaded from a local Hugging Face
//! directory, Qwen3-Reranker scoring (yes/no logits of the last position) with prefix K/V reuse, final
//! hidden states for routing, and LoRA experts in PEFT's file format.
//!
//! - `config` — config.json → `ModelConfig` (variant switches)
//! - `checkpoint` — locating files, safetensors loading/validation, pickle refusal
//! - `transformer` — the differentiable forward with prefix cache and LoRA hooks; `bf16_matmul` — the CPU bf16 kernel;
//!   `fused_ops` — RoPE and RMSNorm as single CPU ops with their own backward (training steps)
//! - `lora` — adapters (A/B `Var`s) over a shared frozen base; `adapter_io` — PEFT load/save
//! - `prompt` — template, tokenisation, truncation; `scorer` — naive and fast scoring, batching
//! - `default_backbone` — `model.path = "auto"`: the Gemma generalist when installed, else the bundled one
//! - `make_model` — seeded random checkpoints of a published shape (for benchmarks)

pub mod adapter_io;
pub mod bf16_matmul;
pub mod checkpoint;
pub mod config;
pub mod default_backbone;
pub mod fused_ops;
pub mod gguf;
pub mod lora;
pub mod make_model;
pub mod prompt;
pub mod scorer;
pub mod store;
pub mod transformer;

pub use adapter_io::{load_adapter, save_adapter, save_adapter_as};
pub use config::{Activation, Arch, LayerKind, ModelConfig};
pub use lora::{AdapterRun, LoraAdapter, LoraConfig};
pub use prompt::{EncodedPair, PromptEncoder, PromptTemplate, Truncation};
pub use scorer::{EncodedBatch, LoadOptions, PairScore, Reranker, ScoreOptions, ScoreRequest};
pub use transformer::{PrefixCache, Proj, Transformer};

/// The compute device: CUDA device 0 when built with the `cuda` feature and `use_cuda`, else the CPU.
pub fn select_device(use_cuda: bool) -> anyhow::Result<candle_core::Device> {
    if !use_cuda {
        return Ok(candle_core::Device::Cpu);
    }
    #[cfg(feature = "cuda")]
    {
        Ok(candle_core::Device::new_cuda(0)?)
    }
    #[cfg(not(feature = "cuda"))]
    {
        anyhow::bail!("this build has no CUDA support (rebuild with `--features cuda`)")
    }
}
