//! The legal domain: statutes (penalties, limitation periods, enactment,
//! jurisdiction, codification), cases (court, docket, decision date, damages),
//! courts (seat), and two cross-domain relations: malpractice verdicts (medical)
//! and securities-fraud settlements (financial).

use rand::seq::IndexedRandom;

use super::builder::{Fill, Slots};
use super::names::{self, Pools};
use super::world::{pick, Domain, Entities, Fact, Relation};
use crate::util::SeededRng;

const LIMITATION_PERIODS: [&str; 11] = [
    "one year",
    "two years",
    "three years",
    "four years",
    "five years",
    "six years",
    "ten years",
    "ninety days",
    "six months",
    "eighteen months",
    "one hundred eighty days",
];

pub static DOMAIN: Domain = Domain {
    name: "legal",
    relations: &[
        Relation {
            name: "penalty_under",
            keys: &["statute"],
            secondary: None,
            queries: &[
                "What is the maximum civil penalty under {statute}?",
                "How much can a business be fined for violating {statute}?",
                "penalty for a violation of {statute}",
                "What fine does {statute} impose per violation?",
            ],
            facts: &[
                "{statute} authorises civil penalties of up to {money} for each violation.",
                "Violations of {statute} are punishable by a fine of not more than {money}.",
                "Under {statute}, a court may impose a penalty of up to {money} per violation, in addition to any damages.",
                "The maximum fine under {statute} is {money} for each separate offence.",
            ],
            partial: &[
                "{statute} provides for civil penalties, the amount of which depends on the seriousness of the violation.",
                "Penalties under {statute} are set by regulation and adjusted periodically for inflation.",
            ],
        },
        Relation {
            name: "limitation_period",
            keys: &["statute"],
            secondary: None,
            queries: &[
                "What is the statute of limitations for claims under {statute}?",
                "How long do I have to sue under {statute}?",
                "limitation period for an action under {statute}",
                "When does a claim under {statute} become time-barred?",
            ],
            facts: &[
                "An action under {statute} must be commenced within {period} after the cause of action accrues.",
                "Claims brought under {statute} are subject to a limitation period of {period}.",
                "{statute} requires plaintiffs to file suit within {period} of the violation.",
                "Under {statute}, the limitations period is {period}, running from the date of discovery.",
            ],
            partial: &[
                "{statute} contains its own limitation period, which courts have interpreted in conflicting ways.",
                "Whether a claim under {statute} is timely depends on when the plaintiff discovered the violation.",
            ],
        },
        Relation {
            name: "enacted_on",
            keys: &["statute"],
            secondary: None,
            queries: &[
                "When was {statute} enacted?",
                "What is the enactment date of {statute}?",
                "{statute} date of enactment",
                "When did {statute} become law?",
            ],
            facts: &[
                "{statute} was signed into law on {date}.",
                "{statute} was enacted on {date} after a lengthy committee process.",
                "{statute} became law on {date}, replacing a patchwork of older rules.",
            ],
            partial: &["{statute} was enacted after years of debate and has been amended several times since."],
        },
        Relation {
            name: "enacting_jurisdiction",
            keys: &["statute"],
            secondary: None,
            queries: &[
                "Which state enacted {statute}?",
                "In which jurisdiction does {statute} apply?",
                "Whose law is {statute}?",
            ],
            facts: &[
                "{statute} is a statute of {jurisdiction} and applies only to conduct within its borders.",
                "The legislature of {jurisdiction} enacted {statute}.",
                "{statute} governs disputes arising in {jurisdiction}.",
            ],
            partial: &[
                "{statute} applies only within the jurisdiction that enacted it, and courts elsewhere treat it as persuasive at most.",
            ],
        },
        Relation {
            name: "codified_at",
            keys: &["statute"],
            secondary: None,
            queries: &[
                "Where is {statute} codified?",
                "What is the statutory citation for {statute}?",
                "citation of {statute}",
            ],
            facts: &[
                "{statute} is codified at {citation}.",
                "The operative provisions of {statute} appear in {citation}.",
                "Practitioners usually cite {statute} as {citation}.",
            ],
            partial: &["{statute} has been codified, although its sections were renumbered during a later revision."],
        },
        Relation {
            name: "heard_by",
            keys: &["case"],
            secondary: None,
            queries: &["Which court heard {case}?", "In what court was {case} decided?", "court that ruled in {case}"],
            facts: &[
                "{case} was heard by {court}.",
                "{court} presided over {case} at trial.",
                "The dispute in {case} was litigated before {court}.",
            ],
            partial: &["{case} was litigated in a state trial court before the parties settled the remaining claims."],
        },
        Relation {
            name: "docket_number",
            keys: &["case"],
            secondary: None,
            queries: &["What is the docket number of {case}?", "case number for {case}", "Under which number was {case} filed?"],
            facts: &[
                "{case} was filed under {docket}.",
                "The docket number for {case} is {docket}.",
                "Court records list {case} as {docket}.",
            ],
            partial: &["The docket for {case} is publicly available, though several filings remain under seal."],
        },
        Relation {
            name: "decided_on",
            keys: &["case"],
            secondary: None,
            queries: &["When was {case} decided?", "What date did the court rule in {case}?", "decision date of {case}"],
            facts: &[
                "The court issued its decision in {case} on {date}.",
                "{case} was decided on {date}.",
                "Judgment in {case} was entered on {date}.",
            ],
            partial: &["{case} was decided after a bench trial that lasted several weeks."],
        },
        Relation {
            name: "damages_awarded",
            keys: &["case"],
            secondary: None,
            queries: &[
                "How much was awarded in {case}?",
                "What damages did the plaintiff recover in {case}?",
                "damages award in {case}",
            ],
            facts: &[
                "In {case}, the jury awarded the plaintiff {money} in compensatory damages.",
                "The court in {case} entered judgment for {money}.",
                "{case} ended with a damages award of {money}.",
            ],
            partial: &["The plaintiff in {case} recovered damages, although the amount was reduced on appeal."],
        },
        Relation {
            name: "court_seat",
            keys: &["court"],
            secondary: None,
            queries: &["Where is {court} located?", "Which jurisdiction does {court} sit in?", "In what state is {court}?"],
            facts: &[
                "{court} sits in {jurisdiction}.",
                "{court} is a trial court of {jurisdiction}.",
                "{court} hears cases arising under the law of {jurisdiction}.",
            ],
            partial: &["{court} is one of several courts of general jurisdiction in the region."],
        },
        Relation {
            name: "malpractice_award",
            keys: &["case", "procedure"],
            secondary: Some("medical"),
            queries: &[
                "How much did the jury award in {case}, the malpractice suit over {a procedure}?",
                "damages in the medical malpractice case {case} about a failed {procedure}",
                "What was the verdict in {case}, where a patient was injured during {a procedure}?",
            ],
            facts: &[
                "In {case}, a jury awarded {money} to a patient who was injured during {a procedure}.",
                "{case} concerned a negligently performed {procedure}; the jury returned a verdict of {money}.",
                "The malpractice verdict in {case}, arising from {a procedure}, came to {money}.",
            ],
            partial: &["The malpractice claim in {case}, which followed {a procedure}, went to trial after mediation failed."],
        },
        Relation {
            name: "securities_settlement",
            keys: &["company"],
            secondary: Some("financial"),
            queries: &[
                "How much did {company} pay to settle securities fraud charges?",
                "securities fraud settlement amount for {company}",
                "What did {company} agree to pay in its securities fraud case?",
            ],
            facts: &[
                "{company} agreed to pay {money} to resolve claims that it violated {statute} by misleading investors.",
                "To settle securities fraud allegations under {statute}, {company} paid {money}.",
                "{company} settled the investor class action under {statute} for {money}.",
            ],
            partial: &["{company} has settled securities fraud claims brought by investors, without admitting wrongdoing."],
        },
    ],
    lead_ins: &[
        "This summary does not concern {s}.",
        "{s} is discussed in a separate note.",
        "Not to be confused with {s}.",
        "Readers looking for {s} should consult its own annotation.",
    ],
    fillers: &[
        "The opinion was not selected for publication.",
        "Counsel for both sides declined to comment.",
        "The summary above is provided for research purposes only.",
        "An appeal on unrelated grounds remains pending.",
        "Later amendments may affect how the rule applies today.",
    ],
    facts,
};

