//! Pattern recognisers: regular expressions for entity types with a regular
//! surface form — money, percentages, dates, dosages, statute citations, case
//! numbers, tickers and ICD-10 codes. Each pattern names its type, a score and a
//! priority (used by the overlap policy), and optionally a capture group that is
//! the mention (`ICD-10 code E11` → `E11`). Matches must lie on word boundaries.

use std::collections::BTreeSet;

use anyhow::Context;
use regex::{Regex, RegexSet};

use super::recognizer::{Detection, PRIORITY_PATTERN, PRIORITY_WEAK_PATTERN};
use super::text::on_word_boundaries;

/// One pattern recogniser's definition.
#[derive(Debug, Clone, Copy)]
pub struct PatternSpec {
    /// Reported as `pattern:<name>`.
    pub name: &'static str,
    pub label: &'static str,
    pub regex: &'static str,
    /// Capture group holding the mention (0 = the whole match).
    pub group: usize,
    pub score: f32,
    pub priority: u8,
}

const MONTH: &str = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan\.?|Feb\.?|Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|Sept?\.?|Oct\.?|Nov\.?|Dec\.?)";

/// The bundled patterns (the `{MONTH}` marker is expanded when compiled).
pub const BUNDLED_PATTERNS: &[PatternSpec] = &[
    PatternSpec {
        name: "money",
        label: "MONEY",
        regex: r"(?:(?:US|USD|EUR|GBP|JPY|CHF|CNY|RMB|A|C|HK|S|NZ)\s?)?[$€£¥]\s?\d+(?:,\d{3})*(?:\.\d+)?(?:\s?(?:thousand|million|billion|trillion|bn|mn|[mMbBkK])(?-u:\b))?",
        group: 0,
        score: 0.9,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "money-code",
        label: "MONEY",
        regex: r"(?:USD|EUR|GBP|JPY|CHF|CNY|RMB)\s?\d+(?:,\d{3})*(?:\.\d+)?(?:\s?(?:thousand|million|billion|trillion|bn|mn)(?-u:\b))?|\d+(?:,\d{3})*(?:\.\d+)?\s?(?:thousand|million|billion|trillion)?\s?(?:dollars|euros|pounds|yen|yuan|USD|EUR|GBP)(?-u:\b)",
        group: 0,
        score: 0.85,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "percent",
        label: "PERCENT",
        regex: r"[-+−]?\d+(?:\.\d+)?\s?(?:%|percent(?-u:\b)|per cent(?-u:\b))",
        group: 0,
        score: 0.95,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "date",
        label: "DATE",
        regex: r"{MONTH}\s\d{1,2}(?:st|nd|rd|th)?,?\s\d{4}|\d{1,2}(?:st|nd|rd|th)?\s{MONTH},?\s\d{4}|{MONTH}\s\d{4}|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|Q[1-4]\s?(?:FY\s?)?\d{4}|(?:first|second|third|fourth) quarter of (?:fiscal (?:year )?)?\d{4}|FY\s?\d{4}|fiscal (?:year )?\d{4}|H[12]\s\d{4}",
        group: 0,
        score: 0.9,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "year",
        label: "DATE",
        regex: r"(?:1[5-9]|20)\d{2}s?",
        group: 0,
        score: 0.5,
        priority: PRIORITY_WEAK_PATTERN,
    },
    PatternSpec {
        name: "month-day-or-century",
        label: "DATE",
        regex: r"(?:January|February|March|April|June|July|August|September|October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)|\d{1,2}(?:st|nd|rd|th)\scentury",
        group: 0,
        score: 0.5,
        priority: PRIORITY_WEAK_PATTERN,
    },
    PatternSpec {
        name: "dosage",
        label: "DOSAGE",
        regex: r"\d+(?:\.\d+)?(?:\s?(?:-|–|to)\s?\d+(?:\.\d+)?)?\s?(?:mg|mcg|µg|μg|g|mL|ml|IU|units|mmol|mEq)(?:\s?/\s?(?:kg|day|d|dose|m2|m²|mL|ml|h|hr|hour|L))?(?-u:\b)",
        group: 0,
        score: 0.9,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "statute-code",
        label: "STATUTE",
        regex: r"\d+\s(?:U\.\s?S\.\s?C\.|C\.\s?F\.\s?R\.|U\.S\.C\.A\.)\s?(?:§§?\s?)?\d+[a-z]?(?:\.\d+)*(?:\([a-zA-Z0-9]{1,4}\))*",
        group: 0,
        score: 0.95,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "statute-section",
        label: "STATUTE",
        regex: r"(?:§§?\s?|Art\.\s?|Article\s|Section\s|Sec\.\s)\d+[a-z]?(?:[-.]\d+)*(?:\([a-zA-Z0-9]{1,4}\))*",
        group: 0,
        score: 0.85,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "named-act",
        label: "STATUTE",
        regex: r"[Tt]he\s(?:\p{Lu}[\p{L}'’\-]*\s(?:(?:and|of|on|for|the|&)\s)?){1,8}(?:Act|Code|Statute|Regulation|Directive)(?:\s(?:of\s)?\d{4})?",
        group: 0,
        score: 0.7,
        priority: PRIORITY_WEAK_PATTERN,
    },
    PatternSpec {
        name: "court",
        label: "COURT",
        regex: r"[Tt]he\s(?:(?:\p{Lu}[\p{L}'’\-]*\s){0,5}(?:Court|Tribunal)\sof\s(?:Appeals?|Justice|Chancery|Claims)|(?:\p{Lu}[\p{L}'’\-]*\s){1,5}(?:Court|Tribunal))(?:\sfor\sthe(?:\s\p{Lu}\p{L}*)+)?",
        group: 0,
        score: 0.7,
        priority: PRIORITY_WEAK_PATTERN,
    },
    PatternSpec {
        name: "case-number",
        label: "CASE_NUMBER",
        regex: r"(?:(?:Case|Docket)\s)?No\.\s?\d{1,2}(?::\d{2})?-[a-zA-Z]{2,4}-\d{3,6}(?:-[A-Z]{2,4})*|(?:(?:Case|Docket)\s)?No\.\s?\d{2,4}-\d{2,6}|\d:\d{2}-[a-z]{2}-\d{3,6}|Case\s[CT]-\d{1,4}/\d{2}",
        group: 0,
        score: 0.95,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "ticker-exchange",
        label: "TICKER",
        regex: r"(?:NYSE American|NYSE|NASDAQ|Nasdaq|AMEX|LSE|TSX|HKEX|SSE|SZSE|Euronext|XETRA|TSE|ASX):\s?[A-Z]{1,5}(?:\.[A-Z]{1,2})?",
        group: 0,
        score: 0.95,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "ticker-context",
        label: "TICKER",
        regex: r"(?:[Tt]icker|[Ss]ymbol|listed as|trades as|trading as)(?:\s(?:symbol|is|of))?:?\s([A-Z]{1,5}(?:\.[A-Z])?)(?-u:\b)",
        group: 1,
        score: 0.85,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "ticker-cashtag",
        label: "TICKER",
        regex: r"\$[A-Z]{1,5}(?-u:\b)",
        group: 0,
        score: 0.8,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "icd-code",
        label: "ICD_CODE",
        regex: r"[A-Z]\d{2}\.[0-9A-Z]{1,4}",
        group: 0,
        score: 0.9,
        priority: PRIORITY_PATTERN,
    },
    PatternSpec {
        name: "icd-code-context",
        label: "ICD_CODE",
        regex: r"(?:ICD-?1[01](?:-CM)?|diagnosis code|code)\s?:?\s?([A-Z]\d{2}(?:\.[0-9A-Z]{1,4})?)",
        group: 1,
        score: 0.9,
        priority: PRIORITY_PATTERN,
    },
];

