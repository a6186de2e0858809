//! Abstraction panel: for the chosen query group (shared with the Datasets
//! panel), the original and the abstracted texts side by side, entity spans
//! drawn displaCy-style and coloured by type (hover: type, placeholder,
//! recogniser). Types to mask are toggles, the intensity a slider; both update
//! the preview at once, with per-type counts. Expert corrections go to a user
//! corrections file (saved atomically by the engine, applied at once): select
//! text (or type it) to add it to a type's gazetteer, click a span to mark it
//! not an entity. Where the data has gold spans, a switch shows them with
//! misses and false alarms marked. Engine calls go through `r2r::abstraction`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::{FontId, RichText};

use super::PanelContext;
use crate::abstraction::abstractor::{detect_group, group_domains, group_texts};
use crate::abstraction::{abstract_detected, AbstractedGroup, AbstractionOptions, Abstractor, Corrections, Detection, EntitySchema, RecognizerBuilder, SpanMapEntry};
use crate::data::{EntitySpan, QueryGroup};
use crate::gui::entity_text::{entity_text, source_color, type_color, MarkStyle, SpanMark};
use crate::ner::learned::LearnedRecognizer;
use crate::gui::selection_capture::SelectionCapture;
use crate::gui::state::AbstractionSettings;
use crate::gui::widgets::{self, QueryPicker};

/// The corrections file used when none was chosen: in the app's data directory.
pub fn default_corrections_path() -> PathBuf {
    eframe::storage_dir("R2R Workbench").unwrap_or_default().join("corrections.json")
}

/// The recogniser with the corrections of one file.
struct Engine {
    abstractor: Abstractor,
    path: PathBuf,
    /// Why the file could not be read; edits are refused until it is fixed, so
    /// that a malformed file is never overwritten.
    load_error: Option<String>,
    /// Bumped on every applied correction (invalidates the preview).
    version: u64,
}

impl Engine {
    fn load(path: &Path) -> Result<Engine, String> {
        let schema = EntitySchema::bundled();
        let (corrections, load_error) = if path.exists() {
            match Corrections::load(path, &schema) {
                Ok(corrections) => (corrections, None),
                Err(err) => (Corrections::default(), Some(format!("{err:#}"))),
            }
        } else {
            (Corrections::default(), None)
        };
        let recognizer = RecognizerBuilder::new(schema).corrections(corrections).build().map_err(|e| format!("{e:#}"))?;
        Ok(Engine { abstractor: Abstractor::new(recognizer), path: path.to_path_buf(), load_error, version: 0 })
    }
}

/// What the preview was computed from.
#[derive(Debug, Clone, PartialEq)]
struct PreviewKey {
    dataset: usize,
    group: usize,
    options: AbstractionOptions,
    seed: u64,
    version: u64,
}

/// Every detection of the group's texts (query first) and the abstraction.
struct Preview {
    key: PreviewKey,
    detections: Vec<Vec<Detection>>,
    abstracted: AbstractedGroup,
}

/// A correction asked for by a click or the form.
#[derive(Debug, Clone, PartialEq)]
enum Edit {
    Add { label: String, surface: String },
    /// A click on a span: asks whether to mark it not an entity of its type or of any type.
    AskNotEntity { surface: String, label: String },
    /// The confirmed mark (of `label` only, or of any type when None).
    NotEntity { surface: String, label: Option<String> },
    RemoveAddition { label: String, surface: String },
    RemoveMark { surface: String, label: Option<String> },
}

/// What the user typed into the corrections controls.
#[derive(Default)]
struct CorrectionsForm {
    path_input: String,
    surface: String,
    label: Option<String>,
    /// The last correction's outcome (message, is an error).
    note: Option<(String, bool)>,
    /// A clicked span waiting for confirmation: (surface, its type).
    pending: Option<(String, String)>,
}

#[derive(Default)]
pub struct AbstractionPanel {
    picker: QueryPicker,
    engine: Option<Result<Engine, String>>,
    preview: Option<Preview>,
    gold_mode: bool,
    form: CorrectionsForm,
    miss_search: Option<MissSearch>,
    miss_note: Option<String>,
    /// The pass this panel was last drawn in and where its original texts were.
    shown_pass: u64,
    texts_rect: Option<egui::Rect>,
    /// The learned heads on their backbone, once loaded (in the background).
    learned: Option<Arc<LearnedRecognizer>>,
    learned_load: Option<poll_promise::Promise<Result<Arc<LearnedRecognizer>, String>>>,
    learned_error: Option<String>,
    /// Learned recognition of texts not yet cached, running in the background.
    prefetch: Option<poll_promise::Promise<Result<(), String>>>,
    /// The types the loaded dataset's gold spans judge (gold mode ignores detections of other types),
    /// keyed by the dataset.
    scored_types: Option<(usize, Arc<BTreeSet<String>>)>,
}

/// Groups whose texts the miss search prefetches per background run when the learned heads are on.
const PREFETCH_GROUPS: usize = 16;

