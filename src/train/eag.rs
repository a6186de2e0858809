//! Entity-Aware Generalisation (EAG) and the baselines, all trained by the same loop.
//!
//! - Stage 1: one adapter on the entity-abstracted union of every target domain's training data
//!   (the abstraction engine replaces entities with type placeholders, consistently per group);
//!   the checkpoint with the best dev metric (Precision@5 by default) on the *original* dev union
//!   is kept in `RUN/stage1`.
//! - Stage 2: per domain, a copy of the stage-1 adapter continues on that domain's original data,
//!   giving `RUN/experts/<domain>` (with `stage2.continue_optimizer`, its AdamW continues stage 1's
//!   final state instead of starting afresh). With `stage1.skip` the experts start from a fresh adapter
//!   ("R2R without EAG").
//! - Baselines: a direct fine-tune on the pooled original data (`RUN/baselines/direct`) and
//!   single-domain fine-tunes without stage 1 (`RUN/baselines/single-<domain>`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};

use super::checkpoint::{load_published_adapter, publish_adapter};
use super::expert::{JobSpec, JobSummary, OptimizerState, Trainer};
use super::groups::{encode_groups, EncodedGroup};
use super::pipeline::PreparedData;
use super::config::TrainConfig;
use crate::abstraction::{abstract_dataset_checked, AbstractionOptions, Abstractor, EntitySchema, Numbering, Recognizer, RecognizerBuilder};
use crate::data::{Dataset, QueryGroup};
use crate::model::LoraAdapter;

fn union<'a>(by_domain: &'a BTreeMap<String, Vec<QueryGroup>>, domains: &[String]) -> Vec<&'a QueryGroup> {
    domains.iter().filter_map(|d| by_domain.get(d)).flatten().collect()
}

fn union_encoded(by_domain: &BTreeMap<String, Vec<EncodedGroup>>, domains: &[String]) -> Vec<EncodedGroup> {
    domains.iter().filter_map(|d| by_domain.get(d)).flatten().cloned().collect()
}

/// The recogniser of stage 1's abstraction: the bundled one, less the `stage1.gazetteer_drop`
/// fraction of its gazetteer entries (seeded by `optim.seed`), with the bundled learned NER heads
/// when `stage1.learned_heads`.
pub fn stage1_recognizer(config: &TrainConfig) -> Result<Recognizer> {
    let learned = if config.stage1.learned_heads {
        let heads = crate::ner::bundled_heads().context("stage1.learned_heads")?;
        Some(std::sync::Arc::new(crate::ner::learned::LearnedRecognizer::load(&heads, None).context("stage1.learned_heads")?))
    } else {
        None
    };
    RecognizerBuilder::new(EntitySchema::bundled())
        .drop_bundled_entries(config.stage1.gazetteer_drop, config.optim.seed)
        .learned(learned)
        .build()
        .context("building the entity abstraction engine (stage1.gazetteer_drop)")
}

/// The entity-abstracted union of the target domains' training groups.
pub fn abstracted_union(data: &PreparedData, trainer: &Trainer) -> Result<Vec<QueryGroup>> {
    let groups: Vec<QueryGroup> = union(&data.train, &trainer.config.data.domains).into_iter().cloned().collect();
    abstract_groups(groups, trainer.config, Some(trainer.ctx))
}