/// A compiled pattern recogniser.
#[derive(Debug, Clone)]
pub struct PatternRecognizer {
    pub spec: PatternSpec,
    regex: Regex,
    recogniser: String,
}

impl PatternRecognizer {
    pub fn compile(spec: PatternSpec) -> anyhow::Result<PatternRecognizer> {
        let source = spec.regex.replace("{MONTH}", MONTH);
        let regex = Regex::new(&source).with_context(|| format!("compiling pattern `{}`", spec.name))?;
        Ok(PatternRecognizer { spec, regex, recogniser: format!("pattern:{}", spec.name) })
    }

    /// Appends this pattern's matches on word boundaries to `out`, one per
    /// start position where the pattern matches (`93.5%` and `5%` in
    /// `E11.93.5%`; the overlap policy chooses). A match
    /// that does not start on a word boundary (`C$25` inside `LLC$25`) is
    /// retried from the next character; one whose end is not on a boundary
    /// (`$25,0003`) is retried on shorter prefixes, keeping the longest valid
    /// one (`$25`). So neither what precedes nor what follows a mention changes
    /// whether it is found, which keeps abstraction idempotent.
    pub fn find(&self, text: &str, out: &mut Vec<Detection>) {
        let mut pos = 0;
        while pos <= text.len() {
            let Some((whole_start, _, start, end)) = self.match_at(text, text.len(), pos) else { break };
            let next_char = whole_start + text[whole_start..].chars().next().map_or(1, char::len_utf8);
            let span = if start < end && on_word_boundaries(text, start, end) {
                Some((start, end))
            } else if start < end && !starts_on_boundary(text, start) {
                None
            } else {
                self.shorter_match(text, whole_start, end)
            };
            match span {
                Some((s, e)) => {
                    out.push(Detection {
                        start: s,
                        end: e,
                        label: self.spec.label.to_string(),
                        recogniser: self.recogniser.clone(),
                        score: self.spec.score,
                        priority: self.spec.priority,
                    });
                    // Every start position is tried (matches of one pattern may
                    // overlap; the overlap policy chooses among them).
                    pos = next_char.max(s.min(e));
                }
                None => pos = next_char,
            }
        }
    }

