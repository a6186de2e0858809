//! The desktop app driven through its accessibility tree with egui_kittest (no
//! GPU, no display): open the app, load a dataset in the background, read the
//! statistics, browse queries, compare two systems' rankings, and see a load
//! error with its file and line while the app stays up.
#![cfg(feature = "gui")]

mod common;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use r2r::gui::app::{StartOptions, WorkbenchApp};
use r2r::gui::state::{PanelKind, RunState};
use r2r::train::{Stage, TrainConfig};

/// One native JSONL record.
fn record(id: &str, domain: &str, split: &str, query: &str, candidates: &[(&str, u32)]) -> String {
    let candidates: Vec<serde_json::Value> = candidates
        .iter()
        .enumerate()
        .map(|(i, (text, rel))| serde_json::json!({"id": format!("{id}-c{i}"), "text": text, "relevance": rel}))
        .collect();
    serde_json::json!({"id": id, "domain": domain, "split": split, "query": query, "candidates": candidates}).to_string()
}

/// A small two-domain dataset on which BM25 ranks every relevant passage first.
fn write_dataset(dir: &Path) -> PathBuf {
    let lines = [
        record(
            "med-1",
            "medical",
            "test",
            "maximum daily dose of ibuprofen for adults",
            &[
                ("Ibuprofen: adults may take a maximum daily dose of 3200 mg under supervision.", 1),
                ("Knee replacement surgery usually needs several weeks of rehabilitation.", 0),
                ("Seasonal influenza vaccines are updated every year.", 0),
                ("Asthma inhalers deliver medicine straight to the lungs.", 0),
            ],
        ),
        record(
            "med-2",
            "medical",
            "test",
            "symptoms of iron deficiency anaemia",
            &[
                ("Broken bones heal faster with adequate calcium intake.", 0),
                ("Iron deficiency anaemia symptoms include fatigue, pale skin and shortness of breath.", 1),
                ("Cholesterol tests measure lipids in the blood.", 0),
            ],
        ),
        record(
            "med-3",
            "medical",
            "train",
            "how is type 2 diabetes treated",
            &[
                ("Type 2 diabetes is treated with diet, exercise and metformin.", 1),
                ("Migraine attacks can last from hours to days.", 0),
            ],
        ),
        record(
            "law-1",
            "legal",
            "test",
            "statute of limitations for breach of contract",
            &[
                ("Trademark registration protects brand names.", 0),
                ("The statute of limitations for breach of a written contract is six years.", 1),
                ("Jury selection is called voir dire.", 0),
            ],
        ),
        record(
            "law-2",
            "legal",
            "dev",
            "who pays court fees after a lawsuit",
            &[
                ("Court fees after a lawsuit are usually paid by the losing party.", 1),
                ("A notary certifies signatures on documents.", 0),
            ],
        ),
    ];
    let path = dir.join("tiny.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn harness(options: StartOptions) -> Harness<'static, WorkbenchApp> {
    Harness::builder().with_size([1400.0, 900.0]).build_eframe(move |cc| WorkbenchApp::new(cc, options))
}

/// Steps the app until `done` holds (background jobs run on real threads).
fn step_until(harness: &mut Harness<'static, WorkbenchApp>, what: &str, done: impl Fn(&Harness<'static, WorkbenchApp>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        harness.step();
        if done(harness) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn has_label(harness: &Harness<'static, WorkbenchApp>, label: &str) -> bool {
    harness.query_all_by_label(label).next().is_some()
}

fn has_label_containing(harness: &Harness<'static, WorkbenchApp>, part: &str) -> bool {
    harness.query_all_by_label_contains(part).next().is_some()
}

#[test]
fn loads_a_typed_path_shows_statistics_and_browses_queries() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_dataset(dir.path());
    let mut harness = harness(StartOptions::default());
    harness.step();
    assert!(has_label_containing(&harness, "No dataset loaded"));

    let input = harness.get_by_role_and_label(Role::TextInput, "Path:");
    input.click();
    input.type_text(&path.display().to_string());
    harness.step();
    harness.get_by_label("Load").click();
    step_until(&mut harness, "the dataset to load", |h| has_label_containing(h, "5 queries, 14 candidates in 2 domains"));
    harness.check_accessibility();

    // The statistics table: one row per (domain, split) with real counts.
    assert!(has_label(&harness, "Per-domain statistics"));
    assert!(has_label(&harness, "legal") && has_label(&harness, "medical"), "domains in the statistics table");
    assert!(has_label(&harness, "Entities/100 words"));

    // The first query is selected; click another and see its candidates and labels.
    assert!(has_label_containing(&harness, "3200 mg"));
    harness.get_by_label_contains("law-1  ·").click();
    harness.step();
    assert!(has_label(&harness, "The statute of limitations for breach of a written contract is six years."));
    assert!(!has_label_containing(&harness, "3200 mg"), "the previous query's candidates are gone");
    assert!(has_label(&harness, "rel 1") && has_label(&harness, "rel 0"), "relevance labels");

    // Keyboard navigation: ↓ moves to the next query in the list.
    harness.key_press(egui::Key::ArrowDown);
    harness.step();
    assert!(has_label(&harness, "Court fees after a lawsuit are usually paid by the losing party."));

    // The domain filter narrows the list.
    assert_eq!(harness.state().workspace().dataset.as_ref().map(|d| d.dataset.groups.len()), Some(5));
    assert_eq!(harness.state().settings().recent_datasets, vec![path.clone()], "the path is remembered");
}

#[test]
fn a_malformed_file_shows_file_and_line_and_the_app_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_dataset(dir.path());
    let bad = dir.path().join("broken.jsonl");
    let first = std::fs::read_to_string(&good).unwrap().lines().next().unwrap().to_string();
    std::fs::write(&bad, format!("{first}\n{{\"id\": \"x\", \"domain\": \"legal\", \"split\": \"test\", \"query\": 7, \"candidates\": []}}\n")).unwrap();

    let mut harness = harness(StartOptions { data: Some(bad.clone()), ..Default::default() });
    step_until(&mut harness, "the load error", |h| has_label(h, "Could not load the dataset"));
    assert!(has_label(&harness, &bad.display().to_string()), "the file is named");
    assert!(has_label(&harness, "line 2"), "the line is named");
    assert!(has_label(&harness, "query"), "the field is named");
    assert!(has_label_containing(&harness, "expected a string"));

    // The app is still up: other panels work, and a good file loads afterwards.
    harness.get_by_label("Rankings").click();
    harness.step();
    assert!(has_label_containing(&harness, "No dataset loaded"));
    harness.get_by_label("Datasets").click();
    harness.step();
    let input = harness.get_by_role_and_label(Role::TextInput, "Path:");
    assert_eq!(input.value().as_deref(), Some(bad.display().to_string().as_str()), "the failed path stays in the field");
    input.click();
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.get_by_role_and_label(Role::TextInput, "Path:").type_text(&good.display().to_string());
    harness.step();
    harness.get_by_label("Load").click();
    step_until(&mut harness, "the good dataset", |h| has_label_containing(h, "5 queries, 14 candidates"));
    assert!(!has_label(&harness, "Could not load the dataset"), "the error is cleared");
}

#[test]
fn a_missing_file_names_no_line_or_field_and_its_error_can_be_dismissed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jsonl");
    let mut harness = harness(StartOptions { data: Some(missing.clone()), ..Default::default() });
    step_until(&mut harness, "the load error", |h| has_label(h, "Could not load the dataset"));
    assert!(has_label_containing(&harness, &missing.display().to_string()));
    assert!(!has_label(&harness, "Line") && !has_label(&harness, "Field"), "no empty Line/Field rows for a missing file");
    harness.get_by_label("Dismiss").click();
    harness.run_steps(2);
    assert!(!has_label(&harness, "Could not load the dataset"));
    assert!(harness.state().workspace().load_failure.is_none());
}

