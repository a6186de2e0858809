//! Training: the contrastive objective, schedules, background jobs and checkpoints; the LoRA loop
//! (`expert`), EAG and the baselines (`eag`), routing features and the router stage, and the
//! pipeline that `r2r train` and the GUI run (`pipeline::run_training`).

pub mod checkpoint;
pub mod config;
pub mod dev_eval;
pub mod eag;
pub mod expert;
pub mod features;
pub mod groups;
pub mod jobs;
pub mod lock;
pub mod loss;
pub mod optim;
pub mod pipeline;
pub mod plan;
pub mod route_stage;

pub use checkpoint::RunDir;
pub use config::{Stage, TrainConfig};
pub use expert::{JobSpec, JobSummary, Trainer};
pub use lock::RunLock;
pub use jobs::{spawn_job, JobContext, JobEvent, JobHandle};
pub use pipeline::{run_training, RunSummary};
