//! Rankings panel: pick a domain, split and query, and compare the ranked
//! candidate lists of 2–4 systems side by side (scores, relevance marks, arrows
//! for rank movement against the leftmost system), with per-domain bars of a
//! chosen metric (NDCG@10, MRR@10, Recall@10 from `r2r::metrics`) across systems
//! and significance marks (paired randomization test of each system against the
//! leftmost one, or the experiment's own tests from results.json). Systems come
//! from [`crate::gui::systems`]: BM25 and the random order are ranked when a
//! dataset loads, the generalist backbone per split when chosen, and "Open
//! experiment…" adds the systems of an `r2r experiment` directory from its run
//! files. All of it runs in background jobs.

use std::path::PathBuf;
use std::sync::Arc;

use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, Plot, PlotPoint, Text};
use poll_promise::Promise;

use super::PanelContext;
use crate::data::{QueryGroup, Split};
use crate::gui::experiment_runs::{experiment_split, ExperimentRuns};
use crate::gui::state::{AppRequest, CommonMeans, LoadedDataset, RunState, Workspace};
use crate::gui::systems::{metric_title, SignificanceTable, SystemKind, SystemRun, METRICS, SIGNIFICANCE_PERMUTATIONS};
use crate::gui::widgets::{self, QueryFilter, QueryList};
use crate::metrics::Metric;

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
    /// (dataset, filter, runs that restrict the rows) the rows were computed for.
    rows_key: Option<(usize, QueryFilter, Vec<usize>)>,
    selected: Option<usize>,
    list: QueryList,
    /// The experiment directory field (for keyboard users and tests; the dialog fills it too).
    experiment_input: String,
    dialog: Option<Promise<Option<PathBuf>>>,
    dialog_note: Option<String>,
    /// Where the last "Save table CSV" / "Save chart PNG" went (or why it failed).
    export_note: Option<String>,
    /// The chart's PNG export (its result arrives a frame or two later).
    png: widgets::PngExport,
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
            let available = available_systems(cx.workspace);
            system_toggles(ui, &available, &mut cx.settings.rankings.systems);
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
        self.experiment_row(ui, cx);
        let metric = cx.settings.rankings.metric;
        cx.settings.rankings.split = self.filter.split;
        let available = available_systems(cx.workspace);
        let systems: Vec<SystemKind> = cx.settings.rankings.systems.iter().filter(|s| available.contains(s)).cloned().collect();
        for system in systems.iter().filter(|s| s.per_split()) {
            for split in splits_of(self.filter.split) {
                if cx.workspace.state_for(system, split).is_none() {
                    cx.requests.push(AppRequest::RankSplit(system.clone(), split));
                }
            }
        }
        run_status(ui, cx, &systems, self.filter.split);

        egui::CollapsingHeader::new("Metrics per domain").default_open(true).show(ui, |ui| {
            if let Some(saved) = self.png.take_note() {
                self.export_note = Some(saved);
            }
            metric_overview(ui, cx, &loaded, &systems, self.filter.split, metric, &mut self.export_note, &self.png);
        });
        ui.separator();

        // With experiment systems shown, the list holds the queries their run files rank.
        let restrict: Vec<Arc<SystemRun>> =
            systems.iter().filter(|s| matches!(s, SystemKind::Experiment(_))).filter_map(|s| cx.workspace.run(s).cloned()).collect();
        self.refresh_rows(&loaded, &restrict);
        self.list.handle_keys(ui, &self.rows, &mut self.selected);
        egui::Panel::left("rankings_query_list").resizable(true).default_size(330.0).size_range(220.0..=600.0).show(ui, |ui| {
            ui.horizontal(|ui| {
                let label = ui.label("Search:");
                ui.add(egui::TextEdit::singleline(&mut self.filter.search).hint_text("words in the query or its id").desired_width(f32::INFINITY))
                    .labelled_by(label.id);
            });
            let scope = if restrict.is_empty() { "" } else { " the experiment ranked" };
            ui.label(RichText::new(format!("{} queries{scope}  (↑/↓ to move)", self.rows.len())).weak());
            self.list.show(ui, "rankings_queries", &loaded.dataset, &self.rows, &mut self.selected);
        });
        egui::CentralPanel::no_frame().show(ui, |ui| match self.selected.and_then(|i| loaded.dataset.groups.get(i)) {
            Some(group) => compare_lists(ui, cx.workspace, group, &systems, metric),
            None => {
                ui.label("No query matches the filter.");
            }
        });
    }

    fn refresh_rows(&mut self, loaded: &Arc<LoadedDataset>, restrict: &[Arc<SystemRun>]) {
        let ptr = Arc::as_ptr(loaded) as usize;
        let run_ptrs: Vec<usize> = restrict.iter().map(|r| Arc::as_ptr(r) as usize).collect();
        if self.rows_key.as_ref().is_some_and(|(p, f, r)| *p == ptr && *f == self.filter && *r == run_ptrs) {
            return;
        }
        let dataset_changed = self.rows_key.as_ref().is_none_or(|(p, _, _)| *p != ptr);
        if dataset_changed {
            self.filter.domain = self.filter.domain.take().filter(|d| loaded.stats.contains_key(d));
        }
        let groups = &loaded.dataset.groups;
        self.rows = self.filter.apply(&loaded.dataset);
        self.rows.retain(|&i| restrict.iter().all(|run| run.rankings.contains_key(&groups[i].id)));
        self.rows_key = Some((ptr, self.filter.clone(), run_ptrs));
        if dataset_changed || self.selected.is_none_or(|s| !self.rows.contains(&s)) {
            self.selected = self.rows.first().copied();
        }
    }
}

