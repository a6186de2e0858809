//! The reranking prompt: Qwen3-Reranker's template (configurable per model), tokenisation the model
//! card's way (prefix ids + body ids + suffix ids, each part encoded on its own) and document-only
//! truncation. The body is encoded as two parts — up to and including `<Document>:` (shared by all
//! candidates of a query) and ` {doc}` — which gives the same ids as encoding the body at once for a
//! byte-level BPE with the Qwen split regex (the split falls on a pre-token boundary; the fixture checks it).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Optional per-model prompt settings, read from this file in the model directory when present.
pub const PROMPT_FILE: &str = "r2r_prompt.json";

/// What gives way when a prompt is longer than `max_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Truncation {
    /// Only the document is cut; the query and template are kept even if they alone exceed the limit.
    #[default]
    Document,
    /// The model card's rule: the body (instruction + query + document) is cut on the right, so a very
    /// long instruction or query can lose its end too.
    Body,
}

/// Template and token words of a decoder-only reranker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PromptTemplate {
    pub prefix: String,
    /// With the placeholders {instruction}, {query}, {doc} ({doc} exactly once).
    pub body: String,
    pub suffix: String,
    pub default_instruction: String,
    pub yes_token: String,
    pub no_token: String,
    pub pad_token: String,
    /// Longest prompt in tokens (see `truncation`).
    pub max_length: usize,
    pub truncation: Truncation,
}

impl Default for PromptTemplate {
    fn default() -> Self {
        Self {
            prefix: "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n".into(),
            body: "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}".into(),
            suffix: "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n".into(),
            default_instruction: "Given a web search query, retrieve relevant passages that answer the query".into(),
            yes_token: "yes".into(),
            no_token: "no".into(),
            pad_token: "<|endoftext|>".into(),
            max_length: 8192,
            truncation: Truncation::Document,
        }
    }
}

impl PromptTemplate {
    /// The bge-reranker-v2-gemma prompt for Gemma backbones: "A: query / B: passage / … 'Yes' or 'No'.
    /// Answer:", read at the token after "Answer:" — " Yes" and " No" (with their leading space, single
    /// tokens of Gemma's vocabulary: ids 8438 and 2301).
    pub fn gemma() -> Self {
        Self {
            prefix: "<bos>".into(),
            body: "A: {query}\nB: {doc}".into(),
            suffix: "\nGiven a query A and a passage B, determine whether the passage contains an answer to the query by providing a prediction of either 'Yes' or 'No'.\nAnswer:".into(),
            default_instruction: String::new(),
            yes_token: " Yes".into(),
            no_token: " No".into(),
            pad_token: "<pad>".into(),
            max_length: 512,
            truncation: Truncation::Document,
        }
    }

    /// The default prompt of an architecture: Qwen3-Reranker's, or bge-reranker-v2-gemma's for Gemma.
    pub fn default_for(arch: crate::model::Arch) -> Self {
        match arch {
            crate::model::Arch::Gemma3 => Self::gemma(),
            _ => Self::default(),
        }
    }

    /// The model directory's `r2r_prompt.json`, or the Qwen3-Reranker defaults.
    pub fn for_model_dir(dir: &Path) -> Result<Self> {
        Ok(Self::from_model_dir(dir)?.unwrap_or_default())
    }

    /// The model directory's `r2r_prompt.json`, or the architecture's default prompt.
    pub fn for_model(dir: &Path, arch: crate::model::Arch) -> Result<Self> {
        Ok(Self::from_model_dir(dir)?.unwrap_or_else(|| Self::default_for(arch)))
    }

    fn from_model_dir(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(PROMPT_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).map(Some).with_context(|| format!("invalid prompt settings {}", path.display()))
    }
}

/// The placeholders a body template may use.
const PLACEHOLDERS: [&str; 3] = ["instruction", "query", "doc"];

/// Checks a body template: `{query}` and `{doc}` present, no `{name}` other than
/// [`PLACEHOLDERS`] (a typo like `{qeury}` would otherwise be sent to the model verbatim).
fn check_body_placeholders(body: &str) -> Result<()> {
    let mut rest = body;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let name_len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            if !PLACEHOLDERS.contains(&name) {
                bail!("prompt body template has an unknown placeholder {{{name}}} (known: {{instruction}}, {{query}}, {{doc}})");
            }
        }
        rest = after;
    }
    if !body.contains("{query}") {
        bail!("prompt body template has no {{query}} placeholder: the query would never reach the model");
    }
    Ok(())
}

