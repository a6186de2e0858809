//! Training panel. The training engine (stage 1, experts, baselines, router, the
//! full experiment) is not in this build yet, so the panel says so; the job list
//! is real: every background job of the session (dataset loads, ranking runs)
//! with its progress, ETA, status, log and a cancel button.
//!
//! Planned layout once `r2r::train` lands: a config form with the paper's
//! defaults (left), job launch buttons, per-stage loss and learning-rate curves
//! (egui_plot), and a device picker; the job list below stays as it is.

use egui::RichText;

use super::PanelContext;
use crate::gui::jobs::{JobInfo, JobStatus};
use crate::gui::widgets;

#[derive(Default)]
pub struct TrainingPanel {
    expanded_log: Option<u64>,
}

impl TrainingPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        widgets::not_available(
            ui,
            "Training",
            "needs the training engine (stage 1, experts, baselines, router), which is not in this build",
            &[
                "a training-config form with the paper's defaults (LoRA rank 32, alpha 64, InfoNCE τ 1.0)",
                "buttons to start stage 1, the domain experts, the baselines, the router or the full experiment",
                "progress bars with ETA and live loss / learning-rate curves per stage",
                "a device picker (CPU, CUDA when built with it)",
            ],
        );
        ui.add_space(16.0);
        ui.separator();
        self.job_list(ui, cx);
    }

    fn job_list(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        ui.label(RichText::new("Background jobs of this session").strong());
        if cx.jobs.all().is_empty() {
            ui.label(RichText::new("none yet").weak());
            return;
        }
        let mut cancel = None;
        egui::ScrollArea::vertical().id_salt("job_list").auto_shrink([false, false]).show(ui, |ui| {
            for job in cx.jobs.all().iter().rev() {
                ui.push_id(job.id, |ui| {
                    if self.job_row(ui, job) {
                        cancel = Some(job.id);
                    }
                });
            }
        });
        if let Some(id) = cancel {
            cx.jobs.cancel(id);
        }
    }

    /// One job; returns true when its cancel button was clicked.
    fn job_row(&mut self, ui: &mut egui::Ui, job: &JobInfo) -> bool {
        let mut cancel = false;
        ui.horizontal(|ui| {
            let (status, color) = match &job.status {
                JobStatus::Running => ("running".to_string(), ui.visuals().text_color()),
                JobStatus::Succeeded => ("done".to_string(), egui::Color32::from_rgb(52, 168, 83)),
                JobStatus::Cancelled => ("cancelled".to_string(), ui.visuals().weak_text_color()),
                JobStatus::Failed(err) => (format!("failed: {err}"), ui.visuals().error_fg_color),
            };
            ui.label(RichText::new(format!("#{} {}", job.id, job.title)).strong());
            ui.colored_label(color, status);
            if job.status.is_running() {
                ui.add(egui::ProgressBar::new(job.fraction().unwrap_or(0.0)).desired_width(180.0).show_percentage());
                if let Some(eta) = job.eta() {
                    ui.label(format!("ETA {:.0} s", eta.as_secs_f64().ceil()));
                }
                cancel = ui.button("Cancel").on_hover_text("Stop this job at its next checkpoint").clicked();
            } else {
                ui.label(RichText::new(format!("{:.2} s", job.elapsed().as_secs_f64())).weak());
            }
            if !job.log.is_empty() {
                let open = self.expanded_log == Some(job.id);
                if ui.selectable_label(open, format!("log ({})", job.log.len())).clicked() {
                    self.expanded_log = if open { None } else { Some(job.id) };
                }
            }
        });
        if job.status.is_running() && job.progress.is_some() {
            ui.label(RichText::new(job.message()).weak());
        }
        if self.expanded_log == Some(job.id) {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                for line in &job.log {
                    ui.label(RichText::new(line).monospace());
                }
            });
        }
        cancel
    }
}
