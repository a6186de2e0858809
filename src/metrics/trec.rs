//! TREC qrels and run files: [`Qrels`] (`qid iter docid relevance`) and [`Run`]
//! (`qid Q0 docid rank score tag`), held in `BTreeMap`s so every iteration is in
//! a stable order.
//!
//! Reading is strict: a malformed line is an error naming `file:line:column`;
//! a document listed twice for one query is an error. The rank column of a run
//! is checked to be an integer but otherwise ignored (as trec_eval does): the
//! ranking is always rebuilt from the scores (see [`Run::ranked`]). Writing is
//! atomic and round-trips exactly (scores are printed in Rust's shortest
//! round-trip form).
//!
//! A leading UTF-8 byte-order mark is stripped. Ids may not hold control characters (whitespace
//! already separates the fields); writing refuses ids that [`crate::data::check_id`] rejects, so
//! a file this crate writes can always be read back.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A malformed TREC file: where (1-based line and column) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}:{}: {}", .file.display(), .line, .column, .message)]
pub struct TrecError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Relevance judgments: query id → document id → graded relevance.
/// Relevance ≥ 1 is relevant; 0 (or negative) is judged non-relevant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Qrels {
    pub judgments: BTreeMap<String, BTreeMap<String, i32>>,
}

/// A system's scores: query id → document id → score, plus the run's tag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    pub name: String,
    pub scores: BTreeMap<String, BTreeMap<String, f64>>,
}

impl Qrels {
    pub fn insert(&mut self, query: &str, doc: &str, relevance: i32) {
        self.judgments.entry(query.to_string()).or_default().insert(doc.to_string(), relevance);
    }

    /// Number of queries with at least one judgment.
    pub fn len(&self) -> usize {
        self.judgments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.judgments.is_empty()
    }

    /// Parses TREC qrels text; `file` only names the source in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Qrels, TrecError> {
        let mut qrels = Qrels::default();
        for (line_no, line) in crate::util::strip_bom(text).lines().enumerate() {
            let fields = split_fields(line);
            if fields.is_empty() {
                continue;
            }
            let at = LineAt { file, line: line_no + 1, text: line };
            at.check_ids(&fields)?;
            if fields.len() != 4 {
                return Err(at.error_after(&fields, format!("expected 4 fields `qid iter docid relevance`, found {}", fields.len())));
            }
            let (query, doc, relevance) = (fields[0], fields[2], fields[3]);
            let relevance: i32 = relevance
                .1
                .parse()
                .map_err(|_| at.error(relevance.0, format!("relevance `{}` is not an integer", relevance.1)))?;
            let docs = qrels.judgments.entry(query.1.to_string()).or_default();
            if docs.insert(doc.1.to_string(), relevance).is_some() {
                return Err(at.error(doc.0, format!("document `{}` judged twice for query `{}`", doc.1, query.1)));
            }
        }
        Ok(qrels)
    }

    /// Reads a TREC qrels file.
    pub fn read(path: &Path) -> anyhow::Result<Qrels> {
        let text = read_text(path)?;
        Ok(Qrels::parse(&text, path)?)
    }

    /// The file content: `qid 0 docid relevance`, queries and documents in id order.
    pub fn to_trec_string(&self) -> String {
        let mut out = String::new();
        for (query, docs) in &self.judgments {
            for (doc, relevance) in docs {
                let _ = writeln!(out, "{query} 0 {doc} {relevance}");
            }
        }
        out
    }

    /// Writes a TREC qrels file atomically; refuses ids that could not be read back.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        for (query, docs) in &self.judgments {
            check_writable_id(path, "query", query)?;
            for doc in docs.keys() {
                check_writable_id(path, "document", doc)?;
            }
        }
        crate::util::atomic_write(path, self.to_trec_string().as_bytes())
    }
}

impl Run {
    pub fn new(name: impl Into<String>) -> Run {
        Run { name: name.into(), scores: BTreeMap::new() }
    }

    pub fn insert(&mut self, query: &str, doc: &str, score: f64) {
        self.scores.entry(query.to_string()).or_default().insert(doc.to_string(), score);
    }

    /// One query's documents, best first: score descending, then document id
    /// ascending (byte order) among equal scores. This tie-break is the one used
    /// by every metric in this crate.
    pub fn ranked(&self, query: &str) -> Vec<(&str, f64)> {
        self.scores.get(query).map(|docs| rank_documents(docs)).unwrap_or_default()
    }

