//! Small widgets shared by several panels: the keyboard-navigable query list,
//! relevance badges, the load-error box, empty states, metric explanations, the
//! ranked candidate list (Rankings and Router panels) and a folder dialog.

use egui::{Color32, RichText};

use crate::data::{Dataset, QueryGroup, Split};
use crate::gui::systems::Ranking;
use crate::gui::state::LoadFailure;

/// Explanations shown as tooltips wherever a metric appears.
pub fn metric_help(metric: &str) -> &'static str {
    match metric {
        "NDCG@10" => {
            "Normalised discounted cumulative gain of the top 10: relevant candidates count more the higher they rank \
             (gain = relevance, discount = 1/log2(rank+1)), divided by the best achievable value. 1 = ideal order; \
             random order on 1-of-16 data gives about 0.3."
        }
        "MRR@10" => "Mean reciprocal rank: 1 / rank of the first relevant candidate within the top 10 (0 below), averaged over queries.",
        "Recall@10" => "Share of a query's relevant candidates that appear in the top 10, averaged over queries.",
        "Accuracy" => "Share of queries routed to their true domain.",
        "Macro-F1" => "F1 score of each domain (class), averaged with equal weight per domain.",
        _ => "",
    }
}

/// A compact coloured mark for a candidate's relevance label.
pub fn relevance_badge(ui: &mut egui::Ui, relevance: u32) -> egui::Response {
    let (text, color) = if relevance > 0 {
        (format!("rel {relevance}"), Color32::from_rgb(40, 150, 70))
    } else {
        ("rel 0".to_string(), ui.visuals().weak_text_color())
    };
    let text = RichText::new(text).monospace().strong().color(if relevance > 0 { Color32::WHITE } else { color });
    let text = if relevance > 0 { text.background_color(color) } else { text };
    ui.label(text).on_hover_text(if relevance > 0 {
        format!("Relevant (graded relevance {relevance})")
    } else {
        "Not relevant (relevance 0)".to_string()
    })
}

/// A system's ranking of one query: one row per candidate, best first, with its
/// rank, relevance badge, score and (with `reference`: the reference system's
/// rank of each candidate and its name) an arrow for its movement; relevant rows
/// are tinted. Scrolls on its own (`id_salt` keeps columns apart).
pub fn ranked_list(ui: &mut egui::Ui, id_salt: impl std::hash::Hash + std::fmt::Debug, group: &QueryGroup, ranking: &Ranking, reference: Option<(&[usize], &str)>) {
    let missing = ranking.scores.iter().filter(|s| **s == f32::NEG_INFINITY).count();
    if missing > 0 {
        ui.label(RichText::new(format!("{missing} candidates are not in the run file: ranked last (score −∞)")).color(ui.visuals().warn_fg_color));
    }
    egui::ScrollArea::vertical().id_salt(id_salt).auto_shrink([false, false]).show(ui, |ui| {
        for (rank, &cand) in ranking.order.iter().enumerate() {
            ranked_row(ui, group, ranking, rank, cand, reference);
        }
    });
}

fn ranked_row(ui: &mut egui::Ui, group: &QueryGroup, ranking: &Ranking, rank: usize, cand: usize, reference: Option<(&[usize], &str)>) {
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
            relevance_badge(ui, candidate.relevance);
            let score = ranking.scores[cand];
            if score == f32::NEG_INFINITY {
                ui.label(RichText::new("−∞").monospace()).on_hover_text("Not in the run file: ranked last");
            } else {
                ui.label(RichText::new(format!("{score:.3}")).monospace()).on_hover_text("The system's score (higher ranks first)");
            }
            if let Some((reference, name)) = reference {
                movement_label(ui, reference[cand], rank, name);
            }
        });
        ui.add(egui::Label::new(preview(&candidate.text, 150)).wrap()).on_hover_text(format!("{}\n\n{}", candidate.id, candidate.text));
    });
}

/// ↑n / ↓n / = : how far a candidate moved compared with the reference system.
pub fn movement_label(ui: &mut egui::Ui, reference_rank: usize, rank: usize, reference_name: &str) {
    let (text, color) = match reference_rank.cmp(&rank) {
        std::cmp::Ordering::Greater => (format!("↑{}", reference_rank - rank), Color32::from_rgb(52, 168, 83)),
        std::cmp::Ordering::Less => (format!("↓{}", rank - reference_rank), Color32::from_rgb(219, 68, 55)),
        std::cmp::Ordering::Equal => ("=".to_string(), ui.visuals().weak_text_color()),
    };
    ui.label(RichText::new(text).strong().color(color)).on_hover_text(format!("Rank {} under {reference_name} → rank {} here", reference_rank + 1, rank + 1));
}