/// The built-in systems, then those of the open experiment.
fn available_systems(workspace: &Workspace) -> Vec<SystemKind> {
    let experiment = workspace.experiment_runs().into_iter().flat_map(|e| e.runs.iter().map(|r| r.system.clone()));
    SystemKind::BUILT_IN.into_iter().chain(experiment).collect()
}

/// One checkbox per available system; the chosen ones keep their order of choosing.
/// Only systems available now count toward the cap of [`MAX_SYSTEMS`] (a remembered
/// experiment system that is not loaded does not grey out others); a greyed box says why.
fn system_toggles(ui: &mut egui::Ui, available: &[SystemKind], chosen: &mut Vec<SystemKind>) {
    let shown: Vec<String> = chosen.iter().filter(|s| available.contains(s)).map(|s| s.name().to_string()).collect();
    let mut first_of_experiment = true;
    for system in available {
        // The experiment's systems (e.g. its `bm25`, `generalist`) apart from the built-in ones of similar names.
        if matches!(system, SystemKind::Experiment(_)) && std::mem::take(&mut first_of_experiment) {
            ui.separator();
            ui.label(RichText::new("experiment:").weak()).on_hover_text("Systems read from the open experiment's run files");
        }
        let mut on = chosen.contains(system);
        let full = shown.len() >= MAX_SYSTEMS && !on;
        let response = ui.add_enabled(!full, egui::Checkbox::new(&mut on, system.name())).on_hover_text(system.description());
        let response = if full {
            response.on_disabled_hover_text(format!("At most {MAX_SYSTEMS} systems side by side: untick one of {} first", shown.join(", ")))
        } else {
            response
        };
        if response.changed() {
            if on {
                chosen.push(system.clone());
            } else {
                chosen.retain(|s| s != system);
            }
        }
    }
    if shown.len() < 2 {
        ui.label(RichText::new("choose at least two to compare").weak());
    } else if shown.len() >= MAX_SYSTEMS && available.len() > MAX_SYSTEMS {
        ui.label(RichText::new(format!("(at most {MAX_SYSTEMS})")).weak());
    }
}

