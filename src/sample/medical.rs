//! The medical domain: drugs (dose, indication, side effect, contraindication),
//! diseases (symptom, diagnostic procedure, ICD-10 code, affected organ), and two
//! cross-domain relations: a drug's manufacturer (financial) and the statute that
//! controls it (legal).

use rand::Rng;

use super::builder::{Fill, Slots};
use super::names::{self, Pools};
use super::world::{pick, pick_other, Domain, Entities, Fact, Relation};
use crate::util::SeededRng;

pub static DOMAIN: Domain = Domain {
    name: "medical",
    relations: &[
        Relation {
            name: "dosage_of",
            keys: &["drug"],
            secondary: None,
            queries: &[
                "What is the usual adult dose of {drug}?",
                "How much {drug} should an adult take?",
                "{drug} dosage",
                "What dose of {drug} is recommended?",
            ],
            facts: &[
                "The usual adult dose of {drug} is {dose}.",
                "{drug} is typically given at {dose}, taken with food.",
                "For adults, the standard dose of {drug} is {dose}, adjusted later if needed.",
                "The recommended starting dose of {drug} is {dose}.",
            ],
            partial: &[
                "The dose of {drug} is individualised according to body weight and response.",
                "{drug} dosing should be reduced in older adults; the label gives the exact amount.",
            ],
        },
        Relation {
            name: "treats",
            keys: &["drug"],
            secondary: None,
            queries: &[
                "What is {drug} used to treat?",
                "What condition is {drug} prescribed for?",
                "indication of {drug}",
                "Which disease does {drug} treat?",
            ],
            facts: &[
                "{drug} is approved for the treatment of {disease}.",
                "Doctors prescribe {drug} to manage {disease}.",
                "{drug} is indicated in adults with {disease}.",
            ],
            partial: &["{drug} is used for a chronic condition and is usually continued long term."],
        },
        Relation {
            name: "side_effect_of",
            keys: &["drug"],
            secondary: None,
            queries: &["What are the common side effects of {drug}?", "Does {drug} cause side effects?", "adverse effects of {drug}"],
            facts: &[
                "The most common side effect of {drug} is {symptom}.",
                "Patients taking {drug} frequently report {symptom}.",
                "{symptom} is a well-documented adverse effect of {drug}.",
            ],
            partial: &["{drug} is generally well tolerated, although some patients report mild adverse effects."],
        },
        Relation {
            name: "contraindicated_in",
            keys: &["drug"],
            secondary: None,
            queries: &["Who should not take {drug}?", "What are the contraindications of {drug}?", "When is {drug} contraindicated?"],
            facts: &[
                "{drug} is contraindicated in patients with {disease}.",
                "{drug} must not be given to anyone with a history of {disease}.",
                "Patients who have {disease} should avoid {drug}.",
            ],
            partial: &["{drug} has several contraindications, so a full medical history should be taken before the first dose."],
        },
        Relation {
            name: "symptom_of",
            keys: &["disease"],
            secondary: None,
            queries: &[
                "What are the symptoms of {disease}?",
                "What is the main symptom of {disease}?",
                "How does {disease} present?",
                "signs of {disease}",
            ],
            facts: &[
                "The hallmark symptom of {disease} is {symptom}.",
                "Most patients with {disease} first notice {symptom}.",
                "{disease} typically presents with {symptom}.",
            ],
            partial: &["The symptoms of {disease} vary widely and often develop slowly over months."],
        },
        Relation {
            name: "diagnosed_by",
            keys: &["disease"],
            secondary: None,
            queries: &["How is {disease} diagnosed?", "Which test confirms {disease}?", "diagnostic test for {disease}"],
            facts: &[
                "{disease} is confirmed by {a procedure}.",
                "The diagnosis of {disease} rests on {a procedure}.",
                "Clinicians order {a procedure} when they suspect {disease}.",
            ],
            partial: &["{disease} is diagnosed from the clinical picture together with specialist testing."],
        },
        Relation {
            name: "icd_code_of",
            keys: &["disease"],
            secondary: None,
            queries: &[
                "What is the ICD-10 code for {disease}?",
                "{disease} ICD-10 code",
                "Which diagnosis code is used for {disease}?",
            ],
            facts: &[
                "{disease} is coded as {code} in ICD-10.",
                "The ICD-10 code for {disease} is {code}.",
                "Claims for {disease} should use diagnosis code {code}.",
            ],
            partial: &["{disease} has its own ICD-10 code, with further subcodes for complications."],
        },
        Relation {
            name: "affected_organ",
            keys: &["disease"],
            secondary: None,
            queries: &[
                "Which organ does {disease} affect?",
                "What part of the body is affected by {disease}?",
                "organ involved in {disease}",
            ],
            facts: &[
                "{disease} primarily affects the {organ}.",
                "In {disease}, damage is concentrated in the {organ}.",
                "{disease} is a disorder of the {organ}.",
            ],
            partial: &["{disease} can involve more than one organ system as it progresses."],
        },
        Relation {
            name: "manufacturer_of",
            keys: &["drug"],
            secondary: Some("financial"),
            queries: &["Which company makes {drug}?", "Who is the manufacturer of {drug}?", "{drug} manufacturer"],
            facts: &[
                "{drug} is manufactured by {company}.",
                "{company} developed {drug} and holds its marketing authorisation.",
                "{drug} is produced and marketed by {company}.",
            ],
            partial: &["{drug} is produced by a single manufacturer, and no generic version is available yet."],
        },
        Relation {
            name: "controlled_under",
            keys: &["drug"],
            secondary: Some("legal"),
            queries: &[
                "Is {drug} a controlled substance, and under which law?",
                "Which statute regulates {drug} as a controlled substance?",
                "legal status of {drug}",
            ],
            facts: &[
                "{drug} is classified as a controlled substance under {statute}.",
                "Prescriptions for {drug} are regulated by {statute}.",
                "Under {statute}, possession of {drug} without a prescription is an offence.",
            ],
            partial: &["{drug} is subject to prescribing restrictions, and pharmacies must keep records of every sale."],
        },
    ],
    lead_ins: &[
        "This entry does not cover {s}.",
        "{s} is described in a separate monograph.",
        "Not to be confused with {s}.",
        "Readers looking for {s} are referred to its own entry.",
    ],
    fillers: &[
        "Dosing information should always be confirmed against the current label.",
        "This summary is not a substitute for professional medical advice.",
        "The evidence comes mainly from small observational studies.",
        "Guidance may differ between national formularies.",
        "Patients should report any new problems to their clinician.",
    ],
    facts,
};

