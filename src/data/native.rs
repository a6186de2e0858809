//! The native JSONL format: one query group per line (schema in the README).
//! Entity offsets are character offsets in the file and byte offsets in memory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::fields::{kind_of, RecordAt};
use super::spans::spans_to_char_offsets;
use super::{Candidate, DataError, EntitySpan, QueryGroup, Split};

/// True when a parsed first record looks like the native format.
pub fn looks_native(obj: &serde_json::Map<String, Value>) -> bool {
    obj.contains_key("candidates")
}

/// Reads a native JSONL file, validating every record.
pub fn read(path: &Path) -> Result<Vec<QueryGroup>, DataError> {
    Ok(read_located(path)?.into_iter().map(|(_, group)| group).collect())
}

/// Like [`read`], with the line number of each group.
pub fn read_located(path: &Path) -> Result<Vec<(usize, QueryGroup)>, DataError> {
    super::jsonl::read_groups(path, |line, text| parse_record(RecordAt { file: path, line }, text))
}

/// Parses and validates one native record.
pub fn parse_record(at: RecordAt<'_>, text: &str) -> Result<QueryGroup, DataError> {
    let obj = at.parse_object(text)?;
    let id = at.id(&obj, "", "id")?;
    let domain = at.string(&obj, "", "domain")?;
    let split_name = at.string(&obj, "", "split")?;
    let split = Split::parse(&split_name).ok_or_else(|| {
        at.error("split", format!("unknown split `{split_name}` (expected train, dev, test or test_unseen)"))
    })?;
    let query = at.string(&obj, "", "query")?;
    let query_entities = at.entity_spans(&obj, "", "query_entities", &query)?;
    let secondary_domain = at.opt_string(&obj, "", "secondary_domain")?;
    let meta = match obj.get("meta") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect(),
        Some(other) => return Err(at.error("meta", format!("expected an object, found {}", kind_of(other)))),
    };
    let items = at.array(&obj, "", "candidates")?;
    if items.is_empty() {
        return Err(at.error("candidates", "no candidates"));
    }
    let mut candidates = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("candidates[{i}]");
        let Value::Object(cand) = item else {
            return Err(at.error(&path, format!("expected an object, found {}", kind_of(item))));
        };
        let cand_id = at.id(cand, &path, "id")?;
        let cand_text = at.string(cand, &path, "text")?;
        let relevance = at.unsigned(cand, &path, "relevance")?;
        let entities = at.entity_spans(cand, &path, "entities", &cand_text)?;
        candidates.push(Candidate { id: cand_id, text: cand_text, relevance, entities });
    }
    let group = QueryGroup { id, domain, split, query, query_entities, candidates, secondary_domain, meta };
    validate_group(&group).map_err(|(field, msg)| at.error(&field, msg))?;
    Ok(group)
}

/// Checks shared by every loader: unique candidate ids and at least one positive.
/// Returns the offending field and a message.
pub fn validate_group(group: &QueryGroup) -> Result<(), (String, String)> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, cand) in group.candidates.iter().enumerate() {
        if let Some(first) = ids.insert(cand.id.as_str(), i) {
            return Err((format!("candidates[{i}].id"), format!("duplicate candidate id `{}` (also candidates[{first}])", cand.id)));
        }
    }
    if group.positives().next().is_none() {
        return Err(("candidates".into(), format!("query `{}` has no positive candidate (relevance ≥ 1)", group.id)));
    }
    Ok(())
}

#[derive(Serialize)]
struct SpanRecord<'a> {
    start: usize,
    end: usize,
    label: &'a str,
}

#[derive(Serialize)]
struct CandidateRecord<'a> {
    id: &'a str,
    text: &'a str,
    relevance: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entities: Vec<SpanRecord<'a>>,
}

#[derive(Serialize)]
struct GroupRecord<'a> {
    id: &'a str,
    domain: &'a str,
    split: Split,
    query: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    query_entities: Vec<SpanRecord<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secondary_domain: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    meta: &'a BTreeMap<String, String>,
    candidates: Vec<CandidateRecord<'a>>,
}

fn span_records<'a>(text: &str, spans: &'a [EntitySpan]) -> Vec<SpanRecord<'a>> {
    spans_to_char_offsets(text, spans)
        .into_iter()
        .zip(spans)
        .map(|(c, s)| SpanRecord { start: c.start, end: c.end, label: &s.label })
        .collect()
}

/// One group as a native JSON line (no trailing newline).
pub fn to_line(group: &QueryGroup) -> String {
    let record = GroupRecord {
        id: &group.id,
        domain: &group.domain,
        split: group.split,
        query: &group.query,
        query_entities: span_records(&group.query, &group.query_entities),
        secondary_domain: group.secondary_domain.as_deref(),
        meta: &group.meta,
        candidates: group
            .candidates
            .iter()
            .map(|c| CandidateRecord {
                id: &c.id,
                text: &c.text,
                relevance: c.relevance,
                entities: span_records(&c.text, &c.entities),
            })
            .collect(),
    };
    serde_json::to_string(&record).expect("serialising plain records cannot fail")
}

/// The whole file's content: one line per group, each ending in `\n`.
pub fn to_string(groups: &[QueryGroup]) -> String {
    let mut out = String::new();
    for group in groups {
        out.push_str(&to_line(group));
        out.push('\n');
    }
    out
}

/// Writes groups as a native JSONL file, atomically.
pub fn write(path: &Path, groups: &[QueryGroup]) -> anyhow::Result<()> {
    crate::util::atomic_write(path, to_string(groups).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_group() -> QueryGroup {
        let query = "Max dose of ibuprofen?".to_string();
        let start = query.find("ibuprofen").unwrap();
        QueryGroup {
            id: "q1".into(),
            domain: "medical".into(),
            split: Split::TestUnseen,
            query,
            query_entities: vec![EntitySpan { start, end: start + 9, label: "DRUG".into() }],
            candidates: vec![
                Candidate { id: "c1".into(), text: "Ibuprofen: at most 3200 mg — daily.".into(), relevance: 2, entities: vec![] },
                Candidate { id: "c2".into(), text: "Café au lait.".into(), relevance: 0, entities: vec![] },
            ],
            secondary_domain: Some("legal".into()),
            meta: BTreeMap::from([("relation".to_string(), "max_dose".to_string())]),
        }
    }

    #[test]
    fn a_written_group_reads_back_identically() {
        let group = sample_group();
        let line = to_line(&group);
        let parsed = parse_record(RecordAt { file: Path::new("x.jsonl"), line: 1 }, &line).unwrap();
        assert_eq!(parsed, group);
    }
}
