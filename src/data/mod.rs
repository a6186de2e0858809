//! The multi-domain reranking dataset model shared by every part of the engine.
//!
//! A [`Dataset`] is a list of [`QueryGroup`]s: one query (with its domain and
//! split) and its candidate passages with graded relevance. Entity spans, where
//! known, are kept as byte ranges into the text they annotate.
//!
//! Loaders for the supported file formats live in the submodules; [`load`]
//! detects the format of a path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The splits a query group can belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Dev,
    /// Test queries whose entities also occur in training (seen-entity test).
    Test,
    /// Test queries whose entity surfaces never occur in training.
    TestUnseen,
}

impl Split {
    pub const ALL: [Split; 4] = [Split::Train, Split::Dev, Split::Test, Split::TestUnseen];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
            Split::TestUnseen => "test_unseen",
        }
    }

    /// Parses a split name; `validation` is accepted for `dev` (BEIR's naming).
    pub fn parse(name: &str) -> Option<Split> {
        match name {
            "train" => Some(Split::Train),
            "dev" | "validation" | "valid" => Some(Split::Dev),
            "test" => Some(Split::Test),
            "test_unseen" => Some(Split::TestUnseen),
            _ => None,
        }
    }

    pub fn is_test(self) -> bool {
        matches!(self, Split::Test | Split::TestUnseen)
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed entity mention: `text[start..end]` (byte offsets, end exclusive) is a
/// mention of type `label` (e.g. `DRUG`, `STATUTE`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntitySpan {
    pub start: usize,
    pub end: usize,
    pub label: String,
}

/// One candidate passage of a query group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub text: String,
    /// Graded relevance: 0 = not relevant, ≥ 1 relevant (higher is better).
    pub relevance: u32,
    /// Gold entity spans of `text`, where known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<EntitySpan>,
}

/// One query with its candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryGroup {
    pub id: String,
    pub domain: String,
    pub split: Split,
    pub query: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_entities: Vec<EntitySpan>,
    pub candidates: Vec<Candidate>,
    /// A second domain the query touches (e.g. malpractice law touches medical);
    /// `domain` stays the primary one used as the routing label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_domain: Option<String>,
    /// Free-form provenance (source dataset, generator relation, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

impl QueryGroup {
    pub fn positives(&self) -> impl Iterator<Item = &Candidate> {
        self.candidates.iter().filter(|c| c.relevance > 0)
    }
}

/// A multi-domain reranking dataset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// Where it was loaded from (for messages and fingerprints).
    pub source: Option<PathBuf>,
    pub groups: Vec<QueryGroup>,
}

impl Dataset {
    /// Domains in first-seen order... sorted for determinism.
    pub fn domains(&self) -> Vec<String> {
        let mut domains: Vec<String> = self.groups.iter().map(|g| g.domain.clone()).collect();
        domains.sort();
        domains.dedup();
        domains
    }

    /// Groups of one domain and split.
    pub fn select<'a>(&'a self, domain: Option<&'a str>, split: Option<Split>) -> impl Iterator<Item = &'a QueryGroup> + 'a {
        self.groups
            .iter()
            .filter(move |g| domain.is_none_or(|d| g.domain == d) && split.is_none_or(|s| g.split == s))
    }

    /// A new dataset holding clones of the groups that pass `keep`.
    pub fn filtered(&self, mut keep: impl FnMut(&QueryGroup) -> bool) -> Dataset {
        Dataset { source: self.source.clone(), groups: self.groups.iter().filter(|g| keep(g)).cloned().collect() }
    }
}

/// A load error that says where the problem is: file, line (1-based) and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DataError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl DataError {
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError { file: file.into(), line: None, field: None, message: message.into() }
    }
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// Longest query or passage id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// Checks an id (query, passage or candidate) against the allowed character set: 1 to
/// [`MAX_ID_BYTES`] bytes of any Unicode characters except whitespace, control characters and the
/// byte-order mark U+FEFF (which a reader strips at the start of a file).
/// Ids are written into whitespace-separated TREC run and qrels files, so a space, tab, newline or
/// NUL in one would make a file that cannot be read back.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("empty id".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("id of {} bytes, longer than {MAX_ID_BYTES}", id.len()));
    }
    if let Some(c) = id.chars().find(|&c| c.is_whitespace() || c.is_control() || c == '\u{feff}') {
        return Err(format!(
            "id {id:?} contains {c:?}; ids may not contain whitespace or control characters (they are written into TREC files)"
        ));
    }
    Ok(())
}

pub mod beir;
pub mod fields;
pub mod flag;
pub mod jsonl;
pub mod native;
pub mod spans;
pub mod stats;

