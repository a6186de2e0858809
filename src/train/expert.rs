//! The LoRA training loop of one job (EAG stage 1, one stage-2 expert, or a baseline).
//!
//! The backbone stays frozen; only the adapter's A/B matrices are trained. Each optimiser step
//! takes `batch_groups × grad_accumulation` draws of the epoch plan (1 positive + k negatives per
//! group), runs each micro-batch of `batch_groups` groups through the reranker's prefix-reuse path
//! with LoRA dropout (masks seeded by (seed, job, step)), computes InfoNCE on the chosen score form,
//! accumulates gradients, clips their global norm and applies AdamW at the scheduled learning rate.
//! A non-finite loss or gradient stops the job with a message; the last checkpoint stays as it was.
//! Dev metrics are measured every `eval_every` steps (or per epoch) and the best adapter is kept.

use std::cell::RefCell;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Tensor, Var};
use candle_nn::ParamsAdamW;
use serde::{Deserialize, Serialize};

use super::checkpoint::{load_checkpoint, publish_adapter, save_checkpoint, Progress, RunDir};
use super::config::{SelectMetric, TrainConfig};
use super::dev_eval::{evaluate, DevPoint};
use super::groups::{epoch_plan, Draw, EncodedGroup};
use super::jobs::{JobContext, JobEvent};
use super::loss::{group_scores, info_nce, LrSchedule};
use super::optim::{clip_grad_norm, AdamW, GradAccumulator};
use crate::model::{AdapterRun, LoraAdapter, Reranker, ScoreOptions};
use crate::util::{seeded_rng, sha256_hex, stable_hash};

/// What one job trains on and how it picks its result.
pub struct JobSpec<'a> {
    /// `stage1`, `expert:<domain>`, `baseline:direct`, `baseline:single-<domain>`.
    pub job: String,
    pub train: &'a [EncodedGroup],
    pub dev: &'a [EncodedGroup],
    /// Start from a copy of this adapter (stage 2 from stage 1), else a fresh PEFT-initialised one.
    pub init: Option<&'a LoraAdapter>,
    /// Start AdamW from this state (stage 2 continuing stage 1's optimiser), else from zero moments.
    pub init_optimizer: Option<&'a OptimizerState>,
    pub epochs: usize,
    /// Peak learning rate (`optim.learning_rate`, or the stage's own: [`TrainConfig::stage_learning_rate`]).
    pub learning_rate: f64,
    pub eval_every: usize,
    pub select_best: bool,
    pub select_metric: SelectMetric,
}

/// A finished job's AdamW state, for a job that continues its optimisation.
pub struct OptimizerState {
    /// `m.*` / `v.*` as [`AdamW::state_tensors`] names them.
    pub moments: std::collections::BTreeMap<String, Tensor>,
    /// The optimiser steps taken (the bias corrections continue from here).
    pub steps: usize,
    /// The fingerprint of the job that wrote it (goes into the continuing job's fingerprint).
    pub job_fingerprint: String,
}

impl OptimizerState {
    /// The final state of the completed job checkpointed in `state_dir`.
    pub fn of_completed_job(state_dir: &std::path::Path, reranker: &Reranker) -> Result<Self> {
        let Some(ckpt) = load_checkpoint(state_dir, reranker.config(), reranker.device())? else {
            bail!("{} holds no checkpoint, so there is no optimiser state to continue", state_dir.display());
        };
        if !ckpt.progress.completed {
            bail!("{}: the job stopped at step {}/{}; finish it before continuing its optimiser", state_dir.display(), ckpt.progress.step, ckpt.progress.total_steps);
        }
        Ok(OptimizerState { moments: ckpt.moments, steps: ckpt.progress.step, job_fingerprint: ckpt.progress.fingerprint })
    }
}

/// What a job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    pub job: String,
    pub steps: usize,
    pub examples: usize,
    /// Mean loss of the first and the last 10 % of the steps (at least one step each).
    pub loss_start: f64,
    pub loss_end: f64,
    /// Mean loss of each epoch.
    pub epoch_losses: Vec<f64>,
    pub dev: Vec<DevPoint>,
    /// The dev point of the returned adapter, when selected on dev.
    pub kept: Option<DevPoint>,
    pub seconds: f64,
    /// Step this session started from (0 = fresh).
    pub resumed_from: usize,
    /// The loss of every step (the Training panel's curves of a finished run; empty in runs
    /// written before this field existed).
    #[serde(default)]
    pub losses: Vec<f64>,
}

