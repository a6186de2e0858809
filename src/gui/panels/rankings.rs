//! Rankings panel: pick a domain, split and query, and compare the ranked
//! candidate lists of 2–4 systems side by side (scores, relevance marks, arrows
//! for rank movement against the leftmost system), with per-domain bars of a
//! chosen metric (NDCG@10, MRR@10, Recall@10 from `r2r::metrics`) across systems
//! and significance marks (paired randomization test of each system against the
//! leftmost one). Systems come from [`crate::gui::systems`]; their rankings and
//! the tests are computed in background jobs when a dataset loads.

use std::sync::Arc;

use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, Plot};

use super::PanelContext;
use crate::data::{QueryGroup, Split};
use crate::gui::state::{LoadedDataset, RunState, Workspace};
use crate::gui::systems::{metric_title, Ranking, SignificanceTable, SystemKind, SystemRun, METRICS, SIGNIFICANCE_PERMUTATIONS};
use crate::metrics::Metric;
use crate::gui::widgets::{self, QueryFilter, QueryList};

pub const MAX_SYSTEMS: usize = 4;

/// Colours of the systems in plots and headers, by position.
const SYSTEM_COLORS: [Color32; MAX_SYSTEMS] = [
    Color32::from_rgb(66, 133, 244),
    Color32::from_rgb(234, 134, 48),
    Color32::from_rgb(52, 168, 83),
    Color32::from_rgb(171, 71, 188),
];

#[derive(Default)]
pub struct RankingsPanel {
    filter: QueryFilter,
    rows: Vec<usize>,
    rows_key: Option<(usize, QueryFilter)>,
    selected: Option<usize>,
    list: QueryList,
}

impl RankingsPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        let Some(loaded) = cx.workspace.dataset.clone() else {
            ui.add_space(16.0);
            ui.label("No dataset loaded: open one in the Datasets panel.");
            return;
        };
        self.filter.split = cx.settings.rankings.split;
        ui.horizontal_wrapped(|ui| {
            let domains: Vec<String> = loaded.stats.keys().cloned().collect();
            widgets::filter_combos(ui, "rankings", &domains, &mut self.filter, true);
            ui.separator();
            ui.label("Systems:").on_hover_text("Up to four, shown left to right in the order chosen; arrows compare with the leftmost");
            system_toggles(ui, &mut cx.settings.rankings.systems);
            ui.separator();
            let label = ui.label("Metric:");
            ui.label_inputs_by(label.id, |ui| {
                egui::ComboBox::from_id_salt("rankings_metric").selected_text(metric_title(cx.settings.rankings.metric)).show_ui(ui, |ui| {
                    for metric in METRICS {
                        ui.selectable_value(&mut cx.settings.rankings.metric, metric, metric_title(metric))
                            .on_hover_text(widgets::metric_help(&metric_title(metric)));
                    }
                })
            });
        });
        let metric = cx.settings.rankings.metric;
        cx.settings.rankings.split = self.filter.split;
        let systems = cx.settings.rankings.systems.clone();
        run_status(ui, cx, &systems);

        egui::CollapsingHeader::new("Metrics per domain").default_open(true).show(ui, |ui| {
            metric_overview(ui, cx, &loaded, &systems, self.filter.split, metric);
        });
        ui.separator();

        self.refresh_rows(&loaded);
        self.list.handle_keys(ui, &self.rows, &mut self.selected);
        egui::Panel::left("rankings_query_list").resizable(true).default_size(330.0).size_range(220.0..=600.0).show(ui, |ui| {
            ui.horizontal(|ui| {
                let label = ui.label("Search:");
                ui.add(egui::TextEdit::singleline(&mut self.filter.search).hint_text("words in the query or its id").desired_width(f32::INFINITY))
                    .labelled_by(label.id);
            });
            ui.label(RichText::new(format!("{} queries  (↑/↓ to move)", self.rows.len())).weak());
            self.list.show(ui, "rankings_queries", &loaded.dataset, &self.rows, &mut self.selected);
        });
        egui::CentralPanel::no_frame().show(ui, |ui| match self.selected.and_then(|i| loaded.dataset.groups.get(i)) {
            Some(group) => compare_lists(ui, cx.workspace, group, &systems, metric),
            None => {
                ui.label("No query matches the filter.");
            }
        });
    }

    fn refresh_rows(&mut self, loaded: &Arc<LoadedDataset>) {
        let key = (Arc::as_ptr(loaded) as usize, self.filter.clone());
        if self.rows_key.as_ref() == Some(&key) {
            return;
        }
        let dataset_changed = self.rows_key.as_ref().is_none_or(|(ptr, _)| *ptr != key.0);
        if dataset_changed {
            self.filter.domain = self.filter.domain.take().filter(|d| loaded.stats.contains_key(d));
        }
        self.rows = self.filter.apply(&loaded.dataset);
        self.rows_key = Some((key.0, self.filter.clone()));
        if dataset_changed || self.selected.is_none_or(|s| !self.rows.contains(&s)) {
            self.selected = self.rows.first().copied();
        }
    }
}

