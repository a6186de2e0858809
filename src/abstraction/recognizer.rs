//! Combines the recognisers (gazetteers, patterns, the optional name heuristic,
//! expert corrections) into one detector with a documented overlap policy.
//!
//! For a text and a scope (from the group's domains: every type is allowed and
//! the domains' own types are *preferred*; with `strict_domain_types` only the
//! domains' types are allowed):
//! 1. every recogniser proposes candidates of allowed types (a learned head's
//!    spans only when their confidence reaches the head's threshold for the type,
//!    and only on texts of the head's domain unless it is a `general` head);
//! 2. candidates overlapping a `[TYPE_n]` placeholder already in the text are
//!    dropped (so abstraction is idempotent);
//! 3. candidates whose surface an expert marked "not an entity" are dropped;
//! 4. overlaps are resolved greedily: **longest match first**, then a type of
//!    the text's own domains over another domain's type, then higher
//!    priority (correction 100 > user gazetteer 80 > bundled gazetteer 60 >
//!    learned head 50 > pattern 40 > weak pattern 20), then higher score
//!    (a learned span's score is its confidence),
//!    then leftmost, then type name — a candidate is kept when it overlaps no
//!    kept one. The result is sorted by position;
//! 5. the optional name heuristic then fills the gaps between the kept entities.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::corrections::Corrections;
use super::gazetteer::{drop_entries, parse_gazetteer_json, Gazetteer, GazetteerEntry};
use super::patterns::{bundled_patterns, PatternSet};
use super::schema::{EntitySchema, NAME_TYPE};
use super::text::{placeholders, DisjointSpans};

pub const PRIORITY_CORRECTION: u8 = 100;
pub const PRIORITY_USER_GAZETTEER: u8 = 80;
pub const PRIORITY_GAZETTEER: u8 = 60;
pub const PRIORITY_LEARNED: u8 = 50;
pub const PRIORITY_PATTERN: u8 = 40;
pub const PRIORITY_WEAK_PATTERN: u8 = 20;
pub const PRIORITY_HEURISTIC: u8 = 10;

/// The bundled gazetteers (`{"TYPE": [surfaces]}`), by file name under `assets/gazetteers/`: one file per
/// domain with the sample generator's names (which the generator draws from), and `*-terms.json` files of
/// real-world terms the generator never uses.
pub const BUNDLED_GAZETTEERS: &[(&str, &str)] = &[
    ("financial.json", include_str!("../../assets/gazetteers/financial.json")),
    ("financial-terms.json", include_str!("../../assets/gazetteers/financial-terms.json")),
    ("general.json", include_str!("../../assets/gazetteers/general.json")),
    ("general-terms.json", include_str!("../../assets/gazetteers/general-terms.json")),
    ("legal.json", include_str!("../../assets/gazetteers/legal.json")),
    ("medical.json", include_str!("../../assets/gazetteers/medical.json")),
];

/// One entity mention found in a text: `text[start..end]` (byte offsets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub start: usize,
    pub end: usize,
    pub label: String,
    /// Which recogniser found it: `gazetteer`, `user-gazetteer`, `correction`,
    /// `learned:<head>`, `pattern:<name>`, `heuristic:capitalised`, `group` (another text of the group).
    pub recogniser: String,
    pub score: f32,
    pub priority: u8,
}

/// The entity types a text may contain, and those its domains prefer when two
/// candidates of the same length compete (e.g. `PARTY` over `COMPANY` in law).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub allowed: BTreeSet<String>,
    pub preferred: BTreeSet<String>,
    /// The text's domains (empty: unknown). A learned head trained on one domain's corpus runs only on
    /// texts of that domain (or of unknown domain); heads of the `general` domain run everywhere.
    pub domains: BTreeSet<String>,
}

impl Scope {
    /// Whether a learned head of `domain` runs on a text of this scope.
    pub fn runs_head_of(&self, domain: &str) -> bool {
        domain == "general" || self.domains.is_empty() || self.domains.contains(domain)
    }
}

