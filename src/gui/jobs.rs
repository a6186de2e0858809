//! The UI's view of background work. Every job runs through the engine's
//! [`spawn_job`](crate::train::jobs::spawn_job) (own thread, events over a
//! crossbeam channel, cooperative cancellation, panics caught); each event wakes
//! the UI (`request_repaint`), so nothing polls on a timer or blocks a frame.
//! This module only keeps the bookkeeping the panels show (title, status,
//! progress, log) and hands each job's typed result back to the app.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::train::jobs::{spawn_job, Cancelled, JobContext, JobEvent, JobHandle, Progress};

pub type JobId = u64;

/// What a finished job hands back to the app.
pub enum JobOutput {
    Dataset(Arc<crate::gui::state::LoadedDataset>),
    Rankings(Arc<crate::gui::systems::SystemRun>),
    Significance(Arc<crate::gui::systems::SignificanceTable>),
    Training(Arc<crate::train::RunSummary>),
    Routing(Arc<crate::gui::routing_run::RoutingRun>),
    /// A per-split system's run of one split.
    SplitRanking(crate::data::Split, Arc<crate::gui::systems::SystemRun>),
    Experiment(Arc<crate::gui::experiment_runs::ExperimentRuns>),
    ExpertComparison(Arc<crate::gui::routing_run::ExpertComparison>),
    ExperimentRouting(Arc<crate::experiment::open::ExperimentRouting>),
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed(String),
    Cancelled,
}

impl JobStatus {
    pub fn is_running(&self) -> bool {
        matches!(self, JobStatus::Running)
    }
}

/// One job as the UI sees it.
pub struct JobInfo {
    pub id: JobId,
    pub title: String,
    pub status: JobStatus,
    /// The latest progress report, when the job sent one.
    pub progress: Option<Progress>,
    /// Every progress report with a finite loss (training jobs), in order: the loss and learning-rate curves.
    pub history: Vec<Progress>,
    pub log: Vec<String>,
    pub started: Instant,
    pub finished: Option<Instant>,
    /// Each stage the job reported progress for, in the order they started (for whole-job progress).
    pub stages: Vec<crate::train::plan::StageSeen>,
}

impl JobInfo {
    pub fn elapsed(&self) -> Duration {
        self.finished.unwrap_or_else(Instant::now) - self.started
    }

    /// Fraction done in 0..=1, when the job reported steps.
    pub fn fraction(&self) -> Option<f32> {
        if self.status == JobStatus::Succeeded {
            return Some(1.0);
        }
        let p = self.progress.as_ref()?;
        (p.total_steps > 0).then(|| (p.step as f32 / p.total_steps as f32).clamp(0.0, 1.0))
    }

    /// Progress over the whole job when it follows `plan` (see [`crate::train::plan`]).
    pub fn whole_progress(&self, plan: &[String]) -> crate::train::plan::WholeProgress {
        let mut progress = crate::train::plan::whole_progress(plan, &self.stages, self.elapsed().as_secs_f64());
        if self.status == JobStatus::Succeeded {
            progress.fraction = 1.0;
            progress.eta_seconds = Some(0.0);
        }
        progress
    }

    /// What the job is doing now, e.g. `rank: 120 / 800`.
    pub fn message(&self) -> String {
        self.progress.as_ref().map_or_else(String::new, |p| format!("{}: {} / {}", p.stage, p.step, p.total_steps))
    }

    /// Remaining time: the job's own estimate when it gives one, else
    /// extrapolated from the progress so far.
    pub fn eta(&self) -> Option<Duration> {
        if !self.status.is_running() {
            return None;
        }
        if let Some(p) = &self.progress {
            if p.eta_seconds.is_finite() && p.eta_seconds > 0.0 {
                return Some(Duration::from_secs_f64(p.eta_seconds));
            }
        }
        let done = self.fraction()?;
        (done > 0.01).then(|| self.elapsed().mul_f32((1.0 - done) / done))
    }
}

/// A duration for people: `45 s`, `3 min 20 s`, `1 h 05 min`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs_f64().ceil() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

pub use crate::train::jobs::report_steps;


/// Where a job body leaves its typed result (the engine's final event carries
/// only a summary string).
struct Running {
    id: JobId,
    handle: JobHandle<JobOutput>,
}

/// All jobs of the session, finished ones included (the job list shows them).
pub struct Jobs {
    next_id: JobId,
    jobs: Vec<JobInfo>,
    running: Vec<Running>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Jobs {
    /// `wake` wakes the UI; the app passes `ctx.request_repaint`.
    pub fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        Jobs { next_id: 1, jobs: Vec::new(), running: Vec::new(), wake }
    }

    /// Runs `work` through the engine's job runner and returns the job's id at once.
    pub fn spawn(
        &mut self,
        title: impl Into<String>,
        work: impl FnOnce(&JobContext) -> anyhow::Result<JobOutput> + Send + 'static,
    ) -> JobId {
        let id = self.next_id;
        self.next_id += 1;
        let title = title.into();
        let handle = spawn_job(title.clone(), Some(self.wake.clone()), work);
        self.jobs.push(JobInfo { id, title, status: JobStatus::Running, progress: None, history: Vec::new(), log: Vec::new(), started: Instant::now(), finished: None, stages: Vec::new() });
        self.running.push(Running { id, handle });
        id
    }

