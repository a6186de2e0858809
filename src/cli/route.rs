//! `r2r route --router DIR --data PATH [--split test] [--json]`: routes a split's queries with a
//! trained router (the backbone's query hidden states are computed on the fly) or a baseline
//! (`random`, `oracle`, `static:<domain>`), and prints the routing table and confusion matrix —
//! or, with `--json`, accuracy, macro_f1, per-class figures and the confusion matrix with its labels.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::data::{QueryGroup, Split};
use crate::routing::{argmax, BackboneRef, Router, RouterName, RoutingReport, TrainedRouter};
use crate::workbench::routing_run::route_groups;

#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// A trained router directory (router.json + router.safetensors), or `random`, `oracle`, `static:<domain>`.
    #[arg(long)]
    pub router: String,
    /// Dataset (any supported format).
    #[arg(long)]
    pub data: PathBuf,
    /// Split to route: train, dev, test, test_unseen.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Backbone directory (default: the one recorded in router.json).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Domains (comma-separated) of a baseline router; default: the data's domains.
    #[arg(long, value_delimiter = ',')]
    pub domains: Vec<String>,
    /// Seed of the random router.
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The router named by `--router`, and the backbone a trained one needs.
fn resolve_router(args: &RouteArgs, data_domains: &[String]) -> Result<(Router, Option<BackboneRef>)> {
    let labels = if args.domains.is_empty() { data_domains.to_vec() } else { args.domains.clone() };
    let dir = args.router.as_str();
    Ok(match dir.parse::<RouterName>() {
        Ok(RouterName::Random) => (Router::Random { labels, seed: args.seed }, None),
        Ok(RouterName::Oracle) => (Router::Oracle { labels }, None),
        Ok(RouterName::Static(domain)) => {
            let expert = labels.iter().position(|l| *l == domain).with_context(|| format!("--router {dir}: `{domain}` is not one of {labels:?}"))?;
            (Router::Static { labels, expert }, None)
        }
        // `lsr` and `mlp` name trained routers: a directory (e.g. one called `lsr`).
        Ok(RouterName::Lsr | RouterName::Mlp) | Err(_) => {
            let trained = TrainedRouter::load(std::path::Path::new(dir))?;
            let recorded = trained.meta.backbone.clone();
            let backbone = match (&args.model, recorded) {
                // --model replaces the path; the recorded fingerprint still warns of a different backbone.
                (Some(m), recorded) => BackboneRef { path: m.clone(), sha256: recorded.and_then(|b| b.sha256) },
                (None, Some(backbone)) => backbone,
                (None, None) => bail!("{dir}/router.json records no backbone: pass --model DIR"),
            };
            (Router::Trained(trained), Some(backbone))
        }
    })
}

pub fn run(args: RouteArgs) -> Result<()> {
    let split = Split::parse(&args.split).with_context(|| format!("--split {}: expected train, dev, test or test_unseen", args.split))?;
    let dataset = crate::data::load(&args.data, &crate::data::LoadOptions::default())?;
    let (router, backbone) = resolve_router(&args, &dataset.domains())?;
    let labels = router.labels().to_vec();
    let groups: Vec<&QueryGroup> = dataset.select(None, Some(split)).filter(|g| labels.contains(&g.domain)).collect();
    let skipped = dataset.select(None, Some(split)).count() - groups.len();
    if groups.is_empty() {
        bail!("{}: no {split} queries of the router's domains {labels:?}", args.data.display());
    }
    if skipped > 0 {
        eprintln!("note: {skipped} {split} queries of domains outside {labels:?} are not routed");
    }
    let (truth, probabilities) = route_groups(&router, backbone.as_ref(), &groups, None)?;
    let predicted: Vec<usize> = probabilities.iter().map(|p| argmax(p)).collect();
    let report = RoutingReport::new(&labels, &truth, &predicted);
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["router"] = router.name().to_string().into();
        value["split"] = split.as_str().into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("router {} on {} ({split}):", router.name(), args.data.display());
        print!("{}", report.render());
    }
    Ok(())
}
