//! `r2r ner`: build NER sets from public corpora (`build`), train a head on the frozen backbone
//! (`train`, with a layer × right-context sweep measured on the dev split), and score a head on a NER
//! set (`eval`: micro P/R/F1, exact span and type, greedy vs constrained decoding).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::data::{LoadOptions, Split};
use crate::model::Reranker;
use crate::ner::corpus::{self, Sentence};
use crate::ner::head::{HeadMeta, LearnedTransitions, NerHead, TrainSettings};
use crate::ner::{decode_head, score_head, sentence_states, training_matrix, tune_thresholds, Decoding, SentenceStates};

#[derive(Debug, Args)]
pub struct NerArgs {
    #[command(subcommand)]
    pub command: NerCommand,
}

#[derive(Debug, Subcommand)]
pub enum NerCommand {
    /// Build train/dev/test NER sets from the corpora of assets/ner/corpora.json (pinned commits of
    /// their GitHub snapshots) into the native dataset format.
    Build(BuildArgs),
    /// Train a token-classification head on a NER set's training split.
    Train(TrainArgs),
    /// Score a head on a NER set (micro P/R/F1, exact span and type).
    Eval(EvalArgs),
    /// Choose a head's per-type confidence thresholds on dev sentences (the dev sentences its training
    /// recorded, by default) and write them into its head.json.
    Tune(TuneArgs),
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Directory holding the corpora's repository snapshots (`owner+name/repo` mirrors or `owner/name`
    /// checkouts); default $R2R_SNAPSHOTS_DIR.
    #[arg(long)]
    pub snapshots: Option<PathBuf>,
    /// Output directory (a folder per corpus with train/dev/test.jsonl).
    #[arg(long, default_value = "data/ner")]
    pub out: PathBuf,
    /// Corpora to build (default: all of the registry).
    #[arg(long = "corpus")]
    pub corpora: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Corpus name of the registry (its sets are read from `--data/<corpus>/`).
    #[arg(long)]
    pub corpus: String,
    #[arg(long, default_value = "data/ner")]
    pub data: PathBuf,
    /// Backbone (model directory, GGUF, `gemma-3-270m`, or `auto` = the default backbone).
    #[arg(long, default_value = "auto")]
    pub backbone: PathBuf,
    /// Residual layer(s) to read (comma-separated: a sweep, the best on dev is kept).
    #[arg(long, value_delimiter = ',', default_value = "9")]
    pub layers: Vec<usize>,
    /// Right-context token counts to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub right_contexts: Vec<usize>,
    /// Hidden-layer widths to try (comma-separated; 0 = a linear tagger).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub hidden: Vec<usize>,
    /// Keep only the last N dev sentences for the sweep and the threshold and train on the rest of the
    /// dev split too (0 = train on the training split only).
    #[arg(long, default_value_t = 0)]
    pub dev_holdout: usize,
    /// Training sentences used (the first N of the training split; 0 = all).
    #[arg(long, default_value_t = 3000)]
    pub train_sentences: usize,
    /// Dev sentences the sweep and the threshold are measured on.
    #[arg(long, default_value_t = 500)]
    pub dev_sentences: usize,
    #[arg(long, default_value_t = 128)]
    pub max_tokens: usize,
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
    /// Expert corrections (the Abstraction panel's file): added surfaces become mentions and
    /// "not an entity" surfaces stop being mentions in the training sentences.
    #[arg(long)]
    pub corrections: Option<PathBuf>,
    /// Where the head is written (default assets/ner/heads/<corpus>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Head directory (head.json + head.safetensors).
    #[arg(long)]
    pub head: PathBuf,
    /// NER set (native JSONL with gold spans); default: the head's corpus test split under data/ner.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Sentences scored (the first N; 0 = all).
    #[arg(long, default_value_t = 0)]
    pub sentences: usize,
    /// Backbone (default: the one the head records).
    #[arg(long)]
    pub backbone: Option<PathBuf>,
    /// One confidence threshold for every type instead of the head's.
    #[arg(long)]
    pub threshold: Option<f32>,
}

