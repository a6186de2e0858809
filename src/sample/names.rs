//! Surface pools: the embedded gazetteers (assets/gazetteers/*.json) for the
//! name-like entity types, regular formats for the pattern-like ones (money,
//! dates, dosages, codes, tickers, citations), and the seen/unseen partition
//! that keeps the unseen-entity test disjoint from training.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use rand::seq::IndexedRandom;
use rand::Rng;

use crate::util::{stable_hash, SeededRng};

/// The gazetteer files, embedded so the generator is self-contained.
pub const GAZETTEER_FILES: [(&str, &str); 4] = [
    ("legal", include_str!("../../assets/gazetteers/legal.json")),
    ("medical", include_str!("../../assets/gazetteers/medical.json")),
    ("financial", include_str!("../../assets/gazetteers/financial.json")),
    ("general", include_str!("../../assets/gazetteers/general.json")),
];

/// Entity type → surfaces, for one domain.
pub type Gazetteer = BTreeMap<String, Vec<String>>;

/// Parses one domain's embedded gazetteer.
pub fn gazetteer(domain: &str) -> anyhow::Result<Gazetteer> {
    let (_, text) = GAZETTEER_FILES
        .iter()
        .find(|(name, _)| *name == domain)
        .with_context(|| format!("no gazetteer for domain `{domain}`"))?;
    serde_json::from_str(text).with_context(|| format!("parsing assets/gazetteers/{domain}.json"))
}

/// Every domain's gazetteer, by domain.
pub fn all_gazetteers() -> anyhow::Result<BTreeMap<String, Gazetteer>> {
    GAZETTEER_FILES.iter().map(|(domain, _)| Ok((domain.to_string(), gazetteer(domain)?))).collect()
}

/// Which half of the surface space a world draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// Entities of train, dev and the seen-entity test.
    Seen,
    /// Entities of the unseen-entity test only.
    Unseen,
}

/// The part a surface belongs to, decided by a stable hash of its lower-cased
/// text (about one in five is unseen). Seed-independent, and the same for a
/// surface whatever its type or domain, so the two parts never share a surface.
pub fn part_of(surface: &str) -> Part {
    if stable_hash(&surface.to_lowercase()) % 5 == 0 {
        Part::Unseen
    } else {
        Part::Seen
    }
}

/// Draws surfaces of one part, never the same unique surface twice.
pub struct Pools<'g> {
    part: Part,
    gazetteers: &'g BTreeMap<String, Gazetteer>,
    used: BTreeSet<String>,
}