    /// The leftmost match in `text[..limit]` at or after `pos`:
    /// (whole start, whole end, mention start, mention end).
    fn match_at(&self, text: &str, limit: usize, pos: usize) -> Option<(usize, usize, usize, usize)> {
        if self.spec.group == 0 {
            let m = self.regex.find_at(&text[..limit], pos)?;
            Some((m.start(), m.end(), m.start(), m.end()))
        } else {
            let caps = self.regex.captures_at(&text[..limit], pos)?;
            let (whole, m) = (caps.get(0)?, caps.get(self.spec.group)?);
            Some((whole.start(), whole.end(), m.start(), m.end()))
        }
    }
}

/// True when a mention starting at `start` does not continue a word.
fn starts_on_boundary(text: &str, start: usize) -> bool {
    let before = text[..start].chars().next_back();
    let first = text[start..].chars().next();
    match (before, first) {
        (Some(b), Some(f)) => {
            !(super::text::is_word_char(b) && super::text::is_word_char(f))
                || super::text::is_unspaced_script(b)
                || super::text::is_unspaced_script(f)
        }
        _ => true,
    }
}

impl PatternRecognizer {
    /// The longest match starting at `whole_start` that ends before `end` on a
    /// word boundary (for matches whose natural end is not on one).
    fn shorter_match(&self, text: &str, whole_start: usize, end: usize) -> Option<(usize, usize)> {
        let mut limit = end;
        while limit > whole_start {
            limit = text[..limit].char_indices().next_back().map(|(i, _)| i)?;
            let (found_start, found_end, start, end) = self.match_at(text, limit, whole_start)?;
            if found_start != whole_start {
                return None;
            }
            if start < end && on_word_boundaries(text, start, end) {
                return Some((start, end));
            }
            limit = found_end;
        }
        None
    }
}

/// Compiled patterns with a one-pass prefilter: a `RegexSet` of all of them
/// tells which can match a text at all, and only those are run.
#[derive(Debug, Clone)]
pub struct PatternSet {
    patterns: Vec<PatternRecognizer>,
    prefilter: RegexSet,
}

impl PatternSet {
    pub fn new(specs: &[PatternSpec]) -> anyhow::Result<PatternSet> {
        let patterns = specs.iter().map(|spec| PatternRecognizer::compile(*spec)).collect::<anyhow::Result<Vec<_>>>()?;
        let prefilter = RegexSet::new(patterns.iter().map(|p| p.regex.as_str())).context("compiling the pattern prefilter")?;
        Ok(PatternSet { patterns, prefilter })
    }

    pub fn patterns(&self) -> &[PatternRecognizer] {
        &self.patterns
    }

    /// Runs the patterns of allowed types that can match over a text.
    pub fn find_all(&self, text: &str, allowed: &BTreeSet<String>, out: &mut Vec<Detection>) {
        for index in self.prefilter.matches(text).iter() {
            let pattern = &self.patterns[index];
            if allowed.contains(pattern.spec.label) {
                pattern.find(text, out);
            }
        }
    }
}

