//! Property test over the loaders (native, FlagEmbedding, BEIR, TREC run / qrels, training config):
//! random byte mutations of valid files, generated here. A loader may refuse the result, but it
//! must never panic, and whatever it accepts must be valid and stable: ids pass `check_id`, every
//! group keeps a positive candidate, and writing what was read and reading it again gives the same
//! content (so nothing accepted is silently different from what a re-read would give).
//! A bounded number of cases per loader keeps this to seconds.

use std::path::Path;

use proptest::prelude::*;
use r2r::data::{self, native, LoadOptions};
use r2r::metrics::{Qrels, Run};

/// One edit of a file: at `at` (a fraction of its length) delete, insert or overwrite a byte.
#[derive(Debug, Clone)]
enum Edit {
    Delete(f64),
    Insert(f64, u8),
    Overwrite(f64, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bias the bytes toward the ones that matter to these formats.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]\":,\\\t\n \r0123456789-eE.n".to_vec()),
        prop::sample::select(vec![0u8, 0xEF, 0xBB, 0xBF, 0xFF, 0x80]),
    ];
    prop_oneof![
        (0.0..1.0f64).prop_map(Edit::Delete),
        (0.0..1.0f64, byte.clone()).prop_map(|(a, b)| Edit::Insert(a, b)),
        (0.0..1.0f64, byte).prop_map(|(a, b)| Edit::Overwrite(a, b)),
    ]
}

fn mutate(original: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for e in edits {
        let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
        match *e {
            Edit::Delete(f) if !bytes.is_empty() => {
                let i = at(f, bytes.len() - 1);
                bytes.remove(i);
            }
            Edit::Insert(f, b) => {
                let i = at(f, bytes.len());
                bytes.insert(i, b);
            }
            Edit::Overwrite(f, b) if !bytes.is_empty() => {
                let i = at(f, bytes.len() - 1);
                bytes[i] = b;
            }
            _ => {}
        }
    }
    bytes
}

const NATIVE: &str = concat!(
    r#"{"id":"q1","domain":"legal","split":"train","query":"breach of contract damages","query_entities":[{"start":10,"end":18,"label":"LAW"}],"candidates":[{"id":"c1","text":"The court awarded damages.","relevance":2},{"id":"c2","text":"A soup recipe.","relevance":0}]}"#,
    "\n",
    r#"{"id":"q2","domain":"medical","split":"test","query":"ibuprofen dose","candidates":[{"id":"c3","text":"At most 3200 mg daily.","relevance":1,"entities":[{"start":0,"end":2,"label":"X"}]},{"id":"c4","text":"Unrelated.","relevance":0}],"meta":{"source":"unit"}}"#,
    "\n"
);

const FLAG: &str = concat!(
    r#"{"id":"f1","query":"tax deduction","pos":["Deductions lower taxable income."],"neg":["A poem."],"domain":"financial","split":"dev"}"#,
    "\n",
    r#"{"query":"contract law","pos":["Offer and acceptance."],"neg":[],"domain":"legal"}"#,
    "\n"
);

