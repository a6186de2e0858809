//! [`RouterName`]: the typed name of a routing policy (`lsr`, `mlp`, `random`, `oracle`,
//! `static:<domain>`), the key of every per-router result (the experiment's `routing` and
//! `router_sweep`, the many-domains study, the router stage's baselines). [`RoutingPolicy`]: a router
//! with the way its probabilities become scores (`lsr-hard`, `lsr-soft`, `random`, …), the key of the
//! router stage's reranking table. Both serialise, compare and order as that text
//! ([`crate::util::text_key!`]), so maps keyed by them write the same JSON as string keys did.

use std::borrow::Cow;
use std::str::FromStr;

use super::mix::RoutingMode;
use super::router::RouterKind;
use crate::util::text_key;

/// A routing policy by name.
#[derive(Debug, Clone)]
pub enum RouterName {
    /// The trained Latent Semantic Router (linear probe).
    Lsr,
    /// The trained MLP router.
    Mlp,
    /// A uniformly random expert per query.
    Random,
    /// The query's true domain.
    Oracle,
    /// Always the expert of this domain.
    Static(String),
}

const STATIC_PREFIX: &str = "static:";

impl RouterName {
    /// The name as written in results (`static:<domain>` for a static router).
    pub fn name(&self) -> Cow<'static, str> {
        match self {
            RouterName::Lsr => "lsr".into(),
            RouterName::Mlp => "mlp".into(),
            RouterName::Random => "random".into(),
            RouterName::Oracle => "oracle".into(),
            RouterName::Static(domain) => format!("{STATIC_PREFIX}{domain}").into(),
        }
    }

    /// The trained kinds (`lsr`, `mlp`).
    pub fn is_trained(&self) -> bool {
        matches!(self, RouterName::Lsr | RouterName::Mlp)
    }
}

impl From<RouterKind> for RouterName {
    fn from(kind: RouterKind) -> RouterName {
        match kind {
            RouterKind::Linear => RouterName::Lsr,
            RouterKind::Mlp { .. } => RouterName::Mlp,
        }
    }
}

impl FromStr for RouterName {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "lsr" => RouterName::Lsr,
            "mlp" => RouterName::Mlp,
            "random" => RouterName::Random,
            "oracle" => RouterName::Oracle,
            _ => match text.strip_prefix(STATIC_PREFIX) {
                Some(domain) if !domain.is_empty() => RouterName::Static(domain.to_string()),
                _ => return Err(format!("unknown router `{text}` (expected lsr, mlp, random, oracle or static:<domain>)")),
            },
        })
    }
}

text_key!(RouterName);

/// A router and, for a trained one, how its probabilities become scores: `lsr-hard`, `lsr-soft`
/// (mode given), or a baseline router alone (`random`, `oracle`, `static:<domain>`: one expert, so
/// hard).
#[derive(Debug, Clone)]
pub struct RoutingPolicy {
    pub router: RouterName,
    pub mode: Option<RoutingMode>,
}

impl RoutingPolicy {
    pub fn name(&self) -> String {
        match self.mode {
            None => self.router.to_string(),
            Some(RoutingMode::Hard) => format!("{}-hard", self.router),
            Some(RoutingMode::Soft) => format!("{}-soft", self.router),
        }
    }
}

impl FromStr for RoutingPolicy {
    type Err = String;
    /// A mode suffix is read only after a trained router (`lsr`, `mlp`), as only those are written
    /// with one; `static:a-hard` is the static router of domain `a-hard`.
    fn from_str(text: &str) -> Result<Self, String> {
        for (suffix, mode) in [("-hard", RoutingMode::Hard), ("-soft", RoutingMode::Soft)] {
            if let Some(router) = text.strip_suffix(suffix).and_then(|r| r.parse::<RouterName>().ok()).filter(RouterName::is_trained) {
                return Ok(RoutingPolicy { router, mode: Some(mode) });
            }
        }
        Ok(RoutingPolicy { router: text.parse()?, mode: None })
    }
}

