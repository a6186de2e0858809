//! Streaming reader of JSON-lines files: one record per line, blank lines
//! skipped, UTF-8 checked per line so an error names the exact line. Files ending
//! in `.xz` are decompressed on the fly.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::DataError;

/// Longest line (one record) read, in bytes, after decompression: 256 MiB.
pub const MAX_LINE_BYTES: usize = 256 << 20;

/// Opens a regular file for buffered reading, transparently decompressing `.xz`. A FIFO, device
/// or directory is refused (it could block or never end).
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, DataError> {
    crate::util::check_regular_file(path).map_err(|e| DataError::new(path, super::plain_message(&e.to_string(), path)))?;
    let file = File::open(path).map_err(|e| DataError::new(path, format!("cannot open: {e}")))?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "xz") {
        Box::new(xz2::read::XzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, reader)))
}

/// The first non-blank line and its number.
pub fn first_record(path: &Path) -> Result<(usize, String), DataError> {
    let mut first = None;
    let mut reader = LineReader::open(path)?;
    while let Some((line, text)) = reader.next_line()? {
        if !text.trim().is_empty() {
            first = Some((line, text.to_string()));
            break;
        }
    }
    first.ok_or_else(|| DataError::new(path, "the file is empty (no records)"))
}

/// Reads a file line by line with UTF-8 checks.
pub struct LineReader<'p> {
    path: &'p Path,
    reader: Box<dyn BufRead>,
    buf: Vec<u8>,
    line_no: usize,
}

impl<'p> LineReader<'p> {
    pub fn open(path: &'p Path) -> Result<Self, DataError> {
        Ok(LineReader { path, reader: open(path)?, buf: Vec::with_capacity(4096), line_no: 0 })
    }

    /// The next line (without its line ending) and its 1-based number.
    pub fn next_line(&mut self) -> Result<Option<(usize, &str)>, DataError> {
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| DataError::new(self.path, format!("read error: {e}")).at_line(self.line_no + 1))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(DataError::new(self.path, format!("line longer than {} MiB", MAX_LINE_BYTES >> 20)).at_line(self.line_no));
        }
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        let mut bytes = &self.buf[..];
        if self.line_no == 1 && bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
            bytes = &bytes[3..]; // UTF-8 byte-order mark
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            DataError::new(self.path, format!("invalid UTF-8 at byte {} of the line", e.valid_up_to())).at_line(self.line_no)
        })?;
        Ok(Some((self.line_no, text)))
    }
}

/// Calls `each(line_number, text)` for every non-blank line (1-based numbers).
/// Returns the number of records seen; an empty file (no records) is an error.
pub fn for_each_line(path: &Path, mut each: impl FnMut(usize, &str) -> Result<(), DataError>) -> Result<usize, DataError> {
    let mut reader = LineReader::open(path)?;
    let mut records = 0;
    while let Some((line, text)) = reader.next_line()? {
        if text.trim().is_empty() {
            continue;
        }
        records += 1;
        each(line, text)?;
    }
    if records == 0 {
        return Err(DataError::new(path, "the file is empty (no records)"));
    }
    Ok(records)
}

/// Reads one query group per line with `parse(line, text)`, rejecting a query
/// id that repeats an earlier line's. Each group comes with its line number.
pub fn read_groups(
    path: &Path,
    mut parse: impl FnMut(usize, &str) -> Result<super::QueryGroup, DataError>,
) -> Result<Vec<(usize, super::QueryGroup)>, DataError> {
    let mut groups = Vec::new();
    let mut seen_ids: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for_each_line(path, |line, text| {
        let group = parse(line, text)?;
        if let Some(first) = seen_ids.insert(group.id.clone(), line) {
            return Err(DataError::new(path, format!("duplicate query id `{}` (first on line {first})", group.id))
                .at_line(line)
                .field("id"));
        }
        groups.push((line, group));
        Ok(())
    })?;
    Ok(groups)
}