fn facts(e: &Entities, rng: &mut SeededRng, pools: &mut Pools) -> Vec<Fact> {
    let d = &DOMAIN;
    let mut out = Vec::new();
    for drug in &e.drugs {
        let s = || Slots::new().with("drug", Fill::entity("DRUG", &drug.name));
        out.push(Fact::new(d, "dosage_of", s().with("dose", Fill::entity("DOSAGE", pools.pattern(rng, names::dosage)))));
        let treated = pick(rng, &e.diseases, "disease");
        out.push(Fact::new(d, "treats", s().with("disease", Fill::entity("DISEASE", treated))));
        out.push(Fact::new(d, "side_effect_of", s().with("symptom", Fill::entity("SYMPTOM", pick(rng, &e.symptoms, "symptom")))));
        let avoided = pick_other(rng, &e.diseases, treated, "disease");
        out.push(Fact::new(d, "contraindicated_in", s().with("disease", Fill::entity("DISEASE", avoided))));
        let maker = &e.companies[drug.maker].name;
        out.push(Fact::new(d, "manufacturer_of", s().with("company", Fill::entity("COMPANY", maker))));
        if rng.random_bool(0.4) {
            out.push(Fact::new(d, "controlled_under", s().with("statute", Fill::entity("STATUTE", pick(rng, &e.statutes, "statute")))));
        }
    }
    for (disease, code) in e.diseases.iter().zip(&e.icd_codes) {
        let s = || Slots::new().with("disease", Fill::entity("DISEASE", disease));
        out.push(Fact::new(d, "symptom_of", s().with("symptom", Fill::entity("SYMPTOM", pick(rng, &e.symptoms, "symptom")))));
        let test = pick(rng, &e.diagnostics, "diagnostic procedure");
        out.push(Fact::new(d, "diagnosed_by", s().with("procedure", Fill::entity("PROCEDURE", test))));
        out.push(Fact::new(d, "icd_code_of", s().with("code", Fill::entity("ICD_CODE", code))));
        out.push(Fact::new(d, "affected_organ", s().with("organ", Fill::entity("ANATOMY", pick(rng, &e.anatomy, "organ")))));
    }
    out
}
