//! Helpers shared by the integration tests (each test crate includes this with `mod common;`).
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};

/// A required input (../shared, a committed model) is missing: a failure, unless `R2R_ALLOW_SKIP=1`, when
/// the caller skips with a note. CI does not set it.
pub fn missing(what: &str) {
    if std::env::var("R2R_ALLOW_SKIP").is_ok_and(|v| v == "1") {
        eprintln!("note: {what} is missing; skipped (R2R_ALLOW_SKIP=1)");
        return;
    }
    panic!("{what} is missing (set R2R_ALLOW_SKIP=1 to skip the tests that need it)");
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared tiny fixture model (`../shared/fixtures/qwen3-tiny/model`), else a seeded random model of the
/// same family written to `scratch` (so tests still run, with a note, where ../shared is absent).
pub fn tiny_model(scratch: &Path) -> PathBuf {
    let fixture = root().join("../shared/fixtures/qwen3-tiny/model");
    if fixture.join("config.json").is_file() {
        return fixture;
    }
    eprintln!("note: ../shared is absent; using a seeded random qwen3-tiny model");
    let dir = scratch.join("model");
    r2r::model::make_model::write_random_model(&dir, "qwen3-tiny", None, 5).unwrap();
    dir
}

/// Cancels `job` at the first event that `at` accepts (failing if the job ends first or no event comes within
/// `wait`), then checks that it stops within 1 s of the request with `Cancelled` as its last event.
pub fn cancel_at<T>(job: &mut r2r::train::JobHandle<T>, wait: std::time::Duration, mut at: impl FnMut(&r2r::train::JobEvent) -> bool) {
    use r2r::train::JobEvent;
    use std::time::{Duration, Instant};
    let asked = loop {
        let event = job.events.recv_timeout(wait).expect("an event");
        if matches!(event, JobEvent::Finished | JobEvent::Failed(_)) {
            panic!("the job ended before it was cancelled");
        }
        if at(&event) {
            job.cancel();
            break Instant::now();
        }
    };
    assert!(job.join_timeout(Duration::from_secs(1)), "not stopped within 1 s");
    assert!(asked.elapsed() < Duration::from_secs(1));
    assert_eq!(job.events.try_iter().last(), Some(JobEvent::Cancelled));
}
