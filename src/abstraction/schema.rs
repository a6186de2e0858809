//! The entity type schema: which entity types each domain knows, loaded from
//! `assets/entity_schema.json` (bundled) or a user file of the same shape, and
//! validated so every type can be written as a `[TYPE_n]` placeholder.
//!
//! File shape: `{"domains": {"<domain>": {"<TYPE>": {"description": str,
//! "examples": [str, ...]}}}}`; keys starting with `_` are comments. Type names
//! are upper-case ASCII letters, digits and `_` (starting with a letter, not
//! ending with `_`). A type may belong to several domains (DATE, MONEY).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The bundled schema file.
pub const BUNDLED_SCHEMA: &str = include_str!("../../assets/entity_schema.json");

/// The pseudo-type of the optional capitalised-name heuristic: a name whose type
/// is unknown. It belongs to no domain and is only produced when the heuristic is on.
pub const NAME_TYPE: &str = "NAME";

/// One entity type of a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeInfo {
    pub description: String,
    #[serde(default)]
    pub examples: Vec<String>,
}

/// Entity types per domain (sorted maps: deterministic listing).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntitySchema {
    pub domains: BTreeMap<String, BTreeMap<String, TypeInfo>>,
}

#[derive(Deserialize)]
struct SchemaFile {
    domains: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

/// True for a valid type name: `[A-Z][A-Z0-9_]*`, not ending with `_`.
pub fn is_valid_type_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_uppercase()
        && bytes.iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
        && !name.ends_with('_')
}

impl EntitySchema {
    /// The bundled schema.
    pub fn bundled() -> EntitySchema {
        EntitySchema::from_json(BUNDLED_SCHEMA, "assets/entity_schema.json").expect("the bundled schema is valid (tested)")
    }

    /// Reads and validates a schema file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<EntitySchema> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading schema {}", path.display()))?;
        EntitySchema::from_json(&text, &path.display().to_string())
    }

    /// Parses and validates schema JSON; `source` names it in errors.
    pub fn from_json(text: &str, source: &str) -> anyhow::Result<EntitySchema> {
        let file: SchemaFile =
            serde_json::from_str(text).with_context(|| format!("{source}: not a schema (expected {{\"domains\": {{..}}}})"))?;
        let mut domains = BTreeMap::new();
        for (domain, types) in file.domains {
            if domain.starts_with('_') {
                continue;
            }
            if domain.trim().is_empty() {
                bail!("{source}: field `domains`: empty domain name");
            }
            let mut parsed = BTreeMap::new();
            for (name, value) in types {
                if name.starts_with('_') {
                    continue;
                }
                let field = format!("domains.{domain}.{name}");
                if !is_valid_type_name(&name) {
                    bail!("{source}: field `{field}`: type name must be upper-case letters, digits and `_` (like CASE_NUMBER)");
                }
                if name == NAME_TYPE {
                    bail!("{source}: field `{field}`: `{NAME_TYPE}` is reserved for the capitalised-name heuristic");
                }
                let info: TypeInfo = serde_json::from_value(value)
                    .with_context(|| format!("{source}: field `{field}`: expected {{\"description\": str, \"examples\": [str]}}"))?;
                if info.description.trim().is_empty() {
                    bail!("{source}: field `{field}.description`: empty description");
                }
                parsed.insert(name, info);
            }
            if parsed.is_empty() {
                bail!("{source}: field `domains.{domain}`: a domain needs at least one type");
            }
            domains.insert(domain, parsed);
        }
        if domains.is_empty() {
            bail!("{source}: field `domains`: no domains");
        }
        Ok(EntitySchema { domains })
    }

    /// Every type of every domain.
    pub fn all_types(&self) -> BTreeSet<String> {
        self.domains.values().flat_map(|types| types.keys().cloned()).collect()
    }

    /// The types of one domain, or `None` for a domain the schema does not know.
    pub fn types_of(&self, domain: &str) -> Option<BTreeSet<String>> {
        self.domains.get(domain).map(|types| types.keys().cloned().collect())
    }

    pub fn has_type(&self, name: &str) -> bool {
        self.domains.values().any(|types| types.contains_key(name))
    }

    /// The types allowed in a text of these domains: the union of the known
    /// domains' types; every type of the schema when none of them is known.
    pub fn scope(&self, domains: &[&str]) -> BTreeSet<String> {
        let known: Vec<BTreeSet<String>> = domains.iter().filter_map(|d| self.types_of(d)).collect();
        if known.is_empty() {
            self.all_types()
        } else {
            known.into_iter().flatten().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_schema_has_the_four_domains_and_valid_types() {
        let schema = EntitySchema::bundled();
        assert_eq!(schema.domains.keys().collect::<Vec<_>>(), ["financial", "general", "legal", "medical"]);
        assert!(schema.types_of("medical").unwrap().contains("ICD_CODE"));
        assert!(schema.scope(&["unknown"]).contains("COMPANY"));
        assert!(!schema.scope(&["legal"]).contains("COMPANY"));
        assert!(schema.scope(&["legal", "medical"]).contains("DRUG"));
    }

    #[test]
    fn invalid_schemas_are_rejected_with_the_field() {
        let bad_name = r#"{"domains": {"x": {"drug": {"description": "d"}}}}"#;
        let err = EntitySchema::from_json(bad_name, "s.json").unwrap_err().to_string();
        assert!(err.contains("domains.x.drug"), "{err}");
        let no_desc = r#"{"domains": {"x": {"DRUG": {"description": " "}}}}"#;
        assert!(EntitySchema::from_json(no_desc, "s.json").unwrap_err().to_string().contains("description"));
        assert!(EntitySchema::from_json("[1]", "s.json").is_err());
        assert!(EntitySchema::from_json(r#"{"domains": {}}"#, "s.json").is_err());
        assert!(!is_valid_type_name("TYPE_") && !is_valid_type_name("1X") && is_valid_type_name("CASE_NUMBER"));
    }
}
