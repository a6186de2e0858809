//! BEIR directories: `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl`
//! (`_id`, `text`, optional `domain` or `metadata.domain`) and
//! `qrels/{train,dev,test,test_unseen}.tsv` (`query-id  corpus-id  score`, header
//! line optional). BEIR has judgements, not candidate lists, so each query's
//! candidates are its judged passages plus BM25 hard negatives mined from the
//! corpus up to `LoadOptions::candidates_per_query` (seeded).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use super::fields::RecordAt;
use super::{Candidate, DataError, LoadOptions, QueryGroup, Split};
use crate::bm25::{mine_negatives, Bm25Index, Bm25Params};

/// The largest relevance grade accepted in a qrels file (the TREC qrels reader's limit too).
pub const MAX_RELEVANCE: u32 = i32::MAX as u32;

pub fn is_beir_dir(dir: &Path) -> bool {
    dir.join("corpus.jsonl").is_file() && dir.join("queries.jsonl").is_file() && dir.join("qrels").is_dir()
}

struct Query {
    text: String,
    domain: Option<String>,
}

pub fn read(dir: &Path, opts: &LoadOptions) -> Result<Vec<QueryGroup>, DataError> {
    // Corpus: id → index into `passages`.
    let corpus_path = dir.join("corpus.jsonl");
    let mut doc_ids: Vec<String> = Vec::new();
    let mut passages: Vec<String> = Vec::new();
    let mut doc_index: HashMap<String, usize> = HashMap::new();
    super::jsonl::for_each_line(&corpus_path, |line, text| {
        let at = RecordAt { file: &corpus_path, line };
        let obj = at.parse_object(text)?;
        let id = at.id(&obj, "", "_id")?;
        let body = at.string(&obj, "", "text")?;
        let passage = match at.opt_string(&obj, "", "title").ok().flatten() {
            Some(title) => format!("{title}\n{body}"),
            None => body,
        };
        if let Some(first) = doc_index.insert(id.clone(), passages.len()) {
            return Err(at.error("_id", format!("duplicate passage id `{id}` (first on line {})", first + 1)));
        }
        doc_ids.push(id);
        passages.push(passage);
        Ok(())
    })?;

    let queries_path = dir.join("queries.jsonl");
    let mut queries: BTreeMap<String, Query> = BTreeMap::new();
    super::jsonl::for_each_line(&queries_path, |line, text| {
        let at = RecordAt { file: &queries_path, line };
        let obj = at.parse_object(text)?;
        let id = at.id(&obj, "", "_id")?;
        let query_text = at.string(&obj, "", "text")?;
        let domain = match at.opt_string(&obj, "", "domain")? {
            Some(d) => Some(d),
            None => obj.get("metadata").and_then(|m| m.get("domain")).and_then(Value::as_str).map(str::to_string),
        };
        if queries.insert(id.clone(), Query { text: query_text, domain }).is_some() {
            return Err(at.error("_id", format!("duplicate query id `{id}`")));
        }
        Ok(())
    })?;

    let index = Bm25Index::new(&passages, Bm25Params::default());
    let mut groups = Vec::new();
    let mut qrel_files: Vec<_> = std::fs::read_dir(dir.join("qrels"))
        .map_err(|e| DataError::new(dir.join("qrels"), format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
        .collect();
    qrel_files.sort();
    if qrel_files.is_empty() {
        return Err(DataError::new(dir.join("qrels"), "no qrels/*.tsv file"));
    }
    for qrels_path in qrel_files {
        let split_name = qrels_path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let split = Split::parse(&split_name).ok_or_else(|| {
            DataError::new(&qrels_path, format!("unknown split `{split_name}` (expected train, dev, test or test_unseen)"))
        })?;
        // query id → (passage index, relevance), in file order, and the line of each judgement.
        let mut judged: BTreeMap<String, Vec<(usize, u32)>> = BTreeMap::new();
        let mut judged_at: HashMap<(String, usize), usize> = HashMap::new();
        super::jsonl::for_each_line(&qrels_path, |line, text| {
            let cols: Vec<&str> = text.split('\t').map(str::trim).collect();
            if line == 1 && cols.first().is_some_and(|c| c.eq_ignore_ascii_case("query-id")) {
                return Ok(()); // header
            }
            let err = |field: &str, msg: String| DataError::new(&qrels_path, msg).at_line(line).field(field);
            if cols.len() != 3 {
                return Err(err("", format!("expected 3 tab-separated columns, found {}", cols.len())));
            }
            if !queries.contains_key(cols[0]) {
                return Err(err("query-id", format!("unknown query id `{}`", cols[0])));
            }
            let doc = *doc_index.get(cols[1]).ok_or_else(|| err("corpus-id", format!("unknown passage id `{}`", cols[1])))?;
            let relevance: i64 = cols[2].parse().map_err(|_| err("score", format!("not an integer: `{}`", cols[2])))?;
            // Negative grades (some BEIR sets use -1) mean "judged not relevant".
            if relevance > i64::from(MAX_RELEVANCE) {
                return Err(err("score", format!("relevance {relevance} is out of range (at most {MAX_RELEVANCE})")));
            }
            if let Some(first) = judged_at.insert((cols[0].to_string(), doc), line) {
                return Err(err("corpus-id", format!("passage `{}` judged twice for query `{}` (first on line {first})", cols[1], cols[0])));
            }
            judged.entry(cols[0].to_string()).or_default().push((doc, relevance.max(0) as u32));
            Ok(())
        })?;
        for (query_id, judgements) in judged {
            let query = &queries[&query_id];
            if judgements.iter().all(|&(_, rel)| rel == 0) {
                let line = judgements.iter().filter_map(|&(doc, _)| judged_at.get(&(query_id.clone(), doc))).min().copied();
                let mut error = DataError::new(&qrels_path, format!("query `{query_id}` has no positive passage (every score is 0 or less)")).field("score");
                error.line = line;
                return Err(error);
            }
            let domain = match (&opts.domain, &query.domain) {
                (Some(forced), _) => forced.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => {
                    return Err(DataError::new(&queries_path, format!("query `{query_id}` has no domain (give --domain or a `domain` field)"))
                        .field("domain"))
                }
            };
            let mut rng = crate::util::seeded_rng(opts.seed, crate::util::stable_hash(&query_id));
            let is_judged = |doc: usize| judgements.iter().any(|&(d, _)| d == doc);
            let room = opts.candidates_per_query.saturating_sub(judgements.len());
            let hard = room - room / 4;
            let negatives = mine_negatives(&index, &query.text, is_judged, hard, room - hard, &mut rng);
            let candidates = judgements
                .iter()
                .copied()
                .chain(negatives.into_iter().map(|d| (d, 0)))
                .map(|(doc, relevance)| Candidate { id: doc_ids[doc].clone(), text: passages[doc].clone(), relevance, entities: Vec::new() })
                .collect();
            groups.push(QueryGroup {
                id: query_id,
                domain,
                split,
                query: query.text.clone(),
                query_entities: Vec::new(),
                candidates,
                secondary_domain: None,
                meta: BTreeMap::from([("source".to_string(), "beir".to_string())]),
            });
        }
    }
    Ok(groups)
}