/// Spinners and progress for systems still ranking; errors for failed ones.
fn run_status(ui: &mut egui::Ui, cx: &mut PanelContext<'_>, systems: &[SystemKind], split: Option<Split>) {
    for system in systems {
        let splits = if system.per_split() { splits_of(split) } else { vec![Split::Test] };
        for split in splits {
            let what = if system.per_split() { format!("{} ({split})", system.name()) } else { system.name().to_string() };
            match cx.workspace.state_for(system, split) {
                Some(RunState::Computing(job)) => {
                    let info = cx.jobs.get(*job);
                    let progress = info.and_then(|j| j.fraction()).unwrap_or(0.0);
                    let eta = info.and_then(|j| j.eta()).map_or_else(String::new, |d| format!("about {} left", crate::gui::jobs::format_duration(d)));
                    let job = *job;
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(format!("Ranking with {what} …"));
                        ui.add(egui::ProgressBar::new(progress).desired_width(200.0).show_percentage());
                        ui.label(RichText::new(eta).weak());
                        if ui.button(format!("Cancel {}", system.name())).on_hover_text("Stop this job and untick the system").clicked() {
                            cx.jobs.cancel(job);
                            cx.settings.rankings.systems.retain(|s| s != system);
                        }
                    });
                }
                Some(RunState::Failed(message)) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("{what} failed: {message}"));
                }
                _ => {}
            }
        }
    }
}

fn splits_of(split: Option<Split>) -> Vec<Split> {
    split.map_or_else(|| Split::ALL.to_vec(), |s| vec![s])
}

/// A significance mark's test: which test, its statistic (mean of the column's
/// system − the reference) and p-value.
struct Mark {
    statistic: f64,
    p_value: f64,
    source: String,
}

/// The test of `system` against `reference` on one domain: the app's own
/// (between BM25 and random order) or the experiment's (results.json).
fn significance_of(workspace: &Workspace, reference: &SystemKind, system: &SystemKind, domain: &str, split: Option<Split>, metric: Metric, narrowed: bool) -> Option<Mark> {
    // The app's tests pair all of a domain's queries: they do not hold for a narrowed common set.
    if let (Some(RunState::Ready(table)), false) = (&workspace.significance, narrowed) {
        if let Some(test) = table.compare(reference, system, domain, split, metric) {
            let source = format!("two-sided paired randomization test, {SIGNIFICANCE_PERMUTATIONS} permutations");
            return Some(Mark { statistic: test.statistic, p_value: test.p_value, source });
        }
    }
    let (SystemKind::Experiment(reference), SystemKind::Experiment(system)) = (reference, system) else { return None };
    let experiment = workspace.experiment_runs()?;
    let (statistic, p_value) = experiment.test(reference, system, experiment_split(split?)?, domain, metric)?;
    let permutations = experiment.permutations.map_or_else(String::new, |n| format!(", {n} permutations"));
    Some(Mark { statistic, p_value, source: format!("the experiment's paired randomization test (results.json{permutations})") })
}