/// Stage 1's abstraction of `groups` under `c` (recogniser, mask types and intensity, seed); with a
/// job context, cancellation is checked before each group (with learned heads, each group is a
/// forward pass of their backbone).
///
/// The last result is kept in memory for the process: the variants of an experiment that change
/// stage 2 only (and reruns of stage 1 that find it completed) ask for the same abstraction, which
/// with learned heads costs a backbone forward pass per group.
pub fn abstract_groups(groups: Vec<QueryGroup>, c: &TrainConfig, ctx: Option<&super::JobContext>) -> Result<Vec<QueryGroup>> {
    static LAST: std::sync::Mutex<Option<(String, Vec<QueryGroup>)>> = std::sync::Mutex::new(None);
    let heads = if c.stage1.learned_heads { crate::ner::bundled_heads().ok() } else { None };
    let s1 = &c.stage1;
    let key = crate::util::sha256_hex(
        serde_json::json!([groups, s1.mask_types, s1.mask_intensity, s1.gazetteer_drop, s1.learned_heads, heads, c.optim.seed]).to_string().as_bytes(),
    );
    if let Some((cached_key, cached)) = LAST.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if *cached_key == key {
            return Ok(cached.clone());
        }
    }
    let abstracted = abstract_groups_uncached(groups, c, ctx)?;
    *LAST.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, abstracted.clone()));
    Ok(abstracted)
}

fn abstract_groups_uncached(groups: Vec<QueryGroup>, c: &TrainConfig, ctx: Option<&super::JobContext>) -> Result<Vec<QueryGroup>> {
    let abstractor = Abstractor::new(stage1_recognizer(c)?);
    let types: BTreeSet<String> = c.stage1.mask_types.iter().cloned().collect();
    let options = AbstractionOptions {
        types: if types.is_empty() { None } else { Some(types) },
        intensity: c.stage1.mask_intensity,
        numbering: Numbering::Ordered,
    };
    options.validate(abstractor.recognizer()).context("stage1.mask_types / stage1.mask_intensity")?;
    let dataset = Dataset { source: None, groups };
    let mut check = || ctx.map_or(Ok(()), |ctx| ctx.check_cancelled());
    Ok(abstract_dataset_checked(&dataset, &abstractor, &options, c.optim.seed, &mut check)?.into_iter().map(|a| a.group).collect())
}

/// EAG stage 1; publishes the kept adapter to `RUN/stage1`.
pub fn run_stage1(trainer: &Trainer, data: &PreparedData) -> Result<JobSummary> {
    let c = trainer.config;
    let abstracted = abstracted_union(data, trainer)?;
    let placeholders = abstracted.iter().filter(|g| g.query.contains('[')).count();
    trainer.ctx.log(format!("stage1: {} abstracted training groups ({placeholders} queries with placeholders)", abstracted.len()));
    let refs: Vec<&QueryGroup> = abstracted.iter().collect();
    let train = encode_groups(trainer.reranker, &refs, Some(trainer.ctx))?;
    let dev = union_encoded(&data.dev_encoded, &c.data.domains);
    let spec = JobSpec {
        job: "stage1".into(),
        train: &train,
        dev: &dev,
        init: None,
        init_optimizer: None,
        epochs: c.stage1.epochs,
        learning_rate: c.stage_learning_rate(&c.stage1),
        eval_every: c.stage1.eval_every,
        select_best: c.stage1.select_best,
        select_metric: c.stage1.select_metric,
    };
    let (adapter, summary) = trainer.train(&spec)?;
    publish_adapter(&trainer.run.stage1_dir(), &adapter, &trainer.reranker.model_dir.display().to_string())?;
    Ok(summary)
}

/// The adapter stage 2 starts from: the published stage-1 adapter, or none when stage 1 is skipped.
pub fn stage2_init(trainer: &Trainer) -> Result<Option<LoraAdapter>> {
    if trainer.config.stage1.skip {
        return Ok(None);
    }
    let dir = trainer.run.stage1_dir();
    super::checkpoint::recover_dir(&dir)?;
    if !dir.join(crate::model::adapter_io::CONFIG_FILE).is_file() {
        anyhow::bail!("{} holds no stage-1 adapter: run stage 1 first (`--only stage1`) or set stage1.skip = true", dir.display());
    }
    Ok(Some(load_published_adapter(&dir, trainer.reranker.config(), trainer.reranker.device())?))
}

