//! Many-domains study: routing accuracy, memory and latency as the number of experts grows.
//!
//! Construction (documented in docs/experiment.md): the N experts are sub-domains of the target
//! domains. Domain d gets N / D sub-domains (the first N mod D domains one more); its training
//! queries and its test queries are each shuffled with the experiment seed (stream: split and
//! domain) and dealt round-robin into them, so the parts differ in size by at most one. The LSR and
//! the MLP router are trained on the N labels (the frozen backbone's query states, as for the
//! domains) and tested on the target domains' `test` split: accuracy and macro-F1 over the N
//! labels, and `parent_accuracy` (the chosen sub-domain belongs to the true domain). Random
//! sub-domains cannot be told apart within a domain, so accuracy within a domain is at chance:
//! this measures how the router copes with many labels, not with many distinguishable domains.
//! Memory: N copies of the first domain's trained expert, each tensor scaled by 1 + 0.01·u with a
//! seeded u ∈ [−1, 1] (not N trained experts), held at once; their tensor bytes are reported with the
//! backbone's (as loaded, f32). Latency per query (up to the first 50 test queries): the query's
//! hidden state, the router's forward over N labels, and one chosen copy scoring the candidates.
//! A row with N = D (the domains themselves) comes first for reference.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use candle_core::{Tensor, Var};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::bench::Bench;
use crate::model::LoraAdapter;
use crate::routing::{argmax, RouterKind, RouterName, RoutingReport, TrainedRouter};
use crate::train::dev_eval::group_margins;
use crate::train::features::query_features;
use crate::util::{seeded_rng, stable_hash};

/// Test queries whose latency is measured (the first ones, in evaluation order).
pub const LATENCY_QUERIES: usize = 50;

/// One router's accuracy over the N sub-domain labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManyRouting {
    pub accuracy: f64,
    pub macro_f1: f64,
    /// The chosen sub-domain belongs to the query's true domain.
    pub parent_accuracy: f64,
}

/// Resident bytes of the backbone as loaded (`Transformer::resident_bytes`: its weights in their dtype, plus
/// the bf16 kernel's packed copies in bf16 mode) and of the N adapters' tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub backbone_bytes: usize,
    pub adapter_bytes: usize,
    pub adapters_bytes: usize,
    pub total_bytes: usize,
}

/// Mean milliseconds per query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub queries: usize,
    pub features_ms: f64,
    pub router_ms: f64,
    pub scoring_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManyDomainsRow {
    pub experts: usize,
    /// Sub-domains per target domain.
    pub per_domain: BTreeMap<String, usize>,
    pub train_queries: usize,
    pub test_queries: usize,
    /// `lsr`, `mlp` → routing over the N labels.
    pub routing: BTreeMap<RouterName, ManyRouting>,
    pub memory: Memory,
    /// LSR routing over N labels plus one expert's scoring (timings: not reproducible).
    pub latency: Latency,
}

/// Sub-domains per domain: `experts / domains` each, the first `experts % domains` one more.
pub fn subdomain_counts(domains: usize, experts: usize) -> Vec<usize> {
    (0..domains).map(|i| experts / domains + usize::from(i < experts % domains)).collect()
}

/// The sub-domain (0..k) of each of `count` queries: a seeded shuffle dealt round-robin.
pub fn split_subdomains(count: usize, k: usize, seed: u64, stream: &str) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut seeded_rng(seed, stable_hash(stream)));
    let mut out = vec![0; count];
    for (position, &query) in order.iter().enumerate() {
        out[query] = position % k.max(1);
    }
    out
}

/// A copy of `adapter` with every value scaled by 1 + 0.01·u, u seeded per copy.
fn noisy_copy(adapter: &LoraAdapter, seed: u64, index: usize) -> Result<LoraAdapter> {
    let mut rng = seeded_rng(seed, stable_hash(&format!("many-domains-copy-{index}")));
    let mut copy = adapter.clone();
    for modules in &mut copy.layers {
        for pair in modules.values_mut() {
            for var in [&mut pair.a, &mut pair.b] {
                let t = var.as_tensor();
                let noise: Vec<f32> = (0..t.elem_count()).map(|_| 1.0 + 0.01 * rng.random_range(-1.0f32..=1.0)).collect();
                let scaled = t.mul(&Tensor::from_vec(noise, t.shape(), t.device())?)?;
                *var = Var::from_tensor(&scaled)?;
            }
        }
    }
    Ok(copy)
}

