//! Quality of the entity detection: precision, recall and F1 per type against
//! gold spans (exact match of start, end and type), and coverage statistics
//! (entities per 100 words, per type) for any dataset, annotated or not.
//! Both use [`detect_group`], i.e. exactly what abstraction masks.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::abstractor::{detect_group, group_texts};
use super::recognizer::Recognizer;
use crate::data::{Dataset, EntitySpan};

/// Counts and scores of one type (or of all types together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Scores {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Scores {
    /// Scores from true-positive, false-positive and false-negative counts.
    pub fn from_counts(tp: usize, fp: usize, fn_: usize) -> Self {
        let mut s = Scores::default();
        s.add(tp, fp, fn_);
        s.finish()
    }

    fn add(&mut self, tp: usize, fp: usize, fn_: usize) {
        self.true_positives += tp;
        self.false_positives += fp;
        self.false_negatives += fn_;
    }

    fn finish(mut self) -> Self {
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        self.precision = ratio(self.true_positives, self.true_positives + self.false_positives);
        self.recall = ratio(self.true_positives, self.true_positives + self.false_negatives);
        self.f1 = if self.precision + self.recall == 0.0 {
            0.0
        } else {
            2.0 * self.precision * self.recall / (self.precision + self.recall)
        };
        self
    }
}

/// A missed or spurious mention, for inspection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ErrorExample {
    pub label: String,
    /// `missed` (false negative) or `spurious` (false positive).
    pub kind: &'static str,
    pub surface: String,
}

/// P/R/F1 against gold spans.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityReport {
    pub texts: usize,
    pub gold_spans: usize,
    pub per_type: BTreeMap<String, Scores>,
    /// Micro-averaged over every type.
    pub overall: Scores,
    /// Span boundaries only, ignoring the type.
    pub untyped: Scores,
    /// Errors with how often each occurred.
    pub errors: BTreeMap<ErrorExample, usize>,
    /// Per recogniser (`gazetteer`, `learned:<head>`, `pattern:<name>`, …): precision of the spans it
    /// contributed, and their recall against every gold span.
    pub per_source: BTreeMap<String, Scores>,
    /// The types scored: a NER set's `meta.annotated_types`, or else the types that have at least one
    /// gold span in the dataset (a type the data never annotates cannot be judged). Other types'
    /// predictions are not scored; they are counted in `unscored_predictions`.
    pub scored_types: BTreeSet<String>,
    /// True when `scored_types` came from the dataset's `meta.annotated_types`.
    pub scored_types_declared: bool,
    /// Predictions of types that are not scored, per type.
    pub unscored_predictions: BTreeMap<String, usize>,
}

impl QualityReport {
    /// The most frequent errors first (ties by type and surface).
    pub fn top_errors(&self, n: usize) -> Vec<(&ErrorExample, usize)> {
        let mut errors: Vec<(&ErrorExample, usize)> = self.errors.iter().map(|(e, c)| (e, *c)).collect();
        errors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        errors.truncate(n);
        errors
    }
}

/// The entity types a dataset's gold spans can judge: its `meta.annotated_types` (a NER set; `true`),
/// or else the types with at least one gold span in it (`false`). Predictions of other types are
/// neither hits nor false alarms: the data does not annotate them.
pub fn scored_types(dataset: &Dataset) -> (BTreeSet<String>, bool) {
    match crate::ner::corpus::annotated_types(&dataset.groups) {
        Some(types) => (types, true),
        None => (
            dataset
                .groups
                .iter()
                .flat_map(|g| g.query_entities.iter().chain(g.candidates.iter().flat_map(|c| &c.entities)))
                .map(|s| s.label.clone())
                .collect(),
            false,
        ),
    }
}

/// Evaluates the recogniser on every text of an annotated dataset. Errors when
/// the dataset carries no gold spans at all.
pub fn evaluate(dataset: &Dataset, recognizer: &Recognizer) -> anyhow::Result<QualityReport> {
    evaluate_checked(dataset, recognizer, &mut || Ok(()))
}

