//! Abstraction: replaces detected entities with `[TYPE_n]` placeholders,
//! consistently across a query group, and keeps a span map from which the
//! original text is restored exactly.
//!
//! Rules:
//! - a group's texts (query, then candidates in order) are detected together:
//!   a surface found in one text is also found in the others (recogniser `group`);
//! - entities are keyed by their normalised surface (case-insensitive,
//!   whitespace collapsed): one key, one placeholder across the whole group; the
//!   type is the one of its first occurrence; different keys get different
//!   placeholders;
//! - `n` counts from 1 per type per group in first-occurrence order (`Ordered`)
//!   or as a seeded permutation of those numbers (`Randomised`); numbers that
//!   placeholders already in the group use are skipped;
//! - options choose the types to mask and an intensity p: round(p × distinct
//!   entities) of them, a seeded choice per group (seed, group id), are masked;
//! - placeholders already in the text are never re-abstracted, so abstraction
//!   is idempotent for p = 1 (for p < 1 a second pass masks part of the rest).

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::gazetteer::{Gazetteer, GazetteerEntry};
use super::recognizer::{resolve_overlaps, Detection, Recognizer};
use super::text::{normalize_surface, placeholder, placeholders, DisjointSpans};
use crate::data::{Dataset, EntitySpan, QueryGroup};

/// How placeholder numbers are assigned within a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Numbering {
    /// 1, 2, 3 … in order of first occurrence.
    #[default]
    Ordered,
    /// The same numbers, shuffled per group with the seed.
    Randomised,
}

/// What to mask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbstractionOptions {
    /// Types to mask; `None` masks every detected type.
    pub types: Option<BTreeSet<String>>,
    /// Fraction of a group's distinct entities that are masked, in [0, 1].
    pub intensity: f64,
    pub numbering: Numbering,
}

impl Default for AbstractionOptions {
    fn default() -> Self {
        AbstractionOptions { types: None, intensity: 1.0, numbering: Numbering::Ordered }
    }
}

impl AbstractionOptions {
    /// Checks the intensity and that every type is known to the recogniser.
    pub fn validate(&self, recognizer: &Recognizer) -> anyhow::Result<()> {
        if !(0.0..=1.0).contains(&self.intensity) {
            anyhow::bail!("intensity must be in [0, 1], got {}", self.intensity);
        }
        for label in self.types.iter().flatten() {
            if !recognizer.schema().has_type(label) && label != super::schema::NAME_TYPE {
                anyhow::bail!("unknown entity type `{label}` (schema types: {:?})", recognizer.schema().all_types());
            }
        }
        Ok(())
    }
}

/// One replaced mention: `orig_*` index the original text, `abs_*` the
/// abstracted text (byte offsets in memory; the sidecar file uses char offsets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanMapEntry {
    pub orig_start: usize,
    pub orig_end: usize,
    pub abs_start: usize,
    pub abs_end: usize,
    pub label: String,
    pub placeholder: String,
    pub surface: String,
    pub recogniser: String,
}

/// The span map of one candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateMap {
    pub id: String,
    pub spans: Vec<SpanMapEntry>,
}

/// The span maps of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMaps {
    pub group_id: String,
    pub query: Vec<SpanMapEntry>,
    pub candidates: Vec<CandidateMap>,
}

/// A group with abstracted texts and the maps back to the original.
#[derive(Debug, Clone, PartialEq)]
pub struct AbstractedGroup {
    pub group: QueryGroup,
    pub maps: GroupMaps,
}

/// The entity engine used for abstraction (a [`Recognizer`] with its corrections).
#[derive(Debug, Clone)]
pub struct Abstractor {
    recognizer: Recognizer,
}

impl Abstractor {
    pub fn new(recognizer: Recognizer) -> Self {
        Abstractor { recognizer }
    }

    /// The bundled schema, gazetteers and patterns.
    pub fn bundled() -> anyhow::Result<Self> {
        Ok(Abstractor::new(Recognizer::bundled()?))
    }

