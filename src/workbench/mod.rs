//! The engine side of what the desktop app does besides drawing: the systems whose rankings the panels
//! compare (BM25, random order, the generalist, an experiment's systems read back from its run files),
//! routing a split with a trained router, comparing experts on a misrouted query, and loading datasets.
//! No egui here: the GUI (`crate::gui`) and the tests call these as plain functions on job threads.

pub mod dataset;
pub mod demo;
pub mod experiment_runs;
pub mod routing_run;
pub mod run_curves;
pub mod systems;
