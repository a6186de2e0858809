//! `r2r export training`: each stage's training groups (EAG stage 1 on the entity-abstracted union, stage 2
//! per domain, the direct and single-domain baselines) written in an engine's reranker format, plus a
//! `launch.sh` that trains the stages in R2R's order with torchrun / DeepSpeed-ready arguments, and a
//! `manifest.json` of what was written and how each setting was translated.
//!
//! Formats, from the engines' own documentation and source (docs/scale-out.md cites them):
//! - FlagEmbedding (decoder-only reranker, `FlagEmbedding.finetune.reranker.decoder_only.base`):
//!   `{"query": str, "pos": [str], "neg": [str], "prompt": str}` per line.
//! - ms-swift (`--task_type generative_reranker`): `{"messages": [{"role": "user", "content": query}],
//!   "positive_messages": [[{"role": "assistant", "content": doc}]], "negative_messages": [[…], …]}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::{QueryGroup, Split};
use crate::train::config::TrainConfig;
use crate::train::loss::ScoreForm;

/// The engine whose format and launcher are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[serde(rename = "flagembedding")]
    FlagEmbedding,
    Swift,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::FlagEmbedding => "flagembedding",
            Engine::Swift => "swift",
        }
    }
}

/// The instruction FlagEmbedding's decoder-only reranker appends after the passage (its default, and the
/// Gemma prompt of this project: bge-reranker-v2-gemma's).
pub const FLAG_PROMPT: &str = "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing a prediction of either 'Yes' or 'No'.";

/// One written data file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportedFile {
    /// Relative to the export folder.
    pub path: PathBuf,
    /// "stage1", "stage2:<domain>", "direct".
    pub stage: String,
    pub groups: usize,
    /// Groups left out: no positive, or no negative.
    pub skipped: usize,
}

/// What `export_training` wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingExport {
    pub engine: Engine,
    pub out: PathBuf,
    pub files: Vec<ExportedFile>,
    /// Setting → the engine's argument (or a note where the engine has no equivalent).
    pub settings: BTreeMap<String, String>,
    /// Differences between the workbench's objective and the engine's.
    pub caveats: Vec<String>,
}

/// The training groups of each target domain, as `r2r train` selects them (train split, first
/// `max_train_queries` in file order).
fn train_groups(config: &TrainConfig) -> Result<BTreeMap<String, Vec<QueryGroup>>> {
    let dataset = crate::data::load(&config.data.path, &crate::data::LoadOptions::default()).context("data.path")?;
    let available = dataset.domains();
    let mut by_domain = BTreeMap::new();
    for domain in &config.data.domains {
        if !available.contains(domain) {
            bail!("data.domains names `{domain}`, which {} does not hold (domains: {available:?})", config.data.path.display());
        }
        let groups = dataset.select(Some(domain), Some(Split::Train)).cloned();
        let groups: Vec<QueryGroup> = if config.data.max_train_queries == 0 { groups.collect() } else { groups.take(config.data.max_train_queries).collect() };
        if groups.is_empty() {
            bail!("domain `{domain}` has no training queries in {}", config.data.path.display());
        }
        by_domain.insert(domain.clone(), groups);
    }
    Ok(by_domain)
}

/// One record in the engine's format, or None when the group has no positive or no negative.
fn record(engine: Engine, group: &QueryGroup) -> Option<serde_json::Value> {
    let pos: Vec<&str> = group.candidates.iter().filter(|c| c.relevance > 0).map(|c| c.text.as_str()).collect();
    let neg: Vec<&str> = group.candidates.iter().filter(|c| c.relevance == 0).map(|c| c.text.as_str()).collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    Some(match engine {
        Engine::FlagEmbedding => serde_json::json!({"query": group.query, "pos": pos, "neg": neg, "prompt": FLAG_PROMPT}),
        Engine::Swift => {
            let doc = |d: &str| serde_json::json!([{"role": "assistant", "content": d}]);
            serde_json::json!({
                "messages": [{"role": "user", "content": group.query}],
                "positive_messages": pos.iter().map(|d| doc(d)).collect::<Vec<_>>(),
                "negative_messages": neg.iter().map(|d| doc(d)).collect::<Vec<_>>(),
            })
        }
    })
}