impl AbstractionPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, cx: &mut PanelContext<'_>) {
        let Some(loaded) = cx.workspace.dataset.clone() else {
            ui.add_space(16.0);
            ui.label("No dataset loaded: open one in the Datasets panel.");
            return;
        };
        let path = cx.settings.abstraction.corrections_path.clone().unwrap_or_else(default_corrections_path);
        if self.engine.as_ref().is_none_or(|e| e.as_ref().map_or(true, |e| e.path != path)) {
            self.engine = Some(Engine::load(&path));
            self.form.path_input = path.display().to_string();
            self.preview = None;
        }
        self.take_selection(ui.ctx());
        self.sync_learned(ui.ctx(), &cx.settings.abstraction);
        self.shown_pass = ui.ctx().cumulative_pass_nr();
        self.picker.sync(ui, &loaded, cx.selection);

        egui::Panel::left("abstraction_query_list").resizable(true).default_size(300.0).size_range(220.0..=600.0).show(ui, |ui| {
            self.picker.show(ui, "abstraction", &loaded);
        });
        let mut edits = Vec::new();
        let engine_slot = self.engine.take();
        egui::CentralPanel::no_frame().show(ui, |ui| {
            ui.add_space(4.0);
            let engine = match &engine_slot {
                Some(Ok(engine)) => engine,
                Some(Err(err)) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("The entity recogniser could not be built: {err}"));
                    return;
                }
                None => return,
            };
            let Some(group_index) = self.picker.selected() else {
                ui.label("No query matches the filter.");
                return;
            };
            let group = &loaded.dataset.groups[group_index];
            let settings = &mut cx.settings.abstraction;
            let options = options_of(settings, engine.abstractor.recognizer().schema());
            let key = PreviewKey { dataset: Arc::as_ptr(&loaded) as usize, group: group_index, options, seed: settings.seed, version: engine.version };
            if self.preview.as_ref().is_none_or(|p| p.key != key) {
                // With learned heads, the group's forward passes run in the background first.
                if let Some(learned) = engine.abstractor.recognizer().learned() {
                    let texts: Vec<String> = group_texts(group).into_iter().map(str::to_string).collect();
                    if !learned.is_cached(&texts) && self.learned_error.is_none() {
                        prefetch_into(&mut self.prefetch, learned.clone(), texts, ui.ctx());
                        ui.horizontal(|ui| {
                            ui.spinner();
                            ui.label("Running the learned entity heads on this group…");
                        });
                        return;
                    }
                }
                self.preview = Some(compute_preview(group, &engine.abstractor, key));
            }
            let dataset_key = Arc::as_ptr(&loaded) as usize;
            if self.scored_types.as_ref().is_none_or(|(k, _)| *k != dataset_key) {
                self.scored_types = Some((dataset_key, Arc::new(crate::abstraction::quality::scored_types(&loaded.dataset).0)));
            }
            let scored = self.scored_types.as_ref().expect("set above").1.clone();
            let preview = self.preview.as_ref().expect("computed above");
            group_header(ui, group);
            let has_gold = has_gold_spans(group);
            self.gold_mode &= has_gold;
            if controls(ui, settings, &mut self.gold_mode, has_gold, self.miss_search.is_some()) {
                self.miss_search = Some(MissSearch { next: group_index + 1, scanned: 0 });
                self.miss_note = None;
            }
            if let Some(search) = &mut self.miss_search {
                let groups = &loaded.dataset.groups;
                let mut found = None;
                let learned_failed = self.learned_error.clone();
                for _ in 0..MISS_SEARCH_SLICE {
                    if search.scanned >= groups.len() {
                        break;
                    }
                    let index = search.next % groups.len();
                    search.next += 1;
                    search.scanned += 1;
                    let candidate = &groups[index];
                    if !has_gold_spans(candidate) {
                        continue;
                    }
                    if let Some(learned) = engine.abstractor.recognizer().learned() {
                        let texts: Vec<String> = group_texts(candidate).into_iter().map(str::to_string).collect();
                        if !learned.is_cached(&texts) && learned_failed.is_none() {
                            // Run the heads on the next groups in the background; resume here after.
                            let ahead: Vec<String> = (0..PREFETCH_GROUPS)
                                .flat_map(|k| group_texts(&groups[(index + k) % groups.len()]).into_iter().map(str::to_string).collect::<Vec<_>>())
                                .collect();
                            search.next -= 1;
                            search.scanned -= 1;
                            prefetch_into(&mut self.prefetch, learned.clone(), ahead, ui.ctx());
                            break;
                        }
                    }
                    let counts = gold_counts(candidate, &detect_group(candidate, engine.abstractor.recognizer()), &scored);
                    if counts.missed + counts.false_alarms > 0 {
                        found = Some((index, counts));
                        break;
                    }
                }
                if let Some((index, counts)) = found {
                    let id = groups[index].id.clone();
                    self.miss_note = Some(format!("{id}: {} missed, {} false alarms", counts.missed, counts.false_alarms));
                    cx.selection.query = Some(id);
                    self.gold_mode = true;
                    self.miss_search = None;
                } else if search.scanned >= groups.len() {
                    self.miss_note = Some(format!("No group has a missed gold span or a false alarm ({} groups checked).", groups.len()));
                    self.miss_search = None;
                } else {
                    ui.ctx().request_repaint();
                }
            }
            let status = if self.learned_load.is_some() {
                LearnedStatus::Loading
            } else if let Some(err) = &self.learned_error {
                LearnedStatus::Failed(err.clone())
            } else if let Some(learned) = engine.abstractor.recognizer().learned() {
                LearnedStatus::On(learned.heads().iter().map(|h| format!("{} (layer {}, threshold {:.2})", h.meta.name, h.meta.layer, h.meta.threshold(&h.meta.types[0]))).collect())
            } else {
                LearnedStatus::Off
            };
            learned_controls(ui, settings, &status, self.prefetch.is_some());
            if let Some(note) = &self.miss_note {
                ui.label(RichText::new(note).weak());
            }
            type_legend(ui, group, engine.abstractor.recognizer().schema(), preview, settings);
            corrections_bar(ui, engine, group, &mut edits, settings, &mut self.form);
            ui.separator();
            self.texts_rect = Some(texts(ui, group, preview, self.gold_mode.then_some(scored.as_ref()), settings.color_by_source, &mut edits));
        });
        self.engine = engine_slot;
        for edit in edits {
            self.apply(edit);
        }
    }

    /// Loads the learned heads in the background when switched on; attaches them to the recogniser when
    /// loaded, detaches them when switched off; applies the threshold.
    fn sync_learned(&mut self, ctx: &egui::Context, settings: &AbstractionSettings) {
        if let Some(promise) = self.learned_load.take() {
            match promise.try_take() {
                Ok(Ok(learned)) => {
                    self.learned = Some(learned);
                    self.learned_error = None;
                }
                Ok(Err(err)) => self.learned_error = Some(err),
                Err(promise) => {
                    self.learned_load = Some(promise);
                    ctx.request_repaint_after(std::time::Duration::from_millis(100));
                }
            }
        }
        if settings.learned && self.learned.is_none() && self.learned_load.is_none() && self.learned_error.is_none() {
            self.learned_load = Some(poll_promise::Promise::spawn_thread("r2r-ner-load", || {
                let heads = crate::ner::bundled_heads().map_err(|e| format!("{e:#}"))?;
                LearnedRecognizer::load(&heads, None).map(Arc::new).map_err(|e| format!("{e:#}"))
            }));
        }
        if !settings.learned {
            self.learned_error = None;
        }
        let wanted = if settings.learned { self.learned.clone() } else { None };
        if let Some(Ok(engine)) = &mut self.engine {
            let current = engine.abstractor.recognizer().learned().cloned();
            if current.as_ref().map(Arc::as_ptr) != wanted.as_ref().map(Arc::as_ptr) {
                engine.abstractor.recognizer_mut().set_learned(wanted.clone());
                engine.version += 1;
            }
            if let Some(learned) = &wanted {
                if learned.threshold_override() != settings.learned_threshold {
                    learned.set_threshold_override(settings.learned_threshold);
                    engine.version += 1;
                }
            }
        }
        if let Some(promise) = self.prefetch.take() {
            match promise.try_take() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => self.learned_error = Some(err),
                Err(promise) => {
                    self.prefetch = Some(promise);
                    ctx.request_repaint_after(std::time::Duration::from_millis(100));
                }
            }
        }
    }

    /// Fills the surface field with text the user selected in the original texts.
    fn take_selection(&mut self, ctx: &egui::Context) {
        let Some((text, pass)) = SelectionCapture::take(ctx) else { return };
        let pointer = ctx.input(|i| i.pointer.latest_pos());
        let inside = self.texts_rect.zip(pointer).is_some_and(|(rect, pos)| rect.contains(pos));
        let fresh = pass == self.shown_pass || pass == self.shown_pass + 1;
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if inside && fresh && !text.is_empty() && text.len() <= 200 {
            self.form.surface = text;
        }
    }

    /// Records a correction in the file (atomically) and applies it to the recogniser.
    fn apply(&mut self, edit: Edit) {
        let Some(Ok(engine)) = &mut self.engine else { return };
        if let Some(err) = &engine.load_error {
            self.form.note = Some((format!("Not saved: the corrections file could not be read ({err})"), true));
            return;
        }
        if let Edit::AskNotEntity { surface, label } = &edit {
            self.form.pending = Some((surface.clone(), label.clone()));
            return;
        }
        self.form.pending = None;
        let schema = engine.abstractor.recognizer().schema().clone();
        let mut corrections = engine.abstractor.recognizer().corrections().clone();
        let (marks_before, additions_before) = (corrections.not_entity.len(), corrections.add_to_gazetteer.len());
        let (outcome, mut message) = match &edit {
            Edit::AskNotEntity { .. } => unreachable!("handled above"),
            Edit::Add { label, surface } => (corrections.add_to_gazetteer(&schema, label, surface), format!("Added “{surface}” to the {label} gazetteer")),
            Edit::NotEntity { surface, label } => (
                corrections.mark_not_entity(&schema, surface, label.as_deref()),
                format!("Marked “{surface}” as not an entity ({})", label.as_deref().unwrap_or("any type")),
            ),
            Edit::RemoveAddition { label, surface } => (Ok(corrections.remove_addition(label, surface)), format!("Removed “{surface}” from the {label} additions")),
            Edit::RemoveMark { surface, label } => (Ok(corrections.remove_mark(surface, label.as_deref())), format!("Removed the mark on “{surface}”")),
        };
        // What an edit undid on the way is said, not dropped silently.
        if let Edit::Add { .. } = &edit {
            let lifted = marks_before.saturating_sub(corrections.not_entity.len());
            if lifted > 0 {
                message.push_str(&format!(" (and lifted {lifted} not-entity mark{} on it)", if lifted == 1 { "" } else { "s" }));
            }
        }
        if let Edit::NotEntity { .. } = &edit {
            let dropped = additions_before.saturating_sub(corrections.add_to_gazetteer.len());
            if dropped > 0 {
                message.push_str(&format!(" (and removed {dropped} gazetteer addition{} it contradicts)", if dropped == 1 { "" } else { "s" }));
            }
        }
        let result = outcome.and_then(|_| corrections.save(&engine.path)).and_then(|()| engine.abstractor.recognizer_mut().set_corrections(corrections));
        self.form.note = Some(match result {
            Ok(()) => {
                engine.version += 1;
                if matches!(edit, Edit::Add { .. }) {
                    self.form.surface.clear();
                }
                (format!("{message} — saved to {}", engine.path.display()), false)
            }
            Err(err) => (format!("Not applied: {err:#}"), true),
        });
    }
}

