//! Expert corrections: surfaces added to a type's gazetteer and surfaces marked
//! as not an entity, kept in a user JSON file and applied deterministically after
//! the recognisers (additions compete as the highest-priority gazetteer; marks
//! remove every candidate with that surface before overlaps are resolved).
//!
//! File shape (`version` 1):
//! `{"version": 1, "add_to_gazetteer": [{"type": "DRUG", "surface": "semaglutide"}],
//!   "not_entity": [{"surface": "Apple"}, {"surface": "May", "type": "DATE"}]}`.
//! Surfaces of `not_entity` are compared case-insensitively with whitespace
//! collapsed; a mark without `type` applies to every type. Each list is kept
//! sorted and free of duplicates. The last edit wins: adding a surface lifts a
//! matching mark and marking a surface drops matching additions; in a
//! hand-edited file holding both, the mark wins.

use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use super::gazetteer::{validate_surface, GazetteerEntry};
use super::schema::EntitySchema;
use super::text::normalize_surface;

/// A surface an expert added to a type's gazetteer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddedSurface {
    #[serde(rename = "type")]
    pub label: String,
    pub surface: String,
}

/// A surface an expert marked as not an entity (of one type, or of any type).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotEntity {
    pub surface: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl NotEntity {
    /// True when this mark rejects a mention of `label` whose normalised surface is `key`.
    pub fn rejects(&self, key: &str, label: &str) -> bool {
        self.label.as_deref().is_none_or(|l| l == label) && normalize_surface(&self.surface) == key
    }
}

fn current_version() -> u32 {
    1
}

/// The corrections file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Corrections {
    #[serde(default = "current_version")]
    pub version: u32,
    #[serde(default)]
    pub add_to_gazetteer: Vec<AddedSurface>,
    #[serde(default)]
    pub not_entity: Vec<NotEntity>,
}

impl Default for Corrections {
    fn default() -> Self {
        Corrections { version: current_version(), add_to_gazetteer: Vec::new(), not_entity: Vec::new() }
    }
}

