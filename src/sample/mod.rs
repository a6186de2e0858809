//! Seeded generator of the synthetic multi-domain sample data (`sample_data/`):
//! legal, medical and financial reranking data plus a general out-of-domain set,
//! with gold entity spans, a seen-entity and an unseen-entity test split, and
//! cross-domain queries. `r2r sample-data generate` runs [`write_sample_data`].

use std::path::Path;

use anyhow::Context;

use crate::data::QueryGroup;

pub mod builder;
pub mod financial;
pub mod general;
pub mod groups;
pub mod legal;
pub mod medical;
pub mod names;
pub mod readme;
pub mod world;

use names::Part;
use world::{Domain, World};

/// The seed of the committed `sample_data/`.
pub const DEFAULT_SEED: u64 = 7;

/// The domains, in output order.
pub static DOMAINS: [&Domain; 4] = [&legal::DOMAIN, &medical::DOMAIN, &financial::DOMAIN, &general::DOMAIN];

/// The names of the files written per domain, in order.
pub fn domain_file_name(domain: &str) -> String {
    format!("{domain}.jsonl")
}

/// Every query group of every domain, in output order (domains as in
/// [`DOMAINS`], then splits train, dev, test, test_unseen).
pub fn generate(seed: u64) -> Vec<QueryGroup> {
    let gazetteers = names::all_gazetteers().expect("the embedded gazetteers are valid (checked by tests)");
    let seen = World::build(seed, Part::Seen, &gazetteers, &DOMAINS);
    let unseen = World::build(seed, Part::Unseen, &gazetteers, &DOMAINS);
    let seen_index = groups::WorldIndex::new(&seen);
    let unseen_index = groups::WorldIndex::new(&unseen);
    let mut out = Vec::new();
    for (i, domain) in DOMAINS.iter().enumerate() {
        let mut rng = crate::util::seeded_rng(seed, 10 + i as u64);
        out.extend(groups::domain_groups(domain, &seen_index, &unseen_index, &mut rng));
    }
    out
}

/// The README that goes with data generated from `seed`.
pub fn readme_text(seed: u64, groups: &[QueryGroup]) -> String {
    let gazetteers = names::all_gazetteers().expect("the embedded gazetteers are valid (checked by tests)");
    readme::readme(seed, &DOMAINS, groups, &gazetteers)
}

/// Generates the sample data into `out_dir`: one native JSONL file per domain
/// and a README.md, each written atomically.
pub fn write_sample_data(seed: u64, out_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let groups = generate(seed);
    for domain in DOMAINS.iter() {
        let of_domain: Vec<QueryGroup> = groups.iter().filter(|g| g.domain == domain.name).cloned().collect();
        crate::data::native::write(&out_dir.join(domain_file_name(domain.name)), &of_domain)?;
    }
    crate::util::atomic_write(&out_dir.join("README.md"), readme_text(seed, &groups).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::builder::template_slots;
    use super::*;

    /// Every template names only slots its facts have; queries name exactly the
    /// key slots; partial passages name only key slots; full passages name every slot.
    #[test]
    fn templates_fit_the_slots_of_their_facts() {
        let gazetteers = names::all_gazetteers().unwrap();
        let world = World::build(3, Part::Seen, &gazetteers, &DOMAINS);
        for domain in DOMAINS.iter() {
            let queries: usize = domain.relations.iter().map(|r| r.queries.len()).sum();
            let passages: usize = domain.relations.iter().map(|r| r.facts.len()).sum();
            assert!(queries >= 20 && passages >= 20, "{}: {queries} query and {passages} passage templates", domain.name);
            for relation in domain.relations {
                let fact = world
                    .facts
                    .iter()
                    .find(|f| std::ptr::eq(f.relation, relation))
                    .unwrap_or_else(|| panic!("{}: no fact of `{}`", domain.name, relation.name));
                let mut slots: Vec<&str> = fact.slots.names().collect();
                slots.sort();
                let mut keys = relation.keys.to_vec();
                keys.sort();
                assert!(!relation.queries.is_empty() && !relation.facts.is_empty() && !relation.partial.is_empty());
                for template in relation.queries {
                    let mut used = template_slots(template);
                    used.sort();
                    used.dedup();
                    assert_eq!(used, keys, "query template {template:?}");
                }
                for template in relation.partial {
                    assert!(template_slots(template).iter().all(|s| keys.contains(s)), "partial template {template:?}");
                }
                for template in relation.facts {
                    let mut used = template_slots(template);
                    used.sort();
                    used.dedup();
                    assert_eq!(used, slots, "passage template {template:?}");
                }
            }
            for template in domain.lead_ins {
                assert_eq!(template_slots(template), vec!["s"], "lead-in {template:?}");
            }
            for template in domain.fillers {
                assert!(template_slots(template).is_empty(), "filler {template:?}");
            }
        }
    }

    /// Each split asks about distinct facts: the worlds hold enough of them, so
    /// no query repeats (the seen world serves train, dev and test together).
    #[test]
    fn worlds_hold_enough_distinct_facts_for_their_splits() {
        use crate::data::Split;
        let gazetteers = names::all_gazetteers().unwrap();
        for (part, splits) in [(Part::Seen, vec![Split::Train, Split::Dev, Split::Test]), (Part::Unseen, vec![Split::TestUnseen])] {
            let world = World::build(DEFAULT_SEED, part, &gazetteers, &DOMAINS);
            for domain in DOMAINS.iter() {
                let has_cross = domain.relations.iter().any(|r| r.secondary.is_some());
                let of_domain = world.facts.iter().filter(|f| f.domain == domain.name);
                let cross = of_domain.clone().filter(|f| f.relation.secondary.is_some()).count();
                let regular = of_domain.count() - cross;
                let need: usize = splits.iter().map(|&s| groups::split_size(s)).sum();
                let need_cross: usize =
                    if has_cross { splits.iter().map(|&s| groups::cross_domain_count(groups::split_size(s))).sum() } else { 0 };
                assert!(cross >= need_cross, "{part:?} {}: {cross} cross-domain facts for {need_cross} queries", domain.name);
                assert!(regular >= need - need_cross, "{part:?} {}: {regular} facts for {} queries", domain.name, need - need_cross);
                println!("{part:?} {}: {regular} facts (+{cross} cross-domain) for {need} queries", domain.name);
            }
        }
    }
}