/// [`evaluate`], calling `check` before each batched forward pass of learned heads and before each
/// group (a job's cancellation check), stopping at its first error.
pub fn evaluate_checked(dataset: &Dataset, recognizer: &Recognizer, check: &mut dyn FnMut() -> anyhow::Result<()>) -> anyhow::Result<QualityReport> {
    let annotated = dataset.groups.iter().any(|g| !g.query_entities.is_empty() || g.candidates.iter().any(|c| !c.entities.is_empty()));
    if !annotated {
        anyhow::bail!("the dataset has no gold entity spans (`query_entities` / `entities`); use `r2r abstract coverage` instead");
    }
    let (scored_types, scored_types_declared) = scored_types(dataset);
    let mut report = QualityReport { scored_types: scored_types.clone(), scored_types_declared, ..Default::default() };
    let scored = |label: &str| scored_types.contains(label);
    prefetch_all(dataset, recognizer, check)?;
    let mut per_source_counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut per_type: BTreeMap<String, Scores> = BTreeMap::new();
    let mut overall = Scores::default();
    let mut untyped = Scores::default();
    for group in &dataset.groups {
        check()?;
        let texts = group_texts(group);
        let gold_lists = std::iter::once(&group.query_entities).chain(group.candidates.iter().map(|c| &c.entities));
        for ((text, gold), found) in texts.iter().zip(gold_lists).zip(detect_group(group, recognizer)) {
            for d in found.iter().filter(|d| !scored(&d.label)) {
                *report.unscored_predictions.entry(d.label.clone()).or_default() += 1;
            }
            let found: Vec<&super::recognizer::Detection> = found.iter().filter(|d| scored(&d.label)).collect();
            let gold: BTreeSet<&EntitySpan> = gold.iter().filter(|g| scored(&g.label)).collect();
            report.texts += 1;
            report.gold_spans += gold.len();
            let predicted: Vec<EntitySpan> =
                found.iter().map(|d| EntitySpan { start: d.start, end: d.end, label: d.label.clone() }).collect();
            for (d, span) in found.iter().zip(&predicted) {
                let c = per_source_counts.entry(d.recogniser.clone()).or_default();
                if gold.contains(span) {
                    c.0 += 1;
                } else {
                    c.1 += 1;
                }
            }
            let predicted: BTreeSet<&EntitySpan> = predicted.iter().collect();
            for span in &predicted {
                let hit = gold.contains(span);
                per_type.entry(span.label.clone()).or_default().add(usize::from(hit), usize::from(!hit), 0);
                overall.add(usize::from(hit), usize::from(!hit), 0);
                if !hit {
                    let example = ErrorExample { label: span.label.clone(), kind: "spurious", surface: text[span.start..span.end].to_string() };
                    *report.errors.entry(example).or_default() += 1;
                }
            }
            for span in gold.difference(&predicted) {
                per_type.entry(span.label.clone()).or_default().add(0, 0, 1);
                overall.add(0, 0, 1);
                let surface = text.get(span.start..span.end).unwrap_or("<span outside text>").to_string();
                *report.errors.entry(ErrorExample { label: span.label.clone(), kind: "missed", surface }).or_default() += 1;
            }
            let gold_bounds: BTreeSet<(usize, usize)> = gold.iter().map(|s| (s.start, s.end)).collect();
            let found_bounds: BTreeSet<(usize, usize)> = predicted.iter().map(|s| (s.start, s.end)).collect();
            let hits = gold_bounds.intersection(&found_bounds).count();
            untyped.add(hits, found_bounds.len() - hits, gold_bounds.len() - hits);
        }
    }
    report.per_source = per_source_counts.into_iter().map(|(k, (tp, fp))| (k, Scores::from_counts(tp, fp, report.gold_spans - tp))).collect();
    report.per_type = per_type.into_iter().map(|(k, v)| (k, v.finish())).collect();
    report.overall = overall.finish();
    report.untyped = untyped.finish();
    Ok(report)
}

/// Runs the learned heads (if any) over every text of the dataset in large batches first.
fn prefetch_all(dataset: &Dataset, recognizer: &Recognizer, check: &mut dyn FnMut() -> anyhow::Result<()>) -> anyhow::Result<()> {
    if recognizer.learned().is_none() {
        return Ok(());
    }
    let texts: Vec<&str> = dataset.groups.iter().flat_map(group_texts).collect();
    for chunk in texts.chunks(256) {
        recognizer.prefetch_checked(chunk, check)?;
    }
    Ok(())
}

/// Mentions of one type in a coverage report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TypeCoverage {
    pub mentions: usize,
    pub distinct_surfaces: usize,
    pub per_100_words: f64,
}

/// Coverage of one domain (or `all`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    pub domain: String,
    pub texts: usize,
    pub words: usize,
    pub mentions: usize,
    pub per_100_words: f64,
    /// Fraction of texts with at least one mention.
    pub texts_with_entities: f64,
    /// Fraction of queries, and of passages, with at least one mention.
    pub queries_with_entities: f64,
    pub passages_with_entities: f64,
    pub queries: usize,
    pub per_type: BTreeMap<String, TypeCoverage>,
}

#[derive(Default)]
struct CoverageCounts {
    texts: usize,
    words: usize,
    texts_with: usize,
    queries: usize,
    queries_with: usize,
    passages_with: usize,
    mentions: BTreeMap<String, usize>,
    surfaces: BTreeMap<String, BTreeSet<String>>,
}

