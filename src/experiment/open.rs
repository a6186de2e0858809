//! Reading an `r2r experiment --out DIR` directory back for inspection (no UI):
//! its routers' reports (results.json `routing`, else the summary rows of
//! routing.csv), its misrouted queries (misroute.csv, else results.json
//! `misroute.items`) sorted by the NDCG@10 they lost, and where its experts and
//! backbone are, so a misrouted query can be ranked under the chosen and the
//! correct expert. Accepts the experiment root or its `training/` directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::systems::Misroute;
use crate::routing::{RouterName, RoutingReport};

/// One router of the experiment: its full report when results.json has it,
/// else the summary figures of routing.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterResult {
    pub name: RouterName,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub queries: usize,
    /// Confusion matrix and per-class figures (None from routing.csv alone).
    pub report: Option<RoutingReport>,
}

/// What the Router panel shows of an experiment directory.
#[derive(Debug, Clone)]
pub struct ExperimentRouting {
    /// The experiment root (holding results.json / routing.csv / misroute.csv).
    pub dir: PathBuf,
    /// The routers, `lsr` first, then by name.
    pub routers: Vec<RouterResult>,
    /// The LSR's misrouted queries, the largest NDCG@10 loss first.
    pub misroutes: Vec<Misroute>,
    /// The training run (holding `experts/<domain>/`).
    pub training_dir: PathBuf,
    /// The backbone and the data the experiment ran on (results.json `config.train`).
    pub backbone: Option<PathBuf>,
    pub data: Option<PathBuf>,
    /// Things worth knowing (a file absent, a row skipped).
    pub notes: Vec<String>,
}

impl Misroute {
    /// The NDCG@10 this query lost by going to the chosen expert (correct − chosen).
    pub fn lost(&self) -> f64 {
        self.correct_ndcg_at_10 - self.chosen_ndcg_at_10
    }
}

const FILES: [&str; 3] = ["results.json", "routing.csv", "misroute.csv"];

/// The experiment root of `path`: `path` itself when it holds results.json,
/// routing.csv or misroute.csv, its parent when `path` is the experiment's
/// `training/` directory; None otherwise.
pub fn experiment_root(path: &Path) -> Option<PathBuf> {
    let holds = |dir: &Path| FILES.iter().any(|f| dir.join(f).is_file());
    if holds(path) {
        return Some(path.to_path_buf());
    }
    let parent = path.parent()?;
    (path.file_name().is_some_and(|n| n == "training") && holds(parent)).then(|| parent.to_path_buf())
}

/// Parses misroute.csv (`query,split,domain,chosen,chosen_ndcg@10,correct_ndcg@10`).
pub fn read_misroute_csv(path: &Path) -> Result<Vec<Misroute>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim() == "query,split,domain,chosen,chosen_ndcg@10,correct_ndcg@10" => {}
        _ => bail!("{}:1: expected the header query,split,domain,chosen,chosen_ndcg@10,correct_ndcg@10", path.display()),
    }
    let mut items = Vec::new();
    for (number, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let [query, split, domain, chosen, chosen_ndcg, correct_ndcg] = fields[..] else {
            bail!("{}:{}: expected 6 fields, found {}", path.display(), number + 1, fields.len());
        };
        let number_of = |text: &str, what: &str| -> Result<f64> {
            text.trim().parse::<f64>().with_context(|| format!("{}:{}: {what} `{text}` is not a number", path.display(), number + 1))
        };
        items.push(Misroute {
            query: query.to_string(),
            split: split.trim().parse().map_err(|e: String| anyhow::anyhow!("{}:{}: {e}", path.display(), number + 1))?,
            domain: domain.to_string(),
            chosen: chosen.to_string(),
            chosen_ndcg_at_10: number_of(chosen_ndcg, "chosen_ndcg@10")?,
            correct_ndcg_at_10: number_of(correct_ndcg, "correct_ndcg@10")?,
        });
    }
    Ok(items)
}