/// The corrections file, the "add to gazetteer" form and the list of corrections.
fn corrections_bar(ui: &mut egui::Ui, engine: &Engine, group: &QueryGroup, edits: &mut Vec<Edit>, settings: &mut AbstractionSettings, form: &mut CorrectionsForm) {
    let corrections = engine.abstractor.recognizer().corrections();
    ui.horizontal_wrapped(|ui| {
        let label = ui.label(RichText::new("Corrections file:").strong());
        let response = ui.add(egui::TextEdit::singleline(&mut form.path_input).desired_width(380.0)).labelled_by(label.id);
        let entered = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if entered || ui.button("Use file").on_hover_text("Read corrections from this file and save new ones to it").clicked() {
            let typed = form.path_input.trim();
            if !typed.is_empty() {
                settings.corrections_path = Some(PathBuf::from(typed));
            }
        }
        ui.label(
            RichText::new(format!(
                "{} additions, {} not-entity marks{}",
                corrections.add_to_gazetteer.len(),
                corrections.not_entity.len(),
                if engine.path.exists() { "" } else { " (no file yet)" }
            ))
            .weak(),
        );
    });
    if let Some(err) = &engine.load_error {
        ui.colored_label(ui.visuals().error_fg_color, format!("Cannot read the corrections file (it is left untouched; fix it or choose another): {err}"));
    }
    ui.horizontal_wrapped(|ui| {
        let label = ui.label("Add to gazetteer:");
        ui.add(egui::TextEdit::singleline(&mut form.surface).hint_text("select text in the original, or type it").desired_width(240.0))
            .labelled_by(label.id);
        let schema = engine.abstractor.recognizer().schema();
        let types = type_choices(schema, group);
        if form.label.as_ref().is_none_or(|t| !types.contains(t)) {
            form.label = types.first().cloned();
        }
        let type_label = ui.label("Type:");
        ui.label_inputs_by(type_label.id, |ui| {
            egui::ComboBox::from_id_salt("abstraction_add_type").selected_text(form.label.clone().unwrap_or_default()).show_ui(ui, |ui| {
                for t in &types {
                    ui.selectable_value(&mut form.label, Some(t.clone()), t);
                }
            })
        });
        let ready = !form.surface.trim().is_empty() && form.label.is_some();
        if ui.add_enabled(ready, egui::Button::new("Add")).on_hover_text("Add the surface to the type's gazetteer (saved to the corrections file)").clicked() {
            edits.push(Edit::Add { label: form.label.clone().unwrap_or_default(), surface: form.surface.trim().to_string() });
        }
        ui.label(RichText::new("Click a span to mark it not an entity.").weak());
    });
    if let Some((surface, label)) = form.pending.clone() {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(format!("Mark “{surface}” as not an entity?")).strong());
            if ui.button(format!("Not a {label}")).on_hover_text(format!("Only the {label} reading is rejected; other types may still match")).clicked() {
                edits.push(Edit::NotEntity { surface: surface.clone(), label: Some(label.clone()) });
            }
            if ui.button("Not an entity of any type").on_hover_text("No recogniser may mark this surface, whatever the type").clicked() {
                edits.push(Edit::NotEntity { surface: surface.clone(), label: None });
            }
            if ui.button("Cancel").clicked() {
                form.pending = None;
            }
        });
    }
    if let Some((note, is_error)) = &form.note {
        let color = if *is_error { ui.visuals().error_fg_color } else { ui.visuals().weak_text_color() };
        ui.colored_label(color, note);
    }
    if !corrections.is_empty() {
        egui::CollapsingHeader::new(format!("Corrections in this file ({})", corrections.add_to_gazetteer.len() + corrections.not_entity.len()))
            .id_salt("abstraction_corrections_list")
            .show(ui, |ui| {
                egui::ScrollArea::vertical().max_height(120.0).show(ui, |ui| {
                    for added in &corrections.add_to_gazetteer {
                        ui.horizontal(|ui| {
                            ui.label(format!("“{}” is a {}", added.surface, added.label));
                            if ui.small_button("Remove").clicked() {
                                edits.push(Edit::RemoveAddition { label: added.label.clone(), surface: added.surface.clone() });
                            }
                        });
                    }
                    for mark in &corrections.not_entity {
                        ui.horizontal(|ui| {
                            let of = mark.label.as_deref().map_or("any type".to_string(), |l| l.to_string());
                            ui.label(format!("“{}” is not an entity ({of})", mark.surface));
                            if ui.small_button("Remove").clicked() {
                                edits.push(Edit::RemoveMark { surface: mark.surface.clone(), label: mark.label.clone() });
                            }
                        });
                    }
                });
            });
    }
}

