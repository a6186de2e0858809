//! A trained router evaluated on one split (runs on a job thread): the router
//! saved by the training pipeline (`RUN/router/`), the backbone's query hidden
//! states from the engine's features API, and the engine's `RoutingReport`,
//! with every query's probabilities kept for the Router panel's cell lists.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::data::{Dataset, QueryGroup, Split};
use crate::gui::state::LoadedDataset;
use crate::routing::{argmax, RoutingReport, TrainedRouter};
use crate::train::features::query_features;
use crate::train::jobs::JobContext;
use crate::train::TrainConfig;

/// One routed query.
#[derive(Debug, Clone)]
pub struct RoutedQuery {
    pub id: String,
    pub query: String,
    /// Label indices into the report's labels.
    pub truth: usize,
    pub predicted: usize,
    pub probabilities: Vec<f32>,
}

/// The router's routing of one split.
pub struct RoutingRun {
    pub router_dir: PathBuf,
    pub data_path: PathBuf,
    pub split: Split,
    pub report: RoutingReport,
    pub queries: Vec<RoutedQuery>,
}

/// The router directory of `path`: a router directory itself (router.json) or a run directory (`RUN/router`).
pub fn router_dir_of(path: &Path) -> PathBuf {
    if path.join("router.json").is_file() {
        path.to_path_buf()
    } else {
        path.join("router")
    }
}

impl RoutingRun {
    /// Routes `split` with the router under `path`. The data is `loaded` when
    /// given, else the dataset named by the run's `config.toml`.
    pub fn compute(path: &Path, loaded: Option<Arc<LoadedDataset>>, split: Split, job: &JobContext) -> Result<RoutingRun> {
        let router_dir = router_dir_of(path);
        let router = TrainedRouter::load(&router_dir).with_context(|| format!("{}: no trained router here (expected RUN/router/router.json)", path.display()))?;
        let labels = router.meta.labels.clone();
        let owned: Dataset;
        let (dataset, data_path): (&Dataset, PathBuf) = match &loaded {
            Some(loaded) => (&loaded.dataset, loaded.path.clone()),
            None => {
                let config_path = router_dir.parent().context("the router directory has no parent")?.join("config.toml");
                let config = TrainConfig::load(&config_path).with_context(|| "no dataset is open, so the run's config names the data".to_string())?;
                job.log(format!("reading {}", config.data.path.display()));
                owned = crate::data::load(&config.data.path, &crate::data::LoadOptions::default())?;
                (&owned, config.data.path)
            }
        };
        let groups: Vec<&QueryGroup> = dataset.select(None, Some(split)).filter(|g| labels.contains(&g.domain)).collect();
        if groups.is_empty() {
            bail!("{}: no {split} queries of the router's domains {labels:?}", data_path.display());
        }
        let recorded = router.meta.backbone.clone().unwrap_or_default();
        let model = recorded.rsplit_once(" sha256:").map_or(recorded.as_str(), |(p, _)| p);
        if model.is_empty() {
            bail!("{}/router.json records no backbone", router_dir.display());
        }
        crate::gui::jobs::report_steps(job, "features", 0, 2);
        job.log(format!("backbone {model}; {} {split} queries", groups.len()));
        let reranker = crate::model::Reranker::load(Path::new(model), &crate::model::LoadOptions::default())
            .with_context(|| format!("loading the router's backbone {model}"))?;
        let features = query_features(&reranker, &groups, Some(job))?;
        crate::gui::jobs::report_steps(job, "route", 1, 2);
        let probabilities = router.probabilities(&features)?;
        let queries: Vec<RoutedQuery> = groups
            .iter()
            .zip(probabilities)
            .map(|(g, p)| RoutedQuery {
                id: g.id.clone(),
                query: g.query.clone(),
                truth: labels.iter().position(|l| *l == g.domain).expect("filtered"),
                predicted: argmax(&p),
                probabilities: p,
            })
            .collect();
        let truth: Vec<usize> = queries.iter().map(|q| q.truth).collect();
        let predicted: Vec<usize> = queries.iter().map(|q| q.predicted).collect();
        let report = RoutingReport::new(&labels, &truth, &predicted);
        job.log(format!("accuracy {:.3}, macro-F1 {:.3}", report.accuracy, report.macro_f1));
        Ok(RoutingRun { router_dir, data_path, split, report, queries })
    }

    /// The queries of one confusion-matrix cell.
    pub fn cell(&self, truth: usize, predicted: usize) -> impl Iterator<Item = &RoutedQuery> {
        self.queries.iter().filter(move |q| q.truth == truth && q.predicted == predicted)
    }
}