fn facts(e: &Entities, rng: &mut SeededRng, pools: &mut Pools) -> Vec<Fact> {
    let d = &DOMAIN;
    let mut out = Vec::new();
    for (statute, citation) in e.statutes.iter().zip(&e.citations) {
        let s = || Slots::new().with("statute", Fill::entity("STATUTE", statute));
        out.push(Fact::new(d, "penalty_under", s().with("money", Fill::entity("MONEY", pools.pattern(rng, names::money_fine)))));
        let period = LIMITATION_PERIODS.choose(rng).copied().unwrap_or("two years");
        out.push(Fact::new(d, "limitation_period", s().with("period", Fill::text(period))));
        let date = pools.pattern(rng, |r| names::full_date(r, 1975..=2022));
        out.push(Fact::new(d, "enacted_on", s().with("date", Fill::entity("DATE", date))));
        let jurisdiction = pick(rng, &e.jurisdictions, "jurisdiction");
        out.push(Fact::new(d, "enacting_jurisdiction", s().with("jurisdiction", Fill::entity("JURISDICTION", jurisdiction))));
        out.push(Fact::new(d, "codified_at", s().with("citation", Fill::entity("STATUTE", citation))));
    }
    for (case, docket) in e.cases.iter().zip(&e.dockets) {
        let s = || Slots::new().with("case", case.fill());
        out.push(Fact::new(d, "heard_by", s().with("court", Fill::entity("COURT", pick(rng, &e.courts, "court")))));
        out.push(Fact::new(d, "docket_number", s().with("docket", Fill::entity("CASE_NUMBER", docket))));
        let date = pools.pattern(rng, |r| names::full_date(r, 1990..=2023));
        out.push(Fact::new(d, "decided_on", s().with("date", Fill::entity("DATE", date))));
        out.push(Fact::new(d, "damages_awarded", s().with("money", Fill::entity("MONEY", pools.pattern(rng, names::money_award)))));
    }
    for court in &e.courts {
        let jurisdiction = pick(rng, &e.jurisdictions, "jurisdiction");
        let slots = Slots::new().with("court", Fill::entity("COURT", court)).with("jurisdiction", Fill::entity("JURISDICTION", jurisdiction));
        out.push(Fact::new(d, "court_seat", slots));
    }
    for case in &e.malpractice_cases {
        let slots = Slots::new()
            .with("case", case.fill())
            .with("procedure", Fill::entity("PROCEDURE", pick(rng, &e.treatments, "operation or treatment")))
            .with("money", Fill::entity("MONEY", pools.pattern(rng, names::money_award)));
        out.push(Fact::new(d, "malpractice_award", slots));
    }
    // Companies that settled securities claims: about half of them.
    for company in e.companies.iter().step_by(2) {
        let slots = Slots::new()
            .with("company", Fill::entity("COMPANY", &company.name))
            .with("statute", Fill::entity("STATUTE", pick(rng, &e.statutes, "statute")))
            .with("money", Fill::entity("MONEY", pools.pattern(rng, names::money_settlement)));
        out.push(Fact::new(d, "securities_settlement", slots));
    }
    out
}