    pub fn recognizer(&self) -> &Recognizer {
        &self.recognizer
    }

    /// For expert corrections (`add_to_gazetteer`, `mark_not_entity`).
    pub fn recognizer_mut(&mut self) -> &mut Recognizer {
        &mut self.recognizer
    }

    /// The entities of one text of these domains.
    pub fn recognize(&self, text: &str, domains: &[&str]) -> Vec<Detection> {
        self.recognizer.recognize(text, domains)
    }
}

/// The domains whose types apply to a group: its domain and secondary domain.
pub fn group_domains(group: &QueryGroup) -> Vec<&str> {
    let mut domains = vec![group.domain.as_str()];
    domains.extend(group.secondary_domain.as_deref());
    domains
}

/// The texts of a group in order: the query, then each candidate.
pub fn group_texts(group: &QueryGroup) -> Vec<&str> {
    std::iter::once(group.query.as_str()).chain(group.candidates.iter().map(|c| c.text.as_str())).collect()
}

/// Detects the entities of every text of a group (query first), then finds each
/// detected surface in the group's other texts too (recogniser `group`).
pub fn detect_group(group: &QueryGroup, recognizer: &Recognizer) -> Vec<Vec<Detection>> {
    let scope = recognizer.scope(&group_domains(group));
    let texts = group_texts(group);
    if let Err(e) = recognizer.prefetch(&texts) {
        tracing::error!("learned entity recognition failed on group {}: {e:#}", group.id);
    }
    let mut detections: Vec<Vec<Detection>> = texts.iter().map(|t| recognizer.recognize_scoped(t, &scope)).collect();
    let mut first_label: BTreeMap<String, String> = BTreeMap::new();
    let mut surfaces = BTreeSet::new();
    for (text, found) in texts.iter().zip(&detections) {
        for d in found {
            let surface = &text[d.start..d.end];
            let key = normalize_surface(surface);
            // A gazetteer's surface is found in every text by that gazetteer
            // already (same rules, same scope); only context-dependent finds
            // (patterns, the heuristic) need to be looked for in the others.
            if !d.recogniser.ends_with("gazetteer") && d.recogniser != "correction" {
                surfaces.insert(surface.to_string());
            }
            first_label.entry(key).or_insert_with(|| d.label.clone());
        }
    }
    if surfaces.is_empty() {
        return detections;
    }
    let entries = surfaces.into_iter().map(|surface| GazetteerEntry { label: first_label[&normalize_surface(&surface)].clone(), surface });
    let Ok(group_gazetteer) = Gazetteer::short_lived("group", 0, entries) else { return detections };
    let labels: BTreeSet<String> = first_label.values().cloned().collect();
    for (text, found) in texts.iter().zip(detections.iter_mut()) {
        let mut extra = Vec::new();
        group_gazetteer.find(text, &labels, &mut extra);
        let protected = DisjointSpans::new(placeholders(text).into_iter().map(|p| (p.start, p.end)));
        let taken = DisjointSpans::new(found.iter().map(|d| (d.start, d.end)));
        extra.retain(|e| {
            !taken.overlaps(e.start, e.end)
                && !protected.overlaps(e.start, e.end)
                && first_label.get(&normalize_surface(&text[e.start..e.end])) == Some(&e.label)
        });
        if !extra.is_empty() {
            found.extend(resolve_overlaps(extra, &scope.preferred));
            found.sort_by_key(|d| d.start);
        }
    }
    detections
}

/// Abstracts one group (see the module docs). `opts.intensity` is clamped to [0, 1].
pub fn abstract_group(group: &QueryGroup, abstractor: &Abstractor, opts: &AbstractionOptions, seed: u64) -> AbstractedGroup {
    abstract_detected(group, &detect_group(group, &abstractor.recognizer), opts, seed)
}

