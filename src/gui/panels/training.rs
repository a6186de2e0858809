//! Training panel: a form over the engine's `TrainConfig` (defaults = the
//! paper's, or the tiny demo preset), a device picker, Start (runs
//! `r2r::train::run_training` as a background job), the job's progress with ETA,
//! live loss and learning-rate curves per stage, Cancel, and the list of every
//! background job of the session with its status and log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::RichText;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::PanelContext;
use crate::gui::jobs::{JobId, JobInfo, JobOutput, JobStatus};
use crate::gui::state::AppRequest;
use crate::train::loss::ScoreForm;
use crate::train::config::DeviceChoice;
use crate::train::{Stage, TrainConfig};

/// The tiny demo config, relative to the repository.
pub const TINY_PRESET: &str = "assets/configs/tiny.toml";

pub struct TrainingPanel {
    config: TrainConfig,
    /// Comma-separated target domains (edited as text).
    domains: String,
    /// Why the last Start or preset failed, if it did.
    form_error: Option<String>,
    /// A note about the loaded preset (e.g. a substituted model path).
    preset_note: Option<String>,
    /// The training job whose progress and curves are shown.
    job: Option<JobId>,
    /// The progress names of the stages the shown job runs (for whole-job progress).
    plan: Vec<String>,
    expanded_log: Option<u64>,
    /// The TOML config file field (Open / Save).
    config_path: String,
    /// Where the last Open/Save went, or why it failed.
    file_note: Option<String>,
    /// A folder dialog for the output directory, while open.
    dialog: Option<poll_promise::Promise<Option<PathBuf>>>,
    /// The built-in path picker (when no native dialog is available): the folder it shows.
    picker: Option<PathBuf>,
    /// The finished run whose curves are shown (path field, and what was read or why not).
    finished_path: String,
    finished: Option<Result<crate::workbench::run_curves::RunCurves, String>>,
    /// "Save … PNG" of the curves, and where the last one went.
    png: crate::gui::widgets::PngExport,
    png_note: Option<String>,
}

impl Default for TrainingPanel {
    fn default() -> Self {
        let mut config = TrainConfig::default();
        config.output.dir = default_output_dir();
        TrainingPanel::with_config(config)
    }
}

/// A new run directory under the app's data directory (absolute): `runs/run-<unix seconds>`.
pub fn default_output_dir() -> PathBuf {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    crate::gui::state::app_data_dir().join("runs").join(format!("run-{seconds}"))
}

/// The tiny demo config with its paths resolved under the project root (`crate::assets`).
pub fn tiny_preset() -> anyhow::Result<(TrainConfig, Option<String>)> {
    use crate::assets::under_project_root;
    let mut config = TrainConfig::load(&under_project_root(Path::new(TINY_PRESET)))?;
    config.data.path = under_project_root(&config.data.path);
    config.model.path = under_project_root(&config.model.path);
    Ok((config, None))
}

impl TrainingPanel {
    pub fn with_config(config: TrainConfig) -> Self {
        TrainingPanel {
            domains: config.data.domains.join(", "),
            config,
            form_error: None,
            preset_note: None,
            job: None,
            plan: Vec::new(),
            expanded_log: None,
            config_path: String::new(),
            file_note: None,
            dialog: None,
            picker: None,
            finished_path: String::new(),
            finished: None,
            png: Default::default(),
            png_note: None,
        }
    }

    /// Shows the curves of the finished run (or experiment) at `path`.
    pub fn open_run(&mut self, path: &Path) {
        self.finished_path = path.display().to_string();
        self.finished = Some(crate::workbench::run_curves::RunCurves::load(path).map_err(|e| format!("{e:#}")));
    }