#[test]
fn training_config_saves_as_toml_and_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness(StartOptions { panel: Some(PanelKind::Training), ..Default::default() });
    harness.run_steps(2);
    let spin = |h: &Harness<'static, WorkbenchApp>, label: &str| {
        h.query_all_by_label(label).find(|n| n.accesskit_node().role() == Role::SpinButton).and_then(|n| n.accesskit_node().numeric_value())
    };
    // The default output folder is absolute (under the app's data directory).
    let output = harness.get_by_role_and_label(Role::TextInput, "Output").value().unwrap();
    assert!(Path::new(&output).is_absolute(), "{output}");
    harness.get_by_label("Tiny demo").click();
    harness.run_steps(2);
    assert_eq!(spin(&harness, "LoRA rank"), Some(8.0));
    let path = dir.path().join("tiny-copy.toml");
    let field = harness.get_by_role_and_label(Role::TextInput, "Config file");
    field.click();
    field.type_text(&path.display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Save config").click();
    harness.run_steps(2);
    let saved = TrainConfig::load(&path).expect("the saved file is a valid config");
    assert_eq!(saved.lora.rank, 8);
    // Back to the paper's defaults, then open the saved file: the form shows it again.
    harness.get_by_label("Paper defaults").click();
    harness.run_steps(2);
    assert_eq!(spin(&harness, "LoRA rank"), Some(32.0));
    let field = harness.get_by_role_and_label(Role::TextInput, "Config file");
    field.click();
    field.type_text(&path.display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Open config").click();
    harness.run_steps(2);
    assert_eq!(spin(&harness, "LoRA rank"), Some(8.0));
    assert_eq!(spin(&harness, "Negatives"), Some(saved.objective.negatives as f64));
    assert!(has_label_containing(&harness, "Opened "));
    // Mined negatives and the stage-2 rate show as opened.
    let mut tuned = saved.clone();
    (tuned.objective.negatives, tuned.objective.hard_negatives, tuned.stage2.learning_rate) = (5, 2, 1e-4);
    assert_eq!(harness.get_by_label("Continue stage 1's").accesskit_node().toggled(), Some(egui::accesskit::Toggled::False));
    tuned.stage2.continue_optimizer = true;
    let tuned_path = dir.path().join("tuned.toml");
    std::fs::write(&tuned_path, tuned.to_toml()).unwrap();
    harness.get_by_role_and_label(Role::TextInput, "Config file").click();
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.get_by_role_and_label(Role::TextInput, "Config file").type_text(&tuned_path.display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Open config").click();
    harness.run_steps(2);
    assert_eq!((spin(&harness, "Negatives"), spin(&harness, "Mined by BM25")), (Some(5.0), Some(2.0)));
    assert_eq!(spin(&harness, "Stage 2 learning rate"), Some(1e-4));
    assert_eq!(harness.get_by_label("Continue stage 1's").accesskit_node().toggled(), Some(egui::accesskit::Toggled::True));
}

#[test]
fn rankings_panel_compares_two_systems_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_dataset(dir.path());
    let mut harness = harness(StartOptions { data: Some(path), ..Default::default() });
    harness.get_by_label("Rankings").click();
    step_until(&mut harness, "both rankings", |h| h.query_all_by_label_contains("NDCG@10 of this query").count() == 2);
    harness.check_accessibility();

    // Two columns, each a full ranking of the selected query (med-1, 4 candidates).
    assert!(harness.query_all_by_label("BM25").count() >= 2, "BM25 toggle and column header");
    assert!(harness.query_all_by_label("Random order (seeded)").count() >= 2);
    for rank in ["#1", "#2", "#3", "#4"] {
        assert_eq!(harness.query_all_by_label(rank).count(), 2, "{rank} in both columns");
    }
    // Every row of the second column carries a movement mark against BM25.
    let marks: Vec<String> = harness
        .query_all_by_role(Role::Label)
        .filter_map(|node| node.accesskit_node().value())
        .filter(|text| text == "=" || text.starts_with('↑') || text.starts_with('↓'))
        .collect();
    assert_eq!(marks.len(), 4, "{marks:?}");
    // BM25 puts the relevant passage first on this data: NDCG@10 of 1 for the query and per domain.
    assert!(has_label(&harness, "NDCG@10 of this query: 1.000"));
    assert!(has_label(&harness, "Mean NDCG@10, split test"));
    assert!(harness.query_all_by_label("1.000").count() >= 2, "BM25 is perfect in both domains");

    // Significance of the random order against BM25, one mark per domain (few queries: not significant).
    step_until(&mut harness, "the significance tests", |h| has_label_containing(h, "paired randomization test"));
    let marks = harness.query_all_by_label("n.s.").count() + harness.query_all_by_label("*").count() + harness.query_all_by_label("**").count();
    assert_eq!(marks, 2, "one mark per domain for the second system");

    // Another metric: MRR@10 in the table header and the per-query line.
    harness.get_by_role_and_label(Role::ComboBox, "Metric:").click();
    harness.run_steps(2);
    harness.get_by_label("MRR@10").click();
    harness.run_steps(2);
    assert!(has_label(&harness, "Mean MRR@10, split test"));
    assert!(has_label(&harness, "MRR@10 of this query: 1.000"));

    // A ranked list copies to the clipboard as tab-separated rows, best first.
    harness.query_all_by_label("Copy list").next().unwrap().click();
    harness.step();
    let copied: Vec<String> = harness
        .output()
        .platform_output
        .commands
        .iter()
        .filter_map(|c| if let egui::OutputCommand::CopyText(text) = c { Some(text.clone()) } else { None })
        .collect();
    assert_eq!(copied.len(), 1, "one copy");
    let lines: Vec<&str> = copied[0].lines().collect();
    assert_eq!(lines[1], "rank\tcandidate\trelevance\tscore\ttext");
    assert_eq!(lines.len(), 2 + 4, "header lines and the four candidates of med-1");
    assert!(lines[2].starts_with("1\tmed-1-c0\t1\t"), "BM25 ranks the relevant passage first: {}", lines[2]);

    // Another query from the list updates both columns.
    harness.get_by_label_contains("med-2  ·").click();
    harness.step();
    assert_eq!(harness.query_all_by_label("#3").count(), 2);
    assert_eq!(harness.query_all_by_label("#4").count(), 0, "med-2 has three candidates");
}

#[test]
fn training_panel_is_honest_and_lists_the_real_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_dataset(dir.path());
    let mut harness = harness(StartOptions { data: Some(path), ..Default::default() });
    step_until(&mut harness, "all jobs", |h| !h.state().is_busy());
    harness.get_by_label("Training").click();
    harness.step();
    assert!(has_label(&harness, "No training job yet"));
    assert!(has_label(&harness, "Start training"));
    // The form starts at the paper's defaults; the tiny demo preset loads assets/configs/tiny.toml.
    let spin = |h: &Harness<'static, WorkbenchApp>, label: &str| {
        h.query_all_by_label(label).find(|n| n.accesskit_node().role() == Role::SpinButton).and_then(|n| n.accesskit_node().numeric_value())
    };
    assert_eq!(spin(&harness, "LoRA rank"), Some(32.0));
    assert_eq!(spin(&harness, "Negatives"), Some(7.0));
    harness.get_by_label("Tiny demo").click();
    harness.run_steps(2);
    assert_eq!(spin(&harness, "LoRA rank"), Some(8.0));
    assert_eq!(spin(&harness, "Max train queries"), Some(32.0));
    assert_eq!(spin(&harness, "Negatives"), Some(3.0));
    harness.get_by_label("Paper defaults").click();
    harness.run_steps(2);
    assert_eq!(spin(&harness, "LoRA rank"), Some(32.0));
    assert!(has_label(&harness, "#1 Load tiny.jsonl"));
    assert!(has_label(&harness, "#2 Rank with BM25"));
    assert!(has_label(&harness, "#4 Significance tests"), "tests start once both runs are ready");
    assert_eq!(harness.query_all_by_label("done").count(), 4);
    // Theme switch.
    assert_eq!(harness.ctx.theme(), egui::Theme::Dark);
    harness.get_by_label("Light").click();
    harness.run_steps(2);
    assert_eq!(harness.state().settings().theme, r2r::gui::state::ThemeChoice::Light);
    assert_eq!(harness.ctx.theme(), egui::Theme::Light);
}

