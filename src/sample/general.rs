//! The general domain: encyclopedic facts about invented people (birthplace,
//! birth year, education), organisations (founding year, founder, seat), events
//! (date, place) and towns (river). It is out-of-domain data for measuring
//! forgetting, so it has no cross-domain queries.

use super::builder::{Fill, Slots};
use super::names::{self, Pools};
use super::world::{pick, Domain, Entities, Fact, Relation};
use crate::util::SeededRng;

pub static DOMAIN: Domain = Domain {
    name: "general",
    relations: &[
        Relation {
            name: "birthplace",
            keys: &["person"],
            secondary: None,
            queries: &["Where was {person} born?", "What is the birthplace of {person}?", "{person} place of birth"],
            facts: &[
                "{person} was born in {place}.",
                "Born in {place}, {person} spent most of their early life there.",
                "{person} grew up in {place}, the town of their birth.",
            ],
            partial: &["{person} was born in a small town and moved several times as a child."],
        },
        Relation {
            name: "birth_year",
            keys: &["person"],
            secondary: None,
            queries: &["When was {person} born?", "What year was {person} born?", "{person} birth year"],
            facts: &[
                "{person} was born in {year}.",
                "Records show that {person} was born in {year}.",
                "The year of {person's} birth was {year}.",
            ],
            partial: &["{person} was born early in the century, though the parish records of the exact year were lost."],
        },
        Relation {
            name: "educated_at",
            keys: &["person"],
            secondary: None,
            queries: &["Where did {person} study?", "Which institution did {person} attend?", "{person} education"],
            facts: &[
                "{person} studied at {school}.",
                "{person} was educated at {school}.",
                "After leaving school, {person} enrolled at {school}.",
            ],
            partial: &["{person} received a formal education but later claimed to be largely self-taught."],
        },
        Relation {
            name: "founded_in",
            keys: &["org"],
            secondary: None,
            queries: &["When was {org} founded?", "What year was {org} established?", "{org} founding date"],
            facts: &[
                "{org} was founded in {year}.",
                "{org} was established in {year}.",
                "Since its founding in {year}, {org} has grown steadily.",
            ],
            partial: &["{org} is one of the oldest bodies of its kind, although its founding date is disputed."],
        },
        Relation {
            name: "founded_by",
            keys: &["org"],
            secondary: None,
            queries: &["Who founded {org}?", "Who was the founder of {org}?", "{org} founder"],
            facts: &[
                "{org} was founded by {person}.",
                "{person} established {org} and served as its first president.",
                "The founder of {org} was {person}.",
            ],
            partial: &["{org} owes its founding to a single benefactor, whose papers are kept in its archive."],
        },
        Relation {
            name: "headquarters",
            keys: &["org"],
            secondary: None,
            queries: &["Where is {org} based?", "Where are the headquarters of {org}?", "{org} location"],
            facts: &["{org} has its headquarters in {place}.", "{org} is based in {place}.", "The main office of {org} is in {place}."],
            partial: &["{org} has moved its headquarters more than once since it was founded."],
        },
        Relation {
            name: "event_date",
            keys: &["event"],
            secondary: None,
            queries: &["When did {event} take place?", "What was the date of {event}?", "{event} date"],
            facts: &[
                "{event} took place on {date}.",
                "{event} began on {date} and lasted several weeks.",
                "Historians date {event} to {date}.",
            ],
            partial: &["{event} took place in the same decade as several other upheavals of the period."],
        },
        Relation {
            name: "event_place",
            keys: &["event"],
            secondary: None,
            queries: &["Where did {event} take place?", "What was the location of {event}?", "{event} location"],
            facts: &["{event} took place in {place}.", "{event} was centred on {place}.", "The site of {event} was {place}."],
            partial: &["{event} took place far from the capital, in a region that was then sparsely populated."],
        },
        Relation {
            name: "river_of",
            keys: &["city"],
            secondary: None,
            queries: &["Which river flows through {city}?", "What river is {city} on?", "{city} river"],
            facts: &[
                "{city} lies on {river}.",
                "{river} flows through the centre of {city}.",
                "{city} grew up around a crossing of {river}.",
            ],
            partial: &["{city} is a river town whose old quarter floods every few years."],
        },
    ],
    lead_ins: &[
        "This article is not about {s}.",
        "{s} has its own article.",
        "Not to be confused with {s}.",
        "For {s}, see the separate entry.",
    ],
    fillers: &[
        "The entry was last revised by the editors.",
        "Historians continue to debate the details.",
        "Contemporary accounts differ on several points.",
        "Little else is recorded about the period.",
        "The account above follows the standard reference works.",
    ],
    facts,
};

fn facts(e: &Entities, rng: &mut SeededRng, pools: &mut Pools) -> Vec<Fact> {
    let d = &DOMAIN;
    let mut out = Vec::new();
    for person in &e.persons {
        let s = || Slots::new().with("person", Fill::entity("PERSON", person));
        out.push(Fact::new(d, "birthplace", s().with("place", Fill::entity("LOCATION", pick(rng, &e.cities, "town")))));
        let year = pools.pattern(rng, |r| names::year(r, 1620..=1960));
        out.push(Fact::new(d, "birth_year", s().with("year", Fill::entity("DATE", year))));
        out.push(Fact::new(d, "educated_at", s().with("school", Fill::entity("ORGANIZATION", pick(rng, &e.schools, "school")))));
    }
    for org in &e.organizations {
        let s = || Slots::new().with("org", Fill::entity("ORGANIZATION", org));
        let year = pools.pattern(rng, |r| names::year(r, 1500..=1950));
        out.push(Fact::new(d, "founded_in", s().with("year", Fill::entity("DATE", year))));
        out.push(Fact::new(d, "founded_by", s().with("person", Fill::entity("PERSON", pick(rng, &e.persons, "person")))));
        out.push(Fact::new(d, "headquarters", s().with("place", Fill::entity("LOCATION", pick(rng, &e.cities, "town")))));
    }
    for event in &e.events {
        let s = || Slots::new().with("event", Fill::entity("EVENT", event));
        let date = pools.pattern(rng, |r| names::full_date(r, 1700..=1980));
        out.push(Fact::new(d, "event_date", s().with("date", Fill::entity("DATE", date))));
        out.push(Fact::new(d, "event_place", s().with("place", Fill::entity("LOCATION", pick(rng, &e.cities, "town")))));
    }
    for city in &e.cities {
        let slots = Slots::new().with("city", Fill::entity("LOCATION", city)).with("river", Fill::entity("LOCATION", pick(rng, &e.rivers, "river")));
        out.push(Fact::new(d, "river_of", slots));
    }
    out
}
