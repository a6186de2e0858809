//! The studies' part of the outputs: a Markdown section per enabled study (in report.md) and a CSV
//! per study: `ablation_lora_rank.csv`, `ablation_mask_types.csv`, `study_many_domains.csv`,
//! `study_coverage.csv`, `study_unseen_domain.csv`.

use std::fmt::Write as _;

use super::bench::SplitDomain;
use super::keys::{EvalSplit, RouterName, System};
use super::studies::Studies;
use super::systems::{KEY_METRIC, MACRO};

const MIB: f64 = 1024.0 * 1024.0;

/// The domains of a table's `test` split, then `macro`.
fn domain_columns(first: Option<&SplitDomain>) -> Vec<String> {
    let mut domains: Vec<String> = first.and_then(|s| s.get(&EvalSplit::Test)).map(|d| d.keys().filter(|k| *k != MACRO).cloned().collect()).unwrap_or_default();
    domains.push(MACRO.into());
    domains
}

/// `test` per domain and macro, then the `test_unseen` macro.
fn value_cells(values: &SplitDomain, domains: &[String]) -> String {
    let cell = |split: EvalSplit, d: &str| values.get(&split).and_then(|x| x.get(d)).map_or("-".into(), |v| format!("{v:.4}"));
    let mut cells: Vec<String> = domains.iter().map(|d| cell(EvalSplit::Test, d)).collect();
    cells.push(cell(EvalSplit::TestUnseen, MACRO));
    cells.join(" | ")
}

fn value_header(out: &mut String, lead: &[&str], domains: &[String]) {
    let _ = writeln!(out, "| {} | {} | test_unseen macro |", lead.join(" | "), domains.join(" | "));
    let _ = writeln!(out, "|{}{}---:|", "---|".repeat(lead.len()), "---:|".repeat(domains.len()));
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Appends the sections of the enabled studies.
pub fn render_studies(out: &mut String, studies: &Studies) {
    if !studies.lora_rank.is_empty() {
        let domains = domain_columns(studies.lora_rank.first().map(|r| &r.r2r_lsr));
        let _ = writeln!(out, "\n## Ablation: LoRA rank (alpha = 2 × rank; {KEY_METRIC}, test split per domain)\n");
        value_header(out, &["rank", "adapter bytes", "system"], &domains);
        for r in &studies.lora_rank {
            for (system, values) in [(System::R2rLsr, &r.r2r_lsr), (System::R2rOracle, &r.r2r_oracle)] {
                let _ = writeln!(out, "| {} | {} | {system} | {} |", r.rank, r.adapter_bytes, value_cells(values, &domains));
            }
        }
    }
    if !studies.mask_types.is_empty() {
        let domains = domain_columns(studies.mask_types.first().map(|r| &r.r2r_lsr));
        let _ = writeln!(out, "\n## Ablation: per-type masking in stage 1 (R2R with the LSR, {KEY_METRIC})\n");
        value_header(out, &["masked types"], &domains);
        for r in &studies.mask_types {
            let _ = writeln!(out, "| {} | {} |", r.masked, value_cells(&r.r2r_lsr, &domains));
        }
    }
    if !studies.many_domains.is_empty() {
        let _ = writeln!(
            out,
            "\n## Study: many domains (random seeded sub-domains; memory of N noisy copies of one trained expert, not N trained experts)\n"
        );
        let _ = writeln!(out, "| experts | LSR accuracy | LSR macro-F1 | LSR parent accuracy | MLP accuracy | MLP macro-F1 | MLP parent accuracy | adapters MiB | backbone MiB | ms/query (features + router + scoring) |");
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        for r in &studies.many_domains {
            let router = |name: RouterName| {
                r.routing.get(&name).map_or("- | - | -".into(), |m| format!("{:.4} | {:.4} | {:.4}", m.accuracy, m.macro_f1, m.parent_accuracy))
            };
            let l = &r.latency;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.1} | {:.1} = {:.1} + {:.2} + {:.1} |",
                r.experts,
                router(RouterName::Lsr),
                router(RouterName::Mlp),
                r.memory.adapters_bytes as f64 / MIB,
                r.memory.backbone_bytes as f64 / MIB,
                l.total_ms,
                l.features_ms,
                l.router_ms,
                l.scoring_ms
            );
        }
    }
    if !studies.coverage.is_empty() {
        let domains = domain_columns(studies.coverage.first().map(|r| &r.r2r_lsr));
        let _ = writeln!(out, "\n## Study: abstraction coverage (gazetteer entries dropped before stage 1; R2R with the LSR, {KEY_METRIC})\n");
        value_header(out, &["drop", "gazetteer entries", "recall", "precision"], &domains);
        for r in &studies.coverage {
            let _ = writeln!(out, "| {} | {} | {} | {} | {} |", r.drop, r.gazetteer_entries, opt(r.recall), opt(r.precision), value_cells(&r.r2r_lsr, &domains));
        }
    }
    if let Some(u) = &studies.unseen_domain {
        let how = if u.retrained { "stage 1 and experts retrained without it" } else { "not a target domain: the main experts" };
        let _ = writeln!(out, "\n## Study: unseen domain `{}` ({how}; experts {}; {} test queries)\n", u.domain, u.experts.join(", "), u.queries);
        let _ = writeln!(out, "| system | {KEY_METRIC} | minus generalist | p-value |\n|---|---:|---:|---:|");
        for system in super::unseen::UNSEEN_SYSTEMS {
            let test = u.significance.iter().find(|s| s.system == system);
            let _ = writeln!(
                out,
                "| {system} | {} | {} | {} |",
                opt(u.ndcg_at_10.get(&system).copied()),
                test.map_or("-".into(), |t| format!("{:+.4}", t.mean_difference)),
                opt(test.map(|t| t.p_value))
            );
        }
        let parts: Vec<String> = u.routed_to.iter().map(|(e, n)| format!("{e} {n} (mean p {:.3})", u.mean_probability.get(e).copied().unwrap_or(0.0))).collect();
        let _ = writeln!(out, "\nThe LSR sends them to: {}.", parts.join(", "));
    }
}

