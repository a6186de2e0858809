//! The eframe app: navigation between panels, theme switch, status bar,
//! drag-and-drop, persistence of settings, and the glue between background jobs
//! and the shared workspace.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use egui::RichText;

use crate::data::{DataError, LoadOptions};
use crate::gui::frame_stats::FrameStats;
use crate::gui::jobs::{JobId, JobOutput, Jobs};
use crate::gui::panels::{self, PanelContext};
use crate::gui::screenshot::{ScreenshotOutcome, ScreenshotTask};
use crate::gui::state::{AppRequest, LoadFailure, LoadedDataset, PanelKind, RunState, Settings, SharedSelection, ThemeChoice, Workspace};
use crate::gui::systems::{SignificanceTable, SystemKind, SystemRun};

/// How the app starts (from the command line, or set up by a test).
#[derive(Default, Clone)]
pub struct StartOptions {
    /// Dataset to load at start.
    pub data: Option<PathBuf>,
    /// With no `data`: open the bundled sample data when it exists.
    pub open_bundled_data: bool,
    /// Open an experiment in Rankings and Router at start: the one opened last, else the shipped
    /// demo run (`crate::workbench::demo`), so a first launch shows R2R without training.
    pub open_demo: bool,
    /// Panel to show first (overrides the remembered one).
    pub panel: Option<PanelKind>,
    /// Restore settings from eframe storage and save them at exit.
    pub persist: bool,
    /// Take a screenshot into this file once loaded, then close.
    pub screenshot: Option<(PathBuf, ScreenshotOutcome)>,
    pub frame_stats: Option<Arc<FrameStats>>,
    /// The expert corrections file of the Abstraction panel (overrides the remembered one).
    pub corrections: Option<PathBuf>,
    /// The Training panel's form (default: the paper's config).
    pub training_config: Option<crate::train::TrainConfig>,
    /// Start training with the form's config at start.
    pub train_at_start: bool,
    /// The Router panel's run directory.
    pub router_path: Option<PathBuf>,
    /// Route the test split with `router_path` at start.
    pub route_at_start: bool,
    /// An experiment directory to open once the dataset has loaded.
    pub experiment: Option<PathBuf>,
    /// Close the window this long after start.
    pub quit_after: Option<std::time::Duration>,
    /// Where "Save CSV" writes (overrides the remembered folder).
    pub export_dir: Option<PathBuf>,
    /// Where computed rankings are cached across launches (None: not cached).
    pub cache_dir: Option<PathBuf>,
    /// The generalist's backbone (None: the remembered one, else the default backbone).
    pub backbone: Option<PathBuf>,
}

/// Marks `state` failed when it waits for job `id`; true when it did.
fn fail_if_job<T>(state: &mut RunState<T>, id: JobId, message: &str) -> bool {
    let waits = matches!(state, RunState::Computing(job) if *job == id);
    if waits {
        *state = RunState::Failed(message.to_string());
    }
    waits
}