#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Head directory (head.json + head.safetensors); its head.json is rewritten.
    #[arg(long)]
    pub head: PathBuf,
    /// Where the head's corpus sets are (`<data>/<corpus>/dev.jsonl`).
    #[arg(long, default_value = "data/ner")]
    pub data: PathBuf,
    /// A dev set to tune on instead (native JSONL with gold spans; the first --sentences of it).
    #[arg(long)]
    pub dev: Option<PathBuf>,
    /// Dev sentences (default: the number the head's training measured on).
    #[arg(long)]
    pub sentences: Option<usize>,
    /// Also measure learned tag transitions in Viterbi (bigrams of the training split's first
    /// `train_sentences`, weights 0.5 and 1) on dev. Measured only: on the realdata coverage they cost far
    /// more recall out of domain than they gain on dev (docs/ner.md); `--keep-transitions` writes them
    /// when they raise dev micro-F1.
    #[arg(long)]
    pub transitions: bool,
    #[arg(long, requires = "transitions")]
    pub keep_transitions: bool,
    /// Print the thresholds without writing head.json.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: NerArgs) -> Result<()> {
    match args.command {
        NerCommand::Build(a) => run_build(a),
        NerCommand::Train(a) => run_train(a),
        NerCommand::Eval(a) => run_eval(a),
        NerCommand::Tune(a) => run_tune(a),
    }
}

fn run_build(args: BuildArgs) -> Result<()> {
    let snapshots = args
        .snapshots
        .or_else(|| std::env::var_os("R2R_SNAPSHOTS_DIR").map(PathBuf::from))
        .context("name the snapshots directory: --snapshots DIR or R2R_SNAPSHOTS_DIR (scripts/build-ner-data.sh clones them)")?;
    let all = corpus::corpora()?;
    let names: Vec<String> = if args.corpora.is_empty() { all.keys().cloned().collect() } else { args.corpora.clone() };
    for name in &names {
        let spec = all.get(name).with_context(|| format!("unknown corpus `{name}` (known: {:?})", all.keys().collect::<Vec<_>>()))?;
        for (split, sentences, mentions) in corpus::build(name, spec, &snapshots, &args.out)? {
            println!("{name:<13} {:<5} {sentences:>6} sentences {mentions:>6} mentions → {}", split.as_str(), args.out.join(name).join(format!("{}.jsonl", split.as_str())).display());
        }
    }
    Ok(())
}

/// The sentences of a NER set file, optionally only the first `limit` (0 = all).
pub fn read_sentences(path: &Path, limit: usize) -> Result<Vec<Sentence>> {
    let dataset = crate::data::load(path, &LoadOptions::default()).with_context(|| format!("loading the NER set {} (build it with `r2r ner build`)", path.display()))?;
    let mut sentences = corpus::sentences_of(&dataset.groups);
    if limit > 0 {
        sentences.truncate(limit);
    }
    Ok(sentences)
}

fn set_path(data: &Path, corpus: &str, split: Split) -> PathBuf {
    data.join(corpus).join(format!("{}.jsonl", split.as_str()))
}

fn featurise(backbone: &Reranker, what: &str, sentences: Vec<Sentence>, layer: usize, max_tokens: usize) -> Result<SentenceStates> {
    let start = Instant::now();
    let n = sentences.len();
    let out = sentence_states(backbone, sentences, layer, max_tokens, |done, total| {
        eprint!("\r{what}: layer {layer}: {done}/{total} sentences");
        Ok(())
    })?;
    let tokens: usize = out.states.iter().map(|s| s.1.len()).sum();
    eprintln!("\r{what}: layer {layer}: {n} sentences, {tokens} tokens in {:.1} s ({:.0} tokens/s)", start.elapsed().as_secs_f64(), tokens as f64 / start.elapsed().as_secs_f64());
    Ok(out)
}

