//! Router panel: open a trained run directory (its `router/`, saved by the
//! training pipeline), the last training run of the session, or an
//! `r2r experiment` directory (its root or `training/`). A run is routed on a
//! split in a background job; an experiment's routers (results.json, else
//! routing.csv) and misrouted queries (misroute.csv) are read back. Shows the
//! engine's `RoutingReport`: accuracy, macro-F1 (over classes with support), a
//! confusion-matrix grid (counts or row-normalised; "—" for empty rows), a
//! per-class table, the queries of a clicked cell with the router's probability
//! bars, an experiment's misroutes sorted by the NDCG@10 they lost, and for a
//! chosen query its candidates ranked under the expert the router chose and
//! under the expert of its true domain, side by side (scored in a background
//! job; the list widget is the Rankings panel's). Tables save as CSV.

use std::path::PathBuf;

use egui::{Color32, RichText};
use poll_promise::Promise;

use super::PanelContext;
use crate::data::Split;
use crate::experiment::open::{experiment_root, ExperimentRouting};
use crate::gui::routing_run::RoutingRun;
use crate::gui::state::{AppRequest, RunState};
use crate::gui::widgets;
use crate::routing::{RouterName, RoutingReport};

pub struct RouterPanel {
    /// Run directory (or router directory, or experiment directory) to open.
    path: String,
    split: Split,
    row_normalised: bool,
    /// The clicked confusion-matrix cell: (true, predicted).
    cell: Option<(usize, usize)>,
    /// The shown router of an opened experiment.
    experiment_router: RouterName,
    /// (path text, is an experiment directory): checked once per edit, not per frame.
    kind_of_path: Option<(String, bool)>,
    dialog: Option<Promise<Option<PathBuf>>>,
    note: Option<String>,
    /// The confusion matrix's PNG export, and where the matrix was drawn last frame.
    png: widgets::PngExport,
    matrix_rect: Option<egui::Rect>,
}

impl Default for RouterPanel {
    fn default() -> Self {
        RouterPanel {
            path: String::new(),
            split: Split::Test,
            row_normalised: false,
            cell: None,
            experiment_router: RouterName::Lsr,
            kind_of_path: None,
            dialog: None,
            note: None,
            png: Default::default(),
            matrix_rect: None,
        }
    }
}