/// [`abstract_group`] from the group's detections ([`detect_group`]), for callers that also show them.
pub fn abstract_detected(group: &QueryGroup, detected: &[Vec<Detection>], opts: &AbstractionOptions, seed: u64) -> AbstractedGroup {
    let texts = group_texts(group);
    let detections: Vec<Vec<Detection>> =
        detected.iter().map(|found| found.iter().filter(|d| opts.types.as_ref().is_none_or(|t| t.contains(&d.label))).cloned().collect()).collect();

    // Distinct entities in first-occurrence order, with their type.
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for (text, found) in texts.iter().zip(&detections) {
        for d in found {
            let key = normalize_surface(&text[d.start..d.end]);
            if seen.insert(key.clone()) {
                keys.push((key, d.label.clone()));
            }
        }
    }

    let mut rng = crate::util::seeded_rng(seed, crate::util::stable_hash(&group.id));
    let intensity = if opts.intensity.is_nan() { 1.0 } else { opts.intensity.clamp(0.0, 1.0) };
    let masked_count = ((keys.len() as f64) * intensity).round() as usize;
    let mut masked: Vec<bool> = vec![true; keys.len()];
    if masked_count < keys.len() {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.shuffle(&mut rng);
        masked = vec![false; keys.len()];
        for &i in &order[..masked_count] {
            masked[i] = true;
        }
    }

    // Numbers per type, skipping those of placeholders already in the group.
    let mut used: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    for text in &texts {
        for p in placeholders(text) {
            used.entry(p.label).or_default().insert(p.number);
        }
    }
    let mut per_type: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, (_, label)) in keys.iter().enumerate() {
        if masked[i] {
            per_type.entry(label.clone()).or_default().push(i);
        }
    }
    let mut assigned: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (label, members) in per_type {
        let taken = used.get(&label);
        let mut numbers: Vec<u32> = (1..).filter(|n| taken.is_none_or(|t| !t.contains(n))).take(members.len()).collect();
        if opts.numbering == Numbering::Randomised {
            numbers.shuffle(&mut rng);
        }
        for (i, n) in members.into_iter().zip(numbers) {
            assigned.insert(keys[i].0.clone(), (label.clone(), placeholder(&label, n)));
        }
    }

    let mut out = group.clone();
    let mut maps = GroupMaps { group_id: group.id.clone(), query: Vec::new(), candidates: Vec::new() };
    for (index, (text, found)) in texts.iter().zip(&detections).enumerate() {
        let (abstracted, spans) = replace(text, found, &assigned);
        if index == 0 {
            out.query_entities = shifted_entities(&group.query_entities, &spans);
            out.query = abstracted;
            maps.query = spans;
        } else {
            let original = &group.candidates[index - 1];
            let cand = &mut out.candidates[index - 1];
            cand.entities = shifted_entities(&original.entities, &spans);
            cand.text = abstracted;
            maps.candidates.push(CandidateMap { id: cand.id.clone(), spans });
        }
    }
    out.meta.insert("abstracted".into(), "true".into());
    out.meta.insert("abstraction_intensity".into(), format!("{intensity}"));
    out.meta.insert("abstraction_seed".into(), seed.to_string());
    out.meta.insert("abstraction_numbering".into(), format!("{:?}", opts.numbering).to_lowercase());
    let types = opts.types.as_ref().map(|t| t.iter().cloned().collect::<Vec<_>>().join(",")).unwrap_or_else(|| "all".into());
    out.meta.insert("abstraction_types".into(), types);
    AbstractedGroup { group: out, maps }
}