/// One checkbox per known system; the chosen ones keep their order of choosing.
fn system_toggles(ui: &mut egui::Ui, chosen: &mut Vec<SystemKind>) {
    for system in SystemKind::ALL {
        let mut on = chosen.contains(&system);
        let full = chosen.len() >= MAX_SYSTEMS && !on;
        let response = ui.add_enabled(!full, egui::Checkbox::new(&mut on, system.name())).on_hover_text(system.description());
        if response.changed() {
            if on {
                chosen.push(system);
            } else {
                chosen.retain(|s| *s != system);
            }
        }
    }
    if chosen.len() < 2 {
        ui.label(RichText::new("choose at least two to compare").weak());
    }
}

/// Spinners and progress for systems still ranking; errors for failed ones.
fn run_status(ui: &mut egui::Ui, cx: &PanelContext<'_>, systems: &[SystemKind]) {
    for system in systems {
        match cx.workspace.runs.get(system) {
            Some(RunState::Computing(job)) => {
                let progress = cx.jobs.get(*job).and_then(|j| j.fraction()).unwrap_or(0.0);
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Ranking with {} …", system.name()));
                    ui.add(egui::ProgressBar::new(progress).desired_width(200.0).show_percentage());
                });
            }
            Some(RunState::Failed(message)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("{} failed: {message}", system.name()));
            }
            _ => {}
        }
    }
}

fn splits_of(split: Option<Split>) -> Vec<Split> {
    split.map_or_else(|| Split::ALL.to_vec(), |s| vec![s])
}