/// The file formats [`load`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Native,
    Beir,
    FlagEmbedding,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Native => "native JSONL",
            Format::Beir => "BEIR directory",
            Format::FlagEmbedding => "FlagEmbedding JSONL",
        })
    }
}

/// Options for loaders whose files leave something open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Domain for records without one (FlagEmbedding, BEIR); overrides the file's.
    pub domain: Option<String>,
    /// Candidates per query built for BEIR (judged passages + mined negatives).
    pub candidates_per_query: usize,
    /// Seed for BEIR's random negatives.
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { domain: None, candidates_per_query: 16, seed: 13 }
    }
}

/// Detects the format of one JSONL file from its first record.
pub fn detect_file_format(path: &std::path::Path) -> Result<Format, DataError> {
    let (line, text) = jsonl::first_record(path)?;
    let at = fields::RecordAt { file: path, line };
    let obj = at.parse_object(&text)?;
    if native::looks_native(&obj) {
        Ok(Format::Native)
    } else if flag::looks_flag(&obj) {
        Ok(Format::FlagEmbedding)
    } else {
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        Err(at.error(
            "",
            format!("unrecognised record: expected `candidates` (native) or `query`+`pos` (FlagEmbedding); found fields {keys:?}"),
        ))
    }
}

fn is_jsonl(path: &std::path::Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    name.ends_with(".jsonl") || name.ends_with(".jsonl.xz")
}

/// Loads a dataset from a file or a directory, detecting the format:
/// a BEIR directory; a directory of JSONL files (each native or FlagEmbedding,
/// read in name order); or one JSONL file (`.xz` accepted).
pub fn load(path: &std::path::Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let mut groups = Vec::new();
    if path.is_dir() {
        if beir::is_beir_dir(path) {
            groups = beir::read(path, opts)?;
        } else {
            // query id → (file, line) of its first occurrence, across the files.
            let mut seen: std::collections::HashMap<String, (PathBuf, usize)> = std::collections::HashMap::new();
            for file in jsonl_files(path)? {
                for (line, group) in load_file(&file, opts)? {
                    if let Some((first_file, first_line)) = seen.get(&group.id) {
                        return Err(DataError::new(&file, format!("query id `{}` occurs twice (first in {}:{first_line})", group.id, first_file.display()))
                            .at_line(line)
                            .field("id"));
                    }
                    seen.insert(group.id.clone(), (file.clone(), line));
                    groups.push(group);
                }
            }
        }
    } else {
        crate::util::check_regular_file(path).map_err(|e| DataError::new(path, plain_message(&e.to_string(), path)))?;
        groups = load_file(path, opts)?.into_iter().map(|(_, group)| group).collect();
    }
    let mut seen = std::collections::HashMap::new();
    for group in &groups {
        if let Some(domain) = seen.insert(group.id.as_str(), group.domain.as_str()) {
            return Err(DataError::new(path, format!("query id `{}` occurs twice (domains {domain} and {})", group.id, group.domain)).field("id"));
        }
    }
    Ok(Dataset { source: Some(path.to_path_buf()), groups })
}

/// A message from `util` without the leading `path: ` that a `DataError` prints itself.
pub(crate) fn plain_message(message: &str, path: &std::path::Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// The `*.jsonl` / `*.jsonl.xz` files of a directory in name order (at least one). An entry
/// with such a name that is not a regular file (a broken or looping symlink, a FIFO) is an error,
/// not skipped.
fn jsonl_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::new(dir, format!("cannot list directory: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_jsonl(p))
        .collect();
    files.sort();
    for file in &files {
        crate::util::check_regular_file(file).map_err(|e| DataError::new(file, plain_message(&e.to_string(), file)))?;
    }
    if files.is_empty() {
        return Err(DataError::new(dir, "no *.jsonl files and not a BEIR directory (corpus.jsonl, queries.jsonl, qrels/)"));
    }
    Ok(files)
}

fn load_file(path: &std::path::Path, opts: &LoadOptions) -> Result<Vec<(usize, QueryGroup)>, DataError> {
    match detect_file_format(path)? {
        Format::Native => native::read_located(path),
        Format::FlagEmbedding => flag::read_located(path, opts),
        Format::Beir => unreachable!("BEIR is a directory format"),
    }
}

/// The format `load` would use for `path`, for display.
pub fn detect_format(path: &std::path::Path) -> Result<Format, DataError> {
    if path.is_dir() {
        if beir::is_beir_dir(path) {
            return Ok(Format::Beir);
        }
        detect_file_format(&jsonl_files(path)?[0])
    } else {
        detect_file_format(path)
    }
}