    /// Parses a TREC run; `file` only names the source in errors. The run's name
    /// is the tag of its first line.
    pub fn parse(text: &str, file: &Path) -> Result<Run, TrecError> {
        let mut run = Run::default();
        for (line_no, line) in crate::util::strip_bom(text).lines().enumerate() {
            let fields = split_fields(line);
            if fields.is_empty() {
                continue;
            }
            let at = LineAt { file, line: line_no + 1, text: line };
            at.check_ids(&fields)?;
            if fields.len() != 6 {
                return Err(at.error_after(&fields, format!("expected 6 fields `qid Q0 docid rank score tag`, found {}", fields.len())));
            }
            let (query, doc, rank, score, tag) = (fields[0], fields[2], fields[3], fields[4], fields[5]);
            rank.1.parse::<i64>().map_err(|_| at.error(rank.0, format!("rank `{}` is not an integer", rank.1)))?;
            let value: f64 = score.1.parse().map_err(|_| at.error(score.0, format!("score `{}` is not a number", score.1)))?;
            if !value.is_finite() {
                return Err(at.error(score.0, format!("score `{}` is not finite", score.1)));
            }
            if run.name.is_empty() {
                run.name = tag.1.to_string();
            }
            let docs = run.scores.entry(query.1.to_string()).or_default();
            if docs.insert(doc.1.to_string(), value).is_some() {
                return Err(at.error(doc.0, format!("document `{}` listed twice for query `{}`", doc.1, query.1)));
            }
        }
        Ok(run)
    }

    /// Reads a TREC run file.
    pub fn read(path: &Path) -> anyhow::Result<Run> {
        let text = read_text(path)?;
        Ok(Run::parse(&text, path)?)
    }

    /// The file content: queries in id order, documents ranked (rank from 1).
    pub fn to_trec_string(&self) -> String {
        let tag = if self.name.is_empty() { "r2r" } else { self.name.as_str() };
        let mut out = String::new();
        for query in self.scores.keys() {
            for (rank, (doc, score)) in self.ranked(query).into_iter().enumerate() {
                let _ = writeln!(out, "{query} Q0 {doc} {} {score} {tag}", rank + 1);
            }
        }
        out
    }

    /// Writes a TREC run file atomically; refuses ids (and a tag) that could not be read back.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if !self.name.is_empty() {
            check_writable_id(path, "run tag", &self.name)?;
        }
        for (query, docs) in &self.scores {
            check_writable_id(path, "query", query)?;
            for (doc, score) in docs {
                check_writable_id(path, "document", doc)?;
                anyhow::ensure!(score.is_finite(), "{}: score of document `{doc}` for query `{query}` is not finite", path.display());
            }
        }
        crate::util::atomic_write(path, self.to_trec_string().as_bytes())
    }
}

/// Documents sorted best first: score descending, then id ascending (the metrics' [`rank`] of
/// the documents listed in id order).
///
/// [`rank`]: super::rank
pub fn rank_documents(docs: &BTreeMap<String, f64>) -> Vec<(&str, f64)> {
    let listed: Vec<(&str, f64)> = docs.iter().map(|(d, &s)| (d.as_str(), s)).collect();
    let scores: Vec<f64> = listed.iter().map(|d| d.1).collect();
    super::rank(&scores).into_iter().map(|i| listed[i]).collect()
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    crate::util::read_text_limited(path, crate::util::MAX_TEXT_FILE_BYTES)
}

fn check_writable_id(path: &Path, what: &str, id: &str) -> anyhow::Result<()> {
    crate::data::check_id(id).map_err(|msg| anyhow::anyhow!("{}: cannot write {what} {msg}", path.display()))
}

/// Whitespace-separated fields with their 1-based character columns.
fn split_fields(line: &str) -> Vec<(usize, &str)> {
    let mut fields = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in line.char_indices().chain(std::iter::once((line.len(), ' '))) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                fields.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    fields.into_iter().map(|(byte, text)| (line[..byte].chars().count() + 1, text)).collect()
}

struct LineAt<'a> {
    file: &'a Path,
    line: usize,
    text: &'a str,
}

