//! A trained router evaluated on one split (runs on a job thread): the router
//! saved by the training pipeline (`RUN/router/`), the backbone's query hidden
//! states from the engine's features API, and the engine's `RoutingReport`,
//! with every query's probabilities kept for the Router panel's cell lists; and
//! [`ExpertComparison`]: one query's candidates scored under the expert the
//! router chose and under the expert of its true domain (`RUN/experts/<domain>/`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::data::{Dataset, QueryGroup, Split};
use crate::experiment::open::ExperimentRouting;
use crate::workbench::systems::Ranking;
use crate::model::{ScoreOptions, ScoreRequest};
use crate::train::checkpoint::RunDir;
use crate::workbench::dataset::LoadedDataset;
use crate::routing::{argmax, BackboneRef, Router, RoutingReport, TrainedRouter};
use crate::train::features::{backbone_fingerprint, query_features};
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
    /// The backbone the router was trained on (recorded in router.json).
    pub backbone: PathBuf,
    /// The routed query groups, in the order of `queries`.
    pub groups: Vec<QueryGroup>,
    pub data_path: PathBuf,
    pub split: Split,
    pub report: RoutingReport,
    pub queries: Vec<RoutedQuery>,
}

/// Routes `groups` with `router` (the one routing path of the CLI and the GUI): a trained router
/// reads the query states of `backbone` (loaded here; files that differ from the fingerprint the
/// router recorded are a logged warning), a baseline router none. Returns each query's true label
/// index and its probabilities over the router's labels, in the order of `groups`.
pub fn route_groups(router: &Router, backbone: Option<&BackboneRef>, groups: &[&QueryGroup], job: Option<&JobContext>) -> Result<(Vec<usize>, Vec<Vec<f32>>)> {
    let labels = router.labels();
    let truth: Vec<usize> = groups
        .iter()
        .map(|g| labels.iter().position(|l| *l == g.domain).with_context(|| format!("query {}: domain `{}` is not one of the router's {labels:?}", g.id, g.domain)))
        .collect::<Result<_>>()?;
    let features = match (router, backbone) {
        (Router::Trained(_), None) => bail!("the router records no backbone: name the model it was trained on"),
        (Router::Trained(_), Some(recorded)) => {
            let backbone = BackboneRef { path: crate::assets::under_project_root(&recorded.path), sha256: recorded.sha256.clone() };
            if let Some(expected) = &backbone.sha256 {
                if backbone_fingerprint(&backbone.path)? != *expected {
                    let warning = format!("warning: {} differs from the backbone the router was trained on", backbone.path.display());
                    match job {
                        Some(job) => job.log(warning),
                        None => eprintln!("{warning}"),
                    }
                }
            }
            let reranker = crate::model::Reranker::load(&backbone.path, &crate::model::LoadOptions::default())
                .with_context(|| format!("loading the router's backbone {}", backbone.path.display()))?;
            query_features(&reranker, groups, job)?
        }
        _ => vec![Vec::new(); groups.len()],
    };
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let probabilities = router.probabilities(&features, &ids, Some(&truth))?;
    Ok((truth, probabilities))
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
        let Some(backbone) = router.meta.backbone.clone() else {
            bail!("{}/router.json records no backbone", router_dir.display());
        };
        crate::train::jobs::report_steps(job, "features", 0, 2);
        job.log(format!("backbone {}; {} {split} queries", backbone.path.display(), groups.len()));
        let (truth, probabilities) = route_groups(&Router::Trained(router), Some(&backbone), &groups, Some(job))?;
        crate::train::jobs::report_steps(job, "route", 1, 2);
        let queries: Vec<RoutedQuery> = groups
            .iter()
            .zip(&truth)
            .zip(probabilities)
            .map(|((g, &truth), p)| RoutedQuery { id: g.id.clone(), query: g.query.clone(), truth, predicted: argmax(&p), probabilities: p })
            .collect();
        let predicted: Vec<usize> = queries.iter().map(|q| q.predicted).collect();
        let report = RoutingReport::new(&labels, &truth, &predicted);
        job.log(format!("accuracy {:.3}, macro-F1 {:.3}", report.accuracy, report.macro_f1));
        let groups = groups.into_iter().cloned().collect();
        Ok(RoutingRun { router_dir, backbone: backbone.path, groups, data_path, split, report, queries })
    }

    /// The run directory holding `router/` and `experts/`.
    pub fn run_dir(&self) -> PathBuf {
        self.router_dir.parent().map_or_else(|| self.router_dir.clone(), Path::to_path_buf)
    }

    /// The queries of one confusion-matrix cell.
    pub fn cell(&self, truth: usize, predicted: usize) -> impl Iterator<Item = &RoutedQuery> {
        self.queries.iter().filter(move |q| q.truth == truth && q.predicted == predicted)
    }
}

