//! Learned entity recognition: the bundled heads (assets/ner/heads) on the Gemma 3 270M generalist score
//! committed slices of the official CoNLL-2003 and BC5CDR test splits (tests/data/ner; the full splits
//! are scored by `r2r ner eval`), run inside the recogniser with their source and confidence, and take bad
//! input without panicking. A head that does not fit its backbone is a clear error.
//!
//! The Gemma tests fail when Gemma 3 270M is not installed (`r2r model fetch gemma-3-270m`, which the
//! README's test command runs), unless R2R_ALLOW_SKIP=1 is set.

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use r2r::abstraction::{EntitySchema, RecognizerBuilder};
use r2r::ner::head::NerHead;
use r2r::ner::learned::{LearnedRecognizer, MAX_TEXT_TOKENS};
use r2r::ner::{score_head, sentence_states, Decoding};

fn head_dir(name: &str) -> PathBuf {
    common::root().join("assets/ner/heads").join(name)
}

/// Every bundled head on its recorded backbone, loaded once for the whole test binary.
fn learned() -> Option<Arc<LearnedRecognizer>> {
    static LOADED: OnceLock<Option<Arc<LearnedRecognizer>>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            if r2r::model::store::installed_path(r2r::model::store::GEMMA_3_270M.name).is_none() {
                return None;
            }
            let heads = r2r::ner::bundled_heads().expect("bundled heads");
            Some(Arc::new(LearnedRecognizer::load(&heads, None).expect("the bundled heads load on their backbone")))
        })
        .clone()
        .or_else(|| {
            common::missing("Gemma 3 270M (r2r model fetch gemma-3-270m)");
            None
        })
}

/// Micro-F1 (exact span and type, BIO-constrained decoding, the head's thresholds) of a bundled head on a
/// committed test slice.
fn slice_f1(head: &str, slice: &str) -> Option<(f64, usize)> {
    let learned = learned()?;
    let head = NerHead::load(&head_dir(head)).unwrap();
    let sentences = r2r::cli::ner::read_sentences(&common::root().join("tests/data/ner").join(slice), 0).unwrap();
    let states = sentence_states(learned.backbone(), sentences, head.meta.layer, head.meta.max_tokens, |_, _| Ok(())).unwrap();
    let (overall, per_type) = score_head(&head, &states, Decoding::Viterbi, None).unwrap();
    eprintln!("{slice}: micro-F1 {:.4} ({} gold); per type {:?}", overall.f1, overall.true_positives + overall.false_negatives, per_type.iter().map(|(t, s)| (t, s.f1)).collect::<Vec<_>>());
    Some((overall.f1, overall.true_positives + overall.false_negatives))
}

#[test]
fn conll2003_head_reaches_the_required_f1_on_a_test_slice() {
    let Some((f1, gold)) = slice_f1("conll2003", "conll2003-test-slice.jsonl") else { return };
    assert!(gold >= 100, "the slice holds {gold} gold mentions");
    assert!(f1 >= 0.80, "CoNLL-2003 (PER, ORG, LOC) test-slice micro-F1 {f1:.4} < 0.80");
}

#[test]
fn bc5cdr_head_reaches_the_required_f1_on_a_test_slice() {
    let Some((f1, gold)) = slice_f1("bc5cdr", "bc5cdr-test-slice.jsonl") else { return };
    assert!(gold >= 100, "the slice holds {gold} gold mentions");
    assert!(f1 >= 0.75, "BC5CDR (chemical/drug, disease) test-slice micro-F1 {f1:.4} < 0.75");
}

