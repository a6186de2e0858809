//! The experiment's score cache: every (adapter, query group) margin vector the evaluation computes is
//! appended to `OUT/score_cache.jsonl`, so an experiment stopped during its evaluation resumes there, and a
//! rerun that adds an ablation or a study to a finished run scores only what is new.
//!
//! An entry's key is the SHA-256 of the scoring context (backbone fingerprint, precision, device), the
//! adapter's fingerprint and config (or `base`) and the group's token ids, so an entry is only ever reused for the same
//! computation; margins are written as JSON numbers that read back to the same `f32`, so cached and fresh
//! runs report identical numbers. The file is append-only with one entry per line, flushed after each: a
//! line cut short by a crash is skipped on the next load (and counted in the log), and its group is scored
//! again. `[train.output] resume = false` starts with an empty cache.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::{LoraAdapter, Reranker};
use crate::train::dev_eval::group_margins;
use crate::train::groups::EncodedGroup;
use crate::util::sha256_hex;

/// The file name under the experiment's output directory.
pub const FILE: &str = "score_cache.jsonl";

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    margins: Vec<f32>,
}

/// An adapter to score under, with its fingerprint ([`crate::train::expert::adapter_fingerprint`]).
#[derive(Clone, Copy)]
pub struct Keyed<'a> {
    pub fingerprint: &'a str,
    pub adapter: &'a LoraAdapter,
}

pub struct ScoreCache {
    path: PathBuf,
    context: String,
    entries: Mutex<HashMap<String, Vec<f32>>>,
    file: Mutex<std::fs::File>,
    /// Lines of the file that could not be read (skipped).
    pub skipped_lines: usize,
    /// Entries read from the file.
    pub loaded: usize,
}

impl ScoreCache {
    /// Opens (or, when `fresh`, empties) the cache at `path` for scores computed in `context`
    /// (whatever besides the adapter and the tokens decides a score: backbone, precision, device).
    pub fn open(path: &Path, context: &str, fresh: bool) -> Result<Self> {
        if fresh && path.exists() {
            std::fs::remove_file(path).with_context(|| format!("cannot remove the score cache {}", path.display()))?;
        }
        let mut entries = HashMap::new();
        let mut skipped_lines = 0;
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            match serde_json::from_str::<Entry>(line) {
                Ok(entry) => {
                    entries.insert(entry.key, entry.margins);
                }
                Err(_) => skipped_lines += 1,
            }
        }
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("cannot open {} for appending", path.display()))?;
        // A line cut short by a crash has no newline: the next entry must start on a line of its own.
        if !text.is_empty() && !text.ends_with('\n') {
            file.write_all(b"\n").with_context(|| format!("writing {}", path.display()))?;
        }
        let loaded = entries.len();
        Ok(Self { path: path.to_path_buf(), context: sha256_hex(context.as_bytes()), entries: Mutex::new(entries), file: Mutex::new(file), skipped_lines, loaded })
    }

    fn key(&self, adapter_fingerprint: Option<&str>, group: &EncodedGroup) -> String {
        let mut text = format!("{}|{}|", self.context, adapter_fingerprint.unwrap_or("base"));
        for ids in std::iter::once(&group.shared).chain(&group.candidates) {
            for id in ids {
                text.push_str(&id.to_string());
                text.push(',');
            }
            text.push('|');
        }
        sha256_hex(text.as_bytes())
    }

    /// The yes − no margins of `group`'s candidates under `adapter` (the backbone alone when None): from the
    /// cache, else scored and appended.
    pub fn margins(&self, reranker: &Reranker, adapter: Option<Keyed>, group: &EncodedGroup) -> Result<Vec<f32>> {
        // The tensors' fingerprint and the adapter's config (its scaling and modules decide a score as well).
        let adapter_key = adapter.map(|a| Ok::<_, serde_json::Error>(format!("{} {}", a.fingerprint, serde_json::to_string(&a.adapter.config)?))).transpose()?;
        let key = self.key(adapter_key.as_deref(), group);
        if let Some(margins) = self.entries.lock().expect("score cache lock").get(&key) {
            if margins.len() == group.candidates.len() {
                return Ok(margins.clone());
            }
        }
        let margins = group_margins(reranker, adapter.map(|a| a.adapter), group)?;
        let mut line = serde_json::to_string(&Entry { key: key.clone(), margins: margins.clone() })?;
        line.push('\n');
        {
            let mut file = self.file.lock().expect("score cache lock");
            file.write_all(line.as_bytes()).and_then(|_| file.flush()).with_context(|| format!("writing the score cache {}", self.path.display()))?;
        }
        self.entries.lock().expect("score cache lock").insert(key, margins.clone());
        Ok(margins)
    }

    /// Entries held (read and added).
    pub fn len(&self) -> usize {
        self.entries.lock().expect("score cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(shared: &[u32], candidates: &[&[u32]]) -> EncodedGroup {
        let n = candidates.len();
        EncodedGroup { id: "q".into(), domain: "d".into(), shared: shared.to_vec(), candidates: candidates.iter().map(|c| c.to_vec()).collect(), relevance: vec![0; n], bm25: vec![0.0; n] }
    }

    #[test]
    fn keys_tell_apart_context_adapter_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScoreCache::open(&dir.path().join(FILE), "backbone a", false).unwrap();
        let other_context = ScoreCache::open(&dir.path().join("other.jsonl"), "backbone b", false).unwrap();
        let g = group(&[1, 2], &[&[3], &[4, 5]]);
        let base = cache.key(None, &g);
        assert_ne!(base, cache.key(Some("f1"), &g));
        assert_ne!(cache.key(Some("f1"), &g), cache.key(Some("f2"), &g));
        assert_ne!(base, other_context.key(None, &g));
        // The boundary between the prefix and the candidates, and between candidates, is part of the key.
        assert_ne!(base, cache.key(None, &group(&[1], &[&[2, 3], &[4, 5]])));
        assert_ne!(base, cache.key(None, &group(&[1, 2], &[&[3, 4], &[5]])));
        assert_eq!(base, cache.key(None, &group(&[1, 2], &[&[3], &[4, 5]])));
    }

    #[test]
    fn entries_survive_a_reopen_a_torn_line_is_skipped_and_fresh_empties() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let margins = vec![0.1f32, -3.25e-7, 17.5, f32::MIN_POSITIVE];
        std::fs::write(&path, format!("{}\n{{\"key\": \"cut sh", serde_json::to_string(&Entry { key: "k".into(), margins: margins.clone() }).unwrap())).unwrap();
        let cache = ScoreCache::open(&path, "c", false).unwrap();
        assert_eq!((cache.loaded, cache.skipped_lines), (1, 1));
        let read = cache.entries.lock().unwrap()["k"].clone();
        assert_eq!(read.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), margins.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), "exact f32 round trip");
        // Appending after the torn line starts a new line: the next open reads both good entries.
        cache.file.lock().unwrap().write_all(b"{\"key\":\"k2\",\"margins\":[1.0]}\n").unwrap();
        drop(cache);
        let again = ScoreCache::open(&path, "c", false).unwrap();
        assert_eq!((again.loaded, again.skipped_lines), (2, 1));
        let fresh = ScoreCache::open(&path, "c", true).unwrap();
        assert_eq!((fresh.loaded, fresh.len()), (0, 0));
    }
}
