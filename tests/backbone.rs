//! The bundled backbone's pipeline: tokenizer training, a few deterministic pretraining steps that
//! lower the loss, a whole tiny `pretrain` run that saves a loadable model, and the committed
//! assets/backbone (skipped with a note when absent).

mod common;

use candle_core::Device;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use r2r::backbone::pretrain::{mixed_target, optimise, rank_loss, ExampleMaker, TieInit, TrainableBackbone};
use r2r::backbone::{pretrain, train_tokenizer, Corpus, PretrainConfig};
use r2r::bm25::{Bm25Index, Bm25Params};
use r2r::data::{Candidate, QueryGroup, Split};
use r2r::model::{LoadOptions, ModelConfig, PromptEncoder, PromptTemplate, Reranker, ScoreOptions, ScoreRequest};
use r2r::train::jobs::JobContext;
use rand::Rng;
use std::path::Path;

const WORDS: &[&str] = &[
    "river", "castle", "violin", "harbour", "glacier", "orchard", "comet", "lantern", "meadow", "falcon", "copper", "island", "temple", "desert",
    "forest", "bridge", "garden", "mountain", "engine", "library", "market", "planet", "signal", "theatre",
];

/// Groups whose positive repeats the query's words and whose negatives are random words.
fn synthetic_groups(n: usize, split: Split, seed: u64) -> Vec<QueryGroup> {
    let mut rng = r2r::util::seeded_rng(seed, 1);
    let mut pick = |k: usize| (0..k).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect::<Vec<_>>().join(" ");
    (0..n)
        .map(|i| {
            let query = pick(3);
            let mut candidates = vec![Candidate { id: "p".into(), text: format!("the {query} and the {}", pick(3)), relevance: 1, entities: vec![] }];
            candidates.extend((0..5).map(|j| Candidate { id: format!("n{j}"), text: format!("the {} and the {}", pick(3), pick(3)), relevance: 0, entities: vec![] }));
            QueryGroup { id: format!("{split}-{i}"), domain: "general".into(), split, query, query_entities: vec![], candidates, secondary_domain: None, meta: Default::default() }
        })
        .collect()
}

fn texts(groups: &[QueryGroup]) -> Vec<String> {
    let template = PromptTemplate::default();
    let mut texts: Vec<String> = [template.prefix, template.body, template.suffix, template.default_instruction].into_iter().cycle().take(40).collect();
    texts.extend(groups.iter().flat_map(|g| std::iter::once(g.query.clone()).chain(g.candidates.iter().map(|c| c.text.clone()))));
    texts
}

fn tiny_config() -> PretrainConfig {
    PretrainConfig {
        vocab_size: 400,
        hidden_size: 32,
        num_layers: 2,
        num_heads: 2,
        num_kv_heads: 1,
        head_dim: 16,
        intermediate_size: 64,
        max_length: 200,
        tokenizer_texts: 2000,
        lm_steps: 3,
        rank_steps: 6,
        lm_batch: 2,
        lm_seq_len: 16,
        groups_per_step: 2,
        candidates_per_group: 4,
        warmup_steps: 2,
        dev_evals: 2,
        lexical_init: false,
        eval_at_start: false,
        ..PretrainConfig::default()
    }
}

#[test]
fn tokenizer_training_gives_chat_tokens_and_single_token_answers() {
    let groups = synthetic_groups(30, Split::Train, 1);
    let tok = train_tokenizer(texts(&groups).iter(), 400).unwrap();
    for word in ["yes", "no"] {
        let ids = tok.encode(word, false).unwrap();
        assert_eq!(ids.get_ids().len(), 1, "{word:?} is not one token");
        assert_eq!(tok.token_to_id(word), Some(ids.get_ids()[0]));
    }
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"] {
        let ids = tok.encode(format!("a {special} b"), false).unwrap();
        let id = tok.token_to_id(special).unwrap_or_else(|| panic!("{special} missing"));
        assert!(ids.get_ids().contains(&id), "{special} is not kept whole");
    }
    assert!(tok.get_vocab_size(true) <= 400 + 4);
    let again = train_tokenizer(texts(&groups).iter(), 400).unwrap();
    assert_eq!(tok.to_string(false).unwrap(), again.to_string(false).unwrap(), "tokenizer training is not deterministic");
    // Byte-level: any text round-trips.
    let text = "Zürich 1848 — naïve café";
    assert_eq!(tok.decode(tok.encode(text, false).unwrap().get_ids(), false).unwrap(), text);
}