/// Builds a [`Recognizer`]: schema first, then gazetteers, corrections, options.
#[derive(Debug, Clone)]
pub struct RecognizerBuilder {
    schema: EntitySchema,
    bundled_gazetteers: bool,
    user_entries: Vec<GazetteerEntry>,
    corrections: Corrections,
    heuristic_names: bool,
    strict_domain_types: bool,
    /// Fraction of the bundled gazetteer entries dropped (seeded), and the seed.
    bundled_drop: (f64, u64),
    learned: Option<Arc<crate::ner::learned::LearnedRecognizer>>,
}

impl RecognizerBuilder {
    pub fn new(schema: EntitySchema) -> Self {
        RecognizerBuilder {
            schema,
            bundled_gazetteers: true,
            user_entries: Vec::new(),
            corrections: Corrections::default(),
            heuristic_names: false,
            strict_domain_types: false,
            bundled_drop: (0.0, 0),
            learned: None,
        }
    }

    /// Adds learned NER heads (one forward pass of their backbone per text).
    pub fn learned(mut self, learned: Option<Arc<crate::ner::learned::LearnedRecognizer>>) -> Self {
        self.learned = learned;
        self
    }

    /// Drops this fraction of the bundled gazetteer entries, a seeded choice
    /// ([`super::gazetteer::drop_entries`]): degrades recall on purpose.
    pub fn drop_bundled_entries(mut self, fraction: f64, seed: u64) -> Self {
        self.bundled_drop = (fraction, seed);
        self
    }

    /// Only the types of a text's own domains are detected (default: every
    /// type, the domains' own types preferred on ties).
    pub fn strict_domain_types(mut self, on: bool) -> Self {
        self.strict_domain_types = on;
        self
    }

    /// Leaves out the bundled gazetteers (tests, or a fully user-defined setup).
    pub fn without_bundled_gazetteers(mut self) -> Self {
        self.bundled_gazetteers = false;
        self
    }

    /// Adds a user gazetteer given as JSON; `source` names it in errors.
    pub fn gazetteer_json(mut self, text: &str, source: &str) -> anyhow::Result<Self> {
        let entries = parse_gazetteer_json(text, source)?;
        check_labels(&self.schema, &entries, source)?;
        self.user_entries.extend(entries);
        Ok(self)
    }

    /// Adds a user gazetteer file.
    pub fn gazetteer_file(self, path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading gazetteer {}", path.display()))?;
        self.gazetteer_json(&text, &path.display().to_string())
    }

    pub fn corrections(mut self, corrections: Corrections) -> Self {
        self.corrections = corrections;
        self
    }

    /// Reads a corrections file (validated against the schema).
    pub fn corrections_file(self, path: &Path) -> anyhow::Result<Self> {
        let corrections = Corrections::load(path, &self.schema)?;
        Ok(self.corrections(corrections))
    }

    /// Turns the capitalised-name heuristic on or off (off by default).
    pub fn heuristic_names(mut self, on: bool) -> Self {
        self.heuristic_names = on;
        self
    }

    pub fn build(self) -> anyhow::Result<Recognizer> {
        let mut bundled = Vec::new();
        if self.bundled_gazetteers {
            for (file, json) in BUNDLED_GAZETTEERS {
                let source = format!("assets/gazetteers/{file}");
                let entries = parse_gazetteer_json(json, &source)?;
                check_labels(&self.schema, &entries, &source)?;
                bundled.extend(entries);
            }
        }
        if self.bundled_drop.0 > 0.0 {
            bundled = drop_entries(bundled, self.bundled_drop.0, self.bundled_drop.1);
        }
        let mut corrections = self.corrections;
        corrections.validate(&self.schema).context("invalid corrections")?;
        Ok(Recognizer {
            gazetteers: vec![
                Gazetteer::new("gazetteer", PRIORITY_GAZETTEER, bundled)?,
                Gazetteer::new("user-gazetteer", PRIORITY_USER_GAZETTEER, self.user_entries)?,
            ],
            correction_gazetteer: Gazetteer::new("correction", PRIORITY_CORRECTION, corrections.gazetteer_entries())?,
            corrections,
            patterns: bundled_patterns(),
            heuristic_names: self.heuristic_names,
            strict_domain_types: self.strict_domain_types,
            schema: self.schema,
            learned: self.learned,
        })
    }
}