/// A native folder dialog on its own thread (it blocks while open); the promise
/// holds `None` when the user cancelled or no dialog could be shown.
pub fn spawn_folder_dialog(ctx: &egui::Context, title: &str, start_dir: Option<std::path::PathBuf>) -> std::io::Result<poll_promise::Promise<Option<std::path::PathBuf>>> {
    let (sender, promise) = poll_promise::Promise::new();
    let ctx = ctx.clone();
    let title = title.to_string();
    std::thread::Builder::new().name("folder-dialog".into()).spawn(move || {
        let mut dialog = rfd::FileDialog::new().set_title(title);
        if let Some(dir) = start_dir.filter(|d| d.is_dir()) {
            dialog = dialog.set_directory(dir);
        }
        sender.send(dialog.pick_folder());
        ctx.request_repaint();
    })?;
    Ok(promise)
}

/// A framed, red-accented box explaining why a dataset could not be loaded.
/// Returns true when the user dismissed it.
pub fn load_error_box(ui: &mut egui::Ui, failure: &LoadFailure) -> bool {
    let stroke = egui::Stroke::new(1.5, ui.visuals().error_fg_color);
    let mut dismissed = false;
    egui::Frame::group(ui.style()).stroke(stroke).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.horizontal(|ui| {
            ui.label(RichText::new("Could not load the dataset").strong().color(ui.visuals().error_fg_color));
            dismissed = ui.small_button("Dismiss").on_hover_text("Hide this message").clicked();
        });
        egui::Grid::new("load_error_grid").num_columns(2).spacing([12.0, 4.0]).show(ui, |ui| {
            let row = |ui: &mut egui::Ui, name: &str, value: String| {
                ui.label(RichText::new(name).strong());
                ui.add(egui::Label::new(value).wrap());
                ui.end_row();
            };
            match &failure.data_error {
                Some(err) => {
                    row(ui, "File", err.file.display().to_string());
                    // Line and field only where the error has them (a missing file has neither).
                    if let Some(line) = err.line {
                        row(ui, "Line", format!("line {line}"));
                    }
                    if let Some(field) = &err.field {
                        row(ui, "Field", field.clone());
                    }
                    row(ui, "Problem", err.message.clone());
                }
                None => {
                    row(ui, "Path", failure.path.display().to_string());
                    row(ui, "Problem", failure.message.clone());
                }
            }
        });
        ui.label(RichText::new("The previously loaded dataset (if any) stays open.").weak());
    });
    dismissed
}

/// "1 domain", "3 domains".
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// The message panels show while a part of the engine they need does not exist yet.
pub fn not_available(ui: &mut egui::Ui, title: &str, needs: &str, will_show: &[&str]) {
    ui.add_space(24.0);
    ui.vertical_centered(|ui| {
        ui.heading(title);
        ui.add_space(8.0);
        ui.label(RichText::new(format!("Not available yet: {needs}.")).strong());
        ui.add_space(8.0);
        ui.label("This panel will show:");
    });
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let indent = (ui.available_width() - 560.0).max(0.0) / 2.0;
        ui.add_space(indent);
        ui.vertical(|ui| {
            ui.set_max_width(560.0);
            for item in will_show {
                ui.label(format!("•  {item}"));
            }
        });
    });
}

