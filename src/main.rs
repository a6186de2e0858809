//! The `r2r` binary: the desktop app with no arguments, headless subcommands otherwise.

fn main() -> std::process::ExitCode {
    match r2r::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
