//! Where the project's files are found at run time: the one asset resolver. The bundled assets
//! (`assets/`: backbones, heads, configs, demos) and `sample_data/` live under a *project root*, found
//! in this order:
//! 1. `R2R_HOME` (the environment variable), when set;
//! 2. the working directory, when it holds the bundled assets (the CLI or app run from a checkout);
//! 3. a folder above the running executable that holds them (a release bundle, `target/` in a checkout);
//! 4. the checkout the executable was built from, while it still holds them (a binary built with a
//!    target directory elsewhere, `CARGO_TARGET_DIR`, or copied out of the checkout);
//! 5. the installed data directory, `$XDG_DATA_HOME/r2r-workbench` (default `~/.local/share/r2r-workbench`).
//!
//! A flag naming a file always wins over all of these (each command resolves its own flags first).
//! When nothing is found, the working directory is returned, so that errors name the missing
//! `assets/...` path. Test fixtures (`../shared/fixtures`) are only ever named by tests.

use std::path::{Path, PathBuf};

/// The environment variable naming the project root.
pub const HOME_VAR: &str = "R2R_HOME";
/// A file every project root has.
const MARKER: &str = "assets/entity_schema.json";

fn is_root(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

/// The installed data directory (whether or not it exists).
pub fn data_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(base.join("r2r-workbench"))
}

/// The project root (see the module doc for the order).
pub fn project_root() -> PathBuf {
    if let Some(home) = std::env::var_os(HOME_VAR).filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    if is_root(Path::new(".")) {
        return PathBuf::from(".");
    }
    let above_exe = std::env::current_exe().ok().and_then(|exe| exe.ancestors().skip(1).find(|d| is_root(d)).map(Path::to_path_buf));
    let built_from = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))).filter(|d| is_root(d));
    above_exe.or(built_from).or_else(|| data_dir().filter(|d| is_root(d))).unwrap_or_else(|| PathBuf::from("."))
}

/// `path`, or — when it is relative and not under the working directory — the same path under the
/// project root (runs and the shipped demos record backbones as `assets/...`).
pub fn under_project_root(path: &Path) -> PathBuf {
    if path.is_relative() && !path.exists() {
        project_root().join(path)
    } else {
        path.to_path_buf()
    }
}

/// The bundled sample data directory, `sample_data/` under the project root (whether or not it exists).
pub fn sample_data_dir() -> PathBuf {
    project_root().join("sample_data")
}

/// [`sample_data_dir`] when present.
pub fn sample_data() -> Option<PathBuf> {
    Some(sample_data_dir()).filter(|p| p.is_dir())
}

/// The `shared` folder (public real data and fixtures) beside the project root or one of its parent
/// folders (a git worktree sits deeper than the main checkout); `R2R_SHARED` overrides. `None` when absent.
pub fn shared_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("R2R_SHARED").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let root = std::fs::canonicalize(project_root()).ok()?;
    root.ancestors().skip(1).map(|dir| dir.join("shared")).find(|dir| dir.join("realdata").is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checkout_is_a_project_root_and_paths_resolve_under_it() {
        // cargo runs unit tests in the package root.
        assert!(is_root(&project_root()), "{}", project_root().display());
        assert!(!is_root(Path::new("src")));
        assert_eq!(under_project_root(Path::new("/abs/x")), PathBuf::from("/abs/x"));
        let missing = Path::new("no-such-dir-here/x");
        assert_eq!(under_project_root(missing), project_root().join(missing));
        assert!(data_dir().is_some_and(|d| d.ends_with("r2r-workbench")));
    }
}
