//! `r2r demo`: pack an experiment into the compact demo the app opens on first launch
//! (`crate::workbench::demo`), and say which shipped demo this machine would open.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::workbench::demo;

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Pack `r2r experiment --out DIR` into OUT: results, TREC runs, the experts in f16, the LSR.
    Pack {
        /// The experiment's output directory (holding results.json and training/).
        #[arg(long)]
        experiment: PathBuf,
        /// The demo directory to write (replaced), e.g. assets/demo/gemma.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the demo the app would open on first launch here.
    Which,
}

pub fn run(cmd: DemoCommand) -> Result<()> {
    match cmd {
        DemoCommand::Pack { experiment, out } => {
            let report = demo::pack(&experiment, &out)?;
            for (file, bytes) in &report.files {
                println!("{:>10}  {file}", bytes);
            }
            println!("wrote {} ({} files, {:.1} MB)", out.display(), report.files.len(), report.total_bytes as f64 / 1e6);
        }
        DemoCommand::Which => {
            let backbone = crate::model::default_backbone::default_backbone();
            match demo::shipped_demo(&backbone) {
                Some(dir) => println!("{}", dir.display()),
                None => println!("no shipped demo for this backbone ({})", backbone.note),
            }
        }
    }
    Ok(())
}