/// Fills `{name}` placeholders in one pass (so a query containing "{doc}" stays literal).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    'scan: while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        for (name, value) in values {
            let key = format!("{{{name}}}");
            if rest[open..].starts_with(&key) {
                out.push_str(value);
                rest = &rest[open + key.len()..];
                continue 'scan;
            }
        }
        out.push('{');
        rest = &rest[open + 1..];
    }
    out.push_str(rest);
    out
}

/// One tokenised (query, document) prompt in its two halves.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPair {
    /// Prefix ids + body up to `<Document>:` — the same for every candidate of a query.
    pub shared: Vec<u32>,
    /// Document ids (possibly truncated) + body tail + suffix ids.
    pub candidate: Vec<u32>,
    pub truncated: bool,
}

impl EncodedPair {
    pub fn ids(&self) -> Vec<u32> {
        [self.shared.as_slice(), self.candidate.as_slice()].concat()
    }
}

/// A tokenizer with the reranking template.
#[derive(Clone)]
pub struct PromptEncoder {
    tokenizer: tokenizers::Tokenizer,
    pub template: PromptTemplate,
    pub path: PathBuf,
    body_head: String, // body before {doc}, trailing whitespace moved to the document part
    doc_lead: String,
    body_tail: String,
    prefix_ids: Vec<u32>,
    suffix_ids: Vec<u32>,
    pub yes_id: u32,
    pub no_id: u32,
    pub pad_id: u32,
    max_token_chars: usize,
}

impl PromptEncoder {
    /// Loads tokenizer.json and resolves the yes/no/pad tokens; errors name the file.
    pub fn from_file(path: &Path, template: PromptTemplate) -> Result<Self> {
        let tokenizer = tokenizers::Tokenizer::from_file(path).map_err(|e| anyhow::anyhow!("cannot load tokenizer {}: {e}", path.display()))?;
        Self::new(tokenizer, template, path)
    }

    pub fn new(tokenizer: tokenizers::Tokenizer, template: PromptTemplate, path: &Path) -> Result<Self> {
        check_body_placeholders(&template.body)?;
        let Some((head, tail)) = template.body.split_once("{doc}") else { bail!("prompt body template has no {{doc}} placeholder") };
        if tail.contains("{doc}") {
            bail!("prompt body template has {{doc}} more than once");
        }
        if template.max_length == 0 {
            bail!("max_length is 0: no prompt fits");
        }
        let trimmed = head.trim_end();
        let (body_head, doc_lead) = (trimmed.to_string(), head[trimmed.len()..].to_string());
        // A vocabulary entry, or a word that encodes to exactly one token (" Yes" is "▁Yes" in Gemma's vocabulary).
        let token_id = |word: &str, role: &str| -> Result<u32> {
            if let Some(id) = tokenizer.token_to_id(word) {
                return Ok(id);
            }
            let ids = tokenizer.encode(word, false).map(|e| e.get_ids().to_vec()).unwrap_or_default();
            match ids.as_slice() {
                [id] => Ok(*id),
                _ => bail!("tokenizer {} has no single token {word:?} (the {role} token)", path.display()),
            }
        };
        let yes_id = token_id(&template.yes_token, "yes")?;
        let no_id = token_id(&template.no_token, "no")?;
        if yes_id == no_id {
            bail!("tokenizer {}: the yes and no words map to the same token", path.display());
        }
        let pad_id = tokenizer.token_to_id(&template.pad_token).unwrap_or(0);
        let mut me = Self { tokenizer, body_head, doc_lead, body_tail: tail.to_string(), prefix_ids: vec![], suffix_ids: vec![], yes_id, no_id, pad_id, path: path.to_path_buf(), template, max_token_chars: 1 };
        me.prefix_ids = me.encode(&me.template.prefix.clone())?;
        me.suffix_ids = me.encode(&me.template.suffix.clone())?;
        let fixed = me.prefix_ids.len() + me.suffix_ids.len();
        if me.template.max_length <= fixed {
            bail!(
                "max_length {} leaves no room for the query and document: the prompt's prefix and suffix alone take {fixed} tokens",
                me.template.max_length
            );
        }
        // The longest text a single token stands for (in characters; a byte-level vocabulary holds one
        // character per byte), to cut over-long documents before tokenising them.
        me.max_token_chars = me.tokenizer.get_vocab(true).keys().map(|t| t.chars().count()).max().unwrap_or(1).max(1);
        Ok(me)
    }

    /// Changes the longest prompt, keeping the rest of the model's prompt settings.
    pub fn set_max_length(&mut self, max_length: usize) -> Result<()> {
        let fixed = self.prefix_ids.len() + self.suffix_ids.len();
        if max_length <= fixed {
            bail!("max_length {max_length} leaves no room for the query and document: the prompt's prefix and suffix alone take {fixed} tokens");
        }
        self.template.max_length = max_length;
        Ok(())
    }