/// The engine options from the panel's settings.
fn options_of(settings: &AbstractionSettings, schema: &EntitySchema) -> AbstractionOptions {
    let types = if settings.unmasked_types.is_empty() {
        None
    } else {
        let mut all = schema.all_types();
        all.insert(crate::abstraction::schema::NAME_TYPE.to_string());
        Some(all.difference(&settings.unmasked_types).cloned().collect())
    };
    AbstractionOptions { types, intensity: settings.intensity.clamp(0.0, 1.0), numbering: settings.numbering }
}

fn compute_preview(group: &QueryGroup, abstractor: &Abstractor, key: PreviewKey) -> Preview {
    let detections = detect_group(group, abstractor.recognizer());
    let abstracted = abstract_detected(group, &detections, &key.options, key.seed);
    Preview { key, detections, abstracted }
}

fn has_gold_spans(group: &QueryGroup) -> bool {
    !group.query_entities.is_empty() || group.candidates.iter().any(|c| !c.entities.is_empty())
}

/// Types offered for additions: the group's own domains' types first, then the rest.
fn type_choices(schema: &EntitySchema, group: &QueryGroup) -> Vec<String> {
    let own = schema.scope(&group_domains(group));
    let mut types: Vec<String> = own.iter().cloned().collect();
    types.extend(schema.all_types().into_iter().filter(|t| !own.contains(t)));
    types
}

