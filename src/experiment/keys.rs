//! The typed keys of experiment results: [`System`] (the systems of the comparison),
//! [`EvalSplit`] (the evaluated splits), [`RouterName`] (the routers: `routing`, `router_sweep`,
//! the many-domains study) and [`Ablation`] (the `ablations` table); metrics are
//! [`crate::metrics::Metric`]. Every key serialises, compares and orders as its name
//! ([`crate::util::text_key!`]), so maps keyed by them write the same JSON as string keys did;
//! `ALL` is table order.
//! [`metric_tables`] writes metric maps in name order too.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::metrics::Metric;
pub use crate::routing::RouterName;
use crate::util::text_key;

macro_rules! named_key {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in table order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                $name::ALL.into_iter().find(|v| v.name() == text).ok_or_else(|| format!("unknown {} `{text}` (expected one of {:?})", stringify!($name), $name::ALL.map($name::name)))
            }
        }

        text_key!($name);
    };
}

named_key!(
    /// A system of the comparison (module docs of [`super::systems`]).
    System {
        Bm25 = "bm25",
        Generalist = "generalist",
        Direct = "direct",
        SingleDomain = "single_domain",
        R2rNoEag = "r2r_no_eag",
        R2rLsr = "r2r_lsr",
        R2rMlp = "r2r_mlp",
        R2rOracle = "r2r_oracle",
        R2rSoft = "r2r_soft",
    }
);

named_key!(
    /// An evaluated split: `test` (seen entities), `test_unseen`, and `ood` (the test split of the
    /// OOD domains).
    EvalSplit {
        Test = "test",
        TestUnseen = "test_unseen",
        Ood = "ood",
    }
);

/// An ablation of the `ablations` table: `mask_intensity:<x>` (stage 1 trained with masking
/// intensity x), `stage2_learning_rate:<x>` (the experts' stage 2 at peak rate x), or
/// `stage2_optimizer:continued` / `stage2_optimizer:fresh` (the experts' AdamW continuing stage 1's, or
/// starting afresh); x written as Rust writes an `f64`, the shortest text that reads back as x.
/// Equality, order and hash go by that name, as the string keys did.
#[derive(Debug, Clone, Copy)]
pub enum Ablation {
    MaskIntensity(f64),
    Stage2LearningRate(f64),
    /// `stage2.continue_optimizer` set to this.
    Stage2ContinuedOptimizer(bool),
}

impl Ablation {
    pub fn name(self) -> String {
        match self {
            Ablation::MaskIntensity(x) => format!("mask_intensity:{x}"),
            Ablation::Stage2LearningRate(x) => format!("stage2_learning_rate:{x}"),
            Ablation::Stage2ContinuedOptimizer(true) => "stage2_optimizer:continued".into(),
            Ablation::Stage2ContinuedOptimizer(false) => "stage2_optimizer:fresh".into(),
        }
    }
}

impl FromStr for Ablation {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let expected = || format!("unknown ablation `{text}` (expected mask_intensity:<x>, stage2_learning_rate:<x> or stage2_optimizer:continued|fresh)");
        let (kind, value) = text.split_once(':').ok_or_else(expected)?;
        if kind == "stage2_optimizer" {
            return match value {
                "continued" => Ok(Ablation::Stage2ContinuedOptimizer(true)),
                "fresh" => Ok(Ablation::Stage2ContinuedOptimizer(false)),
                _ => Err(expected()),
            };
        }
        let x: f64 = value.parse().map_err(|_| format!("ablation `{text}`: `{value}` is not a number"))?;
        if !x.is_finite() {
            return Err(format!("ablation `{text}`: the value must be finite"));
        }
        match kind {
            "mask_intensity" => Ok(Ablation::MaskIntensity(x)),
            "stage2_learning_rate" => Ok(Ablation::Stage2LearningRate(x)),
            _ => Err(expected()),
        }
    }
}

text_key!(Ablation);

impl System {
    /// What the system ranks with (one line).
    pub fn description(self) -> &'static str {
        match self {
            System::Bm25 => "BM25 over the domain's passages",
            System::Generalist => "the backbone, no adapter",
            System::Direct => "the direct fine-tune (pooled domains)",
            System::SingleDomain => "the single-domain fine-tune of the query's true domain (OOD queries: the LSR's pick)",
            System::R2rNoEag => "the single-domain fine-tunes (no stage 1) routed by the LSR",
            System::R2rLsr => "the EAG experts routed by the Latent Semantic Router (R2R)",
            System::R2rMlp => "the EAG experts routed by the MLP router",
            System::R2rOracle => "the EAG expert of the true domain (target domains only)",
            System::R2rSoft => "the LSR-probability mixture of the experts' yes probabilities",
        }
    }
}

/// metric → mean.
pub type MetricMeans = BTreeMap<Metric, f64>;

/// system → split → domain (and `macro`) → metric → mean.
pub type SystemTable = BTreeMap<System, BTreeMap<EvalSplit, BTreeMap<String, MetricMeans>>>;