/// The default fonts, with the monospace font (Hack) as a fallback for
/// proportional text: it carries the arrows (↑ ↓ →) that Ubuntu-Light lacks.
fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if fonts.font_data.contains_key("Hack") {
        fonts.families.entry(egui::FontFamily::Proportional).or_default().push("Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

#[derive(Default)]
struct Panels {
    datasets: panels::datasets::DatasetsPanel,
    abstraction: panels::abstraction::AbstractionPanel,
    training: panels::training::TrainingPanel,
    router: panels::router::RouterPanel,
    rankings: panels::rankings::RankingsPanel,
}

pub struct WorkbenchApp {
    settings: Settings,
    workspace: Workspace,
    jobs: Jobs,
    requests: Vec<AppRequest>,
    selection: SharedSelection,
    panels: Panels,
    applied_theme: Option<ThemeChoice>,
    persist: bool,
    screenshot: Option<ScreenshotTask>,
    frame_stats: Option<Arc<FrameStats>>,
    /// When to close the window (`--quit-after`).
    quit_at: Option<Instant>,
    /// The experiment to open once the dataset has loaded (`--experiment`).
    pending_experiment: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    /// Which backbone the generalist uses when none is set, and how to get the other (status bar).
    default_backbone: crate::model::default_backbone::DefaultBackbone,
}

impl WorkbenchApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: StartOptions) -> Self {
        let mut settings = match (options.persist, cc.storage) {
            (true, Some(storage)) => eframe::get_value::<Settings>(storage, eframe::APP_KEY).unwrap_or_default(),
            _ => Settings::default(),
        };
        if let Some(panel) = options.panel {
            settings.panel = panel;
        }
        if let Some(dir) = options.export_dir {
            settings.export_dir = Some(dir);
        }
        if let Some(path) = options.corrections {
            settings.abstraction.corrections_path = Some(path);
        }
        if let Some(path) = options.backbone {
            settings.rankings.backbone = Some(path);
        }
        install_fonts(&cc.egui_ctx);
        let mut panels = Panels::default();
        if let Some(config) = options.training_config {
            panels.training = panels::training::TrainingPanel::with_config(config);
        }
        let mut requests = Vec::new();
        let default_backbone = crate::model::default_backbone::default_backbone();
        let demo = if options.open_demo && options.experiment.is_none() && options.router_path.is_none() {
            match settings.rankings.experiment_dir.clone().filter(|dir| dir.join("results.json").is_file()) {
                Some(last) => Some(last),
                None => crate::workbench::demo::shipped_demo(&default_backbone).inspect(|_| {
                    // The paper's comparison, the generalist as the reference of the significance marks.
                    settings.rankings.systems =
                        vec![SystemKind::Experiment("generalist".into()), SystemKind::Experiment("r2r_lsr".into()), SystemKind::Bm25];
                }),
            }
        } else {
            None
        };
        if let Some(dir) = &demo {
            panels.training.open_run(dir);
            panels.router = panels::router::RouterPanel::with_path(dir.clone());
            requests.push(AppRequest::OpenRouting(dir.clone()));
        }
        if let Some(path) = options.router_path {
            panels.router = panels::router::RouterPanel::with_path(path.clone());
            if options.route_at_start {
                // An experiment directory is read back; a run directory is routed.
                if crate::experiment::open::experiment_root(&path).is_some() {
                    requests.push(AppRequest::OpenRouting(path));
                } else {
                    requests.push(AppRequest::Route { path, split: crate::data::Split::Test });
                }
            }
        }
        let repaint_ctx = cc.egui_ctx.clone();
        let mut jobs = Jobs::new(Arc::new(move || repaint_ctx.request_repaint()));
        if options.train_at_start {
            panels.training.start(&mut jobs);
        }
        let mut app = WorkbenchApp {
            settings,
            workspace: Workspace::default(),
            jobs,
            requests,
            selection: SharedSelection::default(),
            panels,
            applied_theme: None,
            persist: options.persist,
            screenshot: options.screenshot.map(|(path, outcome)| ScreenshotTask::new(path, outcome)),
            frame_stats: options.frame_stats,
            quit_at: options.quit_after.map(|d| Instant::now() + d),
            pending_experiment: options.experiment.or(demo),
            cache_dir: options.cache_dir,
            default_backbone,
        };
        let initial = options.data.or_else(|| if options.open_bundled_data { crate::assets::sample_data() } else { None });
        if let Some(path) = initial {
            app.start_load(path);
        }
        app
    }

    /// Read access for tests and tools.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// True while a load or a ranking run is in progress.
    pub fn is_busy(&self) -> bool {
        self.workspace.loading.is_some() || self.jobs.any_running()
    }

    fn start_load(&mut self, path: PathBuf) {
        if let Some((previous, _)) = self.workspace.loading.take() {
            self.jobs.cancel(previous);
        }
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let job_path = path.clone();
        let id = self.jobs.spawn(format!("Load {name}"), move |job| {
            crate::gui::jobs::report_steps(job, "reading", 0, 1);
            let loaded = LoadedDataset::load(&job_path, &LoadOptions::default())?;
            job.check_cancelled()?;
            job.log(format!(
                "{}: {} query groups in {} domains ({:.2} s)",
                loaded.format,
                loaded.dataset.groups.len(),
                loaded.stats.len(),
                loaded.load_seconds
            ));
            Ok(JobOutput::Dataset(Arc::new(loaded)))
        });
        self.workspace.loading = Some((id, path));
    }

    fn start_rankings(&mut self, loaded: &Arc<LoadedDataset>) {
        let runs = std::mem::take(&mut self.workspace.runs);
        let split_runs = std::mem::take(&mut self.workspace.split_runs);
        for state in runs.into_values().chain(split_runs.into_values()) {
            if let RunState::Computing(id) = state {
                self.jobs.cancel(id);
            }
        }
        for system in SystemKind::EAGER {
            let loaded = loaded.clone();
            let job_system = system.clone();
            let id = self.jobs.spawn(format!("Rank with {}", system.name()), move |job| {
                Ok(JobOutput::Rankings(Arc::new(SystemRun::compute(job_system, &loaded.dataset, job)?)))
            });
            self.workspace.runs.insert(system, RunState::Computing(id));
        }
        self.workspace.significance = None;
        // The open experiment's run files are read again against the new data.
        if let Some((dir, _)) = self.workspace.experiment.take() {
            self.start_experiment(dir);
        }
    }

    /// Ranks one split with a per-split system (once; the result is kept for the session's dataset).
    fn start_split_ranking(&mut self, system: SystemKind, split: crate::data::Split) {
        let key = (system.clone(), split);
        let Some(loaded) = self.workspace.dataset.clone() else { return };
        if self.workspace.split_runs.contains_key(&key) || !system.per_split() {
            return;
        }
        let model = self.settings.rankings.backbone.clone().unwrap_or_else(|| crate::model::default_backbone::default_backbone().path);
        let cache = self.cache_dir.clone();
        let id = self.jobs.spawn(format!("Rank {split} with {}", system.name()), move |job| {
            Ok(JobOutput::SplitRanking(split, Arc::new(SystemRun::compute_generalist(&model, &loaded.dataset, split, cache.as_deref(), job)?)))
        });
        self.workspace.split_runs.insert(key, RunState::Computing(id));
    }

    /// Reads an experiment directory's run files against the open dataset.
    fn start_experiment(&mut self, dir: PathBuf) {
        if let Some((_, RunState::Computing(previous))) = self.workspace.experiment.take() {
            self.jobs.cancel(previous);
        }
        self.workspace.runs.retain(|system, _| !matches!(system, SystemKind::Experiment(_)));
        let Some(loaded) = self.workspace.dataset.clone() else {
            let message = "open the dataset the experiment ran on first (Datasets panel)".to_string();
            self.workspace.experiment = Some((dir, RunState::Failed(message)));
            return;
        };
        self.settings.rankings.experiment_dir = Some(dir.clone());
        let job_dir = dir.clone();
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        let id = self.jobs.spawn(format!("Open experiment {name}"), move |job| {
            Ok(JobOutput::Experiment(Arc::new(crate::gui::experiment_runs::ExperimentRuns::load(&job_dir, &loaded.dataset, &loaded.path, job)?)))
        });
        self.workspace.experiment = Some((dir, RunState::Computing(id)));
    }

    /// Puts an experiment's systems into the workspace. The systems already chosen
    /// stay chosen (built-in ones included); with none of the experiment's chosen
    /// yet, the paper's comparison (`generalist`, `r2r_lsr`) is added where the
    /// cap of four leaves room.
    fn accept_experiment(&mut self, runs: Arc<crate::gui::experiment_runs::ExperimentRuns>) {
        for run in &runs.runs {
            self.workspace.runs.insert(run.system.clone(), RunState::Ready(run.clone()));
        }
        let chosen = &mut self.settings.rankings.systems;
        chosen.retain(|s| !matches!(s, SystemKind::Experiment(name) if !runs.runs.iter().any(|r| r.system.name() == name)));
        if !chosen.iter().any(|s| matches!(s, SystemKind::Experiment(_))) {
            let pick = ["generalist", "r2r_lsr"].into_iter().map(|n| SystemKind::Experiment(n.to_string())).filter(|s| runs.runs.iter().any(|r| &r.system == s));
            for system in pick {
                if chosen.len() < crate::gui::panels::rankings::MAX_SYSTEMS {
                    chosen.push(system);
                }
            }
        }
    }

    fn start_comparison(&mut self, query: String) {
        if let Some((_, RunState::Computing(previous))) = self.workspace.expert_comparison.take() {
            self.jobs.cancel(previous);
        }
        if let Some((_, RunState::Ready(experiment))) = &self.workspace.routing_experiment {
            let (experiment, loaded, job_query) = (experiment.clone(), self.workspace.dataset.clone(), query.clone());
            let id = self.jobs.spawn(format!("Compare experts on {query}"), move |job| {
                Ok(JobOutput::ExpertComparison(Arc::new(crate::gui::routing_run::ExpertComparison::for_misroute(&experiment, &job_query, loaded, job)?)))
            });
            self.workspace.expert_comparison = Some((query, RunState::Computing(id)));
            return;
        }
        let Some(RunState::Ready(run)) = &self.workspace.routing else { return };
        let run = run.clone();
        let job_query = query.clone();
        let id = self.jobs.spawn(format!("Compare experts on {query}"), move |job| {
            Ok(JobOutput::ExpertComparison(Arc::new(crate::gui::routing_run::ExpertComparison::compute(&run, &job_query, job)?)))
        });
        self.workspace.expert_comparison = Some((query, RunState::Computing(id)));
    }

    /// Forgets the Router panel's results (routing, opened experiment, comparison), cancelling their jobs.
    fn clear_routing(&mut self) {
        let routing = self.workspace.routing.take().and_then(|s| if let RunState::Computing(id) = s { Some(id) } else { None });
        let experiment = self.workspace.routing_experiment.take().and_then(|(_, s)| if let RunState::Computing(id) = s { Some(id) } else { None });
        let comparison = self.workspace.expert_comparison.take().and_then(|(_, s)| if let RunState::Computing(id) = s { Some(id) } else { None });
        for id in [routing, experiment, comparison].into_iter().flatten() {
            self.jobs.cancel(id);
        }
    }

    /// Opens an experiment directory in the Router panel.
    fn start_experiment_routing(&mut self, path: PathBuf) {
        self.clear_routing();
        let job_path = path.clone();
        let id = self.jobs.spawn(format!("Open {} in Router", path.display()), move |job| {
            crate::gui::jobs::report_steps(job, "reading results.json, routing.csv, misroute.csv", 0, 1);
            Ok(JobOutput::ExperimentRouting(Arc::new(crate::experiment::open::ExperimentRouting::load(&job_path)?)))
        });
        self.workspace.routing_experiment = Some((path, RunState::Computing(id)));
    }

    fn start_routing(&mut self, path: PathBuf, split: crate::data::Split) {
        self.clear_routing();
        let loaded = self.workspace.dataset.clone();
        let id = self.jobs.spawn(format!("Route {split} queries"), move |job| {
            Ok(JobOutput::Routing(Arc::new(crate::gui::routing_run::RoutingRun::compute(&path, loaded, split, job)?)))
        });
        self.workspace.routing = Some(RunState::Computing(id));
    }

    /// Once every system's run is ready: paired randomization tests between them.
    fn start_significance(&mut self) {
        let runs: Option<Vec<Arc<SystemRun>>> = SystemKind::EAGER.iter().map(|s| self.workspace.run(s).cloned()).collect();
        let Some(runs) = runs else { return };
        let id = self.jobs.spawn("Significance tests", move |job| Ok(JobOutput::Significance(Arc::new(SignificanceTable::compute(&runs, job)?))));
        self.workspace.significance = Some(RunState::Computing(id));
    }

    /// Moves finished jobs' results into the workspace.
    fn collect_jobs(&mut self) {
        for (id, result) in self.jobs.poll() {
            let is_load = self.workspace.loading.as_ref().is_some_and(|(load, _)| *load == id);
            match result {
                Ok(JobOutput::Dataset(loaded)) if is_load => {
                    self.workspace.loading = None;
                    self.workspace.load_failure = None;
                    self.settings.remember_dataset(&loaded.path);
                    self.workspace.dataset = Some(loaded.clone());
                    // The Router panel's routing was of the previous data: not shown under the new name.
                    if self.workspace.routing.is_some() {
                        self.clear_routing();
                    }
                    self.workspace.expert_comparison = None;
                    self.start_rankings(&loaded);
                    if let Some(dir) = self.pending_experiment.take() {
                        self.start_experiment(dir);
                    }
                }
                Ok(JobOutput::Rankings(run)) => {
                    if self.is_current_run(&run.system, id) {
                        self.workspace.runs.insert(run.system.clone(), RunState::Ready(run));
                        self.start_significance();
                    }
                }
                Ok(JobOutput::SplitRanking(split, run)) => {
                    let key = (run.system.clone(), split);
                    if matches!(self.workspace.split_runs.get(&key), Some(RunState::Computing(job)) if *job == id) {
                        self.workspace.split_runs.insert(key, RunState::Ready(run));
                    }
                }
                Ok(JobOutput::Experiment(runs)) => {
                    if let Some((_, state)) = self.workspace.experiment.as_mut().filter(|(_, s)| matches!(s, RunState::Computing(job) if *job == id)) {
                        *state = RunState::Ready(runs.clone());
                        self.accept_experiment(runs);
                    }
                }
                Ok(JobOutput::ExpertComparison(comparison)) => {
                    if let Some((_, state)) = self.workspace.expert_comparison.as_mut().filter(|(_, s)| matches!(s, RunState::Computing(job) if *job == id)) {
                        *state = RunState::Ready(comparison);
                    }
                }
                Ok(JobOutput::Significance(table)) => {
                    if matches!(self.workspace.significance, Some(RunState::Computing(job)) if job == id) {
                        self.workspace.significance = Some(RunState::Ready(table));
                    }
                }
                Ok(JobOutput::Training(summary)) => self.workspace.last_training = Some(summary),
                Ok(JobOutput::Routing(run)) => {
                    if matches!(self.workspace.routing, Some(RunState::Computing(job)) if job == id) {
                        self.workspace.routing = Some(RunState::Ready(run));
                    }
                }
                Ok(JobOutput::ExperimentRouting(experiment)) => {
                    if let Some((_, state)) = self.workspace.routing_experiment.as_mut().filter(|(_, s)| matches!(s, RunState::Computing(job) if *job == id)) {
                        *state = RunState::Ready(experiment);
                    }
                }
                Ok(JobOutput::Dataset(_)) => {} // a load that was superseded
                Err(err) if is_load => {
                    let (_, path) = self.workspace.loading.take().expect("is_load");
                    self.workspace.load_failure = Some(LoadFailure {
                        path,
                        data_error: err.downcast_ref::<DataError>().cloned(),
                        message: format!("{err:#}"),
                    });
                }
                Err(err) if err.is::<crate::train::jobs::Cancelled>() => {
                    // A cancelled job is no failure: whatever waited for it is forgotten (and may be asked for again).
                    let waits = |state: &RunState<_>| matches!(state, RunState::Computing(job) if *job == id);
                    let workspace = &mut self.workspace;
                    workspace.runs.retain(|_, state| !waits(state));
                    workspace.split_runs.retain(|_, state| !waits(state));
                    if workspace.routing.as_ref().is_some_and(|s| matches!(s, RunState::Computing(job) if *job == id)) {
                        workspace.routing = None;
                    }
                    if workspace.routing_experiment.as_ref().is_some_and(|(_, s)| matches!(s, RunState::Computing(job) if *job == id)) {
                        workspace.routing_experiment = None;
                    }
                    if workspace.expert_comparison.as_ref().is_some_and(|(_, s)| matches!(s, RunState::Computing(job) if *job == id)) {
                        workspace.expert_comparison = None;
                    }
                    if workspace.significance.as_ref().is_some_and(|s| matches!(s, RunState::Computing(job) if *job == id)) {
                        workspace.significance = None;
                    }
                }
                Err(err) => {
                    let message = format!("{err:#}");
                    let workspace = &mut self.workspace;
                    let _ = workspace.runs.values_mut().any(|state| fail_if_job(state, id, &message))
                        || workspace.split_runs.values_mut().any(|state| fail_if_job(state, id, &message))
                        || workspace.experiment.as_mut().is_some_and(|(_, state)| fail_if_job(state, id, &message))
                        || workspace.expert_comparison.as_mut().is_some_and(|(_, state)| fail_if_job(state, id, &message))
                        || workspace.significance.as_mut().is_some_and(|state| fail_if_job(state, id, &message))
                        || workspace.routing.as_mut().is_some_and(|state| fail_if_job(state, id, &message))
                        || workspace.routing_experiment.as_mut().is_some_and(|(_, state)| fail_if_job(state, id, &message));
                }
            }
        }
    }

    fn is_current_run(&self, system: &SystemKind, id: JobId) -> bool {
        matches!(self.workspace.runs.get(system), Some(RunState::Computing(job)) if *job == id)
    }

    fn apply_theme(&mut self, ctx: &egui::Context) {
        if self.applied_theme != Some(self.settings.theme) {
            ctx.set_theme(match self.settings.theme {
                ThemeChoice::Dark => egui::Theme::Dark,
                ThemeChoice::Light => egui::Theme::Light,
            });
            self.applied_theme = Some(self.settings.theme);
        }
    }

    fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| i.raw.dropped_files.iter().map(|f| f.path().to_path_buf()).collect());
        if let Some(path) = dropped.into_iter().next() {
            self.settings.panel = PanelKind::Datasets;
            self.requests.push(AppRequest::LoadDataset(path));
        }
    }

    fn drop_overlay(&self, ctx: &egui::Context) {
        let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
        if !hovering {
            return;
        }
        let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop_overlay")));
        let rect = ctx.content_rect();
        painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(170));
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "Drop to open the dataset",
            egui::FontId::proportional(28.0),
            egui::Color32::WHITE,
        );
    }

    fn navigation(&mut self, ui: &mut egui::Ui) {
        ui.add_space(8.0);
        ui.heading("R2R Workbench");
        ui.add_space(8.0);
        ui.with_layout(egui::Layout::top_down_justified(egui::Align::LEFT), |ui| {
            for (n, panel) in PanelKind::ALL.into_iter().enumerate() {
                let button = egui::Button::selectable(self.settings.panel == panel, RichText::new(panel.title()).size(15.0));
                let response = ui.add(button).on_hover_text(format!("{}  (Ctrl+{})", panel.hint(), n + 1));
                if response.clicked() {
                    self.settings.panel = panel;
                }
            }
        });
        let keys = [egui::Key::Num1, egui::Key::Num2, egui::Key::Num3, egui::Key::Num4, egui::Key::Num5];
        for (key, panel) in keys.into_iter().zip(PanelKind::ALL) {
            if ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, key)) {
                self.settings.panel = panel;
            }
        }
        ui.with_layout(egui::Layout::bottom_up(egui::Align::LEFT), |ui| {
            ui.add_space(8.0);
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.settings.theme, ThemeChoice::Light, "Light").on_hover_text("Light theme");
                ui.selectable_value(&mut self.settings.theme, ThemeChoice::Dark, "Dark").on_hover_text("Dark theme");
            });
            ui.label(RichText::new("Theme").weak());
        });
    }

    fn status_bar(&self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let running: Vec<&str> = self.jobs.all().iter().filter(|j| j.status.is_running()).map(|j| j.title.as_str()).collect();
            if running.is_empty() {
                ui.label("Ready");
            } else {
                ui.spinner();
                ui.label(format!("{} job(s) running: {}", running.len(), running.join(", ")));
            }
            if let Some(loaded) = &self.workspace.dataset {
                ui.separator();
                ui.label(format!("{} ({} queries)", loaded.path.display(), loaded.dataset.groups.len()));
            }
            ui.separator();
            match &self.settings.rankings.backbone {
                Some(path) => ui.label(format!("backbone: {}", path.display())).on_hover_text("Set in Rankings"),
                None => {
                    let short = match self.default_backbone.kind {
                        crate::model::default_backbone::BackboneKind::GemmaGeneralist => "backbone: Gemma 3 270M generalist",
                        crate::model::default_backbone::BackboneKind::Bundled => "backbone: bundled tiny",
                    };
                    ui.label(short).on_hover_text(&self.default_backbone.note)
                }
            };
        });
    }
}