fn group_header(ui: &mut egui::Ui, group: &QueryGroup) {
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(&group.id).strong().monospace());
        ui.label(format!("domain {} · split {} · {} candidates", group.domain, group.split, group.candidates.len()));
        if let Some(second) = &group.secondary_domain {
            ui.label(format!("also touches {second}"));
        }
    });
}

/// The display controls; true when "Next group with misses" was pressed.
fn controls(ui: &mut egui::Ui, settings: &mut AbstractionSettings, gold_mode: &mut bool, has_gold: bool, searching: bool) -> bool {
    let mut next_miss = false;
    ui.horizontal_wrapped(|ui| {
        ui.label("Show:");
        ui.selectable_value(gold_mode, false, "Detected entities").on_hover_text("What the recognisers find (what abstraction masks)");
        ui.add_enabled_ui(has_gold, |ui| {
            ui.selectable_value(gold_mode, true, "Gold spans").on_hover_text("The data's gold spans; missed ones outlined red, false alarms outlined orange")
        })
        .response
        .on_disabled_hover_text("This query group has no gold entity spans");
        next_miss = ui
            .add_enabled(!searching, egui::Button::new("Next group with misses"))
            .on_hover_text("The next query group (in file order, wrapping) whose detections miss a gold span or add a false alarm")
            .clicked();
        if searching {
            ui.spinner();
        }
        ui.separator();
        let label = ui.label("Intensity:");
        ui.add(egui::Slider::new(&mut settings.intensity, 0.0..=1.0).fixed_decimals(2))
            .labelled_by(label.id)
            .on_hover_text("Share of the group's distinct entities that are masked (a seeded choice per group)");
        let label = ui.label("Seed:");
        ui.add(egui::DragValue::new(&mut settings.seed)).labelled_by(label.id).on_hover_text("Seed of the intensity's choice and of randomised numbering");
        let label = ui.label("Numbering:");
        ui.label_inputs_by(label.id, |ui| {
            egui::ComboBox::from_id_salt("abstraction_numbering").selected_text(format!("{:?}", settings.numbering).to_lowercase()).show_ui(ui, |ui| {
                ui.selectable_value(&mut settings.numbering, crate::abstraction::Numbering::Ordered, "ordered");
                ui.selectable_value(&mut settings.numbering, crate::abstraction::Numbering::Randomised, "randomised");
            })
        });
    });
    next_miss
}

/// Starts a background run of the learned heads over `texts` unless one is running.
fn prefetch_into(slot: &mut Option<poll_promise::Promise<Result<(), String>>>, learned: Arc<LearnedRecognizer>, texts: Vec<String>, ctx: &egui::Context) {
    if slot.is_none() {
        let ctx = ctx.clone();
        *slot = Some(poll_promise::Promise::spawn_thread("r2r-ner-prefetch", move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let result = learned.propose_all(&refs).map(|_| ()).map_err(|e| format!("{e:#}"));
            ctx.request_repaint();
            result
        }));
    }
    ctx.request_repaint_after(std::time::Duration::from_millis(100));
}

/// Where the learned heads stand, for the controls.
enum LearnedStatus {
    Off,
    Loading,
    Failed(String),
    On(Vec<String>),
}

/// The learned recogniser's switch, its confidence threshold, and the span colouring.
fn learned_controls(ui: &mut egui::Ui, settings: &mut AbstractionSettings, status: &LearnedStatus, running: bool) {
    ui.horizontal_wrapped(|ui| {
        ui.checkbox(&mut settings.learned, "Learned entity heads")
            .on_hover_text("Token-classification heads on the frozen backbone (assets/ner/heads), trained on public NER corpora; they run beside the gazetteers and patterns");
        match status {
            LearnedStatus::Loading => {
                ui.spinner();
                ui.label(RichText::new("loading the heads and their backbone…").weak());
            }
            LearnedStatus::Failed(err) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("learned heads unavailable: {err}"));
            }
            LearnedStatus::On(heads) => {
                ui.label(RichText::new(heads.join(", ")).weak());
                if running {
                    ui.spinner();
                }
                let mut own = settings.learned_threshold.is_none();
                if ui.checkbox(&mut own, "each head's threshold").on_hover_text("The per-type thresholds tuned on each corpus's dev split").changed() {
                    settings.learned_threshold = if own { None } else { Some(0.5) };
                }
                if let Some(threshold) = &mut settings.learned_threshold {
                    let label = ui.label("Confidence ≥");
                    ui.add(egui::Slider::new(threshold, 0.0..=1.0).fixed_decimals(2))
                        .labelled_by(label.id)
                        .on_hover_text("Learned spans whose confidence (mean probability of their tags) is below this are dropped");
                }
            }
            LearnedStatus::Off => {}
        }
        ui.separator();
        ui.label("Colour by:");
        ui.selectable_value(&mut settings.color_by_source, false, "type");
        ui.selectable_value(&mut settings.color_by_source, true, "source")
            .on_hover_text("Gazetteer blue, expert correction green, learned head violet, pattern amber, group grey, name heuristic pink");
    });
}

