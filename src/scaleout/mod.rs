//! Beyond one machine: the exact training data of each R2R stage in the formats of the engines users
//! scale out to (FlagEmbedding, ms-swift), with the LoRA and objective settings translated into their
//! arguments and a multi-GPU launch script; and back: the PEFT adapters those engines produce, imported as a
//! run's adapters. Field mappings and their sources: docs/scale-out.md.

pub mod export_training;
pub mod import_adapters;
pub mod serve;
pub mod serving;

pub use export_training::{export_training, Engine, TrainingExport};
pub use import_adapters::{import_adapters, ImportReport};
pub use serving::{export_serving, ServingManifest};
