//! Writing an experiment's outputs into its directory, each file atomically: `results.json`,
//! `report.md` (Markdown tables), one CSV per table (`systems_<split>.csv`, `routing.csv`,
//! `significance.csv`, `misroute.csv`, the studies' CSVs from `study_report`) and TREC runs
//! `runs/<system>.<split>.trec`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::bench::SplitDomain;
use super::keys::{EvalSplit, RouterName, System};
use super::systems::{ExperimentResults, KEY_METRIC, MACRO, METRICS};
use crate::util::{atomic_write, atomic_write_json};

/// Writes every output file into `out`.
pub fn write_outputs(results: &ExperimentResults, out: &Path) -> Result<()> {
    atomic_write_json(&out.join("results.json"), results)?;
    atomic_write(&out.join("report.md"), render_markdown(results).as_bytes())?;
    for split in EvalSplit::ALL {
        if let Some(csv) = systems_csv(results, split) {
            atomic_write(&out.join(format!("systems_{split}.csv")), csv.as_bytes())?;
        }
    }
    atomic_write(&out.join("routing.csv"), routing_csv(results).as_bytes())?;
    atomic_write(&out.join("significance.csv"), significance_csv(results).as_bytes())?;
    atomic_write(&out.join("misroute.csv"), misroute_csv(results).as_bytes())?;
    atomic_write(&out.join("router_sweep.csv"), nested_csv("router", &results.router_sweep).as_bytes())?;
    if !results.ablations.is_empty() {
        atomic_write(&out.join("ablations.csv"), nested_csv("ablation", &results.ablations).as_bytes())?;
    }
    for (name, csv) in super::study_report::study_csvs(&results.studies) {
        atomic_write(&out.join(name), csv.as_bytes())?;
    }
    for ((system, split), run) in &results.runs {
        run.write(&out.join("runs").join(format!("{system}.{split}.trec")))?;
    }
    Ok(())
}

fn domains_of(results: &ExperimentResults, split: EvalSplit) -> Vec<String> {
    let mut domains: Vec<String> = results.queries.get(&split).map(|d| d.keys().cloned().collect()).unwrap_or_default();
    if !domains.is_empty() {
        domains.push(MACRO.into());
    }
    domains
}

fn systems_in_order(results: &ExperimentResults) -> Vec<System> {
    System::ALL.into_iter().filter(|s| results.systems.contains_key(s)).collect()
}

/// One row per (system, domain) with every metric; None when the split was not evaluated.
pub fn systems_csv(results: &ExperimentResults, split: EvalSplit) -> Option<String> {
    let domains = domains_of(results, split);
    if domains.is_empty() {
        return None;
    }
    let mut out = String::from("system,domain");
    for m in METRICS {
        let _ = write!(out, ",{m}");
    }
    out.push('\n');
    for system in systems_in_order(results) {
        for domain in &domains {
            if let Some(means) = results.systems[&system].get(&split).and_then(|d| d.get(domain)) {
                let _ = write!(out, "{system},{domain}");
                for m in METRICS {
                    let _ = write!(out, ",{:.6}", means[&m]);
                }
                out.push('\n');
            }
        }
    }
    Some(out)
}

/// `name,split,domain,ndcg@10` rows of a name → split → domain → value table.
fn nested_csv<K: std::fmt::Display>(what: &str, table: &std::collections::BTreeMap<K, SplitDomain>) -> String {
    let mut out = format!("{what},split,domain,{KEY_METRIC}\n");
    for (name, splits) in table {
        for (split, domains) in splits {
            for (domain, v) in domains {
                let _ = writeln!(out, "{name},{split},{domain},{v:.6}");
            }
        }
    }
    out
}

/// Markdown table of name → split → macro value.
fn macro_table<K: std::fmt::Display>(out: &mut String, what: &str, table: &std::collections::BTreeMap<K, SplitDomain>) {
    let _ = writeln!(out, "| {what} | test | test_unseen |\n|---|---:|---:|");
    for (name, splits) in table {
        let cell = |split: EvalSplit| splits.get(&split).and_then(|d| d.get(MACRO)).map_or("-".into(), |v| format!("{v:.4}"));
        let _ = writeln!(out, "| {name} | {} | {} |", cell(EvalSplit::Test), cell(EvalSplit::TestUnseen));
    }
}

fn routing_csv(results: &ExperimentResults) -> String {
    let mut out = String::from("router,accuracy,macro_f1,queries\n");
    for (name, r) in &results.routing {
        let _ = writeln!(out, "{name},{:.6},{:.6},{}", r.accuracy, r.macro_f1, r.queries);
    }
    out
}

fn significance_csv(results: &ExperimentResults) -> String {
    let mut out = String::from("system,baseline,split,domain,metric,queries,mean_difference,p_value\n");
    for s in &results.significance {
        let _ = writeln!(out, "{},{},{},{},{},{},{:.6},{:.6}", s.system, s.baseline, s.split, s.domain, s.metric, s.queries, s.mean_difference, s.p_value);
    }
    out
}

