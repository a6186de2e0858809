//! Query groups: one query about one fact, and 16 candidates. The positive
//! (relevance 2) states the asked fact; a partial passage (relevance 1) addresses
//! the relation for the subject without the answer; the negatives (relevance 0)
//! are hard ones — other facts about the same entities, the same relation about
//! other entities, near-misses that name the query's subject before a passage
//! about another entity — topped up with random facts of the domain. Relevance
//! follows the relation asked, never the entity overlap.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use super::builder::{Slots, TextBuilder};
use super::world::{Domain, Fact, World};
use crate::data::{Candidate, EntitySpan, QueryGroup, Split};
use crate::util::SeededRng;

/// Candidates per query.
pub const CANDIDATES: usize = 16;
/// Share of queries that get a partially relevant passage.
pub const PARTIAL_RATE: f64 = 0.3;
/// Share of queries that get a near-miss negative.
pub const NEAR_MISS_RATE: f64 = 0.5;
/// Share of passages with an extra distractor sentence.
pub const EXTRA_SENTENCE_RATE: f64 = 0.3;
/// At most this many negatives sharing an entity with the query.
pub const MAX_OVERLAP_NEGATIVES: usize = 5;
/// At most this many negatives with the same relation about another entity.
pub const MAX_SAME_RELATION_NEGATIVES: usize = 4;
/// Share of a domain's queries (per split) that touch a second domain.
pub const CROSS_DOMAIN_RATE: f64 = 0.075;

/// Queries per domain in each split.
pub fn split_size(split: Split) -> usize {
    match split {
        Split::Train => 400,
        Split::Dev => 100,
        Split::Test | Split::TestUnseen => 150,
    }
}

/// Cross-domain queries among `n` queries of a domain that has cross-domain relations.
pub fn cross_domain_count(n: usize) -> usize {
    (n as f64 * CROSS_DOMAIN_RATE).round() as usize
}

/// Lookup tables over one world's facts.
pub struct WorldIndex<'w> {
    pub world: &'w World,
    key_surfaces: Vec<Vec<String>>,
    all_surfaces: Vec<Vec<String>>,
    by_surface: BTreeMap<String, Vec<usize>>,
    by_relation: BTreeMap<&'static str, Vec<usize>>,
    by_domain: BTreeMap<&'static str, Vec<usize>>,
}

