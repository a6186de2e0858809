//! Background jobs: training runs on its own thread and reports through a
//! crossbeam channel; a shared flag cancels it. Front ends (CLI progress bars,
//! the GUI's job list) only read events; they never block on the job. A job's
//! typed result (`JobHandle<T>`) arrives beside its final event.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde::Serialize;

/// One progress report of a running job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Progress {
    /// e.g. "stage1", "expert:legal", "router".
    pub stage: String,
    pub step: usize,
    pub total_steps: usize,
    pub loss: f64,
    pub learning_rate: f64,
    pub examples_per_second: f64,
    pub eta_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum JobEvent {
    Log(String),
    Progress(Progress),
    /// Periodic dev metrics: stage, step, metric name → value.
    DevMetrics { stage: String, step: usize, metrics: Vec<(String, f64)> },
    /// A checkpoint was written (its directory).
    Checkpoint(String),
    /// The job succeeded; its result is waiting in [`JobHandle::take_result`].
    Finished,
    Failed(String),
    Cancelled,
}

/// Reports `step` of `total_steps` of a non-training job (no loss, no learning
/// rate: those fields are NaN, and the UI extrapolates the ETA).
pub fn report_steps(job: &JobContext, stage: &str, step: usize, total_steps: usize) {
    job.send(JobEvent::Progress(Progress {
        stage: stage.to_string(),
        step,
        total_steps,
        loss: f64::NAN,
        learning_rate: f64::NAN,
        examples_per_second: f64::NAN,
        eta_seconds: f64::NAN,
    }));
}

/// Raised (as an `anyhow` error) when a job notices that it was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// What a job's body uses to report and to check for cancellation.
#[derive(Clone)]
pub struct JobContext {
    events: Sender<JobEvent>,
    cancel: Arc<AtomicBool>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl JobContext {
    /// A context whose events go to `events` (for running a job body in place,
    /// e.g. from the CLI). `wake` is called after every event (the GUI repaints).
    pub fn new(events: Sender<JobEvent>, cancel: Arc<AtomicBool>, wake: Option<Arc<dyn Fn() + Send + Sync>>) -> Self {
        JobContext { events, cancel, wake }
    }

    pub fn send(&self, event: JobEvent) {
        let _ = self.events.send(event); // a closed receiver only means nobody listens
        if let Some(wake) = &self.wake {
            wake();
        }
    }

    pub fn log(&self, message: impl Into<String>) {
        self.send(JobEvent::Log(message.into()));
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancellation was requested; call it at least once a
    /// step so that a job stops within a second.
    pub fn check_cancelled(&self) -> anyhow::Result<()> {
        if self.is_cancelled() {
            Err(Cancelled.into())
        } else {
            Ok(())
        }
    }
}

/// Handle of a job running on its own thread, whose body returns a `T`.
pub struct JobHandle<T> {
    pub name: String,
    pub events: Receiver<JobEvent>,
    /// The body's outcome, sent before the final event: the value, or the error itself (typed, for
    /// `downcast_ref`), `Cancelled` included.
    result: Receiver<anyhow::Result<T>>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub started: Instant,
}

impl<T> JobHandle<T> {
    /// The job's outcome once its final event (`Finished`, `Failed`, `Cancelled`) was sent; taken once.
    pub fn take_result(&self) -> Option<anyhow::Result<T>> {
        self.result.try_recv().ok()
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// A function that cancels this job from another thread (e.g. a time limit).
    pub fn canceller(&self) -> impl Fn() + Send + 'static {
        let flag = self.cancel.clone();
        move || flag.store(true, Ordering::Relaxed)
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the thread to end (at most `timeout`); true if it ended.
    pub fn join_timeout(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        true
    }
}

/// Runs `body` on a new thread. Its outcome becomes the final event:
/// `Finished(summary)`, `Cancelled`, or `Failed(message)` (a panic in the body is
/// caught and reported as a failure, so the front end stays up).
pub fn spawn_job<T: Send + 'static>(
    name: impl Into<String>,
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
    body: impl FnOnce(&JobContext) -> anyhow::Result<T> + Send + 'static,
) -> JobHandle<T> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (result_tx, result_rx) = crossbeam_channel::bounded(1);
    let cancel = Arc::new(AtomicBool::new(false));
    let ctx = JobContext::new(tx, cancel.clone(), wake);
    let name = name.into();
    let thread = std::thread::Builder::new()
        .name(format!("job:{name}"))
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&ctx)));
            let outcome = outcome.unwrap_or_else(|panic| {
                Err(anyhow::anyhow!(
                    "internal error (panic): {}",
                    panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
                ))
            });
            let event = match &outcome {
                Ok(_) => JobEvent::Finished,
                Err(err) if err.is::<Cancelled>() => JobEvent::Cancelled,
                Err(err) => JobEvent::Failed(format!("{err:#}")),
            };
            let _ = result_tx.send(outcome);
            ctx.send(event);
        })
        .expect("spawning a thread");
    JobHandle { name, events: rx, result: result_rx, cancel, thread: Some(thread), started: Instant::now() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain<T>(handle: &mut JobHandle<T>) -> Vec<JobEvent> {
        assert!(handle.join_timeout(Duration::from_secs(5)));
        handle.events.try_iter().collect()
    }

    #[test]
    fn a_job_reports_and_finishes() {
        let mut job = spawn_job("ok", None, |ctx| {
            ctx.log("hello");
            Ok(vec![4u32, 2])
        });
        assert_eq!(drain(&mut job), vec![JobEvent::Log("hello".into()), JobEvent::Finished]);
        assert_eq!(job.take_result().unwrap().unwrap(), vec![4, 2]);
        assert!(job.take_result().is_none(), "taken once");
    }

    #[test]
    fn cancellation_stops_a_looping_job_quickly() {
        let mut job = spawn_job("loop", None, |ctx| -> anyhow::Result<()> { loop {
            ctx.check_cancelled()?;
            std::thread::sleep(Duration::from_millis(5));
        } });
        std::thread::sleep(Duration::from_millis(30));
        let asked = Instant::now();
        job.cancel();
        assert!(job.join_timeout(Duration::from_secs(1)), "job did not stop within 1 s");
        assert!(asked.elapsed() < Duration::from_secs(1));
        assert_eq!(job.events.try_iter().last(), Some(JobEvent::Cancelled));
        assert!(job.take_result().unwrap().unwrap_err().is::<Cancelled>());
    }

    #[test]
    fn errors_and_panics_become_failures() {
        let mut failing = spawn_job("err", None, |_| -> anyhow::Result<u8> { Err(anyhow::Error::new(std::io::Error::other("disk full")).context("loss is NaN at step 3")) });
        assert_eq!(drain(&mut failing), vec![JobEvent::Failed("loss is NaN at step 3: disk full".into())]);
        assert!(failing.take_result().unwrap().unwrap_err().downcast_ref::<std::io::Error>().is_some(), "the typed error reaches the front end");
        let mut panicking = spawn_job("panic", None, |_| -> anyhow::Result<u8> { panic!("boom") });
        let events = drain(&mut panicking);
        assert!(matches!(&events[..], [JobEvent::Failed(m)] if m.contains("boom")), "{events:?}");
    }
}
