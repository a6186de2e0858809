//! The README written next to the generated sample data: how it was made, from
//! the generator's own tables and the generated groups (no timestamps, so it is
//! as reproducible as the data).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::groups::{self, CANDIDATES};
use super::names::{part_of, Gazetteer, Part};
use super::world::{Counts, Domain};
use crate::data::{QueryGroup, Split};

/// The README text for data generated with `seed`.
pub fn readme(seed: u64, domains: &[&'static Domain], groups: &[QueryGroup], gazetteers: &BTreeMap<String, Gazetteer>) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# Sample data (generated)\n");
    let _ = writeln!(
        w,
        "Synthetic multi-domain reranking data for R2R Workbench, written by\n\n    r2r sample-data generate --seed {seed} --out sample_data\n\n\
         Do not edit these files: they are byte-identical to the command's output, and a test\n\
         (`tests/sample_data.rs`) regenerates them and compares. The generator is `src/sample/`.\n"
    );
    let _ = writeln!(w, "## Files\n");
    let _ = writeln!(
        w,
        "- `legal.jsonl`, `medical.jsonl`, `financial.jsonl`, `general.jsonl`: the native JSONL format, one\n  \
         query group per line, groups ordered train, dev, test, test_unseen. Each group has `id`\n  \
         (`legal-train-0001`), `domain`, `split`, `query`, `query_entities`, `secondary_domain` (cross-domain\n  \
         queries only), `meta.relation` (the relation asked) and {CANDIDATES} `candidates` (`id`, `text`,\n  \
         `relevance` 2/1/0, `entities`).\n\
         - Entity spans are `{{start, end, label}}` in characters (Unicode scalar values), end exclusive.\n  \
         Every entity mention in every query and passage has a span.\n\
         - `general` is out-of-domain data, used only to measure forgetting.\n"
    );
    write_sizes(w, domains, groups);
    let _ = writeln!(w, "## How it was made\n");
    let _ = writeln!(
        w,
        "1. **Entities.** Name-like types come from the gazetteers in `assets/gazetteers/<domain>.json`\n   \
         (invented drugs, diseases, statutes, courts, parties, companies, products, people, places,\n   \
         organisations and events, so no generated fact contradicts the real world; symptoms,\n   \
         procedures, anatomy, jurisdictions and some market indices are real). Pattern-like types are\n   \
         generated in regular formats (below).\n\
         2. **Seen and unseen surfaces.** Every surface belongs to one part by a stable hash of its\n   \
         lower-cased text (about one in five is unseen), whatever its type or domain. Two worlds are\n   \
         built: the *seen* world from seen surfaces only (train, dev, test) and the *unseen* world from\n   \
         unseen surfaces only (test_unseen). So no entity surface of test_unseen occurs anywhere in\n   \
         train, dev or test; test queries ask new questions about entities that train also mentions.\n\
         3. **Facts.** Each world holds entities of all domains (a drug's manufacturer is the same company\n   \
         in medical and financial data) and one fact per relation and subject (and qualifier, such as a\n   \
         revenue figure's quarter): e.g. each drug has one dose, one indication, one side effect.\n\
         4. **Queries.** Each query asks about one relation of one fact, in one of several phrasings\n   \
         (questions and keyword queries). About {:.1}% of the legal, medical and financial queries of each\n   \
         split ask a cross-domain relation: they name entities of two domains, carry `secondary_domain`,\n   \
         and keep their primary domain as `domain`.\n\
         5. **Candidates.** Relevance follows the relation asked, not entity overlap:\n   \
         - relevance 2: exactly one passage, stating the asked fact;\n   \
         - relevance 1 (in about {:.0}% of groups): the asked relation for the subject, hedged or without the answer;\n   \
         - relevance 0, hard: other facts about the entities the query names (same entity, other relation;\n     \
           same company, other quarter), up to {}; the same relation about other entities, up to {};\n     \
           in about {:.0}% of groups a near-miss that names the query's subject and then states the fact\n     \
           for another entity;\n   \
         - relevance 0, random: other facts of the domain, up to {CANDIDATES} candidates in all.\n   \
         About {:.0}% of passages carry a distractor sentence (an entity-free remark or a fact about\n   \
         entities the query does not name). Candidates are shuffled; their ids say nothing about relevance.\n\
         6. **Determinism.** Everything is drawn from ChaCha8 streams of the seed (`util::seeded_rng`),\n   \
         iterating in fixed orders.\n",
        100.0 * groups::CROSS_DOMAIN_RATE,
        100.0 * groups::PARTIAL_RATE,
        groups::MAX_OVERLAP_NEGATIVES,
        groups::MAX_SAME_RELATION_NEGATIVES,
        100.0 * groups::NEAR_MISS_RATE,
        100.0 * groups::EXTRA_SENTENCE_RATE,
    );
    write_relations(w, domains);
    write_pools(w, gazetteers);
    let _ = writeln!(w, "## Pattern formats\n");
    for (label, formats) in [
        ("MONEY", "`$25,000`, `$850,000`, `$1.2 million`, `$4.2 billion`, `$24.50`"),
        ("DATE", "`March 3, 2021`, `Q3 2023`, `1867`"),
        ("PERCENT", "`3.5%`, `0.45%`"),
        ("DOSAGE", "`500 mg`, `2.5 mg`, `250 mcg`, `10 units`, `10 mg/kg`"),
        ("ICD_CODE", "`E11.9`, `K58.12`"),
        ("CASE_NUMBER", "`No. 19-cv-04821`, `No. 2:21-cv-00417`, `No. 18-1234`"),
        ("TICKER", "`NASDAQ: VELT`, `NYSE: VEL`, `VEL` (built from the company name where possible)"),
        ("STATUTE (citations)", "`§ 14-2207`, `Section 1045`, `Art. 12` (named acts come from the gazetteer)"),
    ] {
        let _ = writeln!(w, "- {label}: {formats}");
    }
    let _ = writeln!(w);
    let _ = writeln!(w, "## World sizes\n");
    let _ = writeln!(w, "Subjects drawn per world (seen / unseen), where the gazetteer part has enough names:\n");
    let (s, u) = (Counts::SEEN, Counts::UNSEEN);
    for (what, a, b) in [
        ("statutes", s.statutes, u.statutes),
        ("courts", s.courts, u.courts),
        ("cases", s.cases, u.cases),
        ("malpractice cases", s.malpractice_cases, u.malpractice_cases),
        ("drugs", s.drugs, u.drugs),
        ("diseases", s.diseases, u.diseases),
        ("pharmaceutical companies", s.pharma, u.pharma),
        ("asset managers", s.asset_managers, u.asset_managers),
        ("other companies", s.operating, u.operating),
        ("funds", s.funds, u.funds),
        ("health plans", s.plans, u.plans),
        ("people", s.persons, u.persons),
        ("organisations", s.organizations, u.organizations),
        ("events", s.events, u.events),
        ("towns", s.cities, u.cities),
    ] {
        let _ = writeln!(w, "- {what}: {a} / {b}");
    }
    out
}

fn write_sizes(w: &mut String, domains: &[&'static Domain], groups: &[QueryGroup]) {
    let _ = writeln!(w, "## Sizes\n");
    let _ = writeln!(w, "Queries per split (of which cross-domain), {CANDIDATES} candidates each:\n");
    let _ = writeln!(w, "| domain | train | dev | test | test_unseen | relevance 2 / 1 / 0 passages |");
    let _ = writeln!(w, "|---|---|---|---|---|---|");
    for domain in domains {
        let mut row = format!("| {} |", domain.name);
        let mut relevance = [0usize; 3];
        for split in Split::ALL {
            let selected: Vec<&QueryGroup> = groups.iter().filter(|g| g.domain == domain.name && g.split == split).collect();
            let cross = selected.iter().filter(|g| g.secondary_domain.is_some()).count();
            let _ = write!(row, " {} ({cross}) |", selected.len());
            for group in selected {
                for candidate in &group.candidates {
                    relevance[(candidate.relevance as usize).min(2)] += 1;
                }
            }
        }
        let _ = writeln!(w, "{row} {} / {} / {} |", relevance[2], relevance[1], relevance[0]);
    }
    let _ = writeln!(w);
}

fn write_relations(w: &mut String, domains: &[&'static Domain]) {
    let _ = writeln!(w, "## Relations and templates\n");
    let _ = writeln!(
        w,
        "Templates are sentences with slots: `{{drug}}` is filled with an entity (its span is recorded as\n\
         it is written) or, for limitation periods, a duration; `{{a procedure}}` adds an article and\n\
         `{{company's}}` a possessive. Each domain's templates are in `src/sample/<domain>.rs`.\n"
    );
    for domain in domains {
        let relations = domain.relations;
        let queries: usize = relations.iter().map(|r| r.queries.len()).sum();
        let passages: usize = relations.iter().map(|r| r.facts.len() + r.partial.len()).sum();
        let _ = writeln!(
            w,
            "### {}\n\n{} relations, {queries} query templates, {passages} passage templates (full and partial), \
             {} near-miss lead-ins, {} distractor remarks.\n",
            domain.name,
            relations.len(),
            domain.lead_ins.len(),
            domain.fillers.len()
        );
        let _ = writeln!(w, "| relation | asks about | second domain | query / passage / partial templates | example query |");
        let _ = writeln!(w, "|---|---|---|---|---|");
        for r in relations {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} / {} / {} | {} |",
                r.name,
                r.keys.join(", "),
                r.secondary.unwrap_or("-"),
                r.queries.len(),
                r.facts.len(),
                r.partial.len(),
                r.queries[0]
            );
        }
        let _ = writeln!(w);
    }
}

fn write_pools(w: &mut String, gazetteers: &BTreeMap<String, Gazetteer>) {
    let _ = writeln!(w, "## Gazetteers\n");
    let _ = writeln!(w, "Surfaces per type in `assets/gazetteers/` (seen / unseen part):\n");
    for (domain, gazetteer) in gazetteers {
        let parts: Vec<String> = gazetteer
            .iter()
            .map(|(label, names)| {
                let unseen = names.iter().filter(|n| part_of(n) == Part::Unseen).count();
                format!("{label} {} / {unseen}", names.len() - unseen)
            })
            .collect();
        let _ = writeln!(w, "- {domain}: {}", parts.join(", "));
    }
    let _ = writeln!(w);
}