impl Corrections {
    /// Reads and validates a corrections file against the schema.
    pub fn load(path: &Path, schema: &EntitySchema) -> anyhow::Result<Corrections> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading corrections {}", path.display()))?;
        Corrections::from_json(&text, &path.display().to_string(), schema)
    }

    /// Parses and validates corrections JSON; `source` names it in errors.
    pub fn from_json(text: &str, source: &str, schema: &EntitySchema) -> anyhow::Result<Corrections> {
        let mut parsed: Corrections = serde_json::from_str(text).with_context(|| {
            format!("{source}: malformed corrections file (expected {{\"version\": 1, \"add_to_gazetteer\": [..], \"not_entity\": [..]}})")
        })?;
        parsed.validate(schema).with_context(|| format!("{source}: invalid corrections"))?;
        parsed.normalise();
        Ok(parsed)
    }

    /// Checks versions, types and surfaces; errors name the field.
    pub fn validate(&mut self, schema: &EntitySchema) -> anyhow::Result<()> {
        if self.version != current_version() {
            bail!("field `version`: unsupported version {} (expected {})", self.version, current_version());
        }
        for (i, added) in self.add_to_gazetteer.iter_mut().enumerate() {
            if !schema.has_type(&added.label) {
                bail!("field `add_to_gazetteer[{i}].type`: unknown type `{}` (not in the schema)", added.label);
            }
            added.surface = validate_surface(&added.surface).map_err(|m| anyhow::anyhow!("field `add_to_gazetteer[{i}].surface`: {m}"))?;
        }
        for (i, mark) in self.not_entity.iter_mut().enumerate() {
            if let Some(label) = &mark.label {
                if !schema.has_type(label) && label != super::schema::NAME_TYPE {
                    bail!("field `not_entity[{i}].type`: unknown type `{label}` (not in the schema)");
                }
            }
            mark.surface = validate_surface(&mark.surface).map_err(|m| anyhow::anyhow!("field `not_entity[{i}].surface`: {m}"))?;
        }
        Ok(())
    }

    fn normalise(&mut self) {
        self.add_to_gazetteer.sort();
        self.add_to_gazetteer.dedup();
        self.not_entity.sort();
        self.not_entity.dedup();
    }

    /// Writes the file atomically (pretty JSON, sorted lists).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        crate::util::atomic_write_json(path, self)
    }

    /// Adds `surface` to the gazetteer of `label`; lifts marks that would reject it.
    /// Returns false when it was already there.
    pub fn add_to_gazetteer(&mut self, schema: &EntitySchema, label: &str, surface: &str) -> anyhow::Result<bool> {
        if !schema.has_type(label) {
            bail!("unknown type `{label}` (not in the schema)");
        }
        let surface = validate_surface(surface).map_err(anyhow::Error::msg)?;
        let key = normalize_surface(&surface);
        self.not_entity.retain(|mark| !mark.rejects(&key, label));
        let added = AddedSurface { label: label.to_string(), surface };
        let is_new = !self.add_to_gazetteer.contains(&added);
        self.add_to_gazetteer.push(added);
        self.normalise();
        Ok(is_new)
    }

    /// Marks `surface` as not an entity (of `label`, or of any type); drops
    /// additions it would reject. Returns false when the mark was already there.
    pub fn mark_not_entity(&mut self, schema: &EntitySchema, surface: &str, label: Option<&str>) -> anyhow::Result<bool> {
        if let Some(label) = label {
            if !schema.has_type(label) && label != super::schema::NAME_TYPE {
                bail!("unknown type `{label}` (not in the schema)");
            }
        }
        let surface = validate_surface(surface).map_err(anyhow::Error::msg)?;
        let mark = NotEntity { surface, label: label.map(str::to_string) };
        self.add_to_gazetteer.retain(|a| !mark.rejects(&normalize_surface(&a.surface), &a.label));
        let is_new = !self.not_entity.contains(&mark);
        self.not_entity.push(mark);
        self.normalise();
        Ok(is_new)
    }

    /// Removes an addition (undo); returns whether it was there.
    pub fn remove_addition(&mut self, label: &str, surface: &str) -> bool {
        let before = self.add_to_gazetteer.len();
        self.add_to_gazetteer.retain(|a| !(a.label == label && a.surface == surface.trim()));
        before != self.add_to_gazetteer.len()
    }

    /// Removes a mark (undo); returns whether it was there.
    pub fn remove_mark(&mut self, surface: &str, label: Option<&str>) -> bool {
        let before = self.not_entity.len();
        self.not_entity.retain(|m| !(m.surface == surface.trim() && m.label.as_deref() == label));
        before != self.not_entity.len()
    }

    /// The additions as gazetteer entries.
    pub fn gazetteer_entries(&self) -> Vec<GazetteerEntry> {
        self.add_to_gazetteer.iter().map(|a| GazetteerEntry { label: a.label.clone(), surface: a.surface.clone() }).collect()
    }

    /// True when a mark rejects a mention of `label` with this surface.
    pub fn rejects(&self, surface: &str, label: &str) -> bool {
        if self.not_entity.is_empty() {
            return false;
        }
        let key = normalize_surface(surface);
        self.not_entity.iter().any(|mark| mark.rejects(&key, label))
    }

    pub fn is_empty(&self) -> bool {
        self.add_to_gazetteer.is_empty() && self.not_entity.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_round_trip_through_the_file_and_last_edit_wins() {
        let schema = EntitySchema::bundled();
        let mut c = Corrections::default();
        assert!(c.add_to_gazetteer(&schema, "DRUG", " semaglutide ").unwrap());
        assert!(!c.add_to_gazetteer(&schema, "DRUG", "semaglutide").unwrap());
        assert!(c.mark_not_entity(&schema, "Semaglutide", None).unwrap());
        assert!(c.add_to_gazetteer.is_empty());
        assert!(c.rejects("SEMAGLUTIDE", "DRUG"));
        c.add_to_gazetteer(&schema, "DRUG", "semaglutide").unwrap();
        assert!(c.not_entity.is_empty() && !c.rejects("semaglutide", "DRUG"));
        assert!(c.add_to_gazetteer(&schema, "NOPE", "x").is_err());
        assert!(c.add_to_gazetteer(&schema, "DRUG", "  ").is_err());
        assert!(c.mark_not_entity(&schema, "...", None).is_err());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corrections.json");
        c.mark_not_entity(&schema, "May", Some("DATE")).unwrap();
        c.save(&path).unwrap();
        assert_eq!(Corrections::load(&path, &schema).unwrap(), c);
    }

    #[test]
    fn malformed_files_give_errors_naming_the_field() {
        let schema = EntitySchema::bundled();
        for (json, needle) in [
            ("{not json", "malformed"),
            (r#"{"version": 2}"#, "version"),
            (r#"{"add_to_gazetteer": [{"type": "DRUG", "surface": ""}]}"#, "add_to_gazetteer[0].surface"),
            (r#"{"add_to_gazetteer": [{"type": "XYZ", "surface": "a"}]}"#, "add_to_gazetteer[0].type"),
            (r#"{"not_entity": [{"surface": "!!"}]}"#, "not_entity[0].surface"),
            (r#"{"unknown_field": 1}"#, "malformed"),
        ] {
            let err = format!("{:#}", Corrections::from_json(json, "c.json", &schema).unwrap_err());
            assert!(err.contains(needle) && err.contains("c.json"), "{json}: {err}");
        }
    }
}
