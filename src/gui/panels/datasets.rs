//! Datasets panel: open a file or folder (native dialog, typed path or drag and
//! drop), see the load run in the background, per-domain statistics, and browse
//! queries with their candidates and relevance labels. Load errors name the file,
//! line and field, and the app stays up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use egui::RichText;
use poll_promise::Promise;

use super::PanelContext;
use crate::data::stats::SplitStats;
use crate::data::QueryGroup;
use crate::gui::state::{AppRequest, LoadedDataset};
use crate::gui::widgets::{self, QueryPicker};

/// Header and tooltip of each statistics column.
const STAT_COLUMNS: [(&str, &str); 10] = [
    ("Domain", "The query's primary domain (the routing label)"),
    ("Split", "train / dev / test / test_unseen (test queries whose entities never occur in training)"),
    ("Queries", "Number of query groups"),
    ("Candidates", "Candidate passages over all query groups"),
    ("Cand./query", "Mean candidates per query"),
    ("Pos./query", "Mean relevant candidates (relevance ≥ 1) per query"),
    ("Cross-domain", "Queries that also touch a secondary domain"),
    ("Query words", "Mean words per query"),
    ("Passage words", "Mean words per candidate passage"),
    ("Entities/100 words", "Gold entity mentions per 100 words (queries and passages); '—' when the data has no gold spans"),
];

/// A file dialog running on its own thread: `Some(path)` chosen, `None` cancelled or unavailable.
struct PendingDialog {
    promise: Promise<Option<PathBuf>>,
    folder: bool,
}

#[derive(Default)]
pub struct DatasetsPanel {
    path_input: String,
    dialog: Option<PendingDialog>,
    dialog_note: Option<String>,
    picker: QueryPicker,
    stats_per_split: bool,
}