/// Parses routing.csv (`router,accuracy,macro_f1,queries`).
pub fn read_routing_csv(path: &Path) -> Result<Vec<RouterResult>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut routers = Vec::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let [name, accuracy, macro_f1, queries] = fields[..] else {
            bail!("{}:{}: expected router,accuracy,macro_f1,queries", path.display(), number + 1);
        };
        let bad = || format!("{}:{}: not a number", path.display(), number + 1);
        routers.push(RouterResult {
            name: name.trim().parse().map_err(|e: String| anyhow::anyhow!("{}:{}: {e}", path.display(), number + 1))?,
            accuracy: accuracy.trim().parse().with_context(bad)?,
            macro_f1: macro_f1.trim().parse().with_context(bad)?,
            queries: queries.trim().parse().with_context(bad)?,
            report: None,
        });
    }
    Ok(routers)
}

/// The routers' reports of results.json, recomputed from their confusion matrices.
fn routers_of(results: &serde_json::Value, path: &Path) -> Result<Vec<RouterResult>> {
    let Some(routing) = results.get("routing") else { return Ok(Vec::new()) };
    let reports: BTreeMap<RouterName, RoutingReport> = serde_json::from_value(routing.clone()).with_context(|| format!("{}: field `routing`", path.display()))?;
    let mut routers = Vec::new();
    for (name, stored) in reports {
        let k = stored.labels.len();
        if stored.confusion.len() != k || stored.confusion.iter().any(|r| r.len() != k) {
            bail!("{}: routing.{name}: the confusion matrix is not {k} × {k}", path.display());
        }
        let report = RoutingReport::from_confusion(&stored.labels, stored.confusion);
        routers.push(RouterResult { name, accuracy: report.accuracy, macro_f1: report.macro_f1, queries: report.queries, report: Some(report) });
    }
    Ok(routers)
}

