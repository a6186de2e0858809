//! A dataset loaded for the workbench, with its format, statistics and load time.

use std::path::PathBuf;

use crate::data::stats::DatasetStats;
use crate::data::{DataError, Dataset, Format};

/// A dataset loaded by the engine, with what the panels show about it.
pub struct LoadedDataset {
    pub path: PathBuf,
    pub format: Format,
    pub dataset: Dataset,
    pub stats: DatasetStats,
    pub load_seconds: f64,
}

impl LoadedDataset {
    /// Loads and summarises a dataset (runs on a job thread).
    pub fn load(path: &std::path::Path, options: &crate::data::LoadOptions) -> Result<LoadedDataset, DataError> {
        let started = std::time::Instant::now();
        let format = crate::data::detect_format(path)?;
        let dataset = crate::data::load(path, options)?;
        let stats = crate::data::stats::compute(&dataset);
        Ok(LoadedDataset { path: path.to_path_buf(), format, dataset, stats, load_seconds: started.elapsed().as_secs_f64() })
    }
}