impl DatasetsPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        self.poll_dialog(ui.ctx(), cx);
        if self.path_input.is_empty() {
            // Show the path the app opened by itself (command line, sample data).
            let workspace = cx.workspace;
            let current = workspace.loading.as_ref().map(|(_, p)| p).or(workspace.dataset.as_ref().map(|d| &d.path));
            if let Some(path) = current.or(workspace.load_failure.as_ref().map(|f| &f.path)) {
                self.path_input = path.display().to_string();
            }
        }
        self.toolbar(ui, cx);
        let workspace = cx.workspace;
        if let Some((_, path)) = &workspace.loading {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Loading {} …", path.display()));
            });
        }
        if let Some(failure) = &workspace.load_failure {
            if widgets::load_error_box(ui, failure) {
                cx.requests.push(AppRequest::DismissLoadError);
            }
        }
        let Some(loaded) = workspace.dataset.clone() else {
            if workspace.loading.is_none() && workspace.load_failure.is_none() {
                ui.add_space(16.0);
                ui.label("No dataset loaded. Open a file or folder, type a path, or drop a file onto the window.");
            }
            return;
        };
        self.summary(ui, &loaded);
        egui::CollapsingHeader::new("Per-domain statistics").default_open(true).show(ui, |ui| {
            ui.checkbox(&mut self.stats_per_split, "One row per split");
            egui::ScrollArea::vertical()
                .id_salt("stats_scroll")
                .max_height(220.0)
                .show(ui, |ui| stats_grid(ui, &loaded, self.stats_per_split));
        });
        ui.separator();
        self.browser(ui, &loaded, cx);
    }

    fn toolbar(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        ui.horizontal_wrapped(|ui| {
            let busy = self.dialog.is_some();
            if ui.add_enabled(!busy, egui::Button::new("Open file…")).on_hover_text("Choose a JSONL file (native or FlagEmbedding, .xz accepted)").clicked() {
                self.open_dialog(ui.ctx(), false, cx.settings.last_dialog_dir.clone());
            }
            if ui.add_enabled(!busy, egui::Button::new("Open folder…")).on_hover_text("Choose a BEIR directory or a folder of JSONL files").clicked() {
                self.open_dialog(ui.ctx(), true, cx.settings.last_dialog_dir.clone());
            }
            ui.separator();
            let label = ui.label("Path:");
            let edit = ui.add(
                egui::TextEdit::singleline(&mut self.path_input)
                    .hint_text("file or folder to load")
                    .desired_width(420.0),
            );
            let edit = edit.labelled_by(label.id);
            let submitted = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let load = ui.add_enabled(!self.path_input.trim().is_empty(), egui::Button::new("Load"));
            if (load.clicked() || submitted) && !self.path_input.trim().is_empty() {
                cx.requests.push(AppRequest::LoadDataset(PathBuf::from(self.path_input.trim())));
            }
            if !cx.settings.recent_datasets.is_empty() {
                ui.separator();
                let label = ui.label("Recent:");
                ui.label_inputs_by(label.id, |ui| {
                    egui::ComboBox::from_id_salt("recent_datasets").selected_text("reopen…").width(140.0).show_ui(ui, |ui| {
                        for path in cx.settings.recent_datasets.clone() {
                            if ui.selectable_label(false, path.display().to_string()).clicked() {
                                self.path_input = path.display().to_string();
                                cx.requests.push(AppRequest::LoadDataset(path));
                            }
                        }
                    })
                });
            }
        });
        if self.dialog.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Waiting for the file dialog …");
            });
        }
        if let Some(note) = &self.dialog_note {
            ui.label(RichText::new(note).weak());
        }
    }

    fn open_dialog(&mut self, ctx: &egui::Context, folder: bool, start_dir: Option<PathBuf>) {
        let (sender, promise) = Promise::new();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new().name("file-dialog".into()).spawn(move || {
            let mut dialog = rfd::FileDialog::new().set_title(if folder { "Open a dataset folder" } else { "Open a dataset file" });
            if let Some(dir) = start_dir.filter(|d| d.is_dir()) {
                dialog = dialog.set_directory(dir);
            }
            let picked = if folder {
                dialog.pick_folder()
            } else {
                dialog.add_filter("JSON lines", &["jsonl", "xz"]).add_filter("All files", &["*"]).pick_file()
            };
            sender.send(picked);
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => {
                self.dialog = Some(PendingDialog { promise, folder });
                self.dialog_note = None;
            }
            Err(err) => self.dialog_note = Some(format!("Cannot open a file dialog: {err}")),
        }
    }

    fn poll_dialog(&mut self, ctx: &egui::Context, cx: &mut PanelContext<'_>) {
        let Some(pending) = self.dialog.take() else { return };
        match pending.promise.try_take() {
            Ok(Some(path)) => {
                cx.settings.last_dialog_dir = path.parent().map(|d| d.to_path_buf());
                self.path_input = path.display().to_string();
                cx.requests.push(AppRequest::LoadDataset(path));
            }
            Ok(None) => {
                self.dialog_note = Some(
                    "No path chosen. If no dialog appeared, this system has neither a desktop file-dialog portal nor \
                     zenity: type a path above or drop a file onto the window instead."
                        .into(),
                );
            }
            Err(promise) => {
                ctx.request_repaint_after(Duration::from_millis(250));
                self.dialog = Some(PendingDialog { promise, folder: pending.folder });
            }
        }
    }

    fn summary(&mut self, ui: &mut egui::Ui, loaded: &LoadedDataset) {
        let queries = loaded.dataset.groups.len();
        let candidates: usize = loaded.dataset.groups.iter().map(|g| g.candidates.len()).sum();
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(loaded.path.display().to_string()).strong());
            ui.label(format!(
                "{}  ·  {queries} queries, {candidates} candidates in {}  ·  loaded in {:.2} s",
                loaded.format,
                widgets::plural(loaded.stats.len(), "domain"),
                loaded.load_seconds
            ));
        });
    }

    fn browser(&mut self, ui: &mut egui::Ui, loaded: &Arc<LoadedDataset>, cx: &mut PanelContext<'_>) {
        self.picker.sync(ui, loaded, cx.selection);
        egui::Panel::left("datasets_query_list").resizable(true).default_size(430.0).size_range(260.0..=700.0).show(ui, |ui| {
            self.picker.show(ui, "datasets", loaded);
        });
        egui::CentralPanel::no_frame().show(ui, |ui| {
            ui.add_space(4.0);
            match self.picker.selected().and_then(|i| loaded.dataset.groups.get(i)) {
                Some(group) => group_detail(ui, group),
                None => {
                    ui.label("No query matches the filter.");
                }
            }
        });
    }
}

fn stats_grid(ui: &mut egui::Ui, loaded: &LoadedDataset, per_split: bool) {
    egui::Grid::new("stats_grid").striped(true).num_columns(STAT_COLUMNS.len()).spacing([14.0, 4.0]).show(ui, |ui| {
        for (name, help) in STAT_COLUMNS {
            let name = if name == "Split" && !per_split { "Splits (queries)" } else { name };
            ui.label(RichText::new(name).strong()).on_hover_text(help);
        }
        ui.end_row();
        for (domain, splits) in &loaded.stats {
            if per_split {
                for (split, s) in splits {
                    stats_row(ui, domain, split.as_str(), s);
                }
            } else {
                let split_counts: Vec<String> = splits.iter().map(|(split, s)| format!("{split} {}", s.queries)).collect();
                stats_row(ui, domain, &split_counts.join(" · "), &domain_totals(splits.values()));
            }
        }
    });
}