/// A medical group whose query has gold spans: `ibuprofen` (a DRUG the bundled
/// gazetteers do not know: missed) and `3200 mg` (a DOSAGE the patterns find: a hit).
fn write_annotated_dataset(dir: &Path) -> PathBuf {
    let query = "is 3200 mg of ibuprofen a safe daily dose";
    let start = |s: &str| query.find(s).unwrap();
    let group = serde_json::json!({
        "id": "med-gold", "domain": "medical", "split": "test", "query": query,
        "query_entities": [
            {"start": start("3200 mg"), "end": start("3200 mg") + 7, "label": "DOSAGE"},
            {"start": start("ibuprofen"), "end": start("ibuprofen") + 9, "label": "DRUG"},
        ],
        "candidates": [
            {"id": "c0", "text": "Ibuprofen: adults may take a maximum daily dose of 3200 mg under supervision.", "relevance": 1},
            {"id": "c1", "text": "Knee replacement surgery usually needs several weeks of rehabilitation.", "relevance": 0},
        ],
    });
    let path = dir.join("annotated.jsonl");
    std::fs::write(&path, format!("{group}\n")).unwrap();
    path
}

#[test]
fn abstraction_panel_masks_toggles_and_applies_corrections() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_annotated_dataset(dir.path());
    let corrections = dir.path().join("my-corrections.json");
    let options = StartOptions { data: Some(path), corrections: Some(corrections.clone()), ..Default::default() };
    let mut harness = harness(options);
    step_until(&mut harness, "the dataset", |h| h.state().workspace().dataset.is_some());
    harness.get_by_label("Abstraction").click();
    harness.run_steps(3);
    harness.check_accessibility();

    // Placeholders in the abstracted texts: the dosage in the query and the
    // candidate (same surface, same placeholder), the procedure in the second candidate.
    assert_eq!(harness.query_all_by_label("[DOSAGE_1]").count(), 2);
    assert_eq!(harness.query_all_by_label("[PROCEDURE_1]").count(), 1);
    assert!(has_label(&harness, "3200 mg DOSAGE"), "the original shows the span with its type");
    assert!(has_label(&harness, "1 found, 1 masked"), "per-type counts (PROCEDURE)");
    let shown = harness.get_by_role_and_label(Role::TextInput, "Corrections file:").value();
    assert_eq!(shown.as_deref(), Some(corrections.display().to_string().as_str()), "the corrections file is shown");

    // Untick DOSAGE: the dosage stays in the abstracted text.
    harness.get_by_role_and_label(Role::CheckBox, " DOSAGE ").click();
    harness.run_steps(2);
    assert_eq!(harness.query_all_by_label("[DOSAGE_1]").count(), 0);
    assert!(has_label(&harness, "2 found, 0 masked"));
    harness.get_by_role_and_label(Role::CheckBox, " DOSAGE ").click();
    harness.run_steps(2);
    assert_eq!(harness.query_all_by_label("[DOSAGE_1]").count(), 2);

    // Add "ibuprofen" as a DRUG: masked at once in the query and the candidate, and saved.
    let surface = harness.get_by_role_and_label(Role::TextInput, "Add to gazetteer:");
    surface.click();
    surface.type_text("ibuprofen");
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::ComboBox, "Type:").click();
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::Button, "DRUG").click();
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::Button, "Add").click();
    harness.run_steps(3);
    assert_eq!(harness.query_all_by_label("[DRUG_1]").count(), 2, "query and candidate");
    let saved = std::fs::read_to_string(&corrections).unwrap();
    assert!(saved.contains("\"ibuprofen\"") && saved.contains("\"DRUG\""), "{saved}");

    // Click the procedure span: the panel asks first; nothing is written until confirmed.
    let before = std::fs::read_to_string(&corrections).unwrap();
    harness.get_by_label("Knee replacement PROCEDURE").click();
    harness.run_steps(3);
    assert!(has_label(&harness, "Mark “Knee replacement” as not an entity?"));
    assert_eq!(std::fs::read_to_string(&corrections).unwrap(), before, "no write before confirmation");
    harness.get_by_role_and_label(Role::Button, "Cancel").click();
    harness.run_steps(2);
    assert!(!has_label(&harness, "Mark “Knee replacement” as not an entity?"));
    assert!(harness.query_all_by_label("[PROCEDURE_1]").count() >= 1, "cancelled: still masked");
    // Confirmed for any type: not an entity any more, unmasked, saved, and said so.
    harness.get_by_label("Knee replacement PROCEDURE").click();
    harness.run_steps(3);
    harness.get_by_role_and_label(Role::Button, "Not an entity of any type").click();
    harness.run_steps(3);
    assert!(has_label_containing(&harness, "Marked “Knee replacement” as not an entity (any type)"));
    assert_eq!(harness.query_all_by_label("[PROCEDURE_1]").count(), 0);
    let saved = std::fs::read_to_string(&corrections).unwrap();
    assert!(saved.contains("not_entity") && saved.contains("Knee replacement"), "{saved}");

    // Gold spans: both query spans are now found (no misses); the candidate's spans are false alarms.
    harness.get_by_label("Gold spans").click();
    harness.run_steps(2);
    assert!(has_label(&harness, "ibuprofen DRUG"));
    assert!(!has_label_containing(&harness, "DRUG · missed"));
    assert!(has_label(&harness, "Gold spans in this group: 2 · found 2 · missed 0 · false alarms 2"));
    assert!(has_label(&harness, "3200 mg DOSAGE · false alarm"), "the candidate has no gold spans");

    // A corrections file written by the panel is read back by a new session.
    drop(harness);
    let options = StartOptions { data: Some(dir.path().join("annotated.jsonl")), corrections: Some(corrections), ..Default::default() };
    let mut harness = self::harness(options);
    step_until(&mut harness, "the dataset", |h| h.state().workspace().dataset.is_some());
    harness.get_by_label("Abstraction").click();
    harness.run_steps(3);
    assert_eq!(harness.query_all_by_label("[DRUG_1]").count(), 2);
    assert_eq!(harness.query_all_by_label("[PROCEDURE_1]").count(), 0);
}

/// The app on `data` (corrections in `corrections`), showing the Abstraction panel in gold-span mode.
fn abstraction_in_gold_mode(data: PathBuf, corrections: &Path) -> Harness<'static, WorkbenchApp> {
    let options = StartOptions { data: Some(data), corrections: Some(corrections.to_path_buf()), ..Default::default() };
    let mut harness = harness(options);
    step_until(&mut harness, "the dataset", |h| h.state().workspace().dataset.is_some());
    harness.get_by_label("Abstraction").click();
    harness.run_steps(3);
    harness.get_by_label("Gold spans").click();
    harness.run_steps(2);
    harness
}