const CORPUS: &str = concat!(
    r#"{"_id":"d1","title":"Law","text":"Contracts need offer and acceptance."}"#,
    "\n",
    r#"{"_id":"d2","text":"Ibuprofen dosing for adults."}"#,
    "\n",
    r#"{"_id":"d3","text":"Tax rules for income."}"#,
    "\n"
);
const QUERIES: &str = concat!(r#"{"_id":"q1","text":"contract offer","domain":"legal"}"#, "\n", r#"{"_id":"q2","text":"ibuprofen","metadata":{"domain":"medical"}}"#, "\n");
const QRELS_TSV: &str = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t0\n";

const TREC_RUN: &str = "q1 Q0 d1 1 2.5 sys\nq1 Q0 d2 2 1.25 sys\nq2 Q0 d3 1 -0.5 sys\n";
const TREC_QRELS: &str = "q1 0 d1 1\nq1 0 d2 0\nq2 0 d3 2\n";

const CONFIG: &str = "[run]\nstages = [\"stage1\", \"experts\"]\n[data]\ndomains = [\"legal\", \"medical\"]\nmax_train_queries = 12\n\
[lora]\nrank = 8\nalpha = 16.0\ndropout = 0.1\n[objective]\nscore = \"logit\"\nnegatives = 3\ntemperature = 0.5\n\
[optim]\nlearning_rate = 0.001\nbatch_groups = 2\n[stage2]\nepochs = 2\n[output]\ncheckpoint_every = 5\n";

/// Everything a dataset loader accepted is valid and survives a write and a re-read unchanged.
fn check_accepted_dataset(dir: &Path, ds: &data::Dataset) {
    for group in &ds.groups {
        assert!(data::check_id(&group.id).is_ok(), "accepted query id {:?}", group.id);
        for c in &group.candidates {
            assert!(data::check_id(&c.id).is_ok(), "accepted candidate id {:?}", c.id);
        }
        assert!(native::validate_group(group).is_ok(), "accepted an invalid group {group:?}");
    }
    let out = dir.join("roundtrip.out");
    native::write(&out, &ds.groups).unwrap();
    let again = data::load(&out, &LoadOptions::default()).expect("what was accepted must read back");
    assert_eq!(again.groups, ds.groups);
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn native_and_flag_files(edits in prop::collection::vec(edit(), 1..6), flag in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, mutate(if flag { FLAG } else { NATIVE }.as_bytes(), &edits)).unwrap();
        if let Ok(ds) = data::load(&path, &LoadOptions::default()) {
            check_accepted_dataset(dir.path(), &ds);
        }
    }

    #[test]
    fn beir_directories(edits in prop::collection::vec(edit(), 1..5), which in 0usize..3) {
        let dir = tempfile::tempdir().unwrap();
        let beir = dir.path().join("beir");
        std::fs::create_dir_all(beir.join("qrels")).unwrap();
        let files = [("corpus.jsonl", CORPUS), ("queries.jsonl", QUERIES), ("qrels/test.tsv", QRELS_TSV)];
        for (i, (name, text)) in files.iter().enumerate() {
            let bytes = if i == which { mutate(text.as_bytes(), &edits) } else { text.as_bytes().to_vec() };
            std::fs::write(beir.join(name), bytes).unwrap();
        }
        if let Ok(ds) = data::load(&beir, &LoadOptions::default()) {
            check_accepted_dataset(dir.path(), &ds);
        }
    }

    #[test]
    fn trec_runs_and_qrels(edits in prop::collection::vec(edit(), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.txt");
        std::fs::write(&path, mutate(TREC_RUN.as_bytes(), &edits)).unwrap();
        if let Ok(run) = Run::read(&path) {
            for (query, docs) in &run.scores {
                assert!(data::check_id(query).is_ok() && docs.keys().all(|d| data::check_id(d).is_ok()), "{run:?}");
                assert!(docs.values().all(|s| s.is_finite()));
            }
            let out = dir.path().join("run.out");
            run.write(&out).expect("an accepted run can be written");
            prop_assert_eq!(Run::read(&out).unwrap().scores, run.scores);
        }
        std::fs::write(&path, mutate(TREC_QRELS.as_bytes(), &edits)).unwrap();
        if let Ok(qrels) = Qrels::read(&path) {
            let out = dir.path().join("qrels.out");
            qrels.write(&out).expect("accepted qrels can be written");
            prop_assert_eq!(Qrels::read(&out).unwrap(), qrels);
        }
    }

    #[test]
    fn training_configs(edits in prop::collection::vec(edit(), 1..4)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.toml");
        std::fs::write(&path, mutate(CONFIG.as_bytes(), &edits)).unwrap();
        if let Ok(config) = r2r::train::TrainConfig::load(&path) {
            config.validate().expect("a loaded config is valid");
            let again = dir.path().join("again.toml");
            std::fs::write(&again, config.to_toml()).unwrap();
            prop_assert_eq!(r2r::train::TrainConfig::load(&again).unwrap(), config);
        }
    }
}

#[test]
fn the_unmutated_fixtures_are_valid() {
    // Otherwise the properties above would only ever see refusals.
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("n.jsonl", NATIVE), ("f.jsonl", FLAG)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        assert_eq!(data::load(&path, &LoadOptions::default()).unwrap().groups.len(), 2);
    }
    let beir = dir.path().join("beir");
    std::fs::create_dir_all(beir.join("qrels")).unwrap();
    for (name, text) in [("corpus.jsonl", CORPUS), ("queries.jsonl", QUERIES), ("qrels/test.tsv", QRELS_TSV)] {
        std::fs::write(beir.join(name), text).unwrap();
    }
    assert_eq!(data::load(&beir, &LoadOptions::default()).unwrap().groups.len(), 2);
    assert_eq!(Run::parse(TREC_RUN, Path::new("r")).unwrap().scores.len(), 2);
    assert_eq!(Qrels::parse(TREC_QRELS, Path::new("q")).unwrap().len(), 2);
    let path = dir.path().join("t.toml");
    std::fs::write(&path, CONFIG).unwrap();
    assert_eq!(r2r::train::TrainConfig::load(&path).unwrap().lora.rank, 8);
}