/// One domain's statistics over all its splits (means weighted by their counts).
fn domain_totals<'a>(splits: impl Iterator<Item = &'a SplitStats>) -> SplitStats {
    let mut total = SplitStats::default();
    let (mut query_words, mut passage_words, mut entities) = (0.0, 0.0, 0.0);
    for s in splits {
        let words = s.mean_query_words * s.queries as f64 + s.mean_passage_words * s.candidates as f64;
        total.queries += s.queries;
        total.candidates += s.candidates;
        total.positives += s.positives;
        total.cross_domain_queries += s.cross_domain_queries;
        total.annotated |= s.annotated;
        query_words += s.mean_query_words * s.queries as f64;
        passage_words += s.mean_passage_words * s.candidates as f64;
        entities += s.entities_per_100_words * words / 100.0;
    }
    total.mean_query_words = query_words / total.queries.max(1) as f64;
    total.mean_passage_words = passage_words / total.candidates.max(1) as f64;
    total.entities_per_100_words = 100.0 * entities / (query_words + passage_words).max(1.0);
    total
}

fn stats_row(ui: &mut egui::Ui, domain: &str, split: &str, s: &SplitStats) {
    let per_query = |n: usize| n as f64 / s.queries.max(1) as f64;
    ui.label(domain);
    ui.label(split);
    ui.label(s.queries.to_string());
    ui.label(s.candidates.to_string());
    ui.label(format!("{:.1}", per_query(s.candidates)));
    ui.label(format!("{:.2}", per_query(s.positives)));
    ui.label(s.cross_domain_queries.to_string());
    ui.label(format!("{:.1}", s.mean_query_words));
    ui.label(format!("{:.1}", s.mean_passage_words));
    ui.label(if s.annotated { format!("{:.2}", s.entities_per_100_words) } else { "—".into() });
    ui.end_row();
}

fn group_detail(ui: &mut egui::Ui, group: &QueryGroup) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(&group.id).strong().monospace());
        ui.label(format!("domain {}", group.domain));
        ui.label(format!("split {}", group.split));
        if let Some(second) = &group.secondary_domain {
            ui.label(format!("also touches {second}"));
        }
        for (key, value) in &group.meta {
            ui.label(RichText::new(format!("{key}: {value}")).weak());
        }
    });
    ui.add(egui::Label::new(RichText::new(&group.query).size(16.0)).wrap().selectable(true));
    let positives = group.positives().count();
    ui.label(RichText::new(format!("{} candidates, {positives} relevant", group.candidates.len())).weak());
    ui.separator();
    egui::ScrollArea::vertical().id_salt("datasets_candidates").auto_shrink([false, false]).show(ui, |ui| {
        for cand in &group.candidates {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.horizontal(|ui| {
                    widgets::relevance_badge(ui, cand.relevance);
                    ui.label(RichText::new(&cand.id).monospace().weak());
                    if !cand.entities.is_empty() {
                        ui.label(RichText::new(format!("{} gold entities", cand.entities.len())).weak());
                    }
                });
                ui.add(egui::Label::new(&cand.text).wrap().selectable(true));
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_totals_weight_means_by_counts() {
        let train = SplitStats {
            queries: 3,
            candidates: 30,
            positives: 3,
            mean_query_words: 10.0,
            mean_passage_words: 100.0,
            entities_per_100_words: 2.0, // 2 per 100 of 3030 words = 60.6 entities
            annotated: true,
            ..Default::default()
        };
        let test = SplitStats {
            queries: 1,
            candidates: 10,
            positives: 2,
            cross_domain_queries: 1,
            mean_query_words: 6.0,
            mean_passage_words: 50.0,
            entities_per_100_words: 0.0,
            annotated: false,
        };
        let total = domain_totals([&train, &test].into_iter());
        assert_eq!((total.queries, total.candidates, total.positives, total.cross_domain_queries), (4, 40, 5, 1));
        assert!((total.mean_query_words - 36.0 / 4.0).abs() < 1e-12);
        assert!((total.mean_passage_words - 3500.0 / 40.0).abs() < 1e-12);
        assert!((total.entities_per_100_words - 100.0 * 60.6 / 3536.0).abs() < 1e-9);
        assert!(total.annotated);
    }
}