impl LineAt<'_> {
    /// Fields may not hold control characters (e.g. NUL); whitespace already splits them.
    fn check_ids(&self, fields: &[(usize, &str)]) -> Result<(), TrecError> {
        for (column, text) in fields {
            if let Some(c) = text.chars().find(|&c| c.is_control() || c == '\u{feff}') {
                return Err(self.error(*column, format!("field `{}` contains the control character {c:?}", text.escape_debug())));
            }
        }
        Ok(())
    }

    fn error(&self, column: usize, message: String) -> TrecError {
        TrecError { file: self.file.to_path_buf(), line: self.line, column, message }
    }

    /// An error pointing just past the last field (for a missing field) or at
    /// the first surplus field.
    fn error_after(&self, fields: &[(usize, &str)], message: String) -> TrecError {
        let column = match fields.last() {
            Some((col, text)) => col + text.chars().count(),
            None => self.text.chars().count() + 1,
        };
        self.error(column, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_and_qrels_round_trip_exactly() {
        let mut run = Run::new("bm25");
        run.insert("q2", "d1", 0.1 + 0.2);
        run.insert("q1", "d9", -3.5e-7);
        run.insert("q1", "d3", 12.0);
        run.insert("q1", "d4", 12.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.txt");
        run.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next().unwrap(), "q1 Q0 d3 1 12 bm25", "ties ranked by doc id ascending");
        assert_eq!(Run::read(&path).unwrap(), run);

        let mut qrels = Qrels::default();
        qrels.insert("q1", "d3", 2);
        qrels.insert("q1", "d7", 0);
        qrels.insert("q2", "d1", -1);
        let path = dir.path().join("qrels.txt");
        qrels.write(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "q1 0 d3 2\nq1 0 d7 0\nq2 0 d1 -1\n");
        assert_eq!(Qrels::read(&path).unwrap(), qrels);
    }

    #[test]
    fn malformed_lines_name_file_line_and_column() {
        let file = Path::new("runs/a.txt");
        let err = Run::parse("q1 Q0 d1 1 0.5 t\n\nq1 Q0 d2 2 abc t\n", file).unwrap_err();
        assert_eq!((err.line, err.column), (3, 12));
        assert_eq!(err.to_string(), "runs/a.txt:3:12: score `abc` is not a number");

        let err = Run::parse("q1 Q0 d1 1 0.5\n", file).unwrap_err();
        assert_eq!((err.line, err.column), (1, 15));
        assert!(err.message.contains("expected 6 fields"), "{err}");

        let err = Run::parse("q1 Q0 d1 x 0.5 t\n", file).unwrap_err();
        assert_eq!(err.column, 10);
        let err = Run::parse("q1 Q0 d1 1 NaN t\n", file).unwrap_err();
        assert!(err.message.contains("not finite"), "{err}");
        let err = Run::parse("q1 Q0 d1 1 0.5 t\nq1 Q0 d1 2 0.4 t\n", file).unwrap_err();
        assert_eq!((err.line, err.column), (2, 7));

        let file = Path::new("q.txt");
        let err = Qrels::parse("q1 0 d1 1\nq1\t0  d2 two\n", file).unwrap_err();
        assert_eq!(err.to_string(), "q.txt:2:10: relevance `two` is not an integer");
        let err = Qrels::parse("q1 0 d1 1\nq1 0 d1 2\n", file).unwrap_err();
        assert!(err.message.contains("judged twice"), "{err}");
        let err = Qrels::parse("q1 0 d1 1 extra\n", file).unwrap_err();
        assert!(err.message.contains("expected 4 fields"), "{err}");
    }

    #[test]
    fn a_byte_order_mark_is_stripped_and_control_characters_refused() {
        let file = Path::new("r.txt");
        let plain = Run::parse("q1 Q0 d1 1 2.5 t\nq2 Q0 d2 1 1 t\n", file).unwrap();
        assert_eq!(Run::parse("\u{feff}q1 Q0 d1 1 2.5 t\nq2 Q0 d2 1 1 t\n", file).unwrap(), plain);
        let qrels = Qrels::parse("q1 0 d1 1\n", file).unwrap();
        assert_eq!(Qrels::parse("\u{feff}q1 0 d1 1\n", file).unwrap(), qrels);
        let err = Run::parse("q1 Q0 d\u{0}1 1 2.5 t\n", file).unwrap_err();
        assert_eq!((err.line, err.column), (1, 7), "{err}");
        assert!(err.message.contains("control character"), "{err}");
    }

    #[test]
    fn ids_that_cannot_be_read_back_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.txt");
        for bad in ["q\t1", "q 1", "q\n1", "q\u{0}1"] {
            let mut run = Run::new("t");
            run.insert(bad, "d1", 1.0);
            let err = run.write(&path).unwrap_err().to_string();
            assert!(err.contains("run.txt") && err.contains("query"), "{err}");
            let mut run = Run::new("t");
            run.insert("q1", bad, 1.0);
            assert!(run.write(&path).is_err());
            let mut qrels = Qrels::default();
            qrels.insert("q1", bad, 1);
            assert!(qrels.write(&path).is_err());
        }
        assert!(!path.exists(), "nothing written");
    }

    #[test]
    fn blank_lines_and_tabs_are_accepted() {
        let run = Run::parse("\n q1\tQ0\td1\t1\t2.5\tsys \n\n", Path::new("r")).unwrap();
        assert_eq!(run.name, "sys");
        assert_eq!(run.ranked("q1"), vec![("d1", 2.5)]);
        assert!(run.ranked("missing").is_empty());
    }
}
