//! Small shared helpers: atomic file writes (and the sweep of their orphaned temporary files),
//! guarded reads of input files (regular files only, size limits, byte-order mark stripped),
//! content fingerprints, seeded RNGs, and [`text_key!`] (result keys that behave as their names).

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use rand::SeedableRng;
use sha2::{Digest, Sha256};

/// This process's resident memory now and at its peak, in bytes (Linux `/proc/self/status` VmRSS and
/// VmHWM); `None` elsewhere.
pub fn memory_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is
/// written, flushed and synced, then renamed over `path`. A crash at any point
/// leaves either the old file or the new one, never a torn file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}{TEMP_MARKER}"))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    // NamedTempFile is created 0600; give the result the usual 0644 (or keep the
    // permissions of the file it replaces).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o644);
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.as_file().sync_all().with_context(|| format!("syncing {}", path.display()))?;
    tmp.persist(path).map_err(|e| e.error).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// What names the temporary files of [`atomic_write`]: `.<name>.r2r-tmp-<random>`.
pub const TEMP_MARKER: &str = ".r2r-tmp-";

/// Removes the temporary files that an interrupted [`atomic_write`] left in `dir` (not recursive).
/// Call it only where no other writer can be at work (e.g. under the run-directory lock).
/// Returns the paths removed.
pub fn sweep_orphan_temp_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(removed) };
    for entry in entries.filter_map(|e| e.ok()) {
        let is_orphan = entry.file_name().to_str().is_some_and(|n| n.starts_with('.') && n.contains(TEMP_MARKER));
        if is_orphan && entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::remove_file(entry.path()).with_context(|| format!("removing the orphan temporary file {}", entry.path().display()))?;
            removed.push(entry.path());
        }
    }
    removed.sort();
    Ok(removed)
}

/// Largest TREC run / qrels or scoring-pairs file read (1 GiB).
pub const MAX_TEXT_FILE_BYTES: u64 = 1 << 30;
/// Largest configuration or metadata file read (TOML / JSON settings: 64 MiB).
pub const MAX_CONFIG_FILE_BYTES: u64 = 64 << 20;

/// Checks that `path` is a regular file (after following symlinks); names the problem otherwise
/// (missing, a looping symlink, a directory, a FIFO or a device). Returns its size.
pub fn check_regular_file(path: &Path) -> anyhow::Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| match e.raw_os_error() {
        Some(40) => anyhow::anyhow!("{}: a symbolic link loop (too many levels of symbolic links)", path.display()),
        _ if e.kind() == std::io::ErrorKind::NotFound => anyhow::anyhow!("{}: no such file", path.display()),
        _ => anyhow::anyhow!("{}: cannot read: {e}", path.display()),
    })?;
    if meta.is_dir() {
        anyhow::bail!("{}: is a directory, expected a file", path.display());
    }
    if !meta.is_file() {
        anyhow::bail!("{}: not a regular file (a FIFO, socket or device); only regular files are read", path.display());
    }
    Ok(meta.len())
}

/// Reads a whole regular file of at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let size = check_regular_file(path)?;
    if size > limit {
        anyhow::bail!("{}: {size} bytes, more than the {limit} bytes this kind of file may have", path.display());
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > limit {
        anyhow::bail!("{}: more than the {limit} bytes this kind of file may have", path.display());
    }
    Ok(bytes)
}

/// Reads a regular UTF-8 text file of at most `limit` bytes, without a leading byte-order mark.
/// Invalid UTF-8 is an error naming the line.
pub fn read_text_limited(path: &Path, limit: u64) -> anyhow::Result<String> {
    let bytes = read_limited(path, limit)?;
    let bytes = strip_bom_bytes(&bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_string()),
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            anyhow::bail!("{}:{line}: invalid UTF-8", path.display())
        }
    }
}

