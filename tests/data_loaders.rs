//! Loader tests: every supported format, valid and each kind of bad input. Errors
//! must name the file, the line and the field; nothing may panic.

mod common;

use std::path::{Path, PathBuf};

use r2r::data::{self, DataError, Format, LoadOptions, Split};

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, content).unwrap();
    path
}

fn native_line(id: &str, split: &str) -> String {
    format!(
        r#"{{"id":"{id}","domain":"medical","split":"{split}","query":"dose of [x] ibuprofen","query_entities":[{{"start":12,"end":21,"label":"DRUG"}}],"candidates":[{{"id":"c1","text":"Ibuprofen: 400 mg","relevance":2}},{{"id":"c2","text":"Aspirin thins blood","relevance":0}}]}}"#
    )
}

fn load_err(path: &Path) -> DataError {
    data::load(path, &LoadOptions::default()).expect_err("expected a load error")
}

#[test]
fn native_jsonl_loads_with_spans_as_byte_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "d.jsonl", format!("{}\n\n{}\n", native_line("q1", "train"), native_line("q2", "test_unseen")).as_bytes());
    assert_eq!(data::detect_format(&path).unwrap(), Format::Native);
    let ds = data::load(&path, &LoadOptions::default()).unwrap();
    assert_eq!(ds.groups.len(), 2);
    assert_eq!(ds.groups[1].split, Split::TestUnseen);
    let g = &ds.groups[0];
    let span = &g.query_entities[0];
    assert_eq!(&g.query[span.start..span.end], "ibuprofen");
    assert_eq!(g.candidates[0].relevance, 2);
}

#[test]
fn native_convert_round_trip_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "d.jsonl", format!("{}\n", native_line("q1", "dev")).as_bytes());
    let ds = data::load(&path, &LoadOptions::default()).unwrap();
    let out = dir.path().join("out.jsonl");
    data::native::write(&out, &ds.groups).unwrap();
    let again = data::load(&out, &LoadOptions::default()).unwrap();
    assert_eq!(again.groups, ds.groups);
}

#[test]
fn flag_embedding_jsonl_loads_with_domain_and_hashed_splits() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"query":"q one","pos":["p1"],"neg":["n1","n2"]}"#,
        r#"{"id":"x7","query":"q two","pos":["p2","p3"],"neg":[],"domain":"legal","source":"unit"}"#,
        r#"{"query":"q three","pos":["p4"],"neg":["n3"],"split":"dev"}"#,
    ];
    let path = write(dir.path(), "flag.jsonl", lines.join("\n").as_bytes());
    assert_eq!(data::detect_format(&path).unwrap(), Format::FlagEmbedding);
    // Without a domain anywhere the first record fails, naming the field.
    let err = load_err(&path);
    assert_eq!((err.line, err.field.as_deref()), (Some(1), Some("domain")), "{err}");
    let opts = LoadOptions { domain: Some("financial".into()), ..LoadOptions::default() };
    let ds = data::load(&path, &opts).unwrap();
    assert_eq!(ds.groups.len(), 3);
    assert!(ds.groups.iter().all(|g| g.domain == "financial"), "--domain overrides the file");
    assert_eq!(ds.groups[0].id, "flag-1");
    assert_eq!(ds.groups[0].candidates.len(), 3);
    assert_eq!(ds.groups[0].positives().count(), 1);
    assert_eq!(ds.groups[1].meta.get("source").map(String::as_str), Some("unit"));
    assert_eq!(ds.groups[2].split, Split::Dev);
    assert_eq!(ds.groups[0].split, data::flag::hashed_split("flag-1"));
}

