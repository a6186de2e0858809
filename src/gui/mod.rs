//! The desktop app (eframe/egui): `r2r` with no subcommand opens it.
//!
//! `app` holds the eframe App, `state` the UI state and the workspace of engine
//! results, `jobs` the background work, `panels` one file per panel. Engine
//! calls go through the `r2r::` library; nothing outside `gui` depends on egui.

pub mod app;
/// The engine modules the app uses, under their former paths.
pub use crate::workbench::{experiment_runs, routing_run, systems};
pub mod entity_text;
pub mod frame_stats;
pub mod jobs;
pub mod panels;
pub mod screenshot;
pub mod selection_capture;
pub mod state;
pub mod widgets;

use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail};

use crate::gui::app::{StartOptions, WorkbenchApp};
use crate::gui::frame_stats::FrameStats;
use crate::gui::state::PanelKind;

/// The window's default inner size (logical points).
pub const DEFAULT_WINDOW_SIZE: [f32; 2] = [1400.0, 900.0];

/// How the app is launched (the command line's options, without the command line: `cli` builds it).
#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub data: Option<std::path::PathBuf>,
    pub screenshot: Option<std::path::PathBuf>,
    pub panel: Option<String>,
    pub frame_stats: bool,
    pub corrections: Option<std::path::PathBuf>,
    pub train: Option<std::path::PathBuf>,
    pub run: Option<std::path::PathBuf>,
    pub experiment: Option<std::path::PathBuf>,
    pub auto_train: Option<String>,
    pub quit_after: Option<f64>,
    pub model: Option<std::path::PathBuf>,
}

/// Opens the app window and returns when it closes.
pub fn run(args: Launch) -> anyhow::Result<()> {
    let panel = match args.panel.as_deref() {
        Some(name) => Some(PanelKind::parse(name).ok_or_else(|| {
            let names: Vec<&str> = PanelKind::ALL.iter().map(|p| p.title()).collect();
            anyhow!("unknown panel `{name}` (expected one of: {})", names.join(", "))
        })?),
        None => None,
    };
    if let Some(path) = &args.data {
        if !path.exists() {
            bail!("{}: no such file or directory", path.display());
        }
    }
    let frame_stats = args.frame_stats.then(|| Arc::new(FrameStats::default()));
    // --auto-train: the chosen config, writing into a directory removed at exit.
    let scratch = args.auto_train.as_ref().map(|_| tempfile::tempdir()).transpose()?;
    let auto_config = match (&args.auto_train, &scratch) {
        (Some(name), Some(dir)) => {
            let mut config = if name == "tiny" {
                crate::gui::panels::training::tiny_preset()?.0
            } else {
                crate::train::TrainConfig::load(std::path::Path::new(name))?
            };
            config.output.dir = dir.path().join("run");
            Some(config)
        }
        _ => None,
    };
    if let Some(seconds) = args.quit_after {
        if !(seconds.is_finite() && seconds > 0.0) {
            bail!("--quit-after {seconds}: expected a positive number of seconds");
        }
    }
    let screenshot = args.screenshot.clone().map(|path| (path, Arc::new(Mutex::new(None))));
    let outcome = screenshot.as_ref().map(|(_, outcome)| outcome.clone());
    let start = StartOptions {
        data: args.data.clone(),
        open_bundled_data: true,
        // App::new leaves the demo out when an experiment or a run is named.
        open_demo: args.data.is_none(),
        panel,
        persist: screenshot.is_none(),
        screenshot,
        frame_stats: frame_stats.clone(),
        corrections: args.corrections.clone(),
        train_at_start: args.train.is_some() || auto_config.is_some(),
        training_config: match auto_config {
            Some(config) => Some(config),
            None => args.train.as_deref().map(crate::train::TrainConfig::load).transpose()?,
        },
        experiment: args.experiment.clone(),
        quit_after: args.quit_after.map(std::time::Duration::from_secs_f64),
        route_at_start: args.run.is_some(),
        router_path: args.run.clone(),
        export_dir: None,
        cache_dir: Some(crate::gui::state::app_data_dir().join("cache")),
        backbone: args.model.clone(),
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("R2R Workbench")
            .with_inner_size(DEFAULT_WINDOW_SIZE)
            .with_min_inner_size([1000.0, 640.0]),
        persist_window: start.persist,
        ..Default::default()
    };

    eframe::run_native("R2R Workbench", options, Box::new(move |cc| Ok(Box::new(WorkbenchApp::new(cc, start)))))
        .map_err(|err| anyhow!("cannot open the app window: {err} (it needs a desktop session, or Xvfb with Mesa's OpenGL/EGL drivers)"))?;
    if let Some(stats) = frame_stats {
        println!("{}", stats.report());
    }
    drop(scratch);
    if let Some(outcome) = outcome {
        match outcome.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(Ok(path)) => println!("wrote {}", path.display()),
            Some(Err(err)) => bail!("the screenshot could not be saved: {err}"),
            None => bail!("the window closed before the screenshot was taken"),
        }
    }
    Ok(())
}