fn check_labels(schema: &EntitySchema, entries: &[GazetteerEntry], source: &str) -> anyhow::Result<()> {
    let unknown: BTreeSet<&str> = entries.iter().map(|e| e.label.as_str()).filter(|l| !schema.has_type(l)).collect();
    if let Some(label) = unknown.first() {
        bail!("{source}: field `{label}`: type not in the entity schema (add it to the schema first)");
    }
    Ok(())
}

/// The combined entity detector.
#[derive(Debug, Clone)]
pub struct Recognizer {
    schema: EntitySchema,
    gazetteers: Vec<Gazetteer>,
    correction_gazetteer: Gazetteer,
    corrections: Corrections,
    patterns: PatternSet,
    heuristic_names: bool,
    strict_domain_types: bool,
    learned: Option<Arc<crate::ner::learned::LearnedRecognizer>>,
}

impl Recognizer {
    /// The bundled schema, gazetteers and patterns; no corrections; heuristic off.
    pub fn bundled() -> anyhow::Result<Recognizer> {
        RecognizerBuilder::new(EntitySchema::bundled()).build()
    }

    pub fn schema(&self) -> &EntitySchema {
        &self.schema
    }

    pub fn corrections(&self) -> &Corrections {
        &self.corrections
    }

    pub fn heuristic_names(&self) -> bool {
        self.heuristic_names
    }

    /// The learned heads, when on.
    pub fn learned(&self) -> Option<&Arc<crate::ner::learned::LearnedRecognizer>> {
        self.learned.as_ref()
    }

    /// Turns learned heads on (Some) or off (None).
    pub fn set_learned(&mut self, learned: Option<Arc<crate::ner::learned::LearnedRecognizer>>) {
        self.learned = learned;
    }

    /// Runs the learned heads over many texts at once (batched forward passes; results cached), so the
    /// per-text calls that follow cost no forward pass. A no-op without learned heads.
    pub fn prefetch(&self, texts: &[&str]) -> anyhow::Result<()> {
        self.prefetch_checked(texts, &mut || Ok(()))
    }

    /// [`Self::prefetch`], calling `check` before each batched forward pass (a job's cancellation check).
    pub fn prefetch_checked(&self, texts: &[&str], check: &mut dyn FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
        if let Some(learned) = &self.learned {
            learned.propose_all_checked(texts, check)?;
        }
        Ok(())
    }

    /// Entries of the bundled and user gazetteers (for display).
    pub fn gazetteer_entries(&self) -> impl Iterator<Item = &GazetteerEntry> {
        self.gazetteers.iter().flat_map(|g| g.entries().iter())
    }

    /// Replaces the corrections (validated) and recompiles their gazetteer.
    pub fn set_corrections(&mut self, mut corrections: Corrections) -> anyhow::Result<()> {
        corrections.validate(&self.schema)?;
        self.correction_gazetteer = Gazetteer::new("correction", PRIORITY_CORRECTION, corrections.gazetteer_entries())?;
        self.corrections = corrections;
        Ok(())
    }

    /// Expert correction: `surface` is an entity of type `label`. Returns false
    /// when it was already recorded.
    pub fn add_to_gazetteer(&mut self, label: &str, surface: &str) -> anyhow::Result<bool> {
        let mut corrections = self.corrections.clone();
        let is_new = corrections.add_to_gazetteer(&self.schema, label, surface)?;
        self.set_corrections(corrections)?;
        Ok(is_new)
    }