/// `text` without a leading UTF-8 byte-order mark (stripped everywhere input is read).
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// `bytes` without a leading UTF-8 byte-order mark.
pub fn strip_bom_bytes(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes)
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn atomic_write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    atomic_write(path, &bytes)
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of a file's content, streamed.
pub fn file_fingerprint(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The project's one seeded RNG type: ChaCha8 is portable and reproducible across
/// platforms and versions, unlike `StdRng`.
pub type SeededRng = rand_chacha::ChaCha8Rng;

/// A seeded RNG; `stream` separates independent uses of the same seed.
pub fn seeded_rng(seed: u64, stream: u64) -> SeededRng {
    let mut rng = SeededRng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// A stable 64-bit hash of a string (FNV-1a), for seeded decisions that must not
/// depend on iteration order or the standard library's randomised hasher.
pub fn stable_hash(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Makes a result key behave as its text: `Display` (padded), equality, hashing and order,
/// `Serialize` and `Deserialize` all go through `name(&self)` (anything `AsRef<str>`) and `FromStr`
/// (`Err = String`). A map keyed by such a type therefore writes the same JSON, keys in the same
/// order, as a map keyed by the texts; the names must be distinct for distinct values.
macro_rules! text_key {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(AsRef::<str>::as_ref(&self.name()))
            }
        }

        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                AsRef::<str>::as_ref(&self.name()) == AsRef::<str>::as_ref(&other.name())
            }
        }

        impl Eq for $t {}

        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                AsRef::<str>::as_ref(&self.name()).hash(state)
            }
        }

        /// By name, as the string keys sorted.
        impl Ord for $t {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                AsRef::<str>::as_ref(&self.name()).cmp(AsRef::<str>::as_ref(&other.name()))
            }
        }

        impl PartialOrd for $t {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(AsRef::<str>::as_ref(&self.name()))
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use text_key;

/// Copies the files directly in `from` (not its subfolders) into `to`, each written atomically.
pub fn copy_dir_files(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let path = entry?.path();
        if path.is_file() {
            let name = path.file_name().expect("a file name");
            let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            atomic_write(&to.join(name), &bytes)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn memory_figures_are_read_and_the_peak_is_at_least_the_current() {
        let (now, peak) = memory_bytes().expect("/proc/self/status");
        assert!(now > 0 && peak >= now, "{now} {peak}");
        let block = vec![1u8; 64 << 20];
        let (_, after) = memory_bytes().unwrap();
        assert!(after >= peak && block.iter().map(|&b| b as u64).sum::<u64>() == 64 << 20);
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        atomic_write(&path, b"first").unwrap();
        atomic_write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "temporary files left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
        }
    }

    #[test]
    fn orphan_temporary_files_are_swept_and_other_files_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".fingerprints.json.r2r-tmp-Ab12"), b"{\"da").unwrap();
        std::fs::write(dir.path().join("fingerprints.json"), b"{}").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        let removed = sweep_orphan_temp_files(dir.path()).unwrap();
        assert_eq!(removed.len(), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, [".hidden", "fingerprints.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read_and_limits_hold() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_limited(Path::new("/dev/zero"), 1 << 20).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let err = read_limited(&fifo, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let looping = dir.path().join("loop");
        std::os::unix::fs::symlink(&looping, &looping).unwrap();
        let err = read_limited(&looping, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("symbolic link loop"), "{err}");
        let big = dir.path().join("big.txt");
        std::fs::write(&big, vec![b'a'; 100]).unwrap();
        assert!(read_limited(&big, 99).unwrap_err().to_string().contains("more than the 99 bytes"));
        std::fs::write(&big, b"\xEF\xBB\xBFq1 0 d1 1\n").unwrap();
        assert_eq!(read_text_limited(&big, 99).unwrap(), "q1 0 d1 1\n");
        std::fs::write(&big, b"ok\nbad \xff\n").unwrap();
        assert!(read_text_limited(&big, 99).unwrap_err().to_string().ends_with("big.txt:2: invalid UTF-8"));
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        // FNV-1a 64 reference value for "a".
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(stable_hash("ab"), stable_hash("ba"));
    }
}