/// Replaces the detections that have a placeholder; returns the text and its map.
fn replace(text: &str, found: &[Detection], assigned: &BTreeMap<String, (String, String)>) -> (String, Vec<SpanMapEntry>) {
    let mut out = String::with_capacity(text.len());
    let mut spans = Vec::new();
    let mut cursor = 0;
    for d in found {
        let surface = &text[d.start..d.end];
        let Some((label, token)) = assigned.get(&normalize_surface(surface)) else { continue };
        out.push_str(&text[cursor..d.start]);
        let abs_start = out.len();
        out.push_str(token);
        spans.push(SpanMapEntry {
            orig_start: d.start,
            orig_end: d.end,
            abs_start,
            abs_end: out.len(),
            label: label.clone(),
            placeholder: token.clone(),
            surface: surface.to_string(),
            recogniser: d.recogniser.clone(),
        });
        cursor = d.end;
    }
    out.push_str(&text[cursor..]);
    (out, spans)
}

/// The entity spans of an abstracted text: one per placeholder, plus the
/// original spans that no replacement touched, moved to their new offsets.
fn shifted_entities(original: &[EntitySpan], spans: &[SpanMapEntry]) -> Vec<EntitySpan> {
    let mut out: Vec<EntitySpan> =
        spans.iter().map(|s| EntitySpan { start: s.abs_start, end: s.abs_end, label: s.label.clone() }).collect();
    // Spans are disjoint and in order: prefix[i] is the length change of the first i.
    let mut prefix = vec![0isize];
    for s in spans {
        prefix.push(prefix[prefix.len() - 1] + (s.abs_end - s.abs_start) as isize - (s.orig_end - s.orig_start) as isize);
    }
    for span in original {
        let before = spans.partition_point(|s| s.orig_end <= span.start);
        if spans.get(before).is_some_and(|s| s.orig_start < span.end) {
            continue;
        }
        let delta = prefix[before];
        let moved = |offset: usize| offset.checked_add_signed(delta).expect("shifted offsets stay in the text");
        out.push(EntitySpan { start: moved(span.start), end: moved(span.end), label: span.label.clone() });
    }
    out.sort();
    out.dedup();
    out
}

/// Why a text could not be restored from its span map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("span {index} [{start}, {end}) is outside the text or not on character boundaries")]
    OutOfRange { index: usize, start: usize, end: usize },
    #[error("span {index}: expected `{expected}` at [{start}, {end}), found `{found}`")]
    Mismatch { index: usize, start: usize, end: usize, expected: String, found: String },
    #[error("span {index} overlaps the previous span")]
    Overlap { index: usize },
}

/// The original text from an abstracted text and its span map.
pub fn restore(abstracted: &str, spans: &[SpanMapEntry]) -> Result<String, RestoreError> {
    let mut order: Vec<&SpanMapEntry> = spans.iter().collect();
    order.sort_by_key(|s| s.abs_start);
    let mut out = String::with_capacity(abstracted.len());
    let mut cursor = 0;
    for (index, s) in order.into_iter().enumerate() {
        let (start, end) = (s.abs_start, s.abs_end);
        if start < cursor {
            return Err(RestoreError::Overlap { index });
        }
        let found = abstracted.get(start..end).ok_or(RestoreError::OutOfRange { index, start, end })?;
        if found != s.placeholder {
            return Err(RestoreError::Mismatch { index, start, end, expected: s.placeholder.clone(), found: found.to_string() });
        }
        out.push_str(&abstracted[cursor..start]);
        out.push_str(&s.surface);
        cursor = end;
    }
    out.push_str(&abstracted[cursor..]);
    Ok(out)
}

/// The original texts (query, then candidates) of an abstracted group.
pub fn restore_group(abstracted: &AbstractedGroup) -> Result<Vec<String>, RestoreError> {
    let mut texts = vec![restore(&abstracted.group.query, &abstracted.maps.query)?];
    for (cand, map) in abstracted.group.candidates.iter().zip(&abstracted.maps.candidates) {
        texts.push(restore(&cand.text, &map.spans)?);
    }
    Ok(texts)
}

/// Abstracts every group of a dataset (the same options and seed for all).
pub fn abstract_dataset(dataset: &Dataset, abstractor: &Abstractor, opts: &AbstractionOptions, seed: u64) -> Vec<AbstractedGroup> {
    dataset.groups.iter().map(|g| abstract_group(g, abstractor, opts, seed)).collect()
}

