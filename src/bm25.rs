//! BM25 first stage (Lucene/Anserini formulation) and hard-negative mining.
//!
//! `score = Σ_t idf(t) · tf·(k1+1) / (tf + k1·(1 − b + b·dl/avgdl))` with
//! `idf(t) = ln(1 + (N − df + 0.5)/(df + 0.5))`; defaults k1 = 0.9, b = 0.4
//! (Anserini's). Text is lower-cased, split on non-alphanumeric characters and
//! stripped of a short English stop-word list.

use std::collections::HashMap;

use rand::seq::SliceRandom;

pub const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
    "what", "which", "who", "how", "does", "do", "did", "can", "its", "from", "has", "have",
];

/// Lower-cased alphanumeric tokens without stop words.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .filter(|t| !STOPWORDS.contains(&t.as_str()))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    pub k1: f32,
    pub b: f32,
}

impl Bm25Params {
    /// Checks the ranges BM25 is defined on: `k1` finite and ≥ 0, `b` in [0, 1].
    pub fn validate(&self) -> Result<(), String> {
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return Err(format!("k1 must be a finite number >= 0, found {}", self.k1));
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Err(format!("b must be in [0, 1], found {}", self.b));
        }
        Ok(())
    }
}

impl Default for Bm25Params {
    fn default() -> Self {
        Bm25Params { k1: 0.9, b: 0.4 }
    }
}

/// An inverted index over a list of passages (document ids are their indices).
#[derive(Debug, Clone)]
pub struct Bm25Index {
    params: Bm25Params,
    vocab: HashMap<String, u32>,
    /// term id → (doc, term frequency), docs ascending.
    postings: Vec<Vec<(u32, u32)>>,
    doc_lengths: Vec<u32>,
    avg_doc_length: f32,
}

impl Bm25Index {
    pub fn new<S: AsRef<str>>(passages: &[S], params: Bm25Params) -> Self {
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut postings: Vec<Vec<(u32, u32)>> = Vec::new();
        let mut doc_lengths = Vec::with_capacity(passages.len());
        for (doc, passage) in passages.iter().enumerate() {
            let tokens = tokenize(passage.as_ref());
            doc_lengths.push(tokens.len() as u32);
            let mut counts: HashMap<u32, u32> = HashMap::new();
            for token in tokens {
                let next_id = vocab.len() as u32;
                let term = *vocab.entry(token).or_insert(next_id);
                if term as usize == postings.len() {
                    postings.push(Vec::new());
                }
                *counts.entry(term).or_default() += 1;
            }
            for (term, tf) in counts {
                postings[term as usize].push((doc as u32, tf));
            }
        }
        let total: u64 = doc_lengths.iter().map(|&l| u64::from(l)).sum();
        let avg_doc_length = if doc_lengths.is_empty() { 0.0 } else { total as f32 / doc_lengths.len() as f32 };
        Bm25Index { params, vocab, postings, doc_lengths, avg_doc_length }
    }

    pub fn len(&self) -> usize {
        self.doc_lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doc_lengths.is_empty()
    }

    fn idf(&self, df: usize) -> f32 {
        let n = self.len() as f32;
        (1.0 + (n - df as f32 + 0.5) / (df as f32 + 0.5)).ln()
    }

    fn term_score(&self, idf: f32, tf: u32, doc_length: u32) -> f32 {
        let Bm25Params { k1, b } = self.params;
        let tf = tf as f32;
        let norm = k1 * (1.0 - b + b * doc_length as f32 / self.avg_doc_length.max(f32::MIN_POSITIVE));
        idf * tf * (k1 + 1.0) / (tf + norm)
    }

    /// BM25 scores of every indexed passage for `query` (zero where no term matches).
    pub fn score_all(&self, query: &str) -> Vec<f32> {
        let mut scores = vec![0.0f32; self.len()];
        for token in tokenize(query) {
            let Some(&term) = self.vocab.get(&token) else { continue };
            let posting = &self.postings[term as usize];
            let idf = self.idf(posting.len());
            for &(doc, tf) in posting {
                scores[doc as usize] += self.term_score(idf, tf, self.doc_lengths[doc as usize]);
            }
        }
        scores
    }