/// Grouped bars (one group per domain, one bar per system) and the same numbers
/// as a table, with significance marks against the leftmost system.
fn metric_overview(ui: &mut egui::Ui, cx: &PanelContext<'_>, loaded: &LoadedDataset, systems: &[SystemKind], split: Option<Split>, metric: Metric) {
    let workspace = cx.workspace;
    let title = metric_title(metric);
    let domains: Vec<String> = loaded.stats.keys().cloned().collect();
    let splits = splits_of(split);
    let runs: Vec<(usize, SystemKind, Option<&Arc<SystemRun>>)> =
        systems.iter().enumerate().map(|(i, &s)| (i, s, workspace.run(s))).collect();
    let split_name = split.map_or("all splits".to_string(), |s| format!("split {s}"));
    ui.horizontal(|ui| {
        let chart_width = (ui.available_width() * 0.5).max(320.0);
        ui.vertical(|ui| {
            ui.set_width(chart_width);
            let n = runs.len().max(1) as f64;
            let width = 0.8 / n;
            let names = domains.clone();
            ui.horizontal_wrapped(|ui| {
                for &(i, system, _) in &runs {
                    ui.label(RichText::new(format!("■ {}", system.name())).color(SYSTEM_COLORS[i % MAX_SYSTEMS]));
                }
            });
            Plot::new("rankings_metric_bars")
                .height(160.0)
                .width(chart_width)
                .include_y(0.0)
                .include_y(1.0)
                .allow_drag(false)
                .allow_zoom(false)
                .allow_scroll(false)
                .y_axis_label(title.clone())
                .x_axis_formatter(move |mark, _| {
                    let i = mark.value.round();
                    if (mark.value - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                        names[i as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .show(ui, |plot| {
                    for &(i, system, run) in &runs {
                        let Some(run) = run else { continue };
                        let offset = (i as f64 - (n - 1.0) / 2.0) * width;
                        let bars: Vec<Bar> = domains
                            .iter()
                            .enumerate()
                            .filter_map(|(d, domain)| {
                                let (mean, count) = run.domain_mean(metric, domain, &splits)?;
                                Some(Bar::new(d as f64 + offset, mean).width(width * 0.95).name(format!("{domain} ({count} queries)")))
                            })
                            .collect();
                        plot.bar_chart(BarChart::new(system.name(), bars).color(SYSTEM_COLORS[i % MAX_SYSTEMS]));
                    }
                })
                .response
                .on_hover_text(widgets::metric_help(&title));
        });
        ui.vertical(|ui| {
            ui.label(RichText::new(format!("Mean {title}, {split_name}")).strong()).on_hover_text(widgets::metric_help(&title));
            let significance = match &workspace.significance {
                Some(RunState::Ready(table)) => Some(table.as_ref()),
                _ => None,
            };
            egui::Grid::new("rankings_metric_table").striped(true).spacing([16.0, 4.0]).show(ui, |ui| {
                ui.label(RichText::new("Domain").strong());
                for &(_, system, _) in &runs {
                    ui.label(RichText::new(system.name()).strong()).on_hover_text(system.description());
                }
                ui.label(RichText::new("Queries").strong());
                ui.end_row();
                for domain in &domains {
                    ui.label(domain);
                    let mut count = 0;
                    for &(i, system, run) in &runs {
                        match run.and_then(|r| r.domain_mean(metric, domain, &splits)) {
                            Some((mean, n)) => {
                                count = n;
                                ui.horizontal(|ui| {
                                    ui.label(format!("{mean:.3}")).on_hover_text(widgets::metric_help(&title));
                                    if i > 0 {
                                        let test = significance.and_then(|t| t.compare(systems[0], system, domain, split, metric));
                                        significance_mark(ui, test, systems[0], system, &title);
                                    }
                                });
                            }
                            None => {
                                ui.label("—");
                            }
                        }
                    }
                    ui.label(count.to_string());
                    ui.end_row();
                }
            });
            significance_note(ui, &workspace.significance, cx, systems);
        });
    });
}

/// `*` (p < 0.05) or `**` (p < 0.01), green when better than the reference, red when worse.
fn significance_mark(ui: &mut egui::Ui, test: Option<crate::metrics::significance::TestResult>, reference: SystemKind, system: SystemKind, metric: &str) {
    let Some(test) = test else { return };
    let stars = if test.p_value < 0.01 {
        "**"
    } else if test.p_value < 0.05 {
        "*"
    } else {
        "n.s."
    };
    let color = match (stars, test.statistic > 0.0) {
        ("n.s.", _) => ui.visuals().weak_text_color(),
        (_, true) => Color32::from_rgb(52, 168, 83),
        (_, false) => Color32::from_rgb(219, 68, 55),
    };
    ui.label(RichText::new(stars).strong().color(color)).on_hover_text(format!(
        "{} vs {}: mean {metric} difference {:+.3}, p = {:.4} (two-sided paired randomization test, {} permutations)",
        system.name(),
        reference.name(),
        test.statistic,
        test.p_value,
        SIGNIFICANCE_PERMUTATIONS
    ));
}

fn significance_note(ui: &mut egui::Ui, state: &Option<RunState<Arc<SignificanceTable>>>, cx: &PanelContext<'_>, systems: &[SystemKind]) {
    let reference = systems.first().map_or("the leftmost system", |s| s.name());
    match state {
        Some(RunState::Ready(_)) => {
            ui.label(RichText::new(format!("* p < 0.05, ** p < 0.01 against {reference} (paired randomization test); n.s. = not significant")).weak());
        }
        Some(RunState::Computing(job)) => {
            ui.horizontal(|ui| {
                ui.spinner();
                let progress = cx.jobs.get(*job).and_then(|j| j.fraction()).unwrap_or(0.0);
                ui.label(format!("significance tests … {:.0} %", progress * 100.0));
            });
        }
        Some(RunState::Failed(message)) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("significance tests failed: {message}"));
        }
        None => {
            ui.label(RichText::new("Significance marks appear once every system has ranked the data.").weak());
        }
    }
}

/// The chosen systems' rankings of one query, side by side.
fn compare_lists(ui: &mut egui::Ui, workspace: &Workspace, group: &QueryGroup, systems: &[SystemKind], metric: Metric) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(&group.id).strong().monospace());
        ui.label(format!("{} · {}", group.domain, group.split));
    });
    ui.add(egui::Label::new(RichText::new(&group.query).size(15.0)).wrap());
    ui.add_space(4.0);
    if systems.is_empty() {
        ui.label("Choose systems above.");
        return;
    }
    let rankings: Vec<Option<&Ranking>> = systems.iter().map(|&s| workspace.run(s).and_then(|r| r.rankings.get(&group.id))).collect();
    let reference_ranks = rankings.first().copied().flatten().map(Ranking::rank_of);
    ui.columns(systems.len(), |columns| {
        for (i, (column, &system)) in columns.iter_mut().zip(systems).enumerate() {
            let layout = egui::Layout::top_down(egui::Align::LEFT);
            column.scope_builder(egui::UiBuilder::new().id_salt(("ranking_column", i)).layout(layout), |ui| {
                ui.label(RichText::new(system.name()).strong().color(SYSTEM_COLORS[i % MAX_SYSTEMS])).on_hover_text(system.description());
                let Some(ranking) = rankings[i] else {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("ranking …");
                    });
                    return;
                };
                let title = metric_title(metric);
                ui.label(format!("{title} of this query: {:.3}", ranking.metric(metric))).on_hover_text(widgets::metric_help(&title));
                let reference = if i == 0 { None } else { reference_ranks.as_deref() };
                egui::ScrollArea::vertical().id_salt(("ranking_list", i)).auto_shrink([false, false]).show(ui, |ui| {
                    for (rank, &cand) in ranking.order.iter().enumerate() {
                        candidate_row(ui, group, ranking, rank, cand, reference, systems[0]);
                    }
                });
            });
        }
    });
}

