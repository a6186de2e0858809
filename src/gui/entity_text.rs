//! Text with entity spans drawn displaCy-style: each span on a rounded
//! background in its type's colour, with the type in small capitals after it.
//! Spans are buttons (hover text, click), the text between them plain labels
//! that wrap with the flow and can be selected.

use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, FontId, Stroke};

/// How a span is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkStyle {
    /// A detected entity (filled with its type's colour).
    Entity,
    /// Detected but left unmasked (outlined only).
    Unmasked,
    /// A gold span the recognisers did not find (red outline).
    Missed,
    /// A detection that is not a gold span (filled, orange outline).
    FalseAlarm,
}

/// One span to draw over `text[start..end]` (byte offsets, on char boundaries).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanMark {
    pub start: usize,
    pub end: usize,
    pub label: String,
    /// The small label after the span's text (`None`: no label, e.g. placeholders).
    pub tag: Option<String>,
    pub style: MarkStyle,
    pub tooltip: String,
    /// Fill/outline colour instead of the type's (e.g. the recogniser's, when colouring by source).
    pub color: Option<Color32>,
}

/// The colour of a recogniser (colouring by source): gazetteers blue, expert corrections green, learned
/// heads violet, patterns amber, group propagation grey, the name heuristic pink.
pub fn source_color(recogniser: &str) -> Color32 {
    let hex: u32 = match recogniser {
        "gazetteer" => 0x9cc9ff,
        "user-gazetteer" | "correction" => 0x9ee09e,
        "group" => 0xc8c8c8,
        r if r.starts_with("learned:") => 0xd0b0ff,
        r if r.starts_with("pattern:") => 0xffd580,
        r if r.starts_with("heuristic") => 0xffb3c6,
        _ => 0xe0e0e0,
    };
    Color32::from_rgb((hex >> 16) as u8, (hex >> 8) as u8, hex as u8)
}

/// The colour of an entity type (displaCy's palette for the bundled types, a
/// stable pastel for any other type).
pub fn type_color(label: &str) -> Color32 {
    let hex: u32 = match label {
        "DRUG" | "COMPANY" | "ORGANIZATION" => 0x7aecec,
        "DISEASE" => 0xff9561,
        "SYMPTOM" | "JURISDICTION" | "LOCATION" => 0xfeca74,
        "PROCEDURE" | "PARTY" | "PERSON" => 0xaa9cfc,
        "DOSAGE" | "MONEY" => 0xe4e7d2,
        "ANATOMY" => 0xc887fb,
        "ICD_CODE" | "CASE_NUMBER" | "TICKER" => 0x9cc9cc,
        "STATUTE" => 0xff8197,
        "COURT" | "PRODUCT" => 0xbfeeb7,
        "DATE" => 0xbfe1d9,
        "PERCENT" => 0xf9c6d0,
        "INDEX" | "EVENT" => 0xffeb80,
        "NAME" => 0xdddddd,
        other => {
            let hue = (crate::util::stable_hash(other) % 360) as f32 / 360.0;
            return egui::ecolor::Hsva::new(hue, 0.35, 0.95, 1.0).into();
        }
    };
    Color32::from_rgb((hex >> 16) as u8, (hex >> 8) as u8, hex as u8)
}

const MISSED_COLOR: Color32 = Color32::from_rgb(220, 50, 47);
const FALSE_ALARM_COLOR: Color32 = Color32::from_rgb(240, 140, 0);

/// A small coloured chip naming a type (for legends).
pub fn type_chip(ui: &mut egui::Ui, label: &str) -> egui::Response {
    let text = egui::RichText::new(label).size(11.0).color(Color32::from_gray(25));
    ui.add(egui::Button::new(text).fill(type_color(label)).corner_radius(4).stroke(Stroke::NONE).small().sense(egui::Sense::hover()))
}

/// Draws `text` with its marks (sorted, non-overlapping) and returns the index
/// of the mark that was clicked this frame, if any.
pub fn entity_text(ui: &mut egui::Ui, text: &str, marks: &[SpanMark], font: FontId) -> Option<usize> {
    let mut clicked = None;
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = egui::vec2(0.0, 3.0);
        ui.spacing_mut().button_padding = egui::vec2(4.0, 1.0);
        let mut cursor = 0;
        for (index, mark) in marks.iter().enumerate() {
            let (Some(before), Some(surface)) = (text.get(cursor..mark.start), text.get(mark.start..mark.end)) else { continue };
            plain(ui, before, &font);
            if chip(ui, surface, mark, &font).on_hover_text(&mark.tooltip).clicked() {
                clicked = Some(index);
            }
            cursor = mark.end;
        }
        plain(ui, text.get(cursor..).unwrap_or(""), &font);
    });
    clicked
}

fn plain(ui: &mut egui::Ui, text: &str, font: &FontId) {
    if !text.is_empty() {
        ui.add(egui::Label::new(egui::RichText::new(text).font(font.clone())).wrap());
    }
}

fn chip(ui: &mut egui::Ui, surface: &str, mark: &SpanMark, font: &FontId) -> egui::Response {
    let color = mark.color.unwrap_or_else(|| type_color(&mark.label));
    let filled = matches!(mark.style, MarkStyle::Entity | MarkStyle::FalseAlarm);
    let text_color = if filled { Color32::from_gray(20) } else { ui.visuals().text_color() };
    let mut job = LayoutJob::default();
    job.append(surface, 0.0, TextFormat { font_id: font.clone(), color: text_color, ..Default::default() });
    if let Some(tag) = &mark.tag {
        let tag_format = TextFormat {
            font_id: FontId::proportional((font.size * 0.68).max(9.0)),
            color: if filled { Color32::from_gray(55) } else { ui.visuals().weak_text_color() },
            valign: egui::Align::Center,
            ..Default::default()
        };
        // A real space (not only spacing), so the accessible name reads "surface TYPE".
        job.append(" ", 2.0, tag_format.clone());
        job.append(tag, 0.0, tag_format);
    }
    let (fill, stroke) = match mark.style {
        MarkStyle::Entity => (color, Stroke::NONE),
        MarkStyle::Unmasked => (Color32::TRANSPARENT, Stroke::new(1.5, color)),
        MarkStyle::Missed => (Color32::TRANSPARENT, Stroke::new(2.0, MISSED_COLOR)),
        MarkStyle::FalseAlarm => (color, Stroke::new(2.5, FALSE_ALARM_COLOR)),
    };
    ui.add_space(2.0);
    let response = ui.add(egui::Button::new(job).fill(fill).stroke(stroke).corner_radius(5).small());
    ui.add_space(2.0);
    response
}
