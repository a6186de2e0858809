//! Frame-time statistics for `r2r --frame-stats`: every frame's time is recorded
//! and the percentiles are printed when the app exits.

use std::sync::Mutex;

/// Collected frame times in seconds (shared between the app and `gui::run`).
#[derive(Default)]
pub struct FrameStats {
    /// eframe's time for each frame: UI, tessellation and rendering, not the vsync wait.
    frames: Mutex<Vec<f32>>,
    /// The part spent in the app's own `ui` code.
    app_ui: Mutex<Vec<f32>>,
    /// Frames drawn while at least one background job was running.
    frames_during_jobs: Mutex<Vec<f32>>,
    /// Wall-clock time between the starts of consecutive frames (includes vsync and idle waits).
    intervals: Mutex<Vec<f32>>,
    last_frame_start: Mutex<Option<std::time::Instant>>,
}

impl FrameStats {
    pub fn record_frame(&self, seconds: f32, jobs_running: bool) {
        self.frames.lock().unwrap_or_else(|e| e.into_inner()).push(seconds);
        if jobs_running {
            self.frames_during_jobs.lock().unwrap_or_else(|e| e.into_inner()).push(seconds);
        }
    }

    /// Call at the start of every frame.
    pub fn frame_started(&self) {
        let now = std::time::Instant::now();
        let mut last = self.last_frame_start.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(previous) = last.replace(now) {
            self.intervals.lock().unwrap_or_else(|e| e.into_inner()).push((now - previous).as_secs_f32());
        }
    }

    pub fn record_app_ui(&self, seconds: f32) {
        self.app_ui.lock().unwrap_or_else(|e| e.into_inner()).push(seconds);
    }

    /// A multi-line report of p50/p95/p99/max in milliseconds.
    pub fn report(&self) -> String {
        let line = |name: &str, samples: &Mutex<Vec<f32>>| {
            let samples = samples.lock().unwrap_or_else(|e| e.into_inner());
            match Percentiles::of(&samples) {
                Some(p) => format!(
                    "{name:<34} n={:<6} p50 {:6.2} ms  p95 {:6.2} ms  p99 {:6.2} ms  max {:6.2} ms",
                    samples.len(),
                    p.p50 * 1e3,
                    p.p95 * 1e3,
                    p.p99 * 1e3,
                    p.max * 1e3
                ),
                None => format!("{name:<34} n=0"),
            }
        };
        [
            line("frame time (all frames)", &self.frames),
            line("frame time (while jobs ran)", &self.frames_during_jobs),
            line("app ui code only", &self.app_ui),
            line("interval between frames", &self.intervals),
        ]
        .join("\n")
    }
}

/// Nearest-rank percentiles of a sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub p50: f32,
    pub p95: f32,
    pub p99: f32,
    pub max: f32,
}

impl Percentiles {
    pub fn of(samples: &[f32]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f32::total_cmp);
        let rank = |p: f32| sorted[((p * sorted.len() as f32).ceil() as usize).clamp(1, sorted.len()) - 1];
        Some(Percentiles { p50: rank(0.50), p95: rank(0.95), p99: rank(0.99), max: sorted[sorted.len() - 1] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f32> = (1..=100).rev().map(|v| v as f32).collect();
        let p = Percentiles::of(&samples).unwrap();
        assert_eq!((p.p50, p.p95, p.p99, p.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(&[]), None);
        assert_eq!(Percentiles::of(&[7.0]).unwrap().p99, 7.0);
    }
}