impl RouterPanel {
    pub fn with_path(path: PathBuf) -> Self {
        RouterPanel { path: path.display().to_string(), ..Default::default() }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        ui.add_space(4.0);
        self.controls(ui, cx);
        if let Some(note) = &self.note {
            ui.label(RichText::new(note).weak());
        }
        ui.separator();
        if let Some((dir, state)) = &cx.workspace.routing_experiment {
            match state {
                RunState::Computing(_) => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(format!("Reading the experiment {} …", dir.display()));
                    });
                }
                RunState::Failed(err) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("Could not open the experiment: {err}"));
                }
                RunState::Ready(experiment) => {
                    let experiment = experiment.clone();
                    self.experiment(ui, &experiment, cx);
                }
            }
            return;
        }
        match &cx.workspace.routing {
            None => {
                ui.label(RichText::new("Open a trained run directory (or use the last training run) and press Route, or open an experiment directory.").weak());
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

    /// True when the path field names an experiment directory (cached per text).
    fn is_experiment(&mut self) -> bool {
        let text = self.path.trim().to_string();
        if self.kind_of_path.as_ref().is_none_or(|(p, _)| *p != text) {
            let experiment = !text.is_empty() && experiment_root(std::path::Path::new(&text)).is_some();
            self.kind_of_path = Some((text, experiment));
        }
        self.kind_of_path.as_ref().is_some_and(|(_, e)| *e)
    }

    fn controls(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        if let Some(promise) = self.dialog.take() {
            match promise.try_take() {
                Ok(Some(dir)) => {
                    self.path = dir.display().to_string();
                    self.note = None;
                }
                Ok(None) => {
                    self.note = Some("No folder chosen. If no dialog appeared, this system has no file-dialog portal or zenity: type the path instead.".into());
                }
                Err(promise) => self.dialog = Some(promise),
            }
        }
        ui.horizontal(|ui| {
            let label = ui.label("Run directory");
            ui.add(egui::TextEdit::singleline(&mut self.path).desired_width(420.0).hint_text("RUN (holding router/), a router directory, or an experiment directory"))
                .labelled_by(label.id);
            if ui.add_enabled(self.dialog.is_none(), egui::Button::new("Browse…")).clicked() {
                let start = PathBuf::from(self.path.trim());
                match widgets::spawn_folder_dialog(ui.ctx(), "Open a run or experiment directory", start.is_dir().then_some(start)) {
                    Ok(promise) => self.dialog = Some(promise),
                    Err(err) => self.note = Some(format!("Cannot open a folder dialog: {err}; type the path instead.")),
                }
            }
            let last = cx.workspace.last_training.as_ref().filter(|s| s.router.is_some());
            let use_last = ui.add_enabled(last.is_some(), egui::Button::new("Use last training run"));
            if let (true, Some(summary)) = (use_last.clicked(), last) {
                self.path = summary.run_dir.display().to_string();
                self.cell = None;
                // The previous directory's results (or error) do not belong to this one.
                cx.requests.push(AppRequest::ClearRouting);
            }
        });
        let experiment = self.is_experiment();
        ui.horizontal(|ui| {
            let busy = matches!(cx.workspace.routing, Some(RunState::Computing(_)))
                || matches!(cx.workspace.routing_experiment, Some((_, RunState::Computing(_))));
            if experiment {
                if ui.add_enabled(!busy, egui::Button::new(RichText::new("Open experiment").strong())).on_hover_text("Read its routers (results.json, routing.csv) and misrouted queries (misroute.csv)").clicked() {
                    self.cell = None;
                    cx.requests.push(AppRequest::OpenRouting(PathBuf::from(self.path.trim())));
                }
                ui.label(RichText::new("an r2r experiment directory: its routers and misroutes are read, nothing is recomputed").weak());
                return;
            }
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
            if ui.add_enabled(!busy && !self.path.trim().is_empty(), egui::Button::new(RichText::new("Route").strong())).clicked() {
                self.cell = None;
                cx.requests.push(AppRequest::Route { path: PathBuf::from(self.path.trim()), split: self.split });
            }
            ui.label(RichText::new(data).weak());
        });
    }

    /// Accuracy, macro-F1, the confusion matrix and the per-class table of one report.
    fn summary(&mut self, ui: &mut egui::Ui, report: &RoutingReport, what: &str, cx: &PanelContext<'_>) {
        ui.horizontal(|ui| {
            ui.heading(format!("Accuracy {:.3}", report.accuracy)).on_hover_text(widgets::metric_help("Accuracy"));
            ui.heading(format!("macro-F1 {:.3}", report.macro_f1)).on_hover_text(format!("{} Only domains with queries (support) count.", widgets::metric_help("Macro-F1")));
            ui.label(RichText::new(what).weak());
        });
        ui.add_space(6.0);
        let dir = cx.settings.export_dir();
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    ui.label(RichText::new("Confusion matrix").strong());
                    ui.selectable_value(&mut self.row_normalised, false, "Counts");
                    ui.selectable_value(&mut self.row_normalised, true, "Row-normalised");
                    widgets::save_csv_button(ui, "Save matrix CSV", &dir, "confusion_matrix", &mut self.note, || report.confusion_csv());
                    if let Some(rect) = self.matrix_rect {
                        self.png.button(ui, "Save matrix PNG", &dir, "confusion_matrix", rect);
                    }
                    if let Some(saved) = self.png.take_note() {
                        self.note = Some(saved);
                    }
                });
                self.confusion(ui, report);
            });
            ui.add_space(24.0);
            ui.vertical(|ui| {
                ui.horizontal(|ui| {
                    ui.label(RichText::new("Per class").strong());
                    widgets::save_csv_button(ui, "Save per-class CSV", &dir, "per_class", &mut self.note, || report.per_class_csv());
                });
                egui::Grid::new("router_per_class").striped(true).num_columns(5).spacing([14.0, 4.0]).show(ui, |ui| {
                    for head in ["domain", "precision", "recall", "F1", "support"] {
                        ui.label(RichText::new(head).strong());
                    }
                    ui.end_row();
                    for (ci, c) in report.per_class.iter().enumerate() {
                        ui.label(&c.label);
                        let predicted: usize = report.confusion.iter().map(|row| row.get(ci).copied().unwrap_or(0)).sum();
                        let cell = |ui: &mut egui::Ui, defined: bool, value: f64| {
                            if defined {
                                ui.label(format!("{value:.3}"));
                            } else {
                                ui.label("—").on_hover_text("Undefined: no query of this domain (support 0), or none routed to it");
                            }
                        };
                        cell(ui, predicted > 0, c.precision);
                        cell(ui, c.support > 0, c.recall);
                        cell(ui, c.support > 0, c.f1);
                        ui.label(c.support.to_string());
                        ui.end_row();
                    }
                });
            });
        });
    }

    fn report(&mut self, ui: &mut egui::Ui, run: &RoutingRun, cx: &mut PanelContext<'_>) {
        let what = format!("{} {} queries, router {}", run.report.queries, run.split, run.router_dir.display());
        self.summary(ui, &run.report, &what, cx);
        ui.add_space(8.0);
        ui.separator();
        egui::Panel::left("router_cell_list").resizable(true).default_size(470.0).size_range(300.0..=760.0).show(ui, |ui| self.cell_queries(ui, run, cx));
        egui::CentralPanel::no_frame().show(ui, |ui| expert_comparison(ui, cx));
    }

    /// An opened experiment: a router picker, its report, and the LSR's misroutes.
    fn experiment(&mut self, ui: &mut egui::Ui, experiment: &ExperimentRouting, cx: &mut PanelContext<'_>) {
        ui.horizontal(|ui| {
            ui.label(RichText::new(format!("Experiment {}", experiment.dir.display())).strong());
            if !experiment.routers.is_empty() {
                if experiment.router(&self.experiment_router).is_none() {
                    self.experiment_router = experiment.routers[0].name.clone();
                }
                let label = ui.label("Router:");
                egui::ComboBox::from_id_salt("router_experiment_router")
                    .selected_text(self.experiment_router.to_string())
                    .show_ui(ui, |ui| {
                        for router in &experiment.routers {
                            if ui.selectable_value(&mut self.experiment_router, router.name.clone(), router.name.to_string()).clicked() {
                                self.cell = None;
                            }
                        }
                    })
                    .response
                    .labelled_by(label.id);
            }
        });
        for note in &experiment.notes {
            ui.label(RichText::new(note).weak());
        }
        match experiment.router(&self.experiment_router) {
            Some(router) => match &router.report {
                Some(report) => {
                    let what = format!("{} test queries of the target domains, router {}", report.queries, router.name);
                    self.summary(ui, report, &what, cx);
                }
                None => {
                    ui.horizontal(|ui| {
                        ui.heading(format!("Accuracy {:.3}", router.accuracy));
                        ui.heading(format!("macro-F1 {:.3}", router.macro_f1));
                        ui.label(RichText::new(format!("{} queries (routing.csv: no confusion matrix)", router.queries)).weak());
                    });
                }
            },
            None => {
                ui.label(RichText::new("The experiment lists no routers.").weak());
            }
        }
        ui.add_space(8.0);
        ui.separator();
        egui::Panel::left("router_misroutes").resizable(true).default_size(560.0).size_range(360.0..=860.0).show(ui, |ui| self.misroutes(ui, experiment, cx));
        egui::CentralPanel::no_frame().show(ui, |ui| expert_comparison(ui, cx));
    }

    /// The LSR's misrouted queries, largest NDCG@10 loss first (those of the clicked cell when the LSR is shown).
    fn misroutes(&mut self, ui: &mut egui::Ui, experiment: &ExperimentRouting, cx: &mut PanelContext<'_>) {
        let labels = experiment.router(&self.experiment_router).and_then(|r| r.report.as_ref()).map(|r| r.labels.clone()).unwrap_or_default();
        let cell = self.cell.filter(|_| self.experiment_router == RouterName::Lsr).and_then(|(t, p)| Some((labels.get(t)?.clone(), labels.get(p)?.clone())));
        let shown: Vec<&crate::experiment::systems::Misroute> =
            experiment.misroutes.iter().filter(|m| cell.as_ref().is_none_or(|(t, p)| &m.domain == t && &m.chosen == p)).collect();
        ui.horizontal(|ui| {
            let scope = cell.as_ref().map_or(String::new(), |(t, p)| format!(" of {t} routed to {p}"));
            ui.label(RichText::new(format!("{} misrouted queries{scope} (LSR), by NDCG@10 lost", shown.len())).strong());
            let dir = cx.settings.export_dir();
            widgets::save_csv_button(ui, "Save misroutes CSV", &dir, "misroutes", &mut self.note, || experiment.misroutes_csv());
        });
        if shown.is_empty() {
            ui.label(RichText::new("No misrouted query here.").weak());
            return;
        }
        let current = cx.workspace.expert_comparison.as_ref().map(|(q, _)| q.clone());
        egui::ScrollArea::vertical().id_salt("router_misroute_list").auto_shrink([false, false]).show(ui, |ui| {
            egui::Grid::new("router_misroute_grid").striped(true).num_columns(6).spacing([12.0, 4.0]).show(ui, |ui| {
                for head in ["query", "domain → chosen", "chosen", "correct", "lost", ""] {
                    ui.label(RichText::new(head).strong());
                }
                ui.end_row();
                for m in shown {
                    let selected = current.as_deref() == Some(m.query.as_str());
                    ui.label(RichText::new(&m.query).monospace().strong().color(if selected { ui.visuals().selection.stroke.color } else { ui.visuals().text_color() }))
                        .on_hover_text(format!("split {}", m.split));
                    ui.label(format!("{} → {}", m.domain, m.chosen));
                    ui.label(format!("{:.3}", m.chosen_ndcg_at_10)).on_hover_text("NDCG@10 under the chosen expert");
                    ui.label(format!("{:.3}", m.correct_ndcg_at_10)).on_hover_text("NDCG@10 under the correct expert");
                    let lost = if m.lost().abs() < 5e-4 { "0.000".to_string() } else { format!("{:+.3}", m.lost()) };
                    ui.label(RichText::new(lost).strong()).on_hover_text(format!("NDCG@10 lost by the misroute (correct − chosen = {:+.3})", m.lost()));
                    let button = ui.add(egui::Button::new("Compare experts").small().selected(selected));
                    button.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, format!("Compare experts on {}", m.query)));
                    if button.on_hover_text("Rank this query's candidates under the chosen and the correct expert, side by side").clicked() {
                        cx.requests.push(AppRequest::CompareExperts { query: m.query.clone() });
                    }
                    ui.end_row();
                }
            });
        });
    }

    fn confusion(&mut self, ui: &mut egui::Ui, report: &RoutingReport) {
        let base = ui.visuals().extreme_bg_color;
        let hot = Color32::from_rgb(66, 133, 244);
        let grid = egui::Grid::new("router_confusion").spacing([3.0, 3.0]).show(ui, |ui| {
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
                    let text = match (self.row_normalised, total) {
                        (true, 0) => "—".to_string(),
                        (true, _) => format!("{:.0}%", share * 100.0),
                        (false, _) => count.to_string(),
                    };
                    let fill = base.lerp_to_gamma(hot, share);
                    let color = if share > 0.5 { Color32::WHITE } else { ui.visuals().text_color() };
                    let selected = self.cell == Some((t, p));
                    let name = format!("{} → {}: {text}", report.labels[t], report.labels[p]);
                    let mut button = egui::Button::new(RichText::new(text).color(color).size(15.0)).fill(fill).min_size(egui::vec2(84.0, 40.0)).selected(selected);
                    if selected {
                        button = button.stroke(egui::Stroke::new(2.5, ui.visuals().selection.stroke.color));
                    }
                    let response = ui.add(button);
                    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
                    let hover = if total == 0 {
                        format!("No {} query in this split", report.labels[t])
                    } else {
                        format!("{count} of {total} {} queries ({:.0}%) routed to {}", report.labels[t], share * 100.0, report.labels[p])
                    };
                    if response.on_hover_text(hover).clicked() {
                        self.cell = Some((t, p));
                    }
                }
                ui.end_row();
            }
        });
        self.matrix_rect = Some(grid.response.rect);
    }

    fn cell_queries(&mut self, ui: &mut egui::Ui, run: &RoutingRun, cx: &mut PanelContext<'_>) {
        let labels = &run.report.labels;
        let Some((t, p)) = self.cell.filter(|&(t, p)| t < labels.len() && p < labels.len()) else {
            ui.label(RichText::new("Click a cell to list its queries with the router's probabilities.").weak());
            return;
        };
        let queries: Vec<_> = run.cell(t, p).collect();
        ui.label(RichText::new(format!("{} queries of {} routed to {}", queries.len(), labels[t], labels[p])).strong());
        let current = cx.workspace.expert_comparison.as_ref().map(|(q, _)| q.clone());
        egui::ScrollArea::vertical().id_salt("router_cell_queries").auto_shrink([false, false]).show(ui, |ui| {
            for q in queries {
                ui.push_id(&q.id, |ui| {
                    ui.horizontal(|ui| {
                        let selected = current.as_deref() == Some(q.id.as_str());
                        let color = if selected { ui.visuals().selection.stroke.color } else { ui.visuals().weak_text_color() };
                        ui.label(RichText::new(&q.id).monospace().color(color));
                        let hint = if q.truth == q.predicted {
                            "Rank this query's candidates under its expert (routed correctly: both lists use it)"
                        } else {
                            "Rank this query's candidates under the expert the router chose and under the correct one, side by side"
                        };
                        if ui.add(egui::Button::new("Compare experts").small().selected(selected)).on_hover_text(hint).clicked() {
                            cx.requests.push(AppRequest::CompareExperts { query: q.id.clone() });
                        }
                    });
                    ui.add(egui::Label::new(widgets::preview(&q.query, 140)).wrap());
                    // One bar per domain, each on its own line so labels never overlap the bars.
                    egui::Grid::new("router_probabilities").num_columns(2).spacing([8.0, 2.0]).show(ui, |ui| {
                        for (label, &prob) in labels.iter().zip(&q.probabilities) {
                            ui.label(RichText::new(label).small());
                            ui.add(egui::ProgressBar::new(prob).desired_width(160.0).text(format!("{label} {prob:.2}")));
                            ui.end_row();
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
