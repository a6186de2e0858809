//! The abstracted dataset on disk: a directory holding `<domain>.jsonl` (native
//! format, abstracted texts, `meta.abstracted = "true"`), `span_maps/<domain>.jsonl`
//! (one line per group, same order) and `abstraction.json` (options and counts).
//!
//! A span-map line: `{"group_id": str, "query": [span], "candidates": [{"id": str,
//! "spans": [span]}]}` with span = `{"orig_start", "orig_end", "abs_start",
//! "abs_end", "label", "placeholder", "surface", "recogniser"}` — **character**
//! offsets (like the native format), `orig_*` into the original text, `abs_*`
//! into the abstracted one. `surface` is the exact original text, so the
//! original is restored from the abstracted text and its map alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use super::abstractor::{restore, AbstractedGroup, CandidateMap, GroupMaps, SpanMapEntry};
use crate::data::{Dataset, QueryGroup};

/// Byte offset → char offset for every char boundary of a text.
fn char_index(text: &str) -> BTreeMap<usize, usize> {
    text.char_indices().map(|(b, _)| b).chain([text.len()]).enumerate().map(|(c, b)| (b, c)).collect()
}

/// Byte offsets of every char: `table[c]`, plus `text.len()` at the end.
fn byte_table(text: &str) -> Vec<usize> {
    text.char_indices().map(|(b, _)| b).chain([text.len()]).collect()
}

fn spans_to_chars(spans: &[SpanMapEntry], original: &str, abstracted: &str) -> Vec<SpanMapEntry> {
    let (orig, abs) = (char_index(original), char_index(abstracted));
    spans
        .iter()
        .map(|s| SpanMapEntry {
            orig_start: orig[&s.orig_start],
            orig_end: orig[&s.orig_end],
            abs_start: abs[&s.abs_start],
            abs_end: abs[&s.abs_end],
            ..s.clone()
        })
        .collect()
}

/// The maps of a group with char offsets (for the sidecar file).
pub fn maps_to_chars(abstracted: &AbstractedGroup, original: &QueryGroup) -> GroupMaps {
    let maps = &abstracted.maps;
    GroupMaps {
        group_id: maps.group_id.clone(),
        query: spans_to_chars(&maps.query, &original.query, &abstracted.group.query),
        candidates: maps
            .candidates
            .iter()
            .zip(original.candidates.iter().zip(&abstracted.group.candidates))
            .map(|(m, (o, a))| CandidateMap { id: m.id.clone(), spans: spans_to_chars(&m.spans, &o.text, &a.text) })
            .collect(),
    }
}

/// Restores one text from its abstracted form and a char-offset map; returns
/// the original text and the map with byte offsets.
pub fn restore_from_chars(abstracted: &str, spans: &[SpanMapEntry]) -> anyhow::Result<(String, Vec<SpanMapEntry>)> {
    let abs = byte_table(abstracted);
    let at = |c: usize| abs.get(c).copied().with_context(|| format!("char offset {c} is outside the text ({} chars)", abs.len() - 1));
    let mut bytes = Vec::with_capacity(spans.len());
    for s in spans {
        bytes.push(SpanMapEntry { abs_start: at(s.abs_start)?, abs_end: at(s.abs_end)?, ..s.clone() });
    }
    let original = restore(abstracted, &bytes)?;
    let orig = byte_table(&original);
    for (b, s) in bytes.iter_mut().zip(spans) {
        b.orig_start = *orig.get(s.orig_start).context("orig_start outside the restored text")?;
        b.orig_end = *orig.get(s.orig_end).context("orig_end outside the restored text")?;
        if original.get(b.orig_start..b.orig_end) != Some(b.surface.as_str()) {
            bail!("orig offsets [{}, {}) do not hold the surface `{}`", s.orig_start, s.orig_end, s.surface);
        }
    }
    Ok((original, bytes))
}

