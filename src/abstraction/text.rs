//! Text helpers shared by the recognisers: word boundaries (Unicode-aware, with
//! no boundary required next to CJK characters), surface normalisation, and the
//! `[TYPE_n]` placeholder tokens that recognisers must leave alone.

use std::sync::OnceLock;

use regex::Regex;

/// A character that continues a word: letters, digits (any script), `_`.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Scripts written without spaces between words (Han, kana, Hangul): a mention
/// next to such a character needs no word boundary.
pub fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// True when `text[start..end]` does not start or end inside a word: a word
/// character at an edge of the mention must not touch a word character outside
/// it (unless either is from an unspaced script). Combining marks right after
/// the mention also fail, so a mention never ends before its accent.
pub fn on_word_boundaries(text: &str, start: usize, end: usize) -> bool {
    let (Some(first), Some(last)) = (text[start..end].chars().next(), text[..end].chars().next_back()) else {
        return false;
    };
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let joins = |inner: char, outer: Option<char>| {
        outer.is_some_and(|o| {
            is_word_char(inner) && is_word_char(o) && !is_unspaced_script(inner) && !is_unspaced_script(o)
        })
    };
    !joins(first, before) && !joins(last, after) && !after.is_some_and(is_combining_mark)
}

/// Combining marks (the common blocks): they belong to the preceding character.
pub fn is_combining_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F | 0x200D | 0xFE0F)
}

/// The key under which surfaces are compared: lower-cased, whitespace runs
/// collapsed to one space, trimmed. "Ibuprofen" and "ibuprofen" are one entity.
pub fn normalize_surface(surface: &str) -> String {
    let mut out = String::with_capacity(surface.len());
    for word in surface.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

fn placeholder_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\[([A-Z][A-Z0-9_]*)_([0-9]{1,9})\]").expect("valid placeholder regex"))
}

/// A `[TYPE_n]` placeholder found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderToken {
    pub start: usize,
    pub end: usize,
    pub label: String,
    pub number: u32,
}

/// Every placeholder token of a text, in order.
pub fn placeholders(text: &str) -> Vec<PlaceholderToken> {
    if !text.contains('[') {
        return Vec::new();
    }
    placeholder_regex()
        .captures_iter(text)
        .filter_map(|caps| {
            let whole = caps.get(0)?;
            let number = caps[2].parse().ok()?;
            Some(PlaceholderToken { start: whole.start(), end: whole.end(), label: caps[1].to_string(), number })
        })
        .collect()
}

/// The placeholder text for a type and number: `[DRUG_1]`.
pub fn placeholder(label: &str, number: u32) -> String {
    format!("[{label}_{number}]")
}

/// True when a surface contains a placeholder token.
pub fn contains_placeholder(surface: &str) -> bool {
    surface.contains('[') && placeholder_regex().is_match(surface)
}

/// Disjoint byte ranges with a logarithmic overlap test.
#[derive(Debug, Clone, Default)]
pub struct DisjointSpans(std::collections::BTreeMap<usize, usize>);

impl DisjointSpans {
    /// From ranges that do not overlap one another (placeholders, resolved detections).
    pub fn new(ranges: impl IntoIterator<Item = (usize, usize)>) -> Self {
        DisjointSpans(ranges.into_iter().collect())
    }

    /// True when `[start, end)` overlaps a range: only the range starting last
    /// before `end` can, since the ranges are disjoint.
    pub fn overlaps(&self, start: usize, end: usize) -> bool {
        self.0.range(..end).next_back().is_some_and(|(_, &e)| e > start)
    }

    pub fn insert(&mut self, start: usize, end: usize) {
        self.0.insert(start, end);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_boundaries_respect_words_and_cjk() {
        let text = "ibuprofenol, ibuprofen. 布洛芬片";
        assert!(!on_word_boundaries(text, 0, 9));
        let at = text.find("ibuprofen.").unwrap();
        assert!(on_word_boundaries(text, at, at + 9));
        let cjk = text.find("布洛芬").unwrap();
        assert!(on_word_boundaries(text, cjk, cjk + "布洛芬".len()));
        let accented = "cafe\u{301} x";
        assert!(!on_word_boundaries(accented, 0, 4), "must not end before a combining mark");
    }

    #[test]
    fn placeholders_are_found_and_surfaces_normalised() {
        let found = placeholders("Take [DRUG_12] for [CASE_NUMBER_1]; not [drug_1] or [DRUG_]");
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].label.as_str(), found[0].number), ("DRUG", 12));
        assert_eq!(found[1].label, "CASE_NUMBER");
        assert_eq!(normalize_surface("  Type 2\n Diabetes "), "type 2 diabetes");
        assert!(contains_placeholder("x [MONEY_3]") && !contains_placeholder("[x]"));
    }
}
