//! The experiment configuration (TOML): the training config under `[train]` (every field of
//! `r2r train`'s config, e.g. `[train.data]`, `[train.lora]`) plus `[experiment]` options.
//! Unknown keys are errors.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::train::TrainConfig;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    pub train: TrainConfig,
    pub experiment: ExperimentOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentOptions {
    /// Evaluate at most this many queries per domain and split (0 = all).
    pub max_eval_queries: usize,
    /// Permutations of the paired randomization test.
    pub permutations: usize,
    /// Seed of the randomization test.
    pub seed: u64,
    /// Masking-intensity ablation (slow: retrains stage 1 and the experts per value; empty = off),
    /// e.g. `[0.0, 0.25, 0.5, 1.0]`.
    pub mask_intensities: Vec<f64>,
    /// Stage-2 learning-rate ablation (slow: retrains the experts per rate, stage 2 at that peak rate,
    /// from the main run's stage 1, which is copied, not retrained; empty = off), e.g. `[0.0001, 0.00005]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stage2_learning_rates: Vec<f64>,
    /// Stage-2 optimiser ablation: the experts retrained with `stage2.continue_optimizer` flipped (from the
    /// main run's stage 1, copied, not retrained; slow).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stage2_optimizer_ablation: bool,
    /// LoRA-rank ablation (slow: retrains stage 1 and the experts per rank, alpha = 2 × rank;
    /// empty = off), e.g. `[8, 16, 32, 64]`.
    pub lora_ranks: Vec<usize>,
    /// Per-type masking ablation: stage 1 masks only these types, one retraining per set (slow;
    /// empty = off), e.g. `[["DRUG"], ["DISEASE", "SYMPTOM"]]`.
    pub mask_type_sets: Vec<Vec<String>>,
    /// Per-type masking ablation, one set per entity type of the target domains (added to
    /// `mask_type_sets`).
    pub mask_each_type: bool,
    /// Many-domains study: numbers of experts (seeded random sub-domains of the target domains),
    /// e.g. `[20, 50]`; empty = off.
    pub many_domains: Vec<usize>,
    /// Abstraction-coverage study: fractions of the bundled gazetteer dropped before stage 1 (slow:
    /// retrains stage 1 and the experts per value; empty = off), e.g. `[0.0, 0.25, 0.5, 0.75]`.
    pub coverage_drop: Vec<f64>,
    /// Unseen-domain study: this domain is held out of expert and router training (retrained on the
    /// other target domains when it is one of them); empty = off.
    pub unseen_domain: String,
    /// Score every evaluated query under every expert and every single-domain adapter (true), as
    /// `r2r_soft` and the router sweep need; false scores only the adapters a system picks (the
    /// query's true and routed experts and single-domain adapters: about half the scoring on a
    /// large backbone), and `r2r_soft` and the sweep's random/static routers are left out.
    pub score_all_adapters: bool,
}

impl Default for ExperimentOptions {
    fn default() -> Self {
        ExperimentOptions {
            max_eval_queries: 0,
            permutations: crate::metrics::significance::DEFAULT_PERMUTATIONS,
            seed: 13,
            mask_intensities: Vec::new(),
            stage2_learning_rates: Vec::new(),
            stage2_optimizer_ablation: false,
            lora_ranks: Vec::new(),
            mask_type_sets: Vec::new(),
            mask_each_type: false,
            many_domains: Vec::new(),
            coverage_drop: Vec::new(),
            unseen_domain: String::new(),
            score_all_adapters: true,
        }
    }
}