#[test]
fn abstraction_gold_mode_marks_misses() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_annotated_dataset(dir.path());
    let mut harness = abstraction_in_gold_mode(path, &dir.path().join("none.json"));
    assert!(has_label(&harness, "ibuprofen DRUG · missed"), "ibuprofen is in no bundled gazetteer");
    assert!(has_label(&harness, "3200 mg DOSAGE"), "a hit");
    // The data annotates DRUG and DOSAGE only: "3200 mg" in the candidate (no gold spans there) is a false
    // alarm, the knee replacement (PROCEDURE) is neither hit nor false alarm.
    assert!(has_label(&harness, "Gold spans in this group: 2 · found 1 · missed 1 · false alarms 1 · not annotated in this data, not shown: PROCEDURE"));
    // Clicking a missed span adds it to its type's gazetteer.
    harness.get_by_label("ibuprofen DRUG · missed").click();
    harness.run_steps(3);
    assert!(has_label(&harness, "ibuprofen DRUG"));
    assert!(!has_label_containing(&harness, "DRUG · missed"));
    assert!(
        has_label(&harness, "Gold spans in this group: 2 · found 2 · missed 0 · false alarms 2 · not annotated in this data, not shown: PROCEDURE"),
        "Ibuprofen in the candidate is now found too"
    );
}

#[test]
fn the_query_chosen_in_datasets_opens_in_abstraction_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_dataset(dir.path());
    let options = StartOptions { data: Some(path), corrections: Some(dir.path().join("c.json")), ..Default::default() };
    let mut harness = harness(options);
    step_until(&mut harness, "the dataset", |h| h.state().workspace().dataset.is_some());
    harness.get_by_label_contains("law-2  ·").click();
    harness.run_steps(2);
    harness.get_by_label("Abstraction").click();
    harness.run_steps(2);
    assert!(has_label(&harness, "law-2"), "the Abstraction panel shows the query chosen in Datasets");
    assert!(has_label_containing(&harness, "Court fees after a lawsuit"));
    harness.get_by_label_contains("med-2  ·").click();
    harness.run_steps(2);
    harness.get_by_label("Datasets").click();
    harness.run_steps(2);
    assert!(has_label(&harness, "Iron deficiency anaemia symptoms include fatigue, pale skin and shortness of breath."));
}

/// The tiny demo config on the bundled sample data, two domains, a few queries.
fn tiny_training_config(scratch: &Path, stages: &[Stage]) -> TrainConfig {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut c = TrainConfig::load(&root.join("assets/configs/tiny.toml")).unwrap();
    c.model.path = common::tiny_model(scratch);
    c.data.path = root.join("sample_data");
    c.data.domains = vec!["legal".into(), "medical".into()];
    c.data.max_train_queries = 4;
    c.data.max_dev_queries = 2;
    c.output.dir = scratch.join("run");
    c.run.stages = stages.to_vec();
    c
}

/// As `step_until`, with a longer deadline for training.
fn step_for_long(harness: &mut Harness<'static, WorkbenchApp>, what: &str, done: impl Fn(&Harness<'static, WorkbenchApp>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        harness.step();
        if done(harness) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn training_panel_starts_a_tiny_run_and_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_training_config(dir.path(), &[Stage::Stage1, Stage::Experts, Stage::Router]);
    let options = StartOptions { panel: Some(PanelKind::Training), training_config: Some(config), ..Default::default() };
    let mut harness = harness(options);
    harness.run_steps(2);
    assert!(has_label(&harness, "No training job yet"));
    harness.get_by_label("Start training").click();
    harness.run_steps(2);
    assert!(harness.state().is_busy(), "the training job runs in the background");
    assert!(has_label(&harness, "running"));
    harness.get_by_label("Cancel training").click();
    step_until(&mut harness, "the job to stop", |h| !h.state().is_busy());
    harness.run_steps(2);
    assert!(harness.query_all_by_label("Cancelled").count() >= 2, "the job header and the job list say Cancelled");
    assert!(!dir.path().join("run/summary.json").exists(), "a cancelled run writes no summary");
}

#[test]
fn a_finished_tiny_run_shows_curves_and_its_router_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny_training_config(dir.path(), &[Stage::Experts, Stage::Router]);
    config.stage1.skip = true; // experts straight from the backbone: faster
    let options = StartOptions { panel: Some(PanelKind::Training), training_config: Some(config), ..Default::default() };
    let mut harness = harness(options);
    harness.run_steps(2);
    harness.get_by_label("Start training").click();
    step_for_long(&mut harness, "the tiny run", |h| !h.state().is_busy());
    harness.run_steps(2);
    let failure: Vec<String> = harness.query_all_by_label_contains("failed").map(|n| format!("{:?} {:?}", n.accesskit_node().value(), n.accesskit_node().role())).collect();
    assert!(has_label(&harness, "done"), "the run finished: {failure:?}");
    assert!(has_label(&harness, "Training loss"), "loss curves from the run's progress events");
    assert!(has_label_containing(&harness, "expert:legal"), "one curve per stage");
    let summary = harness.state().workspace().last_training.clone().expect("the summary reached the workspace");
    assert!(has_label(&harness, "Open in Router"), "a finished run links to the Router panel");
    assert!(dir.path().join("run/router/router.json").is_file());

    harness.get_by_label("Router").click();
    harness.run_steps(2);
    // A wrong directory first: its error goes away once the last training run is chosen.
    let field = harness.get_by_role_and_label(Role::TextInput, "Run directory");
    field.click();
    field.type_text(&dir.path().join("nowhere").display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Route").click();
    step_until(&mut harness, "the routing error", |h| has_label_containing(h, "Routing failed"));
    harness.get_by_label("Use last training run").click();
    harness.run_steps(3);
    assert!(!has_label_containing(&harness, "Routing failed"), "the old error is gone");
    assert!(harness.state().workspace().routing.is_none());
    harness.get_by_label("Route").click();
    step_until(&mut harness, "routing", |h| !h.state().is_busy());
    harness.run_steps(2);
    let Some(RunState::Ready(run)) = &harness.state().workspace().routing else { panic!("routing did not finish") };
    let run = run.clone();
    assert_eq!(run.router_dir, summary.run_dir.join("router"));
    assert_eq!(run.report.labels, vec!["legal".to_string(), "medical".to_string()]);
    let test_queries = r2r::data::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data"), &Default::default())
        .unwrap()
        .select(None, Some(r2r::data::Split::Test))
        .filter(|g| g.domain == "legal" || g.domain == "medical")
        .count();
    assert_eq!(run.report.queries, test_queries);
    assert!(has_label(&harness, &format!("Accuracy {:.3}", run.report.accuracy)));
    assert!(has_label(&harness, &format!("macro-F1 {:.3}", run.report.macro_f1)));
    // Every cell of the matrix is there with its count.
    for (t, row) in run.report.confusion.iter().enumerate() {
        for (p, count) in row.iter().enumerate() {
            let name = format!("{} → {}: {count}", run.report.labels[t], run.report.labels[p]);
            assert!(has_label(&harness, &name), "missing cell {name}");
        }
    }
    // Click the fullest cell: its queries appear with the router's probabilities.
    let (t, p) = (0..2).flat_map(|t| (0..2).map(move |p| (t, p))).max_by_key(|&(t, p)| run.report.confusion[t][p]).unwrap();
    let count = run.report.confusion[t][p];
    assert!(count > 0);
    let name = format!("{} → {}: {count}", run.report.labels[t], run.report.labels[p]);
    harness.get_by_label(&name).click();
    harness.run_steps(2);
    assert!(has_label(&harness, &format!("{count} queries of {} routed to {}", run.report.labels[t], run.report.labels[p])));
    let first = run.cell(t, p).next().unwrap();
    assert!(has_label(&harness, &first.id));
    let bar = format!("{} {:.2}", run.report.labels[p], first.probabilities[p]);
    assert!(has_label_containing(&harness, &bar), "probability bar {bar}");
    // Row-normalised view.
    harness.get_by_label("Row-normalised").click();
    harness.run_steps(2);
    let total: usize = run.report.confusion[t].iter().sum();
    let share = format!("{} → {}: {:.0}%", run.report.labels[t], run.report.labels[p], 100.0 * count as f64 / total as f64);
    assert!(has_label(&harness, &share), "missing {share}");
    assert!(!has_label(&harness, &name), "counts are replaced by shares");

    // A misrouted query (any query when none is) under the chosen and the correct expert, side by side.
    let (t, p) = (0..2).flat_map(|t| (0..2).map(move |p| (t, p))).find(|&(t, p)| t != p && run.report.confusion[t][p] > 0).unwrap_or((t, p));
    let share = {
        let total: usize = run.report.confusion[t].iter().sum();
        format!("{} → {}: {:.0}%", run.report.labels[t], run.report.labels[p], 100.0 * run.report.confusion[t][p] as f64 / total as f64)
    };
    harness.get_by_label(&share).click();
    harness.run_steps(2);
    let query = run.cell(t, p).next().unwrap().id.clone();
    harness.query_all_by_label("Compare experts").next().unwrap().click();
    step_until(&mut harness, "the expert comparison", |h| matches!(&h.state().workspace().expert_comparison, Some((_, RunState::Ready(_) | RunState::Failed(_)))));
    harness.run_steps(2);
    let Some((shown, RunState::Ready(comparison))) = &harness.state().workspace().expert_comparison else {
        panic!("the comparison failed: {:?}", harness.query_all_by_label_contains("Could not").map(|n| n.accesskit_node().value()).collect::<Vec<_>>())
    };
    assert_eq!(shown, &query);
    assert_eq!((comparison.chosen.as_str(), comparison.correct.as_str()), (run.report.labels[p].as_str(), run.report.labels[t].as_str()));
    let comparison = comparison.clone();
    assert!(has_label(&harness, &format!("Chosen expert: {}", run.report.labels[p])));
    assert!(has_label(&harness, &format!("Correct expert: {}", run.report.labels[t])));
    for ranking in [&comparison.under_chosen, &comparison.under_correct] {
        let ndcg = ranking.metric(r2r::metrics::Metric::Ndcg(Some(10)));
        assert!(has_label(&harness, &format!("NDCG@10 of this query: {ndcg:.3}")));
    }
    let n = comparison.group.candidates.len();
    assert_eq!(harness.query_all_by_label(&format!("#{n}")).count(), 2, "both lists complete");
    // The expert scores are the backbone's under each adapter: different adapters, different scores.
    if t != p {
        assert!(has_label_containing(&harness, "Misrouted: the router chose"));
        assert_ne!(comparison.under_chosen.scores, comparison.under_correct.scores);
    }

    // A missing expert directory: a clear message naming the path.
    let expert = summary.run_dir.join("experts").join(&run.report.labels[t]);
    std::fs::rename(&expert, dir.path().join("moved-expert")).unwrap();
    harness.query_all_by_label("Compare experts").next().unwrap().click();
    step_until(&mut harness, "the failure", |h| matches!(&h.state().workspace().expert_comparison, Some((_, RunState::Failed(_)))));
    harness.run_steps(2);
    assert!(has_label_containing(&harness, &format!("no expert for {}: {}", run.report.labels[t], expert.display())));

    // Another dataset: the routing of the previous data is not shown under its name.
    let other = write_dataset(dir.path());
    harness.get_by_label("Datasets").click();
    harness.run_steps(2);
    let input = harness.get_by_role_and_label(Role::TextInput, "Path:");
    input.click();
    input.type_text(&other.display().to_string());
    harness.run_steps(2);
    harness.get_by_label("Load").click();
    step_until(&mut harness, "the other dataset", |h| h.state().workspace().dataset.as_ref().is_some_and(|d| d.path == other));
    assert!(harness.state().workspace().routing.is_none() && harness.state().workspace().expert_comparison.is_none());
    harness.get_by_label("Router").click();
    harness.run_steps(2);
    assert!(!has_label_containing(&harness, "Accuracy "), "no stale report");
}