/// A deep copy of an adapter (fresh `Var`s; `Var::clone` would share storage).
pub fn copy_adapter(adapter: &LoraAdapter) -> Result<LoraAdapter> {
    let mut out = adapter.clone();
    for modules in out.layers.iter_mut() {
        for pair in modules.values_mut() {
            pair.a = Var::from_tensor(&pair.a.as_tensor().copy()?)?;
            pair.b = Var::from_tensor(&pair.b.as_tensor().copy()?)?;
        }
    }
    Ok(out)
}

/// SHA-256 over an adapter's values (for fingerprints).
pub fn adapter_fingerprint(adapter: &LoraAdapter) -> Result<String> {
    let mut bytes = Vec::new();
    for var in adapter.vars() {
        for v in var.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()? {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(sha256_hex(&bytes))
}

fn groups_fingerprint(groups: &[EncodedGroup]) -> String {
    let text = serde_json::to_string(&groups.iter().map(|g| (&g.id, &g.shared, &g.candidates, &g.relevance)).collect::<Vec<_>>()).unwrap_or_default();
    sha256_hex(text.as_bytes())
}

/// Trains LoRA jobs on one backbone, writing checkpoints into a run directory.
pub struct Trainer<'a> {
    pub reranker: &'a Reranker,
    pub config: &'a TrainConfig,
    pub run: &'a RunDir,
    pub ctx: &'a JobContext,
}

impl Trainer<'_> {
    fn base_name(&self) -> String {
        self.reranker.model_dir.display().to_string()
    }

    fn job_fingerprint(&self, spec: &JobSpec, init: &Option<String>) -> String {
        let c = self.config;
        let mut parts = serde_json::json!({
            "job": spec.job, "lora": c.lora, "objective": c.objective, "optim": c.optim, "epochs": spec.epochs,
            "eval_every": spec.eval_every, "select_best": spec.select_best, "select_metric": spec.select_metric,
            "train": groups_fingerprint(spec.train), "dev": groups_fingerprint(spec.dev), "init": init,
        });
        // A job at `optim.learning_rate` keeps the fingerprint it had before stages had their own rates.
        if spec.learning_rate != c.optim.learning_rate {
            parts["learning_rate"] = serde_json::json!(spec.learning_rate);
        }
        if let Some(state) = spec.init_optimizer {
            parts["init_optimizer"] = serde_json::json!({ "job": state.job_fingerprint, "steps": state.steps });
        }
        sha256_hex(parts.to_string().as_bytes())
    }

    /// Runs (or resumes, or skips when already completed) one job; returns its adapter and summary.
    pub fn train(&self, spec: &JobSpec) -> Result<(LoraAdapter, JobSummary)> {
        let (c, ctx, job) = (self.config, self.ctx, spec.job.as_str());
        let k = c.objective.negatives;
        let per_step = c.optim.batch_groups * c.optim.grad_accumulation;
        let plan_len = epoch_plan(spec.train, k, c.objective.hard_negatives, c.optim.seed, job, 0).len();
        if plan_len == 0 {
            bail!("{job}: none of the {} training groups has both a positive and a lower-relevance candidate", spec.train.len());
        }
        let steps_per_epoch = plan_len.div_ceil(per_step);
        let total = spec
            .epochs
            .checked_mul(steps_per_epoch)
            .with_context(|| format!("{job}: {} epochs of {steps_per_epoch} steps overflow the step count", spec.epochs))?;
        if total == 0 {
            bail!("{job}: zero epochs");
        }
        let schedule = LrSchedule {
            peak: spec.learning_rate,
            warmup_steps: (c.optim.warmup_fraction * total as f64).round() as usize,
            total_steps: total,
            final_fraction: c.optim.final_lr_fraction,
        };
        let init_fp = spec.init.map(adapter_fingerprint).transpose()?;
        let fingerprint = self.job_fingerprint(spec, &init_fp);
        let state_dir = self.run.state_dir(job);
        let best_dir = self.run.best_dir(job);
        let model_config = self.reranker.config();
        let device = self.reranker.device();

        // Start fresh, or from the last checkpoint.
        let mut progress = Progress { job: job.into(), step: 0, total_steps: total, losses: vec![], dev: vec![], best: None, fingerprint: fingerprint.clone(), completed: false, seconds: 0.0 };
        let mut resumed = None;
        if c.output.resume {
            if let Some(ckpt) = load_checkpoint(&state_dir, model_config, device)? {
                if ckpt.progress.fingerprint != fingerprint {
                    bail!(
                        "{}: this checkpoint was written for a different config, data or initial adapter; \
                         use another output directory or start afresh (`--fresh` / output.resume = false)",
                        state_dir.display()
                    );
                }
                progress = ckpt.progress;
                resumed = Some((ckpt.adapter, ckpt.moments));
            }
        }
        let resumed_from = progress.step;
        let (adapter, moments) = match resumed {
            Some((adapter, moments)) => (adapter, Some(moments)),
            None => {
                let adapter = match spec.init {
                    Some(init) => copy_adapter(init)?,
                    None => LoraAdapter::new_random(c.lora_config(), model_config, device, c.optim.seed ^ stable_hash(job))?,
                };
                (adapter, None)
            }
        };
        let vars = adapter.vars();
        let params = ParamsAdamW { lr: spec.learning_rate, weight_decay: c.optim.weight_decay, ..Default::default() };
        let mut optimizer = AdamW::new(vars.clone(), params)?;
        // A continued optimiser counts its steps from the state it continues.
        let steps_before = spec.init_optimizer.map_or(0, |state| state.steps);
        match (&moments, spec.init_optimizer) {
            (Some(moments), _) => optimizer.load_state(moments, steps_before + progress.step).with_context(|| format!("checkpoint {}", state_dir.display()))?,
            (None, Some(state)) => optimizer.load_state(&state.moments, state.steps).with_context(|| format!("{job}: the optimiser state it continues"))?,
            (None, None) => {}
        }
        if progress.completed {
            ctx.log(format!("{job}: already completed in {} (step {total}), reusing it", state_dir.display()));
        } else if resumed_from > 0 {
            ctx.log(format!("{job}: resuming from the checkpoint at step {resumed_from}/{total}"));
        } else {
            ctx.log(format!("{job}: {plan_len} groups x {} epochs = {total} steps of {per_step} groups", spec.epochs));
        }

        let started = Instant::now();
        let seconds_before = progress.seconds;
        let mut plan: Option<(usize, Vec<Draw>)> = None;
        let options = ScoreOptions::default();
        // A cancel (the user, or a time limit) keeps every finished step: the state is checkpointed first.
        let mut saved_step = resumed_from;
        macro_rules! stop_if_cancelled {
            () => {
                if let Err(cancelled) = ctx.check_cancelled() {
                    if progress.step > saved_step {
                        save_checkpoint(&state_dir, &adapter, &optimizer, &progress, &self.base_name())?;
                        ctx.log(format!("{job}: cancelled; checkpoint at step {}/{total} in {}", progress.step, state_dir.display()));
                    }
                    return Err(cancelled);
                }
            };
        }
        while progress.step < total && !progress.completed {
            stop_if_cancelled!();
            let step = progress.step;
            let epoch = step / steps_per_epoch;
            if plan.as_ref().is_none_or(|(e, _)| *e != epoch) {
                plan = Some((epoch, epoch_plan(spec.train, k, c.objective.hard_negatives, c.optim.seed, job, epoch)));
            }
            let draws = &plan.as_ref().expect("plan set").1;
            let start = (step % steps_per_epoch) * per_step;
            let step_draws = &draws[start..(start + per_step).min(draws.len())];
            let lr = schedule.at(step);
            optimizer.set_learning_rate(lr);
            let dropout = RefCell::new(seeded_rng(c.optim.seed, stable_hash(&format!("{job}/dropout/{step}"))));
            let run = AdapterRun::train(&adapter, &dropout);
            let mut accumulator = GradAccumulator::new(vars.len());
            let mut step_loss = 0.0;
            for micro in step_draws.chunks(c.optim.batch_groups) {
                let mut rows = Vec::with_capacity(micro.len());
                for draw in micro {
                    stop_if_cancelled!();
                    let group = &spec.train[draw.group];
                    let candidates: Vec<&[u32]> = draw.candidates().into_iter().map(|i| group.candidates[i].as_slice()).collect();
                    rows.push(self.reranker.group_logits(&group.shared, &candidates, &run, &options)?.0);
                }
                let scores = group_scores(&Tensor::stack(&rows, 0)?, c.objective.score)?;
                let loss = info_nce(&scores, c.objective.temperature)?;
                let value = f64::from(loss.to_scalar::<f32>()?);
                if !value.is_finite() {
                    bail!(non_finite(job, step, "loss", value, &progress, &state_dir));
                }
                let weight = micro.len() as f64 / step_draws.len() as f64;
                step_loss += value * weight;
                accumulator.add(&vars, &(loss * weight)?.backward()?)?;
            }
            let mut grads = accumulator.take(&vars)?;
            let norm = clip_grad_norm(&mut grads, c.optim.grad_clip)?;
            if !norm.is_finite() {
                bail!(non_finite(job, step, "gradient norm", norm, &progress, &state_dir));
            }
            optimizer.step(&grads)?;
            progress.step += 1;
            progress.losses.push(step_loss);
            let done = progress.step;
            let elapsed = started.elapsed().as_secs_f64();
            progress.seconds = seconds_before + elapsed;
            let examples_done = (done - resumed_from) * per_step;
            let rate = examples_done as f64 / elapsed.max(1e-9);
            ctx.send(JobEvent::Progress(super::jobs::Progress {
                stage: job.into(),
                step: done,
                total_steps: total,
                loss: step_loss,
                learning_rate: lr,
                examples_per_second: rate,
                eta_seconds: elapsed / (done - resumed_from) as f64 * (total - done) as f64,
            }));

            let end_of_epoch = done % steps_per_epoch == 0;
            let eval_due = !spec.dev.is_empty() && (if spec.eval_every > 0 { done % spec.eval_every == 0 || done == total } else { end_of_epoch });
            if eval_due {
                let point = evaluate(self.reranker, Some(&adapter), spec.dev, done, ctx)?;
                ctx.send(JobEvent::DevMetrics {
                    stage: job.into(),
                    step: done,
                    metrics: vec![("precision@5".into(), point.precision_at_5), ("ndcg@10".into(), point.ndcg_at_10)],
                });
                progress.dev.push(point);
                let better = progress.best.is_none_or(|b| point.metric(spec.select_metric) > b.metric(spec.select_metric));
                if spec.select_best && better {
                    publish_adapter(&best_dir, &adapter, &self.base_name())?;
                    progress.best = Some(point);
                }
            }
            if done == total {
                progress.completed = true;
            }
            if done % c.output.checkpoint_every == 0 || progress.completed {
                save_checkpoint(&state_dir, &adapter, &optimizer, &progress, &self.base_name())?;
                saved_step = progress.step;
                ctx.send(JobEvent::Checkpoint(state_dir.display().to_string()));
            }
        }

        let (result, kept) = match progress.best {
            Some(best) if spec.select_best => {
                let adapter = super::checkpoint::load_published_adapter(&best_dir, model_config, device)
                    .with_context(|| format!("{job}: loading the best-dev adapter"))?;
                (adapter, Some(best))
            }
            _ => (adapter, None),
        };
        let tenth = (progress.losses.len() / 10).max(1);
        let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
        let summary = JobSummary {
            job: job.into(),
            steps: progress.step,
            examples: progress.step * per_step,
            loss_start: mean(&progress.losses[..tenth.min(progress.losses.len())]),
            loss_end: mean(&progress.losses[progress.losses.len().saturating_sub(tenth)..]),
            epoch_losses: progress.losses.chunks(steps_per_epoch).map(mean).collect(),
            dev: progress.dev.clone(),
            kept,
            seconds: progress.seconds,
            resumed_from,
            losses: progress.losses.clone(),
        };
        Ok((result, summary))
    }
}

fn non_finite(job: &str, step: usize, what: &str, value: f64, progress: &Progress, state_dir: &std::path::Path) -> String {
    let kept = if state_dir.join(super::checkpoint::PROGRESS_FILE).is_file() {
        format!("the last good checkpoint in {} is kept", state_dir.display())
    } else {
        "no checkpoint had been written yet".to_string()
    };
    format!(
        "{job}: the {what} became {value} at step {} (last finite loss {:?}); training stopped and {kept}. \
         Lower the learning rate (optim.learning_rate, or the stage's own stage1/stage2.learning_rate), keep optim.grad_clip > 0, or use objective.score = \"probability\"",
        step + 1,
        progress.losses.last()
    )
}