/// Applies expert corrections to training sentences: every occurrence of an added surface that the
/// recogniser's own correction gazetteer finds (its matching rules: word boundaries, case) and that
/// overlaps no mention becomes a mention of its type, leftmost and longest first; mentions whose surface
/// is marked "not an entity" are removed. Returns (added, removed).
pub fn apply_corrections(sentences: &mut [Sentence], corrections: &crate::abstraction::Corrections) -> Result<(usize, usize)> {
    use crate::abstraction::gazetteer::Gazetteer;
    use crate::abstraction::recognizer::PRIORITY_CORRECTION;
    let entries = corrections.gazetteer_entries();
    let types: std::collections::BTreeSet<String> = entries.iter().map(|e| e.label.clone()).collect();
    let gazetteer = Gazetteer::new("correction", PRIORITY_CORRECTION, entries)?;
    let (mut added, mut removed) = (0, 0);
    for s in sentences.iter_mut() {
        let before = s.spans.len();
        let text = &s.text;
        s.spans.retain(|sp| !corrections.rejects(&text[sp.start..sp.end], &sp.label));
        removed += before - s.spans.len();
        let mut found = Vec::new();
        gazetteer.find(text, &types, &mut found);
        found.sort_by_key(|d| (d.start, std::cmp::Reverse(d.end)));
        for d in found {
            if !s.spans.iter().any(|sp| sp.start < d.end && d.start < sp.end) {
                s.spans.push(crate::data::EntitySpan { start: d.start, end: d.end, label: d.label });
                added += 1;
            }
        }
        s.spans.sort();
    }
    Ok((added, removed))
}

