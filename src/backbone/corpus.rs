//! The backbone's general-domain data: `realdata/general_pretrain.jsonl.xz` (Wikipedia question →
//! passage groups with hard negatives) and, optionally, the sample data's general domain. The split
//! is the loader's stable hash of each query id (60 % train / 10 % dev / 30 % test): training uses
//! `train` only; model selection a fixed slice of `dev`; reports a fixed slice of `test`.

use crate::data::{self, QueryGroup, Split};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Where the data comes from and how much is held out.
#[derive(Debug, Clone)]
pub struct CorpusOptions {
    pub general_pretrain: PathBuf,
    /// A dataset whose `general` train groups are added to training (e.g. `sample_data`).
    pub sample_data: Option<PathBuf>,
    /// Dev groups used for model selection (the first ones of the dev split, in file order).
    pub dev_groups: usize,
    /// Test groups used for the report (the first ones of the test split, in file order).
    pub test_groups: usize,
}

/// Training groups and the held-out dev and test slices.
#[derive(Debug, Clone)]
pub struct Corpus {
    pub train: Vec<QueryGroup>,
    pub dev: Vec<QueryGroup>,
    pub test: Vec<QueryGroup>,
}

impl Corpus {
    pub fn load(options: &CorpusOptions) -> Result<Corpus> {
        let general = load_path(&options.general_pretrain)?;
        let mut train: Vec<QueryGroup> = general.iter().filter(|g| g.split == Split::Train).cloned().collect();
        let dev: Vec<QueryGroup> = general.iter().filter(|g| g.split == Split::Dev).take(options.dev_groups).cloned().collect();
        let test: Vec<QueryGroup> = general.iter().filter(|g| g.split == Split::Test).take(options.test_groups).cloned().collect();
        if let Some(sample) = &options.sample_data {
            train.extend(load_path(sample)?.into_iter().filter(|g| g.domain == "general" && g.split == Split::Train));
        }
        train.retain(|g| g.positives().next().is_some() && g.candidates.len() >= 2);
        anyhow::ensure!(!train.is_empty(), "no training groups in {}", options.general_pretrain.display());
        Ok(Corpus { train, dev, test })
    }

    /// Every distinct passage text of the training groups, in first-seen order.
    pub fn train_passages(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.train.iter().flat_map(|g| g.candidates.iter().map(|c| c.text.as_str())).filter(|t| seen.insert(*t)).collect()
    }
}

fn load_path(path: &Path) -> Result<Vec<QueryGroup>> {
    Ok(data::load(path, &data::LoadOptions::default()).with_context(|| format!("cannot load {}", path.display()))?.groups)
}

/// `shared/realdata/general_pretrain.jsonl.xz`, if present.
pub fn default_general_pretrain() -> Option<PathBuf> {
    crate::assets::shared_dir().map(|dir| dir.join("realdata/general_pretrain.jsonl.xz")).filter(|p| p.is_file())
}