#[test]
fn beir_directory_loads_with_mined_negatives() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = String::new();
    for i in 0..30 {
        corpus.push_str(&format!("{{\"_id\":\"d{i}\",\"title\":\"T{i}\",\"text\":\"passage {i} about topic {} tax\"}}\n", i % 5));
    }
    write(dir.path(), "corpus.jsonl", corpus.as_bytes());
    write(
        dir.path(),
        "queries.jsonl",
        b"{\"_id\":\"q1\",\"text\":\"topic 3 tax\",\"metadata\":{\"domain\":\"financial\"}}\n{\"_id\":\"q2\",\"text\":\"topic 1\",\"domain\":\"financial\"}\n",
    );
    write(dir.path(), "qrels/test.tsv", b"query-id\tcorpus-id\tscore\nq1\td3\t2\nq1\td4\t0\n");
    write(dir.path(), "qrels/train.tsv", b"q2\td1\t1\n");
    assert_eq!(data::detect_format(dir.path()).unwrap(), Format::Beir);
    let ds = data::load(dir.path(), &LoadOptions { candidates_per_query: 8, ..LoadOptions::default() }).unwrap();
    assert_eq!(ds.groups.len(), 2);
    let q1 = ds.groups.iter().find(|g| g.id == "q1").unwrap();
    assert_eq!(q1.split, Split::Test);
    assert_eq!(q1.domain, "financial");
    assert_eq!(q1.candidates.len(), 8);
    assert_eq!(q1.candidates[0].id, "d3");
    assert_eq!(q1.candidates[0].relevance, 2);
    // The best BM25 non-judged passages share "topic 3".
    assert!(q1.candidates[2].text.contains("topic 3"), "{:?}", q1.candidates[2].text);
    let again = data::load(dir.path(), &LoadOptions { candidates_per_query: 8, ..LoadOptions::default() }).unwrap();
    assert_eq!(again.groups, ds.groups, "mining is seeded");
}

#[test]
fn beir_errors_name_the_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "corpus.jsonl", b"{\"_id\":\"d1\",\"text\":\"x\"}\n");
    write(dir.path(), "queries.jsonl", b"{\"_id\":\"q1\",\"text\":\"x\"}\n");
    write(dir.path(), "qrels/test.tsv", b"q1\tmissing\t1\n");
    let err = load_err(dir.path());
    assert!(err.file.ends_with("qrels/test.tsv"), "{err}");
    assert_eq!((err.line, err.field.as_deref()), (Some(1), Some("corpus-id")));
    write(dir.path(), "qrels/test.tsv", b"q1\td1\t1\n");
    write(dir.path(), "qrels/holdout.tsv", b"q1\td1\t1\n");
    assert!(load_err(dir.path()).message.contains("unknown split `holdout`"));
}