/// One toggle per type (the group's domains' types and any type found), with
/// its colour and how many mentions were found and masked.
fn type_legend(ui: &mut egui::Ui, group: &QueryGroup, schema: &EntitySchema, preview: &Preview, settings: &mut AbstractionSettings) {
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    for d in preview.detections.iter().flatten() {
        *found.entry(d.label.as_str()).or_default() += 1;
    }
    let mut masked: BTreeMap<&str, usize> = BTreeMap::new();
    for s in all_spans(&preview.abstracted) {
        *masked.entry(s.label.as_str()).or_default() += 1;
    }
    let mut types: BTreeSet<String> = schema.scope(&group_domains(group));
    types.extend(found.keys().map(|t| t.to_string()));
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new("Types to mask:").strong()).on_hover_text("Untick a type to leave its entities in the abstracted text");
        for label in &types {
            // Items straight in the wrapped row (a nested `horizontal` would not
            // wrap); a new row starts when a type's items would not fit together.
            let (f, m) = (found.get(label.as_str()).copied().unwrap_or(0), masked.get(label.as_str()).copied().unwrap_or(0));
            let counts = format!("{f} found, {m} masked");
            let text_width = |text: &str| ui.fonts_mut(|fonts| fonts.layout_no_wrap(text.to_string(), egui::TextStyle::Body.resolve(ui.style()), egui::Color32::WHITE).size().x);
            if ui.available_size_before_wrap().x < text_width(label) + text_width(&counts) + 60.0 {
                ui.end_row();
            }
            let mut on = !settings.unmasked_types.contains(label);
            let chip = RichText::new(format!(" {label} ")).color(egui::Color32::from_gray(20)).background_color(type_color(label));
            if ui.checkbox(&mut on, chip).changed() {
                if on {
                    settings.unmasked_types.remove(label);
                } else {
                    settings.unmasked_types.insert(label.clone());
                }
            }
            ui.add(egui::Label::new(RichText::new(counts).weak()).extend())
                .on_hover_text(format!("{label}: {f} mentions found in this group, {m} replaced by placeholders"));
            ui.add_space(10.0);
        }
    });
}

fn all_spans(abstracted: &AbstractedGroup) -> impl Iterator<Item = &SpanMapEntry> {
    abstracted.maps.query.iter().chain(abstracted.maps.candidates.iter().flat_map(|c| c.spans.iter()))
}

/// The texts of the group, original left and abstracted right, one row per
/// text. Returns the area of the texts (for capturing selections there).
/// Exact (start, end, type) agreement of a group's detections with its gold spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GoldCounts {
    hits: usize,
    missed: usize,
    false_alarms: usize,
}

/// Counts only detections of the `scored` types (the types the dataset annotates).
fn gold_counts(group: &QueryGroup, detections: &[Vec<Detection>], scored: &BTreeSet<String>) -> GoldCounts {
    let gold = std::iter::once(group.query_entities.as_slice()).chain(group.candidates.iter().map(|c| c.entities.as_slice()));
    let mut counts = GoldCounts { hits: 0, missed: 0, false_alarms: 0 };
    for (spans, found) in gold.zip(detections) {
        let found: BTreeSet<(usize, usize, &str)> = found.iter().filter(|d| scored.contains(&d.label)).map(|d| (d.start, d.end, d.label.as_str())).collect();
        let gold: BTreeSet<(usize, usize, &str)> = spans.iter().map(|g| (g.start, g.end, g.label.as_str())).collect();
        counts.hits += gold.intersection(&found).count();
        counts.missed += gold.difference(&found).count();
        counts.false_alarms += found.difference(&gold).count();
    }
    counts
}

/// "Next group with misses": the scan goes forward from `next`, a slice of groups per frame.
struct MissSearch {
    next: usize,
    scanned: usize,
}

/// Groups scanned per frame (the sample data's 3,200 groups take about half a second in all).
const MISS_SEARCH_SLICE: usize = 64;

