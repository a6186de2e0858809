//! Entity abstraction: property tests (UTF-8 safety, exact restore, idempotence,
//! group consistency), the F1 requirement on the sample data, export round trip,
//! and bad input.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use r2r::abstraction::export::{restore_export, write_export, ExportSummary};
use r2r::abstraction::text::{is_combining_mark, normalize_surface};
use r2r::abstraction::{
    abstract_dataset, abstract_group, evaluate, restore_group, AbstractionOptions, Abstractor, Corrections, EntitySchema, Numbering,
    RecognizerBuilder,
};
use r2r::data::{Candidate, Dataset, QueryGroup, Split};

const TEST_GAZETTEER: &str = r#"{
  "COMPANY": ["Zeekr", "Nio", "Harlow Logistics LLC"],
  "DRUG": ["ibuprofen", "metformin", "布洛芬"],
  "DISEASE": ["type 2 diabetes", "diabetes"],
  "PERSON": ["Marie Curie", "José Müller"],
  "LOCATION": ["Lisbon", "São Paulo"]
}"#;

fn build_abstractor(heuristic: bool) -> Abstractor {
    let recognizer = RecognizerBuilder::new(EntitySchema::bundled())
        .gazetteer_json(TEST_GAZETTEER, "test-gazetteer.json")
        .unwrap()
        .heuristic_names(heuristic)
        .build()
        .unwrap();
    Abstractor::new(recognizer)
}

/// Built once per process (compiling the patterns and gazetteers takes a while).
fn abstractor(heuristic: bool) -> &'static Abstractor {
    static BUILT: std::sync::OnceLock<[Abstractor; 2]> = std::sync::OnceLock::new();
    &BUILT.get_or_init(|| [build_abstractor(false), build_abstractor(true)])[usize::from(heuristic)]
}

fn group(domain: &str, query: &str, candidates: &[String]) -> QueryGroup {
    QueryGroup {
        id: format!("g-{}", query.len()),
        domain: domain.into(),
        split: Split::Train,
        query: query.into(),
        query_entities: vec![],
        candidates: candidates
            .iter()
            .enumerate()
            .map(|(i, t)| Candidate { id: format!("c{i}"), text: t.clone(), relevance: u32::from(i == 0), entities: vec![] })
            .collect(),
        secondary_domain: None,
        meta: BTreeMap::new(),
    }
}

fn texts(g: &QueryGroup) -> Vec<String> {
    std::iter::once(g.query.clone()).chain(g.candidates.iter().map(|c| c.text.clone())).collect()
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Zeekr", "zeekr", "NIO", "Nio", "Harlow Logistics LLC", "ibuprofen", "Ibuprofen", "metformin", "type 2 diabetes", "diabetes",
            "Marie Curie", "José Müller", "Lisbon", "São Paulo", "布洛芬", "$25,000", "$4.2 billion", "3.5%", "March 3, 2021", "Q3 2023",
            "1867", "500 mg", "10 mg/kg", "42 U.S.C. § 1983", "Art. 12", "No. 19-cv-04821", "NASDAQ: ZKR", "E11.9", "ICD-10 code I10",
            "[DRUG_1]", "[COMPANY_2]", "[PERSON_1]", "The", "court", "Royal Society",
        ])
        .prop_map(str::to_string),
        prop::sample::select(vec![
            " ", " ", " ", ", ", ". ", "\n", "[", "]", "_", "-", "$", "§", "😀", "👩‍👩‍👧", "e\u{301}", "\u{301}", "\u{200d}", "ß", "İ", "Ω", "中文",
            "ﬁ", "\u{fe0f}",
        ])
        .prop_map(str::to_string),
        "\\PC{0,6}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..12).prop_map(|parts| parts.concat())
}

fn domain() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["legal", "medical", "financial", "general", "unknown"]).prop_map(str::to_string)
}

fn options() -> impl Strategy<Value = AbstractionOptions> {
    (prop::bool::ANY, prop::bool::ANY).prop_map(|(random, only_some)| AbstractionOptions {
        types: only_some.then(|| ["DRUG", "COMPANY", "DATE", "NAME"].iter().map(|s| s.to_string()).collect()),
        intensity: 1.0,
        numbering: if random { Numbering::Randomised } else { Numbering::Ordered },
    })
}