/// Grouped bars (one group per domain, one bar per system, a star above a bar
/// whose difference to the leftmost system is significant) and the same numbers
/// as a table with the marks and their p-values.
fn metric_overview(ui: &mut egui::Ui, cx: &PanelContext<'_>, loaded: &LoadedDataset, systems: &[SystemKind], split: Option<Split>, metric: Metric, note: &mut Option<String>, png: &widgets::PngExport) {
    let workspace = cx.workspace;
    let title = metric_title(metric);
    let domains: Vec<String> = loaded.stats.keys().cloned().collect();
    let splits = splits_of(split);
    let split_name = split.map_or("all splits".to_string(), |s| format!("split {s}"));
    // Every system's mean over the queries all shown systems ranked (the common query set).
    let common: Vec<CommonMeans> = domains.iter().map(|d| workspace.common_means(systems, metric, d, &splits)).collect();
    let means: Vec<Vec<Option<(f64, usize)>>> =
        (0..systems.len()).map(|i| common.iter().map(|c| c.means[i].map(|m| (m, c.queries))).collect()).collect();
    let marks: Vec<Vec<Option<Mark>>> = systems
        .iter()
        .enumerate()
        .map(|(i, s)| {
            domains
                .iter()
                .zip(&common)
                .map(|(d, c)| if i == 0 { None } else { significance_of(workspace, &systems[0], s, d, split, metric, c.narrowed()) })
                .collect()
        })
        .collect();
    let mut chart_rect: Option<egui::Rect> = None;
    ui.horizontal(|ui| {
        let chart_width = (ui.available_width() * 0.5).max(320.0);
        ui.vertical(|ui| {
            ui.set_width(chart_width);
            let n = systems.len().max(1) as f64;
            let width = 0.8 / n;
            let names = domains.clone();
            ui.horizontal_wrapped(|ui| {
                for (i, system) in systems.iter().enumerate() {
                    ui.label(RichText::new(format!("■ {}", system.name())).color(SYSTEM_COLORS[i % MAX_SYSTEMS]));
                }
            });
            let bars_response = Plot::new("rankings_metric_bars")
                .height(160.0)
                .width(chart_width)
                .include_y(0.0)
                .include_y(1.1)
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
                    for (i, system) in systems.iter().enumerate() {
                        let offset = (i as f64 - (n - 1.0) / 2.0) * width;
                        let color = SYSTEM_COLORS[i % MAX_SYSTEMS];
                        let mut bars = Vec::new();
                        for (d, domain) in domains.iter().enumerate() {
                            let Some((mean, count)) = means[i][d] else { continue };
                            bars.push(Bar::new(d as f64 + offset, mean).width(width * 0.95).name(format!("{domain} ({count} queries)")));
                            if let Some(mark) = marks[i][d].as_ref().filter(|m| m.p_value < 0.05) {
                                let stars = if mark.p_value < 0.01 { "**" } else { "*" };
                                plot.text(Text::new(format!("{} {domain}", system.name()), PlotPoint::new(d as f64 + offset, mean + 0.06), RichText::new(stars).strong().color(color)));
                            }
                        }
                        plot.bar_chart(BarChart::new(system.name(), bars).color(color));
                    }
                })
                .response;
            let bars = bars_response.on_hover_text(widgets::metric_help(&title));
            chart_rect = Some(bars.rect);
        });
        ui.vertical(|ui| {
            ui.horizontal(|ui| {
                ui.label(RichText::new(format!("Mean {title}, {split_name}")).strong()).on_hover_text(widgets::metric_help(&title));
                let stem = format!("rankings_{title}_{split_name}");
                widgets::save_csv_button(ui, "Save table CSV", &cx.settings.export_dir(), &stem, note, || metric_table_csv(&domains, systems, &common));
                if let Some(rect) = chart_rect {
                    png.button(ui, "Save chart PNG", &cx.settings.export_dir(), &format!("{stem}_chart"), rect);
                }
            });
            if let Some(note) = note.as_deref() {
                ui.label(RichText::new(note).weak());
            }
            egui::Grid::new("rankings_metric_table").striped(true).spacing([16.0, 4.0]).show(ui, |ui| {
                ui.label(RichText::new("Domain").strong());
                for system in systems {
                    ui.label(RichText::new(system.name()).strong()).on_hover_text(system.description());
                }
                ui.label(RichText::new("Queries").strong()).on_hover_text("N: the queries every shown system ranked; all means in the row are over these");
                ui.end_row();
                for (d, domain) in domains.iter().enumerate() {
                    ui.label(domain);
                    for (i, system) in systems.iter().enumerate() {
                        match means[i][d] {
                            Some((mean, _)) => {
                                ui.horizontal(|ui| {
                                    ui.label(format!("{mean:.3}")).on_hover_text(widgets::metric_help(&title));
                                    if let Some(mark) = &marks[i][d] {
                                        significance_mark(ui, mark, &systems[0], system, &title);
                                    }
                                });
                            }
                            None => {
                                ui.label("—").on_hover_text("Not ranked (yet), or no query of this domain in the system's runs");
                            }
                        }
                    }
                    query_count(ui, &common[d], systems);
                    ui.end_row();
                }
            });
            if common.iter().any(CommonMeans::narrowed) {
                ui.label(RichText::new("The systems ranked different queries: every mean in a row is over the N queries all of them ranked.").color(ui.visuals().warn_fg_color));
            }
            significance_note(ui, &workspace.significance, cx, systems);
        });
    });
}

