//! Public NER corpora → the project's data: the registry (`assets/ner/corpora.json`: source repository,
//! pinned commit, licence, files per split, label map onto the entity schema), a CoNLL column reader
//! (IOB1 and IOB2), light detokenisation to natural text with byte-exact gold spans, and the writer of
//! NER sets in the native dataset format (so `r2r abstract eval` and the Abstraction panel's gold mode
//! read them like any dataset).
//!
//! A NER set groups consecutive sentences by 8: the first is the group's query, the others its
//! candidates (all marked relevant: a NER set is not a ranking set); `meta.ner_corpus` names the corpus
//! and `meta.annotated_types` lists the schema types it annotates (only those are scored on it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::data::{Candidate, EntitySpan, QueryGroup, Split};

/// The bundled corpus registry.
pub const CORPORA_JSON: &str = include_str!("../../assets/ner/corpora.json");

/// Sentences per group of a written NER set.
pub const SENTENCES_PER_GROUP: usize = 8;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub token: i32,
    pub tag: i32,
}

/// One corpus of the registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorpusSpec {
    pub domain: String,
    pub description: String,
    pub repo: String,
    pub commit: String,
    pub licence: String,
    pub columns: Columns,
    pub files: BTreeMap<String, String>,
    #[serde(default)]
    pub dev_fraction: Option<f64>,
    pub label_map: BTreeMap<String, Option<String>>,
}

impl CorpusSpec {
    /// The schema types this corpus annotates.
    pub fn annotated_types(&self) -> BTreeSet<String> {
        self.label_map.values().flatten().cloned().collect()
    }
}

#[derive(Debug, Deserialize)]
struct Registry {
    corpora: BTreeMap<String, CorpusSpec>,
}

/// The bundled registry, validated against the bundled schema (tested).
pub fn corpora() -> Result<BTreeMap<String, CorpusSpec>> {
    let registry: Registry = serde_json::from_str(CORPORA_JSON).context("assets/ner/corpora.json")?;
    let schema = crate::abstraction::EntitySchema::bundled();
    for (name, spec) in &registry.corpora {
        for (label, mapped) in &spec.label_map {
            if let Some(t) = mapped.as_ref().filter(|t| !schema.has_type(t)) {
                bail!("assets/ner/corpora.json: corpora.{name}.label_map.{label}: `{t}` is not a type of the entity schema");
            }
        }
        if !spec.files.contains_key("train") || !spec.files.contains_key("test") {
            bail!("assets/ner/corpora.json: corpora.{name}.files: needs `train` and `test`");
        }
    }
    Ok(registry.corpora)
}

/// One annotated sentence: natural text and byte-offset gold spans of schema types.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    pub text: String,
    pub spans: Vec<EntitySpan>,
}

/// Reads CoNLL column text: one token per line, sentences separated by blank lines, `-DOCSTART-` lines
/// skipped; tags in IOB1 or IOB2 (an `I-X` after a token not of type X opens a mention). Labels are
/// mapped with `label_map` (an unknown label is an error naming the line; `null` → not an entity).
pub fn read_conll(text: &str, columns: &Columns, label_map: &BTreeMap<String, Option<String>>, source: &str) -> Result<Vec<Sentence>> {
    let mut sentences = Vec::new();
    let mut tokens: Vec<(String, Option<(bool, String)>)> = Vec::new();
    let flush = |tokens: &mut Vec<(String, Option<(bool, String)>)>, out: &mut Vec<Sentence>| {
        if !tokens.is_empty() {
            out.push(detokenize(tokens));
            tokens.clear();
        }
    };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            flush(&mut tokens, &mut sentences);
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[0] == "-DOCSTART-" {
            flush(&mut tokens, &mut sentences);
            continue;
        }
        let pick = |c: i32| -> Option<&str> {
            let idx = if c < 0 { fields.len() as i32 + c } else { c };
            usize::try_from(idx).ok().and_then(|i| fields.get(i).copied())
        };
        let (Some(token), Some(tag)) = (pick(columns.token), pick(columns.tag)) else {
            bail!("{source}:{}: expected a token and a tag column, found {:?}", i + 1, line);
        };
        let parsed = if tag == "O" {
            None
        } else {
            let Some((prefix, label)) = tag.split_once('-') else { bail!("{source}:{}: tag `{tag}` is not O, B-X or I-X", i + 1) };
            if prefix != "B" && prefix != "I" {
                bail!("{source}:{}: tag `{tag}` is not O, B-X or I-X", i + 1);
            }
            match label_map.get(label) {
                None => bail!("{source}:{}: label `{label}` is not in the corpus's label_map", i + 1),
                Some(None) => None,
                Some(Some(t)) => Some((prefix == "B", t.clone())),
            }
        };
        tokens.push((token.to_string(), parsed));
    }
    flush(&mut tokens, &mut sentences);
    Ok(sentences)
}

fn no_space_before(token: &str) -> bool {
    matches!(token, "," | "." | ";" | ":" | "!" | "?" | ")" | "]" | "}" | "%" | "'s" | "'S" | "n't" | "''" | "'")
}