proptest! {
    // 256 cases unless PROPTEST_CASES says otherwise (for longer local runs).
    #![proptest_config(ProptestConfig::with_cases(std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)))]

    #[test]
    fn detections_never_split_characters(t in text(), d in domain(), heuristic in prop::bool::ANY) {
        let abstractor = abstractor(heuristic);
        for det in abstractor.recognize(&t, &[d.as_str()]) {
            prop_assert!(det.start < det.end && t.is_char_boundary(det.start) && t.is_char_boundary(det.end));
            prop_assert!(!t[det.start..].starts_with(is_combining_mark));
            prop_assert!(!t[det.end..].starts_with(is_combining_mark), "ends before a combining mark: {:?}", &t[det.start..det.end]);
        }
    }

    #[test]
    fn restore_inverts_abstraction(q in text(), cands in prop::collection::vec(text(), 1..4), d in domain(),
                                   opts in options(), seed in 0u64..1000, heuristic in prop::bool::ANY) {
        let g = group(&d, &q, &cands);
        let out = abstract_group(&g, abstractor(heuristic), &opts, seed);
        for (text, spans) in texts(&out.group).iter().zip(std::iter::once(&out.maps.query).chain(out.maps.candidates.iter().map(|c| &c.spans))) {
            for s in spans {
                prop_assert!(text.is_char_boundary(s.abs_start) && text.is_char_boundary(s.abs_end));
            }
        }
        prop_assert_eq!(restore_group(&out).unwrap(), texts(&g));
    }

    #[test]
    fn abstraction_is_idempotent(q in text(), cands in prop::collection::vec(text(), 1..4), d in domain(),
                                 opts in options(), seed in 0u64..1000, heuristic in prop::bool::ANY) {
        let abstractor = abstractor(heuristic);
        let once = abstract_group(&group(&d, &q, &cands), abstractor, &opts, seed);
        let twice = abstract_group(&once.group, abstractor, &opts, seed);
        prop_assert_eq!(texts(&twice.group), texts(&once.group));
    }

    #[test]
    fn placeholders_are_consistent_within_a_group(q in text(), cands in prop::collection::vec(text(), 1..5), d in domain(),
                                                  opts in options(), seed in 0u64..1000) {
        let out = abstract_group(&group(&d, &q, &cands), abstractor(true), &opts, seed);
        let mut by_surface: BTreeMap<String, String> = BTreeMap::new();
        let mut by_placeholder: BTreeMap<String, String> = BTreeMap::new();
        for s in out.maps.query.iter().chain(out.maps.candidates.iter().flat_map(|c| &c.spans)) {
            let key = normalize_surface(&s.surface);
            prop_assert_eq!(by_surface.entry(key.clone()).or_insert_with(|| s.placeholder.clone()), &s.placeholder);
            prop_assert_eq!(by_placeholder.entry(s.placeholder.clone()).or_insert_with(|| key.clone()), &key);
            let prefix = format!("[{}_", s.label);
            prop_assert!(s.placeholder.starts_with(&prefix));
        }
    }
}

#[test]
fn same_seed_same_output_and_intensity_masks_a_fraction() {
    let cands: Vec<String> = vec!["Zeekr and Nio rose 3.5% in Q3 2023 on $4.2 billion.".into(), "Harlow Logistics LLC fell.".into()];
    let g = group("financial", "Why did Zeekr rise?", &cands);
    let a = abstractor(false);
    let opts = AbstractionOptions { intensity: 0.5, numbering: Numbering::Randomised, ..Default::default() };
    assert_eq!(abstract_group(&g, a, &opts, 7), abstract_group(&g, a, &opts, 7));
    let full = abstract_group(&g, a, &AbstractionOptions::default(), 7).maps;
    let half = abstract_group(&g, a, &opts, 7).maps;
    let distinct = |m: &r2r::abstraction::GroupMaps| {
        m.query.iter().chain(m.candidates.iter().flat_map(|c| &c.spans)).map(|s| s.placeholder.clone()).collect::<std::collections::BTreeSet<_>>().len()
    };
    assert_eq!(distinct(&full), 6, "{full:?}");
    assert_eq!(distinct(&half), 3);
}

#[test]
fn sample_data_meets_the_f1_requirement() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
    if !dir.is_dir() {
        common::missing(&dir.display().to_string());
        return;
    }
    let dataset = r2r::data::load(&dir, &Default::default()).unwrap();
    let report = evaluate(&dataset, Abstractor::bundled().unwrap().recognizer()).unwrap();
    for (label, s) in &report.per_type {
        eprintln!("{label:<14} P {:.4} R {:.4} F1 {:.4}", s.precision, s.recall, s.f1);
    }
    eprintln!("overall F1 {:.4} over {} gold spans", report.overall.f1, report.gold_spans);
    assert!(report.gold_spans > 100, "the sample data should carry gold spans");
    let failures = r2r::cli::abstract_::requirement_failures(&report);
    assert!(failures.is_empty(), "{failures:?}; top errors: {:?}", report.top_errors(15));
}