fn run_train(args: TrainArgs) -> Result<()> {
    let all = corpus::corpora()?;
    let spec = all.get(&args.corpus).with_context(|| format!("unknown corpus `{}` (known: {:?})", args.corpus, all.keys().collect::<Vec<_>>()))?;
    let types: Vec<String> = spec.annotated_types().into_iter().collect();
    let mut train = read_sentences(&set_path(&args.data, &args.corpus, Split::Train), args.train_sentences)?;
    let mut dev = read_sentences(&set_path(&args.data, &args.corpus, Split::Dev), if args.dev_holdout > 0 { 0 } else { args.dev_sentences })?;
    if args.dev_holdout > 0 {
        if args.dev_holdout >= dev.len() {
            bail!("--dev-holdout {} leaves none of the {} dev sentences to train on", args.dev_holdout, dev.len());
        }
        let held = dev.split_off(dev.len() - args.dev_holdout);
        train.append(&mut dev);
        dev = held;
    }
    if let Some(path) = &args.corrections {
        let corrections = crate::abstraction::Corrections::load(path, &crate::abstraction::EntitySchema::bundled())?;
        let (added, removed) = apply_corrections(&mut train, &corrections)?;
        println!("corrections {}: {added} mentions added, {removed} removed in the training sentences", path.display());
    }
    let backbone_path = crate::model::default_backbone::resolve(&args.backbone);
    let backbone = Reranker::load(&backbone_path, &crate::model::LoadOptions::default()).with_context(|| format!("loading the backbone {}", backbone_path.display()))?;
    let hidden = backbone.config().hidden_size;
    let settings = TrainSettings { epochs: args.epochs, learning_rate: args.lr, seed: args.seed, ..Default::default() };
    let backbone_ref = crate::routing::BackboneRef { path: backbone_path.clone(), sha256: Some(crate::train::features::backbone_fingerprint(&backbone_path)?) };
    println!("{}: {} training / {} dev sentences, types {types:?}, backbone {}", args.corpus, train.len(), dev.len(), backbone_path.display());
    let mut best: Option<(f64, NerHead)> = None;
    for &layer in &args.layers {
        let train_states = featurise(&backbone, "train", train.clone(), layer, args.max_tokens)?;
        let dev_states = featurise(&backbone, "dev", dev.clone(), layer, args.max_tokens)?;
        for (&rc, &hidden_width) in args.right_contexts.iter().flat_map(|rc| args.hidden.iter().map(move |h| (rc, h))) {
            let meta = HeadMeta {
                name: args.corpus.clone(),
                domain: spec.domain.clone(),
                backbone: backbone_ref.clone(),
                hidden_size: hidden,
                layer,
                right_context: rc,
                max_tokens: args.max_tokens,
                hidden: hidden_width,
                types: types.clone(),
                thresholds: Default::default(),
                training: Default::default(),
                transitions: None,
            };
            let (x, y) = training_matrix(&train_states, &types, rc)?;
            let start = Instant::now();
            let mut head = NerHead::train(meta, &x, &y, &settings, |epoch, loss| {
                eprint!("\r  layer {layer} right context {rc} hidden {hidden_width}: epoch {epoch}/{} loss {loss:.4}", settings.epochs);
                Ok(())
            })?;
            eprintln!();
            let (greedy, _) = score_head(&head, &dev_states, Decoding::Greedy, Some(0.0))?;
            let decoded = decode_head(&head, &dev_states, Decoding::Viterbi)?;
            let (viterbi, _) = decoded.score(|_| 0.0);
            // Confidence thresholds that maximise dev F1 (Viterbi): one for all types, and one per type.
            let tuned = tune_thresholds(&decoded);
            let (thresholds, dev_f1) = tuned.chosen(&types);
            println!(
                "layer {layer:>2} right context {rc} hidden {hidden_width}: dev micro-F1 greedy {:.4}, BIO-constrained Viterbi {:.4}, with threshold {:.1} {:.4}, per-type thresholds {:?} {:.4} ({} tokens, {:.1} s)",
                greedy.f1,
                viterbi.f1,
                tuned.single.0,
                tuned.single.1,
                tuned.per_type.0,
                tuned.per_type.1,
                y.len(),
                start.elapsed().as_secs_f64()
            );
            head.meta.thresholds = thresholds;
            head.meta.training = [
                ("corpus", serde_json::json!(args.corpus)),
                ("commit", serde_json::json!(spec.commit)),
                ("train_sentences", serde_json::json!(train.len())),
                ("train_tokens", serde_json::json!(y.len())),
                ("dev_sentences", serde_json::json!(dev.len())),
                ("dev_holdout", serde_json::json!(args.dev_holdout > 0)),
                ("epochs", serde_json::json!(args.epochs)),
                ("learning_rate", serde_json::json!(args.lr)),
                ("seed", serde_json::json!(args.seed)),
                ("dev_f1_greedy", serde_json::json!(greedy.f1)),
                ("dev_f1_viterbi", serde_json::json!(viterbi.f1)),
                ("dev_f1", serde_json::json!(dev_f1)),
                ("dev_f1_single_threshold", serde_json::json!(tuned.single.1)),
                ("corrections", serde_json::json!(args.corrections.as_ref().map(|p| p.display().to_string()))),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            if best.as_ref().is_none_or(|(f1, _)| dev_f1 > *f1) {
                best = Some((dev_f1, head));
            }
        }
    }
    let (f1, head) = best.context("no layer or right context given")?;
    let out = args.out.unwrap_or_else(|| PathBuf::from("assets/ner/heads").join(&args.corpus));
    head.save(&out)?;
    println!("kept layer {} right context {} hidden {} (dev micro-F1 {f1:.4}) → {}", head.meta.layer, head.meta.right_context, head.meta.hidden, out.display());
    Ok(())
}

fn run_eval(args: EvalArgs) -> Result<()> {
    // Loads the head and its backbone once (checked against each other).
    let recognizer = crate::ner::learned::LearnedRecognizer::load(std::slice::from_ref(&args.head), args.backbone.as_deref())?;
    let head = &recognizer.heads()[0];
    let data = match (&args.data, head.meta.corpus()) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => set_path(Path::new("data/ner"), c, Split::Test),
        (None, None) => bail!("the head records no corpus: name the NER set with --data"),
    };
    let sentences = read_sentences(&data, args.sentences)?;
    let states = featurise(recognizer.backbone(), "test", sentences, head.meta.layer, head.meta.max_tokens)?;
    println!("head {} (layer {}, right context {}) on {} ({} sentences; exact span and type)", args.head.display(), head.meta.layer, head.meta.right_context, data.display(), states.sentences.len());
    for (name, decoding) in [("greedy", Decoding::Greedy), ("viterbi", Decoding::Viterbi)] {
        let (overall, per_type) = score_head(head, &states, decoding, args.threshold)?;
        println!("{name:<8} micro  P {:.4} R {:.4} F1 {:.4} (TP {} FP {} FN {})", overall.precision, overall.recall, overall.f1, overall.true_positives, overall.false_positives, overall.false_negatives);
        for (t, s) in per_type {
            println!("         {t:<13} P {:.4} R {:.4} F1 {:.4} (TP {} FP {} FN {})", s.precision, s.recall, s.f1, s.true_positives, s.false_positives, s.false_negatives);
        }
    }
    Ok(())
}

