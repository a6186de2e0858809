//! Tests of the sample-data generator: determinism, sizes, gold spans (exact,
//! typed, complete), the unseen-entity property, cross-domain queries, honest
//! relevance labels, and that the committed `sample_data/` is what seed 7 gives.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use r2r::data::{self, EntitySpan, LoadOptions, QueryGroup, Split};
use r2r::sample::{self, groups, names};
use regex::Regex;

fn seed7() -> &'static [QueryGroup] {
    static GROUPS: OnceLock<Vec<QueryGroup>> = OnceLock::new();
    GROUPS.get_or_init(|| sample::generate(sample::DEFAULT_SEED))
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Entity types per domain, from assets/entity_schema.json.
fn schema() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(manifest_dir().join("assets/entity_schema.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value["domains"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(domain, types)| (domain.clone(), types.as_object().unwrap().keys().cloned().collect()))
        .collect()
}

/// Lower-cased gazetteer surfaces per label, over all domains.
fn gazetteer_surfaces() -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, gazetteer) in names::all_gazetteers().unwrap() {
        for (label, surfaces) in gazetteer {
            out.entry(label).or_default().extend(surfaces.iter().map(|s| s.to_lowercase()));
        }
    }
    out
}

/// Every (text, spans) of a group: the query, then the candidates.
fn texts(group: &QueryGroup) -> Vec<(&str, &[EntitySpan])> {
    let mut out = vec![(group.query.as_str(), group.query_entities.as_slice())];
    out.extend(group.candidates.iter().map(|c| (c.text.as_str(), c.entities.as_slice())));
    out
}

fn surfaces(group: &QueryGroup) -> BTreeSet<String> {
    texts(group).into_iter().flat_map(|(text, spans)| spans.iter().map(move |s| text[s.start..s.end].to_lowercase())).collect()
}

fn write_dir(seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    sample::write_sample_data(seed, dir.path()).unwrap();
    dir
}

/// File name → bytes of every file in a directory.
fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn the_same_seed_writes_identical_bytes_and_another_seed_differs() {
    let first = read_dir(write_dir(11).path());
    let second = read_dir(write_dir(11).path());
    let names: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(names, ["README.md", "financial.jsonl", "general.jsonl", "legal.jsonl", "medical.jsonl"]);
    assert!(first == second, "two runs with seed 11 wrote different bytes");
    let other = sample::generate(12);
    let again = sample::generate(11);
    assert_eq!(data::native::to_string(&again).as_bytes(), [&first["legal.jsonl"][..], &first["medical.jsonl"][..], &first["financial.jsonl"][..], &first["general.jsonl"][..]].concat());
    assert_ne!(data::native::to_string(&other), data::native::to_string(&again), "seeds 11 and 12 gave the same data");
}

#[test]
fn the_committed_sample_data_is_what_the_command_generates_by_default() {
    let committed_dir = manifest_dir().join("sample_data");
    let committed = read_dir(&committed_dir);
    // Run the command itself, without --seed: its default must be the committed seed 7.
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_r2r"))
        .args(["sample-data", "generate", "--out"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "r2r sample-data generate failed: {status}");
    let fresh = read_dir(out.path());
    assert_eq!(committed.keys().collect::<Vec<_>>(), fresh.keys().collect::<Vec<_>>(), "file sets differ");
    for (name, bytes) in &fresh {
        assert!(
            committed[name] == *bytes,
            "sample_data/{name} differs from a fresh generation: run `cargo run -- sample-data generate --out sample_data`"
        );
    }
    let total: usize = committed.values().map(Vec::len).sum();
    assert!(total < 25_000_000, "sample_data/ is {total} bytes");
}

#[test]
fn written_files_load_back_into_the_generated_groups() {
    let dataset = data::load(&manifest_dir().join("sample_data"), &LoadOptions::default()).unwrap();
    // The loader reads files in name order: financial, general, legal, medical.
    let mut expected: Vec<&QueryGroup> = seed7().iter().collect();
    expected.sort_by_key(|g| g.domain.clone());
    let loaded: Vec<&QueryGroup> = dataset.groups.iter().collect();
    assert_eq!(loaded.len(), expected.len());
    for (loaded, expected) in loaded.iter().zip(expected) {
        assert_eq!(*loaded, expected, "group {} changed through the file", expected.id);
    }
}

#[test]
fn sizes_ids_and_relevance_levels() {
    let groups = seed7();
    let mut ids = BTreeSet::new();
    for domain in ["legal", "medical", "financial", "general"] {
        let of_domain: Vec<&QueryGroup> = groups.iter().filter(|g| g.domain == domain).collect();
        let order: Vec<Split> = of_domain.iter().map(|g| g.split).collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{domain}: groups not ordered by split");
        for split in Split::ALL {
            let n = of_domain.iter().filter(|g| g.split == split).count();
            assert_eq!(n, groups::split_size(split), "{domain} {split}");
        }
        for (i, group) in of_domain.iter().filter(|g| g.split == Split::Dev).enumerate() {
            assert_eq!(group.id, format!("{domain}-dev-{:04}", i + 1));
        }
    }
    for group in groups {
        assert!(ids.insert(group.id.clone()), "duplicate id {}", group.id);
        assert_eq!(group.candidates.len(), 16, "{}", group.id);
        let candidate_ids: BTreeSet<&str> = group.candidates.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(candidate_ids.len(), 16, "{}: duplicate candidate ids", group.id);
        let texts: BTreeSet<&str> = group.candidates.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts.len(), 16, "{}: duplicate passages", group.id);
        assert_eq!(group.candidates.iter().filter(|c| c.relevance == 2).count(), 1, "{}", group.id);
        assert!(group.candidates.iter().all(|c| c.relevance <= 2), "{}", group.id);
        assert!(group.meta.contains_key("relation"), "{}", group.id);
    }
    let partial = groups.iter().filter(|g| g.candidates.iter().any(|c| c.relevance == 1)).count() as f64 / groups.len() as f64;
    assert!((0.2..0.4).contains(&partial), "share of groups with a partial passage: {partial:.3}");
}

