//! R2R Workbench engine: data, entity abstraction, the candle reranker, training,
//! routing and evaluation for Route-to-Rerank multi-domain decoder-only rerankers.
//!
//! The engine never depends on egui: the desktop app (`gui`, behind the default
//! `gui` feature) and the headless CLI (`cli`) are thin layers over it.

pub mod abstraction;
pub mod assets;
pub mod backbone;
pub mod bm25;
pub mod config_file;
pub mod cli;
pub mod data;
pub mod experiment;
pub mod export;
pub mod metrics;
pub mod model;
pub mod ner;
pub mod routing;
pub mod sample;
pub mod scaleout;
pub mod train;
pub mod util;
pub mod workbench;

#[cfg(feature = "gui")]
pub mod gui;