impl<'w> WorldIndex<'w> {
    pub fn new(world: &'w World) -> WorldIndex<'w> {
        let mut by_surface: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut by_relation: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        let mut by_domain: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
        let all_surfaces: Vec<Vec<String>> = world.facts.iter().map(Fact::all_surfaces).collect();
        for (i, fact) in world.facts.iter().enumerate() {
            for surface in &all_surfaces[i] {
                by_surface.entry(surface.clone()).or_default().push(i);
            }
            by_relation.entry(fact.relation.name).or_default().push(i);
            by_domain.entry(fact.domain).or_default().push(i);
        }
        let key_surfaces = world.facts.iter().map(Fact::key_surfaces).collect();
        WorldIndex { world, key_surfaces, all_surfaces, by_surface, by_relation, by_domain }
    }

    fn facts_of(&self, domain: &str) -> &[usize] {
        self.by_domain.get(domain).map(Vec::as_slice).unwrap_or_default()
    }

    /// True when fact `j` answers the same question as fact `i`.
    fn same_question(&self, i: usize, j: usize) -> bool {
        let facts = &self.world.facts;
        facts[i].relation.name == facts[j].relation.name && self.key_surfaces[i] == self.key_surfaces[j]
    }

    fn shares_key_entity(&self, query: usize, j: usize) -> bool {
        self.key_surfaces[query].iter().any(|s| self.all_surfaces[j].contains(s))
    }
}

/// Every group of one domain: train, dev, test from the seen world, then
/// test_unseen from the unseen world.
pub fn domain_groups(domain: &'static Domain, seen: &WorldIndex, unseen: &WorldIndex, rng: &mut SeededRng) -> Vec<QueryGroup> {
    let has_cross = domain.relations.iter().any(|r| r.secondary.is_some());
    let mut groups = Vec::new();
    let mut seen_queries = QueryFacts::new(seen, domain.name, rng);
    let mut unseen_queries = QueryFacts::new(unseen, domain.name, rng);
    for split in Split::ALL {
        let (index, queries) = match split {
            Split::TestUnseen => (unseen, &mut unseen_queries),
            _ => (seen, &mut seen_queries),
        };
        let n = split_size(split);
        let n_cross = if has_cross { cross_domain_count(n) } else { 0 };
        let mut chosen = queries.cross.take(n_cross);
        chosen.extend(queries.regular.take(n - n_cross));
        chosen.shuffle(rng);
        for (i, fact) in chosen.into_iter().enumerate() {
            let id = format!("{}-{}-{:04}", domain.name, split.as_str(), i + 1);
            groups.push(build_group(id, split, domain, index, fact, rng));
        }
    }
    groups
}

/// A shuffled list of facts handed out in order, wrapping around if a split
/// needs more queries than the world has facts.
struct Cursor {
    facts: Vec<usize>,
    next: usize,
}

impl Cursor {
    fn take(&mut self, n: usize) -> Vec<usize> {
        if self.facts.is_empty() {
            return Vec::new();
        }
        (0..n)
            .map(|_| {
                let fact = self.facts[self.next % self.facts.len()];
                self.next += 1;
                fact
            })
            .collect()
    }
}

/// The facts a domain's queries ask about, split into single-domain and cross-domain ones.
struct QueryFacts {
    regular: Cursor,
    cross: Cursor,
}

impl QueryFacts {
    fn new(index: &WorldIndex, domain: &str, rng: &mut SeededRng) -> QueryFacts {
        let facts = &index.world.facts;
        let (mut cross, mut regular): (Vec<usize>, Vec<usize>) =
            index.facts_of(domain).iter().partition(|&&i| facts[i].relation.secondary.is_some());
        regular.shuffle(rng);
        cross.shuffle(rng);
        QueryFacts { regular: Cursor { facts: regular, next: 0 }, cross: Cursor { facts: cross, next: 0 } }
    }
}

/// What a candidate passage says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Main {
    /// A fact, stated in full.
    Fact(usize),
    /// The query fact's relation for its subject, without the answer.
    Partial,
    /// A lead-in naming the query's subject, then a fact about another entity.
    NearMiss(usize),
}

fn build_group(id: String, split: Split, domain: &'static Domain, index: &WorldIndex, query_fact: usize, rng: &mut SeededRng) -> QueryGroup {
    let facts = &index.world.facts;
    let fact = &facts[query_fact];
    let relation = fact.relation;
    let mut builder = TextBuilder::new();
    builder.sentence(choose(rng, relation.queries), &fact.slots);
    let (query, query_entities) = builder.finish();

    let mut plan: Vec<(Main, u32)> = vec![(Main::Fact(query_fact), 2)];
    if rng.random_bool(PARTIAL_RATE) {
        plan.push((Main::Partial, 1));
    }
    let is_negative = |j: usize| j != query_fact && !index.same_question(query_fact, j);
    // Other facts about the query's entities (any domain).
    let overlapping: BTreeSet<usize> = index.key_surfaces[query_fact]
        .iter()
        .flat_map(|s| index.by_surface.get(s).into_iter().flatten().copied())
        .filter(|&j| is_negative(j))
        .collect();
    let mut overlapping: Vec<usize> = overlapping.into_iter().collect();
    overlapping.shuffle(rng);
    plan.extend(overlapping.iter().take(MAX_OVERLAP_NEGATIVES).map(|&j| (Main::Fact(j), 0)));
    // The same relation about other entities.
    let mut same_relation: Vec<usize> = index.by_relation[relation.name]
        .iter()
        .copied()
        .filter(|&j| is_negative(j) && !index.shares_key_entity(query_fact, j))
        .collect();
    same_relation.shuffle(rng);
    plan.extend(same_relation.iter().take(MAX_SAME_RELATION_NEGATIVES).map(|&j| (Main::Fact(j), 0)));
    if rng.random_bool(NEAR_MISS_RATE) {
        if let Some(&j) = same_relation.get(MAX_SAME_RELATION_NEGATIVES) {
            plan.push((Main::NearMiss(j), 0));
        }
    }
    // Random facts of the domain fill the rest.
    let mut random: Vec<usize> = index.facts_of(domain.name).iter().copied().filter(|&j| is_negative(j)).collect();
    random.shuffle(rng);
    plan.extend(random.into_iter().map(|j| (Main::Fact(j), 0)));

    let mut candidates: Vec<(String, Vec<EntitySpan>, u32)> = Vec::with_capacity(CANDIDATES);
    let mut texts = BTreeSet::new();
    for (main, relevance) in plan {
        if candidates.len() == CANDIDATES {
            break;
        }
        let (text, spans) = render_passage(main, domain, index, query_fact, rng);
        if texts.insert(text.clone()) {
            candidates.push((text, spans, relevance));
        }
    }
    candidates.shuffle(rng);
    QueryGroup {
        id,
        domain: domain.name.to_string(),
        split,
        query,
        query_entities,
        candidates: candidates
            .into_iter()
            .enumerate()
            .map(|(i, (text, entities, relevance))| Candidate { id: format!("c{:02}", i + 1), text, relevance, entities })
            .collect(),
        secondary_domain: relation.secondary.map(str::to_string),
        meta: BTreeMap::from([("relation".to_string(), relation.name.to_string())]),
    }
}