impl eframe::App for WorkbenchApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        if let Some(stats) = &self.frame_stats {
            stats.frame_started();
            if let Some(seconds) = frame.info().cpu_usage {
                stats.record_frame(seconds, self.jobs.any_running());
            }
        }
        self.apply_theme(&ctx);
        self.collect_jobs();
        self.take_dropped_files(&ctx);

        egui::Panel::left("navigation").resizable(false).exact_size(170.0).show(ui, |ui| self.navigation(ui));
        egui::Panel::bottom("status_bar").show(ui, |ui| self.status_bar(ui));
        egui::CentralPanel::default().show(ui, |ui| {
            let mut cx = PanelContext {
                workspace: &self.workspace,
                jobs: &mut self.jobs,
                settings: &mut self.settings,
                requests: &mut self.requests,
                selection: &mut self.selection,
            };
            let panels = &mut self.panels;
            match cx.settings.panel {
                PanelKind::Datasets => panels.datasets.ui(ui, &mut cx),
                PanelKind::Abstraction => panels.abstraction.ui(ui, &mut cx),
                PanelKind::Training => panels.training.ui(ui, &mut cx),
                PanelKind::Router => panels.router.ui(ui, &mut cx),
                PanelKind::Rankings => panels.rankings.ui(ui, &mut cx),
            }
        });
        for request in std::mem::take(&mut self.requests) {
            match request {
                AppRequest::LoadDataset(path) => self.start_load(path),
                AppRequest::Route { path, split } => self.start_routing(path, split),
                AppRequest::RankSplit(system, split) => self.start_split_ranking(system, split),
                AppRequest::LoadExperiment(dir) => self.start_experiment(dir),
                AppRequest::CompareExperts { query } => self.start_comparison(query),
                AppRequest::OpenRouting(path) => self.start_experiment_routing(path),
                AppRequest::ClearRouting => self.clear_routing(),
                AppRequest::ShowPanel(panel) => self.settings.panel = panel,
                AppRequest::DismissLoadError => self.workspace.load_failure = None,
                AppRequest::OpenRunInRouter(dir) => {
                    self.panels.router = panels::router::RouterPanel::with_path(dir.clone());
                    self.settings.panel = PanelKind::Router;
                    self.start_routing(dir, crate::data::Split::Test);
                }
            }
        }
        self.drop_overlay(&ctx);
        let busy = self.is_busy();
        if let Some(task) = &mut self.screenshot {
            task.step(&ctx, busy);
        }
        if let Some(quit_at) = self.quit_at {
            let now = Instant::now();
            if now >= quit_at {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            } else {
                ctx.request_repaint_after(quit_at - now);
            }
        }
        let ui_seconds = started.elapsed().as_secs_f32();
        if ui_seconds > 0.016 {
            tracing::debug!("slow frame: {:.1} ms in the app's ui code ({:?} panel)", ui_seconds * 1e3, self.settings.panel);
        }
        if let Some(stats) = &self.frame_stats {
            stats.record_app_ui(ui_seconds);
            ctx.request_repaint(); // measure continuously, not only on input
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.persist {
            eframe::set_value(storage, eframe::APP_KEY, &self.settings);
        }
    }

    fn raw_input_hook(&mut self, _ctx: &egui::Context, raw_input: &mut egui::RawInput) {
        // A screenshot shows the app as it is, without tooltips from wherever the
        // (virtual) mouse pointer happens to rest.
        if self.screenshot.is_some() {
            raw_input.events.retain(|e| !matches!(e, egui::Event::PointerMoved(_) | egui::Event::PointerButton { .. }));
            raw_input.events.push(egui::Event::PointerGone);
        }
    }

    fn persist_egui_memory(&self) -> bool {
        self.persist
    }
}
