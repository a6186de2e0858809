//! `r2r export serving --run RUN --out DIR`: a bundle for multi-LoRA serving of the routed reranker: the base
//! model's reference, the experts as PEFT LoRA modules, the router (safetensors + JSON) with the exact query
//! prompt whose final-token state it reads, the scoring prompt, and a vLLM launch script. `serving.json`
//! documents the request flow: route the query with the LSR, then score (query, document) pairs with the
//! chosen expert.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::train::checkpoint::RunDir;

/// `serving.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServingManifest {
    pub format_version: u32,
    /// The backbone the experts were trained on, as the run names it (a model directory, GGUF file, bundle).
    pub base: PathBuf,
    /// For a backbone bundle: the generalist adapter to merge into the base before serving.
    pub merge_first: Option<PathBuf>,
    /// Domain → LoRA module folder (relative to the bundle).
    pub experts: BTreeMap<String, PathBuf>,
    pub max_lora_rank: usize,
    pub router: RouterEntry,
    /// The scoring prompt (`r2r_prompt.json`): prefix + body with {query} and {doc} + suffix; the score is
    /// softmax over the yes/no tokens' logits at the last position.
    pub prompt: crate::model::PromptTemplate,
    pub request_flow: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RouterEntry {
    /// Folder with router.safetensors + router.json (relative to the bundle).
    pub dir: PathBuf,
    pub labels: Vec<String>,
    /// The text whose final-token hidden state (after the final norm, no adapter) the router reads, with
    /// `{query}` (and `{instruction}`) to fill.
    pub query_prompt: String,
}

/// Writes the serving bundle of the trained run `run_root` into `out`.
pub fn export_serving(run_root: &Path, out: &Path) -> Result<ServingManifest> {
    let run = RunDir::new(run_root);
    let model = super::serve::RoutedReranker::load(run_root)?;
    let (base, reranker, router) = (&model.base, &model.reranker, &model.router);
    let mut experts = BTreeMap::new();
    for label in &router.meta.labels {
        let relative = PathBuf::from("experts").join(crate::train::checkpoint::safe_name(label));
        crate::util::copy_dir_files(&run.expert_dir(label), &out.join(&relative))?;
        experts.insert(label.clone(), relative);
    }
    let max_rank = model.experts.iter().map(|a| a.config.r).max().unwrap_or(0);
    crate::util::copy_dir_files(&run.router_dir(), &out.join("router"))?;
    let template = reranker.prompt.template.clone();
    let query_prompt = format!("{}{}", template.prefix, template.body.split("{doc}").next().unwrap_or_default().trim_end());
    let files = crate::model::checkpoint::locate(base)?;
    let manifest = ServingManifest {
        format_version: 1,
        base: base.clone(),
        merge_first: files.merge_adapter.clone(),
        experts,
        max_lora_rank: max_rank,
        router: RouterEntry { dir: "router".into(), labels: router.meta.labels.clone(), query_prompt },
        prompt: template.clone(),
        request_flow: vec![
            "1. Route: fill router.query_prompt with the query, run the base model (no LoRA) and take the final-token hidden state after the final norm; the router's softmax(W·((h − mean)·inv_std) + b) over router.labels picks the expert (router/router.json, router/router.safetensors).".into(),
            "2. Score: for each document, fill prompt (prefix + body + suffix) and run the base with the chosen expert's LoRA module; score = softmax([no, yes]) of the yes/no token logits at the last position.".into(),
            "3. Order the documents by score (descending).".into(),
        ],
    };
    crate::util::atomic_write_json(&out.join(crate::model::prompt::PROMPT_FILE), &template)?;
    crate::util::atomic_write_json(&out.join("serving.json"), &manifest)?;
    let modules: Vec<String> = manifest.experts.iter().map(|(d, p)| format!("{d}=\"$BUNDLE/{}\"", p.display())).collect();
    let script = format!(
        "#!/usr/bin/env bash\n# Multi-LoRA serving of the R2R experts with vLLM (written by `r2r export serving`). BASE_MODEL: a Hugging Face\n# directory of the backbone{}. Route each query with router/ first (serving.json, request_flow),\n# then request scores with `\"model\": \"<expert>\"`.\nset -euo pipefail\nBUNDLE=\"$(cd \"$(dirname \"$0\")\" && pwd)\"\n: \"${{BASE_MODEL:?set BASE_MODEL to a Hugging Face model directory}}\"\nexec vllm serve \"$BASE_MODEL\" --enable-lora --max-lora-rank {} --max-loras {} \\\n    --lora-modules {}\n",
        if manifest.merge_first.is_some() { " with the generalist adapter of serving.json's merge_first merged in" } else { "" },
        manifest.max_lora_rank.max(8),
        manifest.experts.len(),
        modules.join(" ")
    );
    let path = out.join("vllm.sh");
    crate::util::atomic_write(&path, script.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(manifest)
}