text_key!(RoutingPolicy);

#[cfg(test)]
mod tests {
    use super::*;

    fn examples() -> Vec<RouterName> {
        let domains = ["legal", "medical", "financial", "general", "a", "legal-2", "Zeta", "ärzte", "legal/01"];
        let mut names = vec![RouterName::Lsr, RouterName::Mlp, RouterName::Random, RouterName::Oracle];
        names.extend(domains.iter().map(|d| RouterName::Static(d.to_string())));
        names
    }

    #[test]
    fn names_round_trip_through_text_and_serde_as_the_old_strings() {
        let old = ["lsr", "mlp", "random", "oracle", "static:legal", "static:medical", "static:financial", "static:general", "static:a", "static:legal-2", "static:Zeta", "static:ärzte", "static:legal/01"];
        for (name, text) in examples().into_iter().zip(old) {
            assert_eq!(name.to_string(), text);
            assert_eq!(text.parse::<RouterName>().unwrap(), name);
            assert_eq!(serde_json::to_string(&name).unwrap(), serde_json::to_string(text).unwrap());
            assert_eq!(serde_json::from_str::<RouterName>(&serde_json::to_string(text).unwrap()).unwrap(), name);
        }
        for bad in ["", "LSR", "static:", "static", "lsr-hard", "router"] {
            assert!(bad.parse::<RouterName>().is_err(), "{bad}");
        }
        assert_eq!(format!("{:>8}|", RouterName::Lsr), "     lsr|");
    }

    #[test]
    fn order_is_the_old_string_order() {
        let mut typed = examples();
        typed.sort();
        let mut strings: Vec<String> = examples().iter().map(|n| n.to_string()).collect();
        strings.sort();
        assert_eq!(typed.iter().map(|n| n.to_string()).collect::<Vec<_>>(), strings);
        // A map keyed by names writes its keys in the order a map keyed by the strings did.
        let typed_map: std::collections::BTreeMap<RouterName, usize> = examples().into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        let string_map: std::collections::BTreeMap<String, usize> = examples().into_iter().enumerate().map(|(i, n)| (n.to_string(), i)).collect();
        assert_eq!(serde_json::to_string(&typed_map).unwrap(), serde_json::to_string(&string_map).unwrap());
    }

    #[test]
    fn policies_round_trip_and_order_as_the_old_strings() {
        let policies = [
            RoutingPolicy { router: RouterName::Lsr, mode: Some(RoutingMode::Hard) },
            RoutingPolicy { router: RouterName::Lsr, mode: Some(RoutingMode::Soft) },
            RoutingPolicy { router: RouterName::Mlp, mode: Some(RoutingMode::Hard) },
            RoutingPolicy { router: RouterName::Random, mode: None },
            RoutingPolicy { router: RouterName::Oracle, mode: None },
            RoutingPolicy { router: RouterName::Static("legal".into()), mode: None },
            RoutingPolicy { router: RouterName::Static("a-hard".into()), mode: None },
        ];
        let old = ["lsr-hard", "lsr-soft", "mlp-hard", "random", "oracle", "static:legal", "static:a-hard"];
        for (p, text) in policies.iter().zip(old) {
            assert_eq!(p.to_string(), text);
            assert_eq!(&text.parse::<RoutingPolicy>().unwrap(), p);
            assert_eq!(serde_json::from_str::<RoutingPolicy>(&serde_json::to_string(p).unwrap()).unwrap(), *p);
        }
        let typed: std::collections::BTreeMap<RoutingPolicy, usize> = policies.iter().cloned().enumerate().map(|(i, p)| (p, i)).collect();
        let strings: std::collections::BTreeMap<&str, usize> = old.iter().copied().enumerate().map(|(i, t)| (t, i)).collect();
        assert_eq!(serde_json::to_string(&typed).unwrap(), serde_json::to_string(&strings).unwrap());
        assert!("random-hard".parse::<RoutingPolicy>().is_err() && "lsr-mixed".parse::<RoutingPolicy>().is_err());
    }
}
