//! The one configuration-file loader: every config type (training, experiment, backbone pretraining and
//! fine-tuning) is read the same way. TOML, or JSON when the file ends in `.json`; the types use
//! `deny_unknown_fields`, so a misspelt key is an error naming it; the parsed value is then validated.
//! Errors name the file.

use std::path::Path;

use anyhow::Context;

/// A configuration type: its file format is parsed by serde, then `check` validates the values.
pub trait ConfigFile: serde::de::DeserializeOwned {
    /// Rejects values the engine cannot run with (zero sizes, out-of-range rates), naming the field.
    fn check(&self) -> anyhow::Result<()>;
}

/// Reads, parses and validates a config file (at most `util::MAX_CONFIG_FILE_BYTES`).
pub fn load<T: ConfigFile>(path: &Path) -> anyhow::Result<T> {
    let text = crate::util::read_text_limited(path, crate::util::MAX_CONFIG_FILE_BYTES)?;
    let config: T = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    } else {
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    };
    config.check().with_context(|| format!("{}", path.display()))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::finetune::FinetuneConfig;
    use crate::train::TrainConfig;

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let bad_key = dir.path().join("f.toml");
        std::fs::write(&bad_key, "stepz = 3\n").unwrap();
        let e = format!("{:#}", load::<FinetuneConfig>(&bad_key).unwrap_err());
        assert!(e.contains("f.toml") && e.contains("stepz"), "{e}");
        let zero = dir.path().join("z.json");
        std::fs::write(&zero, r#"{"steps": 0}"#).unwrap();
        let e = format!("{:#}", load::<FinetuneConfig>(&zero).unwrap_err());
        assert!(e.contains("z.json") && e.contains("steps"), "{e}");
        let ok = dir.path().join("ok.toml");
        std::fs::write(&ok, "steps = 3\n").unwrap();
        assert_eq!(load::<FinetuneConfig>(&ok).unwrap().steps, 3);
        assert!(load::<TrainConfig>(&dir.path().join("missing.toml")).is_err());
    }
}
