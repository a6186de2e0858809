//! The run-directory lock: one job at a time per run directory.
//!
//! `RUN/.lock` is held with an advisory OS lock (`flock` / `LockFileEx`, through `fs4`) for the
//! whole life of a training job. The OS releases it when the process ends in any way (a crash or
//! `kill -9` included), so a lock file left behind by a dead process is stale by construction and
//! is simply taken over; there is no pid guessing. The file records who holds it (pid, command,
//! start time) for the error a second job gets.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The lock file's name inside a run directory.
pub const LOCK_FILE: &str = ".lock";

/// A held run-directory lock; released on drop.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `dir` (created if missing) for `what` (e.g. `r2r train`), or fails at
    /// once, naming the directory and the holder, when another job holds it.
    pub fn acquire(dir: &Path, what: &str) -> Result<RunLock> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating the run directory {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the lock file {}", path.display()))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "another job".to_string() } else { holder.to_string() };
                bail!(
                    "{}: the run directory is in use by {holder}; wait for it to finish or choose another output directory",
                    dir.display()
                );
            }
            Err(fs4::TryLockError::Error(e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
        }
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let note = format!("pid {} ({what}, started at unix time {started})\n", std::process::id());
        file.set_len(0).and_then(|_| file.rewind()).and_then(|_| file.write_all(note.as_bytes())).and_then(|_| file.flush())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(RunLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid_and_a_released_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let first = RunLock::acquire(&run, "r2r train").unwrap();
        let err = RunLock::acquire(&run, "r2r train").unwrap_err().to_string();
        assert!(err.contains("in use by pid") && err.contains(&std::process::id().to_string()) && err.contains("run"), "{err}");
        drop(first);
        // A lock file left behind (as after a crash: the OS dropped the lock) does not block.
        assert!(run.join(LOCK_FILE).is_file());
        let again = RunLock::acquire(&run, "r2r train").unwrap();
        assert_eq!(again.path(), run.join(LOCK_FILE));
    }
}