/// The dev sentences a head's training measured on: the first `dev_sentences` of its corpus's dev split,
/// or, when training held dev sentences out (`dev_holdout`), the last `dev_sentences` of it.
fn recorded_dev_sentences(head: &NerHead, data: &Path, sentences: Option<usize>) -> Result<(PathBuf, Vec<Sentence>)> {
    let training = &head.meta.training;
    let corpus_name = head.meta.corpus().context("the head records no corpus: name a dev set with --dev")?;
    let path = set_path(data, corpus_name, Split::Dev);
    let n = match sentences.or_else(|| training.get("dev_sentences").and_then(|v| v.as_u64()).map(|n| n as usize)) {
        Some(n) if n > 0 => n,
        _ => bail!("the head records no dev_sentences: give --sentences N"),
    };
    let holdout = training.get("dev_holdout").and_then(|v| v.as_bool()).unwrap_or(false);
    let mut all = read_sentences(&path, if holdout { 0 } else { n })?;
    if holdout {
        all = all.split_off(all.len().saturating_sub(n));
    }
    Ok((path, all))
}

/// Tag-bigram transitions of a head's training sentences (the first `train_sentences` of its corpus's
/// training split), tagged through the backbone's tokenizer as training tags them.
fn training_transitions(recognizer: &crate::ner::learned::LearnedRecognizer, head: &NerHead, data: &Path) -> Result<Vec<Vec<f32>>> {
    let training = &head.meta.training;
    let corpus_name = head.meta.corpus().context("the head records no corpus")?;
    let n = training.get("train_sentences").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
    let sentences = read_sentences(&set_path(data, corpus_name, Split::Train), n)?;
    let mut sequences = Vec::with_capacity(sentences.len());
    for s in &sentences {
        let (_, mut offsets) = recognizer.backbone().prompt.encode_with_offsets(&s.text)?;
        offsets.truncate(head.meta.max_tokens);
        sequences.push(crate::ner::head::token_tags(&s.text, &offsets, &s.spans, &head.meta.types));
    }
    println!("  transitions from {} training sentences of {corpus_name}", sentences.len());
    Ok(crate::ner::head::transition_log_probs(sequences.iter().map(Vec::as_slice), head.meta.tags()))
}

