//! The financial domain: companies (ticker, quarterly revenue, dividend yield,
//! IPO, index membership, flagship product), funds (expense ratio, benchmark,
//! manager), and two cross-domain relations with the medical domain: a drug's
//! list price and a health plan's coverage of a procedure.

use super::builder::{Fill, Slots};
use super::names::{self, Pools};
use super::world::{pick, pick_distinct, CompanyKind, Domain, Entities, Fact, Relation};
use crate::util::SeededRng;

/// Quarters with a revenue figure per company (each its own fact).
const QUARTERS_PER_COMPANY: usize = 3;
/// Procedures with a coverage figure per health plan.
const PROCEDURES_PER_PLAN: usize = 2;

pub static DOMAIN: Domain = Domain {
    name: "financial",
    relations: &[
        Relation {
            name: "ticker_of",
            keys: &["company"],
            secondary: None,
            queries: &[
                "What is the ticker symbol of {company}?",
                "{company} stock symbol",
                "Under which ticker does {company} trade?",
            ],
            facts: &[
                "{company} trades under the ticker {ticker}.",
                "Shares of {company} are listed as {ticker}.",
                "{company's} stock symbol is {ticker}.",
            ],
            partial: &["{company} is publicly traded, and its shares are among the more liquid in its sector."],
        },
        Relation {
            name: "revenue_of",
            keys: &["company", "quarter"],
            secondary: None,
            queries: &[
                "What was {company's} revenue in {quarter}?",
                "How much revenue did {company} report for {quarter}?",
                "{company} revenue {quarter}",
            ],
            facts: &[
                "{company} reported revenue of {money} for {quarter}.",
                "In {quarter}, {company} generated {money} in revenue.",
                "{company's} revenue for {quarter} came in at {money}, slightly above guidance.",
            ],
            partial: &[
                "{company's} revenue for {quarter} grew compared with a year earlier, according to its earnings release.",
            ],
        },
        Relation {
            name: "dividend_yield",
            keys: &["company"],
            secondary: None,
            queries: &[
                "What is {company's} dividend yield?",
                "How much does {company} pay in dividends relative to its share price?",
                "{company} dividend yield",
            ],
            facts: &[
                "{company} offers a dividend yield of {percent}.",
                "At the current share price, {company's} dividend yields {percent}.",
                "{company} pays a dividend equal to a yield of {percent}.",
            ],
            partial: &["{company} pays a quarterly dividend and has raised it in each of the past several years."],
        },
        Relation {
            name: "ipo_of",
            keys: &["company"],
            secondary: None,
            queries: &["When did {company} go public?", "What was {company's} IPO date?", "{company} initial public offering"],
            facts: &[
                "{company} went public on {date}, pricing its shares at {price}.",
                "{company's} initial public offering took place on {date} at {price} per share.",
                "On {date}, {company} listed its shares at an offer price of {price}.",
            ],
            partial: &["{company} went public after several delays, and its shares have been volatile since the listing."],
        },
        Relation {
            name: "index_member",
            keys: &["company"],
            secondary: None,
            queries: &["Is {company} part of a major stock index?", "Which index includes {company}?", "{company} index membership"],
            facts: &[
                "{company} is a constituent of {index}.",
                "{company} was added to {index} after its market value rose.",
                "{index} counts {company} among its members.",
            ],
            partial: &["{company} is included in several benchmark indices, which drives steady demand from index funds."],
        },
        Relation {
            name: "flagship_product",
            keys: &["company"],
            secondary: None,
            queries: &["What is {company's} best-known product?", "What does {company} sell?", "{company} flagship product"],
            facts: &[
                "{company's} flagship product is {product}.",
                "{product}, made by {company}, accounts for most of its sales.",
                "{company} is best known for {product}.",
            ],
            partial: &["{company} sells a small range of products, led by a single flagship line."],
        },
        Relation {
            name: "expense_ratio",
            keys: &["fund"],
            secondary: None,
            queries: &["What is the expense ratio of {fund}?", "How much does {fund} charge in fees?", "{fund} expense ratio"],
            facts: &[
                "{fund} charges an expense ratio of {percent}.",
                "The annual expense ratio of {fund} is {percent}.",
                "Investors in {fund} pay {percent} a year in fees.",
            ],
            partial: &["{fund} has a lower expense ratio than most actively managed funds in its category."],
        },
        Relation {
            name: "benchmark_of",
            keys: &["fund"],
            secondary: None,
            queries: &["Which index does {fund} track?", "What is the benchmark of {fund}?", "{fund} benchmark index"],
            facts: &[
                "{fund} tracks {index}.",
                "{fund} is benchmarked against {index}.",
                "The objective of {fund} is to replicate the performance of {index}.",
            ],
            partial: &["{fund} follows a broad market benchmark and is rebalanced every quarter."],
        },
        Relation {
            name: "fund_manager",
            keys: &["fund"],
            secondary: None,
            queries: &["Who manages {fund}?", "Which firm runs {fund}?", "{fund} fund manager"],
            facts: &["{fund} is managed by {company}.", "{company} sponsors and manages {fund}.", "{fund} is offered by {company}."],
            partial: &["{fund} is run by a large asset manager with a long record in this category."],
        },
        Relation {
            name: "drug_list_price",
            keys: &["drug"],
            secondary: Some("medical"),
            queries: &["What is the list price of {drug}?", "How much does a month's supply of {drug} cost?", "{drug} price"],
            facts: &[
                "A month's supply of {drug} carries a list price of {money}.",
                "{drug} is sold at a list price of {money} per month.",
                "The wholesale list price of {drug} is {money} for a thirty-day supply.",
            ],
            partial: &["The list price of {drug} is high, though most patients pay less after rebates."],
        },
        Relation {
            name: "plan_coverage",
            keys: &["plan", "procedure"],
            secondary: Some("medical"),
            queries: &[
                "How much does {plan} cover for {a procedure}?",
                "Does {plan} pay for {a procedure}?",
                "{plan} coverage of {procedure}",
            ],
            facts: &[
                "{plan} reimburses up to {money} for {a procedure}.",
                "Members of {plan} are covered for {a procedure} up to {money}.",
                "For {a procedure}, {plan} pays a maximum of {money}.",
            ],
            partial: &["{plan} covers {a procedure} when it is medically necessary, subject to prior authorisation."],
        },
    ],
    lead_ins: &[
        "This note does not cover {s}.",
        "{s} is analysed in a separate report.",
        "Not to be confused with {s}.",
        "Investors looking for {s} should consult its own filing.",
    ],
    fillers: &[
        "Figures are unaudited and may be revised.",
        "Analysts had expected a weaker result.",
        "Past performance is no guarantee of future returns.",
        "The data were compiled from public filings.",
        "Currency effects were small during the period.",
    ],
    facts,
};

