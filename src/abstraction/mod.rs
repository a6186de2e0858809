//! Entity abstraction for EAG stage 1: detect domain entities (gazetteers,
//! patterns, an optional name heuristic, expert corrections), replace them with
//! type placeholders (`Zeekr` → `[COMPANY_1]`) consistently across a query
//! group, keep span maps that restore the original exactly, and measure the
//! detection (P/R/F1 against gold spans, coverage on any data).
//! The design follows Presidio's recogniser/operator split; see docs/abstraction.md.

pub mod abstractor;
pub mod corrections;
pub mod export;
pub mod gazetteer;
pub mod heuristic;
pub mod patterns;
pub mod quality;
pub mod recognizer;
pub mod schema;
pub mod text;

pub use abstractor::{
    abstract_dataset, abstract_dataset_checked, abstract_detected, abstract_group, detect_group, restore, restore_group, AbstractedGroup, AbstractionOptions, Abstractor,
    CandidateMap, GroupMaps, Numbering, RestoreError, SpanMapEntry,
};
pub use corrections::Corrections;
pub use quality::{coverage, evaluate, evaluate_checked, Coverage, QualityReport, Scores};
pub use recognizer::{Detection, Recognizer, RecognizerBuilder};
pub use schema::EntitySchema;