    /// Token ids of `text` without added special tokens (as the model card calls the tokenizer).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| anyhow::anyhow!("tokenizer {}: {e}", self.path.display()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of `text` (no special tokens) with each token's byte range in `text`.
    pub fn encode_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<(usize, usize)>)> {
        let enc = self.tokenizer.encode(text, false).map_err(|e| anyhow::anyhow!("tokenizer {}: {e}", self.path.display()))?;
        Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()))
    }

    /// The beginning-of-sequence token, where the vocabulary has one (`<bos>` in Gemma; Qwen3 has none).
    pub fn bos_id(&self) -> Option<u32> {
        self.tokenizer.token_to_id("<bos>")
    }

    pub fn prefix_ids(&self) -> &[u32] {
        &self.prefix_ids
    }

    pub fn suffix_ids(&self) -> &[u32] {
        &self.suffix_ids
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The shared part of a query's prompts: prefix + `<Instruct>: … <Query>: … <Document>:`. Its final
    /// token's hidden state is the query representation used for routing.
    pub fn encode_query(&self, instruction: Option<&str>, query: &str) -> Result<Vec<u32>> {
        let instruction = instruction.unwrap_or(&self.template.default_instruction);
        let head = fill(&self.body_head, &[("instruction", instruction), ("query", query)]);
        Ok([self.prefix_ids.clone(), self.encode(&head)?].concat())
    }

    /// Encodes a pair. The document is cut on the right so that the whole prompt fits `max_length`; with
    /// `Truncation::Body` (the model card's rule) the query part is cut too once the document is gone.
    pub fn encode_pair(&self, instruction: Option<&str>, query: &str, document: &str) -> Result<EncodedPair> {
        let mut shared = self.encode_query(instruction, query)?;
        let document = self.precut(document);
        let mut doc = self.encode(&format!("{}{document}", self.doc_lead))?;
        let tail = if self.body_tail.is_empty() { vec![] } else { self.encode(&self.body_tail)? };
        let body_budget = self.template.max_length.saturating_sub(self.prefix_ids.len() + tail.len() + self.suffix_ids.len());
        let head_len = shared.len() - self.prefix_ids.len();
        if self.template.truncation == Truncation::Body && head_len > body_budget {
            shared.truncate(self.prefix_ids.len() + body_budget);
        }
        let doc_budget = body_budget.saturating_sub(head_len);
        let truncated = doc.len() > doc_budget;
        doc.truncate(doc_budget);
        Ok(EncodedPair { shared, candidate: [doc, tail, self.suffix_ids.clone()].concat(), truncated })
    }

    /// A document cut, before tokenising, to a length far beyond what `max_length` tokens can hold:
    /// 4 × (max_length + 16) × the longest token's characters (at a character boundary). The
    /// tokens that survive truncation are the same; a 50 MB document no longer costs seconds and
    /// gigabytes to tokenise.
    fn precut<'d>(&self, document: &'d str) -> &'d str {
        let cap = (self.template.max_length.saturating_add(16)).saturating_mul(self.max_token_chars).saturating_mul(4);
        if document.len() <= cap {
            return document;
        }
        let mut end = cap;
        while !document.is_char_boundary(end) {
            end -= 1;
        }
        &document[..end]
    }

    /// The full prompt text (for display and checks).
    pub fn prompt_text(&self, instruction: Option<&str>, query: &str, document: &str) -> String {
        let instruction = instruction.unwrap_or(&self.template.default_instruction);
        let body = fill(&self.template.body, &[("instruction", instruction), ("query", query), ("doc", document)]);
        format!("{}{body}{}", self.template.prefix, self.template.suffix)
    }
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn body_templates_need_query_and_doc_and_no_unknown_placeholder() {
        use super::check_body_placeholders as check;
        assert!(check(&super::PromptTemplate::default().body).is_ok());
        assert!(check("{query} {doc} {{literal braces}} {1 2}").is_ok());
        let err = check("<Q>: {qeury} <D>: {doc}").unwrap_err().to_string();
        assert!(err.contains("{qeury}"), "{err}");
        let err = check("<D>: {doc}").unwrap_err().to_string();
        assert!(err.contains("{query}"), "{err}");
    }

    #[test]
    fn fill_is_single_pass() {
        assert_eq!(fill("<Q>: {query} <D>: {doc}", &[("query", "a {doc} b"), ("doc", "D")]), "<Q>: a {doc} b <D>: D");
        assert_eq!(fill("{x} {query}", &[("query", "q")]), "{x} q");
    }
}
