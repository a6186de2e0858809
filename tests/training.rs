//! Training pipeline tests on a tiny backbone (the shared qwen3-tiny fixture, or a seeded random
//! model when ../shared is absent) and a small subset of the sample data: experts learn and the
//! router beats chance, runs are deterministic, a cancelled job stops within a second and resumes
//! to the same adapters, and a diverging loss stops with a clear message keeping the checkpoint.

mod common;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2r::train::checkpoint::load_checkpoint;
use r2r::train::{run_training, spawn_job, JobContext, JobEvent, RunSummary, Stage, TrainConfig};

/// The tests below train for seconds each; run them one at a time so timings mean something.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn tiny_config(model: &Path, out: &Path, stages: &[Stage]) -> TrainConfig {
    let mut c = TrainConfig::load(&common::root().join("assets/configs/tiny.toml")).unwrap();
    c.model.path = model.to_path_buf();
    c.model.max_length = 128;
    c.data.path = common::root().join("sample_data");
    c.data.domains = vec!["legal".into(), "medical".into()];
    c.data.max_train_queries = 12;
    c.data.max_dev_queries = 4;
    c.output.dir = out.to_path_buf();
    c.output.checkpoint_every = 2;
    c.run.stages = stages.to_vec();
    c
}

fn run(config: &TrainConfig) -> anyhow::Result<RunSummary> {
    let (tx, _rx) = crossbeam_channel::unbounded();
    run_training(config, &JobContext::new(tx, Arc::new(AtomicBool::new(false)), None))
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `config` run into `dir` as a background job, cancelled at the medical expert's second checkpoint;
/// returns the config as run.
fn cancelled_in_the_medical_expert(config: &TrainConfig, dir: &Path) -> TrainConfig {
    let mut cut = config.clone();
    cut.output.dir = dir.to_path_buf();
    let job_config = cut.clone();
    let mut job = spawn_job("train", None, move |ctx| run_training(&job_config, ctx));
    let mut checkpoints = 0;
    common::cancel_at(&mut job, Duration::from_secs(60), |event| {
        if matches!(event, JobEvent::Checkpoint(dir) if dir.contains("expert-medical")) {
            checkpoints += 1;
        }
        checkpoints == 2
    });
    cut
}

const WEIGHTS: &str = "adapter_model.safetensors";

#[test]
fn tiny_experts_learn_and_the_router_beats_chance() {
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let model = common::tiny_model(scratch.path());
    let mut config = tiny_config(&model, &scratch.path().join("run"), &[Stage::Experts, Stage::Router]);
    config.stage1.skip = true;
    config.stage2.epochs = 8;
    config.data.max_train_queries = 8;
    config.optim.learning_rate = 3e-3;
    config.optim.warmup_fraction = 0.0;
    config.lora.dropout = 0.0;
    let started = Instant::now();
    let summary = run(&config).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{}", r2r::cli::train::render_summary(&summary));
    assert!(seconds < 60.0, "took {seconds:.1} s");
    assert_eq!(summary.experts.keys().collect::<Vec<_>>(), ["legal", "medical"]);
    for (domain, job) in &summary.experts {
        assert_eq!(job.steps, 16, "{domain}: 8 groups / 4 per step x 8 epochs");
        // The last epoch's mean loss falls clearly below the first's and below a uniform ranking's, ln(1 + k).
        eprintln!("{domain}: epoch losses {:?}", job.epoch_losses);
        let (first, last) = (job.epoch_losses[0], *job.epoch_losses.last().unwrap());
        let uniform = ((1 + config.objective.negatives) as f64).ln();
        assert!(last < 0.8 * first && last < uniform, "{domain}: epoch losses {:?} did not fall", job.epoch_losses);
        assert!(summary.run_dir.join("experts").join(domain).join(WEIGHTS).is_file());
    }
    let router = summary.router.as_ref().unwrap();
    assert_eq!(router.test.queries, 300);
    assert!(router.test.accuracy > 0.75, "router accuracy {:.3} vs chance 0.5", router.test.accuracy);
    assert!(router.test.macro_f1 > 0.7, "macro-F1 {:.3}", router.test.macro_f1);
    let random = router.baselines[&r2r::routing::RouterName::Random].0;
    assert!(router.test.accuracy > random + 0.2, "router {:.3} vs random {random:.3}", router.test.accuracy);
    assert!(summary.run_dir.join("router/router.json").is_file() && summary.run_dir.join("router/report.json").is_file());
    assert!(summary.run_dir.join("features/train.safetensors").is_file());

    // A second run reuses the completed jobs and the cached features, and gives the same report.
    let again = run(&config).unwrap();
    assert_eq!(again.router.as_ref().unwrap().test, router.test);
    assert!(again.experts.values().all(|j| j.resumed_from == j.steps));
}

#[test]
fn same_seed_and_config_give_identical_adapters_and_metrics() {
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let model = common::tiny_model(scratch.path());
    let stages = [Stage::Stage1, Stage::Experts];
    let a = run(&tiny_config(&model, &scratch.path().join("a"), &stages)).unwrap();
    let b = run(&tiny_config(&model, &scratch.path().join("b"), &stages)).unwrap();
    let stage1 = a.stage1.as_ref().unwrap();
    assert!(stage1.kept.is_some(), "stage 1 keeps its best-dev checkpoint");
    assert_eq!(a.stage1, b.stage1.map(|s| r2r::train::JobSummary { seconds: stage1.seconds, ..s }));
    for dir in ["stage1", "experts/legal", "experts/medical"] {
        assert_eq!(file_bytes(&a.run_dir.join(dir).join(WEIGHTS)), file_bytes(&b.run_dir.join(dir).join(WEIGHTS)), "{dir}");
    }
    for (domain, job) in &a.experts {
        let other = &b.experts[domain];
        assert_eq!((&job.dev, job.loss_start, job.loss_end), (&other.dev, other.loss_start, other.loss_end), "{domain}");
    }
    // Stage 2 starts from stage 1: an expert differs from the stage-1 adapter but was not trained from scratch.
    assert_ne!(file_bytes(&a.run_dir.join("stage1").join(WEIGHTS)), file_bytes(&a.run_dir.join("experts/legal").join(WEIGHTS)));
    // Another seed gives other adapters.
    let mut other_seed = tiny_config(&model, &scratch.path().join("c"), &[Stage::Stage1]);
    other_seed.optim.seed = 99;
    let c = run(&other_seed).unwrap();
    assert_ne!(file_bytes(&a.run_dir.join("stage1").join(WEIGHTS)), file_bytes(&c.run_dir.join("stage1").join(WEIGHTS)));
}

#[test]
fn a_cancelled_job_stops_within_a_second_and_resumes_to_the_same_adapters() {
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let model = common::tiny_model(scratch.path());
    let mut config = tiny_config(&model, &scratch.path().join("whole"), &[Stage::Experts]);
    config.stage1.skip = true;
    config.stage2.epochs = 2;
    config.output.checkpoint_every = 1;
    let whole = run(&config).unwrap();

    let interrupted = scratch.path().join("interrupted");
    let mut cut = cancelled_in_the_medical_expert(&config, &interrupted);
    let state = r2r::train::RunDir::new(&interrupted).state_dir("expert:medical");
    let reranker = r2r::train::pipeline::load_reranker(&cut).unwrap();
    let saved = load_checkpoint(&state, reranker.config(), reranker.device()).unwrap().unwrap();
    assert!(saved.progress.step >= 2 && !saved.progress.completed, "step {}", saved.progress.step);

    let resumed = run(&cut).unwrap();
    assert!(resumed.experts["medical"].resumed_from >= 2);
    for domain in ["legal", "medical"] {
        let path = |root: &Path| root.join("experts").join(domain).join(WEIGHTS);
        assert_eq!(file_bytes(&path(&whole.run_dir)), file_bytes(&path(&interrupted)), "{domain}: resumed != uninterrupted");
        assert_eq!(resumed.experts[domain].dev, whole.experts[domain].dev);
    }
    // A changed config does not silently continue the old checkpoints.
    cut.optim.learning_rate *= 2.0;
    let err = format!("{:#}", run(&cut).unwrap_err());
    assert!(err.contains("different config"), "{err}");
}

#[test]
fn a_continued_optimiser_changes_stage_2_resumes_exactly_and_needs_stage_1s_state() {
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let model = common::tiny_model(scratch.path());
    let mut config = tiny_config(&model, &scratch.path().join("whole"), &[Stage::Stage1, Stage::Experts]);
    config.stage2.epochs = 2;
    config.output.checkpoint_every = 1;
    let mut fresh = config.clone();
    fresh.output.dir = scratch.path().join("fresh");
    let fresh = run(&fresh).unwrap();
    config.stage2.continue_optimizer = true;
    let whole = run(&config).unwrap();
    let expert = |root: &Path, domain: &str| file_bytes(&root.join("experts").join(domain).join(WEIGHTS));
    assert_eq!(file_bytes(&whole.run_dir.join("stage1").join(WEIGHTS)), file_bytes(&fresh.run_dir.join("stage1").join(WEIGHTS)));
    for domain in ["legal", "medical"] {
        assert_ne!(expert(&whole.run_dir, domain), expert(&fresh.run_dir, domain), "{domain}: the stage-1 moments changed nothing");
    }

    // Cancelled inside an expert and resumed: the continued step count holds across the resume.
    let interrupted = scratch.path().join("interrupted");
    let cut = cancelled_in_the_medical_expert(&config, &interrupted);
    let resumed = run(&cut).unwrap();
    assert!(resumed.experts["medical"].resumed_from >= 2);
    for domain in ["legal", "medical"] {
        assert_eq!(expert(&whole.run_dir, domain), expert(&interrupted, domain), "{domain}: resumed != uninterrupted");
    }

    // Without stage 1's checkpoint there is nothing to continue: an error naming the field and the directory.
    let state = r2r::train::RunDir::new(&interrupted).state_dir("stage1");
    std::fs::remove_dir_all(&state).unwrap();
    let mut experts_only = cut.clone();
    experts_only.run.stages = vec![Stage::Experts];
    experts_only.output.resume = false;
    let err = format!("{:#}", run(&experts_only).unwrap_err());
    assert!(err.contains("stage2.continue_optimizer") && err.contains(&state.display().to_string()), "{err}");
}

#[test]
fn a_cancel_between_checkpoints_keeps_every_finished_step() {
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let model = common::tiny_model(scratch.path());
    let mut config = tiny_config(&model, &scratch.path().join("whole"), &[Stage::Experts]);
    config.stage1.skip = true;
    config.data.domains = vec!["legal".into()];
    config.stage2.epochs = 2;
    config.output.checkpoint_every = 1000; // no periodic checkpoint before the end
    let whole = run(&config).unwrap();

    let interrupted = scratch.path().join("interrupted");
    let mut cut = config.clone();
    cut.output.dir = interrupted.clone();
    let job_config = cut.clone();
    let mut job = spawn_job("train", None, move |ctx| run_training(&job_config, ctx));
    loop {
        match job.events.recv_timeout(Duration::from_secs(60)).expect("an event") {
            JobEvent::Progress(p) if p.stage.contains("legal") && p.step >= 2 => {
                job.cancel();
                break;
            }
            JobEvent::Finished | JobEvent::Failed(_) => panic!("the job ended before it was cancelled"),
            _ => {}
        }
    }
    assert!(job.join_timeout(Duration::from_secs(5)), "not stopped");
    let state = r2r::train::RunDir::new(&interrupted).state_dir("expert:legal");
    let reranker = r2r::train::pipeline::load_reranker(&cut).unwrap();
    let saved = load_checkpoint(&state, reranker.config(), reranker.device()).unwrap().expect("a checkpoint written at the cancel");
    assert!(saved.progress.step >= 2 && !saved.progress.completed, "step {}", saved.progress.step);
    let resumed = run(&cut).unwrap();
    assert_eq!(resumed.experts["legal"].resumed_from, saved.progress.step);
    let path = |root: &Path| root.join("experts/legal").join(WEIGHTS);
    assert_eq!(file_bytes(&path(&whole.run_dir)), file_bytes(&path(&interrupted)), "resumed != uninterrupted");
}

#[test]
fn a_diverging_loss_stops_the_job_and_keeps_the_last_good_checkpoint() {
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let model = common::tiny_model(scratch.path());
    let mut config = tiny_config(&model, &scratch.path().join("run"), &[Stage::Experts]);
    config.stage1.skip = true;
    config.data.domains = vec!["legal".into()];
    config.stage2.epochs = 3;
    config.optim.learning_rate = 1e30;
    config.optim.warmup_fraction = 0.0;
    config.optim.grad_clip = 0.0;
    config.output.checkpoint_every = 1;
    let err = format!("{:#}", run(&config).unwrap_err());
    assert!(err.contains("became") && err.contains("last good checkpoint"), "{err}");
    let reranker = r2r::train::pipeline::load_reranker(&config).unwrap();
    let state = r2r::train::RunDir::new(&config.output.dir).state_dir("expert:legal");
    let saved = load_checkpoint(&state, reranker.config(), reranker.device()).unwrap().unwrap();
    assert!(saved.progress.losses.iter().all(|l| l.is_finite()), "{:?}", saved.progress.losses);
    assert!(!saved.progress.completed);
}

#[test]
fn bad_configs_are_clear_errors() {
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let model = common::tiny_model(scratch.path());
    let mut config = tiny_config(&model, &scratch.path().join("run"), &[Stage::Experts]);
    config.data.domains = vec!["astrology".into()];
    let err = format!("{:#}", run(&config).unwrap_err());
    assert!(err.contains("astrology") && err.contains("legal"), "{err}");
    let mut config = tiny_config(&model, &scratch.path().join("run2"), &[Stage::Experts]);
    let err = format!("{:#}", run(&config).unwrap_err());
    assert!(err.contains("stage-1") && err.contains("stage1.skip"), "{err}");
    config.model.path = scratch.path().join("nowhere");
    let err = format!("{:#}", run(&config).unwrap_err());
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn every_lora_parameter_gets_a_gradient_through_the_prefix_reuse_path() {
    use r2r::model::{AdapterRun, LoraAdapter, ScoreOptions};
    use r2r::train::loss::{group_scores, info_nce, ScoreForm};
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let config = tiny_config(&common::tiny_model(scratch.path()), scratch.path(), &[Stage::Experts]);
    let reranker = r2r::train::pipeline::load_reranker(&config).unwrap();
    let adapter = LoraAdapter::new_random(config.lora_config(), reranker.config(), reranker.device(), 3).unwrap();
    // B starts at zero (so A's gradient is zero at first): give B values so both directions are visible.
    for (i, var) in adapter.vars().iter().enumerate() {
        if i % 2 == 1 {
            var.set(&(var.as_tensor().ones_like().unwrap() * 0.01).unwrap()).unwrap();
        }
    }
    let query = reranker.prompt.encode_pair(None, "what is the fine", "a fine of $5").unwrap();
    let other = reranker.prompt.encode_pair(None, "what is the fine", "the court sat in June").unwrap();
    let candidates: Vec<&[u32]> = vec![&query.candidate, &other.candidate];
    let rng = std::cell::RefCell::new(r2r::util::seeded_rng(1, 1));
    let (logits, _) = reranker.group_logits(&query.shared, &candidates, &AdapterRun::train(&adapter, &rng), &ScoreOptions::default()).unwrap();
    let loss = info_nce(&group_scores(&logits.unsqueeze(0).unwrap(), ScoreForm::Logit).unwrap(), 1.0).unwrap();
    let grads = loss.backward().unwrap();
    let vars = adapter.vars();
    let missing: Vec<usize> = (0..vars.len()).filter(|&i| grads.get(vars[i].as_tensor()).is_none()).collect();
    assert!(missing.is_empty(), "variables without a gradient: {missing:?} of {}", vars.len());
    let zero: Vec<usize> = (0..vars.len())
        .filter(|&i| grads.get(vars[i].as_tensor()).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() == 0.0)
        .collect();
    assert!(zero.is_empty(), "variables with an all-zero gradient: {zero:?}");
}