impl ExperimentConfig {
    /// Reads a TOML file; errors name the file and the offending key.
    pub fn load(path: &Path) -> anyhow::Result<ExperimentConfig> {
        crate::config_file::load(path)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.train.validate()?;
        anyhow::ensure!(self.experiment.permutations > 0, "experiment.permutations must be > 0");
        let e = &self.experiment;
        for x in &e.mask_intensities {
            anyhow::ensure!((0.0..=1.0).contains(x), "experiment.mask_intensities: {x} is outside [0, 1]");
        }
        for x in &e.stage2_learning_rates {
            anyhow::ensure!(x.is_finite() && *x > 0.0, "experiment.stage2_learning_rates: {x} is not a finite rate > 0");
        }
        for x in &e.coverage_drop {
            anyhow::ensure!((0.0..=1.0).contains(x), "experiment.coverage_drop: {x} is outside [0, 1]");
        }
        anyhow::ensure!(e.lora_ranks.iter().all(|&r| r > 0), "experiment.lora_ranks: every rank must be > 0");
        let schema = crate::abstraction::EntitySchema::bundled();
        for set in &e.mask_type_sets {
            anyhow::ensure!(!set.is_empty(), "experiment.mask_type_sets: an empty set (leave it out: the \"all types\" row is always reported)");
            for t in set {
                anyhow::ensure!(schema.has_type(t), "experiment.mask_type_sets: unknown entity type `{t}` (schema types: {:?})", schema.all_types());
            }
        }
        let domains = &self.train.data.domains;
        for &n in &e.many_domains {
            anyhow::ensure!(n >= domains.len().max(2), "experiment.many_domains: {n} experts are fewer than the {} target domains (or 2)", domains.len());
        }
        if domains.contains(&e.unseen_domain) {
            anyhow::ensure!(domains.len() >= 2, "experiment.unseen_domain: holding out `{}` leaves no target domain to train experts on", e.unseen_domain);
        }
        Ok(())
    }

    /// The stage-1 type sets of the per-type masking ablation: `mask_type_sets`, then (with
    /// `mask_each_type`) every type of the target domains' schema, each once.
    pub fn mask_type_sets(&self) -> Vec<Vec<String>> {
        let mut sets = self.experiment.mask_type_sets.clone();
        if self.experiment.mask_each_type {
            let schema = crate::abstraction::EntitySchema::bundled();
            let types: std::collections::BTreeSet<String> = self.train.data.domains.iter().filter_map(|d| schema.types_of(d)).flatten().collect();
            sets.extend(types.into_iter().map(|t| vec![t]));
        }
        let mut seen = std::collections::BTreeSet::new();
        sets.retain(|s| seen.insert(s.clone()));
        sets
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the config serialises")
    }
}

impl crate::config_file::ConfigFile for ExperimentConfig {
    fn check(&self) -> anyhow::Result<()> {
        self.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_train_config_parses_and_typos_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exp.toml");
        std::fs::write(&path, "[train.lora]\nrank = 8\n[experiment]\nmax_eval_queries = 3\n").unwrap();
        let c = ExperimentConfig::load(&path).unwrap();
        assert_eq!((c.train.lora.rank, c.experiment.max_eval_queries), (8, 3));
        std::fs::write(&path, "[experiment]\npermutatons = 3\n").unwrap();
        let err = format!("{:#}", ExperimentConfig::load(&path).unwrap_err());
        assert!(err.contains("exp.toml") && err.contains("permutatons"), "{err}");
        for (bad, needle) in [
            ("mask_type_sets = [[\"DRUGS\"]]", "DRUGS"),
            ("coverage_drop = [1.5]", "coverage_drop"),
            ("lora_ranks = [0]", "lora_ranks"),
            ("many_domains = [2]", "many_domains"),
        ] {
            std::fs::write(&path, format!("[experiment]\n{bad}\n")).unwrap();
            let err = format!("{:#}", ExperimentConfig::load(&path).unwrap_err());
            assert!(err.contains("exp.toml") && err.contains(needle), "{bad}: {err}");
        }
    }