fn candidate_row(
    ui: &mut egui::Ui,
    group: &QueryGroup,
    ranking: &Ranking,
    rank: usize,
    cand: usize,
    reference: Option<&[usize]>,
    reference_system: SystemKind,
) {
    let candidate = &group.candidates[cand];
    let fill = if candidate.relevance > 0 {
        Color32::from_rgba_unmultiplied(40, 150, 70, if ui.visuals().dark_mode { 40 } else { 30 })
    } else {
        Color32::TRANSPARENT
    };
    egui::Frame::NONE.fill(fill).inner_margin(egui::Margin::symmetric(4, 2)).corner_radius(3).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("#{}", rank + 1)).strong().monospace());
            widgets::relevance_badge(ui, candidate.relevance);
            ui.label(RichText::new(format!("{:.3}", ranking.scores[cand])).monospace()).on_hover_text("The system's score (higher ranks first)");
            if let Some(reference) = reference {
                movement_label(ui, reference[cand], rank, reference_system);
            }
        });
        ui.add(egui::Label::new(widgets::preview(&candidate.text, 150)).wrap())
            .on_hover_text(format!("{}\n\n{}", candidate.id, candidate.text));
    });
}

/// ↑n / ↓n / = : how far a candidate moved compared with the reference system.
fn movement_label(ui: &mut egui::Ui, reference_rank: usize, rank: usize, reference_system: SystemKind) {
    let (text, color) = match reference_rank.cmp(&rank) {
        std::cmp::Ordering::Greater => (format!("↑{}", reference_rank - rank), Color32::from_rgb(52, 168, 83)),
        std::cmp::Ordering::Less => (format!("↓{}", rank - reference_rank), Color32::from_rgb(219, 68, 55)),
        std::cmp::Ordering::Equal => ("=".to_string(), ui.visuals().weak_text_color()),
    };
    ui.label(RichText::new(text).strong().color(color))
        .on_hover_text(format!("Rank {} under {} → rank {} here", reference_rank + 1, reference_system.name(), rank + 1));
}