/// The bundled patterns, compiled.
pub fn bundled_patterns() -> PatternSet {
    PatternSet::new(BUNDLED_PATTERNS).expect("bundled patterns compile (tested)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(String, String)> {
        let patterns = bundled_patterns();
        let allowed: BTreeSet<String> = BUNDLED_PATTERNS.iter().map(|p| p.label.to_string()).collect();
        let mut out = Vec::new();
        patterns.find_all(text, &allowed, &mut out);
        let mut pairs: Vec<(String, String)> = out.iter().map(|d| (d.label.clone(), text[d.start..d.end].to_string())).collect();
        pairs.sort();
        pairs.dedup();
        pairs
    }

    fn has(text: &str, label: &str, surface: &str) -> bool {
        found(text).contains(&(label.to_string(), surface.to_string()))
    }

    #[test]
    fn the_documented_formats_are_recognised() {
        assert!(has("paid $25,000 in damages", "MONEY", "$25,000"));
        assert!(has("revenue of $4.2 billion.", "MONEY", "$4.2 billion"));
        assert!(has("a fine of EUR 1,500", "MONEY", "EUR 1,500"));
        assert!(has("margin rose 3.5% in", "PERCENT", "3.5%"));
        assert!(has("on March 3, 2021 the", "DATE", "March 3, 2021"));
        assert!(has("in Q3 2023 sales", "DATE", "Q3 2023"));
        assert!(has("founded in 1867.", "DATE", "1867"));
        assert!(has("rise every other Friday when", "DATE", "Friday"));
        assert!(has("a year-end (December) loss", "DATE", "December"));
        assert!(has("in the early 21st century?", "DATE", "21st century"));
        assert!(has("take 500 mg twice", "DOSAGE", "500 mg"));
        assert!(has("dose 10 mg/kg daily", "DOSAGE", "10 mg/kg"));
        assert!(has("under 42 U.S.C. § 1983, the", "STATUTE", "42 U.S.C. § 1983"));
        assert!(has("see Art. 12 of", "STATUTE", "Art. 12"));
        assert!(has("The Fair Labor Standards Act of 1938 applies", "STATUTE", "The Fair Labor Standards Act of 1938"));
        assert!(has("before the Ninth Circuit Court of Appeals today", "COURT", "the Ninth Circuit Court of Appeals"));
        assert!(has("Under the Modern Wage Payment Act, fines", "STATUTE", "the Modern Wage Payment Act"));
        assert!(!found("The Court held that").iter().any(|(label, _)| label == "COURT"));
        assert!(has("in the Brackova County Chancery Court.", "COURT", "the Brackova County Chancery Court"));
        assert!(has("The Court of Appeals for the Sixth District held", "COURT", "The Court of Appeals for the Sixth District"));
        assert!(has("per 29 C.F.R. § 541.100.", "STATUTE", "29 C.F.R. § 541.100"));
        assert!(has("in No. 19-cv-04821 the", "CASE_NUMBER", "No. 19-cv-04821"));
        assert!(has("shares (NASDAQ: ZKR) fell", "TICKER", "NASDAQ: ZKR"));
        assert!(has("trades under the ticker VEL.", "TICKER", "VEL"));
        assert!(has("its stock symbol is VELT.", "TICKER", "VELT"));
        assert!(has("under § 14-2207 the", "STATUTE", "§ 14-2207"));
        assert!(has("coded E11.9 for", "ICD_CODE", "E11.9"));
        assert!(has("ICD-10 code I10 applies", "ICD_CODE", "I10"));
    }

    #[test]
    fn near_misses_are_not_recognised() {
        assert!(found("vitamin B12 and 3 items").is_empty(), "{:?}", found("vitamin B12 and 3 items"));
        assert!(!has("x500 mg", "DOSAGE", "500 mg"));
        assert!(has("$25,0003.5%", "MONEY", "$25"), "the longest valid prefix is kept");
        assert!(has("Harlow LLC$25,000 paid", "MONEY", "$25,000"), "a later start is tried");
        assert!(!has("319995", "DATE", "1999"));
        assert!(found("May I sell? Marching orders, Fridays, 21st centuryx").is_empty(), "{:?}", found("May I sell? Marching orders, Fridays, 21st centuryx"));
    }
}