    /// Scores an arbitrary text against `query` with this index's statistics
    /// (idf, average length): used to rerank a candidate list.
    pub fn score_text(&self, query: &str, text: &str) -> f32 {
        let doc_tokens = tokenize(text);
        let mut tf: HashMap<&str, u32> = HashMap::new();
        for t in &doc_tokens {
            *tf.entry(t.as_str()).or_default() += 1;
        }
        tokenize(query)
            .iter()
            .filter_map(|q| {
                let count = *tf.get(q.as_str())?;
                let df = self.vocab.get(q).map_or(0, |&term| self.postings[term as usize].len());
                Some(self.term_score(self.idf(df), count, doc_tokens.len() as u32))
            })
            .sum()
    }

    /// The `k` best passages for `query`, best first; ties broken by lower index.
    pub fn search(&self, query: &str, k: usize) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> =
            self.score_all(query).into_iter().enumerate().filter(|&(_, s)| s > 0.0).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }
}

/// BM25 scores of a group's candidates for its query, with an index over those candidates only
/// (default parameters), in candidate order.
pub fn group_scores(group: &crate::data::QueryGroup) -> Vec<f32> {
    let texts: Vec<&str> = group.candidates.iter().map(|c| c.text.as_str()).collect();
    Bm25Index::new(&texts, Bm25Params::default()).score_all(&group.query)
}

/// Negatives for one query, as passage indices: the `hard` best-scoring passages
/// that are not positives, then `random` more drawn uniformly (seeded) from the
/// rest. `is_excluded` marks positives (and anything else to skip, such as
/// near-duplicates of a positive).
pub fn mine_negatives(
    index: &Bm25Index,
    query: &str,
    is_excluded: impl Fn(usize) -> bool,
    hard: usize,
    random: usize,
    rng: &mut crate::util::SeededRng,
) -> Vec<usize> {
    let mut picked: Vec<usize> = index
        .search(query, index.len())
        .into_iter()
        .map(|(doc, _)| doc)
        .filter(|&doc| !is_excluded(doc))
        .take(hard)
        .collect();
    let mut rest: Vec<usize> = (0..index.len()).filter(|&d| !is_excluded(d) && !picked.contains(&d)).collect();
    rest.shuffle(rng);
    picked.extend(rest.into_iter().take(random));
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_a_hand_computed_example() {
        // N = 3, avgdl = 7/3, df(cat) = 2 → idf = ln 1.6 = 0.470004.
        // d0: tf 1, dl 2 → 0.470004 · 1.9 / (1 + 0.848571) = 0.483079
        // d2: tf 2, dl 3 → 0.470004 · 3.8 / (2 + 1.002857) = 0.594772
        let index = Bm25Index::new(&["cat sat", "dog sat", "cat cat dog"], Bm25Params::default());
        let scores = index.score_all("the cat");
        assert!((scores[0] - 0.483079).abs() < 1e-5, "{scores:?}");
        assert_eq!(scores[1], 0.0);
        assert!((scores[2] - 0.594772).abs() < 1e-5, "{scores:?}");
        let ranking: Vec<usize> = index.search("cat", 3).into_iter().map(|(d, _)| d).collect();
        assert_eq!(ranking, vec![2, 0]);
        assert!((index.score_text("cat", "cat sat") - scores[0]).abs() < 1e-6);
    }

    #[test]
    fn mining_skips_positives_and_is_seeded() {
        let passages = ["ibuprofen dose adult", "ibuprofen dose for children", "aspirin dose", "tax law", "court fees"];
        let index = Bm25Index::new(&passages, Bm25Params::default());
        let mine = |seed| mine_negatives(&index, "ibuprofen dose", |d| d == 0, 2, 2, &mut crate::util::seeded_rng(seed, 0));
        let negatives = mine(1);
        assert_eq!(&negatives[..2], &[1, 2], "hard negatives: best BM25 non-positives first");
        assert_eq!(negatives.len(), 4);
        assert!(!negatives.contains(&0));
        assert_eq!(mine(1), negatives, "same seed, same negatives");
    }
}
