//! Router panel: open a trained run directory (its `router/`, saved by the
//! training pipeline) or the last training run of the session, route a split
//! of the data in a background job, and show the engine's `RoutingReport`:
//! accuracy, macro-F1, a confusion-matrix grid (counts or row-normalised), a
//! per-class table, the queries of a clicked cell with the router's
//! probability bars, and for a chosen query its candidates ranked under the
//! expert the router chose and under the expert of its true domain, side by
//! side (scored in a background job; the list widget is the Rankings panel's).

use std::path::PathBuf;

use egui::{Color32, RichText};

use super::PanelContext;
use crate::data::Split;
use crate::gui::routing_run::RoutingRun;
use crate::gui::state::{AppRequest, RunState};
use crate::gui::widgets;

pub struct RouterPanel {
    /// Run directory (or router directory) to route with.
    path: String,
    split: Split,
    row_normalised: bool,
    /// The clicked confusion-matrix cell: (true, predicted).
    cell: Option<(usize, usize)>,
}

impl Default for RouterPanel {
    fn default() -> Self {
        RouterPanel { path: String::new(), split: Split::Test, row_normalised: false, cell: None }
    }
}

impl RouterPanel {
    pub fn with_path(path: PathBuf) -> Self {
        RouterPanel { path: path.display().to_string(), ..Default::default() }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        ui.add_space(4.0);
        self.controls(ui, cx);
        ui.separator();
        match &cx.workspace.routing {
            None => {
                ui.label(RichText::new("Open a trained run directory (or use the last training run) and press Route.").weak());
            }
            Some(RunState::Computing(id)) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    let message = cx.jobs.get(*id).map(|j| j.message()).unwrap_or_default();
                    ui.label(format!("Routing… {message}"));
                });
            }
            Some(RunState::Failed(err)) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("Routing failed: {err}"));
            }
            Some(RunState::Ready(run)) => {
                let run = run.clone();
                self.report(ui, &run, cx);
            }
        }
    }

    fn controls(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        ui.horizontal(|ui| {
            let label = ui.label("Run directory");
            ui.add(egui::TextEdit::singleline(&mut self.path).desired_width(420.0).hint_text("RUN (holding router/) or a router directory"))
                .labelled_by(label.id);
            if ui.button("Browse…").clicked() {
                if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                    self.path = dir.display().to_string();
                }
            }
            let last = cx.workspace.last_training.as_ref().filter(|s| s.router.is_some());
            let use_last = ui.add_enabled(last.is_some(), egui::Button::new("Use last training run"));
            if let (true, Some(summary)) = (use_last.clicked(), last) {
                self.path = summary.run_dir.display().to_string();
            }
        });
        ui.horizontal(|ui| {
            let label = ui.label("Split");
            egui::ComboBox::from_id_salt("router_split")
                .selected_text(self.split.as_str())
                .show_ui(ui, |ui| {
                    for split in Split::ALL {
                        ui.selectable_value(&mut self.split, split, split.as_str());
                    }
                })
                .response
                .labelled_by(label.id);
            let data = match &cx.workspace.dataset {
                Some(loaded) => format!("queries of the open dataset {}", loaded.path.display()),
                None => "queries of the dataset named in the run's config.toml".into(),
            };
            let busy = matches!(cx.workspace.routing, Some(RunState::Computing(_)));
            if ui.add_enabled(!busy && !self.path.trim().is_empty(), egui::Button::new(RichText::new("Route").strong())).clicked() {
                self.cell = None;
                cx.requests.push(AppRequest::Route { path: PathBuf::from(self.path.trim()), split: self.split });
            }
            ui.label(RichText::new(data).weak());
        });
    }

    fn report(&mut self, ui: &mut egui::Ui, run: &RoutingRun, cx: &mut PanelContext<'_>) {
        let report = &run.report;
        ui.horizontal(|ui| {
            ui.heading(format!("Accuracy {:.3}", report.accuracy));
            ui.heading(format!("macro-F1 {:.3}", report.macro_f1));
            ui.label(RichText::new(format!("{} {} queries, router {}", report.queries, run.split, run.router_dir.display())).weak());
        });
        ui.add_space(6.0);
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    ui.label(RichText::new("Confusion matrix").strong());
                    ui.selectable_value(&mut self.row_normalised, false, "Counts");
                    ui.selectable_value(&mut self.row_normalised, true, "Row-normalised");
                });
                self.confusion(ui, run);
            });
            ui.add_space(24.0);
            ui.vertical(|ui| {
                ui.label(RichText::new("Per class").strong());
                egui::Grid::new("router_per_class").striped(true).num_columns(5).spacing([14.0, 4.0]).show(ui, |ui| {
                    for head in ["domain", "precision", "recall", "F1", "support"] {
                        ui.label(RichText::new(head).strong());
                    }
                    ui.end_row();
                    for c in &report.per_class {
                        ui.label(&c.label);
                        ui.label(format!("{:.3}", c.precision));
                        ui.label(format!("{:.3}", c.recall));
                        ui.label(format!("{:.3}", c.f1));
                        ui.label(c.support.to_string());
                        ui.end_row();
                    }
                });
            });
        });
        ui.add_space(8.0);
        ui.separator();
        egui::Panel::left("router_cell_list").resizable(true).default_size(470.0).size_range(300.0..=760.0).show(ui, |ui| self.cell_queries(ui, run, cx));
        egui::CentralPanel::no_frame().show(ui, |ui| expert_comparison(ui, cx));
    }

    fn confusion(&mut self, ui: &mut egui::Ui, run: &RoutingRun) {
        let report = &run.report;
        let base = ui.visuals().extreme_bg_color;
        let hot = Color32::from_rgb(66, 133, 244);
        egui::Grid::new("router_confusion").spacing([3.0, 3.0]).show(ui, |ui| {
            ui.label(RichText::new("true ↓  routed →").weak());
            for label in &report.labels {
                ui.vertical_centered(|ui| ui.label(RichText::new(label).strong()));
            }
            ui.end_row();
            for (t, row) in report.confusion.iter().enumerate() {
                ui.label(RichText::new(&report.labels[t]).strong());
                let total: usize = row.iter().sum();
                for (p, &count) in row.iter().enumerate() {
                    let share = if total == 0 { 0.0 } else { count as f32 / total as f32 };
                    let text = if self.row_normalised { format!("{:.0}%", share * 100.0) } else { count.to_string() };
                    let fill = base.lerp_to_gamma(hot, share);
                    let color = if share > 0.5 { Color32::WHITE } else { ui.visuals().text_color() };
                    let selected = self.cell == Some((t, p));
                    let name = format!("{} → {}: {text}", report.labels[t], report.labels[p]);
                    let button = egui::Button::new(RichText::new(text).color(color).size(15.0)).fill(fill).min_size(egui::vec2(84.0, 40.0)).selected(selected);
                    let response = ui.add(button);
                    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
                    if response.on_hover_text(format!("{count} of {total} {} queries ({:.0}%) routed to {}", report.labels[t], share * 100.0, report.labels[p])).clicked() {
                        self.cell = Some((t, p));
                    }
                }
                ui.end_row();
            }
        });
    }

    fn cell_queries(&mut self, ui: &mut egui::Ui, run: &RoutingRun, cx: &mut PanelContext<'_>) {
        let labels = &run.report.labels;
        let Some((t, p)) = self.cell.filter(|&(t, p)| t < labels.len() && p < labels.len()) else {
            ui.label(RichText::new("Click a cell to list its queries with the router's probabilities.").weak());
            return;
        };
        let queries: Vec<_> = run.cell(t, p).collect();
        ui.label(RichText::new(format!("{} queries of {} routed to {}", queries.len(), labels[t], labels[p])).strong());
        egui::ScrollArea::vertical().id_salt("router_cell_queries").auto_shrink([false, false]).show(ui, |ui| {
            for q in queries {
                ui.push_id(&q.id, |ui| {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(&q.id).monospace().weak());
                        let hint = if q.truth == q.predicted {
                            "Rank this query's candidates under its expert (routed correctly: both lists use it)"
                        } else {
                            "Rank this query's candidates under the expert the router chose and under the correct one, side by side"
                        };
                        if ui.small_button("Compare experts").on_hover_text(hint).clicked() {
                            cx.requests.push(AppRequest::CompareExperts { query: q.id.clone() });
                        }
                    });
                    ui.add(egui::Label::new(widgets::preview(&q.query, 140)).wrap());
                    ui.horizontal_wrapped(|ui| {
                        for (label, &prob) in labels.iter().zip(&q.probabilities) {
                            let bar = egui::ProgressBar::new(prob).desired_width(130.0).text(format!("{label} {prob:.2}"));
                            ui.add(bar);
                        }
                    });
                    ui.add_space(4.0);
                });
            }
        });
    }
}

