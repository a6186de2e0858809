//! Gazetteer recogniser: lists of known surfaces per entity type, matched in one
//! pass with an Aho–Corasick automaton (ASCII case-insensitive, overlapping).
//!
//! Matching rules (documented in docs/abstraction.md):
//! - a match must lie on word boundaries (see [`super::text::on_word_boundaries`]);
//! - an all-lower-case entry (`ibuprofen`) matches any capitalisation;
//! - an entry with capitals (`Zeekr`, `ZKR`) matches exactly, except that a
//!   lower-case first letter may be capitalised (`the S&P 500` → `The S&P 500`);
//! - entries that are empty, have no letter or digit, or contain a placeholder
//!   are rejected with an error naming the file, type and index.
//!
//! File format: `{"TYPE": ["surface", ...], ...}`; keys starting with `_` are comments.

use std::collections::{BTreeMap, BTreeSet};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use anyhow::{bail, Context};

use super::recognizer::Detection;
use super::schema::is_valid_type_name;
use super::text::{contains_placeholder, on_word_boundaries};

/// One known surface of a type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GazetteerEntry {
    pub label: String,
    pub surface: String,
}

/// Checks a surface for a gazetteer or a correction; returns it trimmed.
pub fn validate_surface(surface: &str) -> Result<String, String> {
    let trimmed = surface.trim();
    if trimmed.is_empty() {
        return Err("empty surface".into());
    }
    if !trimmed.chars().any(char::is_alphanumeric) {
        return Err(format!("surface `{trimmed}` has no letter or digit (all punctuation)"));
    }
    if contains_placeholder(trimmed) {
        return Err(format!("surface `{trimmed}` contains a placeholder token"));
    }
    if trimmed.len() > 1000 {
        return Err(format!("surface of {} bytes is longer than 1000", trimmed.len()));
    }
    Ok(trimmed.to_string())
}

/// Parses gazetteer JSON (`{"TYPE": ["surface", ...]}`) into entries;
/// `source` names the file in errors.
pub fn parse_gazetteer_json(text: &str, source: &str) -> anyhow::Result<Vec<GazetteerEntry>> {
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)
        .with_context(|| format!("{source}: a gazetteer is a JSON object {{\"TYPE\": [\"surface\", ...]}}"))?;
    let mut entries = Vec::new();
    for (label, value) in map {
        if label.starts_with('_') {
            continue;
        }
        if !is_valid_type_name(&label) {
            bail!("{source}: field `{label}`: type name must be upper-case letters, digits and `_`");
        }
        let serde_json::Value::Array(items) = value else {
            bail!("{source}: field `{label}`: expected a list of surfaces");
        };
        for (i, item) in items.iter().enumerate() {
            let serde_json::Value::String(surface) = item else {
                bail!("{source}: field `{label}[{i}]`: expected a string, found {item}");
            };
            let surface = validate_surface(surface).map_err(|msg| anyhow::anyhow!("{source}: field `{label}[{i}]`: {msg}"))?;
            entries.push(GazetteerEntry { label: label.clone(), surface });
        }
    }
    Ok(entries)
}

/// Drops `round(fraction × n)` of the `n` distinct entries, a seeded choice (the abstraction-coverage
/// study degrades recall on purpose this way); the kept entries are returned sorted. `fraction` is
/// clamped to [0, 1].
pub fn drop_entries(entries: impl IntoIterator<Item = GazetteerEntry>, fraction: f64, seed: u64) -> Vec<GazetteerEntry> {
    use rand::seq::SliceRandom;
    let mut entries: Vec<GazetteerEntry> = entries.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    let dropped = (fraction.clamp(0.0, 1.0) * entries.len() as f64).round() as usize;
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.shuffle(&mut crate::util::seeded_rng(seed, crate::util::stable_hash("gazetteer-drop")));
    let mut keep = vec![true; entries.len()];
    for &i in &order[..dropped] {
        keep[i] = false;
    }
    let mut flags = keep.into_iter();
    entries.retain(|_| flags.next().unwrap_or(false));
    entries
}

/// A compiled gazetteer: one automaton over every distinct ASCII-lower-cased surface.
#[derive(Debug, Clone)]
pub struct Gazetteer {
    /// Recogniser name reported in detections (`gazetteer`, `user-gazetteer`, `correction`).
    name: String,
    priority: u8,
    entries: Vec<GazetteerEntry>,
    /// Per automaton pattern: the entries sharing that lower-cased key.
    by_pattern: Vec<Vec<usize>>,
    automaton: Option<AhoCorasick>,
}

impl Gazetteer {
    /// Compiles entries (duplicates removed; order does not matter).
    pub fn new(name: &str, priority: u8, entries: impl IntoIterator<Item = GazetteerEntry>) -> anyhow::Result<Gazetteer> {
        Gazetteer::build(name, priority, entries, None)
    }

    /// A gazetteer used for a few texts only: the automaton is the quickest to
    /// build (a non-contiguous NFA) rather than the quickest to search.
    pub fn short_lived(name: &str, priority: u8, entries: impl IntoIterator<Item = GazetteerEntry>) -> anyhow::Result<Gazetteer> {
        Gazetteer::build(name, priority, entries, Some(AhoCorasickKind::NoncontiguousNFA))
    }