impl<'g> Pools<'g> {
    pub fn new(part: Part, gazetteers: &'g BTreeMap<String, Gazetteer>) -> Pools<'g> {
        Pools { part, gazetteers, used: BTreeSet::new() }
    }

    pub fn part(&self) -> Part {
        self.part
    }

    /// Gazetteer surfaces of `label` in `domain` that belong to this part and pass
    /// `keep`, in file order.
    pub fn names(&self, domain: &str, label: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.gazetteers
            .get(domain)
            .and_then(|gazetteer| gazetteer.get(label))
            .map(|names| names.iter().filter(|n| part_of(n) == self.part && keep(n)).cloned().collect())
            .unwrap_or_default()
    }

    /// Up to `n` distinct, not yet used surfaces of this part, in random order.
    pub fn take_names(
        &mut self,
        rng: &mut SeededRng,
        domain: &str,
        label: &str,
        n: usize,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<String> {
        let mut names: Vec<String> = self.names(domain, label, keep).into_iter().filter(|n| !self.used.contains(n)).collect();
        rand::seq::SliceRandom::shuffle(names.as_mut_slice(), rng);
        names.truncate(n);
        self.used.extend(names.iter().cloned());
        names
    }

    /// A generated surface of this part.
    pub fn pattern(&mut self, rng: &mut SeededRng, generate: impl Fn(&mut SeededRng) -> String) -> String {
        self.draw(rng, generate, |_| true)
    }

    /// A generated surface of this part never returned before by this method.
    pub fn unique_pattern(&mut self, rng: &mut SeededRng, generate: impl Fn(&mut SeededRng) -> String) -> String {
        let surface = self.draw(rng, generate, |s| !self.used.contains(s));
        self.used.insert(surface.clone());
        surface
    }

    /// A generated ticker surface of this part whose symbol is new; the symbol
    /// is built from `name` where possible.
    pub fn ticker(&mut self, rng: &mut SeededRng, name: &str) -> String {
        let letters: Vec<char> = name.chars().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_uppercase()).collect();
        let mut symbols: Vec<String> = Vec::new();
        if letters.len() >= 4 {
            symbols.push(letters[..3].iter().collect());
            symbols.push(letters[..4].iter().collect());
            symbols.push([letters[0], letters[1], letters[3]].iter().collect());
            symbols.push([letters[0], letters[2], letters[3]].iter().collect());
        }
        for attempt in 0..10_000 {
            let symbol = match symbols.get(attempt) {
                Some(symbol) => symbol.clone(),
                None => (0..rng.random_range(3..=4)).map(|_| rng.random_range(b'A'..=b'Z') as char).collect(),
            };
            let exchange = ["NASDAQ: ", "NYSE: ", ""].choose(rng).copied().unwrap_or_default();
            let surface = format!("{exchange}{symbol}");
            let key = format!("ticker {symbol}");
            if part_of(&surface) == self.part && !self.used.contains(&key) {
                self.used.insert(key);
                return surface;
            }
        }
        unreachable!("10,000 random tickers all taken")
    }

    fn draw(
        &self,
        rng: &mut SeededRng,
        generate: impl Fn(&mut SeededRng) -> String,
        accept: impl Fn(&str) -> bool,
    ) -> String {
        for _ in 0..10_000 {
            let surface = generate(rng);
            if part_of(&surface) == self.part && accept(&surface) {
                return surface;
            }
        }
        // Unreachable for the formats below: each has thousands of surfaces per part.
        panic!("no new surface of part {:?} after 10,000 draws", self.part)
    }
}

const MONTHS: [&str; 12] = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December",
];

/// `1,234,567` for 1234567.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A full date, `March 3, 2021`, with the year in `years`.
pub fn full_date(rng: &mut SeededRng, years: std::ops::RangeInclusive<u32>) -> String {
    let month = MONTHS[rng.random_range(0..12)];
    format!("{month} {}, {}", rng.random_range(1..=28), rng.random_range(years))
}

/// A year, `1867`.
pub fn year(rng: &mut SeededRng, years: std::ops::RangeInclusive<u32>) -> String {
    rng.random_range(years).to_string()
}

/// A fiscal quarter, `Q3 2023`.
pub fn quarter(rng: &mut SeededRng) -> String {
    format!("Q{} {}", rng.random_range(1..=4), rng.random_range(2008..=2024))
}

/// A statutory fine, `$25,000`.
pub fn money_fine(rng: &mut SeededRng) -> String {
    let value = rng.random_range(1..=60u64) * [500, 1_000, 5_000][rng.random_range(0..3)];
    format!("${}", thousands(value))
}

/// A court award, `$850,000` or `$1.2 million`.
pub fn money_award(rng: &mut SeededRng) -> String {
    if rng.random_bool(0.4) {
        format!("${}", thousands(rng.random_range(15..=99u64) * 10_000))
    } else {
        format!("${}.{} million", rng.random_range(1..=48), rng.random_range(0..=9))
    }
}

/// A settlement, `$45 million`.
pub fn money_settlement(rng: &mut SeededRng) -> String {
    if rng.random_bool(0.5) {
        format!("${} million", rng.random_range(2..=400))
    } else {
        format!("${}.{} million", rng.random_range(1..=99), rng.random_range(1..=9))
    }
}

/// Quarterly revenue, `$4.2 billion` or `$812 million`.
pub fn money_revenue(rng: &mut SeededRng) -> String {
    if rng.random_bool(0.5) {
        format!("${}.{} billion", rng.random_range(1..=38), rng.random_range(0..=9))
    } else {
        format!("${} million", rng.random_range(120..=990))
    }
}

/// A share price, `$24.50`.
pub fn share_price(rng: &mut SeededRng) -> String {
    format!("${}.{:02}", rng.random_range(6..=95), rng.random_range(0..4) * 25)
}

