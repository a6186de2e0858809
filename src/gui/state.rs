//! The app's state, kept apart from drawing: persisted settings (theme, panel,
//! recent paths, per-panel choices) and the workspace of engine results the
//! panels display (the loaded dataset and the systems' rankings of it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::abstraction::Numbering;
use crate::data::{DataError, Split};
use crate::gui::jobs::JobId;
use crate::metrics::Metric;
use crate::workbench::experiment_runs::ExperimentRuns;
use crate::workbench::systems::{SignificanceTable, SystemKind, SystemRun};
pub use crate::workbench::dataset::LoadedDataset;

/// The panels of the app, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PanelKind {
    Datasets,
    Abstraction,
    Training,
    Router,
    Rankings,
}

impl PanelKind {
    pub const ALL: [PanelKind; 5] =
        [PanelKind::Datasets, PanelKind::Abstraction, PanelKind::Training, PanelKind::Router, PanelKind::Rankings];

    pub fn title(self) -> &'static str {
        match self {
            PanelKind::Datasets => "Datasets",
            PanelKind::Abstraction => "Abstraction",
            PanelKind::Training => "Training",
            PanelKind::Router => "Router",
            PanelKind::Rankings => "Rankings",
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            PanelKind::Datasets => "Open datasets, see per-domain statistics, browse queries and candidates",
            PanelKind::Abstraction => "Entity abstraction preview: original and abstracted text side by side",
            PanelKind::Training => "Train stage 1, experts, baselines and the router; watch loss curves",
            PanelKind::Router => "Routing accuracy, confusion matrix and misrouted queries",
            PanelKind::Rankings => "Compare the ranked candidate lists of several systems",
        }
    }

    /// Parses a panel name as given to `--panel` (case-insensitive).
    pub fn parse(name: &str) -> Option<PanelKind> {
        PanelKind::ALL.into_iter().find(|p| p.title().eq_ignore_ascii_case(name.trim()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThemeChoice {
    Dark,
    Light,
}

/// Choices of the rankings panel that outlive a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RankingsSettings {
    /// The systems shown side by side (2–4), left to right; the first is the reference for rank movement.
    pub systems: Vec<SystemKind>,
    pub split: Option<Split>,
    /// The metric of the per-domain chart, the table and the per-query line.
    pub metric: Metric,
    /// The backbone of the generalist system (default: the bundled `assets/backbone`).
    pub backbone: Option<PathBuf>,
    /// The experiment directory opened last.
    pub experiment_dir: Option<PathBuf>,
}

impl Default for RankingsSettings {
    fn default() -> Self {
        RankingsSettings {
            systems: vec![SystemKind::Bm25, SystemKind::RandomOrder],
            split: Some(Split::Test),
            metric: Metric::Ndcg(Some(10)),
            backbone: None,
            experiment_dir: None,
        }
    }
}

/// Choices of the abstraction panel that outlive a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AbstractionSettings {
    /// The user's corrections file (default: `corrections.json` in the app's data directory).
    pub corrections_path: Option<PathBuf>,
    /// Types left unmasked (every other type is masked).
    pub unmasked_types: BTreeSet<String>,
    pub intensity: f64,
    pub seed: u64,
    pub numbering: Numbering,
    /// Run the bundled learned NER heads (assets/ner/heads) on the backbone.
    pub learned: bool,
    /// One confidence threshold for every learned head and type (None: each head's own).
    pub learned_threshold: Option<f32>,
    /// Colour spans by the recogniser that found them instead of by type.
    pub color_by_source: bool,
}

impl Default for AbstractionSettings {
    fn default() -> Self {
        AbstractionSettings {
            corrections_path: None,
            unmasked_types: BTreeSet::new(),
            intensity: 1.0,
            seed: 0,
            numbering: Numbering::Ordered,
            learned: false,
            learned_threshold: None,
            color_by_source: false,
        }
    }
}

/// Everything persisted between sessions (eframe storage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub theme: ThemeChoice,
    pub panel: PanelKind,
    /// Datasets opened before, most recent first.
    pub recent_datasets: Vec<PathBuf>,
    /// Where the file dialog opened last.
    pub last_dialog_dir: Option<PathBuf>,
    pub rankings: RankingsSettings,
    pub abstraction: AbstractionSettings,
    /// Where "Save CSV" writes (default: `exports/` in the app's data directory).
    pub export_dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            theme: ThemeChoice::Dark,
            panel: PanelKind::Datasets,
            recent_datasets: Vec::new(),
            last_dialog_dir: None,
            rankings: RankingsSettings::default(),
            abstraction: AbstractionSettings::default(),
            export_dir: None,
        }
    }
}