    /// The curves of a finished run: a path field, Open, and one loss line per job.
    fn finished_run(&mut self, ui: &mut egui::Ui, export_dir: &Path) {
        ui.horizontal(|ui| {
            let label = ui.label("Finished run:").on_hover_text("A run directory of r2r train, or an experiment directory (its training/): the loss of every job per step");
            let field = ui.add(egui::TextEdit::singleline(&mut self.finished_path).hint_text("DIR").desired_width(360.0)).labelled_by(label.id);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Open curves").clicked() || enter) && !self.finished_path.trim().is_empty() {
                let path = PathBuf::from(self.finished_path.trim());
                self.open_run(&path);
            }
        });
        match &self.finished {
            None => {}
            Some(Err(err)) => {
                ui.colored_label(ui.visuals().error_fg_color, err);
            }
            Some(Ok(run)) => {
                ui.label(RichText::new(format!("{} jobs on {}", run.jobs.len(), run.backbone)).weak());
                egui::Grid::new("finished_run_jobs").striped(true).spacing([16.0, 2.0]).show(ui, |ui| {
                    for title in ["job", "steps", "dev NDCG@10 at the end", "training time"] {
                        ui.label(RichText::new(title).strong());
                    }
                    ui.end_row();
                    for job in &run.jobs {
                        ui.label(&job.job);
                        ui.label(job.losses.len().to_string());
                        ui.label(job.dev.last().map_or("—".to_string(), |d| format!("{:.3} ({} queries)", d.ndcg_at_10, d.queries)));
                        ui.label(crate::gui::jobs::format_duration(std::time::Duration::from_secs_f64(job.seconds)));
                        ui.end_row();
                    }
                });
                let height = (ui.available_height() * 0.8).clamp(160.0, 360.0);
                let plot = Plot::new("finished_run_loss_plot").height(height).legend(Legend::default()).x_axis_label("step").y_axis_label("loss").show(ui, |plot| {
                    for job in &run.jobs {
                        let points: Vec<[f64; 2]> = job.losses.iter().enumerate().map(|(i, l)| [(i + 1) as f64, *l]).collect();
                        plot.line(Line::new(job.job.clone(), PlotPoints::from(points)));
                    }
                });
                self.png.button(ui, "Save loss PNG", export_dir, "training_loss", plot.response.rect);
            }
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        egui::Panel::left("training_form").resizable(true).default_size(380.0).size_range(320.0..=560.0).show(ui, |ui| {
            egui::ScrollArea::vertical().id_salt("training_form_scroll").show(ui, |ui| self.form(ui, cx));
        });
        egui::CentralPanel::no_frame().show(ui, |ui| {
            self.current_job(ui, cx);
            ui.add_space(8.0);
            ui.separator();
            self.job_list(ui, cx);
        });
    }