/// A monthly list price, `$1,240`.
pub fn list_price(rng: &mut SeededRng) -> String {
    format!("${}", thousands(rng.random_range(18..=990u64) * 10))
}

/// A reimbursement cap, `$3,500`.
pub fn coverage_amount(rng: &mut SeededRng) -> String {
    format!("${}", thousands(rng.random_range(4..=500u64) * 50))
}

/// A dividend yield, `3.5%`.
pub fn percent_yield(rng: &mut SeededRng) -> String {
    format!("{}.{}%", rng.random_range(0..=7), rng.random_range(1..=9))
}

/// A fund expense ratio, `0.45%`.
pub fn percent_expense(rng: &mut SeededRng) -> String {
    format!("{}.{:02}%", rng.random_range(0..=1), rng.random_range(3..=95))
}

/// A dose, `500 mg`, `10 mg/kg`, `250 mcg`.
pub fn dosage(rng: &mut SeededRng) -> String {
    match rng.random_range(0..10) {
        0..=5 => {
            let amount = ["1", "2", "2.5", "5", "10", "12.5", "20", "25", "40", "50", "75", "100", "150", "200", "250", "300", "400", "500", "600", "750", "800", "1000"];
            format!("{} mg", amount.choose(rng).copied().unwrap_or("10"))
        }
        6 => format!("{} mcg", [25, 50, 75, 100, 125, 200, 400].choose(rng).copied().unwrap_or(50)),
        7 => format!("{} units", [4, 6, 8, 10, 12, 20, 30].choose(rng).copied().unwrap_or(10)),
        _ => format!("{} mg/kg", ["0.5", "1", "2", "5", "7.5", "10", "15", "20"].choose(rng).copied().unwrap_or("5")),
    }
}

/// An ICD-10 code, `E11.9` or `K58.12`.
pub fn icd_code(rng: &mut SeededRng) -> String {
    let letter = b"ABCDEFGHIJKLMNOPQRSTVWXYZ"[rng.random_range(0..25)] as char;
    let code = format!("{letter}{:02}.{}", rng.random_range(0..100), rng.random_range(0..10));
    if rng.random_bool(0.3) {
        format!("{code}{}", rng.random_range(0..10))
    } else {
        code
    }
}

/// A docket number, `No. 19-cv-04821`, `No. 2:21-cv-00417` or `No. 18-1234`.
pub fn case_number(rng: &mut SeededRng) -> String {
    let year = rng.random_range(0..=23);
    match rng.random_range(0..3) {
        0 => format!("No. {year:02}-cv-{:05}", rng.random_range(100..99_999)),
        1 => format!("No. {}:{year:02}-cv-{:05}", rng.random_range(1..=9), rng.random_range(100..99_999)),
        _ => format!("No. {year:02}-{:04}", rng.random_range(10..9_999)),
    }
}

/// A statute citation, `§ 14-2207`, `Section 1045` or `Art. 12`.
pub fn statute_citation(rng: &mut SeededRng) -> String {
    match rng.random_range(0..10) {
        0..=5 => format!("§ {}-{}", rng.random_range(1..=60), rng.random_range(100..=9_999)),
        6..=8 => format!("Section {}", rng.random_range(10..=2_999)),
        _ => format!("Art. {}", rng.random_range(2..=400)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::seeded_rng;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(25_000), "25,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn pools_draw_only_their_part_and_unique_surfaces_once() {
        let gazetteers = all_gazetteers().unwrap();
        let mut rng = seeded_rng(1, 0);
        for part in [Part::Seen, Part::Unseen] {
            let mut pools = Pools::new(part, &gazetteers);
            let drugs = pools.take_names(&mut rng, "medical", "DRUG", 1_000, |_| true);
            assert!(drugs.len() >= 20, "{part:?}: only {} drugs", drugs.len());
            assert!(drugs.iter().all(|d| part_of(d) == part));
            let again = pools.take_names(&mut rng, "medical", "DRUG", 1_000, |_| true);
            assert!(again.is_empty(), "taken names were handed out twice");
            let codes: BTreeSet<String> = (0..200).map(|_| pools.unique_pattern(&mut rng, icd_code)).collect();
            assert_eq!(codes.len(), 200);
            assert!(codes.iter().all(|c| part_of(c) == part));
        }
    }
}
