//! The systems of an `r2r experiment --out DIR` directory as app systems: every
//! TREC run file `DIR/runs/<system>.<split>.trec` is read against the open
//! dataset (the scores of one system over all its splits form one
//! [`SystemRun`]), and `DIR/results.json` gives the experiment's significance
//! tests. Problems with single files (malformed line, query or passage not in
//! the open dataset, a run file results.json promises but the directory lacks)
//! are collected with file and line, and the other files still load. Runs on a
//! job thread; no UI code.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use crate::data::{Dataset, QueryGroup, Split};
use crate::experiment::keys::{EvalSplit, System};
use crate::experiment::systems::Significance;
use crate::train::jobs::report_steps;
use crate::workbench::systems::{SystemKind, SystemRun};
use crate::metrics::{Metric, Run};
use crate::train::jobs::JobContext;

/// An experiment directory loaded against the open dataset.
pub struct ExperimentRuns {
    pub dir: PathBuf,
    /// One run per system, in the experiment's table order (unknown names after, by name).
    pub runs: Vec<Arc<SystemRun>>,
    /// The experiment's paired tests (results.json `significance`).
    pub significance: Vec<Significance>,
    /// Permutations of those tests (results.json `config.experiment.permutations`).
    pub permutations: Option<u64>,
    /// Files that could not be used, each naming the file (and line).
    pub problems: Vec<String>,
    /// Things worth knowing that are not errors (e.g. candidates missing from a run).
    pub notes: Vec<String>,
}

/// The experiment's name of a dataset split for the groups of `domain`
/// (`test` of an out-of-domain domain is `ood`); None for train and dev.
pub fn experiment_split(split: Split) -> Option<EvalSplit> {
    match split {
        Split::Test => Some(EvalSplit::Test),
        Split::TestUnseen => Some(EvalSplit::TestUnseen),
        Split::Train | Split::Dev => None,
    }
}

/// `name.split.trec` → (name, split).
fn parse_run_file_name(file_name: &str) -> Option<(&str, &str)> {
    let stem = file_name.strip_suffix(".trec")?;
    let (system, split) = stem.rsplit_once('.')?;
    (!system.is_empty() && split.parse::<EvalSplit>().is_ok()).then_some((system, split))
}

/// What results.json says: the significance tests, their permutations and the
/// (system, split) pairs that have run files.
struct ResultsJson {
    significance: Vec<Significance>,
    permutations: Option<u64>,
    expected: Vec<(String, String)>,
}

fn read_results(path: &Path) -> Result<ResultsJson> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))?;
    let significance = match value.get("significance") {
        Some(list) => serde_json::from_value(list.clone()).with_context(|| format!("{}: field `significance`", path.display()))?,
        None => Vec::new(),
    };
    let permutations = value.pointer("/config/experiment/permutations").and_then(|p| p.as_u64());
    let mut expected = Vec::new();
    if let Some(systems) = value.get("systems").and_then(|s| s.as_object()) {
        for (system, splits) in systems {
            for split in splits.as_object().into_iter().flat_map(|s| s.keys()) {
                expected.push((system.clone(), split.clone()));
            }
        }
    }
    Ok(ResultsJson { significance, permutations, expected })
}

/// One run file's scores by query id (one score per candidate, −∞ where the
/// file lists none), and how many candidates it missed. A malformed line, or a
/// query or passage the open dataset lacks, is an error naming file and line.
fn read_run_file(path: &Path, groups: &HashMap<&str, &QueryGroup>, data_path: &Path) -> Result<(HashMap<String, Vec<f32>>, usize)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let run = Run::parse(&text, path)?;
    for (number, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [query, _, doc, ..] = fields[..] else { continue };
        let Some(group) = groups.get(query) else {
            bail!(
                "{}:{}: query `{query}` is not in the open dataset {} (was the experiment run on other data?)",
                path.display(),
                number + 1,
                data_path.display()
            );
        };
        if !group.candidates.iter().any(|c| c.id == doc) {
            bail!("{}:{}: passage `{doc}` is not a candidate of query `{query}` in the open dataset {}", path.display(), number + 1, data_path.display());
        }
    }
    let mut scores = HashMap::with_capacity(run.scores.len());
    let mut missing = 0;
    for (query, docs) in &run.scores {
        let group = groups[query.as_str()];
        let row: Vec<f32> = group.candidates.iter().map(|c| docs.get(&c.id).map_or(f32::NEG_INFINITY, |&s| s as f32)).collect();
        missing += row.iter().filter(|s| **s == f32::NEG_INFINITY).count();
        scores.insert(query.clone(), row);
    }
    Ok((scores, missing))
}