/// Spans are in bounds, on char boundaries, non-empty, ordered, non-overlapping,
/// labelled with a type of the group's domain(s), and their text is a surface of
/// that type: a gazetteer name or the type's format.
#[test]
fn gold_spans_match_the_text_and_their_type() {
    let schema = schema();
    let gazetteers = gazetteer_surfaces();
    let month = "(January|February|March|April|May|June|July|August|September|October|November|December)";
    let formats: BTreeMap<&str, Regex> = [
        ("MONEY", r"^\$(\d{1,3}(,\d{3})*(\.\d{2})?|\d+(\.\d)? (million|billion))$".to_string()),
        ("DATE", format!(r"^({month} \d{{1,2}}, \d{{4}}|Q[1-4] \d{{4}}|\d{{4}})$")),
        ("PERCENT", r"^\d+\.\d{1,2}%$".to_string()),
        ("DOSAGE", r"^\d+(\.\d+)? (mg|mcg|units|mg/kg)$".to_string()),
        ("ICD_CODE", r"^[A-TV-Z]\d{2}\.\d{1,2}$".to_string()),
        ("CASE_NUMBER", r"^No\. (\d:)?\d{2}-(cv-\d{5}|\d{4})$".to_string()),
        ("TICKER", r"^((NASDAQ|NYSE): )?[A-Z]{3,4}$".to_string()),
        ("STATUTE", r"^(§ \d+-\d+|Section \d+|Art\. \d+)$".to_string()),
    ]
    .into_iter()
    .map(|(label, pattern)| (label, Regex::new(&pattern).unwrap()))
    .collect();
    let any_domain: BTreeSet<String> = schema.values().flatten().cloned().collect();
    let mut checked = 0usize;
    for group in seed7() {
        // The query names only types of its domain(s); passages may also be facts
        // from cross-domain relations (a drug's list price, a company's settlement).
        let mut query_types = schema[&group.domain].clone();
        if let Some(secondary) = &group.secondary_domain {
            query_types.extend(schema[secondary].iter().cloned());
        }
        for (i, (text, spans)) in texts(group).into_iter().enumerate() {
            let allowed = if i == 0 { &query_types } else { &any_domain };
            let mut previous_end = 0;
            for span in spans {
                let at = format!("{}: {text:?} span {span:?}", group.id);
                assert!(span.start < span.end && span.end <= text.len(), "{at}: empty or out of bounds");
                assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end), "{at}: not on char boundaries");
                assert!(span.start >= previous_end, "{at}: overlaps or precedes the previous span");
                previous_end = span.end;
                assert!(allowed.contains(&span.label), "{at}: label not in the schema of the domains it may come from");
                let slice = &text[span.start..span.end];
                assert_eq!(slice, slice.trim(), "{at}: span has surrounding whitespace");
                let in_gazetteer = gazetteers.get(&span.label).is_some_and(|names| names.contains(&slice.to_lowercase()));
                let in_format = formats.get(span.label.as_str()).is_some_and(|re| re.is_match(slice));
                assert!(in_gazetteer || in_format, "{at}: {slice:?} is neither a {} name nor a {} format", span.label, span.label);
                checked += 1;
            }
        }
    }
    assert!(checked > 100_000, "only {checked} spans");
}