/// Each bad native input and the (line, field, message fragment) it must report.
#[test]
fn bad_native_input_is_reported_precisely() {
    let good = native_line("q1", "train");
    let cases: Vec<(&str, Vec<u8>, Option<usize>, Option<&str>, &str)> = vec![
        ("malformed json", format!("{good}\n{{\"id\": \"q2\",\n").into_bytes(), Some(2), None, "malformed JSON"),
        ("missing query", good.replace(r#""query":"dose of [x] ibuprofen","query_entities":[{"start":12,"end":21,"label":"DRUG"}],"#, "").into_bytes(), Some(1), Some("query"), "missing field"),
        ("empty query", good.replace("dose of [x] ibuprofen", " ").replace(r#""query_entities":[{"start":12,"end":21,"label":"DRUG"}],"#, "").into_bytes(), Some(1), Some("query"), "empty"),
        ("empty candidate text", good.replace("Aspirin thins blood", "").into_bytes(), Some(1), Some("candidates[1].text"), "empty"),
        ("negative relevance", good.replace(r#""relevance":0"#, r#""relevance":-1"#).into_bytes(), Some(1), Some("candidates[1].relevance"), "non-negative"),
        ("no positive", good.replace(r#""relevance":2"#, r#""relevance":0"#).into_bytes(), Some(1), Some("candidates"), "no positive"),
        ("duplicate query id", format!("{good}\n{good}\n").into_bytes(), Some(2), Some("id"), "duplicate query id `q1` (first on line 1)"),
        ("duplicate candidate id", good.replace(r#""id":"c2""#, r#""id":"c1""#).into_bytes(), Some(1), Some("candidates[1].id"), "duplicate candidate id"),
        ("unknown split", native_line("q1", "holdout").into_bytes(), Some(1), Some("split"), "unknown split `holdout`"),
        ("span outside text", good.replace(r#""end":21"#, r#""end":99"#).into_bytes(), Some(1), Some("query_entities"), "outside the text"),
        ("not an object", b"[1, 2]\n".to_vec(), Some(1), None, "expected a JSON object"),
        ("empty file", b"\n\n".to_vec(), None, None, "empty"),
    ];
    let mut bad_utf8 = format!("{good}\n").into_bytes();
    bad_utf8.extend_from_slice(b"{\"id\": \"q\xff\"}\n");
    let mut cases = cases;
    cases.push(("non-UTF-8 bytes", bad_utf8, Some(2), None, "invalid UTF-8"));
    for (name, content, line, field, fragment) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.jsonl", &content);
        let err = load_err(&path);
        let shown = err.to_string();
        assert_eq!(err.file, path, "{name}: {shown}");
        assert_eq!(err.line, line, "{name}: {shown}");
        assert_eq!(err.field.as_deref(), field, "{name}: {shown}");
        assert!(shown.contains(fragment), "{name}: `{shown}` lacks `{fragment}`");
        assert!(shown.contains("bad.jsonl"), "{name}: message names the file: {shown}");
    }
}

#[test]
fn bad_flag_input_is_reported_precisely() {
    let cases: Vec<(&str, &str, Option<&str>, &str)> = vec![
        ("no positive", r#"{"query":"q","pos":[],"neg":["n"],"domain":"legal"}"#, Some("pos"), "no positive"),
        ("empty passage", r#"{"query":"q","pos":[""],"domain":"legal"}"#, Some("pos[0]"), "empty passage"),
        ("wrong type", r#"{"query":"q","pos":"p","domain":"legal"}"#, Some("pos"), "expected an array"),
        ("unknown split", r#"{"query":"q","pos":["p"],"domain":"legal","split":"final"}"#, Some("split"), "unknown split"),
        ("missing query", r#"{"pos":["p"],"query":null,"domain":"legal"}"#, Some("query"), "missing field"),
    ];
    for (name, line, field, fragment) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "flag.jsonl", format!("{line}\n").as_bytes());
        let err = load_err(&path);
        assert_eq!(err.line, Some(1), "{name}: {err}");
        assert_eq!(err.field.as_deref(), field, "{name}: {err}");
        assert!(err.to_string().contains(fragment), "{name}: {err}");
    }
}

#[test]
fn unrecognised_records_and_missing_paths_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "x.jsonl", br#"{"title": "nope"}"#);
    assert!(load_err(&path).message.contains("unrecognised record"));
    assert!(load_err(&dir.path().join("absent.jsonl")).message.contains("no such file"));
    let empty_dir = tempfile::tempdir().unwrap();
    assert!(load_err(empty_dir.path()).message.contains("no *.jsonl"));
}

#[test]
fn a_directory_of_files_rejects_query_ids_repeated_across_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.jsonl", native_line("q1", "train").as_bytes());
    write(dir.path(), "b.jsonl", native_line("q1", "dev").as_bytes());
    let err = load_err(dir.path());
    assert!(err.message.contains("occurs twice"), "{err}");
}

#[test]
fn a_hundred_thousand_queries_stream_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut content = String::with_capacity(100_000 * 300);
    for i in 0..100_000 {
        content.push_str(&native_line(&format!("q{i}"), "train"));
        content.push('\n');
    }
    let path = write(dir.path(), "big.jsonl", content.as_bytes());
    let ds = data::load(&path, &LoadOptions::default()).unwrap();
    assert_eq!(ds.groups.len(), 100_000);
}

#[test]
fn shared_realdata_loads_when_present() {
    let realdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
    if !realdata.is_dir() {
        common::missing(&realdata.display().to_string());
        return;
    }
    for name in ["legal", "medical", "financial"] {
        let ds = data::load(&realdata.join(format!("{name}.jsonl")), &LoadOptions::default()).unwrap();
        assert!(ds.groups.len() > 100, "{name}");
        assert!(ds.groups.iter().all(|g| g.domain == name && g.candidates.len() >= 16));
        assert!(ds.groups.iter().any(|g| g.split == Split::Test) && ds.groups.iter().any(|g| g.split == Split::Train));
    }
}
