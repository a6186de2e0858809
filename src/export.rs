//! Tables as CSV files (RFC 4180 quoting) for the app's "Save CSV" buttons, and
//! reading them back. No UI code: the panels build the rows, this writes them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// One CSV field, quoted when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// A header row and data rows as CSV text (`\n` line ends).
pub fn csv_text<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let mut out = header.iter().map(|h| field(h)).collect::<Vec<_>>().join(",");
    out.push('\n');
    for row in rows {
        out.push_str(&row.iter().map(|f| field(f.as_ref())).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// Parses CSV text (as written by [`csv_text`]) into rows of fields, header included.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => current.push(c),
            (false, '"') if current.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut current)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut current));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => current.push(c),
        }
    }
    if quoted {
        bail!("unterminated quoted field");
    }
    if !current.is_empty() || !row.is_empty() {
        row.push(current);
        rows.push(row);
    }
    Ok(rows)
}

/// A file name from free text: letters, digits, `-`, `_` and `.` kept, the rest `_`.
pub fn file_stem(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect()
}

/// Writes `text` as `DIR/<stem>.<extension>` (or `<stem>-2…` when taken) and returns the path.
pub fn write_new_file(dir: &Path, stem: &str, extension: &str, bytes: &[u8]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stem = file_stem(stem);
    for n in 1..10_000 {
        let name = if n == 1 { format!("{stem}.{extension}") } else { format!("{stem}-{n}.{extension}") };
        let path = dir.join(name);
        if !path.exists() {
            crate::util::atomic_write(&path, bytes)?;
            return Ok(path);
        }
    }
    bail!("{}: too many files named {stem}", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_quotes_commas_and_line_breaks() {
        let rows = vec![vec!["legal".to_string(), "0.500".into()], vec!["a, \"b\"\nc".into(), "".into()]];
        let text = csv_text(&["domain", "NDCG@10"], &rows);
        assert_eq!(text.lines().next(), Some("domain,NDCG@10"));
        let back = parse_csv(&text).unwrap();
        assert_eq!(back[0], ["domain", "NDCG@10"]);
        assert_eq!(back[1..], rows[..]);
        assert!(parse_csv("\"open").is_err());
        let dir = tempfile::tempdir().unwrap();
        let first = write_new_file(dir.path(), "rankings ndcg@10", "csv", text.as_bytes()).unwrap();
        let second = write_new_file(dir.path(), "rankings ndcg@10", "csv", b"x").unwrap();
        assert_eq!(first.file_name().unwrap(), "rankings_ndcg_10.csv");
        assert_eq!(second.file_name().unwrap(), "rankings_ndcg_10-2.csv");
        assert_eq!(std::fs::read_to_string(first).unwrap(), text);
    }
}