/// Finds entity mentions without a span: outside the spans there may be no
/// gazetteer name, no number, currency or section sign, and no capitalised word
/// except at the start of a sentence.
struct MentionChecker {
    matcher: AhoCorasick,
    allowed_words: BTreeSet<&'static str>,
}

impl MentionChecker {
    fn new() -> MentionChecker {
        let mut patterns: BTreeSet<String> = BTreeSet::new();
        for names in gazetteer_surfaces().into_values() {
            for name in names {
                patterns.insert(name.strip_prefix("the ").unwrap_or(&name).to_string());
                patterns.insert(name);
            }
        }
        let matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .unwrap();
        MentionChecker { matcher, allowed_words: ["ICD-10", "IPO", "I"].into_iter().collect() }
    }

    fn problems(&self, group: &QueryGroup) -> Vec<String> {
        let mut problems = Vec::new();
        for (text, spans) in texts(group) {
            // Spans become a neutral placeholder that reads as a lower-case word.
            let mut masked = String::new();
            let mut at = 0;
            for span in spans {
                masked.push_str(&text[at..span.start]);
                masked.push_str("entity");
                at = span.end;
            }
            masked.push_str(&text[at..]);
            for found in self.matcher.find_iter(&masked) {
                let before = masked[..found.start()].chars().next_back();
                let after = masked[found.end()..].chars().next();
                let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
                if boundary(before) && boundary(after) {
                    problems.push(format!("{}: unannotated {:?} in {text:?}", group.id, &masked[found.range()]));
                }
            }
            let mut sentence_start = true;
            for word in masked.split_whitespace() {
                let bare = word.trim_end_matches([',', '.', '?', ';', ':']);
                if !self.allowed_words.contains(bare) {
                    if bare.chars().any(|c| c.is_ascii_digit() || "$%§".contains(c)) {
                        problems.push(format!("{}: number or symbol {word:?} outside spans in {text:?}", group.id));
                    }
                    if !sentence_start && bare.chars().next().is_some_and(char::is_uppercase) {
                        problems.push(format!("{}: capitalised {word:?} outside spans in {text:?}", group.id));
                    }
                }
                sentence_start = word.ends_with(['.', '?']);
            }
        }
        problems
    }
}

#[test]
fn every_entity_mention_has_a_span() {
    let checker = MentionChecker::new();
    let mut problems: Vec<String> = seed7().iter().flat_map(|g| checker.problems(g)).collect();
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{} problems, e.g.:\n{}", problems.len(), problems[..problems.len().min(15)].join("\n"));
}

#[test]
fn the_mention_checker_catches_unannotated_mentions() {
    let checker = MentionChecker::new();
    let mut group = seed7()[0].clone();
    assert!(checker.problems(&group).is_empty());
    let clean = group.candidates[0].clone();
    for extra in [" Patients also report fever.", " It costs $40.", " See Kelova Therapeutics.", " The S&P 500 rose."] {
        group.candidates[0].text = format!("{}{extra}", clean.text);
        assert!(!checker.problems(&group).is_empty(), "{extra:?} went unnoticed");
    }
    group.candidates[0] = clean;
    group.candidates[1].entities.pop();
    assert!(!checker.problems(&group).is_empty(), "a dropped span went unnoticed");
}

#[test]
fn the_unseen_entity_test_shares_no_entity_surface_with_the_other_splits() {
    let groups = seed7();
    let of_split = |split: Split| -> BTreeSet<String> { groups.iter().filter(|g| g.split == split).flat_map(surfaces).collect() };
    let train = of_split(Split::Train);
    let unseen = of_split(Split::TestUnseen);
    assert!(unseen.len() > 500, "only {} distinct unseen surfaces", unseen.len());
    let shared: Vec<&String> = unseen.intersection(&train).collect();
    assert!(shared.is_empty(), "test_unseen surfaces found in train: {shared:?}");
    for split in [Split::Dev, Split::Test] {
        let shared: Vec<String> = unseen.intersection(&of_split(split)).cloned().collect();
        assert!(shared.is_empty(), "test_unseen surfaces found in {split}: {shared:?}");
    }
    // The partition is what guarantees this: every surface is on its side.
    assert!(unseen.iter().all(|s| names::part_of(s) == names::Part::Unseen));
    assert!(train.iter().all(|s| names::part_of(s) == names::Part::Seen));
}

