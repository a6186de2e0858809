//! Typed access to the fields of one JSON record, with errors that name the file,
//! the line and the field path (e.g. `candidates[3].relevance`).

use std::path::Path;

use serde_json::{Map, Value};

use super::{DataError, EntitySpan};

/// Where a record came from, for error messages.
#[derive(Clone, Copy)]
pub struct RecordAt<'a> {
    pub file: &'a Path,
    pub line: usize,
}

impl RecordAt<'_> {
    pub fn error(&self, field: &str, message: impl Into<String>) -> DataError {
        let err = DataError::new(self.file, message).at_line(self.line);
        if field.is_empty() {
            err
        } else {
            err.field(field)
        }
    }

    /// Parses one line as a JSON object.
    pub fn parse_object(&self, text: &str) -> Result<Map<String, Value>, DataError> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(self.error("", format!("expected a JSON object, found {}", kind_of(&other)))),
            Err(err) => Err(self.error("", format!("malformed JSON: {err}"))),
        }
    }

    /// A required, non-empty string field.
    pub fn string(&self, obj: &Map<String, Value>, path: &str, key: &str) -> Result<String, DataError> {
        let field = join(path, key);
        match obj.get(key) {
            None | Some(Value::Null) => Err(self.error(&field, "missing field")),
            Some(Value::String(s)) if s.trim().is_empty() => Err(self.error(&field, "empty string")),
            Some(Value::String(s)) => Ok(s.clone()),
            // Numeric ids are common in BEIR-style files: accept them as strings.
            Some(Value::Number(n)) if key.ends_with("id") => Ok(n.to_string()),
            Some(other) => Err(self.error(&field, format!("expected a string, found {}", kind_of(other)))),
        }
    }

    /// A required id field (string, or a number taken as a string), checked by [`super::check_id`].
    pub fn id(&self, obj: &Map<String, Value>, path: &str, key: &str) -> Result<String, DataError> {
        let id = match obj.get(key) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => self.string(obj, path, key)?,
        };
        super::check_id(&id).map_err(|msg| self.error(&join(path, key), msg))?;
        Ok(id)
    }

    /// An optional id field (absent or null gives `None`).
    pub fn opt_id(&self, obj: &Map<String, Value>, path: &str, key: &str) -> Result<Option<String>, DataError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.id(obj, path, key).map(Some),
        }
    }

    /// An optional string field (absent or null gives `None`; empty is an error).
    pub fn opt_string(&self, obj: &Map<String, Value>, path: &str, key: &str) -> Result<Option<String>, DataError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.string(obj, path, key).map(Some),
        }
    }

    /// A required array field.
    pub fn array<'v>(&self, obj: &'v Map<String, Value>, path: &str, key: &str) -> Result<&'v Vec<Value>, DataError> {
        let field = join(path, key);
        match obj.get(key) {
            None | Some(Value::Null) => Err(self.error(&field, "missing field")),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.error(&field, format!("expected an array, found {}", kind_of(other)))),
        }
    }

    /// A required non-negative integer field.
    pub fn unsigned(&self, obj: &Map<String, Value>, path: &str, key: &str) -> Result<u32, DataError> {
        let field = join(path, key);
        match obj.get(key) {
            None | Some(Value::Null) => Err(self.error(&field, "missing field")),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| self.error(&field, format!("expected a non-negative integer, found {n}"))),
            Some(other) => Err(self.error(&field, format!("expected a non-negative integer, found {}", kind_of(other)))),
        }
    }

    /// Optional entity spans in character offsets, converted to byte offsets of `text`.
    pub fn entity_spans(&self, obj: &Map<String, Value>, path: &str, key: &str, text: &str) -> Result<Vec<EntitySpan>, DataError> {
        let field = join(path, key);
        let items = match obj.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(other) => return Err(self.error(&field, format!("expected an array, found {}", kind_of(other)))),
        };
        let mut spans = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{field}[{i}]");
            let Value::Object(span) = item else {
                return Err(self.error(&item_path, format!("expected an object, found {}", kind_of(item))));
            };
            let start = self.unsigned(span, &item_path, "start")? as usize;
            let end = self.unsigned(span, &item_path, "end")? as usize;
            let label = self.string(span, &item_path, "label")?;
            spans.push(EntitySpan { start, end, label });
        }
        super::spans::spans_from_char_offsets(text, &spans).map_err(|msg| self.error(&field, msg))
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