fn run_tune(args: TuneArgs) -> Result<()> {
    let recognizer = crate::ner::learned::LearnedRecognizer::load(std::slice::from_ref(&args.head), None)?;
    let head = &recognizer.heads()[0];
    let (path, sentences) = match &args.dev {
        Some(dev) => (dev.clone(), read_sentences(dev, args.sentences.unwrap_or(0))?),
        None => recorded_dev_sentences(head, &args.data, args.sentences)?,
    };
    if sentences.is_empty() {
        bail!("{}: no dev sentences to tune on", path.display());
    }
    let states = featurise(recognizer.backbone(), "dev", sentences, head.meta.layer, head.meta.max_tokens)?;
    println!("head {} on {} ({} sentences, Viterbi):", args.head.display(), path.display(), states.sentences.len());
    let mut options = vec![("constrained", None)];
    if args.transitions {
        let transitions = training_transitions(&recognizer, head, &args.data)?;
        options.extend([0.5f32, 1.0].map(|weight| ("learned transitions", Some(LearnedTransitions { log_probs: transitions.clone(), weight }))));
    }
    // Each decoding with its own tuned thresholds; the best dev micro-F1 is kept (ties: the simpler).
    let mut best: Option<(f64, crate::ner::head::HeadMeta)> = None;
    for (name, transitions) in options {
        let mut meta = HeadMeta { transitions, ..head.meta.clone() };
        let decoded = crate::ner::decode_head_with(head, &meta, &states, Decoding::Viterbi)?;
        let (before, _) = decoded.score(|label| head.meta.threshold(label));
        let tuned = tune_thresholds(&decoded);
        let (thresholds, f1) = tuned.chosen(&head.meta.types);
        let weight = meta.transitions.as_ref().map(|t| format!(" (weight {})", t.weight)).unwrap_or_default();
        println!("  {name}{weight}:");
        println!("    current thresholds {:?}: dev micro-F1 {:.4}", head.meta.thresholds, before.f1);
        println!("    one threshold {:.1}: {:.4}", tuned.single.0, tuned.single.1);
        println!("    per type {:?}: {:.4}", tuned.per_type.0, tuned.per_type.1);
        meta.thresholds = thresholds;
        meta.training.insert("dev_f1_single_threshold".into(), serde_json::json!(tuned.single.1));
        let eligible = meta.transitions.is_none() || args.keep_transitions;
        if eligible && best.as_ref().is_none_or(|(b, _)| f1 > *b + 1e-9) {
            best = Some((f1, meta));
        }
    }
    let (f1, mut meta) = best.context("no decoding measured")?;
    println!("  kept {}thresholds {:?} (dev micro-F1 {f1:.4})", if meta.transitions.is_some() { "learned transitions and " } else { "" }, meta.thresholds);
    if args.dry_run {
        return Ok(());
    }
    meta.training.insert("dev_f1".into(), serde_json::json!(f1));
    meta.training.insert("thresholds_tuned_on".into(), serde_json::json!(format!("{} ({} sentences)", path.display(), states.sentences.len())));
    let file = args.head.join(crate::ner::head::META_FILE);
    crate::util::atomic_write_json(&file, &meta)?;
    println!("wrote {}", file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abstraction::{Corrections, EntitySchema};
    use crate::data::EntitySpan;

    #[test]
    fn corrections_add_whole_word_mentions_and_drop_rejected_ones() {
        let schema = EntitySchema::bundled();
        let mut corrections = Corrections::default();
        corrections.add_to_gazetteer(&schema, "DRUG", "semaglutide").unwrap();
        corrections.mark_not_entity(&schema, "Paris", None).unwrap();
        let text = "semaglutide in Paris; semaglutides and semaglutide.".to_string();
        let mut sentences = vec![Sentence { text: text.clone(), spans: vec![EntitySpan { start: 15, end: 20, label: "LOCATION".into() }] }];
        let (added, removed) = apply_corrections(&mut sentences, &corrections).unwrap();
        assert_eq!((added, removed), (2, 1));
        let got: Vec<(&str, &str)> = sentences[0].spans.iter().map(|s| (&text[s.start..s.end], s.label.as_str())).collect();
        assert_eq!(got, [("semaglutide", "DRUG"), ("semaglutide", "DRUG")]);
        assert_eq!(sentences[0].spans[1].start, 39, "the plural is not a whole-word match");
    }
}
