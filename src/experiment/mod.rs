//! `r2r experiment`: trains once through the training pipeline (EAG stage 1, experts, baselines),
//! then evaluates every system of the paper's comparison per domain on the seen-entity test, the
//! unseen-entity test and the out-of-domain test, with routing reports, paired significance and
//! misroute impact, and the ablations and studies (`studies`, retraining through one shared path:
//! `bench`); every score is kept in a cache on disk (`score_cache`), so an evaluation resumes; writes results.json, report.md, CSVs and TREC runs (`report`).

pub mod bench;
pub mod config;
pub mod keys;
pub mod many_domains;
pub mod open;
pub mod report;
pub mod score_cache;
pub mod studies;
pub mod study_report;
pub mod systems;
pub mod unseen;

pub use config::{ExperimentConfig, ExperimentOptions};
pub use keys::{EvalSplit, System};
pub use systems::{run_experiment, ExperimentResults};
