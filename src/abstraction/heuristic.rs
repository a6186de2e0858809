//! The optional capitalised-name heuristic (off by default): a run of
//! capitalised words not known to any other recogniser is reported as a `NAME`
//! of unknown type. It skips a single capitalised word at the start of a
//! sentence and leading function words (`The`, `In`, ...). Its quality is
//! measured separately (`r2r abstract eval --heuristic`).

use std::sync::OnceLock;

use regex::Regex;

use super::recognizer::{Detection, PRIORITY_HEURISTIC};
use super::schema::NAME_TYPE;
use super::text::on_word_boundaries;

fn name_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let word = r"\p{Lu}[\p{L}\p{M}'’\-]*";
        let connector = r"(?:of|de|van|von|der|den|la|le|del|du|da|&)";
        Regex::new(&format!(r"{word}(?:[ ]{connector})?(?:[ ]{word})*")).expect("valid name regex")
    })
}

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

/// Appends `NAME` detections for capitalised runs to `out`.
pub fn find_names(text: &str, out: &mut Vec<Detection>) {
    for m in name_regex().find_iter(text) {
        let (mut start, end) = (m.start(), m.end());
        // Drop leading function words ("The Hague" stays "The Hague" only if the
        // remainder is empty, in which case the run is skipped anyway).
        let mut rest = &text[start..end];
        while let Some((first, tail)) = rest.split_once(' ') {
            if FUNCTION_WORDS.contains(&first) {
                start += first.len() + 1;
                rest = tail;
            } else {
                break;
            }
        }
        if FUNCTION_WORDS.contains(&rest) || rest.chars().count() < 2 {
            continue;
        }
        if !rest.contains(' ') && starts_sentence(text, start) {
            continue;
        }
        if !on_word_boundaries(text, start, end) {
            continue;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capitalised_runs_are_names_but_sentence_starts_are_not() {
        let text = "The court heard Maria de Souza. Yesterday the Royal Society met in Lisbon.";
        let mut out = Vec::new();
        find_names(text, &mut out);
        let names: Vec<&str> = out.iter().map(|d| &text[d.start..d.end]).collect();
        assert_eq!(names, ["Maria de Souza", "Royal Society", "Lisbon"]);
    }
}