/// EAG stage 2: one expert per target domain, published to `RUN/experts/<domain>`.
pub fn run_experts(trainer: &Trainer, data: &PreparedData) -> Result<BTreeMap<String, JobSummary>> {
    let c = trainer.config;
    let init = stage2_init(trainer)?;
    let init_optimizer = if c.stage2.continue_optimizer {
        Some(OptimizerState::of_completed_job(&trainer.run.state_dir("stage1"), trainer.reranker).context("stage2.continue_optimizer")?)
    } else {
        None
    };
    let mut out = BTreeMap::new();
    for domain in &c.data.domains {
        let spec = JobSpec {
            job: format!("expert:{domain}"),
            train: &data.train_encoded[domain],
            dev: &data.dev_encoded[domain],
            init: init.as_ref(),
            init_optimizer: init_optimizer.as_ref(),
            epochs: c.stage2.epochs,
            learning_rate: c.stage_learning_rate(&c.stage2),
            eval_every: c.stage2.eval_every,
            select_best: c.stage2.select_best,
            select_metric: c.stage2.select_metric,
        };
        let (adapter, summary) = trainer.train(&spec)?;
        publish_adapter(&trainer.run.expert_dir(domain), &adapter, &trainer.reranker.model_dir.display().to_string())?;
        out.insert(domain.clone(), summary);
    }
    Ok(out)
}

/// The baselines selected in `[baselines]`.
pub fn run_baselines(trainer: &Trainer, data: &PreparedData) -> Result<BTreeMap<String, JobSummary>> {
    let c = trainer.config;
    let mut jobs: Vec<(String, Vec<EncodedGroup>, Vec<EncodedGroup>)> = Vec::new();
    if c.baselines.direct {
        jobs.push(("direct".into(), union_encoded(&data.train_encoded, &c.data.domains), union_encoded(&data.dev_encoded, &c.data.domains)));
    }
    if c.baselines.single_domain {
        for domain in &c.data.domains {
            jobs.push((format!("single-{domain}"), data.train_encoded[domain].clone(), data.dev_encoded[domain].clone()));
        }
    }
    let mut out = BTreeMap::new();
    for (name, train, dev) in jobs {
        let spec = JobSpec {
            job: format!("baseline:{name}"),
            train: &train,
            dev: &dev,
            init: None,
            init_optimizer: None,
            epochs: c.baseline_epochs(),
            learning_rate: c.optim.learning_rate,
            eval_every: c.stage2.eval_every,
            select_best: c.stage2.select_best,
            select_metric: c.stage2.select_metric,
        };
        let (adapter, summary) = trainer.train(&spec)?;
        publish_adapter(&trainer.run.baseline_dir(&name), &adapter, &trainer.reranker.model_dir.display().to_string())?;
        out.insert(name, summary);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remembered_abstraction_is_the_one_of_the_asked_settings() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data/medical.jsonl");
        let groups: Vec<QueryGroup> = crate::data::load(&path, &Default::default()).unwrap().groups.into_iter().take(6).collect();
        let mut config = TrainConfig::default();
        let full = abstract_groups(groups.clone(), &config, None).unwrap();
        assert!(full.iter().any(|g| g.query.contains("[DRUG_1]")), "{:?}", full.iter().map(|g| &g.query).collect::<Vec<_>>());
        config.stage1.mask_intensity = 0.0;
        let none = abstract_groups(groups.clone(), &config, None).unwrap();
        assert_eq!(none.iter().map(|g| &g.query).collect::<Vec<_>>(), groups.iter().map(|g| &g.query).collect::<Vec<_>>());
        config.stage1.mask_intensity = 1.0;
        assert_eq!(abstract_groups(groups.clone(), &config, None).unwrap(), full);
        let fewer = abstract_groups(groups[..3].to_vec(), &config, None).unwrap();
        assert_eq!(fewer.len(), 3, "other groups, other key");
        config.optim.seed += 1;
        let reseeded = abstract_groups(groups[..3].to_vec(), &config, None).unwrap();
        assert_eq!(reseeded[0].meta["abstraction_seed"], config.optim.seed.to_string(), "another seed, another key");
    }
}