    /// Asks a running job to stop; it ends at its next cancellation check.
    pub fn cancel(&self, id: JobId) {
        if let Some(running) = self.running.iter().find(|r| r.id == id) {
            running.handle.cancel();
        }
    }

    pub fn get(&self, id: JobId) -> Option<&JobInfo> {
        self.jobs.iter().find(|j| j.id == id)
    }

    pub fn all(&self) -> &[JobInfo] {
        &self.jobs
    }

    pub fn any_running(&self) -> bool {
        self.jobs.iter().any(|j| j.status.is_running())
    }

    /// Applies the events that arrived since the last frame and returns the
    /// results of the jobs that finished, with their ids. Never blocks.
    pub fn poll(&mut self) -> Vec<(JobId, anyhow::Result<JobOutput>)> {
        let mut finished = Vec::new();
        let jobs = &mut self.jobs;
        self.running.retain(|running| {
            let Some(info) = jobs.iter_mut().find(|j| j.id == running.id) else { return false };
            for event in running.handle.events.try_iter() {
                let status = match event {
                    JobEvent::Log(line) => {
                        info.log.push(line);
                        continue;
                    }
                    JobEvent::Progress(progress) => {
                        let at = info.started.elapsed().as_secs_f64();
                        match info.stages.last_mut().filter(|s| s.name == progress.stage) {
                            Some(stage) => {
                                stage.step = progress.step;
                                stage.total_steps = progress.total_steps;
                                stage.last_seconds = at;
                            }
                            None => info.stages.push(crate::train::plan::StageSeen {
                                name: progress.stage.clone(),
                                step: progress.step,
                                total_steps: progress.total_steps,
                                first_seconds: at,
                                last_seconds: at,
                            }),
                        }
                        if progress.loss.is_finite() {
                            info.history.push(progress.clone());
                        }
                        info.progress = Some(progress);
                        continue;
                    }
                    JobEvent::DevMetrics { stage, step, metrics } => {
                        let values: Vec<String> = metrics.iter().map(|(name, value)| format!("{name} {value:.4}")).collect();
                        info.log.push(format!("{stage} step {step}: {}", values.join(", ")));
                        continue;
                    }
                    JobEvent::Checkpoint(dir) => {
                        info.log.push(format!("checkpoint written: {dir}"));
                        continue;
                    }
                    JobEvent::Finished => JobStatus::Succeeded,
                    JobEvent::Failed(message) => JobStatus::Failed(message),
                    JobEvent::Cancelled => JobStatus::Cancelled,
                };
                let result = match (&status, running.handle.take_result()) {
                    (JobStatus::Cancelled, _) => Err(Cancelled.into()),
                    (_, Some(result)) => result,
                    (JobStatus::Failed(message), None) => Err(anyhow::anyhow!("{message}")), // e.g. a panic
                    (_, None) => Err(anyhow::anyhow!("the job finished without a result")),
                };
                info.status = status;
                info.finished = Some(Instant::now());
                finished.push((running.id, result));
                return false;
            }
            true
        });
        finished
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn wait_for(jobs: &mut Jobs, id: JobId) -> anyhow::Result<JobOutput> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for (done, result) in jobs.poll() {
                if done == id {
                    return result;
                }
            }
            assert!(Instant::now() < deadline, "job did not finish");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn failures_progress_logs_panics_and_cancellation_are_reported() {
        let wakes = Arc::new(AtomicUsize::new(0));
        let counter = wakes.clone();
        let mut jobs = Jobs::new(Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        let failing = jobs.spawn("fails", |job| {
            report_steps(job, "read", 1, 2);
            job.log("about to fail");
            Err(anyhow::Error::new(std::io::Error::other("broken input")))
        });
        let err = wait_for(&mut jobs, failing).err().expect("the job failed");
        assert!(err.downcast_ref::<std::io::Error>().is_some(), "the app gets the typed error back");
        let info = jobs.get(failing).unwrap();
        assert_eq!(info.status, JobStatus::Failed("broken input".into()));
        assert_eq!(info.log, vec!["about to fail".to_string()]);
        assert_eq!(info.message(), "read: 1 / 2");
        assert_eq!(info.fraction(), Some(0.5));
        assert!(wakes.load(Ordering::Relaxed) >= 3, "every event wakes the UI");

        let panicking = jobs.spawn("panics", |_| panic!("boom"));
        assert!(wait_for(&mut jobs, panicking).is_err());
        assert!(matches!(&jobs.get(panicking).unwrap().status, JobStatus::Failed(m) if m.contains("boom")));

        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let looping = jobs.spawn("loops until cancelled", move |job| {
            started_tx.send(()).unwrap();
            loop {
                job.check_cancelled()?;
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        started_rx.recv().unwrap();
        assert!(jobs.any_running());
        jobs.cancel(looping);
        assert!(wait_for(&mut jobs, looping).is_err());
        assert_eq!(jobs.get(looping).unwrap().status, JobStatus::Cancelled);
        assert!(!jobs.any_running());
    }
}
