//! The optional capitalised-name heuristic (off by default): a run of
//! capitalised words not known to any other recogniser is reported as a `NAME`
//! of unknown type. It skips a single capitalised word at the start of a
//! sentence, lone all-capital acronyms (`ICD`), leading function words (`The`,
//! `In`, ...), possessive `'s` and letters of unspaced scripts; it runs after
//! the overlap policy and leaves out the parts of a run that a kept entity
//! covers (it only fills gaps). Its quality is measured separately
//! (`r2r abstract eval --heuristic`).

use std::sync::OnceLock;

use regex::Regex;

use super::recognizer::{Detection, PRIORITY_HEURISTIC};
use super::schema::NAME_TYPE;
use super::text::on_word_boundaries;

fn name_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // A capitalised word; `-` and apostrophes only between letters (O'Brien, Jean-Luc).
        // Letters of unspaced scripts (Han, kana, Hangul) never continue a name.
        let letter = r"[\p{L}\p{M}&&[^\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]]";
        let word = format!(r"\p{{Lu}}{letter}*(?:['’\-]{letter}+)*");
        let connector = format!("(?:{})", CONNECTORS.join("|"));
        Regex::new(&format!(r"{word}(?:(?:[ ]{connector})?[ ]{word})*")).expect("valid name regex")
    })
}

/// Lower-case words that may join the capitalised words of one name.
const CONNECTORS: &[&str] = &["of", "de", "van", "von", "der", "den", "la", "le", "del", "du", "da", "&"];

/// Capitalised words that are not names on their own.
const FUNCTION_WORDS: &[&str] = &[
    "A", "An", "And", "As", "At", "But", "By", "For", "From", "He", "Her", "His", "How", "I", "If", "In", "Is", "It", "Its",
    "No", "Not", "Of", "On", "Or", "She", "So", "That", "The", "Their", "There", "These", "They", "This", "Those", "To",
    "We", "What", "When", "Where", "Which", "Who", "Why", "With", "You", "Your", "Yes", "Does", "Do", "Can", "Are", "Was",
];

fn starts_sentence(text: &str, start: usize) -> bool {
    let before = text[..start].trim_end();
    before.is_empty() || before.ends_with(['.', '?', '!', ':', '\n', '"', '“'])
}

/// Appends `NAME` detections for capitalised runs to `out`, leaving out the
/// parts of a run that `taken` (other recognisers' candidates) covers: the rest
/// of the run still counts ("Royal Society Zeekr" with Zeekr a company gives the
/// name "Royal Society"), so the result does not change once Zeekr is a placeholder.
pub fn find_names(text: &str, taken: &[Detection], out: &mut Vec<Detection>) {
    let mut taken: Vec<(usize, usize)> = taken.iter().map(|d| (d.start, d.end)).collect();
    taken.sort_unstable();
    let longest = taken.iter().map(|(s, e)| e - s).max().unwrap_or(0);
    for m in name_regex().find_iter(text) {
        // A possessive ends a name: "Zeekr's Model X" holds "Zeekr" and "Model X".
        let mut segments = Vec::new();
        let mut start = m.start();
        let run = m.as_str();
        let mut offset = 0;
        for piece in run.split_inclusive(['\'', '’']) {
            let piece_start = m.start() + offset;
            offset += piece.len();
            let after = &run[offset..];
            if after.starts_with("s ") || after == "s" {
                segments.push((start, piece_start + piece.len() - piece.chars().last().map_or(0, char::len_utf8)));
                start = (m.start() + offset + 2).min(m.end());
            }
        }
        segments.push((start, m.end()));
        for (seg_start, seg_end) in segments {
            let mut cursor = seg_start;
            // Candidates overlapping the segment start within `longest` before it.
            let first = taken.partition_point(|&(s, _)| s + longest < seg_start);
            for &(start, end) in taken[first..].iter().take_while(|&&(s, _)| s < seg_end).filter(|&&(_, e)| e > seg_start) {
                emit_piece(text, cursor, start.max(cursor), out);
                cursor = cursor.max(end);
            }
            emit_piece(text, cursor, seg_end, out);
        }
    }
}

/// Trims spaces and dangling connectors off a piece of a run, then emits it.
fn emit_piece(text: &str, mut start: usize, mut end: usize, out: &mut Vec<Detection>) {
    if start >= end {
        return;
    }
    loop {
        let piece = &text[start..end];
        let trimmed_start = piece.trim_start();
        let trimmed = trimmed_start.trim_end();
        start += piece.len() - trimmed_start.len();
        end = start + trimmed.len();
        match trimmed.rsplit_once(' ') {
            Some((head, last)) if CONNECTORS.contains(&last) => end = start + head.len(),
            _ => match trimmed.split_once(' ') {
                Some((first, tail)) if CONNECTORS.contains(&first) => start = end - tail.len(),
                _ => break,
            },
        }
    }
    emit_name(text, start, end, out);
}

/// Applies the function-word and sentence-start rules to one run and emits it.
fn emit_name(text: &str, mut start: usize, end: usize, out: &mut Vec<Detection>) {
    if start >= end {
        return;
    }
    let mut rest = &text[start..end];
    while let Some((first, tail)) = rest.split_once(' ') {
        let (connector, after) = tail.split_once(' ').unwrap_or((tail, ""));
        if FUNCTION_WORDS.contains(&first) {
            start += first.len() + 1;
            rest = tail;
        } else if starts_sentence(text, start) && CONNECTORS.contains(&connector) && !after.is_empty() {
            // "Violations of Zeekr" at a sentence start: the first word is probably not a name.
            start += first.len() + connector.len() + 2;
            rest = after;
        } else {
            break;
        }
    }
    if FUNCTION_WORDS.contains(&rest) || rest.chars().count() < 2 {
        return;
    }
    if !rest.contains(' ') && (starts_sentence(text, start) || !rest.chars().any(char::is_lowercase)) {
        // A lone sentence-initial word, or an acronym (ICD, USD): not a name.
        return;
    }
    if !on_word_boundaries(text, start, end) {
        return;
    }
    out.push(Detection {
        start,
        end,
        label: NAME_TYPE.to_string(),
        recogniser: "heuristic:capitalised".to_string(),
        score: 0.3,
        priority: PRIORITY_HEURISTIC,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitalised_runs_are_names_but_sentence_starts_are_not() {
        let text = "The court heard Maria de Souza. Yesterday the Royal Society met in Lisbon under ICD-10. Violations of Zeekr's O'Brien Act.";
        let mut out = Vec::new();
        find_names(text, &[], &mut out);
        let names: Vec<&str> = out.iter().map(|d| &text[d.start..d.end]).collect();
        assert_eq!(names, ["Maria de Souza", "Royal Society", "Lisbon", "Zeekr", "O'Brien Act"]);

        let text = "Ask the Royal Society of Zeekr布洛芬 today";
        let at = text.find("Zeekr").unwrap();
        let taken = [Detection { start: at, end: at + 5, label: "COMPANY".into(), recogniser: "t".into(), score: 1.0, priority: 60 }];
        let mut out = Vec::new();
        find_names(text, &taken, &mut out);
        let names: Vec<&str> = out.iter().map(|d| &text[d.start..d.end]).collect();
        assert_eq!(names, ["Royal Society"], "covered parts and dangling connectors are left out");
    }
}