/// `gold`: in gold mode, the types the dataset annotates (detections of other types are not shown).
fn texts(ui: &mut egui::Ui, group: &QueryGroup, preview: &Preview, gold_types: Option<&BTreeSet<String>>, by_source: bool, edits: &mut Vec<Edit>) -> egui::Rect {
    let gold_mode = gold_types.is_some();
    let originals = group_texts(group);
    let abstracted = group_texts(&preview.abstracted.group);
    let maps: Vec<&[SpanMapEntry]> = std::iter::once(preview.abstracted.maps.query.as_slice())
        .chain(preview.abstracted.maps.candidates.iter().map(|c| c.spans.as_slice()))
        .collect();
    let gold: Vec<&[EntitySpan]> = std::iter::once(group.query_entities.as_slice()).chain(group.candidates.iter().map(|c| c.entities.as_slice())).collect();
    if let Some(scored) = gold_types {
        let GoldCounts { hits, missed, false_alarms } = gold_counts(group, &preview.detections, scored);
        let unscored: BTreeSet<&str> = preview.detections.iter().flatten().filter(|d| !scored.contains(&d.label)).map(|d| d.label.as_str()).collect();
        let note = if unscored.is_empty() { String::new() } else { format!(" · not annotated in this data, not shown: {}", unscored.into_iter().collect::<Vec<_>>().join(", ")) };
        ui.label(format!("Gold spans in this group: {} · found {hits} · missed {missed} · false alarms {false_alarms}{note}", hits + missed))
            .on_hover_text("Exact matches of start, end and type, as `r2r abstract eval` counts them; detections of types the data does not annotate are neither hits nor false alarms");
    }
    let output = egui::ScrollArea::vertical().id_salt("abstraction_texts").auto_shrink([false, false]).show(ui, |ui| {
        ui.columns(2, |columns| {
            columns[0].label(RichText::new(if gold_mode { "Original, gold spans" } else { "Original, detected entities" }).strong());
            columns[1].label(RichText::new("Abstracted").strong());
        });
        for (index, original) in originals.iter().enumerate() {
            let detections = &preview.detections[index];
            let (marks, actions, overlapping) = if let Some(scored) = gold_types {
                let judged: Vec<Detection> = detections.iter().filter(|d| scored.contains(&d.label)).cloned().collect();
                gold_marks(original, gold[index], &judged)
            } else {
                detected_marks(original, detections, maps[index], by_source)
            };
            let (abs_marks, abs_actions) = placeholder_marks(maps[index]);
            let font = if index == 0 { FontId::proportional(16.0) } else { FontId::proportional(14.0) };
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.horizontal(|ui| match index {
                    0 => {
                        ui.label(RichText::new("Query").strong());
                    }
                    n => {
                        let candidate = &group.candidates[n - 1];
                        widgets::relevance_badge(ui, candidate.relevance);
                        ui.label(RichText::new(&candidate.id).monospace().weak());
                    }
                });
                ui.columns(2, |columns| {
                    columns[0].push_id(("original", index), |ui| {
                        if let Some(i) = entity_text(ui, original, &marks, font.clone()) {
                            edits.push(actions[i].clone());
                        }
                        if !overlapping.is_empty() {
                            ui.label(RichText::new(format!("Also detected (overlapping gold spans): {}", overlapping.join(", "))).weak());
                        }
                    });
                    columns[1].push_id(("abstracted", index), |ui| {
                        if let Some(i) = entity_text(ui, abstracted[index], &abs_marks, font.clone()) {
                            edits.push(abs_actions[i].clone());
                        }
                    });
                });
            });
        }
    });
    output.inner_rect
}

/// Detected entities: filled when masked, outlined when left unmasked.
fn detected_marks(text: &str, detections: &[Detection], spans: &[SpanMapEntry], by_source: bool) -> (Vec<SpanMark>, Vec<Edit>, Vec<String>) {
    let mut marks = Vec::new();
    let mut actions = Vec::new();
    for d in detections {
        let surface = &text[d.start..d.end];
        let placeholder = spans.iter().find(|s| s.orig_start == d.start && s.orig_end == d.end).map(|s| s.placeholder.as_str());
        let (style, masking) = match placeholder {
            Some(p) => (MarkStyle::Entity, format!("masked as {p}")),
            None => (MarkStyle::Unmasked, "not masked (type switched off, or left out by the intensity)".to_string()),
        };
        marks.push(SpanMark {
            start: d.start,
            end: d.end,
            label: d.label.clone(),
            tag: Some(d.label.clone()),
            style,
            tooltip: format!(
                "{} · {masking} · found by {}{}\nClick: mark “{surface}” as not an entity (asks first)",
                d.label,
                d.recogniser,
                if d.recogniser.starts_with("learned:") { format!(" · confidence {:.2}", d.score) } else { String::new() }
            ),
            color: by_source.then(|| source_color(&d.recogniser)),
        });
        actions.push(Edit::AskNotEntity { surface: surface.to_string(), label: d.label.clone() });
    }
    (marks, actions, Vec::new())
}