#[test]
fn rankings_panel_ranks_a_split_with_the_generalist_backbone_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_dataset(dir.path());
    let cache = dir.path().join("cache");
    let options = StartOptions {
        data: Some(path.clone()),
        panel: Some(PanelKind::Rankings),
        cache_dir: Some(cache.clone()),
        backbone: Some(r2r::model::default_backbone::bundled_path()),
        ..Default::default()
    };
    let mut harness = harness(options.clone());
    step_until(&mut harness, "both rankings", |h| h.query_all_by_label_contains("NDCG@10 of this query").count() == 2);
    let generalist = r2r::gui::systems::SystemKind::Generalist;
    assert!(harness.state().workspace().split_runs.is_empty(), "the backbone runs only when chosen");
    harness.get_by_role_and_label(Role::CheckBox, "Generalist backbone").click();
    step_until(&mut harness, "the generalist's test split", |h| {
        matches!(h.state().workspace().split_runs.get(&(generalist.clone(), r2r::data::Split::Test)), Some(RunState::Ready(_)))
    });
    harness.run_steps(2);
    let workspace = harness.state().workspace();
    assert_eq!(workspace.split_runs.len(), 1, "only the shown split is ranked");
    let run = workspace.run_for(&generalist, r2r::data::Split::Test).unwrap().clone();
    assert_eq!(run.rankings.len(), 3, "the three test queries (med-1, med-2, law-1)");
    assert_eq!(harness.query_all_by_label_contains("NDCG@10 of this query").count(), 3, "a third column");

    // The column's scores are the backbone's yes − no margins for med-1's candidates.
    let model = r2r::model::default_backbone::bundled_path();
    let reranker = r2r::model::Reranker::load(&model, &Default::default()).unwrap();
    let group = &harness.state().workspace().dataset.as_ref().unwrap().dataset.groups[0];
    assert_eq!(group.id, "med-1");
    let requests: Vec<r2r::model::ScoreRequest> =
        group.candidates.iter().map(|c| r2r::model::ScoreRequest { instruction: None, query: group.query.clone(), document: c.text.clone() }).collect();
    let margins: Vec<f32> = reranker.score(&requests, None, &Default::default()).unwrap().iter().map(|p| p.yes_logit - p.no_logit).collect();
    assert_eq!(run.rankings["med-1"].scores, margins);
    for margin in margins {
        assert!(has_label(&harness, &format!("{margin:.3}")), "score {margin:.3} shown");
    }
    // Rank-movement marks against BM25 in both other columns.
    let marks = harness
        .query_all_by_role(Role::Label)
        .filter_map(|node| node.accesskit_node().value())
        .filter(|text| text == "=" || text.starts_with('↑') || text.starts_with('↓'))
        .count();
    assert_eq!(marks, 8, "4 candidates × 2 columns");

    // The scores are cached on disk: a new session ranks the same split from the cache.
    let cached: Vec<PathBuf> = std::fs::read_dir(cache.join("generalist")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    drop(harness);
    let mut harness = self::harness(options);
    step_until(&mut harness, "BM25", |h| h.state().workspace().run(&r2r::gui::systems::SystemKind::Bm25).is_some());
    harness.get_by_role_and_label(Role::CheckBox, "Generalist backbone").click();
    step_until(&mut harness, "the cached test split", |h| {
        matches!(h.state().workspace().split_runs.get(&(generalist.clone(), r2r::data::Split::Test)), Some(RunState::Ready(_)))
    });
    let again = harness.state().workspace().run_for(&generalist, r2r::data::Split::Test).unwrap().clone();
    assert_eq!(again.rankings["med-1"].scores, run.rankings["med-1"].scores);
    assert!(harness.state().jobs().all().iter().any(|j| j.log.iter().any(|l| l.contains("from the cache"))), "read from the cache");
}