impl ExperimentRuns {
    /// Reads `dir` against `dataset` (opened from `data_path`).
    pub fn load(dir: &Path, dataset: &Dataset, data_path: &Path, job: &JobContext) -> Result<ExperimentRuns> {
        let started = std::time::Instant::now();
        if !dir.is_dir() {
            bail!("{}: no such directory", dir.display());
        }
        let runs_dir = dir.join("runs");
        if !runs_dir.is_dir() {
            bail!("{}: not found (an `r2r experiment --out DIR` directory holds runs/<system>.<split>.trec)", runs_dir.display());
        }
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        let results_path = dir.join("results.json");
        let results = if results_path.is_file() {
            match read_results(&results_path) {
                Ok(results) => Some(results),
                Err(err) => {
                    problems.push(format!("{err:#}"));
                    None
                }
            }
        } else {
            notes.push(format!("{} is absent: no significance marks", results_path.display()));
            None
        };

        let mut files: Vec<(String, String, PathBuf)> = Vec::new();
        let entries = std::fs::read_dir(&runs_dir).with_context(|| format!("listing {}", runs_dir.display()))?;
        for entry in entries {
            let path = entry.with_context(|| format!("listing {}", runs_dir.display()))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            match parse_run_file_name(&name) {
                Some((system, split)) => files.push((system.to_string(), split.to_string(), path.clone())),
                None => problems.push(format!("{}: not a run file name `<system>.<split>.trec` (split one of {})", path.display(), EvalSplit::ALL.map(EvalSplit::name).join(", "))),
            }
        }
        files.sort();
        if let Some(results) = &results {
            for (system, split) in &results.expected {
                if !files.iter().any(|(s, p, _)| s == system && p == split) {
                    problems.push(format!("{}: missing run file (results.json lists {system} on {split})", runs_dir.join(format!("{system}.{split}.trec")).display()));
                }
            }
        }

        let groups: HashMap<&str, &QueryGroup> = dataset.groups.iter().map(|g| (g.id.as_str(), g)).collect();
        let mut by_system: BTreeMap<String, (HashMap<String, Vec<f32>>, usize)> = BTreeMap::new();
        for (n, (system, _, path)) in files.iter().enumerate() {
            job.check_cancelled()?;
            report_steps(job, "reading run files", n, files.len());
            match read_run_file(path, &groups, data_path) {
                Ok((scores, missing)) => {
                    let entry = by_system.entry(system.clone()).or_default();
                    entry.0.extend(scores);
                    entry.1 += missing;
                }
                Err(err) => problems.push(format!("{err:#}")),
            }
        }
        if by_system.is_empty() {
            let why = if problems.is_empty() { "it holds no run files".to_string() } else { problems.join("\n") };
            bail!("{}: no usable run file: {why}", runs_dir.display());
        }

        let order = |name: &str| System::ALL.iter().position(|s| s.name() == name).unwrap_or(System::ALL.len());
        let mut names: Vec<String> = by_system.keys().cloned().collect();
        names.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.cmp(b)));
        let all_groups: Vec<&QueryGroup> = dataset.groups.iter().collect();
        let mut runs = Vec::new();
        for name in names {
            let (scores, missing) = by_system.remove(&name).expect("listed");
            if missing > 0 {
                notes.push(format!("{name}: {missing} candidates absent from its run files are ranked last (score −∞)"));
            }
            runs.push(Arc::new(SystemRun::from_scores(SystemKind::Experiment(name), &all_groups, scores, missing, started)));
        }
        job.log(format!("{}: {} systems from run files, {} problems", dir.display(), runs.len(), problems.len()));
        let (significance, permutations) = results.map_or((Vec::new(), None), |r| (r.significance, r.permutations));
        Ok(ExperimentRuns { dir: dir.to_path_buf(), runs, significance, permutations, problems, notes })
    }

    /// The experiment's test of `system` against `reference` on one split and
    /// domain: (mean of system − reference, p-value), when it computed one.
    pub fn test(&self, reference: &str, system: &str, split: EvalSplit, domain: &str, metric: Metric) -> Option<(f64, f64)> {
        self.significance.iter().find_map(|s| {
            if s.split != split || s.domain != domain || s.metric != metric {
                None
            } else if s.system.name() == system && s.baseline.name() == reference {
                Some((s.mean_difference, s.p_value))
            } else if s.system.name() == reference && s.baseline.name() == system {
                Some((-s.mean_difference, s.p_value))
            } else {
                None
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Candidate;
    use std::sync::atomic::AtomicBool;

    fn group(id: &str, split: Split, candidates: usize) -> QueryGroup {
        QueryGroup {
            id: id.into(),
            domain: "legal".into(),
            split,
            query: format!("query {id}"),
            query_entities: vec![],
            candidates: (0..candidates).map(|i| Candidate { id: format!("{id}-c{i}"), text: format!("passage {i}"), relevance: u32::from(i == 1), entities: vec![] }).collect(),
            secondary_domain: None,
            meta: Default::default(),
        }
    }

    fn job() -> JobContext {
        JobContext::new(crossbeam_channel::unbounded().0, Arc::new(AtomicBool::new(false)), None)
    }

    #[test]
    fn run_files_become_systems_with_gaps_and_problems_named() {
        let dataset = Dataset { groups: vec![group("q1", Split::Test, 3), group("q2", Split::TestUnseen, 2)], ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        std::fs::create_dir_all(&runs).unwrap();
        // r2r_lsr: q1 on test (c2 missing: −∞, last), q2 on test_unseen; relevant c1 first on both.
        std::fs::write(runs.join("r2r_lsr.test.trec"), "q1 Q0 q1-c1 1 2.5 r2r_lsr\nq1 Q0 q1-c0 2 1.0 r2r_lsr\n").unwrap();
        std::fs::write(runs.join("r2r_lsr.test_unseen.trec"), "q2 Q0 q2-c1 1 0.5 r2r_lsr\nq2 Q0 q2-c0 2 0.1 r2r_lsr\n").unwrap();
        std::fs::write(runs.join("generalist.test.trec"), "q1 Q0 q1-c0 1 3 generalist\nq1 Q0 q1-c1 2 2 generalist\nq1 Q0 q1-c2 3 1 generalist\n").unwrap();
        std::fs::write(runs.join("direct.test.trec"), "q1 Q0 q1-c0 1 3 direct\nq1 Q0 q1-c1 oops 2 direct\n").unwrap();
        std::fs::write(runs.join("bm25.test.trec"), "q1 Q0 q1-c0 1 3 bm25\nq9 Q0 q9-c0 1 3 bm25\n").unwrap();
        let results = serde_json::json!({
            "systems": {"r2r_lsr": {"test": {}, "test_unseen": {}}, "generalist": {"test": {}, "test_unseen": {}}},
            "significance": [{"system": "r2r_lsr", "baseline": "generalist", "split": "test", "domain": "legal", "metric": "ndcg@10", "queries": 1, "mean_difference": 0.37, "p_value": 0.03}],
            "config": {"experiment": {"permutations": 500}},
        });
        std::fs::write(dir.path().join("results.json"), results.to_string()).unwrap();

        let loaded = ExperimentRuns::load(dir.path(), &dataset, Path::new("data.jsonl"), &job()).unwrap();
        let names: Vec<&str> = loaded.runs.iter().map(|r| r.system.name()).collect();
        assert_eq!(names, ["generalist", "r2r_lsr"], "table order; broken files left out");
        let lsr = &loaded.runs[1];
        assert_eq!(lsr.missing_candidates, 1);
        let q1 = &lsr.rankings["q1"];
        assert_eq!(q1.order, vec![1, 0, 2]);
        assert_eq!(q1.scores[2], f32::NEG_INFINITY);
        assert_eq!(q1.metric(Metric::Mrr(Some(10))), 1.0);
        assert_eq!(lsr.rankings.len(), 2, "both splits in one run");
        assert_eq!(loaded.runs[0].rankings["q1"].metric(Metric::Mrr(Some(10))), 0.5);
        assert!(!loaded.runs[0].rankings.contains_key("q2"), "the generalist's run files lack q2");

        let problems = loaded.problems.join("\n");
        assert!(problems.contains("direct.test.trec:2:"), "{problems}");
        assert!(problems.contains("bm25.test.trec:2: query `q9` is not in the open dataset"), "{problems}");
        assert!(problems.contains("generalist.test_unseen.trec: missing run file"), "{problems}");
        assert!(loaded.notes.iter().any(|n| n.contains("r2r_lsr: 1 candidates absent")), "{:?}", loaded.notes);

        assert_eq!(loaded.test("generalist", "r2r_lsr", EvalSplit::Test, "legal", Metric::Ndcg(Some(10))), Some((0.37, 0.03)));
        assert_eq!(loaded.test("r2r_lsr", "generalist", EvalSplit::Test, "legal", Metric::Ndcg(Some(10))), Some((-0.37, 0.03)));
        assert_eq!(loaded.test("generalist", "r2r_lsr", EvalSplit::Test, "legal", Metric::Mrr(Some(10))), None);
        assert_eq!(loaded.permutations, Some(500));

        // No runs directory, or nothing usable: an error naming the path.
        let empty = tempfile::tempdir().unwrap();
        let err = format!("{:#}", ExperimentRuns::load(empty.path(), &dataset, Path::new("d"), &job()).err().unwrap());
        assert!(err.contains("runs: not found"), "{err}");
    }
}