/// Options and counts written to `abstraction.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub source: String,
    pub options: super::abstractor::AbstractionOptions,
    pub seed: u64,
    pub heuristic_names: bool,
    pub corrections: usize,
    pub groups: usize,
    pub texts: usize,
    pub replaced_mentions: usize,
    pub per_type: BTreeMap<String, usize>,
    pub files: Vec<String>,
}

/// Writes the abstracted dataset (one file per domain), its span maps and the
/// summary into `out_dir` (created if missing; files are written atomically).
pub fn write_export(out_dir: &Path, original: &Dataset, abstracted: &[AbstractedGroup], mut summary: ExportSummary) -> anyhow::Result<Vec<PathBuf>> {
    if out_dir.extension().is_some_and(|e| e == "jsonl") {
        bail!("--out {} looks like a file: give a directory (it receives <domain>.jsonl and span_maps/)", out_dir.display());
    }
    if out_dir.is_file() {
        bail!("--out {} is a file: give a directory", out_dir.display());
    }
    let mut by_domain: BTreeMap<&str, (Vec<QueryGroup>, String)> = BTreeMap::new();
    for (orig, abs) in original.groups.iter().zip(abstracted) {
        let (groups, maps) = by_domain.entry(orig.domain.as_str()).or_default();
        groups.push(abs.group.clone());
        maps.push_str(&serde_json::to_string(&maps_to_chars(abs, orig))?);
        maps.push('\n');
        summary.texts += 1 + abs.group.candidates.len();
        for span in abs.maps.query.iter().chain(abs.maps.candidates.iter().flat_map(|c| &c.spans)) {
            summary.replaced_mentions += 1;
            *summary.per_type.entry(span.label.clone()).or_default() += 1;
        }
    }
    summary.groups = abstracted.len();
    let mut written = Vec::new();
    for (domain, (groups, maps)) in &by_domain {
        let file_name = format!("{}.jsonl", sanitize(domain));
        let data_path = out_dir.join(&file_name);
        crate::data::native::write(&data_path, groups)?;
        let map_path = out_dir.join("span_maps").join(&file_name);
        crate::util::atomic_write(&map_path, maps.as_bytes())?;
        summary.files.push(file_name);
        written.push(data_path);
        written.push(map_path);
    }
    let summary_path = out_dir.join("abstraction.json");
    crate::util::atomic_write_json(&summary_path, &summary)?;
    written.push(summary_path);
    Ok(written)
}

fn sanitize(domain: &str) -> String {
    let name: String = domain.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if name.is_empty() { "domain".into() } else { name }
}

/// Reads an export back and restores the original texts; returns the restored
/// groups (texts only; gold spans are not part of the maps). Used to check that
/// an export is complete.
pub fn restore_export(out_dir: &Path) -> anyhow::Result<Vec<QueryGroup>> {
    let abstracted = crate::data::load(out_dir, &Default::default())?;
    let mut maps: BTreeMap<String, GroupMaps> = BTreeMap::new();
    let map_dir = out_dir.join("span_maps");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&map_dir)
        .with_context(|| format!("listing {}", map_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let group: GroupMaps = serde_json::from_str(line).with_context(|| format!("{}:{}: malformed span map", file.display(), i + 1))?;
            maps.insert(group.group_id.clone(), group);
        }
    }
    let mut restored = Vec::new();
    for group in abstracted.groups {
        let map = maps.get(&group.id).with_context(|| format!("no span map for group `{}`", group.id))?;
        let mut out = group.clone();
        out.query = restore_from_chars(&group.query, &map.query).with_context(|| format!("group `{}`: query", group.id))?.0;
        out.query_entities.clear();
        for (cand, m) in out.candidates.iter_mut().zip(&map.candidates) {
            cand.text = restore_from_chars(&cand.text, &m.spans).with_context(|| format!("group `{}`: candidate `{}`", group.id, cand.id))?.0;
            cand.entities.clear();
        }
        restored.push(out);
    }
    Ok(restored)
}