/// Losses of `steps` optimiser steps on one fixed batch from a seeded tiny model.
fn train_losses(seed: u64, steps: usize) -> Vec<f64> {
    let groups = synthetic_groups(20, Split::Train, 2);
    let tok = train_tokenizer(texts(&groups).iter(), 400).unwrap();
    let cfg = tiny_config();
    let prompt = PromptEncoder::new(tok.clone(), PromptTemplate { max_length: cfg.max_length, ..Default::default() }, Path::new("mem")).unwrap();
    let config = ModelConfig::from_json(&cfg.config_json(tok.get_vocab_size(true), prompt.pad_id, prompt.pad_id).to_string()).unwrap();
    let model = TrainableBackbone::init(config, seed, &TieInit { layers: 1, content_only: true, norm_weight: 0.6 }, &Device::Cpu).unwrap();
    let passages: Vec<&str> = groups.iter().flat_map(|g| g.candidates.iter().map(|c| c.text.as_str())).collect();
    let teacher = Bm25Index::new(&passages, Bm25Params::default());
    let maker = ExampleMaker { prompt: &prompt, tokenizer: &tok, teacher: &teacher, groups: &groups, after_doc: prompt.suffix_ids().len() };
    let mut rng = r2r::util::seeded_rng(seed, 3);
    let examples: Vec<_> = (0..3).map(|i| maker.make(i, 4, 2, 0.5, 0.5, &mut rng).unwrap()).collect();
    for ex in &examples {
        assert!((ex.target.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(ex.target[0] >= 0.5, "the positive holds at least the label weight");
    }
    let vars = model.all_vars();
    let mut opt = AdamW::new(vars.clone(), ParamsAdamW { lr: 3e-3, ..Default::default() }).unwrap();
    (0..steps)
        .map(|_| {
            let reranker = Reranker::from_parts(model.transformer(false).unwrap(), prompt.clone(), Path::new("mem")).unwrap();
            let loss = rank_loss(&reranker, model.log_scale.as_tensor(), &examples).unwrap();
            optimise(&loss, &vars, &mut opt, 1.0).unwrap()
        })
        .collect()
}

#[test]
fn a_few_steps_lower_the_loss_and_are_deterministic() {
    let losses = train_losses(5, 12);
    assert!(losses[11] < losses[0] * 0.9, "loss did not fall: {losses:?}");
    assert_eq!(train_losses(5, 12), losses, "same seed, different losses");
    assert_ne!(train_losses(6, 2)[0], losses[0], "the seed does not reach the init");
}

#[test]
fn mixed_target_weights_teacher_and_label() {
    let t = mixed_target(&[3.0, 0.0, 0.0], 0.0, 1.0);
    assert!(t[0] > t[1] && (t[1] - t[2]).abs() < 1e-7);
    let flat = mixed_target(&[1.0, 1.0, 1.0, 1.0], 0.2, 0.5);
    assert!((flat[0] - (0.2 + 0.8 / 4.0)).abs() < 1e-6 && (flat[3] - 0.2).abs() < 1e-6, "{flat:?}");
}

#[test]
fn a_tiny_pretraining_run_saves_a_loadable_deterministic_model() {
    let corpus = Corpus { train: synthetic_groups(40, Split::Train, 3), dev: synthetic_groups(5, Split::Dev, 4), test: synthetic_groups(5, Split::Test, 5) };
    let run = |dir: &Path| {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let ctx = JobContext::new(tx, Default::default(), None);
        pretrain(&corpus, &tiny_config(), dir, &ctx).unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let report = run(a.path());
    assert_eq!((report.lm_steps_done, report.rank_steps_done), (3, 6));
    assert!(report.test.is_some() && report.dev.model.is_some());
    run(b.path());
    for file in ["model.safetensors", "tokenizer.json", "config.json"] {
        assert_eq!(std::fs::read(a.path().join(file)).unwrap(), std::fs::read(b.path().join(file)).unwrap(), "{file} differs between runs");
    }
    let reranker = Reranker::load(a.path(), &LoadOptions::default()).unwrap();
    let scores = reranker.score(&[ScoreRequest { instruction: None, query: "river castle".into(), document: "the river castle".into() }], None, &ScoreOptions::default()).unwrap();
    assert!(scores[0].score > 0.0 && scores[0].score < 1.0);
}

#[test]
fn the_committed_backbone_loads_and_scores() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/backbone");
    if !dir.join("model.safetensors").is_file() {
        common::missing(&format!("{}/model.safetensors", dir.display()));
        return;
    }
    let size: u64 = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(size <= 25 * 1024 * 1024, "assets/backbone is {size} bytes (limit 25 MB)");
    let reranker = Reranker::load(&dir, &LoadOptions::default()).unwrap();
    let query = "when was the eiffel tower built";
    let docs = ["The Eiffel Tower was built between 1887 and 1889 as the entrance to the 1889 World's Fair in Paris.", "Photosynthesis converts light energy into chemical energy in plants."];
    let requests: Vec<ScoreRequest> = docs.iter().map(|d| ScoreRequest { instruction: None, query: query.into(), document: d.to_string() }).collect();
    let scores = reranker.score(&requests, None, &ScoreOptions::default()).unwrap();
    assert!(scores.iter().all(|s| s.score.is_finite() && s.score > 0.0 && s.score < 1.0), "{scores:?}");
    assert!(scores[0].yes_logit - scores[0].no_logit > scores[1].yes_logit - scores[1].no_logit, "the matching passage should score higher: {scores:?}");
}

/// The sample data's `general` test groups (skipped when the committed files are absent).
fn sample_general_groups(n: usize) -> Option<Vec<QueryGroup>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
    let dataset = r2r::data::load(&path, &r2r::data::LoadOptions::default()).ok()?;
    Some(dataset.select(Some("general"), Some(Split::Test)).take(n).cloned().collect())
}

#[test]
fn the_committed_backbone_is_margin_calibrated() {
    // InfoNCE on the probability score sigmoid(yes − no) needs margins near 0: far below zero its slope vanishes.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/backbone");
    let (Some(groups), true) = (sample_general_groups(12), dir.join("model.safetensors").is_file()) else {
        common::missing("assets/backbone or sample_data");
        return;
    };
    let reranker = Reranker::load(&dir, &LoadOptions::default()).unwrap();
    let (_, margins, _) = r2r::backbone::calibrate::hidden_and_margins(&reranker, &groups).unwrap();
    let stats = r2r::backbone::calibrate::MarginStats::of(&margins);
    assert!(stats.mean.abs() < 3.0 && stats.mean_sigmoid_slope > 0.05, "margins are not calibrated: {stats:?}");
}

#[test]
fn calibration_moves_the_mean_margin_and_keeps_rankings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/backbone");
    let (Some(groups), true) = (sample_general_groups(10), dir.join("model.safetensors").is_file()) else {
        common::missing("assets/backbone or sample_data");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let report = r2r::backbone::calibrate::calibrate(&dir, out.path(), &groups, -4.0, 0.1).unwrap();
    assert!((report.before.mean + 4.0).abs() > 1.0, "the committed model already sits at the target: {report:?}");
    assert!((report.after.mean + 4.0).abs() < 0.5, "mean margin not moved to −4: {report:?}");
    assert!(report.pair_order_kept > 0.95, "calibration reordered candidates: {report:?}");
    // The written model loads and reproduces the measured margins.
    let calibrated = Reranker::load(out.path(), &LoadOptions::default()).unwrap();
    let (_, margins, _) = r2r::backbone::calibrate::hidden_and_margins(&calibrated, &groups).unwrap();
    let mean = margins.iter().sum::<f64>() / margins.len() as f64;
    assert!((mean - report.after.mean).abs() < 1e-4, "{mean} vs {}", report.after.mean);
    // A model directory without weights is refused with its path.
    let empty = tempfile::tempdir().unwrap();
    let err = format!("{:#}", r2r::backbone::calibrate::calibrate(empty.path(), out.path(), &groups, 0.0, 0.1).unwrap_err());
    assert!(err.contains(&empty.path().display().to_string()), "{err}");
}

#[test]
fn a_safetensors_file_whose_first_byte_is_0x80_is_not_taken_for_a_pickle() {
    use r2r::model::checkpoint::{read_safetensors, write_safetensors};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let tensor = candle_core::Tensor::ones((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
    // Grow the metadata until the header length's low byte (the file's first byte) is 0x80.
    let found = (0..300).any(|pad| {
        let meta = std::collections::HashMap::from([("pad".to_string(), "x".repeat(pad))]);
        write_safetensors(&path, &std::collections::BTreeMap::from([("w".to_string(), tensor.clone())]), Some(meta)).unwrap();
        std::fs::read(&path).unwrap()[0] == 0x80
    });
    assert!(found, "could not build the case");
    let back = read_safetensors(&path, candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(back[0].0, "w");
}

#[test]
fn the_lexical_init_ranks_overlapping_passages_first_before_any_training() {
    use r2r::backbone::{evaluate_groups, lexical_init};
    let groups = synthetic_groups(30, Split::Train, 8);
    let tok = train_tokenizer(texts(&groups).iter(), 700).unwrap();
    let marker: Vec<String> = tok.encode("\n<Document>:", false).unwrap().get_tokens().to_vec();
    let cfg = PretrainConfig { hidden_size: 96, num_layers: 3, num_heads: 2, num_kv_heads: 1, head_dim: 16, intermediate_size: 32, ..tiny_config() };
    let prompt = PromptEncoder::new(tok.clone(), PromptTemplate { max_length: cfg.max_length, ..Default::default() }, Path::new("mem")).unwrap();
    let config = ModelConfig::from_json(&cfg.config_json(tok.get_vocab_size(true), prompt.pad_id, prompt.pad_id).to_string()).unwrap();
    let model = TrainableBackbone::init(config, 1, &TieInit::NONE, &Device::Cpu).unwrap();
    let reranker = |m: &TrainableBackbone| Reranker::from_parts(m.transformer(true).unwrap(), prompt.clone(), Path::new("mem")).unwrap();
    let random_init = evaluate_groups(Some(&reranker(&model)), &groups, 1, &mut |_| Ok(())).unwrap();
    lexical_init::apply(&model, &prompt, &tok, 1).unwrap_or_else(|e| panic!("{e}; marker tokens {marker:?}"));
    let lexical = evaluate_groups(Some(&reranker(&model)), &groups, 1, &mut |_| Ok(())).unwrap();
    let (r, l) = (random_init.model.unwrap().ndcg10, lexical.model.unwrap().ndcg10);
    assert!(l > 0.9 && l > r + 0.2, "lexical init NDCG@10 {l:.3}, random init {r:.3}, BM25 {:.3}", lexical.bm25.ndcg10);
}
