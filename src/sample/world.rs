//! The generated "world": entities shared by all domains (so a drug's maker is
//! the same company in the medical and the financial data) and the facts the
//! domains state about them. One fact exists per relation and subject (and
//! qualifier, such as a quarter), so exactly one passage answers each query.

use rand::seq::{IndexedRandom, SliceRandom};

use super::builder::{Fill, Slots};
use super::names::{self, Part, Pools};
use crate::util::SeededRng;

/// One relation a domain's queries ask about, with its wording.
#[derive(Debug)]
pub struct Relation {
    pub name: &'static str,
    /// The slots a query names; `keys[0]` is the subject, the rest qualify it
    /// (e.g. the quarter of a revenue figure).
    pub keys: &'static [&'static str],
    /// The second domain a cross-domain relation touches.
    pub secondary: Option<&'static str>,
    /// Query templates: they name exactly the key slots.
    pub queries: &'static [&'static str],
    /// Passage templates that state the whole fact (relevance 2).
    pub facts: &'static [&'static str],
    /// Passage templates that address the relation for the subject but leave the
    /// answer out or hedge it (relevance 1): they name only key slots.
    pub partial: &'static [&'static str],
}

/// A domain's relations and extra wording.
pub struct Domain {
    pub name: &'static str,
    pub relations: &'static [Relation],
    /// Sentences that bring up the query's subject (slot `{s}`) before a
    /// passage about another entity: the near-miss negatives.
    pub lead_ins: &'static [&'static str],
    /// Entity-free sentences added as distractor clauses.
    pub fillers: &'static [&'static str],
    /// Samples this domain's facts about the shared entities.
    pub facts: fn(&Entities, &mut SeededRng, &mut Pools) -> Vec<Fact>,
}

impl Domain {
    pub fn relation(&self, name: &str) -> &'static Relation {
        self.relations.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("{}: no relation `{name}`", self.name))
    }
}

/// One fact: a relation's slots filled for one subject.
#[derive(Debug, Clone)]
pub struct Fact {
    pub domain: &'static str,
    pub relation: &'static Relation,
    pub slots: Slots,
}

impl Fact {
    pub fn new(domain: &'static Domain, relation: &str, slots: Slots) -> Fact {
        Fact { domain: domain.name, relation: domain.relation(relation), slots }
    }

    /// The subject's value (slot `keys[0]`).
    pub fn subject(&self) -> &Fill {
        self.slot(self.relation.keys[0])
    }

    pub fn slot(&self, name: &str) -> &Fill {
        self.slots.get(name).unwrap_or_else(|| panic!("fact of `{}` lacks slot `{name}`", self.relation.name))
    }

    /// Lower-cased entity surfaces of the key slots: what a query about this fact names.
    pub fn key_surfaces(&self) -> Vec<String> {
        let mut surfaces: Vec<String> = self
            .relation
            .keys
            .iter()
            .flat_map(|key| self.slot(key).entities().map(|(_, s)| s.to_lowercase()).collect::<Vec<_>>())
            .collect();
        surfaces.sort();
        surfaces.dedup();
        surfaces
    }

    /// Lower-cased surfaces of every entity the fact mentions.
    pub fn all_surfaces(&self) -> Vec<String> {
        let mut surfaces: Vec<String> =
            self.slots.0.iter().flat_map(|(_, fill)| fill.entities().map(|(_, s)| s.to_lowercase()).collect::<Vec<_>>()).collect();
        surfaces.sort();
        surfaces.dedup();
        surfaces
    }
}

/// A legal case between two parties.
#[derive(Debug, Clone)]
pub struct Case {
    pub plaintiff: String,
    pub defendant: String,
}

impl Case {
    pub fn fill(&self) -> Fill {
        Fill::versus(&self.plaintiff, &self.defendant)
    }
}

/// What a company does, which decides the relations it takes part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanyKind {
    Pharma,
    AssetManager,
    Operating,
}

#[derive(Debug, Clone)]
pub struct Company {
    pub name: String,
    pub kind: CompanyKind,
}

#[derive(Debug, Clone)]
pub struct Drug {
    pub name: String,
    /// Index into `Entities::companies` (a pharmaceutical company).
    pub maker: usize,
}

/// How many subjects of each kind a world has.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub statutes: usize,
    pub courts: usize,
    pub cases: usize,
    pub malpractice_cases: usize,
    pub drugs: usize,
    pub diseases: usize,
    pub pharma: usize,
    pub asset_managers: usize,
    pub operating: usize,
    pub funds: usize,
    pub plans: usize,
    pub persons: usize,
    pub organizations: usize,
    pub events: usize,
    pub cities: usize,
}