#[test]
fn learned_spans_enter_the_recogniser_with_source_confidence_and_threshold() {
    let Some(learned) = learned() else { return };
    let recognizer = RecognizerBuilder::new(EntitySchema::bundled()).without_bundled_gazetteers().learned(Some(learned.clone())).build().unwrap();
    let text = "Angela Merkel met executives of Siemens in Munich to discuss metformin and type 2 diabetes.";
    let found = recognizer.recognize(text, &["general"]);
    let learned_found: Vec<_> = found.iter().filter(|d| d.recogniser.starts_with("learned:")).collect();
    let labels: Vec<(&str, &str)> = learned_found.iter().map(|d| (&text[d.start..d.end], d.label.as_str())).collect();
    assert!(labels.contains(&("Angela Merkel", "PERSON")), "{labels:?}");
    assert!(labels.contains(&("Munich", "LOCATION")), "{labels:?}");
    assert!(learned_found.iter().all(|d| d.score > 0.0 && d.score <= 1.0 && d.priority == r2r::abstraction::recognizer::PRIORITY_LEARNED));
    // A threshold above every confidence drops every learned span; the cached proposals come back after.
    learned.set_threshold_override(Some(1.01));
    assert!(recognizer.recognize(text, &["general"]).iter().all(|d| !d.recogniser.starts_with("learned:")));
    learned.set_threshold_override(None);
    assert_eq!(recognizer.recognize(text, &["general"]), found);
    // A domain's head runs on its own domain's texts only; the general head everywhere.
    assert!(found.iter().all(|d| d.recogniser != "learned:bc5cdr"), "{found:?}");
    let medical = recognizer.recognize(text, &["medical"]);
    assert!(medical.iter().any(|d| d.recogniser == "learned:bc5cdr" && &text[d.start..d.end] == "metformin" && d.label == "DRUG"), "{medical:?}");
    assert!(medical.iter().any(|d| d.recogniser == "learned:conll2003"), "{medical:?}");
}

#[test]
fn bad_input_is_handled_without_a_panic() {
    let Some(learned) = learned() else { return };
    let huge = "The patient took aspirin in Boston. ".repeat(1 << 15); // ≈ 1.2 MB
    let texts = ["", "   \n\t  ", "\u{0}\u{1}\u{7f}\u{200b}", "\u{1F600}\u{1F600} Zürich", huge.as_str()];
    let proposals = learned.propose_all(&texts).unwrap();
    for (text, found) in texts.iter().zip(&proposals) {
        for p in found.iter() {
            assert!(p.start < p.end && p.end <= text.len() && text.is_char_boundary(p.start) && text.is_char_boundary(p.end), "{p:?}");
            assert!(p.confidence.is_finite());
        }
    }
    assert!(proposals[0].is_empty() && proposals[1].is_empty());
    // The 1 MB passage is read up to MAX_TEXT_TOKENS tokens: spans only near its start.
    let last = proposals[4].iter().map(|p| p.end).max().unwrap_or(0);
    assert!(last < MAX_TEXT_TOKENS * 16, "a span ends at byte {last}");
}

#[test]
fn a_head_that_does_not_fit_its_backbone_is_a_clear_error() {
    let scratch = std::env::temp_dir().join(format!("r2r-ner-misfit-{}", std::process::id()));
    let model = common::tiny_model(&scratch);
    let head = head_dir("conll2003");
    let err = LearnedRecognizer::load(std::slice::from_ref(&head), Some(&model)).unwrap_err().to_string();
    assert!(err.contains("hidden size") && err.contains("conll2003"), "{err}");
    let missing = scratch.join("no-head");
    let err = LearnedRecognizer::load(&[missing], Some(&model)).unwrap_err().to_string();
    assert!(err.contains("head.json"), "{err}");
    let _ = std::fs::remove_dir_all(scratch);
}

#[test]
fn stage1_runs_the_learned_heads_when_the_config_asks() {
    if learned().is_none() {
        return;
    }
    let mut config = r2r::train::TrainConfig::default();
    assert!(r2r::train::eag::stage1_recognizer(&config).unwrap().learned().is_none(), "off by default");
    config.stage1.learned_heads = true;
    let recognizer = r2r::train::eag::stage1_recognizer(&config).unwrap();
    let text = "Does Microsoft let users in California download their data?";
    // Before overlap resolution (the legal gazetteer's JURISDICTION wins the tie on "California" after it).
    let found = recognizer.candidates(text, &recognizer.scope(&["legal"]));
    assert!(recognizer.learned().is_some());
    assert!(found.iter().any(|d| d.recogniser.starts_with("learned:") && &text[d.start..d.end] == "California"), "{found:?}");
}