    /// Expert correction: `surface` is not an entity (of `label`, or of any type).
    pub fn mark_not_entity(&mut self, surface: &str, label: Option<&str>) -> anyhow::Result<bool> {
        let mut corrections = self.corrections.clone();
        let is_new = corrections.mark_not_entity(&self.schema, surface, label)?;
        self.set_corrections(corrections)?;
        Ok(is_new)
    }

    /// The scope of a text of these domains: preferred are the domains' types
    /// (none for unknown domains); allowed are all types (or, when strict, the
    /// domains' types; all types for unknown domains), plus `NAME` when the
    /// heuristic is on.
    pub fn scope(&self, domains: &[&str]) -> Scope {
        let preferred: BTreeSet<String> = domains.iter().filter_map(|d| self.schema.types_of(d)).flatten().collect();
        let mut allowed = if self.strict_domain_types { self.schema.scope(domains) } else { self.schema.all_types() };
        if self.heuristic_names {
            allowed.insert(NAME_TYPE.to_string());
        }
        Scope { allowed, preferred, domains: domains.iter().map(|d| d.to_string()).collect() }
    }

    /// The entities of a text of these domains, after the overlap policy.
    pub fn recognize(&self, text: &str, domains: &[&str]) -> Vec<Detection> {
        self.recognize_scoped(text, &self.scope(domains))
    }

    /// The entities of a text for a precomputed scope: the resolved candidates,
    /// then (when on) the name heuristic filling the gaps between them.
    pub fn recognize_scoped(&self, text: &str, scope: &Scope) -> Vec<Detection> {
        let mut found = resolve_overlaps(self.candidates(text, scope), &scope.preferred);
        if self.heuristic_names && scope.allowed.contains(NAME_TYPE) {
            let mut names = Vec::new();
            super::heuristic::find_names(text, &found, &mut names);
            self.drop_protected_and_marked(text, &mut names);
            found.extend(names);
            found.sort_by_key(|d| d.start);
        }
        found
    }

    /// Every candidate of the gazetteers, corrections and patterns before
    /// overlap resolution (placeholders and marks applied; no heuristic).
    pub fn candidates(&self, text: &str, scope: &Scope) -> Vec<Detection> {
        let mut out = Vec::new();
        if text.is_empty() {
            return out;
        }
        for gazetteer in self.gazetteers.iter().chain([&self.correction_gazetteer]) {
            gazetteer.find(text, &scope.allowed, &mut out);
        }
        self.patterns.find_all(text, &scope.allowed, &mut out);
        if let Some(learned) = &self.learned {
            match learned.propose(text) {
                Ok(proposals) => {
                    let heads = learned.heads();
                    for p in proposals.iter().filter(|p| scope.allowed.contains(&p.label) && scope.runs_head_of(&heads[p.head].meta.domain) && p.confidence >= learned.threshold(p)) {
                        out.push(Detection {
                            start: p.start,
                            end: p.end,
                            label: p.label.clone(),
                            recogniser: crate::ner::learned::source_name(&learned.heads()[p.head].meta.name),
                            score: p.confidence,
                            priority: PRIORITY_LEARNED,
                        });
                    }
                }
                Err(e) => tracing::error!("learned entity recognition failed on a text of {} bytes: {e:#}", text.len()),
            }
        }
        self.drop_protected_and_marked(text, &mut out);
        out
    }

    /// Drops candidates that overlap a placeholder or that an expert marked.
    fn drop_protected_and_marked(&self, text: &str, out: &mut Vec<Detection>) {
        let protected = DisjointSpans::new(placeholders(text).into_iter().map(|p| (p.start, p.end)));
        if !protected.is_empty() {
            out.retain(|d| !protected.overlaps(d.start, d.end));
        }
        if !self.corrections.not_entity.is_empty() {
            out.retain(|d| !self.corrections.rejects(&text[d.start..d.end], &d.label));
        }
    }
}