impl Counts {
    /// The world of train, dev and the seen-entity test.
    pub const SEEN: Counts = Counts {
        statutes: 90,
        courts: 30,
        cases: 60,
        malpractice_cases: 30,
        drugs: 90,
        diseases: 90,
        pharma: 22,
        asset_managers: 16,
        operating: 46,
        funds: 40,
        plans: 20,
        persons: 110,
        organizations: 80,
        events: 70,
        cities: 90,
    };
    /// The world of the unseen-entity test.
    pub const UNSEEN: Counts = Counts {
        statutes: 24,
        courts: 8,
        cases: 16,
        malpractice_cases: 8,
        drugs: 24,
        diseases: 24,
        pharma: 6,
        asset_managers: 4,
        operating: 12,
        funds: 10,
        plans: 6,
        persons: 30,
        organizations: 22,
        events: 18,
        cities: 24,
    };
}

/// The entities of one world, all drawn from one part of the surface space.
#[derive(Debug, Clone)]
pub struct Entities {
    pub part: Part,
    // legal
    pub statutes: Vec<String>,
    pub citations: Vec<String>,
    pub courts: Vec<String>,
    pub cases: Vec<Case>,
    pub dockets: Vec<String>,
    pub malpractice_cases: Vec<Case>,
    pub jurisdictions: Vec<String>,
    // medical
    pub drugs: Vec<Drug>,
    pub diseases: Vec<String>,
    pub icd_codes: Vec<String>,
    pub symptoms: Vec<String>,
    pub diagnostics: Vec<String>,
    /// Operations and treatments: the procedures that are not diagnostic.
    pub treatments: Vec<String>,
    pub procedures: Vec<String>,
    pub anatomy: Vec<String>,
    // financial
    pub companies: Vec<Company>,
    pub tickers: Vec<String>,
    pub products: Vec<String>,
    pub funds: Vec<String>,
    pub plans: Vec<String>,
    pub indices: Vec<String>,
    // general
    pub persons: Vec<String>,
    pub organizations: Vec<String>,
    pub schools: Vec<String>,
    pub events: Vec<String>,
    pub cities: Vec<String>,
    pub rivers: Vec<String>,
}

/// True for procedures that establish a diagnosis (tests, scans, biopsies),
/// as opposed to treatments and operations: a word of the name ends like one.
pub fn is_diagnostic(procedure: &str) -> bool {
    const MARKERS: [&str; 20] = [
        "scopy", "biopsy", "scan", "x-ray", "gram", "test", "study", "ultrasound", "count", "panel", "urinalysis",
        "puncture", "spirometry", "audiometry", "photography", "examination", "tonometry", "aspiration", "angiography",
        "centesis",
    ];
    let lower = procedure.to_lowercase();
    lower.split(' ').any(|word| MARKERS.iter().any(|m| word.ends_with(m)))
}

fn ends_with_any(name: &str, suffixes: &[&str]) -> bool {
    suffixes.iter().any(|s| name.ends_with(s))
}

