//! The desktop app driven through its accessibility tree with egui_kittest (no
//! GPU, no display): open the app, load a dataset in the background, read the
//! statistics, browse queries, compare two systems' rankings, and see a load
//! error with its file and line while the app stays up.
#![cfg(feature = "gui")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use r2r::gui::app::{StartOptions, WorkbenchApp};

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
    assert!(has_label_containing(&harness, "Not available yet"));
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

    // Click the procedure span: not an entity any more, unmasked, saved.
    harness.get_by_label("Knee replacement PROCEDURE").click();
    harness.run_steps(3);
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

#[test]
fn abstraction_gold_mode_marks_misses() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_annotated_dataset(dir.path());
    let options = StartOptions { data: Some(path), corrections: Some(dir.path().join("none.json")), ..Default::default() };
    let mut harness = harness(options);
    step_until(&mut harness, "the dataset", |h| h.state().workspace().dataset.is_some());
    harness.get_by_label("Abstraction").click();
    harness.run_steps(3);
    harness.get_by_label("Gold spans").click();
    harness.run_steps(2);
    assert!(has_label(&harness, "ibuprofen DRUG · missed"), "ibuprofen is in no bundled gazetteer");
    assert!(has_label(&harness, "3200 mg DOSAGE"), "a hit");
    assert!(has_label(&harness, "Gold spans in this group: 2 · found 1 · missed 1 · false alarms 2"));
    // Clicking a missed span adds it to its type's gazetteer.
    harness.get_by_label("ibuprofen DRUG · missed").click();
    harness.run_steps(3);
    assert!(has_label(&harness, "ibuprofen DRUG"));
    assert!(!has_label_containing(&harness, "DRUG · missed"));
    assert!(has_label(&harness, "Gold spans in this group: 2 · found 2 · missed 0 · false alarms 3"), "Ibuprofen in the candidate is now found too");
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