/// A one-line preview of a text (first `max_chars` characters, whitespace collapsed).
pub fn preview(text: &str, max_chars: usize) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= max_chars {
        collapsed
    } else {
        let cut: String = collapsed.chars().take(max_chars.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

/// Which query groups a list shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryFilter {
    pub domain: Option<String>,
    pub split: Option<Split>,
    pub search: String,
}

impl QueryFilter {
    /// Indices of the groups that pass the filter, in dataset order.
    pub fn apply(&self, dataset: &Dataset) -> Vec<usize> {
        dataset.groups.iter().enumerate().filter(|(_, g)| self.apply_one(g)).map(|(i, _)| i).collect()
    }

    /// Whether one group passes the filter.
    pub fn apply_one(&self, group: &crate::data::QueryGroup) -> bool {
        let needle = self.search.trim().to_lowercase();
        self.domain.as_ref().is_none_or(|d| &group.domain == d)
            && self.split.is_none_or(|s| group.split == s)
            && (needle.is_empty() || group.query.to_lowercase().contains(&needle) || group.id.to_lowercase().contains(&needle))
    }
}

/// Combo boxes for a domain and a split filter ("all" = `None`), each after its label.
pub fn filter_combos(ui: &mut egui::Ui, id: &str, domains: &[String], filter: &mut QueryFilter, allow_all_splits: bool) {
    let label = ui.label("Domain:");
    ui.label_inputs_by(label.id, |ui| {
        egui::ComboBox::from_id_salt(format!("{id}_domain"))
            .selected_text(filter.domain.clone().unwrap_or_else(|| "all domains".into()))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut filter.domain, None, "all domains");
                for domain in domains {
                    ui.selectable_value(&mut filter.domain, Some(domain.clone()), domain);
                }
            })
    });
    let label = ui.label("Split:");
    ui.label_inputs_by(label.id, |ui| {
        egui::ComboBox::from_id_salt(format!("{id}_split"))
            .selected_text(filter.split.map_or("all splits", Split::as_str))
            .show_ui(ui, |ui| {
                if allow_all_splits {
                    ui.selectable_value(&mut filter.split, None, "all splits");
                }
                for split in Split::ALL {
                    ui.selectable_value(&mut filter.split, Some(split), split.as_str());
                }
            })
    });
}

/// A scrolling list of query groups that only lays out the visible rows and
/// follows keyboard navigation (↑/↓, Page Up/Down, Home/End).
#[derive(Default)]
pub struct QueryList {
    scroll_to: Option<usize>,
    /// A dataset index to scroll to (selected from another panel).
    pending_index: Option<usize>,
    view_height: f32,
}

impl QueryList {
    /// Moves the selection with the keyboard when no text field has focus.
    /// Returns true when the selection changed.
    pub fn handle_keys(&mut self, ui: &egui::Ui, rows: &[usize], selected: &mut Option<usize>) -> bool {
        if rows.is_empty() || ui.memory(|m| m.focused().is_some()) {
            return false;
        }
        let page = ((self.view_height / 22.0) as usize).max(1);
        let position = selected.and_then(|s| rows.iter().position(|&r| r == s));
        let target = ui.input(|i| {
            let last = rows.len() - 1;
            let current = position.unwrap_or(0);
            if i.key_pressed(egui::Key::ArrowDown) {
                Some(if position.is_none() { 0 } else { (current + 1).min(last) })
            } else if i.key_pressed(egui::Key::ArrowUp) {
                Some(current.saturating_sub(1))
            } else if i.key_pressed(egui::Key::PageDown) {
                Some((current + page).min(last))
            } else if i.key_pressed(egui::Key::PageUp) {
                Some(current.saturating_sub(page))
            } else if i.key_pressed(egui::Key::Home) {
                Some(0)
            } else if i.key_pressed(egui::Key::End) {
                Some(last)
            } else {
                None
            }
        });
        match target {
            Some(t) if Some(t) != position => {
                *selected = Some(rows[t]);
                self.scroll_to = Some(t);
                true
            }
            _ => false,
        }
    }

    /// Scrolls to the selected dataset index once the rows are known.
    pub fn scroll_to_row_of(&mut self, index: usize) {
        self.pending_index = Some(index);
    }

    /// Shows the rows; returns true when the user clicked another query.
    pub fn show(&mut self, ui: &mut egui::Ui, id: &str, dataset: &Dataset, rows: &[usize], selected: &mut Option<usize>) -> bool {
        let row_height = ui.spacing().interact_size.y;
        let spacing = ui.spacing().item_spacing.y;
        if let Some(index) = self.pending_index.take() {
            self.scroll_to = rows.iter().position(|&r| r == index).or(self.scroll_to);
        }
        let mut area = egui::ScrollArea::vertical().id_salt(id).auto_shrink([false, false]);
        if let Some(target) = self.scroll_to.take() {
            let top = target as f32 * (row_height + spacing);
            area = area.vertical_scroll_offset((top - self.view_height / 2.0).max(0.0));
        }
        let mut changed = false;
        let output = area.show_rows(ui, row_height, rows.len(), |ui, range| {
            ui.with_layout(egui::Layout::top_down_justified(egui::Align::LEFT), |ui| {
                for &index in &rows[range] {
                    let group = &dataset.groups[index];
                    let text = format!("{}  ·  {}", group.id, preview(&group.query, 90));
                    let button = egui::Button::selectable(*selected == Some(index), text).truncate();
                    let response = ui.add(button.min_size(egui::vec2(0.0, row_height)));
                    if response.clicked() {
                        *selected = Some(index);
                        changed = true;
                    }
                    response.on_hover_text(format!("{} ({}, {})\n{}", group.id, group.domain, group.split, group.query));
                }
            });
        });
        self.view_height = output.inner_rect.height();
        changed
    }
}