/// One query ranked by the backbone under the expert the router chose and under
/// the expert of the query's true domain.
pub struct ExpertComparison {
    pub group: QueryGroup,
    pub chosen: String,
    pub correct: String,
    /// Rankings under the chosen and the correct expert (scores: yes − no logit margins).
    pub under_chosen: Ranking,
    pub under_correct: Ranking,
}

impl ExpertComparison {
    /// Scores query `query_id` of `run` under both experts (runs on a job thread).
    pub fn compute(run: &RoutingRun, query_id: &str, job: &JobContext) -> Result<ExpertComparison> {
        let index = run.queries.iter().position(|q| q.id == query_id).with_context(|| format!("query {query_id} is not in the routed split"))?;
        let (routed, group) = (&run.queries[index], &run.groups[index]);
        let labels = &run.report.labels;
        let (chosen, correct) = (labels[routed.predicted].clone(), labels[routed.truth].clone());
        ExpertComparison::compute_for(&run.run_dir(), &run.backbone, group, chosen, correct, job)
    }

    /// A misrouted query of an experiment (its misroute.csv) under the expert
    /// the LSR chose and under the correct one, from the experiment's
    /// `training/experts/`. The query comes from `loaded` when that dataset has
    /// it, else from the data the experiment ran on.
    pub fn for_misroute(experiment: &ExperimentRouting, query_id: &str, loaded: Option<Arc<LoadedDataset>>, job: &JobContext) -> Result<ExpertComparison> {
        let misroute = experiment.misroutes.iter().find(|m| m.query == query_id).with_context(|| format!("query {query_id} is not among the experiment's misroutes"))?;
        let backbone = experiment.backbone.clone().with_context(|| format!("{}/results.json names no backbone (config.train.model.path)", experiment.dir.display()))?;
        let owned: Dataset;
        let dataset = match loaded.as_ref().filter(|l| l.dataset.groups.iter().any(|g| g.id == query_id)) {
            Some(loaded) => &loaded.dataset,
            None => {
                let data = experiment.data.clone().with_context(|| format!("open the dataset the experiment ran on: {query_id} is not in the open one"))?;
                crate::train::jobs::report_steps(job, "reading the experiment's data", 0, 3);
                owned = crate::data::load(&data, &crate::data::LoadOptions::default()).with_context(|| format!("reading the experiment's data {}", data.display()))?;
                &owned
            }
        };
        let group = dataset.groups.iter().find(|g| g.id == query_id).with_context(|| format!("query {query_id} is not in the experiment's data"))?;
        ExpertComparison::compute_for(&experiment.training_dir, &backbone, group, misroute.chosen.clone(), misroute.domain.clone(), job)
    }

    /// `group` ranked under the experts `chosen` and `correct` of the run at `run_dir` (`experts/<domain>/`).
    pub fn compute_for(run_dir: &Path, backbone: &Path, group: &QueryGroup, chosen: String, correct: String, job: &JobContext) -> Result<ExpertComparison> {
        let query_id = group.id.as_str();
        let run_dir = RunDir::new(run_dir);
        let adapter_dirs = [run_dir.expert_dir(&chosen), run_dir.expert_dir(&correct)];
        for (domain, dir) in [&chosen, &correct].into_iter().zip(&adapter_dirs) {
            if !dir.join("adapter_config.json").is_file() {
                bail!("no expert for {domain}: {} holds no adapter (adapter_config.json); train the run's Experts stage", dir.display());
            }
        }
        crate::train::jobs::report_steps(job, "loading the backbone", 0, 3);
        let backbone = &crate::assets::under_project_root(backbone);
        let config_path = run_dir.config_path();
        let reranker = if config_path.is_file() {
            let mut config = TrainConfig::load(&config_path)?;
            config.model.path = backbone.to_path_buf();
            crate::train::pipeline::load_reranker(&config)?
        } else {
            crate::model::Reranker::load(backbone, &crate::model::LoadOptions::default())
                .with_context(|| format!("loading the router's backbone {}", backbone.display()))?
        };
        let requests: Vec<ScoreRequest> =
            group.candidates.iter().map(|c| ScoreRequest { instruction: None, query: group.query.clone(), document: c.text.clone() }).collect();
        let mut rankings = Vec::new();
        for (step, dir) in adapter_dirs.iter().enumerate() {
            job.check_cancelled()?;
            crate::train::jobs::report_steps(job, "scoring under the experts", step + 1, 3);
            let adapter = reranker.load_adapter(dir).with_context(|| format!("loading the expert {}", dir.display()))?;
            let margins: Vec<f32> = reranker.score(&requests, Some(&adapter), &ScoreOptions::default())?.iter().map(|p| p.yes_logit - p.no_logit).collect();
            rankings.push(Ranking::of_group(group, margins).context("one score per candidate")?);
        }
        let under_correct = rankings.pop().expect("two rankings");
        let under_chosen = rankings.pop().expect("two rankings");
        job.log(format!("{query_id}: under {chosen} and under {correct}"));
        Ok(ExpertComparison { group: group.clone(), chosen, correct, under_chosen, under_correct })
    }
}