    fn build(
        name: &str,
        priority: u8,
        entries: impl IntoIterator<Item = GazetteerEntry>,
        kind: Option<AhoCorasickKind>,
    ) -> anyhow::Result<Gazetteer> {
        let entries: Vec<GazetteerEntry> = entries.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        let mut keys: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            keys.entry(entry.surface.to_ascii_lowercase()).or_default().push(i);
        }
        let automaton = if keys.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .kind(kind)
                    .build(keys.keys())
                    .context("building the gazetteer automaton")?,
            )
        };
        Ok(Gazetteer { name: name.to_string(), priority, entries, by_pattern: keys.into_values().collect(), automaton })
    }

    pub fn entries(&self) -> &[GazetteerEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends every match of an allowed type to `out` (overlaps included).
    pub fn find(&self, text: &str, allowed: &BTreeSet<String>, out: &mut Vec<Detection>) {
        let Some(automaton) = &self.automaton else { return };
        for m in automaton.find_overlapping_iter(text) {
            let (start, end) = (m.start(), m.end());
            // ASCII-insensitive matching of UTF-8 patterns always ends on char boundaries.
            if !text.is_char_boundary(start) || !text.is_char_boundary(end) || !on_word_boundaries(text, start, end) {
                continue;
            }
            let found = &text[start..end];
            for &i in &self.by_pattern[m.pattern().as_usize()] {
                let entry = &self.entries[i];
                if allowed.contains(&entry.label) && case_matches(&entry.surface, found) {
                    out.push(Detection {
                        start,
                        end,
                        label: entry.label.clone(),
                        recogniser: self.name.clone(),
                        score: 1.0,
                        priority: self.priority,
                    });
                }
            }
        }
    }
}

/// The case policy described in the module docs; `found` equals `entry` up to
/// ASCII case.
fn case_matches(entry: &str, found: &str) -> bool {
    if !entry.chars().any(char::is_uppercase) || entry == found {
        return true;
    }
    let mut entry_chars = entry.chars();
    let mut found_chars = found.chars();
    match (entry_chars.next(), found_chars.next()) {
        (Some(e), Some(f)) => e.is_lowercase() && f == e.to_ascii_uppercase() && entry_chars.as_str() == found_chars.as_str(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(json: &str) -> Vec<GazetteerEntry> {
        parse_gazetteer_json(json, "test.json").unwrap()
    }

    fn labels(text: &str, gaz: &Gazetteer) -> Vec<(String, String)> {
        let allowed: BTreeSet<String> = gaz.entries().iter().map(|e| e.label.clone()).collect();
        let mut out = Vec::new();
        gaz.find(text, &allowed, &mut out);
        out.iter().map(|d| (text[d.start..d.end].to_string(), d.label.clone())).collect()
    }

    #[test]
    fn case_and_word_boundaries_are_respected() {
        let gaz = Gazetteer::new(
            "gazetteer",
            60,
            entries(r#"{"DRUG": ["ibuprofen"], "COMPANY": ["Apple", "Zeekr"], "INDEX": ["the S&P 500"]}"#),
        )
        .unwrap();
        let found = labels("IBUPROFEN and Ibuprofen, not ibuprofenol; apple pie; Apple Inc; The S&P 500 rose; ZEEKR", &gaz);
        let surfaces: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(surfaces, ["IBUPROFEN", "Ibuprofen", "Apple", "The S&P 500"]);
    }

    #[test]
    fn bad_entries_are_rejected_with_their_place() {
        for (json, needle) in [
            (r#"{"DRUG": [""]}"#, "DRUG[0]"),
            (r#"{"DRUG": ["ok", "--!"]}"#, "DRUG[1]"),
            (r#"{"DRUG": ["[DRUG_1]"]}"#, "placeholder"),
            (r#"{"drug": ["x"]}"#, "type name"),
            (r#"{"DRUG": "x"}"#, "list"),
            (r#"["x"]"#, "JSON object"),
        ] {
            let err = format!("{:#}", parse_gazetteer_json(json, "g.json").unwrap_err());
            assert!(err.contains(needle) && err.contains("g.json"), "{json}: {err}");
        }
    }

    #[test]
    fn dropping_is_seeded_and_drops_the_requested_fraction() {
        let all: Vec<GazetteerEntry> = (0..200).map(|i| GazetteerEntry { label: "DRUG".into(), surface: format!("drug{i}") }).collect();
        for (fraction, kept) in [(0.0, 200), (0.25, 150), (0.5, 100), (0.75, 50), (1.0, 0)] {
            let a = drop_entries(all.clone(), fraction, 7);
            assert_eq!(a.len(), kept, "fraction {fraction}");
            assert!(a.iter().all(|e| all.contains(e)), "only original entries are kept");
            assert_eq!(a, drop_entries(all.iter().rev().cloned(), fraction, 7), "same seed, same choice, whatever the input order");
        }
        let (a, b) = (drop_entries(all.clone(), 0.5, 7), drop_entries(all.clone(), 0.5, 8));
        assert_ne!(a, b, "another seed drops other entries");
        // Duplicates count once.
        let doubled: Vec<GazetteerEntry> = all.iter().chain(&all).cloned().collect();
        assert_eq!(drop_entries(doubled, 0.5, 7), a);
    }

    #[test]
    fn overlapping_entries_are_all_reported() {
        let gaz = Gazetteer::new("gazetteer", 60, entries(r#"{"DISEASE": ["diabetes", "type 2 diabetes"]}"#)).unwrap();
        assert_eq!(labels("type 2 diabetes", &gaz).len(), 2);
    }
}