    fn form(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.heading("Training config");
        });
        ui.horizontal(|ui| {
            if ui.button("Paper defaults").on_hover_text("TrainConfig::default: LoRA rank 32, alpha 64, InfoNCE τ 1.0").clicked() {
                *self = TrainingPanel { job: self.job, plan: std::mem::take(&mut self.plan), ..TrainingPanel::default() };
            }
            if ui.button("Tiny demo").on_hover_text(format!("Load {TINY_PRESET}: a few queries, rank-8 adapters, one epoch per stage")).clicked() {
                match tiny_preset() {
                    Ok((config, note)) => *self = TrainingPanel { job: self.job, plan: std::mem::take(&mut self.plan), preset_note: note, ..TrainingPanel::with_config(config) },
                    Err(err) => self.form_error = Some(format!("{err:#}")),
                }
            }
        });
        if let Some(note) = &self.preset_note {
            ui.label(RichText::new(note).weak());
        }
        self.config_file_row(ui);
        let c = &mut self.config;
        let path_row = |ui: &mut egui::Ui, label: &str, hint: &str, path: &mut PathBuf| {
            let label = ui.label(label).on_hover_text(hint);
            let mut text = path.display().to_string();
            if ui.add(egui::TextEdit::singleline(&mut text).desired_width(f32::INFINITY)).labelled_by(label.id).changed() {
                *path = PathBuf::from(text);
            }
            ui.end_row();
        };
        section(ui, "Data and model");
        egui::Grid::new("training_paths").num_columns(2).spacing([10.0, 4.0]).show(ui, |ui| {
            path_row(ui, "Data", "Dataset directory or file (any supported format)", &mut c.data.path);
            path_row(ui, "Model", "Backbone directory (config.json, model.safetensors, tokenizer.json)", &mut c.model.path);
            path_row(ui, "Output", "Run directory (checkpoints, experts, router, summary.json); absolute, under the app's data directory by default", &mut c.output.dir);
            let label = ui.label("Domains").on_hover_text("Target domains, comma-separated: one expert each");
            ui.add(egui::TextEdit::singleline(&mut self.domains).desired_width(f32::INFINITY)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Max train queries").on_hover_text("Per domain; 0 = all");
            ui.add(egui::DragValue::new(&mut c.data.max_train_queries).range(0..=1_000_000)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Max dev queries").on_hover_text("Per domain, for checkpoint selection; 0 = all");
            ui.add(egui::DragValue::new(&mut c.data.max_dev_queries).range(0..=1_000_000)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Device");
            egui::ComboBox::from_id_salt("training_device").selected_text(c.model.device.name()).show_ui(ui, |ui| {
                ui.selectable_value(&mut c.model.device, DeviceChoice::Cpu, "cpu");
                #[cfg(feature = "cuda")]
                {
                    ui.selectable_value(&mut c.model.device, DeviceChoice::Cuda, "cuda");
                    ui.selectable_value(&mut c.model.device, DeviceChoice::Auto, "auto (CUDA if present)");
                }
            }).response.labelled_by(label.id);
            ui.end_row();
        });
        self.output_browse(ui);
        let c = &mut self.config;
        section(ui, "Adapters and objective");
        egui::Grid::new("training_objective").num_columns(2).spacing([10.0, 4.0]).show(ui, |ui| {
            let label = ui.label("LoRA rank");
            ui.add(egui::DragValue::new(&mut c.lora.rank).range(1..=512)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("LoRA alpha");
            ui.add(egui::DragValue::new(&mut c.lora.alpha).range(0.1..=2048.0).speed(0.5)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("τ (InfoNCE temperature)");
            ui.add(egui::DragValue::new(&mut c.objective.temperature).range(0.01..=100.0).speed(0.01)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Score form").on_hover_text("probability = sigmoid(yes − no) as in the paper; logit = yes − no");
            egui::ComboBox::from_id_salt("training_score").selected_text(format!("{:?}", c.objective.score).to_lowercase()).show_ui(ui, |ui| {
                ui.selectable_value(&mut c.objective.score, ScoreForm::Probability, "probability");
                ui.selectable_value(&mut c.objective.score, ScoreForm::Logit, "logit");
            }).response.labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Negatives").on_hover_text("Lower-relevance candidates per query group, beside its positive");
            ui.add(egui::DragValue::new(&mut c.objective.negatives).range(1..=255)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Mined by BM25").on_hover_text("How many of the negatives are the ones BM25 ranks highest for the query (the rest random)");
            c.objective.hard_negatives = c.objective.hard_negatives.min(c.objective.negatives);
            ui.add(egui::DragValue::new(&mut c.objective.hard_negatives).range(0..=c.objective.negatives)).labelled_by(label.id);
            ui.end_row();
        });
        section(ui, "Optimisation");
        egui::Grid::new("training_optim").num_columns(2).spacing([10.0, 4.0]).show(ui, |ui| {
            let label = ui.label("Stage 1 epochs").on_hover_text("EAG stage 1, entity-abstracted data");
            ui.add(egui::DragValue::new(&mut c.stage1.epochs).range(1..=100)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Stage 2 epochs").on_hover_text("Domain experts, original data");
            ui.add(egui::DragValue::new(&mut c.stage2.epochs).range(1..=100)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Learning rate");
            ui.add(egui::DragValue::new(&mut c.optim.learning_rate).range(1e-7..=1.0).speed(1e-5).custom_formatter(|v, _| format!("{v:.1e}"))).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Stage 2 learning rate").on_hover_text("The experts' stage 2, continuing the stage-1 adapter (0 = the learning rate above)");
            let same = |v: f64, _| if v == 0.0 { "same".to_string() } else { format!("{v:.1e}") };
            ui.add(egui::DragValue::new(&mut c.stage2.learning_rate).range(0.0..=1.0).speed(1e-5).custom_formatter(same)).labelled_by(label.id);
            ui.end_row();
            ui.label("Stage 2 optimiser");
            ui.checkbox(&mut c.stage2.continue_optimizer, "Continue stage 1's")
                .on_hover_text("Each expert's AdamW starts from stage 1's final moments instead of afresh (needs stage 1's checkpoint in this run)");
            ui.end_row();
            let label = ui.label("Batch (query groups)");
            ui.add(egui::DragValue::new(&mut c.optim.batch_groups).range(1..=1024)).labelled_by(label.id);
            ui.end_row();
            let label = ui.label("Seed");
            ui.add(egui::DragValue::new(&mut c.optim.seed)).labelled_by(label.id);
            ui.end_row();
        });
        section(ui, "Stages");
        ui.horizontal_wrapped(|ui| {
            for stage in [Stage::Stage1, Stage::Experts, Stage::Baselines, Stage::Router] {
                let mut on = c.run.stages.contains(&stage);
                if ui.checkbox(&mut on, stage.as_str()).changed() {
                    c.run.stages.retain(|s| *s != stage);
                    if on {
                        c.run.stages.push(stage);
                        c.run.stages.sort();
                    }
                }
            }
        });
        ui.add_space(10.0);
        let running = self.job.and_then(|id| cx.jobs.get(id)).is_some_and(|j| j.status.is_running());
        let start = ui.add_enabled(!running, egui::Button::new(RichText::new("Start training").strong()));
        if start.clicked() {
            self.start(cx.jobs);
        }
        if let Some(err) = &self.form_error {
            ui.colored_label(ui.visuals().error_fg_color, err);
        }
    }

    /// Validates the form and starts `run_training` as a background job.
    pub fn start(&mut self, jobs: &mut crate::gui::jobs::Jobs) {
        let mut config = self.config.clone();
        config.data.domains = self.domains.split(',').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect();
        if let Err(err) = config.validate() {
            self.form_error = Some(format!("{err:#}"));
            return;
        }
        self.form_error = None;
        self.plan = crate::train::plan::planned_stages(&config);
        let title = format!("Train {}", config.output.dir.display());
        self.job = Some(jobs.spawn(title, move |job| {
            let summary = crate::train::run_training(&config, job)?;
            job.log(format!("finished in {:.1} s; run directory {}", summary.seconds, summary.run_dir.display()));
            Ok(JobOutput::Training(Arc::new(summary)))
        }));
    }

    /// The shown training job: status, progress with ETA, Cancel, curves.
    fn current_job(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        if let Some(note) = self.png.take_note() {
            self.png_note = Some(note);
        }
        if let Some(note) = &self.png_note {
            ui.label(RichText::new(note).weak());
        }
        let Some(job) = self.job.and_then(|id| cx.jobs.get(id)) else {
            ui.heading("No training job yet");
            ui.label(RichText::new("Fill in the config on the left (or load the tiny demo) and press Start training, or open a finished run's curves.").weak());
            self.finished_run(ui, &cx.settings.export_dir());
            return;
        };
        let mut cancel = false;
        ui.horizontal(|ui| {
            ui.heading(&job.title);
            ui.label(status_text(ui, &job.status));
        });
        let whole = job.whole_progress(&self.plan);
        ui.horizontal(|ui| {
            ui.label(RichText::new("Whole run").strong());
            ui.add(egui::ProgressBar::new(whole.fraction as f32).desired_width(320.0).show_percentage());
            match (job.status.is_running(), whole.eta_seconds) {
                (true, Some(eta)) => {
                    ui.label(format!("about {} left", crate::gui::jobs::format_duration(std::time::Duration::from_secs_f64(eta))))
                        .on_hover_text("From the measured duration of each stage so far; stages not started yet are assumed to take as long as those of their kind");
                }
                (true, None) => {
                    ui.label(RichText::new("estimating the time left …").weak());
                }
                _ => {}
            }
            if job.status.is_running() {
                cancel = ui.button("Cancel training").on_hover_text("Stop at the next step; the last checkpoint is kept").clicked();
            }
        });
        if whole.stage > 0 && job.status.is_running() {
            ui.horizontal(|ui| {
                ui.label(format!("Stage {} of {}: {}", whole.stage, whole.stages, whole.current.as_deref().unwrap_or("")));
                ui.add(egui::ProgressBar::new(job.fraction().unwrap_or(0.0)).desired_width(200.0).show_percentage());
            });
        }
        if job.status == JobStatus::Succeeded {
            let router = cx.workspace.last_training.as_ref().filter(|s| s.router.is_some()).map(|s| s.run_dir.clone());
            ui.horizontal(|ui| {
                ui.label(RichText::new("Finished.").strong());
                if let Some(dir) = router {
                    if ui.button("Open in Router").on_hover_text(format!("Route the test split with {}", dir.display())).clicked() {
                        cx.requests.push(AppRequest::OpenRunInRouter(dir));
                    }
                }
            });
        }
        if let Some(p) = &job.progress {
            let loss = if p.loss.is_finite() { format!(", loss {:.4}", p.loss) } else { String::new() };
            let lr = if p.learning_rate.is_finite() { format!(", lr {:.2e}", p.learning_rate) } else { String::new() };
            ui.label(RichText::new(format!("{}{loss}{lr}", job.message())).weak());
        }
        let rects = curves(ui, job);
        ui.horizontal(|ui| {
            for (rect, (label, stem)) in rects.into_iter().zip([("Save loss PNG", "training_loss"), ("Save learning-rate PNG", "training_learning_rate")]) {
                self.png.button(ui, label, &cx.settings.export_dir(), stem, rect);
            }
        });
        if cancel {
            cx.jobs.cancel(job.id);
        }
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
            ui.label(RichText::new(format!("#{} {}", job.id, job.title)).strong());
            ui.label(status_text(ui, &job.status));
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

impl TrainingPanel {
    /// "Config file": a path with Open (read a TOML config into the form) and Save (write the form as TOML).
    fn config_file_row(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let label = ui.label("Config file").on_hover_text("A training config in TOML (as `r2r train --config`)");
            ui.add(egui::TextEdit::singleline(&mut self.config_path).hint_text("path/to/config.toml").desired_width(170.0)).labelled_by(label.id);
            let path = PathBuf::from(self.config_path.trim());
            let named = !self.config_path.trim().is_empty();
            if ui.add_enabled(named, egui::Button::new("Open config")).on_hover_text("Read this TOML file into the form").clicked() {
                match TrainConfig::load(&path) {
                    Ok(config) => {
                        let (job, plan, config_path) = (self.job, std::mem::take(&mut self.plan), std::mem::take(&mut self.config_path));
                        *self = TrainingPanel { job, plan, config_path, file_note: Some(format!("Opened {}", path.display())), ..TrainingPanel::with_config(config) };
                    }
                    Err(err) => self.file_note = Some(format!("Could not open the config: {err:#}")),
                }
            }
            if ui.add_enabled(named, egui::Button::new("Save config")).on_hover_text("Write the form to this TOML file").clicked() {
                let mut config = self.config.clone();
                config.data.domains = self.domains.split(',').map(|d| d.trim().to_string()).filter(|d| !d.is_empty()).collect();
                self.file_note = Some(match crate::util::atomic_write(&path, config.to_toml().as_bytes()) {
                    Ok(()) => format!("Saved {}", path.display()),
                    Err(err) => format!("Could not save the config: {err:#}"),
                });
            }
        });
        if let Some(note) = &self.file_note {
            ui.label(RichText::new(note).weak());
        }
    }

    /// "Browse…" for the output folder: the native dialog, else the built-in picker.
    fn output_browse(&mut self, ui: &mut egui::Ui) {
        if let Some(promise) = self.dialog.take() {
            match promise.try_take() {
                Ok(Some(dir)) => self.config.output.dir = dir,
                Ok(None) => {
                    // Cancelled, or no dialog could be shown (no portal, no zenity): offer the built-in picker.
                    self.file_note = Some("No folder chosen in a system dialog (none may be available here): pick one below.".into());
                    self.picker = Some(existing_ancestor(&self.config.output.dir));
                }
                Err(promise) => self.dialog = Some(promise),
            }
        }
        ui.horizontal(|ui| {
            if ui.add_enabled(self.dialog.is_none(), egui::Button::new("Browse output…")).on_hover_text("Choose the run directory's parent folder").clicked() {
                let start = existing_ancestor(&self.config.output.dir);
                match crate::gui::widgets::spawn_folder_dialog(ui.ctx(), "Output folder for training runs", Some(start.clone())) {
                    Ok(promise) => self.dialog = Some(promise),
                    Err(_) => self.picker = Some(start),
                }
            }
            if ui.button("Pick in app…").on_hover_text("A simple folder picker inside the app (no system dialog needed)").clicked() {
                self.picker = Some(existing_ancestor(&self.config.output.dir));
            }
        });
        if let Some(picker) = self.picker.clone() {
            if let Some(chosen) = folder_picker(ui, &picker, &mut self.picker) {
                let name = self.config.output.dir.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "run".into());
                self.config.output.dir = chosen.join(name);
                self.picker = None;
            }
        }
    }
}

/// The nearest existing folder at or above `path` (else the app's data directory).
fn existing_ancestor(path: &Path) -> PathBuf {
    path.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf).unwrap_or_else(crate::gui::state::app_data_dir)
}

/// The built-in folder picker: the current folder, its parent, its subfolders;
/// returns the folder when "Use this folder" is clicked. `state` moves with the navigation (None closes).
fn folder_picker(ui: &mut egui::Ui, dir: &Path, state: &mut Option<PathBuf>) -> Option<PathBuf> {
    let mut chosen = None;
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.label(RichText::new(dir.display().to_string()).monospace());
        ui.horizontal(|ui| {
            if ui.button("Use this folder").clicked() {
                chosen = Some(dir.to_path_buf());
            }
            if let Some(parent) = dir.parent() {
                if ui.button("Up").clicked() {
                    *state = Some(parent.to_path_buf());
                }
            }
            if ui.button("Close").clicked() {
                *state = None;
            }
        });
        let mut folders: Vec<PathBuf> = std::fs::read_dir(dir).map(|e| e.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect()).unwrap_or_default();
        folders.sort();
        egui::ScrollArea::vertical().id_salt("training_folder_picker").max_height(160.0).show(ui, |ui| {
            for folder in folders {
                let name = folder.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                if ui.selectable_label(false, format!("{name}/")).clicked() {
                    *state = Some(folder);
                }
            }
        });
    });
    chosen
}

fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(8.0);
    ui.label(RichText::new(title).strong());
    ui.separator();
}

fn status_text(ui: &egui::Ui, status: &JobStatus) -> RichText {
    match status {
        JobStatus::Running => RichText::new("running").color(ui.visuals().text_color()),
        JobStatus::Succeeded => RichText::new("done").color(egui::Color32::from_rgb(52, 168, 83)),
        JobStatus::Cancelled => RichText::new("Cancelled").color(ui.visuals().weak_text_color()),
        JobStatus::Failed(err) => RichText::new(format!("failed: {err}")).color(ui.visuals().error_fg_color),
    }
}

/// Loss and learning-rate curves per stage (x = the stage's step); the plots' rectangles.
fn curves(ui: &mut egui::Ui, job: &JobInfo) -> Vec<egui::Rect> {
    if job.history.is_empty() {
        ui.label(RichText::new("The loss and learning-rate curves appear with the first training step.").weak());
        return Vec::new();
    }
    let mut by_stage: BTreeMap<&str, (Vec<[f64; 2]>, Vec<[f64; 2]>)> = BTreeMap::new();
    for p in &job.history {
        let (loss, lr) = by_stage.entry(p.stage.as_str()).or_default();
        loss.push([p.step as f64, p.loss]);
        if p.learning_rate.is_finite() {
            lr.push([p.step as f64, p.learning_rate]);
        }
    }
    let height = (ui.available_height() * 0.45).clamp(160.0, 320.0);
    let mut rects = Vec::new();
    ui.columns(2, |columns| {
        for (column, (title, is_loss)) in columns.iter_mut().zip([("Training loss", true), ("Learning rate", false)]) {
            column.label(RichText::new(title).strong());
            let plot = Plot::new(if is_loss { "training_loss_plot" } else { "training_lr_plot" })
                .height(height)
                .legend(Legend::default())
                .x_axis_label("step")
                .show(column, |plot| {
                    for (stage, (loss, lr)) in &by_stage {
                        let points = if is_loss { loss.clone() } else { lr.clone() };
                        plot.line(Line::new(stage.to_string(), PlotPoints::from(points)));
                    }
                });
            rects.push(plot.response.rect);
        }
    });
    rects
}