/// The compared query's candidates under the chosen and the correct expert, side by side.
fn expert_comparison(ui: &mut egui::Ui, cx: &PanelContext<'_>) {
    match &cx.workspace.expert_comparison {
        None => {
            ui.label(RichText::new("Press “Compare experts” on a query to rank its candidates under the expert the router chose and under the correct one.").weak());
        }
        Some((query, RunState::Computing(job))) => {
            ui.horizontal(|ui| {
                ui.spinner();
                let message = cx.jobs.get(*job).map(|j| j.message()).unwrap_or_default();
                ui.label(format!("Scoring {query} under both experts … {message}"));
            });
        }
        Some((query, RunState::Failed(message))) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("Could not compare the experts on {query}: {message}"));
        }
        Some((_, RunState::Ready(comparison))) => {
            let group = &comparison.group;
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(&group.id).strong().monospace());
                ui.label(format!("{} · {}", group.domain, group.split));
            });
            ui.add(egui::Label::new(RichText::new(&group.query).size(15.0)).wrap());
            let verdict = if comparison.chosen == comparison.correct {
                format!("Routed correctly to {}: both lists use the same expert.", comparison.chosen)
            } else {
                format!("Misrouted: the router chose {}, the query's domain is {}.", comparison.chosen, comparison.correct)
            };
            ui.label(RichText::new(verdict).strong());
            let reference_name = format!("the chosen expert ({})", comparison.chosen);
            let reference_ranks = comparison.under_chosen.rank_of();
            let columns = [
                (format!("Chosen expert: {}", comparison.chosen), &comparison.under_chosen, None),
                (format!("Correct expert: {}", comparison.correct), &comparison.under_correct, Some((reference_ranks.as_slice(), reference_name.as_str()))),
            ];
            let colors = [Color32::from_rgb(219, 68, 55), Color32::from_rgb(52, 168, 83)];
            ui.columns(2, |uis| {
                for (i, (ui, (title, ranking, reference))) in uis.iter_mut().zip(columns).enumerate() {
                    let layout = egui::Layout::top_down(egui::Align::LEFT);
                    ui.scope_builder(egui::UiBuilder::new().id_salt(("expert_column", i)).layout(layout), |ui| {
                        ui.label(RichText::new(title).strong().color(colors[i]));
                        let ndcg = ranking.metric(crate::metrics::Metric::Ndcg(Some(10)));
                        ui.label(format!("NDCG@10 of this query: {ndcg:.3}")).on_hover_text(widgets::metric_help("NDCG@10"));
                        widgets::ranked_list(ui, ("expert_list", i), group, ranking, reference);
                    });
                }
            });
        }
    }
}