impl CoverageCounts {
    fn finish(self, domain: &str) -> Coverage {
        let per_100 = |n: usize| if self.words == 0 { 0.0 } else { 100.0 * n as f64 / self.words as f64 };
        let mentions: usize = self.mentions.values().sum();
        Coverage {
            domain: domain.to_string(),
            texts: self.texts,
            words: self.words,
            mentions,
            per_100_words: per_100(mentions),
            texts_with_entities: if self.texts == 0 { 0.0 } else { self.texts_with as f64 / self.texts as f64 },
            queries_with_entities: if self.queries == 0 { 0.0 } else { self.queries_with as f64 / self.queries as f64 },
            passages_with_entities: if self.texts == self.queries { 0.0 } else { self.passages_with as f64 / (self.texts - self.queries) as f64 },
            queries: self.queries,
            per_type: self
                .mentions
                .iter()
                .map(|(label, &n)| {
                    let distinct = self.surfaces.get(label).map_or(0, BTreeSet::len);
                    (label.clone(), TypeCoverage { mentions: n, distinct_surfaces: distinct, per_100_words: per_100(n) })
                })
                .collect(),
        }
    }
}

/// Coverage per domain (sorted) followed by `all`.
pub fn coverage(dataset: &Dataset, recognizer: &Recognizer) -> anyhow::Result<Vec<Coverage>> {
    prefetch_all(dataset, recognizer, &mut || Ok(()))?;
    let mut by_domain: BTreeMap<String, CoverageCounts> = BTreeMap::new();
    let mut all = CoverageCounts::default();
    for group in &dataset.groups {
        let counts = by_domain.entry(group.domain.clone()).or_default();
        for (i, (text, found)) in group_texts(group).into_iter().zip(detect_group(group, recognizer)).enumerate() {
            let words = text.split_whitespace().count();
            for c in [&mut *counts, &mut all] {
                c.texts += 1;
                if i == 0 {
                    c.queries += 1;
                    c.queries_with += usize::from(!found.is_empty());
                } else {
                    c.passages_with += usize::from(!found.is_empty());
                }
                c.words += words;
                c.texts_with += usize::from(!found.is_empty());
                for d in &found {
                    *c.mentions.entry(d.label.clone()).or_default() += 1;
                    c.surfaces.entry(d.label.clone()).or_default().insert(super::text::normalize_surface(&text[d.start..d.end]));
                }
            }
        }
    }
    let mut rows: Vec<Coverage> = by_domain.into_iter().map(|(domain, c)| c.finish(&domain)).collect();
    rows.push(all.finish("all"));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abstraction::recognizer::RecognizerBuilder;
    use crate::abstraction::schema::EntitySchema;
    use crate::data::{Candidate, QueryGroup, Split};

    #[test]
    fn scores_count_exact_matches_per_type() {
        let r = RecognizerBuilder::new(EntitySchema::bundled())
            .without_bundled_gazetteers()
            .gazetteer_json(r#"{"DRUG": ["aspirin"]}"#, "t.json")
            .unwrap()
            .build()
            .unwrap();
        let text = "aspirin 500 mg or ibuprofen 20 mg on March 3, 2021";
        let span = |s: &str, label: &str| {
            let start = text.find(s).unwrap();
            EntitySpan { start, end: start + s.len(), label: label.into() }
        };
        let group = QueryGroup {
            id: "q".into(),
            domain: "medical".into(),
            split: Split::Test,
            query: "dose?".into(),
            query_entities: vec![],
            candidates: vec![Candidate {
                id: "c".into(),
                text: text.into(),
                relevance: 1,
                // gold: aspirin (hit), 500 mg labelled wrongly in the gold (miss + spurious), ibuprofen (miss),
                // 20 mg (hit); the date is found but the data annotates no DATE: not scored
                entities: vec![span("aspirin", "DRUG"), span("500 mg", "DRUG"), span("ibuprofen", "DRUG"), span("20 mg", "DOSAGE")],
            }],
            secondary_domain: None,
            meta: Default::default(),
        };
        let report = evaluate(&Dataset { source: None, groups: vec![group.clone()] }, &r).unwrap();
        let drug = report.per_type["DRUG"];
        assert_eq!((drug.true_positives, drug.false_positives, drug.false_negatives), (1, 0, 2));
        assert_eq!((report.per_type["DOSAGE"].true_positives, report.per_type["DOSAGE"].false_positives), (1, 1));
        assert!(!report.per_type.contains_key("DATE"));
        assert_eq!(report.unscored_predictions, BTreeMap::from([("DATE".to_string(), 1)]));
        assert!(!report.scored_types_declared);
        assert!((report.overall.precision - 2.0 / 3.0).abs() < 1e-9 && (report.overall.recall - 2.0 / 4.0).abs() < 1e-9);
        assert_eq!(report.untyped.true_positives, 3);
        let rows = coverage(&Dataset { source: None, groups: vec![group] }, &r).unwrap();
        assert_eq!(rows.last().unwrap().mentions, 4);
        assert_eq!(rows.last().unwrap().words, 12);
        assert!(evaluate(&Dataset::default(), &r).is_err());
    }
}