/// Serialises a [`SystemTable`] with each metric map in name order (`mrr@10` before `ndcg@10`), as
/// results.json has always been written.
pub fn metric_tables<S: Serializer>(table: &SystemTable, serializer: S) -> Result<S::Ok, S::Error> {
    let by_name: BTreeMap<&System, BTreeMap<&EvalSplit, BTreeMap<&String, BTreeMap<String, f64>>>> = table
        .iter()
        .map(|(s, splits)| (s, splits.iter().map(|(sp, domains)| (sp, domains.iter().map(|(d, m)| (d, m.iter().map(|(k, v)| (k.to_string(), *v)).collect())).collect())).collect()))
        .collect();
    by_name.serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_like_strings() {
        for s in System::ALL {
            assert_eq!(s.name().parse::<System>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
        }
        let mut sorted = System::ALL.to_vec();
        sorted.sort();
        let mut names: Vec<&str> = System::ALL.map(System::name).to_vec();
        names.sort();
        assert_eq!(sorted.iter().map(|s| s.name()).collect::<Vec<_>>(), names);
        assert_eq!(EvalSplit::ALL.map(EvalSplit::name), ["test", "test_unseen", "ood"]);
        assert!(EvalSplit::Ood < EvalSplit::Test && EvalSplit::Test < EvalSplit::TestUnseen);
        assert!("r2r".parse::<System>().is_err());
    }

    #[test]
    fn ablations_round_trip_and_order_like_their_old_strings() {
        let values = [0.0, 0.25, 0.5, 1.0, 0.125, 0.75, 0.1, 0.3333333333333333];
        let mut old: Vec<String> = Vec::new();
        for x in values {
            let a = Ablation::MaskIntensity(x);
            let text = format!("mask_intensity:{x}");
            assert_eq!(a.to_string(), text);
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Ablation>(&format!("\"{text}\"")).unwrap(), a);
            let Ablation::MaskIntensity(back) = text.parse::<Ablation>().unwrap() else { panic!("{text}") };
            assert_eq!(back.to_bits(), x.to_bits(), "{text}");
            old.push(text);
        }
        assert_eq!(Ablation::MaskIntensity(0.0).to_string(), "mask_intensity:0", "as `format!(\"mask_intensity:{{intensity}}\")` wrote it");
        let typed: BTreeMap<Ablation, usize> = values.iter().enumerate().map(|(i, &x)| (Ablation::MaskIntensity(x), i)).collect();
        let strings: BTreeMap<String, usize> = old.iter().cloned().enumerate().map(|(i, t)| (t, i)).collect();
        assert_eq!(serde_json::to_string(&typed).unwrap(), serde_json::to_string(&strings).unwrap(), "same keys in the same order");
        for bad in ["mask_intensity:", "mask_intensity:x", "mask_intensity:NaN", "intensity:0.5", "stage2_learning_rate:inf", ""] {
            assert!(bad.parse::<Ablation>().is_err(), "{bad}");
        }
        // The stage-2 rate: its own name, sorted after every masking intensity.
        let rate = Ablation::Stage2LearningRate(1e-4);
        assert_eq!((rate.to_string(), "stage2_learning_rate:0.0001".parse::<Ablation>().unwrap()), ("stage2_learning_rate:0.0001".to_string(), rate));
        assert!(Ablation::MaskIntensity(1.0) < rate && rate != Ablation::MaskIntensity(1e-4));
        for (flag, text) in [(true, "stage2_optimizer:continued"), (false, "stage2_optimizer:fresh")] {
            let a = Ablation::Stage2ContinuedOptimizer(flag);
            assert_eq!((a.to_string(), text.parse::<Ablation>().unwrap()), (text.to_string(), a));
        }
        assert!("stage2_optimizer:1".parse::<Ablation>().is_err());
    }

    #[test]
    fn router_names_are_the_keys_of_the_routing_tables() {
        // The routers of an experiment on legal and medical, in the order results.json lists them.
        let table: BTreeMap<RouterName, u8> =
            ["lsr", "mlp", "random", "oracle", "static:legal", "static:medical"].iter().map(|t| (t.parse().unwrap(), 0)).collect();
        let keys: Vec<String> = table.keys().map(|k| k.to_string()).collect();
        assert_eq!(keys, ["lsr", "mlp", "oracle", "random", "static:legal", "static:medical"]);
    }

    #[test]
    fn metric_tables_write_metrics_in_name_order() {
        let means: MetricMeans = [(Metric::Ndcg(Some(10)), 0.5), (Metric::Mrr(Some(10)), 0.25)].into();
        let table: SystemTable = [(System::R2rLsr, [(EvalSplit::Test, [("legal".to_string(), means)].into())].into())].into();
        let mut out = Vec::new();
        metric_tables(&table, &mut serde_json::Serializer::new(&mut out)).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"r2r_lsr":{"test":{"legal":{"mrr@10":0.25,"ndcg@10":0.5}}}}"#);
        let back: SystemTable = serde_json::from_str(r#"{"r2r_lsr":{"test":{"legal":{"mrr@10":0.25,"ndcg@10":0.5}}}}"#).unwrap();
        assert_eq!(back, table);
    }
}
