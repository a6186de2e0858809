//! Which backbone is used when none is named: the Gemma 3 270M generalist (`assets/gemma-generalist`, a
//! backbone bundle) when Gemma is installed in the model store, else the bundled tiny backbone
//! (`assets/backbone`, always present, for tests and offline use). A config's `model.path = "auto"` means
//! this choice; the app, `r2r train` and `r2r experiment` print which one they use and how to get the other.

use super::checkpoint::BACKBONE_FILE;
use std::path::{Path, PathBuf};

/// The `model.path` value that asks for the default backbone.
pub const AUTO: &str = "auto";
/// The Gemma generalist bundle, relative to the project root.
pub const GEMMA_GENERALIST: &str = "assets/gemma-generalist";
/// The bundled tiny backbone, relative to the project root.
pub const BUNDLED: &str = "assets/backbone";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackboneKind {
    GemmaGeneralist,
    Bundled,
}

/// The backbone chosen by default, with one line for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultBackbone {
    pub path: PathBuf,
    pub kind: BackboneKind,
    /// What is used, and how to get the other one.
    pub note: String,
}

use crate::assets::project_root;

/// The bundled tiny backbone under the project root.
pub fn bundled_path() -> PathBuf {
    project_root().join(BUNDLED)
}

/// Whether `path` is the `auto` placeholder.
pub fn is_auto(path: &Path) -> bool {
    path == Path::new(AUTO)
}

/// `path`, with `auto` replaced by the default backbone's path, and a model-store name (`gemma-3-270m`)
/// that is not a path here by its installed file.
pub fn resolve(path: &Path) -> PathBuf {
    if is_auto(path) {
        return default_backbone().path;
    }
    if !path.exists() {
        if let Some(installed) = path.to_str().and_then(super::store::installed_path) {
            return installed;
        }
    }
    path.to_path_buf()
}

/// The default backbone under [`project_root`] and the user's model store.
pub fn default_backbone() -> DefaultBackbone {
    choose(&project_root(), super::store::installed_path(super::store::GEMMA_3_270M.name).is_some())
}

/// The choice, given the project root and whether Gemma 3 270M is installed.
pub fn choose(root: &Path, gemma_installed: bool) -> DefaultBackbone {
    let strip = |p: PathBuf| p.strip_prefix(".").map(Path::to_path_buf).unwrap_or(p);
    let generalist = strip(root.join(GEMMA_GENERALIST));
    let bundled = strip(root.join(BUNDLED));
    let has_generalist = generalist.join(BACKBONE_FILE).is_file();
    match (gemma_installed, has_generalist) {
        (true, true) => DefaultBackbone {
            note: format!("backbone: the Gemma 3 270M generalist ({}); the bundled tiny backbone is {}", generalist.display(), bundled.display()),
            path: generalist,
            kind: BackboneKind::GemmaGeneralist,
        },
        (false, _) => DefaultBackbone {
            note: format!(
                "backbone: the bundled tiny backbone ({}); for the Gemma 3 270M generalist run `r2r model fetch gemma-3-270m`",
                bundled.display()
            ),
            path: bundled,
            kind: BackboneKind::Bundled,
        },
        (true, false) => DefaultBackbone {
            note: format!(
                "backbone: the bundled tiny backbone ({}); Gemma 3 270M is installed but {} has no generalist: run `r2r backbone finetune`",
                bundled.display(),
                generalist.display()
            ),
            path: bundled,
            kind: BackboneKind::Bundled,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemma_generalist_only_when_installed_and_present() {
        let root = tempfile::tempdir().unwrap();
        let without = choose(root.path(), true);
        assert_eq!((without.kind, without.path.clone()), (BackboneKind::Bundled, root.path().join(BUNDLED)));
        assert!(without.note.contains("r2r backbone finetune"), "{}", without.note);
        std::fs::create_dir_all(root.path().join(GEMMA_GENERALIST)).unwrap();
        std::fs::write(root.path().join(GEMMA_GENERALIST).join(BACKBONE_FILE), "{}").unwrap();
        let with = choose(root.path(), true);
        assert_eq!((with.kind, with.path), (BackboneKind::GemmaGeneralist, root.path().join(GEMMA_GENERALIST)));
        let not_installed = choose(root.path(), false);
        assert_eq!(not_installed.kind, BackboneKind::Bundled);
        assert!(not_installed.note.contains("r2r model fetch gemma-3-270m"), "{}", not_installed.note);
        assert!(is_auto(Path::new("auto")) && !is_auto(Path::new("assets/backbone")));
        assert_eq!(resolve(Path::new("some/model")), PathBuf::from("some/model"));
    }
}
