//! The desktop app (eframe/egui).

pub fn run(_args: crate::cli::AppArgs) -> anyhow::Result<()> {
    anyhow::bail!("the desktop app is not built yet; see `r2r --help` for the headless commands")
}