#[test]
fn export_writes_maps_that_restore_the_dataset() {
    let cands: Vec<String> = vec!["Take 500 mg ibuprofen — 布洛芬 — for type 2 diabetes.".into(), "Ibuprofen café e\u{301}.".into()];
    let mut g1 = group("medical", "ibuprofen dose for diabetes?", &cands);
    g1.id = "m1".into();
    let mut g2 = group("financial", "Zeekr 3.5%", &["Zeekr (NASDAQ: ZKR) rose 3.5%.".to_string()]);
    g2.id = "f1".into();
    let dataset = Dataset { source: None, groups: vec![g1, g2] };
    let a = abstractor(false);
    let abstracted = abstract_dataset(&dataset, a, &AbstractionOptions::default(), 13);
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &dataset, &abstracted, blank_summary()).unwrap();
    let reloaded = r2r::data::load(dir.path(), &Default::default()).unwrap();
    assert!(reloaded.groups.iter().all(|g| g.meta.get("abstracted").map(String::as_str) == Some("true")));
    assert!(reloaded.groups.iter().any(|g| g.query.contains("[DRUG_1]")));
    let restored = restore_export(dir.path()).unwrap();
    let mut originals: Vec<Vec<String>> = dataset.groups.iter().map(texts).collect();
    let mut back: Vec<Vec<String>> = restored.iter().map(texts).collect();
    originals.sort();
    back.sort();
    assert_eq!(back, originals);
    assert!(write_export(&dir.path().join("x.jsonl"), &dataset, &abstracted, blank_summary()).is_err());
}

fn blank_summary() -> ExportSummary {
    ExportSummary {
        source: String::new(),
        options: AbstractionOptions::default(),
        seed: 0,
        heuristic_names: false,
        corrections: 0,
        groups: 0,
        texts: 0,
        replaced_mentions: 0,
        per_type: Default::default(),
        files: vec![],
    }
}

#[test]
fn empty_texts_and_megabyte_passages_are_handled() {
    let a = abstractor(true);
    assert!(a.recognize("", &["medical"]).is_empty());
    let empty = abstract_group(&group("medical", "", &[String::new()]), a, &AbstractionOptions::default(), 1);
    assert_eq!(texts(&empty.group), vec![String::new(), String::new()]);

    let unit = "Patients on ibuprofen 400 mg (E11.9) paid $1,200 on March 3, 2021 — 布洛芬 😀 e\u{301}. ";
    let big: String = unit.repeat(1_000_000 / unit.len() + 1);
    assert!(big.len() >= 1_000_000);
    let g = group("medical", "ibuprofen?", std::slice::from_ref(&big));
    let out = abstract_group(&g, a, &AbstractionOptions::default(), 1);
    assert!(out.group.candidates[0].text.contains("[DRUG_1] [DOSAGE_1]"));
    assert_eq!(restore_group(&out).unwrap()[1], big);
}

#[test]
fn malformed_corrections_and_gazetteers_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("corrections.json");
    std::fs::write(&bad, "{\"add_to_gazetteer\": [{\"type\": \"DRUG\"").unwrap();
    let err = format!("{:#}", RecognizerBuilder::new(EntitySchema::bundled()).corrections_file(&bad).unwrap_err());
    assert!(err.contains("corrections.json") && err.contains("malformed"), "{err}");
    std::fs::write(&bad, r#"{"add_to_gazetteer": [{"type": "DRUG", "surface": "  "}]}"#).unwrap();
    let err = format!("{:#}", Corrections::load(&bad, &EntitySchema::bundled()).unwrap_err());
    assert!(err.contains("add_to_gazetteer[0].surface") && err.contains("empty"), "{err}");

    let gaz = dir.path().join("gaz.json");
    for (content, needle) in [
        (r#"{"DRUG": ["aspirin", ""]}"#, "DRUG[1]"),
        (r#"{"DRUG": ["—!?"]}"#, "punctuation"),
        (r#"{"WIDGET": ["x"]}"#, "not in the entity schema"),
    ] {
        std::fs::write(&gaz, content).unwrap();
        let err = format!("{:#}", RecognizerBuilder::new(EntitySchema::bundled()).gazetteer_file(&gaz).unwrap_err());
        assert!(err.contains("gaz.json") && err.contains(needle), "{content}: {err}");
    }
    let missing = dir.path().join("missing.json");
    assert!(RecognizerBuilder::new(EntitySchema::bundled()).gazetteer_file(&missing).is_err());
}

#[test]
fn corrections_change_what_is_masked() {
    let mut a = abstractor(false).clone();
    let g = group("medical", "Is semaglutide like metformin?", &["metformin lowers glucose".to_string()]);
    let before = abstract_group(&g, &a, &AbstractionOptions::default(), 1).group.query;
    assert_eq!(before, "Is semaglutide like [DRUG_1]?");
    a.recognizer_mut().add_to_gazetteer("DRUG", "semaglutide").unwrap();
    a.recognizer_mut().mark_not_entity("metformin", Some("DRUG")).unwrap();
    let after = abstract_group(&g, &a, &AbstractionOptions::default(), 1).group.query;
    assert_eq!(after, "Is [DRUG_1] like metformin?");
}
