//! The `r2r` binary: the desktop app with no arguments, headless subcommands otherwise.

fn main() -> std::process::ExitCode {
    keep_large_allocations();
    match r2r::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc returns every buffer over 32 MiB to the OS on free (mmap / munmap), so a forward over a batch
/// page-faults its activations in afresh each time (about a tenth of a Gemma forward on the CPU). Serving
/// them from the heap and keeping up to 1 GiB of freed memory for reuse avoids that.
fn keep_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
