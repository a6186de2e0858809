//! FlagEmbedding reranker training JSONL: `{"query", "pos": [...], "neg": [...]}`
//! per line, optionally with `id`, `domain`, `split` and `source` (the format of
//! `../shared/realdata`). Positives get relevance 1, negatives 0.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::fields::{kind_of, RecordAt};
use super::{Candidate, DataError, LoadOptions, QueryGroup, Split};

pub fn looks_flag(obj: &serde_json::Map<String, Value>) -> bool {
    obj.contains_key("pos") && obj.contains_key("query")
}

/// The split of a query that has none in the file: a stable hash of its id puts
/// 60% in train, 10% in dev and 30% in test, the same on every machine and run.
pub fn hashed_split(query_id: &str) -> Split {
    match crate::util::stable_hash(query_id) % 100 {
        0..=59 => Split::Train,
        60..=69 => Split::Dev,
        _ => Split::Test,
    }
}

pub fn read(path: &Path, opts: &LoadOptions) -> Result<Vec<QueryGroup>, DataError> {
    Ok(read_located(path, opts)?.into_iter().map(|(_, group)| group).collect())
}

/// Like [`read`], with the line number of each group.
pub fn read_located(path: &Path, opts: &LoadOptions) -> Result<Vec<(usize, QueryGroup)>, DataError> {
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.split('.').next().unwrap_or(n).to_string())
        .filter(|stem| !stem.is_empty())
        .unwrap_or_else(|| "flag".into());
    // Generated ids must pass `check_id` too: no whitespace or control characters from the file name.
    let stem: String = stem.chars().map(|c| if c.is_whitespace() || c.is_control() { '_' } else { c }).take(64).collect();
    super::jsonl::read_groups(path, |line, text| parse_record(RecordAt { file: path, line }, text, &stem, opts))
}

fn passages(at: RecordAt<'_>, obj: &serde_json::Map<String, Value>, key: &str) -> Result<Vec<String>, DataError> {
    let items = at.array(obj, "", key)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if s.trim().is_empty() => Err(at.error(&format!("{key}[{i}]"), "empty passage")),
            Value::String(s) => Ok(s.clone()),
            other => Err(at.error(&format!("{key}[{i}]"), format!("expected a string, found {}", kind_of(other)))),
        })
        .collect()
}

fn parse_record(at: RecordAt<'_>, text: &str, stem: &str, opts: &LoadOptions) -> Result<QueryGroup, DataError> {
    let obj = at.parse_object(text)?;
    let id = at.opt_id(&obj, "", "id")?.unwrap_or_else(|| format!("{stem}-{}", at.line));
    let query = at.string(&obj, "", "query")?;
    let domain = match (at.opt_string(&obj, "", "domain")?, &opts.domain) {
        (_, Some(forced)) => forced.clone(),
        (Some(domain), None) => domain,
        (None, None) => return Err(at.error("domain", "missing field (or give the domain with --domain)")),
    };
    let split = match at.opt_string(&obj, "", "split")? {
        Some(name) => Split::parse(&name).ok_or_else(|| {
            at.error("split", format!("unknown split `{name}` (expected train, dev, test or test_unseen)"))
        })?,
        None => hashed_split(&id),
    };
    let pos = passages(at, &obj, "pos")?;
    if pos.is_empty() {
        return Err(at.error("pos", format!("query `{id}` has no positive passage")));
    }
    let neg = match obj.get("neg") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => passages(at, &obj, "neg")?,
    };
    let mut candidates = Vec::with_capacity(pos.len() + neg.len());
    candidates.extend(pos.into_iter().enumerate().map(|(i, text)| Candidate {
        id: format!("{id}-pos{i}"),
        text,
        relevance: 1,
        entities: Vec::new(),
    }));
    candidates.extend(neg.into_iter().enumerate().map(|(i, text)| Candidate {
        id: format!("{id}-neg{i}"),
        text,
        relevance: 0,
        entities: Vec::new(),
    }));
    let mut meta = BTreeMap::new();
    if let Some(source) = at.opt_string(&obj, "", "source")? {
        meta.insert("source".to_string(), source);
    }
    Ok(QueryGroup { id, domain, split, query, query_entities: Vec::new(), candidates, secondary_domain: None, meta })
}