#[test]
fn the_seen_entity_test_asks_new_questions_about_entities_seen_in_training() {
    let groups = seed7();
    for domain in ["legal", "medical", "financial", "general"] {
        let of = |split: Split| groups.iter().filter(move |g| g.domain == domain && g.split == split);
        let train_surfaces: BTreeSet<String> = of(Split::Train).flat_map(surfaces).collect();
        let train_queries: BTreeSet<&str> = of(Split::Train).map(|g| g.query.as_str()).collect();
        let (mut seen, mut total) = (0, 0);
        for group in of(Split::Test) {
            assert!(!train_queries.contains(group.query.as_str()), "{}: query repeated from train", group.id);
            for span in &group.query_entities {
                total += 1;
                seen += usize::from(train_surfaces.contains(&group.query[span.start..span.end].to_lowercase()));
            }
        }
        let share = seen as f64 / total as f64;
        assert!(share > 0.8, "{domain}: only {share:.2} of test query entities occur in train");
    }
}

/// 5–10% of each main domain's queries touch a second domain and name entities
/// of both; the general (out-of-domain) set has none.
#[test]
fn cross_domain_queries_are_five_to_ten_percent_and_name_both_domains() {
    let schema = schema();
    let groups = seed7();
    for domain in ["legal", "medical", "financial"] {
        for split in Split::ALL {
            let selected: Vec<&QueryGroup> = groups.iter().filter(|g| g.domain == domain && g.split == split).collect();
            let cross = selected.iter().filter(|g| g.secondary_domain.is_some()).count() as f64 / selected.len() as f64;
            assert!((0.05..=0.10).contains(&cross), "{domain} {split}: cross-domain share {cross:.3}");
        }
    }
    assert!(groups.iter().filter(|g| g.domain == "general").all(|g| g.secondary_domain.is_none()));
    for group in groups.iter().filter(|g| g.secondary_domain.is_some()) {
        let secondary = group.secondary_domain.as_deref().unwrap();
        assert_ne!(secondary, group.domain);
        let positive = group.candidates.iter().find(|c| c.relevance == 2).unwrap();
        let labels: BTreeSet<&str> =
            group.query_entities.iter().chain(&positive.entities).map(|s| s.label.as_str()).collect();
        let own = &schema[&group.domain];
        assert!(
            labels.iter().any(|l| schema[secondary].contains(*l) && !own.contains(*l)),
            "{}: no {secondary} entity in the query or its positive ({labels:?})",
            group.id
        );
    }
}

/// The positive names every entity the query names; most groups have hard
/// negatives that name the query's entities too, so overlap alone cannot rank.
#[test]
fn positives_answer_the_query_and_hard_negatives_share_its_entities() {
    let groups = seed7();
    let mut with_hard_negative = 0;
    for group in groups {
        let query_surfaces: BTreeSet<String> =
            group.query_entities.iter().map(|s| group.query[s.start..s.end].to_lowercase()).collect();
        assert!(!query_surfaces.is_empty(), "{}: query without entities", group.id);
        let mentions = |c: &data::Candidate| -> BTreeSet<String> { c.entities.iter().map(|s| c.text[s.start..s.end].to_lowercase()).collect() };
        let positive = group.candidates.iter().find(|c| c.relevance == 2).unwrap();
        let positive_mentions = mentions(positive);
        assert!(query_surfaces.is_subset(&positive_mentions), "{}: positive {:?} lacks a query entity", group.id, positive.text);
        // The answer is an entity, except for limitation periods (a duration such as "two years").
        if group.meta["relation"] != "limitation_period" {
            assert!(positive_mentions.len() > query_surfaces.len(), "{}: positive {:?} states no answer", group.id, positive.text);
        }
        if group.candidates.iter().any(|c| c.relevance == 0 && !mentions(c).is_disjoint(&query_surfaces)) {
            with_hard_negative += 1;
        }
    }
    let share = with_hard_negative as f64 / groups.len() as f64;
    assert!(share > 0.95, "only {share:.3} of groups have a negative naming a query entity");
}

#[test]
fn gazetteers_are_disjoint_across_types_and_use_schema_types() {
    let schema = schema();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (domain, gazetteer) in names::all_gazetteers().unwrap() {
        for (label, surfaces) in gazetteer {
            assert!(schema[&domain].contains(&label), "{domain}: {label} is not in the entity schema");
            assert!(surfaces.len() >= 40, "{domain}/{label}: only {} surfaces", surfaces.len());
            for surface in surfaces {
                assert_eq!(surface, surface.trim());
                if let Some(first) = owner.insert(surface.to_lowercase(), format!("{domain}/{label}")) {
                    panic!("{surface:?} is listed as {first} and {domain}/{label}");
                }
            }
        }
    }
}