/// A filtered, keyboard-navigable query list whose selection is shared with
/// other panels through the app's [`SharedSelection`](crate::gui::state::SharedSelection)
/// (the query id), so choosing a query in one panel shows it in the others.
#[derive(Default)]
pub struct QueryPicker {
    pub filter: QueryFilter,
    rows: Vec<usize>,
    rows_key: Option<(usize, QueryFilter)>,
    selected: Option<usize>,
    list: QueryList,
    /// The shared id this picker last agreed with.
    synced: Option<String>,
}

impl QueryPicker {
    /// Refreshes the rows and follows a selection made in another panel
    /// (clearing the filter when it hides that query). Call once a frame before drawing.
    pub fn sync(&mut self, ui: &egui::Ui, loaded: &std::sync::Arc<crate::gui::state::LoadedDataset>, shared: &mut crate::gui::state::SharedSelection) {
        let dataset = &loaded.dataset;
        let ptr = std::sync::Arc::as_ptr(loaded) as usize;
        let dataset_changed = self.rows_key.as_ref().is_none_or(|(p, _)| *p != ptr);
        if dataset_changed {
            self.filter.domain = self.filter.domain.take().filter(|d| loaded.stats.contains_key(d));
            self.selected = None;
            self.synced = None;
        }
        if shared.query != self.synced {
            if let Some(index) = shared.query.as_ref().and_then(|id| dataset.groups.iter().position(|g| &g.id == id)) {
                if !self.filter.apply_one(&dataset.groups[index]) {
                    self.filter = QueryFilter::default();
                }
                self.selected = Some(index);
                self.list.scroll_to_row_of(index);
            }
            self.synced = shared.query.clone();
        }
        let key = (ptr, self.filter.clone());
        if self.rows_key.as_ref() != Some(&key) {
            self.rows = self.filter.apply(dataset);
            self.rows_key = Some(key);
            if self.selected.is_none_or(|s| !self.rows.contains(&s)) {
                self.selected = self.rows.first().copied();
            }
        }
        self.list.handle_keys(ui, &self.rows, &mut self.selected);
        let current = self.selected.and_then(|i| dataset.groups.get(i)).map(|g| g.id.clone());
        if current != self.synced {
            shared.query = current.clone();
            self.synced = current;
        }
    }

    /// The domain/split filters, a search field and the list.
    pub fn show(&mut self, ui: &mut egui::Ui, id: &str, loaded: &crate::gui::state::LoadedDataset) {
        let dataset = &loaded.dataset;
        ui.horizontal_wrapped(|ui| {
            let domains: Vec<String> = loaded.stats.keys().cloned().collect();
            filter_combos(ui, id, &domains, &mut self.filter, true);
        });
        ui.horizontal(|ui| {
            let label = ui.label("Search:");
            ui.add(egui::TextEdit::singleline(&mut self.filter.search).hint_text("words in the query or its id").desired_width(f32::INFINITY))
                .labelled_by(label.id);
        });
        ui.label(RichText::new(format!("{} of {} queries  (↑/↓ to move)", self.rows.len(), dataset.groups.len())).weak());
        self.list.show(ui, &format!("{id}_queries"), dataset, &self.rows, &mut self.selected);
    }

    /// The selected group's index in the dataset.
    pub fn selected(&self) -> Option<usize> {
        self.selected
    }
}

/// A "Save … CSV" button: writes `csv()` as a new file `<stem>.csv` into `dir`
/// and leaves where it went (or why it could not) in `note`.
pub fn save_csv_button(ui: &mut egui::Ui, label: &str, dir: &std::path::Path, stem: &str, note: &mut Option<String>, csv: impl FnOnce() -> String) {
    if ui.button(label).on_hover_text(format!("Write this table as a CSV file into {}", dir.display())).clicked() {
        *note = Some(match crate::export::write_new_file(dir, stem, "csv", csv().as_bytes()) {
            Ok(path) => format!("Saved {}", path.display()),
            Err(err) => format!("Could not save the CSV: {err:#}"),
        });
    }
}

