//! The typed keys of experiment results: [`System`] (the systems of the comparison) and
//! [`EvalSplit`] (the evaluated splits); metrics are [`crate::metrics::Metric`]. Systems and splits
//! serialise as their snake_case names and order by name, so maps keyed by them write the same JSON
//! as string keys did; `ALL` is table order. [`metric_tables`] writes metric maps in name order too.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::metrics::Metric;

macro_rules! named_key {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in table order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.name())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                $name::ALL.into_iter().find(|v| v.name() == text).ok_or_else(|| format!("unknown {} `{text}` (expected one of {:?})", stringify!($name), $name::ALL.map($name::name)))
            }
        }

        /// By name, as the string keys sorted.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.name().cmp(other.name())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
            }
        }
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