/// The per-domain table (and the bar chart's data) as CSV: one row per domain,
/// one column per system's mean over the common query set, then N and each
/// system's own query count.
fn metric_table_csv(domains: &[String], systems: &[SystemKind], common: &[CommonMeans]) -> String {
    let mut header: Vec<String> = vec!["domain".into()];
    header.extend(systems.iter().map(|s| s.name().to_string()));
    header.push("queries".into());
    header.extend(systems.iter().map(|s| format!("{} ranked", s.name())));
    let rows: Vec<Vec<String>> = domains
        .iter()
        .zip(common)
        .map(|(domain, c)| {
            let mut row = vec![domain.clone()];
            row.extend(c.means.iter().map(|m| m.map_or_else(String::new, |m| format!("{m:.6}"))));
            row.push(c.queries.to_string());
            row.extend(c.ranked.iter().map(|n| n.map_or_else(String::new, |n| n.to_string())));
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    crate::export::csv_text(&header, &rows)
}

/// The "Queries" cell: N, and "(of M)" with each system's own count when the systems ranked different queries.
fn query_count(ui: &mut egui::Ui, common: &CommonMeans, systems: &[SystemKind]) {
    let largest = common.ranked.iter().flatten().copied().max().unwrap_or(0);
    if !common.narrowed() {
        ui.label(common.queries.to_string()).on_hover_text("Every shown system ranked these queries");
        return;
    }
    let counts: Vec<String> = systems
        .iter()
        .zip(&common.ranked)
        .map(|(s, n)| match n {
            Some(n) => format!("{}: {n}", s.name()),
            None => format!("{}: not ranked yet", s.name()),
        })
        .collect();
    ui.label(RichText::new(format!("{} (of {largest})", common.queries)).color(ui.visuals().warn_fg_color))
        .on_hover_text(format!("Means over the {} queries every shown system ranked. Queries ranked per system: {}", common.queries, counts.join(", ")));
}

/// `*` (p < 0.05) or `**` (p < 0.01), green when better than the reference, red when worse.
fn significance_mark(ui: &mut egui::Ui, mark: &Mark, reference: &SystemKind, system: &SystemKind, metric: &str) {
    let stars = if mark.p_value < 0.01 {
        "**"
    } else if mark.p_value < 0.05 {
        "*"
    } else {
        "n.s."
    };
    let color = match (stars, mark.statistic > 0.0) {
        ("n.s.", _) => ui.visuals().weak_text_color(),
        (_, true) => Color32::from_rgb(52, 168, 83),
        (_, false) => Color32::from_rgb(219, 68, 55),
    };
    ui.label(RichText::new(stars).strong().color(color)).on_hover_text(format!(
        "{} vs {}: mean {metric} difference {:+.3}, p = {:.4} ({})",
        system.name(),
        reference.name(),
        mark.statistic,
        mark.p_value,
        mark.source
    ));
}

fn significance_note(ui: &mut egui::Ui, state: &Option<RunState<Arc<SignificanceTable>>>, cx: &PanelContext<'_>, systems: &[SystemKind]) {
    let reference = systems.first().map_or("the leftmost system", |s| s.name());
    let experiment = systems.iter().filter(|s| matches!(s, SystemKind::Experiment(_))).count() >= 2 && cx.workspace.experiment_runs().is_some();
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
    if experiment {
        ui.label(RichText::new("Experiment systems: marks where the experiment tested the pair (NDCG@10, test and test_unseen splits)").weak());
    }
}

impl RankingsPanel {
    /// "Experiment:" path field, "Open experiment…" (folder dialog), "Load", and the loaded experiment's state.
    fn experiment_row(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        if let Some(promise) = self.dialog.take() {
            match promise.try_take() {
                Ok(Some(dir)) => {
                    self.experiment_input = dir.display().to_string();
                    cx.requests.push(AppRequest::LoadExperiment(dir));
                }
                Ok(None) => {
                    self.dialog_note = Some("No folder chosen. If no dialog appeared, this system has no file-dialog portal or zenity: type the path and press Load.".into());
                }
                Err(promise) => self.dialog = Some(promise),
            }
        }
        if self.experiment_input.is_empty() {
            let known = cx.workspace.experiment.as_ref().map(|(dir, _)| dir.clone()).or_else(|| cx.settings.rankings.experiment_dir.clone());
            if let Some(dir) = known {
                self.experiment_input = dir.display().to_string();
            }
        }
        ui.horizontal(|ui| {
            let label = ui.label("Experiment:").on_hover_text("An `r2r experiment --out DIR` directory: its runs/<system>.<split>.trec files become systems");
            let field = ui.add(egui::TextEdit::singleline(&mut self.experiment_input).hint_text("DIR of r2r experiment --out DIR").desired_width(360.0)).labelled_by(label.id);
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Load").on_hover_text("Read the directory's run files").clicked() || enter) && !self.experiment_input.trim().is_empty() {
                cx.requests.push(AppRequest::LoadExperiment(PathBuf::from(self.experiment_input.trim())));
            }
            if ui.add_enabled(self.dialog.is_none(), egui::Button::new("Open experiment…")).clicked() {
                let start = cx.settings.rankings.experiment_dir.clone();
                match widgets::spawn_folder_dialog(ui.ctx(), "Open an experiment directory", start) {
                    Ok(promise) => {
                        self.dialog = Some(promise);
                        self.dialog_note = None;
                    }
                    Err(err) => self.dialog_note = Some(format!("Cannot open a folder dialog: {err}")),
                }
            }
            match &cx.workspace.experiment {
                Some((_, RunState::Computing(_))) => {
                    ui.spinner();
                    ui.label("reading run files …");
                }
                Some((_, RunState::Ready(runs))) => {
                    ui.label(RichText::new(format!("{} systems from run files", runs.runs.len())).weak());
                }
                _ => {}
            }
        });
        if let Some(note) = &self.dialog_note {
            ui.label(RichText::new(note).weak());
        }
        match &cx.workspace.experiment {
            Some((dir, RunState::Failed(message))) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("Could not open the experiment {}: {message}", dir.display()));
            }
            Some((_, RunState::Ready(runs))) => experiment_problems(ui, runs),
            _ => {}
        }
    }
}