fn facts(e: &Entities, rng: &mut SeededRng, pools: &mut Pools) -> Vec<Fact> {
    let d = &DOMAIN;
    let mut out = Vec::new();
    let mut products = e.products.iter();
    for (company, ticker) in e.companies.iter().zip(&e.tickers) {
        let s = || Slots::new().with("company", Fill::entity("COMPANY", &company.name));
        out.push(Fact::new(d, "ticker_of", s().with("ticker", Fill::entity("TICKER", ticker))));
        let mut quarters: Vec<String> = Vec::new();
        while quarters.len() < QUARTERS_PER_COMPANY {
            let quarter = pools.pattern(rng, names::quarter);
            if !quarters.contains(&quarter) {
                quarters.push(quarter);
            }
        }
        for quarter in quarters {
            let slots = s().with("quarter", Fill::entity("DATE", quarter)).with("money", Fill::entity("MONEY", pools.pattern(rng, names::money_revenue)));
            out.push(Fact::new(d, "revenue_of", slots));
        }
        out.push(Fact::new(d, "dividend_yield", s().with("percent", Fill::entity("PERCENT", pools.pattern(rng, names::percent_yield)))));
        let date = pools.pattern(rng, |r| names::full_date(r, 1985..=2021));
        let price = pools.pattern(rng, names::share_price);
        out.push(Fact::new(d, "ipo_of", s().with("date", Fill::entity("DATE", date)).with("price", Fill::entity("MONEY", price))));
        out.push(Fact::new(d, "index_member", s().with("index", Fill::entity("INDEX", pick(rng, &e.indices, "index")))));
        if company.kind == CompanyKind::Operating {
            if let Some(product) = products.next() {
                out.push(Fact::new(d, "flagship_product", s().with("product", Fill::entity("PRODUCT", product))));
            }
        }
    }
    let managers: Vec<String> = e.companies_of(CompanyKind::AssetManager).into_iter().map(|i| e.companies[i].name.clone()).collect();
    for fund in &e.funds {
        let s = || Slots::new().with("fund", Fill::entity("PRODUCT", fund));
        out.push(Fact::new(d, "expense_ratio", s().with("percent", Fill::entity("PERCENT", pools.pattern(rng, names::percent_expense)))));
        out.push(Fact::new(d, "benchmark_of", s().with("index", Fill::entity("INDEX", pick(rng, &e.indices, "index")))));
        out.push(Fact::new(d, "fund_manager", s().with("company", Fill::entity("COMPANY", pick(rng, &managers, "asset manager")))));
    }
    for drug in &e.drugs {
        let slots = Slots::new().with("drug", Fill::entity("DRUG", &drug.name)).with("money", Fill::entity("MONEY", pools.pattern(rng, names::list_price)));
        out.push(Fact::new(d, "drug_list_price", slots));
    }
    for plan in &e.plans {
        for procedure in pick_distinct(rng, &e.procedures, PROCEDURES_PER_PLAN) {
            let slots = Slots::new()
                .with("plan", Fill::entity("PRODUCT", plan))
                .with("procedure", Fill::entity("PROCEDURE", procedure))
                .with("money", Fill::entity("MONEY", pools.pattern(rng, names::coverage_amount)));
            out.push(Fact::new(d, "plan_coverage", slots));
        }
    }
    out
}