/// [`abstract_dataset`], calling `check` before each group (a job's cancellation check: with learned
/// heads a group costs one batched forward pass of their backbone) and stopping at its first error.
pub fn abstract_dataset_checked(
    dataset: &Dataset,
    abstractor: &Abstractor,
    opts: &AbstractionOptions,
    seed: u64,
    check: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<AbstractedGroup>> {
    dataset
        .groups
        .iter()
        .map(|g| {
            check()?;
            Ok(abstract_group(g, abstractor, opts, seed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abstraction::recognizer::RecognizerBuilder;
    use crate::abstraction::schema::EntitySchema;
    use crate::data::{Candidate, Split};

    fn abstractor() -> Abstractor {
        let r = RecognizerBuilder::new(EntitySchema::bundled())
            .without_bundled_gazetteers()
            .gazetteer_json(r#"{"COMPANY": ["Zeekr", "Nio"], "PRODUCT": ["Model 001"]}"#, "t.json")
            .unwrap()
            .build()
            .unwrap();
        Abstractor::new(r)
    }

    fn group(query: &str, candidates: &[&str]) -> QueryGroup {
        QueryGroup {
            id: "g1".into(),
            domain: "financial".into(),
            split: Split::Train,
            query: query.into(),
            query_entities: vec![],
            candidates: candidates
                .iter()
                .enumerate()
                .map(|(i, t)| Candidate { id: format!("c{i}"), text: t.to_string(), relevance: u32::from(i == 0), entities: vec![] })
                .collect(),
            secondary_domain: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn the_checked_dataset_abstraction_checks_before_each_group_and_stops_at_an_error() {
        let a = abstractor();
        let opts = AbstractionOptions { types: None, intensity: 1.0, numbering: Numbering::Ordered };
        let groups: Vec<QueryGroup> = (0..3).map(|i| QueryGroup { id: format!("g{i}"), ..group("Who makes the Model 001?", &["Zeekr makes it.", "Nio does not."]) }).collect();
        let dataset = Dataset { source: None, groups };
        let mut calls = 0;
        let all = abstract_dataset_checked(&dataset, &a, &opts, 7, &mut || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 3);
        assert_eq!(all, abstract_dataset(&dataset, &a, &opts, 7), "the same groups as unchecked");
        let mut calls = 0;
        let err = abstract_dataset_checked(&dataset, &a, &opts, 7, &mut || {
            calls += 1;
            if calls == 2 {
                anyhow::bail!("cancelled")
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!((err.to_string(), calls), ("cancelled".to_string(), 2), "stops before the second group");
    }

    #[test]
    fn placeholders_are_consistent_across_the_group_and_restore_exactly() {
        let g = group("Who makes the Model 001?", &["Zeekr makes the Model 001, up 3%.", "Nio and Zeekr rose 3%."]);
        let out = abstract_group(&g, &abstractor(), &AbstractionOptions::default(), 1);
        assert_eq!(out.group.query, "Who makes the [PRODUCT_1]?");
        assert_eq!(out.group.candidates[0].text, "[COMPANY_1] makes the [PRODUCT_1], up [PERCENT_1].");
        assert_eq!(out.group.candidates[1].text, "[COMPANY_2] and [COMPANY_1] rose [PERCENT_1].");
        assert_eq!(restore_group(&out).unwrap(), group_texts(&g));
        assert_eq!(out.group.meta["abstracted"], "true");
        let again = abstract_group(&out.group, &abstractor(), &AbstractionOptions::default(), 1);
        assert_eq!(again.group.candidates[1].text, out.group.candidates[1].text);
        assert!(again.maps.candidates.iter().all(|c| c.spans.is_empty()));
    }

    #[test]
    fn a_surface_detected_in_one_text_is_masked_in_the_others() {
        let mut g = group("What is ICD-10 code I10?", &["I10 is essential hypertension.", "Not I100."]);
        g.domain = "medical".into();
        let out = abstract_group(&g, &abstractor(), &AbstractionOptions::default(), 1);
        assert_eq!(out.group.query, "What is ICD-10 code [ICD_CODE_1]?");
        assert_eq!(out.group.candidates[0].text, "[ICD_CODE_1] is essential hypertension.");
        assert_eq!(out.maps.candidates[0].spans[0].recogniser, "group");
        assert_eq!(out.group.candidates[1].text, "Not I100.");
    }

    #[test]
    fn types_intensity_and_numbering_options() {
        let g = group("Zeekr, Nio and the Model 001", &["Zeekr Nio 5%"]);
        let only = AbstractionOptions { types: Some(["COMPANY".to_string()].into()), ..Default::default() };
        assert_eq!(abstract_group(&g, &abstractor(), &only, 1).group.query, "[COMPANY_1], [COMPANY_2] and the Model 001");
        let none = AbstractionOptions { intensity: 0.0, ..Default::default() };
        assert_eq!(abstract_group(&g, &abstractor(), &none, 1).group.query, g.query);
        let half = AbstractionOptions { intensity: 0.5, ..Default::default() };
        let masked = abstract_group(&g, &abstractor(), &half, 1).maps;
        let distinct: BTreeSet<&str> = masked.query.iter().chain(&masked.candidates[0].spans).map(|s| s.placeholder.as_str()).collect();
        assert_eq!(distinct.len(), 2, "round(0.5 × 4 entities)");
        let shuffled: BTreeSet<String> = (0..20)
            .map(|seed| {
                let opts = AbstractionOptions { numbering: Numbering::Randomised, ..Default::default() };
                abstract_group(&g, &abstractor(), &opts, seed).group.query
            })
            .collect();
        assert!(shuffled.contains("[COMPANY_2], [COMPANY_1] and the [PRODUCT_1]"), "{shuffled:?}");
        assert!(shuffled.contains("[COMPANY_1], [COMPANY_2] and the [PRODUCT_1]"), "{shuffled:?}");
    }

    #[test]
    fn existing_placeholders_keep_their_numbers_and_gold_spans_move() {
        let mut g = group("[COMPANY_1] vs Nio", &["Nio, Model 001"]);
        let at = g.candidates[0].text.find("Model").unwrap();
        g.candidates[0].entities = vec![EntitySpan { start: at, end: at + 9, label: "PRODUCT".into() }];
        let only = AbstractionOptions { types: Some(["COMPANY".to_string()].into()), ..Default::default() };
        let out = abstract_group(&g, &abstractor(), &only, 3);
        assert_eq!(out.group.query, "[COMPANY_1] vs [COMPANY_2]");
        let cand = &out.group.candidates[0];
        assert_eq!(cand.text, "[COMPANY_2], Model 001");
        let moved = cand.entities.iter().find(|e| e.label == "PRODUCT").unwrap();
        assert_eq!(&cand.text[moved.start..moved.end], "Model 001");
    }

    #[test]
    fn restore_rejects_a_map_that_does_not_fit() {
        let entry = SpanMapEntry {
            orig_start: 0,
            orig_end: 5,
            abs_start: 0,
            abs_end: 11,
            label: "COMPANY".into(),
            placeholder: "[COMPANY_1]".into(),
            surface: "Zeekr".into(),
            recogniser: "gazetteer".into(),
        };
        assert_eq!(restore("[COMPANY_1] rose", std::slice::from_ref(&entry)).unwrap(), "Zeekr rose");
        assert!(matches!(restore("[COMPANY_2] rose", std::slice::from_ref(&entry)), Err(RestoreError::Mismatch { .. })));
        assert!(matches!(restore("short", std::slice::from_ref(&entry)), Err(RestoreError::OutOfRange { .. })));
    }
}