    #[test]
    fn the_shipped_experiment_config_parses_with_every_study_off() {
        let c = ExperimentConfig::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/experiment.toml")).unwrap();
        // The shipped config sizes the evaluation for the time budget; every slow study stays off.
        let studies_off = ExperimentOptions { max_eval_queries: c.experiment.max_eval_queries, permutations: c.experiment.permutations, seed: c.experiment.seed, ..ExperimentOptions::default() };
        assert_eq!(c.experiment, studies_off);
        assert!(c.experiment.max_eval_queries > 0, "the default experiment must bound its evaluation");
    }

    #[test]
    fn the_gemma_experiment_configs_parse_and_bound_their_cost() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs");
        for name in ["experiment-gemma.toml", "experiment-gemma-demo.toml", "experiment-gemma-realdata.toml"] {
            let c = ExperimentConfig::load(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert!(crate::model::default_backbone::is_auto(&c.train.model.path), "{name}: the default backbone (Gemma when installed)");
            assert!(c.experiment.max_eval_queries > 0 && c.train.data.max_train_queries > 0, "{name}: bounded for a CPU");
            assert!(c.train.objective.hard_negatives > 0, "{name}: mined negatives (random ones are too easy for the generalist)");
            // The sample-data runs score every adapter (soft routing and the router sweep in the app); the realdata run only
            // the adapters a system picks, for its longer prompts.
            assert_eq!(c.experiment.score_all_adapters, name != "experiment-gemma-realdata.toml", "{name}: score_all_adapters");
        }
        // The shipped demo: the 30-minute config at a larger size, its experts continuing stage 1's optimiser.
        let mut demo = ExperimentConfig::load(&dir.join("experiment-gemma-demo.toml")).unwrap();
        assert_eq!((demo.train.data.max_train_queries, demo.experiment.max_eval_queries, demo.train.stage2.continue_optimizer), (96, 16, true));
        (demo.train.data.max_train_queries, demo.experiment.max_eval_queries) = (32, 8);
        demo.train.stage2.continue_optimizer = false;
        assert_eq!(demo, ExperimentConfig::load(&dir.join("experiment-gemma.toml")).unwrap());
        // The GPU config: the same recipe at full size, every adapter scored (soft routing, sweep).
        let full = ExperimentConfig::load(&dir.join("experiment-gemma-full.toml")).unwrap();
        let cpu = ExperimentConfig::load(&dir.join("experiment-gemma.toml")).unwrap();
        assert_eq!((full.experiment.max_eval_queries, full.train.data.max_train_queries), (0, 0), "full size");
        assert!(full.experiment.score_all_adapters && !full.experiment.mask_intensities.is_empty());
        assert!(full.train.stage2.continue_optimizer && full.experiment.stage2_optimizer_ablation, "full: the demo's stage 2, and the fresh one as its ablation");
        assert_eq!(full.train.objective.score, cpu.train.objective.score);
        assert_eq!(full.train.objective.hard_negatives, full.train.objective.negatives, "full: every negative mined, as on the CPU");
        assert_eq!((full.train.optim.learning_rate, full.experiment.seed), (cpu.train.optim.learning_rate, cpu.experiment.seed));
        assert_eq!(full.train.data.domains, cpu.train.data.domains);
    }

    #[test]
    fn mask_each_type_adds_the_target_domains_types_once() {
        let mut c = ExperimentConfig::default();
        c.train.data.domains = vec!["medical".into()];
        c.experiment.mask_type_sets = vec![vec!["DRUG".into()], vec!["DISEASE".into(), "SYMPTOM".into()]];
        c.experiment.mask_each_type = true;
        let sets = c.mask_type_sets();
        assert_eq!(sets[..2], c.experiment.mask_type_sets[..]);
        let singles: Vec<&str> = sets[2..].iter().map(|s| s[0].as_str()).collect();
        assert_eq!(singles, ["ANATOMY", "DISEASE", "DOSAGE", "ICD_CODE", "PROCEDURE", "SYMPTOM"], "DRUG is already a set");
    }
}