/// The app's data directory (settings, corrections, exports, training runs), absolute.
pub fn app_data_dir() -> PathBuf {
    eframe::storage_dir("R2R Workbench")
        .or_else(|| std::env::current_dir().ok().map(|d| d.join("r2r-workbench-data")))
        .unwrap_or_else(|| PathBuf::from("/tmp/r2r-workbench-data"))
}

impl Settings {
    pub const MAX_RECENT: usize = 8;

    /// Where "Save CSV" writes.
    pub fn export_dir(&self) -> PathBuf {
        self.export_dir.clone().unwrap_or_else(|| app_data_dir().join("exports"))
    }

    pub fn remember_dataset(&mut self, path: &std::path::Path) {
        self.recent_datasets.retain(|p| p != path);
        self.recent_datasets.insert(0, path.to_path_buf());
        self.recent_datasets.truncate(Self::MAX_RECENT);
    }
}

/// Why the last load failed: the engine's error (file, line, field) or another cause.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub path: PathBuf,
    pub data_error: Option<DataError>,
    pub message: String,
}

/// A result computed in the background for the current dataset.
pub enum RunState<T = Arc<SystemRun>> {
    Computing(JobId),
    Ready(T),
    Failed(String),
}

/// Engine results shared by the panels.
#[derive(Default)]
pub struct Workspace {
    pub dataset: Option<Arc<LoadedDataset>>,
    /// The load in progress, if any.
    pub loading: Option<(JobId, PathBuf)>,
    pub load_failure: Option<LoadFailure>,
    /// Whole-dataset runs (BM25, random order) and the runs of the open experiment's systems.
    pub runs: BTreeMap<SystemKind, RunState>,
    /// Runs of per-split systems (the generalist), computed when a panel asks.
    pub split_runs: BTreeMap<(SystemKind, Split), RunState>,
    /// The experiment directory whose run files give systems, and its loading.
    pub experiment: Option<(PathBuf, RunState<Arc<ExperimentRuns>>)>,
    /// Paired tests between the eager systems' runs (once all are ready).
    pub significance: Option<RunState<Arc<SignificanceTable>>>,
    /// The last training run that finished in this session.
    pub last_training: Option<Arc<crate::train::RunSummary>>,
    /// The Router panel's routing of a split.
    pub routing: Option<RunState<Arc<crate::gui::routing_run::RoutingRun>>>,
    /// The Router panel's query under the chosen and the correct expert: (query id, state).
    pub expert_comparison: Option<(String, RunState<Arc<crate::gui::routing_run::ExpertComparison>>)>,
    /// The Router panel's opened experiment directory (its routers and misroutes), instead of `routing`.
    pub routing_experiment: Option<(PathBuf, RunState<Arc<crate::experiment::open::ExperimentRouting>>)>,
}

impl Workspace {
    /// A whole-dataset or experiment system's run, when ready.
    pub fn run(&self, system: &SystemKind) -> Option<&Arc<SystemRun>> {
        match self.runs.get(system) {
            Some(RunState::Ready(run)) => Some(run),
            _ => None,
        }
    }

    /// Where the run that ranks `split` for `system` stands (None: never asked for).
    pub fn state_for(&self, system: &SystemKind, split: Split) -> Option<&RunState> {
        if system.per_split() {
            self.split_runs.get(&(system.clone(), split))
        } else {
            self.runs.get(system)
        }
    }

    /// The run that ranks `split` for `system`, when ready.
    pub fn run_for(&self, system: &SystemKind, split: Split) -> Option<&Arc<SystemRun>> {
        match self.state_for(system, split) {
            Some(RunState::Ready(run)) => Some(run),
            _ => None,
        }
    }

    /// One metric's values for a domain's queries over `splits` (query id order
    /// per split); None while a needed run is not ready.
    pub fn values(&self, system: &SystemKind, metric: Metric, domain: &str, splits: &[Split]) -> Option<Vec<f64>> {
        let mut values = Vec::new();
        for &split in splits {
            let run = self.run_for(system, split)?;
            values.extend(run.values(metric, &run.query_ids(domain, &[split])));
        }
        Some(values)
    }

    /// Mean of a metric over a domain's queries of `splits`, and their number
    /// (None while computing, or when the system ranked none of them).
    pub fn domain_mean(&self, system: &SystemKind, metric: Metric, domain: &str, splits: &[Split]) -> Option<(f64, usize)> {
        let values = self.values(system, metric, domain, splits)?;
        (!values.is_empty()).then(|| (values.iter().sum::<f64>() / values.len() as f64, values.len()))
    }

    /// One metric's value per query of a domain over `splits` (query id → value);
    /// None while a needed run is not ready.
    pub fn values_by_query(&self, system: &SystemKind, metric: Metric, domain: &str, splits: &[Split]) -> Option<BTreeMap<String, f64>> {
        let mut values = BTreeMap::new();
        for &split in splits {
            let run = self.run_for(system, split)?;
            let ids = run.query_ids(domain, &[split]);
            values.extend(ids.iter().zip(run.values(metric, &ids)).map(|(id, v)| (id.to_string(), v)));
        }
        Some(values)
    }