impl ExperimentRouting {
    /// Reads the experiment at `path` (its root or its `training/`).
    pub fn load(path: &Path) -> Result<ExperimentRouting> {
        let Some(dir) = experiment_root(path) else {
            bail!("{}: not an experiment directory (it holds none of {})", path.display(), FILES.join(", "));
        };
        let mut notes = Vec::new();
        let results_path = dir.join("results.json");
        let results: Option<serde_json::Value> = if results_path.is_file() {
            let text = std::fs::read_to_string(&results_path).with_context(|| format!("reading {}", results_path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", results_path.display()))?)
        } else {
            notes.push(format!("{} is absent: routers without confusion matrices (routing.csv)", results_path.display()));
            None
        };
        let mut routers = match &results {
            Some(results) => routers_of(results, &results_path)?,
            None => Vec::new(),
        };
        let routing_csv = dir.join("routing.csv");
        if routers.is_empty() && routing_csv.is_file() {
            routers = read_routing_csv(&routing_csv)?;
        }
        routers.sort_by(|a, b| (a.name != RouterName::Lsr).cmp(&(b.name != RouterName::Lsr)).then_with(|| a.name.cmp(&b.name)));

        let misroute_csv = dir.join("misroute.csv");
        let mut misroutes = if misroute_csv.is_file() {
            read_misroute_csv(&misroute_csv)?
        } else if let Some(items) = results.as_ref().and_then(|r| r.pointer("/misroute/items")) {
            serde_json::from_value(items.clone()).with_context(|| format!("{}: field `misroute.items`", results_path.display()))?
        } else {
            notes.push(format!("{} is absent: no misrouted queries to show", misroute_csv.display()));
            Vec::new()
        };
        misroutes.sort_by(|a, b| b.lost().total_cmp(&a.lost()).then_with(|| a.query.cmp(&b.query)));

        let text_at = |pointer: &str| results.as_ref().and_then(|r| r.pointer(pointer)).and_then(|v| v.as_str()).map(PathBuf::from);
        Ok(ExperimentRouting {
            training_dir: dir.join("training"),
            backbone: text_at("/config/train/model/path"),
            data: text_at("/config/train/data/path"),
            dir,
            routers,
            misroutes,
            notes,
        })
    }

    /// The misroutes as CSV, in their order (largest loss first), with the loss.
    pub fn misroutes_csv(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .misroutes
            .iter()
            .map(|m| {
                vec![m.query.clone(), m.split.to_string(), m.domain.clone(), m.chosen.clone(), format!("{:.6}", m.chosen_ndcg_at_10), format!("{:.6}", m.correct_ndcg_at_10), format!("{:.6}", m.lost())]
            })
            .collect();
        crate::export::csv_text(&["query", "split", "domain", "chosen", "chosen_ndcg@10", "correct_ndcg@10", "ndcg@10_lost"], &rows)
    }

    pub fn router(&self, name: &RouterName) -> Option<&RouterResult> {
        self.routers.iter().find(|r| r.name == *name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_routers_and_misroutes_sorted_by_loss_from_root_or_training() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("training")).unwrap();
        let results = serde_json::json!({
            "routing": {
                "mlp": {"labels": ["legal", "medical"], "confusion": [[3, 1], [0, 0]], "accuracy": 0.75, "macro_f1": 0.1, "per_class": [], "queries": 4},
                "lsr": {"labels": ["legal", "medical"], "confusion": [[2, 2], [0, 0]], "accuracy": 0.5, "macro_f1": 0.1, "per_class": [], "queries": 4},
            },
            "config": {"train": {"model": {"path": "assets/backbone"}, "data": {"path": "sample_data"}}},
        });
        std::fs::write(root.join("results.json"), results.to_string()).unwrap();
        std::fs::write(
            root.join("misroute.csv"),
            "query,split,domain,chosen,chosen_ndcg@10,correct_ndcg@10\nq1,test,legal,medical,0.5,0.6\nq2,test,legal,medical,0.1,0.9\nq3,test_unseen,legal,medical,0.7,0.7\n",
        )
        .unwrap();
        for path in [root.to_path_buf(), root.join("training")] {
            let opened = ExperimentRouting::load(&path).unwrap();
            assert_eq!(opened.dir, root);
            let names: Vec<&RouterName> = opened.routers.iter().map(|r| &r.name).collect();
            assert_eq!(names, [&RouterName::Lsr, &RouterName::Mlp]);
            let lsr = opened.router(&RouterName::Lsr).unwrap();
            // Recomputed from the matrix: only legal has support, so macro-F1 is legal's F1 (P 1, R 0.5).
            assert!((lsr.macro_f1 - 2.0 / 3.0).abs() < 1e-12, "{}", lsr.macro_f1);
            assert_eq!(lsr.queries, 4);
            let order: Vec<&str> = opened.misroutes.iter().map(|m| m.query.as_str()).collect();
            assert_eq!(order, ["q2", "q1", "q3"], "largest NDCG@10 loss first");
            assert!((opened.misroutes[0].lost() - 0.8).abs() < 1e-12);
            assert_eq!(opened.backbone, Some(PathBuf::from("assets/backbone")));
            assert_eq!(opened.training_dir, root.join("training"));
        }
        // routing.csv alone: summary figures, no matrices; a malformed misroute row names file and line.
        std::fs::remove_file(root.join("results.json")).unwrap();
        std::fs::write(root.join("routing.csv"), "router,accuracy,macro_f1,queries\nlsr,0.5,0.4,4\n").unwrap();
        std::fs::write(root.join("misroute.csv"), "query,split,domain,chosen,chosen_ndcg@10,correct_ndcg@10\nq1,test,legal,medical,x,0.6\n").unwrap();
        let err = format!("{:#}", ExperimentRouting::load(root).unwrap_err());
        assert!(err.contains("misroute.csv:2: chosen_ndcg@10 `x`"), "{err}");
        std::fs::remove_file(root.join("misroute.csv")).unwrap();
        let opened = ExperimentRouting::load(root).unwrap();
        assert_eq!(opened.routers, vec![RouterResult { name: RouterName::Lsr, accuracy: 0.5, macro_f1: 0.4, queries: 4, report: None }]);
        assert!(opened.misroutes.is_empty() && opened.notes.len() == 2, "{:?}", opened.notes);
        // A router name outside lsr, mlp, random, oracle, static:<domain> names the file and line.
        std::fs::write(root.join("routing.csv"), "router,accuracy,macro_f1,queries\nlsr,0.5,0.4,4\nbest,0.9,0.9,4\n").unwrap();
        let err = format!("{:#}", ExperimentRouting::load(root).unwrap_err());
        assert!(err.contains("routing.csv:3: unknown router `best`"), "{err}");
        // Not an experiment.
        let other = tempfile::tempdir().unwrap();
        assert!(ExperimentRouting::load(other.path()).is_err());
        assert_eq!(experiment_root(other.path()), None);
    }
}