fn tensor_bytes(adapter: &LoraAdapter) -> usize {
    adapter.vars().iter().map(|v| v.elem_count() * v.dtype().size_in_bytes()).sum()
}

/// The study for each N of `sizes` (plus N = the number of target domains, first).
pub fn many_domains_study(bench: &Bench, sizes: &[usize]) -> Result<Vec<ManyDomainsRow>> {
    let domains = bench.labels;
    let mut sizes: Vec<usize> = sizes.iter().copied().chain([domains.len()]).collect();
    sizes.sort();
    sizes.dedup();
    let (_, experts) = bench.retrain_experts("study: many domains", |_| {})?;
    let backbone = bench.reranker.model.resident_bytes();
    let tc = bench.train_config;
    let mut rows = Vec::new();
    for n in sizes {
        bench.ctx.log(format!("study: many domains, {n} experts"));
        let counts = subdomain_counts(domains.len(), n);
        let offsets: Vec<usize> = counts.iter().scan(0, |acc, &k| {
            let start = *acc;
            *acc += k;
            Some(start)
        }).collect();
        let mut parent = Vec::new();
        let mut labels = Vec::new();
        for (d, &k) in domains.iter().zip(&counts) {
            for j in 0..k {
                labels.push(format!("{d}/{:02}", j + 1));
                parent.push(d.clone());
            }
        }
        let sub_labels = |domain: usize, count: usize, split: &str| -> Vec<usize> {
            split_subdomains(count, counts[domain], bench.seed, &format!("{split}:{}", domains[domain])).into_iter().map(|j| offsets[domain] + j).collect()
        };
        // Training labels: each domain's training queries (in order) split into its sub-domains.
        let mut y_train = vec![0; bench.y_train.len()];
        for (d, _) in domains.iter().enumerate() {
            let rows_of: Vec<usize> = (0..bench.y_train.len()).filter(|&i| bench.y_train[i] == d).collect();
            for (&i, y) in rows_of.iter().zip(sub_labels(d, rows_of.len(), "train")) {
                y_train[i] = y;
            }
        }
        let mut x_test: Vec<Vec<f32>> = Vec::new();
        let mut y_test: Vec<usize> = Vec::new();
        let mut latency_items = Vec::new();
        for (s, set) in bench.sets.iter().enumerate().filter(|(_, s)| s.split == super::keys::EvalSplit::Test) {
            let Some(truth) = set.truth else { continue };
            x_test.extend(bench.features[s].iter().cloned());
            y_test.extend(sub_labels(truth, set.groups.len(), "test"));
            latency_items.extend((0..set.groups.len()).map(|q| (s, q)));
        }
        let mut routing = BTreeMap::new();
        let mut lsr = None;
        for kind in [RouterKind::Linear, RouterKind::Mlp { hidden: tc.router.mlp_hidden }] {
            let router = TrainedRouter::train_checked(kind, &labels, bench.x_train, &y_train, &tc.router.train, None, &mut || bench.ctx.check_cancelled())?;
            let predicted: Vec<usize> = router.probabilities(&x_test)?.iter().map(|p| argmax(p)).collect();
            let report = RoutingReport::new(&labels, &y_test, &predicted);
            let parent_hits = predicted.iter().zip(&y_test).filter(|(p, t)| parent[**p] == parent[**t]).count();
            routing.insert(
                RouterName::from(kind),
                ManyRouting { accuracy: report.accuracy, macro_f1: report.macro_f1, parent_accuracy: parent_hits as f64 / y_test.len().max(1) as f64 },
            );
            if kind == RouterKind::Linear {
                lsr = Some(router);
            }
        }
        let lsr = lsr.expect("the LSR was trained above");

        let copies: Vec<LoraAdapter> = (0..n)
            .map(|i| {
                bench.ctx.check_cancelled()?;
                noisy_copy(&experts[0], bench.seed, i)
            })
            .collect::<Result<_>>()?;
        let adapter_bytes = tensor_bytes(&copies[0]);
        let adapters_bytes: usize = copies.iter().map(tensor_bytes).sum();
        let memory = Memory { backbone_bytes: backbone, adapter_bytes, adapters_bytes, total_bytes: backbone + adapters_bytes };

        let (mut features_s, mut router_s, mut scoring_s) = (0.0, 0.0, 0.0);
        latency_items.truncate(LATENCY_QUERIES);
        for &(s, q) in &latency_items {
            bench.ctx.check_cancelled()?;
            let t0 = Instant::now();
            let x = query_features(bench.reranker, &[&bench.sets[s].groups[q]], None)?;
            let t1 = Instant::now();
            let pick = argmax(&lsr.probabilities(&x)?[0]);
            let t2 = Instant::now();
            group_margins(bench.reranker, Some(&copies[pick]), &bench.encoded[s][q])?;
            let t3 = Instant::now();
            features_s += (t1 - t0).as_secs_f64();
            router_s += (t2 - t1).as_secs_f64();
            scoring_s += (t3 - t2).as_secs_f64();
        }
        let per_query = |seconds: f64| 1000.0 * seconds / latency_items.len().max(1) as f64;
        let latency = Latency {
            queries: latency_items.len(),
            features_ms: per_query(features_s),
            router_ms: per_query(router_s),
            scoring_ms: per_query(scoring_s),
            total_ms: per_query(features_s + router_s + scoring_s),
        };
        rows.push(ManyDomainsRow {
            experts: n,
            per_domain: domains.iter().cloned().zip(counts).collect(),
            train_queries: y_train.len(),
            test_queries: y_test.len(),
            routing,
            memory,
            latency,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_differ_by_at_most_one() {
        assert_eq!(subdomain_counts(3, 20), [7, 7, 6]);
        assert_eq!(subdomain_counts(3, 50), [17, 17, 16]);
        assert_eq!(subdomain_counts(2, 6), [3, 3]);
        assert_eq!(subdomain_counts(3, 3), [1, 1, 1]);
    }

    #[test]
    fn the_split_is_deterministic_balanced_and_covers_every_query() {
        for (count, k) in [(150, 17), (400, 7), (3, 3), (10, 1)] {
            let a = split_subdomains(count, k, 13, "test:legal");
            assert_eq!(a.len(), count, "every query gets a sub-domain");
            assert_eq!(a, split_subdomains(count, k, 13, "test:legal"), "same seed, same split");
            let mut sizes = vec![0usize; k];
            for &j in &a {
                sizes[j] += 1;
            }
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(*min >= 1 && max - min <= 1, "{count} into {k}: sizes {sizes:?}");
        }
        assert_ne!(split_subdomains(150, 17, 13, "test:legal"), split_subdomains(150, 17, 14, "test:legal"), "another seed, another split");
        assert_ne!(split_subdomains(150, 17, 13, "test:legal"), split_subdomains(150, 17, 13, "test:medical"), "domains are split independently");
    }

    #[test]
    fn noisy_copies_are_seeded_small_changes_of_the_same_size() {
        let base = crate::model::ModelConfig::from_json(
            r#"{"model_type":"qwen3","vocab_size":10,"hidden_size":8,"intermediate_size":12,"num_hidden_layers":2,
            "num_attention_heads":2,"num_key_value_heads":1,"head_dim":4,"rms_norm_eps":1e-6,"max_position_embeddings":32}"#,
        )
        .unwrap();
        let adapter = LoraAdapter::new_random(crate::model::LoraConfig { r: 2, ..Default::default() }, &base, &candle_core::Device::Cpu, 3).unwrap();
        let values = |a: &LoraAdapter| -> Vec<f32> { a.vars().iter().flat_map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect() };
        let (a, b, c) = (noisy_copy(&adapter, 1, 0).unwrap(), noisy_copy(&adapter, 1, 0).unwrap(), noisy_copy(&adapter, 1, 1).unwrap());
        assert_eq!(values(&a), values(&b));
        assert_ne!(values(&a), values(&c));
        assert_eq!(tensor_bytes(&a), adapter.num_parameters() * 4);
        for (x, y) in values(&adapter).iter().zip(values(&a)) {
            assert!((y - x).abs() <= 0.0101 * x.abs(), "{x} → {y}");
        }
    }
}