/// The overlap policy (module docs): longest first, then a preferred type,
/// priority, score, position, type; keeps candidates that overlap no kept one;
/// sorted by start.
pub fn resolve_overlaps(mut candidates: Vec<Detection>, preferred: &BTreeSet<String>) -> Vec<Detection> {
    candidates.sort_by(|a, b| {
        (b.end - b.start)
            .cmp(&(a.end - a.start))
            .then(preferred.contains(&b.label).cmp(&preferred.contains(&a.label)))
            .then(b.priority.cmp(&a.priority))
            .then(b.score.total_cmp(&a.score))
            .then(a.start.cmp(&b.start))
            .then(a.label.cmp(&b.label))
            .then(a.recogniser.cmp(&b.recogniser))
    });
    // Kept spans are disjoint, so only the kept span starting last before a
    // candidate's end can overlap it.
    let mut kept = DisjointSpans::default();
    let mut out = Vec::new();
    for cand in candidates {
        if !kept.overlaps(cand.start, cand.end) && cand.start < cand.end {
            kept.insert(cand.start, cand.end);
            out.push(cand);
        }
    }
    out.sort_by_key(|d| d.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recognizer(gazetteer: &str) -> Recognizer {
        RecognizerBuilder::new(EntitySchema::bundled())
            .without_bundled_gazetteers()
            .gazetteer_json(gazetteer, "test.json")
            .unwrap()
            .build()
            .unwrap()
    }

    fn found(r: &Recognizer, text: &str, domains: &[&str]) -> Vec<(String, String)> {
        r.recognize(text, domains).iter().map(|d| (text[d.start..d.end].to_string(), d.label.clone())).collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn longest_match_wins_then_priority() {
        let r = recognizer(r#"{"DISEASE": ["diabetes", "type 2 diabetes"], "DRUG": ["metformin"]}"#);
        let text = "Metformin 500 mg for type 2 diabetes.";
        assert_eq!(
            found(&r, text, &["medical"]),
            pairs(&[("Metformin", "DRUG"), ("500 mg", "DOSAGE"), ("type 2 diabetes", "DISEASE")])
        );
    }

    #[test]
    fn scope_limits_types_and_placeholders_are_left_alone() {
        let r = recognizer(r#"{"COMPANY": ["Zeekr", "COMPANY_1"], "PARTY": ["Zeekr"]}"#);
        assert_eq!(found(&r, "Zeekr sued.", &["legal"]), pairs(&[("Zeekr", "PARTY")]));
        assert_eq!(found(&r, "Zeekr rose 3%.", &["financial"]), pairs(&[("Zeekr", "COMPANY"), ("3%", "PERCENT")]));
        assert!(found(&r, "[COMPANY_1] rose [PERCENT_1].", &["financial"]).is_empty());
    }

    #[test]
    fn corrections_add_and_remove_entities() {
        let mut r = recognizer(r#"{"DRUG": ["aspirin"]}"#);
        let text = "aspirin or semaglutide";
        r.add_to_gazetteer("DRUG", "semaglutide").unwrap();
        assert_eq!(found(&r, text, &["medical"]), pairs(&[("aspirin", "DRUG"), ("semaglutide", "DRUG")]));
        r.mark_not_entity("Aspirin", None).unwrap();
        assert_eq!(found(&r, text, &["medical"]), pairs(&[("semaglutide", "DRUG")]));
        assert!(r.add_to_gazetteer("DRUG", "").is_err());
    }

    #[test]
    fn resolution_keeps_disjoint_spans() {
        let d = |start, end, priority| Detection {
            start,
            end,
            label: "X".into(),
            recogniser: "t".into(),
            score: 1.0,
            priority,
        };
        let kept = resolve_overlaps(vec![d(0, 5, 10), d(4, 7, 90), d(6, 8, 10), d(8, 9, 10), d(2, 3, 99)], &BTreeSet::new());
        let spans: Vec<(usize, usize)> = kept.iter().map(|k| (k.start, k.end)).collect();
        assert_eq!(spans, [(0, 5), (6, 8), (8, 9)]);
    }
}
