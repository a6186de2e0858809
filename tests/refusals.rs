//! What the tool refuses (issue 18, "no silent wrong results"): inputs that used to be accepted and
//! quietly changed results. One test per case; every fixture is generated here. Each would pass a
//! bad input through (or hang, or print a wrong number) on the code before the fix.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2r::data::{self, LoadOptions};
use r2r::model::checkpoint::{read_safetensors, write_safetensors};
use r2r::model::make_model::write_random_model;
use r2r::model::{LoadOptions as ModelLoadOptions, ModelConfig, Reranker};

fn r2r(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_r2r")).args(args).output().expect("running r2r")
}

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, content).unwrap();
    path
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn load_err(path: &Path) -> String {
    data::load(path, &LoadOptions::default()).expect_err("expected a load error").to_string()
}

// ---- 1. A byte-order mark is stripped everywhere ----

#[test]
fn eval_strips_a_byte_order_mark_from_run_and_qrels() {
    let dir = tempfile::tempdir().unwrap();
    let qrels = "q1 0 d1 1\nq1 0 d2 0\nq2 0 d3 2\nq2 0 d4 1\nq3 0 d5 1\n";
    let run = "q1 Q0 d1 1 3 t\nq1 Q0 d2 2 2 t\nq2 Q0 d4 1 5 t\nq2 Q0 d3 2 4 t\nq3 Q0 d6 1 9 t\nq3 Q0 d5 2 8 t\n";
    let plain = (write(dir.path(), "qrels.txt", qrels), write(dir.path(), "run.txt", run));
    let bom = |s: &str| [b"\xEF\xBB\xBF".as_slice(), s.as_bytes()].concat();
    let with_bom = (write(dir.path(), "qrels-bom.txt", bom(qrels)), write(dir.path(), "run-bom.txt", bom(run)));
    let eval = |q: &Path, r: &Path| {
        let out = r2r(&["eval", "--qrels", q.to_str().unwrap(), "--run", r.to_str().unwrap(), "--metrics", "ndcg@10", "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json
    };
    let reference = eval(&plain.0, &plain.1);
    assert_eq!(reference["per_query"].as_object().unwrap().len(), 3);
    assert_eq!(eval(&plain.0, &with_bom.1), reference, "a BOM in the run changed the result");
    assert_eq!(eval(&with_bom.0, &plain.1), reference, "a BOM in the qrels changed the result");
}

// ---- 2. Ids: no whitespace or control characters ----

fn native_record(query_id: &str, cand_id: &str) -> String {
    serde_json::json!({
        "id": query_id, "domain": "legal", "split": "test", "query": "contract damages",
        "candidates": [{"id": cand_id, "text": "the court awarded damages", "relevance": 1},
                       {"id": "c2", "text": "a recipe for soup", "relevance": 0}]
    })
    .to_string()
}

#[test]
fn ids_with_whitespace_or_control_characters_are_refused_by_every_loader() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, what) in [("q\t1", "tab"), ("q\n1", "newline"), ("q\u{0}1", "NUL"), ("q 1", "space")] {
        let path = write(dir.path(), "native.jsonl", format!("{}\n{}\n", native_record("q0", "c1"), native_record(bad, "c1")));
        let err = load_err(&path);
        assert!(err.contains("native.jsonl:2: field `id`"), "{what}: {err}");
        let path = write(dir.path(), "native.jsonl", format!("{}\n", native_record("q1", bad)));
        let err = load_err(&path);
        assert!(err.contains("native.jsonl:1: field `candidates[0].id`"), "{what}: {err}");
        let flag = serde_json::json!({"id": bad, "query": "q", "pos": ["p"], "domain": "legal"}).to_string();
        let path = write(dir.path(), "flag.jsonl", format!("{flag}\n"));
        assert!(load_err(&path).contains("flag.jsonl:1: field `id`"), "{what}");
        let beir = dir.path().join(format!("beir-{}", what));
        write(&beir, "corpus.jsonl", format!("{}\n", serde_json::json!({"_id": bad, "text": "passage"})));
        write(&beir, "queries.jsonl", format!("{}\n", serde_json::json!({"_id": "q1", "text": "query", "domain": "legal"})));
        write(&beir, "qrels/test.tsv", "query-id\tcorpus-id\tscore\n");
        assert!(load_err(&beir).contains("corpus.jsonl:1: field `_id`"), "{what}");
    }
    // A FlagEmbedding file name with spaces makes valid generated ids.
    let path = write(dir.path(), "my flag data.jsonl", "{\"query\": \"q\", \"pos\": [\"p\"], \"domain\": \"legal\"}\n");
    let ds = data::load(&path, &LoadOptions::default()).unwrap();
    assert!(data::check_id(&ds.groups[0].id).is_ok(), "{}", ds.groups[0].id);
}