/// `r2r experiment` on a tiny subset of the sample data into `out` (the same
/// setup as tests/experiment.rs).
fn tiny_experiment(scratch: &Path, out: &Path) -> serde_json::Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = format!(
        "[train.data]\npath = {:?}\ndomains = [\"legal\", \"medical\"]\nood_domains = [\"general\"]\nmax_train_queries = 6\nmax_dev_queries = 2\n\
         [train.model]\npath = {:?}\nmax_length = 96\n[train.lora]\nrank = 4\nalpha = 8.0\n[train.objective]\nscore = \"logit\"\nnegatives = 3\n\
         [train.optim]\nlearning_rate = 0.001\nbatch_groups = 3\n[experiment]\nmax_eval_queries = 3\npermutations = 500\n",
        root.join("sample_data").display().to_string(),
        common::tiny_model(scratch).display().to_string()
    );
    let config: r2r::experiment::ExperimentConfig = toml::from_str(&text).unwrap();
    let (tx, _rx) = crossbeam_channel::unbounded();
    let ctx = r2r::train::JobContext::new(tx, std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)), None);
    let results = r2r::experiment::run_experiment(&config, out, &ctx).unwrap();
    r2r::experiment::report::write_outputs(&results, out).unwrap();
    serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap()
}

/// One tiny experiment shared by the tests of this crate that open one (built
/// once, in Cargo's scratch directory for integration tests); tests read it only.
fn shared_experiment() -> &'static (PathBuf, serde_json::Value) {
    static EXPERIMENT: std::sync::OnceLock<(PathBuf, serde_json::Value)> = std::sync::OnceLock::new();
    EXPERIMENT.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let scratch = tmp.join(format!("gui-experiment-{}", std::process::id()));
        // Earlier runs' experiments go (each run builds its own).
        for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with("gui-experiment-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        std::fs::create_dir_all(&scratch).unwrap();
        let out = scratch.join("exp");
        let results = tiny_experiment(&scratch, &out);
        (out, results)
    })
}

/// The rows of a CSV file the app wrote, re-read.
fn read_csv(path: &Path) -> Vec<Vec<String>> {
    r2r::export::parse_csv(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The one file in `dir` whose name starts with `prefix`.
fn exported(dir: &Path, prefix: &str) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix)).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[test]
fn rankings_panel_opens_an_experiment_and_compares_r2r_lsr_with_generalist() {
    let (out, results) = shared_experiment();
    let (out, results) = (out.clone(), results.clone());
    let exports = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
    let options = StartOptions { data: Some(sample), panel: Some(PanelKind::Rankings), export_dir: Some(exports.path().to_path_buf()), ..Default::default() };
    let mut harness = harness(options);
    step_until(&mut harness, "the sample data and its BM25 run", |h| {
        h.state().workspace().run(&r2r::gui::systems::SystemKind::Bm25).is_some() && h.state().workspace().run(&r2r::gui::systems::SystemKind::RandomOrder).is_some()
    });

    let field = harness.get_by_role_and_label(Role::TextInput, "Experiment:");
    field.click();
    field.type_text(&out.display().to_string());
    harness.step();
    harness.get_by_role_and_label(Role::Button, "Load").click();
    step_until(&mut harness, "the experiment", |h| h.state().workspace().experiment_runs().is_some());
    harness.run_steps(3);
    let experiment = harness.state().workspace().experiment_runs().unwrap().clone();
    assert!(experiment.problems.is_empty(), "{:?}", experiment.problems);
    let names: Vec<&str> = experiment.runs.iter().map(|r| r.system.name()).collect();
    assert_eq!(names, r2r::experiment::System::ALL.map(r2r::experiment::System::name).to_vec(), "one system per run-file name, in the experiment's order");
    for name in ["r2r_lsr", "generalist", "direct", "r2r_oracle"] {
        assert!(harness.query_by_role_and_label(Role::CheckBox, name).is_some(), "checkbox {name}");
    }
    let chosen: Vec<String> = harness.state().settings().rankings.systems.iter().map(|s| s.name().to_string()).collect();
    assert_eq!(chosen, ["BM25", "Random order (seeded)", "generalist", "r2r_lsr"], "the chosen systems stay; the experiment's generalist and R2R join them");

    // The common query set: the experiment ranked a few queries per domain, BM25 all of
    // them; every mean in a row is over the N queries all four ranked, and the row says so.
    let lsr_test = r2r::metrics::Run::read(&out.join("runs").join("r2r_lsr.test.trec")).unwrap();
    let ndcg = r2r::metrics::Metric::Ndcg(Some(10));
    for domain in ["legal", "medical"] {
        let workspace = harness.state().workspace();
        let dataset = &workspace.dataset.as_ref().unwrap().dataset;
        let all: Vec<&str> = dataset.groups.iter().filter(|g| g.domain == domain && g.split == r2r::data::Split::Test).map(|g| g.id.as_str()).collect();
        let common: Vec<&str> = all.iter().copied().filter(|id| lsr_test.scores.contains_key(*id)).collect();
        assert!(!common.is_empty() && common.len() < all.len(), "{domain}: the experiment ranks a subset");
        let label = format!("{} (of {})", common.len(), all.len());
        assert!(has_label(&harness, &label), "{domain}: N shown as {label}");
        let bm25 = workspace.run(&r2r::gui::systems::SystemKind::Bm25).unwrap();
        let values = bm25.values(ndcg, &common);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!(has_label(&harness, &format!("{mean:.3}")), "{domain}: BM25's mean {mean:.3} over the common queries");
    }
    assert!(has_label_containing(&harness, "The systems ranked different queries"));

    // The table saves as CSV, and the file reads back with the shown means.
    harness.get_by_label("Save table CSV").click();
    harness.run_steps(2);
    let rows = read_csv(&exported(exports.path(), "rankings_NDCG_10"));
    assert_eq!(rows[0][..6], ["domain", "BM25", "Random order (seeded)", "generalist", "r2r_lsr", "queries"]);
    let legal = rows.iter().find(|r| r[0] == "legal").unwrap();
    let expected = results["systems"]["r2r_lsr"]["test"]["legal"]["ndcg@10"].as_f64().unwrap();
    assert!((legal[4].parse::<f64>().unwrap() - expected).abs() < 1e-6, "{legal:?}");
    assert_eq!(legal[5], lsr_test.scores.keys().filter(|q| q.starts_with("legal")).count().to_string());

    // Untick the built-in systems: generalist (reference) against R2R, as the paper compares them.
    harness.get_by_role_and_label(Role::CheckBox, "BM25").click();
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::CheckBox, "Random order (seeded)").click();
    harness.run_steps(3);
    let chosen: Vec<String> = harness.state().settings().rankings.systems.iter().map(|s| s.name().to_string()).collect();
    assert_eq!(chosen, ["generalist", "r2r_lsr"]);

    // Per-domain means equal results.json's (test split, NDCG@10).
    for domain in ["legal", "medical"] {
        for system in ["generalist", "r2r_lsr"] {
            let mean = results["systems"][system]["test"][domain]["ndcg@10"].as_f64().unwrap();
            assert!(harness.query_all_by_label(&format!("{mean:.3}")).next().is_some(), "{system}/{domain} mean {mean:.3}");
        }
    }
    // Significance marks from results.json: one per tested domain, with the p-value in the tooltip.
    let expected: Vec<&str> = ["legal", "medical"]
        .iter()
        .map(|d| {
            let test = results["significance"].as_array().unwrap().iter().find(|s| s["baseline"] == "generalist" && s["split"] == "test" && s["domain"] == *d).unwrap();
            let p = test["p_value"].as_f64().unwrap();
            if p < 0.01 { "**" } else if p < 0.05 { "*" } else { "n.s." }
        })
        .collect();
    let shown = ["**", "*", "n.s."].iter().map(|m| harness.query_all_by_label(m).count()).sum::<usize>();
    assert_eq!(shown, 2, "marks {expected:?}");
    for mark in &expected {
        assert!(harness.query_all_by_label(mark).next().is_some(), "mark {mark}");
    }

    // A query of the experiment: both lists, their NDCG@10 as the run files give it, arrows against generalist.
    let runs = out.join("runs");
    let lsr_run = r2r::metrics::Run::read(&runs.join("r2r_lsr.test.trec")).unwrap();
    let query = lsr_run.scores.keys().next().unwrap().clone();
    let search = harness.get_by_role_and_label(Role::TextInput, "Search:");
    search.click();
    search.type_text(&query);
    harness.run_steps(3);
    let group = harness.state().workspace().dataset.as_ref().unwrap().dataset.groups.iter().find(|g| g.id == query).unwrap().clone();
    let qrels = r2r::metrics::ranking::qrels_from_groups([&group]);
    let ndcg = r2r::metrics::Metric::Ndcg(Some(10));
    let mut shown_values = Vec::new();
    for system in ["generalist", "r2r_lsr"] {
        let run = r2r::metrics::Run::read(&runs.join(format!("{system}.test.trec"))).unwrap();
        let value = r2r::metrics::evaluate(&qrels, &run, &[ndcg]).per_query[&query][&ndcg];
        shown_values.push(format!("NDCG@10 of this query: {value:.3}"));
    }
    for label in &shown_values {
        assert!(harness.query_all_by_label(label).next().is_some(), "{label}");
    }
    assert_eq!(harness.query_all_by_label_contains("NDCG@10 of this query").count(), 2);
    assert_eq!(harness.query_all_by_label("#1").count(), 2);
    assert_eq!(harness.query_all_by_label(&format!("#{}", group.candidates.len())).count(), 2);
    let marks = harness
        .query_all_by_role(Role::Label)
        .filter_map(|node| node.accesskit_node().value())
        .filter(|text| text == "=" || text.starts_with('↑') || text.starts_with('↓'))
        .count();
    assert_eq!(marks, group.candidates.len(), "one movement mark per candidate of r2r_lsr");

    // A malformed run file: the panel names the file and line; that file's queries
    // drop out of its system (its other splits' files still load), the other systems stay.
    std::fs::write(runs.join("direct.test.trec"), format!("{query} Q0 {} x 1.0 direct\n", group.candidates[0].id)).unwrap();
    harness.get_by_role_and_label(Role::Button, "Load").click();
    step_until(&mut harness, "the reload", |h| h.state().workspace().experiment_runs().is_some_and(|e| !e.problems.is_empty()));
    harness.run_steps(3);
    assert!(has_label_containing(&harness, "direct.test.trec:1:"), "file and line named");
    let workspace = harness.state().workspace();
    let direct = workspace.run(&r2r::gui::systems::SystemKind::Experiment("direct".into())).expect("direct from its other run files");
    assert!(!direct.rankings.contains_key(&query) && !direct.rankings.is_empty());
    let lsr = workspace.run(&r2r::gui::systems::SystemKind::Experiment("r2r_lsr".into())).unwrap();
    assert!(lsr.rankings.contains_key(&query));
}

