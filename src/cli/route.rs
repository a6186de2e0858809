//! `r2r route --router DIR --data PATH [--split test] [--json]`: routes a split's queries with a
//! trained router (the backbone's query hidden states are computed on the fly) or a baseline
//! (`random`, `oracle`, `static:<domain>`), and prints the routing table and confusion matrix —
//! or, with `--json`, accuracy, macro_f1, per-class figures and the confusion matrix with its labels.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::data::{QueryGroup, Split};
use crate::routing::{argmax, Router, RoutingReport, TrainedRouter};
use crate::train::features::{backbone_fingerprint, query_features};

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
fn resolve_router(args: &RouteArgs, data_domains: &[String]) -> Result<(Router, Option<PathBuf>, Option<String>)> {
    let labels = if args.domains.is_empty() { data_domains.to_vec() } else { args.domains.clone() };
    Ok(match args.router.as_str() {
        "random" => (Router::Random { labels, seed: args.seed }, None, None),
        "oracle" => (Router::Oracle { labels }, None, None),
        name if name.starts_with("static:") => {
            let domain = &name["static:".len()..];
            let expert = labels.iter().position(|l| l == domain).with_context(|| format!("--router {name}: `{domain}` is not one of {labels:?}"))?;
            (Router::Static { labels, expert }, None, None)
        }
        dir => {
            let trained = TrainedRouter::load(std::path::Path::new(dir))?;
            let recorded = trained.meta.backbone.clone();
            let fingerprint = recorded.as_ref().and_then(|b| b.sha256.clone());
            let model = match (&args.model, recorded) {
                (Some(m), _) => m.clone(),
                (None, Some(backbone)) => backbone.path,
                (None, None) => bail!("{dir}/router.json records no backbone: pass --model DIR"),
            };
            (Router::Trained(trained), Some(model), fingerprint)
        }
    })
}

pub fn run(args: RouteArgs) -> Result<()> {
    let split = Split::parse(&args.split).with_context(|| format!("--split {}: expected train, dev, test or test_unseen", args.split))?;
    let dataset = crate::data::load(&args.data, &crate::data::LoadOptions::default())?;
    let (router, model, fingerprint) = resolve_router(&args, &dataset.domains())?;
    let labels = router.labels().to_vec();
    let groups: Vec<&QueryGroup> = dataset.select(None, Some(split)).filter(|g| labels.contains(&g.domain)).collect();
    let skipped = dataset.select(None, Some(split)).count() - groups.len();
    if groups.is_empty() {
        bail!("{}: no {split} queries of the router's domains {labels:?}", args.data.display());
    }
    if skipped > 0 {
        eprintln!("note: {skipped} {split} queries of domains outside {labels:?} are not routed");
    }
    let truth: Vec<usize> = groups.iter().map(|g| labels.iter().position(|l| *l == g.domain).expect("filtered")).collect();
    let features = match &model {
        Some(dir) => {
            if let Some(expected) = &fingerprint {
                if backbone_fingerprint(dir)? != *expected {
                    eprintln!("warning: {} differs from the backbone the router was trained on", dir.display());
                }
            }
            let reranker = crate::model::Reranker::load(dir, &crate::model::LoadOptions::default())?;
            query_features(&reranker, &groups, None)?
        }
        None => vec![Vec::new(); groups.len()],
    };
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let predicted: Vec<usize> = router.probabilities(&features, &ids, Some(&truth))?.iter().map(|p| argmax(p)).collect();
    let report = RoutingReport::new(&labels, &truth, &predicted);
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["router"] = router.name().into();
        value["split"] = split.as_str().into();
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("router {} on {} ({split}):", router.name(), args.data.display());
        print!("{}", report.render());
    }
    Ok(())
}
