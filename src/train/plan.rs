//! Whole-run progress of a training job: the stages a config will report (in
//! order, by their progress names: `stage1`, `expert:<d>`, `baseline:<name>`,
//! `router`) and, from what each stage reported so far, stage k of n, the
//! overall fraction and an ETA from measured per-stage rates. No UI code.

use super::{Stage, TrainConfig};

/// The progress names of the stages `config` runs, in pipeline order.
pub fn planned_stages(config: &TrainConfig) -> Vec<String> {
    let mut stages = config.run.stages.clone();
    stages.sort();
    stages.dedup();
    let mut names = Vec::new();
    for stage in stages {
        match stage {
            Stage::Stage1 if config.stage1.skip => {}
            Stage::Stage1 => names.push("stage1".to_string()),
            Stage::Experts => names.extend(config.data.domains.iter().map(|d| format!("expert:{d}"))),
            Stage::Baselines => {
                if config.baselines.direct {
                    names.push("baseline:direct".into());
                }
                if config.baselines.single_domain {
                    names.extend(config.data.domains.iter().map(|d| format!("baseline:single-{d}")));
                }
            }
            Stage::Router => names.push("router".into()),
        }
    }
    names
}

/// What a stage reported so far: its latest step of its total, and the seconds
/// since the job started at its first and at its latest report.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSeen {
    pub name: String,
    pub step: usize,
    pub total_steps: usize,
    pub first_seconds: f64,
    pub last_seconds: f64,
}

/// The whole job's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct WholeProgress {
    /// 1-based index of the current stage, and the number of stages.
    pub stage: usize,
    pub stages: usize,
    pub current: Option<String>,
    /// 0..=1 over the whole job, weighted by the stages' (estimated) durations.
    pub fraction: f64,
    /// Seconds left; None until some stage has measurable progress.
    pub eta_seconds: Option<f64>,
}

/// The kind of a stage name (`expert:legal` → `expert`).
fn kind(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

/// Whole-job progress from the `plan` and the stages `seen` (in the order they
/// started), `now_seconds` after the job started. A stage that a later stage
/// followed counts as done. A stage's duration is measured (finished), or its
/// elapsed time over its fraction (running); a stage not started yet is assumed
/// to take as long as the measured stages of its kind, else of any kind.
pub fn whole_progress(plan: &[String], seen: &[StageSeen], now_seconds: f64) -> WholeProgress {
    let n = plan.len().max(seen.len());
    let position = |name: &str| plan.iter().position(|p| p == name);
    let current_index = seen.last().and_then(|s| position(&s.name));
    // (fraction done, estimated duration) per planned stage.
    let mut stages: Vec<(f64, Option<f64>)> = vec![(0.0, None); plan.len()];
    for (i, s) in seen.iter().enumerate() {
        let Some(p) = position(&s.name) else { continue };
        let finished = i + 1 < seen.len();
        let end = if finished { seen[i + 1].first_seconds } else { now_seconds };
        let elapsed = (end - s.first_seconds).max(0.0);
        let fraction = if finished { 1.0 } else if s.total_steps == 0 { 0.0 } else { (s.step as f64 / s.total_steps as f64).clamp(0.0, 1.0) };
        let duration = if finished { Some(elapsed) } else { (fraction > 0.0).then(|| elapsed / fraction) };
        stages[p] = (fraction, duration);
    }
    let measured: Vec<(&str, f64)> = plan.iter().zip(&stages).filter_map(|(name, (_, d))| d.map(|d| (kind(name), d))).collect();
    let mean = |values: Vec<f64>| (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    let any = mean(measured.iter().map(|(_, d)| *d).collect());
    let estimates: Vec<Option<f64>> = plan
        .iter()
        .zip(&stages)
        .map(|(name, (_, d))| d.or_else(|| mean(measured.iter().filter(|(k, _)| *k == kind(name)).map(|(_, d)| *d).collect()).or(any)))
        .collect();
    let (fraction, eta_seconds) = if estimates.iter().all(Option::is_some) && !plan.is_empty() {
        let total: f64 = estimates.iter().flatten().sum();
        let done: f64 = stages.iter().zip(&estimates).map(|((f, _), e)| f * e.unwrap_or(0.0)).sum();
        let fraction = if total > 0.0 { done / total } else { 0.0 };
        (fraction, Some((total - done).max(0.0)))
    } else {
        let done: f64 = stages.iter().map(|(f, _)| f).sum();
        (if plan.is_empty() { 0.0 } else { done / plan.len() as f64 }, None)
    };
    WholeProgress { stage: current_index.map_or(0, |i| i + 1), stages: n, current: seen.last().map(|s| s.name.clone()), fraction, eta_seconds }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, step: usize, total: usize, first: f64, last: f64) -> StageSeen {
        StageSeen { name: name.into(), step, total_steps: total, first_seconds: first, last_seconds: last }
    }

    #[test]
    fn plans_follow_the_config_and_progress_spans_the_whole_job() {
        let mut config = TrainConfig::default();
        config.data.domains = vec!["legal".into(), "medical".into()];
        config.run.stages = vec![Stage::Router, Stage::Experts, Stage::Stage1];
        let plan = planned_stages(&config);
        assert_eq!(plan, ["stage1", "expert:legal", "expert:medical", "router"]);
        config.stage1.skip = true;
        assert_eq!(planned_stages(&config)[0], "expert:legal");

        // Stage 1 took 40 s; expert:legal is half done after 10 s more.
        let progress = whole_progress(&plan, &[seen("stage1", 100, 100, 0.0, 40.0), seen("expert:legal", 5, 10, 40.0, 50.0)], 50.0);
        assert_eq!((progress.stage, progress.stages), (2, 4));
        // Estimates: stage1 40, expert:legal 20, expert:medical 20 (same kind), router 30 (mean of the measured ones).
        let total = 40.0 + 20.0 + 20.0 + 30.0;
        assert!((progress.fraction - 50.0 / total).abs() < 1e-9, "{progress:?}");
        assert!((progress.eta_seconds.unwrap() - (total - 50.0)).abs() < 1e-9);
        // "100 %" of one stage is not the end of the job.
        let after_first = whole_progress(&plan, &[seen("stage1", 100, 100, 0.0, 40.0)], 40.0);
        assert!(after_first.fraction < 0.5 && after_first.eta_seconds.unwrap() > 0.0, "{after_first:?}");
        // Nothing measurable yet: no ETA.
        assert_eq!(whole_progress(&plan, &[seen("stage1", 0, 100, 0.0, 0.0)], 1.0).eta_seconds, None);
    }
}
