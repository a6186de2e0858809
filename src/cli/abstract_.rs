//! `r2r abstract`: entity abstraction for EAG stage 1 — export an abstracted
//! dataset (`r2r abstract --data PATH --out DIR`), evaluate the detection against
//! gold spans (`eval`), measure coverage on any data (`coverage`), show the
//! entities of a text (`show`) and record expert corrections (`correct`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::abstraction::export::{write_export, ExportSummary};
use crate::abstraction::quality::{coverage, evaluate, QualityReport};
use crate::abstraction::schema::{is_valid_type_name, NAME_TYPE};
use crate::abstraction::{abstract_dataset, abstract_group, AbstractionOptions, Abstractor, Corrections, EntitySchema, Numbering, RecognizerBuilder};
use crate::data::{Candidate, LoadOptions, QueryGroup, Split};

/// Overall entity F1 the sample data must reach.
pub const REQUIRED_OVERALL_F1: f64 = 0.95;
/// Entity F1 every type of the sample data must reach.
pub const REQUIRED_TYPE_F1: f64 = 0.90;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AbstractArgs {
    #[command(subcommand)]
    pub command: Option<AbstractCommand>,
    #[command(flatten)]
    pub export: ExportArgs,
}

#[derive(Debug, Subcommand)]
pub enum AbstractCommand {
    /// Write the abstracted dataset and its span maps (the same as `r2r abstract --data .. --out ..`).
    Export(ExportArgs),
    /// Precision / recall / F1 per type against gold spans (default: the sample data).
    Eval(EvalArgs),
    /// Entities per 100 words, per domain and type, for any dataset.
    Coverage(CoverageArgs),
    /// Show the entities found in one text and its abstraction.
    Show(ShowArgs),
    /// Record expert corrections in a corrections file.
    Correct(CorrectArgs),
}

/// What configures the recogniser.
#[derive(Debug, Clone, Default, Args)]
pub struct EngineArgs {
    /// Entity schema file (default: the bundled assets/entity_schema.json).
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// Extra gazetteer file(s), `{"TYPE": ["surface", ...]}` (repeatable).
    #[arg(long = "gazetteer")]
    pub gazetteers: Vec<PathBuf>,
    /// Expert corrections file (JSON).
    #[arg(long)]
    pub corrections: Option<PathBuf>,
    /// Also report unknown capitalised names as NAME (off by default).
    #[arg(long)]
    pub heuristic: bool,
    /// Leave out the bundled gazetteers (measure patterns, user gazetteers and the heuristic alone).
    #[arg(long)]
    pub no_bundled_gazetteers: bool,
    /// Detect only the types of a group's own domains (default: every type, own types preferred on ties).
    #[arg(long)]
    pub strict_domain_types: bool,
    /// Also run the bundled learned NER heads (assets/ner/heads/*) on the frozen backbone.
    #[arg(long)]
    pub learned: bool,
    /// A learned NER head directory to run (repeatable; implies the learned recogniser).
    #[arg(long = "ner-head")]
    pub ner_heads: Vec<PathBuf>,
    /// Backbone for the learned heads (default: the one they record).
    #[arg(long)]
    pub ner_backbone: Option<PathBuf>,
    /// One confidence threshold for every learned head and type (default: each head's own).
    #[arg(long)]
    pub ner_threshold: Option<f32>,
}

impl EngineArgs {
    pub fn schema(&self) -> anyhow::Result<EntitySchema> {
        match &self.schema {
            Some(path) => EntitySchema::load(path),
            None => Ok(EntitySchema::bundled()),
        }
    }