fn no_space_after(token: &str) -> bool {
    matches!(token, "(" | "[" | "{" | "$" | "``")
}

/// Joins tokens into natural text (no space before closing punctuation, after opening brackets) and
/// turns the (IOB1/IOB2-normalised) tags into byte spans.
fn detokenize(tokens: &[(String, Option<(bool, String)>)]) -> Sentence {
    let mut text = String::new();
    let mut spans: Vec<EntitySpan> = Vec::new();
    let mut open: Option<EntitySpan> = None;
    let mut prev: Option<&str> = None;
    for (token, tag) in tokens {
        if let Some(p) = prev {
            if !no_space_before(token) && !no_space_after(p) {
                text.push(' ');
            }
        }
        let start = text.len();
        text.push_str(token);
        let end = text.len();
        match tag {
            None => spans.extend(open.take()),
            Some((begins, label)) => match open.as_mut() {
                Some(span) if !begins && &span.label == label => span.end = end,
                _ => {
                    spans.extend(open.take());
                    open = Some(EntitySpan { start, end, label: label.clone() });
                }
            },
        }
        prev = Some(token);
    }
    spans.extend(open);
    Sentence { text, spans }
}

/// Groups sentences into native query groups of [`SENTENCES_PER_GROUP`] (a lone last sentence joins the
/// group before it). Errors when fewer than two sentences are given.
pub fn to_groups(corpus: &str, spec: &CorpusSpec, split: Split, sentences: &[Sentence]) -> Result<Vec<QueryGroup>> {
    if sentences.len() < 2 {
        bail!("{corpus} {}: {} sentence(s); a NER set needs at least two", split.as_str(), sentences.len());
    }
    let mut bounds: Vec<(usize, usize)> = (0..sentences.len()).step_by(SENTENCES_PER_GROUP).map(|s| (s, (s + SENTENCES_PER_GROUP).min(sentences.len()))).collect();
    if bounds.len() > 1 && bounds[bounds.len() - 1].1 - bounds[bounds.len() - 1].0 == 1 {
        let last = bounds.pop().expect("two or more");
        bounds.last_mut().expect("one or more").1 = last.1;
    }
    let types: Vec<String> = spec.annotated_types().into_iter().collect();
    let meta = BTreeMap::from([("ner_corpus".to_string(), corpus.to_string()), ("annotated_types".to_string(), types.join(","))]);
    Ok(bounds
        .iter()
        .enumerate()
        .map(|(g, &(s, e))| QueryGroup {
            id: format!("{corpus}-{}-{g:05}", split.as_str()),
            domain: spec.domain.clone(),
            split,
            query: sentences[s].text.clone(),
            query_entities: sentences[s].spans.clone(),
            candidates: (s + 1..e)
                .map(|i| Candidate { id: format!("s{i:06}"), text: sentences[i].text.clone(), relevance: 1, entities: sentences[i].spans.clone() })
                .collect(),
            secondary_domain: None,
            meta: meta.clone(),
        })
        .collect())
}

/// Every (text, gold spans) of NER-set groups, in order (query then candidates).
pub fn sentences_of(groups: &[QueryGroup]) -> Vec<Sentence> {
    groups
        .iter()
        .flat_map(|g| {
            std::iter::once(Sentence { text: g.query.clone(), spans: g.query_entities.clone() })
                .chain(g.candidates.iter().map(|c| Sentence { text: c.text.clone(), spans: c.entities.clone() }))
        })
        .collect()
}

/// The schema types a dataset's groups say they annotate (`meta.annotated_types`), or None when no group
/// says (an ordinary dataset: every type is scored).
pub fn annotated_types(groups: &[QueryGroup]) -> Option<BTreeSet<String>> {
    let mut out: Option<BTreeSet<String>> = None;
    for g in groups {
        if let Some(list) = g.meta.get("annotated_types") {
            out.get_or_insert_with(BTreeSet::new).extend(list.split(',').filter(|t| !t.is_empty()).map(str::to_string));
        }
    }
    out
}

/// Where a repository's snapshot lies under `snapshots`: `owner+name/repo` (a bare mirror), `owner+name`,
/// or `owner/name` (a checkout or a bare clone).
pub fn snapshot_dir(snapshots: &Path, repo: &str) -> Option<PathBuf> {
    let flat = repo.replace('/', "+");
    [snapshots.join(&flat).join("repo"), snapshots.join(&flat), snapshots.join(repo)].into_iter().find(|d| d.is_dir())
}