fn write_jsonl(engine: Engine, out: &Path, relative: &str, stage: &str, groups: &[QueryGroup]) -> Result<ExportedFile> {
    let mut text = String::new();
    let (mut written, mut skipped) = (0, 0);
    for group in groups {
        match record(engine, group) {
            Some(value) => {
                text.push_str(&serde_json::to_string(&value)?);
                text.push('\n');
                written += 1;
            }
            None => skipped += 1,
        }
    }
    if written == 0 {
        bail!("{stage}: none of its {} groups has both a positive and a negative passage", groups.len());
    }
    let path = out.join(relative);
    crate::util::atomic_write(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(ExportedFile { path: PathBuf::from(relative), stage: stage.into(), groups: written, skipped })
}

/// The settings of `config` as the engine's arguments, and what does not carry over.
fn translate(engine: Engine, c: &TrainConfig) -> (BTreeMap<String, String>, Vec<String>) {
    let mut s = BTreeMap::new();
    let mut caveats = Vec::new();
    let modules = c.lora.target_modules.join(" ");
    s.insert("lora.rank".into(), format!("--lora_rank {}", c.lora.rank));
    s.insert("lora.alpha".into(), format!("--lora_alpha {}", c.lora.alpha));
    s.insert("lora.dropout".into(), format!("--lora_dropout {}", c.lora.dropout));
    s.insert("lora.target_modules".into(), format!("--target_modules {modules}"));
    s.insert("optim.learning_rate".into(), format!("--learning_rate {}", c.optim.learning_rate));
    s.insert("optim.weight_decay".into(), format!("--weight_decay {}", c.optim.weight_decay));
    s.insert("optim.warmup_fraction".into(), format!("--warmup_ratio {}", c.optim.warmup_fraction));
    s.insert("optim.grad_clip".into(), format!("--max_grad_norm {}", c.optim.grad_clip));
    s.insert("optim.batch_groups".into(), format!("--per_device_train_batch_size {}", c.optim.batch_groups));
    s.insert("optim.grad_accumulation".into(), format!("--gradient_accumulation_steps {}", c.optim.grad_accumulation));
    s.insert("optim.seed".into(), format!("--seed {}", c.optim.seed));
    s.insert("stage1.epochs / stage2.epochs / baselines".into(), format!("--num_train_epochs {} / {} / {}", c.stage1.epochs, c.stage2.epochs, c.baseline_epochs()));
    if c.optim.final_lr_fraction > 0.0 {
        caveats.push(format!("optim.final_lr_fraction = {}: the engines' linear schedule decays to 0", c.optim.final_lr_fraction));
    }
    if c.stage1.select_best || c.stage2.select_best {
        caveats.push("best-dev checkpoint selection (stage*.select_best) is the workbench's; the engines keep their last checkpoint".into());
    }
    match engine {
        Engine::FlagEmbedding => {
            s.insert("objective.negatives".into(), format!("--train_group_size {}", c.objective.negatives + 1));
            s.insert("model.max_length".into(), format!("--max_len {}", c.model.max_length));
            s.insert("objective.temperature".into(), "none: cross-entropy over the group's raw scores (τ = 1)".into());
            s.insert("objective.score".into(), "the 'Yes' logit at the last position (CrossDecoderModel.encode)".into());
            if c.objective.temperature != 1.0 {
                caveats.push(format!("objective.temperature = {}: FlagEmbedding has no temperature (τ = 1)", c.objective.temperature));
            }
            caveats.push(match c.objective.score {
                ScoreForm::Probability => "objective.score = probability (the paper's sigmoid(yes − no)): FlagEmbedding scores with the 'Yes' logit alone".into(),
                ScoreForm::Logit => "objective.score = logit (yes − no): FlagEmbedding scores with the 'Yes' logit alone".into(),
            });
        }
        Engine::Swift => {
            s.insert("objective.negatives".into(), format!("MAX_NEGATIVE_SAMPLES={} (environment), MAX_POSITIVE_SAMPLES=1", c.objective.negatives));
            s.insert("objective.temperature".into(), format!("LISTWISE_RERANKER_TEMPERATURE={} (environment)", c.objective.temperature));
            s.insert("model.max_length".into(), format!("--max_length {}", c.model.max_length));
            s.insert("objective.score".into(), "--loss_type listwise_generative_reranker (positive/negative token logits, swift/plugin/loss.py)".into());
            if c.objective.score == ScoreForm::Probability {
                caveats.push("objective.score = probability (the paper's sigmoid(yes − no)): ms-swift's listwise loss works on logits".into());
            }
        }
    }
    (s, caveats)
}

/// Common arguments of every stage's command.
fn common_args(engine: Engine, c: &TrainConfig) -> String {
    let modules = c.lora.target_modules.join(" ");
    let shared = format!(
        "--lora_rank {} --lora_alpha {} --lora_dropout {} --target_modules {modules} \\\n    --learning_rate {} --weight_decay {} --warmup_ratio {} --max_grad_norm {} \\\n    --per_device_train_batch_size {} --gradient_accumulation_steps {} --seed {} \\\n    --bf16 true --gradient_checkpointing true --logging_steps 10 --save_steps 1000",
        c.lora.rank, c.lora.alpha, c.lora.dropout, c.optim.learning_rate, c.optim.weight_decay, c.optim.warmup_fraction, c.optim.grad_clip, c.optim.batch_groups, c.optim.grad_accumulation, c.optim.seed
    );
    match engine {
        Engine::FlagEmbedding => format!(
            "--model_name_or_path \"$BASE_MODEL\" ${{RAW_PEFT:+--raw_peft \"$RAW_PEFT\"}} --model_type decoder --use_lora true \\\n    --train_group_size {} --max_len {} --query_max_len {} --passage_max_len {} \\\n    --query_instruction_for_rerank 'A: ' --query_instruction_format '{{}}{{}}' \\\n    --passage_instruction_for_rerank 'B: ' --passage_instruction_format '{{}}{{}}' \\\n    ${{DEEPSPEED:+--deepspeed \"$DEEPSPEED\"}} \\\n    {shared}",
            c.objective.negatives + 1,
            c.model.max_length,
            c.model.max_length / 4,
            c.model.max_length,
        ),
        Engine::Swift => format!("--model \"$BASE_MODEL\" --task_type generative_reranker --loss_type listwise_generative_reranker --train_type lora \\\n    --padding_side left --max_length {} ${{DEEPSPEED:+--deepspeed \"$DEEPSPEED\"}} \\\n    {shared}", c.model.max_length),
    }
}

fn launch_script(engine: Engine, c: &TrainConfig, files: &[ExportedFile]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!/usr/bin/env bash");
    let _ = writeln!(s, "# R2R on {} (written by `r2r export training`): EAG stage 1 on the entity-abstracted union, then one", engine.name());
    let _ = writeln!(s, "# expert per domain continuing from it (stage 2), then the baselines. Multi-GPU with NPROC_PER_NODE GPUs;");
    let _ = writeln!(s, "# DEEPSPEED=ds_config.json adds DeepSpeed. BASE_MODEL: a Hugging Face model directory of the backbone.");
    match engine {
        Engine::FlagEmbedding => {
            let _ = writeln!(s, "# RAW_PEFT: a generalist adapter merged into BASE_MODEL before training (the workbench's backbone bundle).");
        }
        Engine::Swift => {
            let _ = writeln!(s, "# A backbone bundle (base + generalist adapter): merge it first (`swift export --adapters ADAPTER --merge_lora true`)");
            let _ = writeln!(s, "# and pass the merged folder as BASE_MODEL.");
        }
    }
    let _ = writeln!(s, "set -euo pipefail\ncd \"$(dirname \"$0\")\"");
    let _ = writeln!(s, ": \"${{BASE_MODEL:?set BASE_MODEL to a Hugging Face model directory}}\"");
    let _ = writeln!(s, "NPROC_PER_NODE=${{NPROC_PER_NODE:-1}}\nOUT=${{OUT:-output}}");
    let args = common_args(engine, c);
    let run = |s: &mut String, data: &str, out: &str, epochs: usize, init: Option<&str>| {
        match engine {
            Engine::FlagEmbedding => {
                let init = init.map(|i| format!(" --from_peft \"$OUT/{i}\"")).unwrap_or_default();
                let _ = writeln!(
                    s,
                    "torchrun --nproc_per_node \"$NPROC_PER_NODE\" -m FlagEmbedding.finetune.reranker.decoder_only.base \\\n    --train_data {data} --output_dir \"$OUT/{out}\" --num_train_epochs {epochs}{init} \\\n    {args}\n"
                );
            }
            Engine::Swift => {
                let init = init.map(|i| format!(" --adapters \"$OUT/{i}/last\"")).unwrap_or_default();
                let _ = writeln!(
                    s,
                    "NPROC_PER_NODE=\"$NPROC_PER_NODE\" MAX_POSITIVE_SAMPLES=1 MAX_NEGATIVE_SAMPLES={} LISTWISE_RERANKER_TEMPERATURE={} \\\nswift sft --dataset {data} --output_dir \"$OUT/{out}\" --num_train_epochs {epochs}{init} \\\n    {args}\n",
                    c.objective.negatives, c.objective.temperature
                );
                let _ = writeln!(s, "ln -sfn \"$(ls -d \"$OUT/{out}\"/*/checkpoint-* | sort -V | tail -n 1)\" \"$OUT/{out}/last\"\n");
            }
        }
    };
    let stage1 = files.iter().find(|f| f.stage == "stage1");
    if let Some(f) = stage1 {
        let _ = writeln!(s, "# EAG stage 1: {} abstracted groups", f.groups);
        run(&mut s, &f.path.display().to_string(), "stage1", c.stage1.epochs, None);
    }
    for f in files.iter().filter(|f| f.stage.starts_with("stage2:")) {
        let domain = &f.stage["stage2:".len()..];
        let _ = writeln!(s, "# Stage 2, expert `{domain}`: {} groups, from the stage-1 adapter", f.groups);
        run(&mut s, &f.path.display().to_string(), &format!("experts/{domain}"), c.stage2.epochs, stage1.map(|_| "stage1"));
    }
    if c.baselines.direct {
        if let Some(f) = files.iter().find(|f| f.stage == "direct") {
            let _ = writeln!(s, "# Baseline: direct fine-tune on the pooled domains ({} groups)", f.groups);
            run(&mut s, &f.path.display().to_string(), "baselines/direct", c.baseline_epochs(), None);
        }
    }
    if c.baselines.single_domain {
        for f in files.iter().filter(|f| f.stage.starts_with("stage2:")) {
            let domain = &f.stage["stage2:".len()..];
            let _ = writeln!(s, "# Baseline: single-domain fine-tune `{domain}` (stage 2's data, no stage 1)");
            run(&mut s, &f.path.display().to_string(), &format!("baselines/single-{domain}"), c.baseline_epochs(), None);
        }
    }
    s
}

/// Writes the export for `config` into `out` (created; existing files of the same names are replaced).
pub fn export_training(config: &TrainConfig, engine: Engine, out: &Path) -> Result<TrainingExport> {
    config.validate()?;
    let by_domain = train_groups(config)?;
    std::fs::create_dir_all(out.join("data")).with_context(|| format!("cannot create {}", out.display()))?;
    let mut files = Vec::new();
    if !config.stage1.skip {
        let union: Vec<QueryGroup> = config.data.domains.iter().flat_map(|d| by_domain[d].iter().cloned()).collect();
        let abstracted = crate::train::eag::abstract_groups(union, config, None)?;
        files.push(write_jsonl(engine, out, "data/stage1.jsonl", "stage1", &abstracted)?);
    }
    for domain in &config.data.domains {
        files.push(write_jsonl(engine, out, &format!("data/stage2-{domain}.jsonl"), &format!("stage2:{domain}"), &by_domain[domain])?);
    }
    if config.baselines.direct {
        let pooled: Vec<QueryGroup> = config.data.domains.iter().flat_map(|d| by_domain[d].iter().cloned()).collect();
        files.push(write_jsonl(engine, out, "data/direct.jsonl", "direct", &pooled)?);
    }
    let (settings, caveats) = translate(engine, config);
    let script = launch_script(engine, config, &files);
    let launch = out.join("launch.sh");
    crate::util::atomic_write(&launch, script.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&launch, std::fs::Permissions::from_mode(0o755)).with_context(|| format!("chmod {}", launch.display()))?;
    }
    let export = TrainingExport { engine, out: out.to_path_buf(), files, settings, caveats };
    crate::util::atomic_write_json(&out.join("manifest.json"), &serde_json::json!({"export": export, "config": config}))?;
    Ok(export)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Candidate;

    fn group(id: &str, rels: &[u32]) -> QueryGroup {
        QueryGroup {
            id: id.into(),
            domain: "legal".into(),
            split: Split::Train,
            query: "what does clause 4 of the lease say".into(),
            query_entities: vec![],
            candidates: rels.iter().enumerate().map(|(i, &r)| Candidate { id: format!("{id}-{i}"), text: format!("passage {i}"), relevance: r, entities: vec![] }).collect(),
            secondary_domain: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn records_follow_each_engines_format_and_skip_groups_without_negatives() {
        let g = group("q1", &[1, 0, 0]);
        let flag = record(Engine::FlagEmbedding, &g).unwrap();
        assert_eq!(flag["query"], "what does clause 4 of the lease say");
        assert_eq!(flag["pos"], serde_json::json!(["passage 0"]));
        assert_eq!(flag["neg"], serde_json::json!(["passage 1", "passage 2"]));
        let swift = record(Engine::Swift, &g).unwrap();
        assert_eq!(swift["messages"][0]["role"], "user");
        assert_eq!(swift["positive_messages"][0][0]["content"], "passage 0");
        assert_eq!(swift["negative_messages"].as_array().unwrap().len(), 2);
        assert!(record(Engine::Swift, &group("q2", &[1, 2])).is_none(), "no negative");
        assert!(record(Engine::FlagEmbedding, &group("q3", &[0, 0])).is_none(), "no positive");
    }

    #[test]
    fn settings_translate_with_caveats_named() {
        let mut c = TrainConfig::default();
        c.objective.temperature = 0.5;
        let (flag, caveats) = translate(Engine::FlagEmbedding, &c);
        assert_eq!(flag["objective.negatives"], format!("--train_group_size {}", c.objective.negatives + 1));
        assert!(caveats.iter().any(|m| m.contains("temperature = 0.5")), "{caveats:?}");
        let (swift, _) = translate(Engine::Swift, &c);
        assert_eq!(swift["objective.temperature"], "LISTWISE_RERANKER_TEMPERATURE=0.5 (environment)");
        assert_eq!(swift["lora.rank"], "--lora_rank 32");
    }
}