#[test]
fn router_panel_opens_an_experiment_its_misroutes_and_their_expert_comparison() {
    let (out, results) = shared_experiment();
    let exports = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
    let options = StartOptions { data: Some(sample), panel: Some(PanelKind::Router), export_dir: Some(exports.path().to_path_buf()), ..Default::default() };
    let mut harness = harness(options);
    step_until(&mut harness, "the sample data", |h| h.state().workspace().dataset.is_some());
    // The experiment's training/ directory opens the experiment (its router/ is the LSR alone).
    let field = harness.get_by_role_and_label(Role::TextInput, "Run directory");
    field.click();
    field.type_text(&out.join("training").display().to_string());
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::Button, "Open experiment").click();
    step_until(&mut harness, "the experiment", |h| matches!(&h.state().workspace().routing_experiment, Some((_, RunState::Ready(_) | RunState::Failed(_)))));
    harness.run_steps(3);
    let Some((_, RunState::Ready(experiment))) = &harness.state().workspace().routing_experiment else { panic!("the experiment did not open") };
    let experiment = experiment.clone();
    assert_eq!(&experiment.dir, out);

    // The LSR's report, recomputed from results.json's confusion matrix.
    let stored = &results["routing"]["lsr"];
    let labels: Vec<String> = serde_json::from_value(stored["labels"].clone()).unwrap();
    let confusion: Vec<Vec<usize>> = serde_json::from_value(stored["confusion"].clone()).unwrap();
    let report = r2r::routing::RoutingReport::from_confusion(&labels, confusion.clone());
    assert!(has_label(&harness, &format!("Accuracy {:.3}", report.accuracy)));
    assert!(has_label(&harness, &format!("macro-F1 {:.3}", report.macro_f1)));
    for (t, row) in confusion.iter().enumerate() {
        for (p, count) in row.iter().enumerate() {
            assert!(has_label(&harness, &format!("{} → {}: {count}", labels[t], labels[p])));
        }
    }

    // The misroutes of misroute.csv, the largest NDCG@10 loss first.
    let csv = r2r::experiment::open::read_misroute_csv(&out.join("misroute.csv")).unwrap();
    assert_eq!(experiment.misroutes.len(), csv.len());
    let buttons: Vec<String> = harness.query_all_by_label_contains("Compare experts on ").filter_map(|n| n.accesskit_node().label()).collect();
    assert_eq!(buttons.len(), csv.len(), "one row per misrouted query");
    let losses: Vec<f64> = buttons
        .iter()
        .map(|b| csv.iter().find(|m| b == &format!("Compare experts on {}", m.query)).expect("a query of misroute.csv").lost())
        .collect();
    assert!(losses.windows(2).all(|w| w[0] >= w[1]), "sorted by NDCG@10 lost: {losses:?}");

    // Tables save as CSV files that read back.
    harness.get_by_label("Save matrix CSV").click();
    harness.run_steps(2);
    harness.get_by_label("Save misroutes CSV").click();
    harness.run_steps(2);
    assert!(has_label_containing(&harness, "Saved "), "{:?}", harness.query_all_by_label_contains("save").map(|n| n.accesskit_node().label()).collect::<Vec<_>>());
    let matrix = read_csv(&exported(exports.path(), "confusion_matrix"));
    assert_eq!(matrix[0][1..], labels[..]);
    for (t, row) in confusion.iter().enumerate() {
        let counts: Vec<usize> = matrix[t + 1][1..].iter().map(|c| c.parse().unwrap()).collect();
        assert_eq!(&counts, row);
    }
    let misroutes = read_csv(&exported(exports.path(), "misroutes"));
    assert_eq!(misroutes.len(), csv.len() + 1);

    // A router that sends everything to one expert: precision of the other is undefined ("—").
    harness.get_by_role_and_label(Role::ComboBox, "Router:").click();
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::Button, "static:legal").click();
    harness.run_steps(2);
    assert!(has_label(&harness, "—"), "undefined precision shown as —");

    // One click from a misroute to the side-by-side expert comparison.
    let Some(first) = experiment.misroutes.first() else {
        eprintln!("note: the tiny experiment misrouted no query; the comparison is covered by the trained-run test");
        return;
    };
    harness.get_by_label(&format!("Compare experts on {}", first.query)).click();
    step_until(&mut harness, "the expert comparison", |h| matches!(&h.state().workspace().expert_comparison, Some((_, RunState::Ready(_) | RunState::Failed(_)))));
    harness.run_steps(2);
    let Some((_, RunState::Ready(comparison))) = &harness.state().workspace().expert_comparison else {
        panic!("the comparison failed: {:?}", harness.query_all_by_label_contains("Could not").map(|n| n.accesskit_node().label()).collect::<Vec<_>>())
    };
    assert_eq!((comparison.chosen.as_str(), comparison.correct.as_str()), (first.chosen.as_str(), first.domain.as_str()));
    assert!(has_label(&harness, &format!("Chosen expert: {}", first.chosen)));
    assert!(has_label(&harness, &format!("Correct expert: {}", first.domain)));
    assert!(has_label_containing(&harness, "Misrouted: the router chose"));
}

