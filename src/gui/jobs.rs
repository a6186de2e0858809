//! Background work for the app: every long task runs on its own thread and talks
//! to the UI over a crossbeam channel. Each send wakes the UI (`request_repaint`),
//! so nothing ever polls or blocks a frame. Jobs report progress, log lines and a
//! final result, and can be cancelled cooperatively.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

pub type JobId = u64;

/// What a finished job hands back to the app.
pub enum JobOutput {
    Dataset(Arc<crate::gui::state::LoadedDataset>),
    Rankings(Arc<crate::gui::systems::SystemRun>),
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
    /// Fraction done in 0..=1, when the job knows it.
    pub progress: Option<f32>,
    pub message: String,
    pub log: Vec<String>,
    pub started: Instant,
    pub finished: Option<Instant>,
    cancel: Arc<AtomicBool>,
}

impl JobInfo {
    pub fn elapsed(&self) -> Duration {
        self.finished.unwrap_or_else(Instant::now) - self.started
    }

    /// Remaining time extrapolated from the progress so far.
    pub fn eta(&self) -> Option<Duration> {
        let done = self.progress?;
        if !self.status.is_running() || done <= 0.01 {
            return None;
        }
        Some(self.elapsed().mul_f32((1.0 - done) / done))
    }
}

enum JobEvent {
    Progress { id: JobId, fraction: Option<f32>, message: String },
    Log { id: JobId, line: String },
    Finished { id: JobId, result: anyhow::Result<JobOutput> },
}

/// The handle a job's thread uses to report back.
#[derive(Clone)]
pub struct JobContext {
    id: JobId,
    sender: Sender<JobEvent>,
    cancel: Arc<AtomicBool>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

/// Returned by [`JobContext::check_cancelled`] so a job can stop with `?`.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

impl JobContext {
    fn send(&self, event: JobEvent) {
        // The receiver lives as long as the app; a failed send means it is closing.
        let _ = self.sender.send(event);
        (self.repaint)();
    }

    pub fn progress(&self, fraction: f32, message: impl Into<String>) {
        self.send(JobEvent::Progress { id: self.id, fraction: Some(fraction.clamp(0.0, 1.0)), message: message.into() });
    }

    pub fn log(&self, line: impl Into<String>) {
        self.send(JobEvent::Log { id: self.id, line: line.into() });
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub fn check_cancelled(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }
}

/// All jobs of the session, finished ones included (the job list shows them).
pub struct Jobs {
    next_id: JobId,
    jobs: Vec<JobInfo>,
    sender: Sender<JobEvent>,
    receiver: Receiver<JobEvent>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl Jobs {
    /// `repaint` wakes the UI; the app passes `ctx.request_repaint`.
    pub fn new(repaint: Arc<dyn Fn() + Send + Sync>) -> Self {
        let (sender, receiver) = crossbeam_channel::unbounded();
        Jobs { next_id: 1, jobs: Vec::new(), sender, receiver, repaint }
    }

    /// Runs `work` on a new thread and returns the job's id at once.
    pub fn spawn(
        &mut self,
        title: impl Into<String>,
        work: impl FnOnce(&JobContext) -> anyhow::Result<JobOutput> + Send + 'static,
    ) -> JobId {
        let id = self.next_id;
        self.next_id += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        let title = title.into();
        self.jobs.push(JobInfo {
            id,
            title: title.clone(),
            status: JobStatus::Running,
            progress: None,
            message: String::new(),
            log: Vec::new(),
            started: Instant::now(),
            finished: None,
            cancel: cancel.clone(),
        });
        let job = JobContext { id, sender: self.sender.clone(), cancel, repaint: self.repaint.clone() };
        let spawned = std::thread::Builder::new().name(format!("job-{id}")).spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&job)))
                .unwrap_or_else(|panic| Err(anyhow::anyhow!("the job panicked: {}", panic_message(&panic))));
            job.send(JobEvent::Finished { id: job.id, result });
        });
        if let Err(err) = spawned {
            self.finish(id, JobStatus::Failed(format!("cannot start a thread: {err}")));
        }
        id
    }

    /// Asks a running job to stop; it ends at its next cancellation check.
    pub fn cancel(&self, id: JobId) {
        if let Some(job) = self.get(id) {
            job.cancel.store(true, Ordering::Relaxed);
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
        while let Ok(event) = self.receiver.try_recv() {
            match event {
                JobEvent::Progress { id, fraction, message } => {
                    if let Some(job) = self.jobs.iter_mut().find(|j| j.id == id) {
                        job.progress = fraction;
                        job.message = message;
                    }
                }
                JobEvent::Log { id, line } => {
                    if let Some(job) = self.jobs.iter_mut().find(|j| j.id == id) {
                        job.log.push(line);
                    }
                }
                JobEvent::Finished { id, result } => {
                    let status = match &result {
                        Ok(_) => JobStatus::Succeeded,
                        Err(err) if err.is::<Cancelled>() => JobStatus::Cancelled,
                        Err(err) => JobStatus::Failed(format!("{err:#}")),
                    };
                    self.finish(id, status);
                    finished.push((id, result));
                }
            }
        }
        finished
    }

    fn finish(&mut self, id: JobId, status: JobStatus) {
        if let Some(job) = self.jobs.iter_mut().find(|j| j.id == id) {
            job.finished = Some(Instant::now());
            if status == JobStatus::Succeeded {
                job.progress = Some(1.0);
            }
            job.status = status;
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn failures_progress_logs_and_cancellation_are_reported() {
        let wakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = wakes.clone();
        let mut jobs = Jobs::new(Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        let failing = jobs.spawn("fails", |job| {
            job.progress(0.5, "half");
            job.log("about to fail");
            anyhow::bail!("broken input")
        });
        assert!(wait_for(&mut jobs, failing).is_err());
        let info = jobs.get(failing).unwrap();
        assert_eq!(info.status, JobStatus::Failed("broken input".into()));
        assert_eq!(info.log, vec!["about to fail".to_string()]);
        assert_eq!(info.message, "half");
        assert!(wakes.load(Ordering::Relaxed) >= 3, "every event wakes the UI");

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