/// A ranked list as tab-separated text (rank, candidate id, relevance, score, text), for the clipboard.
pub fn ranking_tsv(group: &QueryGroup, ranking: &Ranking) -> String {
    let mut out = format!("# {}\t{}\nrank\tcandidate\trelevance\tscore\ttext\n", group.id, group.query);
    for (rank, &cand) in ranking.order.iter().enumerate() {
        let c = &group.candidates[cand];
        let text = c.text.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push_str(&format!("{}\t{}\t{}\t{}\t{}\n", rank + 1, c.id, c.relevance, ranking.scores[cand], text));
    }
    out
}

/// "Save PNG" of a plot or chart: asks the integration for a screenshot of the window and writes
/// the shown rectangle of it as a new PNG file; the result (or why not) arrives on a later frame
/// through [`PngExport::take_note`].
#[derive(Default)]
pub struct PngExport {
    note: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl PngExport {
    /// A button that saves `rect` (of the current frame) into `dir` as `<stem>-N.png`.
    pub fn button(&self, ui: &mut egui::Ui, label: &str, dir: &std::path::Path, stem: &str, rect: egui::Rect) {
        if !ui.button(label).on_hover_text(format!("Write this chart as a PNG file into {}", dir.display())).clicked() {
            return;
        }
        let (note, dir, stem, repaint) = (self.note.clone(), dir.to_path_buf(), stem.to_string(), ui.ctx().clone());
        let pixels_per_point = ui.ctx().pixels_per_point();
        ui.ctx().request_screenshot(move |image| {
            let result = crop_to_png(&image, rect, pixels_per_point).and_then(|png| crate::export::write_new_file(&dir, &stem, "png", &png));
            *note.lock().unwrap_or_else(|e| e.into_inner()) = Some(match result {
                Ok(path) => format!("Saved {}", path.display()),
                Err(err) => format!("Could not save the PNG: {err:#}"),
            });
            repaint.request_repaint();
        });
    }

    /// Where the last PNG went (or why it could not), once.
    pub fn take_note(&self) -> Option<String> {
        self.note.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// The part of a window screenshot under `rect` (points), clamped to the image, as PNG bytes.
pub fn crop_to_png(image: &egui::ColorImage, rect: egui::Rect, pixels_per_point: f32) -> anyhow::Result<Vec<u8>> {
    let [width, height] = image.size;
    let clamp = |v: f32, max: usize| ((v * pixels_per_point).round().max(0.0) as usize).min(max);
    let (x0, x1) = (clamp(rect.min.x, width), clamp(rect.max.x, width));
    let (y0, y1) = (clamp(rect.min.y, height), clamp(rect.max.y, height));
    anyhow::ensure!(x1 > x0 && y1 > y0, "the chart is not on screen (rectangle {rect:?} outside the {width}×{height} window)");
    crate::gui::screenshot::png_bytes(&image.region_by_pixels([x0, y0], [x1 - x0, y1 - y0]))
}

#[cfg(test)]
mod png_tests {
    use super::*;

    #[test]
    fn a_chart_is_cropped_at_the_screen_scale_and_clamped_to_the_window() {
        // A 20×10 window at 2 pixels per point: left half red, right half blue.
        let pixels: Vec<egui::Color32> = (0..10).flat_map(|_| (0..20).map(|x| if x < 10 { egui::Color32::RED } else { egui::Color32::BLUE })).collect();
        let image = egui::ColorImage::new([20, 10], pixels);
        let png = crop_to_png(&image, egui::Rect::from_min_max(egui::pos2(5.0, 0.0), egui::pos2(50.0, 3.0)), 2.0).unwrap();
        let decoded = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(decoded.dimensions(), (10, 6), "x 10..20 (clamped), y 0..6");
        assert!(decoded.pixels().all(|p| p.0 == egui::Color32::BLUE.to_array()));
        let err = crop_to_png(&image, egui::Rect::from_min_max(egui::pos2(30.0, 0.0), egui::pos2(40.0, 3.0)), 2.0).unwrap_err();
        assert!(err.to_string().contains("not on screen"), "{err}");
    }
}