/// A first launch (no remembered experiment) opens the shipped demo run — the Gemma demo when Gemma
/// is installed, else the bundled-backbone one — in Router and Rankings, with no training.
#[test]
fn a_first_launch_shows_the_shipped_demo_in_router_and_rankings() {
    let demo = r2r::workbench::demo::shipped_demo(&r2r::model::default_backbone::default_backbone()).expect("a shipped demo for this backbone (assets/demo/tiny always ships)");
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(demo.join("results.json")).unwrap()).unwrap();
    let options = StartOptions { open_bundled_data: true, open_demo: true, panel: Some(PanelKind::Router), ..Default::default() };
    let mut harness = harness(options);
    step_until(&mut harness, "the demo's routers", |h| matches!(&h.state().workspace().routing_experiment, Some((_, RunState::Ready(_) | RunState::Failed(_)))));
    harness.run_steps(3);
    let Some((dir, RunState::Ready(routing))) = &harness.state().workspace().routing_experiment else { panic!("the demo did not open in Router") };
    assert_eq!(dir, &demo);
    assert_eq!(routing.training_dir, demo.join("training"));
    // The LSR's confusion matrix, as results.json has it.
    let stored = &results["routing"]["lsr"];
    let labels: Vec<String> = serde_json::from_value(stored["labels"].clone()).unwrap();
    let confusion: Vec<Vec<usize>> = serde_json::from_value(stored["confusion"].clone()).unwrap();
    let report = r2r::routing::RoutingReport::from_confusion(&labels, confusion.clone());
    assert!(has_label(&harness, &format!("Accuracy {:.3}", report.accuracy)), "LSR accuracy shown");
    for (t, row) in confusion.iter().enumerate() {
        for (p, count) in row.iter().enumerate() {
            assert!(has_label(&harness, &format!("{} → {}: {count}", labels[t], labels[p])));
        }
    }
    // The demo's LSR is a router the panel can route with, and its experts load (f16 weights).
    let router = r2r::routing::TrainedRouter::load(&demo.join("training").join("router")).unwrap();
    assert_eq!(router.meta.labels, labels);

    // Rankings: generalist (the reference) against R2R and BM25, per domain, with significance marks.
    harness.get_by_role_and_label(Role::Button, "Rankings").click();
    step_until(&mut harness, "the demo's systems", |h| h.state().workspace().experiment_runs().is_some());
    harness.run_steps(4);
    let chosen: Vec<String> = harness.state().settings().rankings.systems.iter().map(|s| s.name().to_string()).collect();
    assert_eq!(chosen, ["generalist", "r2r_lsr", "BM25"]);
    for domain in &labels {
        for system in ["generalist", "r2r_lsr"] {
            let mean = results["systems"][system]["test"][domain]["ndcg@10"].as_f64().unwrap();
            assert!(has_label(&harness, &format!("{mean:.3}")), "{system}/{domain} NDCG@10 {mean:.3} shown");
        }
    }
    let marks = ["**", "*", "n.s."].iter().map(|m| harness.query_all_by_label(m).count()).sum::<usize>();
    assert!(marks >= labels.len(), "a significance mark per domain for r2r_lsr against generalist ({marks})");

    // Training: the demo's curves, one loss line per job, read from its summary.json.
    harness.get_by_role_and_label(Role::Button, "Training").click();
    harness.run_steps(3);
    let curves = r2r::workbench::run_curves::RunCurves::load(&demo).unwrap();
    assert!(curves.jobs.len() >= 1 + labels.len(), "stage 1 and an expert per domain: {:?}", curves.jobs.iter().map(|j| &j.job).collect::<Vec<_>>());
    assert!(curves.jobs.iter().all(|j| !j.losses.is_empty() && j.losses.iter().all(|l| l.is_finite())), "every job has its per-step losses");
    assert!(has_label_containing(&harness, &format!("{} jobs on", curves.jobs.len())));
}

/// "Next group with misses" walks the groups in file order (skipping those without gold spans and
/// those the recognisers get exactly right) to the next with a missed gold span or a false alarm.
#[test]
fn abstraction_finds_the_next_group_with_misses() {
    let dir = tempfile::tempdir().unwrap();
    let annotated = std::fs::read_to_string(write_annotated_dataset(dir.path())).unwrap();
    let clean = serde_json::json!({
        "id": "med-clean", "domain": "medical", "split": "test", "query": "Knee replacement recovery time",
        "query_entities": [{"start": 0, "end": 16, "label": "PROCEDURE"}],
        "candidates": [{"id": "c0", "text": "Most people walk again within weeks.", "relevance": 1}],
    });
    let no_gold = serde_json::json!({
        "id": "med-plain", "domain": "medical", "split": "test", "query": "how long to rest",
        "candidates": [{"id": "c0", "text": "Rest as long as needed.", "relevance": 1}],
    });
    let path = dir.path().join("three.jsonl");
    std::fs::write(&path, format!("{clean}\n{no_gold}\n{annotated}")).unwrap();
    let mut harness = abstraction_in_gold_mode(path, &dir.path().join("none.json"));
    assert!(has_label(&harness, "Gold spans in this group: 1 · found 1 · missed 0 · false alarms 0"), "the first group is recognised exactly");
    harness.get_by_role_and_label(Role::Button, "Next group with misses").click();
    step_until(&mut harness, "the search", |h| h.query_all_by_label_contains("missed,").next().is_some() || h.query_all_by_label_contains("No group has").next().is_some());
    harness.run_steps(3);
    assert!(has_label(&harness, "med-gold: 1 missed, 2 false alarms"));
    assert!(has_label(&harness, "Gold spans in this group: 2 · found 1 · missed 1 · false alarms 2"), "med-gold shown in gold mode");
}

/// "found N" of the gold-mode summary line.
fn gold_found(harness: &Harness<'static, WorkbenchApp>) -> Option<usize> {
    let node = harness.query_all_by_label_contains("Gold spans in this group:").next()?;
    // A Label keeps its text in `value` in AccessKit.
    let label = node.accesskit_node().value().or_else(|| node.accesskit_node().label())?;
    label.split("found ").nth(1)?.split(' ').next()?.parse().ok()
}

#[test]
fn abstraction_runs_the_learned_heads_on_a_ner_test_slice_in_gold_mode() {
    if r2r::model::store::installed_path(r2r::model::store::GEMMA_3_270M.name).is_none() {
        common::missing("Gemma 3 270M (r2r model fetch gemma-3-270m)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slice = common::root().join("tests/data/ner/conll2003-test-slice.jsonl");
    let mut harness = abstraction_in_gold_mode(slice, &dir.path().join("none.json"));
    let before = gold_found(&harness).expect("the gold summary");
    harness.get_by_label("Learned entity heads").click();
    step_for_long(&mut harness, "the learned heads", |h| gold_found(h).is_some_and(|n| n > before));
    harness.get_by_label("source").click();
    harness.run_steps(3);
    assert!(has_label(&harness, "each head's threshold"), "the threshold control appears once the heads are on");
    // Unticking "each head's threshold" brings up one slider for every head and type.
    harness.get_by_label("each head's threshold").click();
    harness.run_steps(3);
    assert!(has_label_containing(&harness, "Confidence ≥"), "a confidence slider");
    assert!(gold_found(&harness).is_some());
}