/// A file at a pinned commit of a git snapshot (`git show COMMIT:PATH`).
pub fn read_pinned(git_dir: &Path, commit: &str, path: &str) -> Result<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(git_dir)
        .args(["show", &format!("{commit}:{path}")])
        .output()
        .with_context(|| format!("running git in {}", git_dir.display()))?;
    if !out.status.success() {
        bail!("{}: cannot read {path} at commit {commit}: {}", git_dir.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    String::from_utf8(out.stdout).with_context(|| format!("{}: {path} at {commit} is not UTF-8", git_dir.display()))
}

/// Builds one corpus's train/dev/test NER sets from its snapshot into `out/<corpus>/<split>.jsonl`.
/// Returns (split, sentences, mentions) per written file.
pub fn build(corpus: &str, spec: &CorpusSpec, snapshots: &Path, out: &Path) -> Result<Vec<(Split, usize, usize)>> {
    let dir = snapshot_dir(snapshots, &spec.repo)
        .with_context(|| format!("no snapshot of {} under {} (expected {}/{}+…/repo or a checkout)", spec.repo, snapshots.display(), snapshots.display(), spec.repo.split('/').next().unwrap_or("")))?;
    let read = |split: &str| -> Result<Vec<Sentence>> {
        let path = &spec.files[split];
        read_conll(&read_pinned(&dir, &spec.commit, path)?, &spec.columns, &spec.label_map, &format!("{}@{}:{path}", spec.repo, &spec.commit[..12]))
    };
    let mut train = read("train")?;
    let test = read("test")?;
    let dev = match spec.files.get("dev") {
        Some(_) => read("dev")?,
        None => {
            let fraction = spec.dev_fraction.with_context(|| format!("{corpus}: no dev file and no dev_fraction"))?;
            let n = ((train.len() as f64) * fraction).round() as usize;
            train.split_off(train.len() - n)
        }
    };
    let mut written = Vec::new();
    for (split, sentences) in [(Split::Train, &train), (Split::Dev, &dev), (Split::Test, &test)] {
        let groups = to_groups(corpus, spec, split, sentences)?;
        let path = out.join(corpus).join(format!("{}.jsonl", split.as_str()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        crate::data::native::write(&path, &groups)?;
        written.push((split, sentences.len(), sentences.iter().map(|s| s.spans.len()).sum()));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.map(str::to_string))).collect()
    }

    #[test]
    fn iob1_and_iob2_give_the_same_spans_on_natural_text() {
        let cols = Columns { token: 0, tag: -1 };
        let m = map(&[("PER", Some("PERSON")), ("LOC", Some("LOCATION")), ("MISC", None)]);
        let iob2 = "-DOCSTART- -X- O\n\nNadim B-PER\nLadki I-PER\nvisited O\nNew B-LOC\nYork I-LOC\n, O\nParis B-LOC\n( O\nEuro B-MISC\n) O\n. O\n";
        let iob1 = "Nadim I-PER\nLadki I-PER\nvisited O\nNew I-LOC\nYork I-LOC\n, O\nParis I-LOC\n( O\nEuro I-MISC\n) O\n. O\n";
        for text in [iob2, iob1] {
            let s = read_conll(text, &cols, &m, "t").unwrap();
            assert_eq!(s.len(), 1);
            assert_eq!(s[0].text, "Nadim Ladki visited New York, Paris (Euro).");
            let got: Vec<(&str, &str)> = s[0].spans.iter().map(|e| (&s[0].text[e.start..e.end], e.label.as_str())).collect();
            assert_eq!(got, [("Nadim Ladki", "PERSON"), ("New York", "LOCATION"), ("Paris", "LOCATION")]);
        }
        // Adjacent mentions: IOB2 separates them with B-.
        let s = read_conll("A B-LOC\nB B-LOC\n", &cols, &m, "t").unwrap();
        assert_eq!(s[0].spans.len(), 2);
    }

    #[test]
    fn bad_tags_and_unknown_labels_name_the_line() {
        let cols = Columns { token: 0, tag: 1 };
        let m = map(&[("PER", Some("PERSON"))]);
        let err = read_conll("a O\nb X-PER\n", &cols, &m, "f.txt").unwrap_err().to_string();
        assert!(err.contains("f.txt:2"), "{err}");
        let err = read_conll("a O\n\nb B-ORG\n", &cols, &m, "f.txt").unwrap_err().to_string();
        assert!(err.contains("f.txt:3") && err.contains("ORG"), "{err}");
        let err = read_conll("a\n", &cols, &m, "f.txt").unwrap_err().to_string();
        assert!(err.contains("f.txt:1"), "{err}");
    }

    #[test]
    fn registry_maps_only_onto_schema_types_and_groups_round_trip() {
        let all = corpora().unwrap();
        assert!(["conll2003", "bc5cdr", "sec-filings", "ler"].iter().all(|c| all.contains_key(*c)));
        let spec = &all["conll2003"];
        let sentences: Vec<Sentence> = (0..9).map(|i| Sentence { text: format!("Paris {i}"), spans: vec![EntitySpan { start: 0, end: 5, label: "LOCATION".into() }] }).collect();
        let groups = to_groups("conll2003", spec, Split::Test, &sentences).unwrap();
        assert_eq!(groups.len(), 1, "a lone 9th sentence joins the group before it");
        assert_eq!(sentences_of(&groups), sentences);
        assert_eq!(annotated_types(&groups).unwrap(), spec.annotated_types());
        assert!(to_groups("conll2003", spec, Split::Test, &sentences[..1]).is_err());
    }
}