    /// Means of several systems on one domain over the **common query set**: the
    /// queries of `splits` that every ready system ranked (systems whose runs are
    /// not ready yet get no mean and do not narrow the set).
    pub fn common_means(&self, systems: &[SystemKind], metric: Metric, domain: &str, splits: &[Split]) -> CommonMeans {
        let values: Vec<Option<BTreeMap<String, f64>>> = systems.iter().map(|s| self.values_by_query(s, metric, domain, splits)).collect();
        let ranked: Vec<Option<usize>> = values.iter().map(|v| v.as_ref().map(BTreeMap::len)).collect();
        let mut ready = values.iter().flatten();
        let common: Vec<&String> = match ready.next() {
            Some(first) => {
                let rest: Vec<&BTreeMap<String, f64>> = ready.collect();
                first.keys().filter(|id| rest.iter().all(|r| r.contains_key(*id))).collect()
            }
            None => Vec::new(),
        };
        let means = values
            .iter()
            .map(|v| {
                let v = v.as_ref()?;
                (!common.is_empty()).then(|| common.iter().map(|id| v[*id]).sum::<f64>() / common.len() as f64)
            })
            .collect();
        CommonMeans { means, queries: common.len(), ranked }
    }

    /// The open experiment, when loaded.
    pub fn experiment_runs(&self) -> Option<&Arc<ExperimentRuns>> {
        match &self.experiment {
            Some((_, RunState::Ready(runs))) => Some(runs),
            _ => None,
        }
    }
}

/// Per-domain means of the shown systems over the queries all of them ranked.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonMeans {
    /// One mean per system (None: not ready, or no common query).
    pub means: Vec<Option<f64>>,
    /// N: the queries every ready system ranked.
    pub queries: usize,
    /// How many queries each system ranked on its own (None: not ready).
    pub ranked: Vec<Option<usize>>,
}

impl CommonMeans {
    /// True when some ready system ranked queries outside the common set.
    pub fn narrowed(&self) -> bool {
        self.ranked.iter().flatten().any(|&n| n != self.queries)
    }
}

/// What several panels show at once (kept by the app, not persisted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SharedSelection {
    /// The chosen query group's id.
    pub query: Option<String>,
}

/// What a panel asks the app to do (the app owns loading and the workspace).
#[derive(Debug, Clone, PartialEq)]
pub enum AppRequest {
    LoadDataset(PathBuf),
    /// Route a split with the trained router of a run (or router) directory.
    Route { path: PathBuf, split: Split },
    /// Rank one split with a per-split system (the generalist).
    RankSplit(SystemKind, Split),
    /// Load the systems of an experiment directory (its TREC run files).
    LoadExperiment(PathBuf),
    /// Score a routed query under the chosen and the correct expert.
    CompareExperts { query: String },
    /// Open an experiment directory in the Router panel (its routers, routing.csv, misroute.csv).
    OpenRouting(PathBuf),
    /// Forget the Router panel's results (e.g. another run directory was chosen).
    ClearRouting,
    /// Show a panel.
    ShowPanel(PanelKind),
    /// Hide the dataset load error.
    DismissLoadError,
    /// "Open in Router" after a training run: put its directory in the Router panel and route its test split.
    OpenRunInRouter(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_tolerate_missing_fields() {
        let mut settings = Settings { theme: ThemeChoice::Light, panel: PanelKind::Rankings, ..Default::default() };
        for i in 0..10 {
            settings.remember_dataset(std::path::Path::new(&format!("/data/{i}")));
        }
        settings.remember_dataset(std::path::Path::new("/data/3"));
        assert_eq!(settings.recent_datasets.len(), Settings::MAX_RECENT);
        assert_eq!(settings.recent_datasets[0], PathBuf::from("/data/3"), "re-opened path moves to the front");
        assert_eq!(settings.recent_datasets.iter().filter(|p| p.ends_with("3")).count(), 1);
        let json = serde_json::to_string(&settings).unwrap();
        assert_eq!(serde_json::from_str::<Settings>(&json).unwrap(), settings);
        // Settings saved by an older version (fewer fields) still load.
        let old: Settings = serde_json::from_str(r#"{"theme": "Light"}"#).unwrap();
        assert_eq!(old.theme, ThemeChoice::Light);
        assert_eq!(old.rankings, RankingsSettings::default());
    }

    #[test]
    fn panel_names_parse_case_insensitively() {
        assert_eq!(PanelKind::parse("rankings"), Some(PanelKind::Rankings));
        assert_eq!(PanelKind::parse(" Router "), Some(PanelKind::Router));
        assert_eq!(PanelKind::parse("plots"), None);
    }
}
