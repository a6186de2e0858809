//! Conversion between the byte offsets used in memory and the character
//! (Unicode scalar value) offsets used in files, as Python and spaCy count them.

use super::EntitySpan;

/// Byte offset of every char boundary: `table[c]` is the byte offset of char `c`,
/// and `table[char_count]` is `text.len()`.
fn char_to_byte_table(text: &str) -> Vec<usize> {
    let mut table: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
    table.push(text.len());
    table
}

/// Converts char-offset spans to byte-offset spans. Errors name the span index.
pub fn spans_from_char_offsets(text: &str, spans: &[EntitySpan]) -> Result<Vec<EntitySpan>, String> {
    let table = char_to_byte_table(text);
    let chars = table.len() - 1;
    spans
        .iter()
        .enumerate()
        .map(|(i, span)| {
            if span.start >= span.end || span.end > chars {
                return Err(format!(
                    "span {i} [{}, {}) is empty or outside the text ({chars} characters)",
                    span.start, span.end
                ));
            }
            Ok(EntitySpan { start: table[span.start], end: table[span.end], label: span.label.clone() })
        })
        .collect()
}

/// Converts byte-offset spans to char-offset spans. Panics only on spans that do
/// not lie on char boundaries, which the engine never creates.
pub fn spans_to_char_offsets(text: &str, spans: &[EntitySpan]) -> Vec<EntitySpan> {
    spans
        .iter()
        .map(|span| EntitySpan {
            start: text[..span.start].chars().count(),
            end: text[..span.end].chars().count(),
            label: span.label.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_and_byte_offsets_round_trip_through_multibyte_text() {
        let text = "Under § 1983 the café owes €5";
        let byte_start = text.find("1983").unwrap();
        let spans = vec![EntitySpan { start: byte_start, end: byte_start + 4, label: "STATUTE".into() }];
        let chars = spans_to_char_offsets(text, &spans);
        assert_eq!(chars[0].start, 8);
        assert_eq!(spans_from_char_offsets(text, &chars).unwrap(), spans);
        let euro_chars = text.chars().count();
        let bad = [EntitySpan { start: euro_chars - 1, end: euro_chars + 1, label: "MONEY".into() }];
        assert!(spans_from_char_offsets(text, &bad).unwrap_err().contains("outside the text"));
    }
}