fn misroute_csv(results: &ExperimentResults) -> String {
    let mut out = String::from("query,split,domain,chosen,chosen_ndcg@10,correct_ndcg@10\n");
    for m in &results.misroute.items {
        let _ = writeln!(out, "{},{},{},{},{:.6},{:.6}", m.query, m.split, m.domain, m.chosen, m.chosen_ndcg_at_10, m.correct_ndcg_at_10);
    }
    out
}

/// The Markdown report: per split a system × domain table of NDCG@10 and a macro table of every
/// metric; routing, significance, misroute impact and timings.
pub fn render_markdown(results: &ExperimentResults) -> String {
    let mut out = String::from("# R2R experiment\n\n");
    let c = &results.config.train;
    let _ = writeln!(out, "Backbone `{}`, data `{}`, domains {:?}, OOD {:?}, seed {}.\n", c.model.path.display(), c.data.path.display(), c.data.domains, c.data.ood_domains, c.optim.seed);
    for split in EvalSplit::ALL {
        let domains = domains_of(results, split);
        if domains.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {split}: {KEY_METRIC} per domain\n");
        let _ = writeln!(out, "| system | {} |", domains.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(domains.len()));
        for system in systems_in_order(results) {
            let cells: Vec<String> = domains
                .iter()
                .map(|d| results.systems[&system].get(&split).and_then(|x| x.get(d)).map_or("-".into(), |m| format!("{:.4}", m[&KEY_METRIC])))
                .collect();
            let _ = writeln!(out, "| {system} | {} |", cells.join(" | "));
        }
        let _ = writeln!(out, "\n## {split}: macro average over domains\n");
        let names: Vec<String> = METRICS.iter().map(|m| m.to_string()).collect();
        let _ = writeln!(out, "| system | {} |", names.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(names.len()));
        for system in systems_in_order(results) {
            if let Some(m) = results.systems[&system].get(&split).and_then(|x| x.get(MACRO)) {
                let cells: Vec<String> = METRICS.iter().map(|n| format!("{:.4}", m[n])).collect();
                let _ = writeln!(out, "| {system} | {} |", cells.join(" | "));
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "## Routing (test split)\n\n| router | accuracy | macro-F1 | queries |\n|---|---:|---:|---:|");
    for (name, r) in &results.routing {
        let _ = writeln!(out, "| {name} | {:.4} | {:.4} | {} |", r.accuracy, r.macro_f1, r.queries);
    }
    if let Some(r) = results.routing.get(&RouterName::Lsr) {
        let _ = writeln!(out, "\nLSR confusion (rows: true domain, columns: chosen expert):\n\n| | {} |\n|---|{}", r.labels.join(" | "), "---:|".repeat(r.labels.len()));
        for (label, row) in r.labels.iter().zip(&r.confusion) {
            let cells: Vec<String> = row.iter().map(|n| n.to_string()).collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
    }
    for (domain, counts) in &results.ood_routing {
        let parts: Vec<String> = counts.iter().map(|(e, n)| format!("{e} {n}")).collect();
        let _ = writeln!(out, "\nOOD `{domain}` queries routed by the LSR to: {}.", parts.join(", "));
    }
    let _ = writeln!(out, "\n## Router sweep: experts under each router's choice ({KEY_METRIC}, macro over domains)\n");
    macro_table(&mut out, "router", &results.router_sweep);
    if !results.ablations.is_empty() {
        let _ = writeln!(out, "\n## Ablations: R2R (LSR) {KEY_METRIC}, macro over domains\n");
        macro_table(&mut out, "ablation", &results.ablations);
    }
    super::study_report::render_studies(&mut out, &results.studies);
    let _ = writeln!(out, "\n## Significance (randomization test, {KEY_METRIC}, R2R minus baseline)\n");
    let _ = writeln!(out, "| split | domain | baseline | queries | mean difference | p-value |\n|---|---|---|---:|---:|---:|");
    for s in &results.significance {
        let _ = writeln!(out, "| {} | {} | {} | {} | {:+.4} | {:.4} |", s.split, s.domain, s.baseline, s.queries, s.mean_difference, s.p_value);
    }
    let m = &results.misroute;
    let _ = writeln!(
        out,
        "\n## Misroute impact (LSR, target domains)\n\n{} of {} queries misrouted; their {KEY_METRIC} {:.4} under the chosen expert vs {:.4} under the correct one; aggregate cost {:.4} {KEY_METRIC} per query.\n",
        m.misrouted, m.queries, m.mean_chosen, m.mean_correct, m.aggregate_cost
    );
    let _ = writeln!(out, "## Timings (seconds)\n\n| part | seconds |\n|---|---:|");
    for (k, v) in &results.timings {
        let _ = writeln!(out, "| {k} | {v:.1} |");
    }
    out
}