/// Gold spans (hits filled, misses outlined red) and false alarms (orange) that
/// do not overlap a gold span; overlapping false alarms are returned as text.
fn gold_marks(text: &str, gold: &[EntitySpan], detections: &[Detection]) -> (Vec<SpanMark>, Vec<Edit>, Vec<String>) {
    let found: BTreeSet<(usize, usize, &str)> = detections.iter().map(|d| (d.start, d.end, d.label.as_str())).collect();
    let mut items: Vec<(SpanMark, Edit)> = Vec::new();
    for g in gold {
        let Some(surface) = text.get(g.start..g.end) else { continue };
        let hit = found.contains(&(g.start, g.end, g.label.as_str()));
        let (style, tag, tooltip, action) = if hit {
            (MarkStyle::Entity, g.label.clone(), format!("{} · gold span, found\nClick: mark “{surface}” as not an entity (asks first)", g.label), Edit::AskNotEntity { surface: surface.to_string(), label: g.label.clone() })
        } else {
            (
                MarkStyle::Missed,
                format!("{} · missed", g.label),
                format!("{} · gold span the recognisers missed\nClick: add “{surface}” to the {} gazetteer", g.label, g.label),
                Edit::Add { label: g.label.clone(), surface: surface.to_string() },
            )
        };
        items.push((SpanMark { start: g.start, end: g.end, label: g.label.clone(), tag: Some(tag), style, tooltip, color: None }, action));
    }
    let mut overlapping = Vec::new();
    for d in detections {
        if gold.iter().any(|g| g.start == d.start && g.end == d.end && g.label == d.label) {
            continue;
        }
        let surface = &text[d.start..d.end];
        if items.iter().any(|(m, _)| m.start < d.end && d.start < m.end) {
            overlapping.push(format!("“{surface}” {} (false alarm)", d.label));
            continue;
        }
        let tooltip = format!("{} · false alarm (not a gold span) · found by {}\nClick: mark “{surface}” as not an entity (asks first)", d.label, d.recogniser);
        let mark = SpanMark { start: d.start, end: d.end, label: d.label.clone(), tag: Some(format!("{} · false alarm", d.label)), style: MarkStyle::FalseAlarm, tooltip, color: None };
        items.push((mark, Edit::AskNotEntity { surface: surface.to_string(), label: d.label.clone() }));
    }
    items.sort_by_key(|(m, _)| (m.start, m.end));
    // Gold spans that overlap each other cannot be drawn inline: keep the first.
    let mut kept: Vec<(SpanMark, Edit)> = Vec::new();
    for (mark, action) in items {
        if kept.last().is_some_and(|(last, _)| mark.start < last.end) {
            overlapping.push(format!("“{}” {}", &text[mark.start..mark.end], mark.label));
        } else {
            kept.push((mark, action));
        }
    }
    let (marks, actions) = kept.into_iter().unzip();
    (marks, actions, overlapping)
}

/// The placeholders of an abstracted text.
fn placeholder_marks(spans: &[SpanMapEntry]) -> (Vec<SpanMark>, Vec<Edit>) {
    spans
        .iter()
        .map(|s| {
            let tooltip = format!(
                "{} · “{}” · found by {}\nClick: mark “{}” as not an entity (asks first)",
                s.label, s.surface, s.recogniser, s.surface
            );
            (
                SpanMark { start: s.abs_start, end: s.abs_end, label: s.label.clone(), tag: None, style: MarkStyle::Entity, tooltip, color: None },
                Edit::AskNotEntity { surface: s.surface.clone(), label: s.label.clone() },
            )
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detection(start: usize, end: usize, label: &str) -> Detection {
        Detection { start, end, label: label.into(), recogniser: "gazetteer".into(), score: 1.0, priority: 60 }
    }

    #[test]
    fn gold_mode_marks_hits_misses_and_false_alarms() {
        let text = "Take 500 mg of idoucycline for Winslow anaemia.";
        let gold = [
            EntitySpan { start: 5, end: 11, label: "DOSAGE".into() },
            EntitySpan { start: 15, end: 26, label: "DRUG".into() },
            EntitySpan { start: 31, end: 46, label: "DISEASE".into() },
        ];
        // Found: the dosage (hit), "anaemia" (inside the gold disease: false alarm, overlapping), "Take" (false alarm).
        let found = [detection(0, 4, "SYMPTOM"), detection(5, 11, "DOSAGE"), detection(39, 46, "DISEASE")];
        let (marks, actions, overlapping) = gold_marks(text, &gold, &found);
        let styles: Vec<(&str, MarkStyle)> = marks.iter().map(|m| (&text[m.start..m.end], m.style)).collect();
        assert_eq!(
            styles,
            vec![("Take", MarkStyle::FalseAlarm), ("500 mg", MarkStyle::Entity), ("idoucycline", MarkStyle::Missed), ("Winslow anaemia", MarkStyle::Missed)]
        );
        assert_eq!(actions[2], Edit::Add { label: "DRUG".into(), surface: "idoucycline".into() });
        assert_eq!(actions[0], Edit::AskNotEntity { surface: "Take".into(), label: "SYMPTOM".into() });
        assert_eq!(overlapping, vec!["“anaemia” DISEASE (false alarm)".to_string()]);
    }

    #[test]
    fn gold_counts_ignore_types_the_data_does_not_annotate() {
        let text = "Take 500 mg";
        let group = QueryGroup {
            id: "g".into(),
            domain: "medical".into(),
            split: crate::data::Split::Test,
            query: text.into(),
            query_entities: vec![EntitySpan { start: 5, end: 11, label: "DOSAGE".into() }],
            candidates: vec![],
            secondary_domain: None,
            meta: Default::default(),
        };
        let found = vec![vec![detection(0, 4, "SYMPTOM"), detection(5, 11, "DOSAGE")]];
        let all: BTreeSet<String> = ["DOSAGE", "SYMPTOM"].map(String::from).into();
        let dosage_only: BTreeSet<String> = ["DOSAGE"].map(String::from).into();
        assert_eq!(gold_counts(&group, &found, &all), GoldCounts { hits: 1, missed: 0, false_alarms: 1 });
        assert_eq!(gold_counts(&group, &found, &dosage_only), GoldCounts { hits: 1, missed: 0, false_alarms: 0 });
    }

    #[test]
    fn unticked_types_are_left_out_of_the_options() {
        let schema = EntitySchema::bundled();
        let mut settings = AbstractionSettings::default();
        assert_eq!(options_of(&settings, &schema).types, None);
        settings.unmasked_types.insert("DRUG".into());
        let types = options_of(&settings, &schema).types.unwrap();
        assert!(!types.contains("DRUG") && types.contains("DOSAGE") && types.contains("NAME"));
    }
}

