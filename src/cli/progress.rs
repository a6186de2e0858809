//! Draws a background job's events as indicatif progress bars (one per stage)
//! until it ends; without a terminal, plain log lines instead.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::train::{JobEvent, JobHandle};

/// Follows `job` to its end and returns its result. `what` names the job in the
/// cancellation message; `show_loss` adds loss and learning rate to the bars.
pub fn drive_job<T>(mut job: JobHandle<T>, what: &str, show_loss: bool) -> Result<T> {
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>18} [{bar:28}] {pos}/{len} {msg}")
        .expect("a valid template")
        .progress_chars("=> ");
    let mut stage_bars: BTreeMap<String, ProgressBar> = BTreeMap::new();
    // Without a terminal the bars are hidden: print the log and each stage's end as plain lines.
    let say = |message: String| {
        if bars.is_hidden() {
            eprintln!("{message}");
        } else {
            let _ = bars.println(message);
        }
    };
    loop {
        let Ok(event) = job.events.recv() else { bail!("the {what} job ended without a result") };
        match event {
            JobEvent::Log(message) => say(message),
            JobEvent::Progress(p) => {
                let bar = stage_bars.entry(p.stage.clone()).or_insert_with(|| {
                    let bar = bars.add(ProgressBar::new(p.total_steps as u64));
                    bar.set_style(style.clone());
                    bar.set_prefix(p.stage.clone());
                    bar
                });
                bar.set_length(p.total_steps as u64);
                bar.set_position(p.step as u64);
                let rate = format!("{:.1} ex/s ETA {:.0}s", p.examples_per_second, p.eta_seconds);
                bar.set_message(if show_loss { format!("loss {:.4} lr {:.2e} {rate}", p.loss, p.learning_rate) } else { rate });
                if p.step == p.total_steps {
                    bar.finish();
                    if bars.is_hidden() {
                        let last_loss = if show_loss { format!(", last loss {:.4}", p.loss) } else { String::new() };
                        say(format!("{}: {} steps done{last_loss}", p.stage, p.total_steps));
                    }
                }
            }
            JobEvent::DevMetrics { stage, step, metrics } => {
                let text: Vec<String> = metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
                say(format!("{stage} dev @ step {step}: {}", text.join(", ")));
            }
            JobEvent::Checkpoint(_) => {}
            JobEvent::Finished | JobEvent::Failed(_) => {
                job.join_timeout(std::time::Duration::from_secs(5));
                return job.take_result().unwrap_or_else(|| Err(anyhow::anyhow!("the {what} job ended without a result")));
            }
            JobEvent::Cancelled => bail!("the {what} job was cancelled"),
        }
    }
}