/// Run files that could not be used (file and line) and notes, in a collapsible list.
fn experiment_problems(ui: &mut egui::Ui, runs: &ExperimentRuns) {
    if runs.problems.is_empty() && runs.notes.is_empty() {
        return;
    }
    let title = format!("{} problems, {} notes", runs.problems.len(), runs.notes.len());
    egui::CollapsingHeader::new(title).id_salt("experiment_problems").default_open(!runs.problems.is_empty()).show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt("experiment_problem_list").max_height(70.0).show(ui, |ui| {
            for problem in &runs.problems {
                ui.colored_label(ui.visuals().error_fg_color, problem);
            }
            for note in &runs.notes {
                ui.label(RichText::new(note).weak());
            }
        });
    });
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
    let rankings: Vec<_> = systems.iter().map(|s| workspace.run_for(s, group.split).map(|r| r.rankings.get(&group.id))).collect();
    let reference_ranks = rankings.first().copied().flatten().flatten().map(|r| r.rank_of());
    let title = metric_title(metric);
    ui.columns(systems.len(), |columns| {
        for (i, (column, system)) in columns.iter_mut().zip(systems).enumerate() {
            let layout = egui::Layout::top_down(egui::Align::LEFT);
            column.scope_builder(egui::UiBuilder::new().id_salt(("ranking_column", i)).layout(layout), |ui| {
                ui.label(RichText::new(system.name()).strong().color(SYSTEM_COLORS[i % MAX_SYSTEMS])).on_hover_text(system.description());
                match rankings[i] {
                    Some(Some(ranking)) => {
                        ui.horizontal(|ui| {
                            ui.label(format!("{title} of this query: {:.3}", ranking.metric(metric))).on_hover_text(widgets::metric_help(&title));
                            if ui.small_button("Copy list").on_hover_text("Copy this ranked list (rank, candidate, relevance, score, text) as tab-separated text").clicked() {
                                ui.ctx().copy_text(widgets::ranking_tsv(group, ranking));
                            }
                        });
                        let reference = match (i, &reference_ranks) {
                            (0, _) | (_, None) => None,
                            (_, Some(ranks)) => Some((ranks.as_slice(), systems[0].name())),
                        };
                        widgets::ranked_list(ui, ("ranking_list", i), group, ranking, reference);
                    }
                    Some(None) => {
                        ui.label(RichText::new("This query is not in the system's run files.").weak());
                    }
                    None => match workspace.state_for(system, group.split) {
                        Some(RunState::Failed(message)) => {
                            ui.colored_label(ui.visuals().error_fg_color, format!("failed: {message}"));
                        }
                        _ => {
                            ui.horizontal(|ui| {
                                ui.spinner();
                                ui.label("ranking …");
                            });
                        }
                    },
                }
            });
        }
    });
}