/// `split,domain,value` rows of one SplitDomain, each prefixed by `lead`.
fn split_domain_rows(csv: &mut String, lead: &str, values: &SplitDomain) {
    for (split, domains) in values {
        for (domain, v) in domains {
            let _ = writeln!(csv, "{lead},{split},{domain},{v:.6}");
        }
    }
}

/// (file name, CSV) of every enabled study.
pub fn study_csvs(studies: &Studies) -> Vec<(&'static str, String)> {
    let mut files = Vec::new();
    if !studies.lora_rank.is_empty() {
        let mut csv = format!("rank,alpha,adapter_parameters,adapter_bytes,system,split,domain,{KEY_METRIC}\n");
        for r in &studies.lora_rank {
            for (system, values) in [(System::R2rLsr, &r.r2r_lsr), (System::R2rOracle, &r.r2r_oracle)] {
                split_domain_rows(&mut csv, &format!("{},{},{},{},{system}", r.rank, r.alpha, r.adapter_parameters, r.adapter_bytes), values);
            }
        }
        files.push(("ablation_lora_rank.csv", csv));
    }
    if !studies.mask_types.is_empty() {
        let mut csv = format!("masked,split,domain,{KEY_METRIC}\n");
        for r in &studies.mask_types {
            split_domain_rows(&mut csv, &r.masked, &r.r2r_lsr);
        }
        files.push(("ablation_mask_types.csv", csv));
    }
    if !studies.many_domains.is_empty() {
        let mut csv = String::from(
            "experts,router,accuracy,macro_f1,parent_accuracy,test_queries,adapter_bytes,adapters_bytes,backbone_bytes,features_ms,router_ms,scoring_ms,total_ms\n",
        );
        for r in &studies.many_domains {
            let (m, l) = (&r.memory, &r.latency);
            for (router, x) in &r.routing {
                let _ = writeln!(
                    csv,
                    "{},{router},{:.6},{:.6},{:.6},{},{},{},{},{:.3},{:.3},{:.3},{:.3}",
                    r.experts, x.accuracy, x.macro_f1, x.parent_accuracy, r.test_queries, m.adapter_bytes, m.adapters_bytes, m.backbone_bytes, l.features_ms, l.router_ms, l.scoring_ms, l.total_ms
                );
            }
        }
        files.push(("study_many_domains.csv", csv));
    }
    if !studies.coverage.is_empty() {
        let mut csv = format!("drop,gazetteer_entries,recall,precision,split,domain,{KEY_METRIC}\n");
        let text = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        for r in &studies.coverage {
            split_domain_rows(&mut csv, &format!("{},{},{},{}", r.drop, r.gazetteer_entries, text(r.recall), text(r.precision)), &r.r2r_lsr);
        }
        files.push(("study_coverage.csv", csv));
    }
    if let Some(u) = &studies.unseen_domain {
        let mut csv = format!("domain,system,queries,{KEY_METRIC},mean_difference,p_value\n");
        for system in super::unseen::UNSEEN_SYSTEMS {
            let test = u.significance.iter().find(|s| s.system == system);
            let (diff, p) = test.map_or((String::new(), String::new()), |t| (format!("{:.6}", t.mean_difference), format!("{:.6}", t.p_value)));
            let _ = writeln!(csv, "{},{system},{},{:.6},{diff},{p}", u.domain, u.queries, u.ndcg_at_10.get(&system).copied().unwrap_or(f64::NAN));
        }
        files.push(("study_unseen_domain.csv", csv));
    }
    files
}