fn choose<'t>(rng: &mut SeededRng, templates: &[&'t str]) -> &'t str {
    templates.choose(rng).copied().expect("every relation has templates of each kind (checked by tests)")
}

/// Renders one passage: its main content, and sometimes a distractor sentence
/// (an entity-free filler or a fact about entities the query does not name)
/// before or after it.
fn render_passage(main: Main, domain: &Domain, index: &WorldIndex, query_fact: usize, rng: &mut SeededRng) -> (String, Vec<EntitySpan>) {
    let facts = &index.world.facts;
    let extra = if rng.random_bool(EXTRA_SENTENCE_RATE) { Some(distractor(domain, index, query_fact, rng)) } else { None };
    let extra_first = rng.random_bool(0.5) && !matches!(main, Main::NearMiss(_));
    let mut builder = TextBuilder::new();
    let push_extra = |builder: &mut TextBuilder, rng: &mut SeededRng| match extra {
        Some(Some(j)) => builder.sentence(choose(rng, facts[j].relation.facts), &facts[j].slots),
        Some(None) => builder.sentence(choose(rng, domain.fillers), &Slots::new()),
        None => {}
    };
    if extra_first {
        push_extra(&mut builder, rng);
    }
    match main {
        Main::Fact(j) => builder.sentence(choose(rng, facts[j].relation.facts), &facts[j].slots),
        Main::Partial => builder.sentence(choose(rng, facts[query_fact].relation.partial), &facts[query_fact].slots),
        Main::NearMiss(j) => {
            let subject = Slots::new().with("s", facts[query_fact].subject().clone());
            builder.sentence(choose(rng, domain.lead_ins), &subject);
            builder.sentence(choose(rng, facts[j].relation.facts), &facts[j].slots);
        }
    }
    if !extra_first {
        push_extra(&mut builder, rng);
    }
    builder.finish()
}

/// A distractor: `Some(fact)` about entities the query does not name, or `None`
/// for an entity-free filler sentence.
fn distractor(domain: &Domain, index: &WorldIndex, query_fact: usize, rng: &mut SeededRng) -> Option<usize> {
    if rng.random_bool(0.5) {
        return None;
    }
    let pool = index.facts_of(domain.name);
    for _ in 0..20 {
        let &j = pool.choose(rng)?;
        if j != query_fact && !index.same_question(query_fact, j) && !index.shares_key_entity(query_fact, j) {
            return Some(j);
        }
    }
    None
}