impl Entities {
    pub fn build(rng: &mut SeededRng, pools: &mut Pools, counts: Counts) -> Entities {
        let any = |_: &str| true;
        // legal
        let statutes = pools.take_names(rng, "legal", "STATUTE", counts.statutes, any);
        let citations = statutes.iter().map(|_| pools.unique_pattern(rng, names::statute_citation)).collect();
        let courts = pools.take_names(rng, "legal", "COURT", counts.courts, any);
        let parties = pools.take_names(rng, "legal", "PARTY", 2 * (counts.cases + counts.malpractice_cases), any);
        let mut pairs = parties.chunks_exact(2).map(|p| Case { plaintiff: p[0].clone(), defendant: p[1].clone() });
        let cases: Vec<Case> = pairs.by_ref().take(counts.cases).collect();
        let malpractice_cases: Vec<Case> = pairs.collect();
        let dockets = cases.iter().map(|_| pools.unique_pattern(rng, names::case_number)).collect();
        let jurisdictions = pools.names("legal", "JURISDICTION", any);
        // financial companies first: drugs need their makers
        let pharma_suffixes = ["Pharmaceuticals", "Therapeutics", "Biosciences", "Pharma"];
        let asset_suffixes = ["Asset Management", "Investments", "Capital Partners", "Wealth Management"];
        let mut companies = Vec::new();
        for (kind, n) in [
            (CompanyKind::Pharma, counts.pharma),
            (CompanyKind::AssetManager, counts.asset_managers),
            (CompanyKind::Operating, counts.operating),
        ] {
            let keep = |name: &str| match kind {
                CompanyKind::Pharma => ends_with_any(name, &pharma_suffixes),
                CompanyKind::AssetManager => ends_with_any(name, &asset_suffixes),
                CompanyKind::Operating => !ends_with_any(name, &pharma_suffixes) && !ends_with_any(name, &asset_suffixes),
            };
            companies.extend(pools.take_names(rng, "financial", "COMPANY", n, keep).into_iter().map(|name| Company { name, kind }));
        }
        let tickers = companies.iter().map(|c| pools.ticker(rng, &c.name)).collect();
        let is_fund = |n: &str| n.ends_with(" Fund") || n.ends_with(" ETF");
        let is_plan = |n: &str| n.ends_with(" Plan");
        let operating = companies.iter().filter(|c| c.kind == CompanyKind::Operating).count();
        let products = pools.take_names(rng, "financial", "PRODUCT", operating, |n| !is_fund(n) && !is_plan(n));
        let funds = pools.take_names(rng, "financial", "PRODUCT", counts.funds, is_fund);
        let plans = pools.take_names(rng, "financial", "PRODUCT", counts.plans, is_plan);
        let indices = pools.names("financial", "INDEX", any);
        // medical
        let pharma: Vec<usize> = (0..companies.len()).filter(|&i| companies[i].kind == CompanyKind::Pharma).collect();
        let drugs = pools
            .take_names(rng, "medical", "DRUG", counts.drugs, any)
            .into_iter()
            .map(|name| Drug { name, maker: *pharma.choose(rng).expect("the gazetteer has pharmaceutical companies") })
            .collect();
        let diseases = pools.take_names(rng, "medical", "DISEASE", counts.diseases, any);
        let icd_codes = diseases.iter().map(|_| pools.unique_pattern(rng, names::icd_code)).collect();
        let symptoms = pools.names("medical", "SYMPTOM", any);
        let procedures = pools.names("medical", "PROCEDURE", any);
        let (diagnostics, treatments) = procedures.iter().cloned().partition(|p| is_diagnostic(p));
        let anatomy = pools.names("medical", "ANATOMY", any);
        // general
        let is_river = |n: &str| n.ends_with(" River");
        let is_school = |n: &str| ["University", "College", "Conservatory", "Institute", "Academy"].iter().any(|k| n.contains(k));
        let persons = pools.take_names(rng, "general", "PERSON", counts.persons, any);
        let organizations = pools.take_names(rng, "general", "ORGANIZATION", counts.organizations, any);
        let schools = organizations.iter().filter(|o| is_school(o)).cloned().collect();
        let events = pools.take_names(rng, "general", "EVENT", counts.events, any);
        let cities = pools.take_names(rng, "general", "LOCATION", counts.cities, |n| !is_river(n));
        let rivers = pools.names("general", "LOCATION", is_river);
        Entities {
            part: pools.part(),
            statutes,
            citations,
            courts,
            cases,
            dockets,
            malpractice_cases,
            jurisdictions,
            drugs,
            diseases,
            icd_codes,
            symptoms,
            diagnostics,
            treatments,
            procedures,
            anatomy,
            companies,
            tickers,
            products,
            funds,
            plans,
            indices,
            persons,
            organizations,
            schools,
            events,
            cities,
            rivers,
        }
    }

    /// Indices of companies of one kind.
    pub fn companies_of(&self, kind: CompanyKind) -> Vec<usize> {
        (0..self.companies.len()).filter(|&i| self.companies[i].kind == kind).collect()
    }
}

/// Picks one element (the lists are never empty for the gazetteers shipped).
pub fn pick<'a>(rng: &mut SeededRng, items: &'a [String], what: &str) -> &'a str {
    items.choose(rng).unwrap_or_else(|| panic!("no {what} in this part of the gazetteers"))
}

/// Picks `n` distinct elements.
pub fn pick_distinct<'a>(rng: &mut SeededRng, items: &'a [String], n: usize) -> Vec<&'a str> {
    let mut chosen: Vec<&str> = items.iter().map(String::as_str).collect();
    chosen.shuffle(rng);
    chosen.truncate(n);
    chosen
}

/// A value of `draw` different from `avoid`.
pub fn pick_other<'a>(rng: &mut SeededRng, items: &'a [String], avoid: &str, what: &str) -> &'a str {
    for _ in 0..1_000 {
        let item = pick(rng, items, what);
        if item != avoid {
            return item;
        }
    }
    panic!("no {what} other than {avoid:?}")
}

/// A world: its entities and every domain's facts about them.
pub struct World {
    pub part: Part,
    pub entities: Entities,
    pub facts: Vec<Fact>,
}

impl World {
    pub fn build(seed: u64, part: Part, gazetteers: &std::collections::BTreeMap<String, names::Gazetteer>, domains: &[&'static Domain]) -> World {
        let stream = match part {
            Part::Seen => 1,
            Part::Unseen => 2,
        };
        let mut rng = crate::util::seeded_rng(seed, stream);
        let mut pools = Pools::new(part, gazetteers);
        let counts = match part {
            Part::Seen => Counts::SEEN,
            Part::Unseen => Counts::UNSEEN,
        };
        let entities = Entities::build(&mut rng, &mut pools, counts);
        let mut facts = Vec::new();
        for domain in domains {
            facts.extend((domain.facts)(&entities, &mut rng, &mut pools));
        }
        World { part, entities, facts }
    }
}