#[test]
fn a_bm25_run_written_from_a_dataset_reads_back_in_eval() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..3).map(|i| native_record(&format!("q{i}"), &format!("doc:{i}/é"))).collect();
    let data_path = write(dir.path(), "d.jsonl", lines.join("\n"));
    let run = dir.path().join("bm25.run");
    let out = r2r(&["bm25", "--data", data_path.to_str().unwrap(), "--write-run", run.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let qrels = write(dir.path(), "qrels.txt", "q0 0 doc:0/é 1\nq1 0 doc:1/é 1\nq2 0 doc:2/é 1\n");
    let out = r2r(&["eval", "--qrels", qrels.to_str().unwrap(), "--run", run.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

// ---- 3. BEIR qrels: range, duplicates, line numbers ----

fn beir_dir(root: &Path, qrels: &str) -> PathBuf {
    let dir = root.join("beir");
    let _ = std::fs::remove_dir_all(&dir);
    let corpus: Vec<String> = (0..4).map(|i| serde_json::json!({"_id": format!("d{i}"), "text": format!("passage number {i} about law")}).to_string()).collect();
    write(&dir, "corpus.jsonl", corpus.join("\n"));
    write(&dir, "queries.jsonl", [r#"{"_id":"q1","text":"law one","domain":"legal"}"#, r#"{"_id":"q2","text":"law two","domain":"legal"}"#].join("\n"));
    write(&dir, "qrels/test.tsv", format!("query-id\tcorpus-id\tscore\n{qrels}"));
    dir
}

#[test]
fn beir_scores_out_of_range_and_duplicate_judgements_are_refused_with_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    for big in ["5000000000", "4294967296", "2147483648"] {
        let err = load_err(&beir_dir(tmp.path(), &format!("q1\td0\t1\nq2\td1\t{big}\n")));
        assert!(err.contains("test.tsv:3: field `score`") && err.contains("out of range"), "{big}: {err}");
    }
    let err = load_err(&beir_dir(tmp.path(), "q1\td0\t1\nq2\td1\t0\nq2\td2\t-1\n"));
    assert!(err.contains("test.tsv:3: field `score`") && err.contains("`q2` has no positive passage"), "{err}");
    let err = load_err(&beir_dir(tmp.path(), "q1\td0\t1\nq1\td1\t0\nq1\td0\t2\n"));
    assert!(err.contains("test.tsv:4: field `corpus-id`") && err.contains("first on line 2"), "{err}");

    // What loads converts to a native file that the loader reads back identically.
    let dir = beir_dir(tmp.path(), "q1\td0\t2147483647\nq2\td1\t1\nq2\td2\t-1\n");
    let ds = data::load(&dir, &LoadOptions::default()).unwrap();
    assert_eq!(ds.groups[0].candidates[0].relevance, 2147483647);
    let out = tmp.path().join("converted.jsonl");
    data::native::write(&out, &ds.groups).unwrap();
    assert_eq!(data::load(&out, &LoadOptions::default()).unwrap().groups, ds.groups);
}

// ---- 4. Non-finite weights and configs ----

fn poison(file: &Path, tensor_name: &str, value: f32) {
    let mut tensors: std::collections::BTreeMap<_, _> =
        read_safetensors(file, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap().into_iter().collect();
    let t = &tensors[tensor_name];
    let mut values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    values[1] = value;
    let poisoned = candle_core::Tensor::from_vec(values, t.dims(), &candle_core::Device::Cpu).unwrap();
    tensors.insert(tensor_name.to_string(), poisoned);
    write_safetensors(file, &tensors, None).unwrap();
}

#[test]
fn nan_or_infinite_model_adapter_and_router_weights_are_refused_naming_the_tensor() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_random_model(&model, "qwen3-tiny", Some(2), 3).unwrap();
    let reranker = Reranker::load(&model, &ModelLoadOptions::default()).unwrap();

    // Adapter.
    let adapter = r2r::model::LoraAdapter::new_random(r2r::model::LoraConfig { r: 2, ..Default::default() }, reranker.config(), reranker.device(), 1).unwrap();
    let adapter_dir = tmp.path().join("adapter");
    r2r::model::save_adapter(&adapter, &adapter_dir, "m").unwrap();
    let weights = adapter_dir.join("adapter_model.safetensors");
    let name = read_safetensors(&weights, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap()[0].0.clone();
    poison(&weights, &name, f32::NAN);
    let err = format!("{:#}", reranker.load_adapter(&adapter_dir).err().expect("a NaN adapter must be refused"));
    assert!(err.contains(&name) && err.contains("non-finite"), "{err}");

    // Backbone.
    let weights = model.join("model.safetensors");
    poison(&weights, "model.norm.weight", f32::INFINITY);
    let err = format!("{:#}", Reranker::load(&model, &ModelLoadOptions::default()).err().expect("an Inf model must be refused"));
    assert!(err.contains("model.norm.weight") && err.contains("non-finite"), "{err}");

    // Router.
    use r2r::routing::{RouterKind, RouterTrainConfig, TrainedRouter};
    let x: Vec<Vec<f32>> = (0..8).map(|i| vec![i as f32, (i % 2) as f32]).collect();
    let y: Vec<usize> = (0..8).map(|i| i % 2).collect();
    let labels = vec!["legal".to_string(), "medical".to_string()];
    let router = TrainedRouter::train(RouterKind::Linear, &labels, &x, &y, &RouterTrainConfig { epochs: 3, ..Default::default() }, None).unwrap();
    let router_dir = tmp.path().join("router");
    router.save(&router_dir).unwrap();
    poison(&router_dir.join("router.safetensors"), "w1", f32::NAN);
    let err = format!("{:#}", TrainedRouter::load(&router_dir).unwrap_err());
    assert!(err.contains("w1") && err.contains("non-finite"), "{err}");
}

#[test]
fn a_router_of_an_unknown_format_version_is_refused() {
    use r2r::routing::{RouterKind, RouterTrainConfig, TrainedRouter};
    let tmp = tempfile::tempdir().unwrap();
    let x: Vec<Vec<f32>> = (0..8).map(|i| vec![i as f32, (i % 2) as f32]).collect();
    let y: Vec<usize> = (0..8).map(|i| i % 2).collect();
    let labels = vec!["legal".to_string(), "medical".to_string()];
    let router = TrainedRouter::train(RouterKind::Linear, &labels, &x, &y, &RouterTrainConfig { epochs: 3, ..Default::default() }, None).unwrap();
    router.save(tmp.path()).unwrap();
    let meta = tmp.path().join("router.json");
    let text = std::fs::read_to_string(&meta).unwrap().replace("\"format_version\": 1", "\"format_version\": 7");
    std::fs::write(&meta, text).unwrap();
    let err = format!("{:#}", TrainedRouter::load(tmp.path()).unwrap_err());
    assert!(err.contains("router.json") && err.contains("format_version") && err.contains('7'), "{err}");
}

#[test]
fn model_configs_out_of_range_are_refused_naming_the_field() {
    let base = r2r::model::make_model::config_like("qwen3-tiny", Some(2)).unwrap();
    for (field, value) in [
        ("rms_norm_eps", serde_json::json!(-1.0)),
        ("rms_norm_eps", serde_json::json!(0.0)),
        ("num_hidden_layers", serde_json::json!(0)),
        ("max_position_embeddings", serde_json::json!(0)),
        ("vocab_size", serde_json::json!(0)),
        ("rope_theta", serde_json::json!(-5.0)),
    ] {
        let mut config = base.clone();
        config[field] = value;
        let err = ModelConfig::from_json(&config.to_string()).expect_err(field).to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
    assert!(ModelConfig::from_json(&base.to_string()).is_ok());
}

// ---- 5. One job per run directory ----

#[test]
fn a_second_training_into_a_locked_run_directory_fails_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let _held = r2r::train::RunLock::acquire(&out, "another training").unwrap();
    let mut config = r2r::train::TrainConfig::default();
    config.output.dir = out.clone();
    config.model.path = tmp.path().join("no-model-needed");
    let (tx, _rx) = crossbeam_channel::unbounded();
    let ctx = r2r::train::JobContext::new(tx, Arc::new(AtomicBool::new(false)), None);
    let started = Instant::now();
    let err = format!("{:#}", r2r::train::run_training(&config, &ctx).unwrap_err());
    assert!(err.contains("in use by pid") && err.contains("run"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn orphan_temporary_files_are_removed_when_a_training_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let orphan = write(&out, ".fingerprints.json.r2r-tmp-Zz9", "{\"data\": \"");
    let mut config = r2r::train::TrainConfig::default();
    config.output.dir = out.clone();
    config.model.path = tmp.path().join("absent-model");
    let (tx, _rx) = crossbeam_channel::unbounded();
    let ctx = r2r::train::JobContext::new(tx, Arc::new(AtomicBool::new(false)), None);
    // The training fails later (no model), but the orphan is gone by then.
    assert!(r2r::train::run_training(&config, &ctx).is_err());
    assert!(!orphan.exists(), "the orphan temporary file is still there");
}

// ---- 6. Ranges of flags and prompt templates ----

#[test]
fn bm25_parameters_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data_path = write(dir.path(), "d.jsonl", native_record("q1", "c1"));
    for (flag, value) in [("--k1", "NaN"), ("--k1", "-1"), ("--k1", "inf"), ("--b", "-5"), ("--b", "1.5")] {
        let out = r2r(&["bm25", "--data", data_path.to_str().unwrap(), &format!("{flag}={value}")]);
        assert!(!out.status.success(), "{flag} {value} accepted");
        assert!(stderr(&out).contains(flag), "{flag} {value}: {}", stderr(&out));
    }
}

#[test]
fn prompt_templates_without_query_or_with_unknown_placeholders_and_zero_max_length_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("model");
    write_random_model(&model, "qwen3-tiny", Some(2), 3).unwrap();
    for (body, expected) in [("<D>: {doc}", "{query}"), ("<Q>: {qeury} <D>: {doc}", "{qeury}")] {
        std::fs::write(model.join("r2r_prompt.json"), serde_json::json!({ "body": body }).to_string()).unwrap();
        let err = format!("{:#}", Reranker::load(&model, &ModelLoadOptions::default()).err().expect(body));
        assert!(err.contains(expected), "{body}: {err}");
    }
    std::fs::remove_file(model.join("r2r_prompt.json")).unwrap();
    let pairs = write(tmp.path(), "pairs.jsonl", "{\"query\": \"q\", \"document\": \"d\"}\n");
    let out = r2r(&["score", "--model", model.to_str().unwrap(), "--pairs", pairs.to_str().unwrap(), "--max-length", "0"]);
    assert!(!out.status.success(), "--max-length 0 accepted: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr(&out).contains("max_length"), "{}", stderr(&out));
}

// ---- 7. Files ----

#[cfg(unix)]
#[test]
fn fifos_devices_and_looping_symlinks_are_refused_not_hung_on_or_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("data.jsonl");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_r2r"))
        .args(["data", "stats", fifo.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("`r2r data stats` on a FIFO hangs");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    assert!(load_err(&fifo).contains("not a regular file"));
    assert!(load_err(Path::new("/dev/zero")).contains("not a regular file"));
    let out = r2r(&["eval", "--qrels", "/dev/zero", "--run", "/dev/zero"]);
    assert!(!out.status.success() && stderr(&out).contains("not a regular file"), "{}", stderr(&out));

    let dir = tmp.path().join("dir");
    write(&dir, "a.jsonl", native_record("q1", "c1"));
    let looping = dir.join("b.jsonl");
    std::os::unix::fs::symlink(&looping, &looping).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("b.jsonl") && err.contains("symbolic link loop"), "{err}");
}

#[test]
fn a_query_id_repeated_across_files_names_both_files_and_lines() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a.jsonl", format!("{}\n\n{}\n", native_record("q1", "c1"), native_record("q2", "c1")));
    write(tmp.path(), "b.jsonl", format!("{}\n{}\n", native_record("q3", "c1"), native_record("q2", "c1")));
    let err = load_err(tmp.path());
    assert!(err.contains("b.jsonl:2: field `id`") && err.contains("a.jsonl:3"), "{err}");
}

#[test]
fn a_model_path_that_is_a_file_is_reported_as_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "model.safetensors", "not a directory");
    let err = format!("{:#}", Reranker::load(&file, &ModelLoadOptions::default()).err().unwrap());
    assert!(err.contains("is a file") && !err.contains("does not exist"), "{err}");
}

#[test]
fn a_huge_document_is_cut_before_tokenising() {
    let tmp = tempfile::tempdir().unwrap();
    let model = common::tiny_model(tmp.path());
    let mut options = ModelLoadOptions::default();
    let mut template = r2r::model::PromptTemplate::for_model_dir(&model).unwrap();
    template.max_length = 256;
    options.template = Some(template);
    let reranker = Reranker::load(&model, &options).unwrap();
    let huge = "the court awarded damages for breach of contract. ".repeat(600_000); // 30 MB
    let started = Instant::now();
    let cut = reranker.prompt.encode_pair(None, "contract damages", &huge).unwrap();
    let elapsed = started.elapsed();
    let short = reranker.prompt.encode_pair(None, "contract damages", &huge[..20_000]).unwrap();
    assert_eq!(cut, short, "cutting before tokenising must not change the kept tokens");
    assert!(cut.truncated);
    assert!(elapsed < Duration::from_secs(10), "a 30 MB document took {elapsed:?} to encode");
}

#[test]
fn pretrain_configs_with_unknown_fields_or_zero_sizes_are_refused() {
    use r2r::backbone::PretrainConfig;
    let typo = toml::from_str::<PretrainConfig>("lm_bacth = 4\n").unwrap_err().to_string();
    assert!(typo.contains("lm_bacth"), "{typo}");
    let zero: PretrainConfig = toml::from_str("lm_batch = 0\n").unwrap();
    let err = format!("{:#}", zero.validate().unwrap_err());
    assert!(err.contains("lm_batch"), "{err}");
    let heads: PretrainConfig = toml::from_str("num_heads = 6\nnum_kv_heads = 4\n").unwrap();
    assert!(format!("{:#}", heads.validate().unwrap_err()).contains("num_kv_heads"));
    PretrainConfig::default().validate().unwrap();
}
