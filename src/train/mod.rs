//! Training: the contrastive objective, schedules, background jobs and
//! checkpoints. Expert (LoRA) and router training build on these.

pub mod config;
pub mod jobs;
pub mod loss;