    pub fn build(&self) -> anyhow::Result<Abstractor> {
        let mut builder =
            RecognizerBuilder::new(self.schema()?).heuristic_names(self.heuristic).strict_domain_types(self.strict_domain_types);
        if self.no_bundled_gazetteers {
            builder = builder.without_bundled_gazetteers();
        }
        for path in &self.gazetteers {
            builder = builder.gazetteer_file(path)?;
        }
        if let Some(path) = &self.corrections {
            builder = builder.corrections_file(path)?;
        }
        let mut heads = self.ner_heads.clone();
        if self.learned {
            heads.extend(crate::ner::bundled_heads()?);
        }
        if !heads.is_empty() {
            let learned = crate::ner::learned::LearnedRecognizer::load(&heads, self.ner_backbone.as_deref())?;
            learned.set_threshold_override(self.ner_threshold);
            builder = builder.learned(Some(std::sync::Arc::new(learned)));
        }
        Ok(Abstractor::new(builder.build()?))
    }
}

#[derive(Debug, Clone, Default, Args)]
pub struct ExportArgs {
    /// Dataset to abstract (file or directory, any supported format).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output directory: <domain>.jsonl, span_maps/<domain>.jsonl, abstraction.json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Types to mask, comma-separated (default: every type).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Fraction of each group's distinct entities to mask, in [0, 1].
    #[arg(long, default_value_t = 1.0)]
    pub intensity: f64,
    /// Seed for the intensity choice and randomised numbering.
    #[arg(long, default_value_t = 13)]
    pub seed: u64,
    /// Placeholder numbering within a type.
    #[arg(long, value_enum, default_value_t = Numbering::Ordered)]
    pub numbering: Numbering,
    /// Domain for records without one (FlagEmbedding, BEIR).
    #[arg(long)]
    pub domain: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Annotated dataset (default: the sample data, sample_data/).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Fail (exit status 1) unless overall F1 ≥ 0.95 and every type ≥ 0.90.
    #[arg(long)]
    pub check: bool,
    /// How many of the most frequent errors to list.
    #[arg(long, default_value_t = 10)]
    pub errors: usize,
    /// Also write the report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct CoverageArgs {
    /// Any dataset (file or directory); e.g. ../shared/realdata.
    #[arg(long)]
    pub data: PathBuf,
    /// Domain for records without one.
    #[arg(long)]
    pub domain: Option<String>,
    /// Also write the statistics as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Only groups of this split (train, dev, test, test_unseen).
    #[arg(long)]
    pub split: Option<String>,
    /// Queries alone (passages dropped): no propagation of passage finds into the query, so a lower bound
    /// on what abstraction masks in queries, at a fraction of the learned heads' cost.
    #[arg(long)]
    pub queries_only: bool,
    /// Write this many abstracted queries per domain (seeded choice) as Markdown to --samples-out.
    #[arg(long, default_value_t = 50)]
    pub samples: usize,
    #[arg(long)]
    pub samples_out: Option<PathBuf>,
    /// Only write the samples (no coverage pass over the whole dataset).
    #[arg(long, requires = "samples_out")]
    pub samples_only: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The text to analyse.
    #[arg(long)]
    pub text: String,
    /// Domain(s) whose types apply (default: every type).
    #[arg(long, value_delimiter = ',')]
    pub domain: Vec<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct CorrectArgs {
    /// The corrections file to update (created if missing).
    #[arg(long)]
    pub corrections: PathBuf,
    /// Add a surface to a type's gazetteer: TYPE=surface (repeatable).
    #[arg(long)]
    pub add: Vec<String>,
    /// Mark a surface as not an entity: surface, or TYPE=surface for one type (repeatable).
    #[arg(long = "not-entity")]
    pub not_entity: Vec<String>,
    /// Entity schema file (default: the bundled one).
    #[arg(long)]
    pub schema: Option<PathBuf>,
}

pub fn run(args: AbstractArgs) -> anyhow::Result<()> {
    match args.command {
        Some(AbstractCommand::Export(export)) => run_export(export),
        Some(AbstractCommand::Eval(eval)) => run_eval(eval),
        Some(AbstractCommand::Coverage(cov)) => run_coverage(cov),
        Some(AbstractCommand::Show(show)) => run_show(show),
        Some(AbstractCommand::Correct(correct)) => run_correct(correct),
        None if args.export.data.is_some() || args.export.out.is_some() => run_export(args.export),
        None => bail!("give --data PATH --out DIR to export, or a subcommand (export, eval, coverage, show, correct); see `r2r abstract --help`"),
    }
}

fn load_options(domain: &Option<String>) -> LoadOptions {
    LoadOptions { domain: domain.clone(), ..LoadOptions::default() }
}

fn run_export(args: ExportArgs) -> anyhow::Result<()> {
    let (Some(data), Some(out)) = (&args.data, &args.out) else {
        bail!("`r2r abstract` needs both --data PATH and --out DIR");
    };
    let abstractor = args.engine.build()?;
    let opts = AbstractionOptions {
        types: (!args.types.is_empty()).then(|| args.types.iter().map(|t| t.trim().to_string()).collect()),
        intensity: args.intensity,
        numbering: args.numbering,
    };
    opts.validate(abstractor.recognizer()).context("invalid options")?;
    let dataset = crate::data::load(data, &load_options(&args.domain))?;
    let abstracted = abstract_dataset(&dataset, &abstractor, &opts, args.seed);
    let summary = ExportSummary {
        source: data.display().to_string(),
        options: opts,
        seed: args.seed,
        heuristic_names: args.engine.heuristic,
        corrections: abstractor.recognizer().corrections().add_to_gazetteer.len() + abstractor.recognizer().corrections().not_entity.len(),
        groups: 0,
        texts: 0,
        replaced_mentions: 0,
        per_type: Default::default(),
        files: Vec::new(),
    };
    let written = write_export(out, &dataset, &abstracted, summary)?;
    let replaced: usize = abstracted.iter().map(|a| a.maps.query.len() + a.maps.candidates.iter().map(|c| c.spans.len()).sum::<usize>()).sum();
    println!("abstracted {} groups ({replaced} mentions replaced) from {}", abstracted.len(), data.display());
    for path in written {
        println!("  wrote {}", path.display());
    }
    Ok(())
}

/// True when a report meets the sample-data requirement; returns the failures.
pub fn requirement_failures(report: &QualityReport) -> Vec<String> {
    let mut failures = Vec::new();
    if report.overall.f1 < REQUIRED_OVERALL_F1 {
        failures.push(format!("overall F1 {:.4} < {REQUIRED_OVERALL_F1}", report.overall.f1));
    }
    for (label, scores) in &report.per_type {
        if label != NAME_TYPE && scores.f1 < REQUIRED_TYPE_F1 {
            failures.push(format!("{label} F1 {:.4} < {REQUIRED_TYPE_F1}", scores.f1));
        }
    }
    failures
}

fn print_report(report: &QualityReport) {
    println!("{:<14} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6}", "type", "P", "R", "F1", "TP", "FP", "FN");
    let row = |name: &str, s: &crate::abstraction::Scores| {
        println!(
            "{name:<14} {:>7.4} {:>7.4} {:>7.4} {:>6} {:>6} {:>6}",
            s.precision, s.recall, s.f1, s.true_positives, s.false_positives, s.false_negatives
        )
    };
    for (label, scores) in &report.per_type {
        row(label, scores);
    }
    row("overall", &report.overall);
    row("(untyped)", &report.untyped);
    if report.scored_types_declared {
        println!("(a NER set: only its annotated types {:?} are scored)", report.scored_types);
    }
    if !report.unscored_predictions.is_empty() {
        println!("not scored (types this data does not annotate): {:?} predictions", report.unscored_predictions);
    }
    println!("per source (precision of the spans it kept; recall against all gold spans):");
    for (source, s) in &report.per_source {
        println!("  {source:<24} P {:.4} R {:.4} (TP {} FP {})", s.precision, s.recall, s.true_positives, s.false_positives);
    }
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let path = args.data.clone().unwrap_or_else(crate::assets::sample_data_dir);
    let dataset = crate::data::load(&path, &LoadOptions::default())
        .with_context(|| format!("loading {} (generate the sample data with `r2r sample-data generate`)", path.display()))?;
    let abstractor = args.engine.build()?;
    let report = evaluate(&dataset, abstractor.recognizer())?;
    println!("entity detection on {} ({} texts, {} gold spans; exact span and type match)", path.display(), report.texts, report.gold_spans);
    print_report(&report);
    if args.engine.heuristic {
        let baseline = EngineArgs { heuristic: false, ..args.engine.clone() }.build()?;
        let without = evaluate(&dataset, baseline.recognizer())?;
        let names = report.per_type.get(NAME_TYPE).copied().unwrap_or_default();
        println!(
            "capitalised-name heuristic: {} NAME mentions proposed; overall F1 {:.4} with it vs {:.4} without; untyped F1 {:.4} vs {:.4}",
            names.false_positives + names.true_positives,
            report.overall.f1,
            without.overall.f1,
            report.untyped.f1,
            without.untyped.f1
        );
    }
    if args.errors > 0 && !report.errors.is_empty() {
        println!("most frequent errors:");
        for (e, count) in report.top_errors(args.errors) {
            println!("  {count:>5}× {:<8} {:<12} {:?}", e.kind, e.label, e.surface);
        }
    }
    if let Some(json) = &args.json {
        crate::util::atomic_write_json(json, &report)?;
    }
    let failures = requirement_failures(&report);
    if failures.is_empty() {
        println!("requirement (overall F1 ≥ {REQUIRED_OVERALL_F1}, every type ≥ {REQUIRED_TYPE_F1}): PASS");
    } else {
        println!("requirement (overall F1 ≥ {REQUIRED_OVERALL_F1}, every type ≥ {REQUIRED_TYPE_F1}): FAIL — {}", failures.join("; "));
        if args.check {
            bail!("entity F1 requirement not met");
        }
    }
    Ok(())
}

fn run_coverage(args: CoverageArgs) -> anyhow::Result<()> {
    let mut dataset = crate::data::load(&args.data, &load_options(&args.domain))?;
    if let Some(split) = &args.split {
        let split = crate::data::Split::parse(split).with_context(|| format!("unknown split `{split}` (train, dev, test or test_unseen)"))?;
        dataset = dataset.filtered(|g| g.split == split);
    }
    if args.queries_only {
        dataset.groups.iter_mut().for_each(|g| g.candidates.clear());
    }
    let abstractor = args.engine.build()?;
    if let (true, Some(out)) = (args.samples_only, &args.samples_out) {
        write_query_samples(&dataset, &abstractor, args.samples, out)?;
        println!("{} abstracted queries per domain → {}", args.samples, out.display());
        return Ok(());
    }
    let start = std::time::Instant::now();
    let rows = coverage(&dataset, abstractor.recognizer())?;
    println!("entity coverage of {} (mentions per 100 words; {:.1} s)", args.data.display(), start.elapsed().as_secs_f64());
    for row in &rows {
        println!(
            "{:<12} texts {:>7}  words {:>9}  mentions {:>8}  per 100 words {:>6.2}  queries with entities {:>5.1}% of {}  passages {:>5.1}%",
            row.domain,
            row.texts,
            row.words,
            row.mentions,
            row.per_100_words,
            100.0 * row.queries_with_entities,
            row.queries,
            100.0 * row.passages_with_entities
        );
        for (label, t) in &row.per_type {
            println!("    {label:<14} {:>8} mentions  {:>6} distinct  {:>6.2} per 100 words", t.mentions, t.distinct_surfaces, t.per_100_words);
        }
    }
    if let Some(json) = &args.json {
        crate::util::atomic_write_json(json, &rows)?;
    }
    if let Some(out) = &args.samples_out {
        write_query_samples(&dataset, &abstractor, args.samples, out)?;
        println!("{} abstracted queries per domain → {}", args.samples, out.display());
    }
    Ok(())
}

/// A seeded sample of `n` abstracted queries per domain as a Markdown table (original | abstracted |
/// sources), for experts to review.
fn write_query_samples(dataset: &crate::data::Dataset, abstractor: &Abstractor, n: usize, out: &std::path::Path) -> anyhow::Result<()> {
    use rand::seq::SliceRandom;
    let opts = crate::abstraction::AbstractionOptions::default();
    let mut md = format!("# Abstracted queries: a sample of {n} per domain\n\nData: `{}`. Each row: the query, its abstraction (EAG stage 1), and the recognisers of its spans.\n", dataset.source.as_ref().map(|p| p.display().to_string()).unwrap_or_default());
    for domain in dataset.domains() {
        let mut groups: Vec<&crate::data::QueryGroup> = dataset.groups.iter().filter(|g| g.domain == domain).collect();
        groups.shuffle(&mut crate::util::seeded_rng(13, 0x5a4d));
        groups.truncate(n);
        let mut rows = String::new();
        let mut with = 0;
        for g in &groups {
            let found = crate::abstraction::detect_group(g, abstractor.recognizer());
            let abstracted = crate::abstraction::abstract_detected(g, &found, &opts, 13);
            with += usize::from(!found[0].is_empty());
            let mut sources: Vec<String> = found[0].iter().map(|d| format!("{} {} ({:.2})", d.recogniser, d.label, d.score)).collect();
            sources.dedup();
            let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
            rows.push_str(&format!("| {} | {} | {} |\n", cell(&g.query), cell(&abstracted.group.query), cell(&sources.join("; "))));
        }
        md.push_str(&format!("\n## {domain} ({with} of {} sampled queries have a placeholder)\n\n| query | abstracted | sources |\n|---|---|---|\n{rows}", groups.len()));
    }
    crate::util::atomic_write(out, md.as_bytes())
}

fn run_show(args: ShowArgs) -> anyhow::Result<()> {
    let abstractor = args.engine.build()?;
    let domains: Vec<&str> = args.domain.iter().map(String::as_str).collect();
    for d in abstractor.recognize(&args.text, &domains) {
        println!("{:>6}..{:<6} {:<14} {:<24} {:.2}  {:?}", d.start, d.end, d.label, d.recogniser, d.score, &args.text[d.start..d.end]);
    }
    let group = QueryGroup {
        id: "show".into(),
        domain: domains.first().copied().unwrap_or("").to_string(),
        split: Split::Test,
        query: args.text.clone(),
        query_entities: Vec::new(),
        candidates: vec![Candidate { id: "c".into(), text: String::new(), relevance: 1, entities: Vec::new() }],
        secondary_domain: domains.get(1).map(|d| d.to_string()),
        meta: Default::default(),
    };
    println!("{}", abstract_group(&group, &abstractor, &AbstractionOptions::default(), 0).group.query);
    Ok(())
}

/// Splits `TYPE=surface`; `None` for the type when the part before `=` is no type name.
fn split_typed(item: &str) -> (Option<&str>, &str) {
    match item.split_once('=') {
        Some((label, surface)) if is_valid_type_name(label.trim()) => (Some(label.trim()), surface),
        _ => (None, item),
    }
}

fn run_correct(args: CorrectArgs) -> anyhow::Result<()> {
    let schema = match &args.schema {
        Some(path) => EntitySchema::load(path)?,
        None => EntitySchema::bundled(),
    };
    let mut corrections = if args.corrections.exists() { Corrections::load(&args.corrections, &schema)? } else { Corrections::default() };
    for item in &args.add {
        let (Some(label), surface) = split_typed(item) else {
            bail!("--add {item:?}: expected TYPE=surface");
        };
        corrections.add_to_gazetteer(&schema, label, surface).with_context(|| format!("--add {item:?}"))?;
    }
    for item in &args.not_entity {
        let (label, surface) = split_typed(item);
        corrections.mark_not_entity(&schema, surface, label).with_context(|| format!("--not-entity {item:?}"))?;
    }
    corrections.save(&args.corrections)?;
    let types: BTreeSet<&str> = corrections.add_to_gazetteer.iter().map(|a| a.label.as_str()).collect();
    println!(
        "{}: {} additions ({} types), {} not-entity marks",
        args.corrections.display(),
        corrections.add_to_gazetteer.len(),
        types.len(),
        corrections.not_entity.len()
    );
    Ok(())
}
