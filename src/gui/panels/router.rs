//! Router panel. Needs a trained Latent Semantic Router (from the training
//! engine, not in this build yet), so it shows what it will hold and no data.
//!
//! Planned layout: a router picker; a confusion-matrix heatmap (egui_plot
//! `Heatmap`, counts or row-normalised) with accuracy, macro-F1 and a per-class
//! table; a clicked cell lists its queries with the router's probability bars;
//! a misrouted query opens its ranked candidates under the chosen and the correct
//! expert side by side.

use super::PanelContext;
use crate::gui::widgets;

#[derive(Default)]
pub struct RouterPanel {}

impl RouterPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, _cx: &mut PanelContext<'_>) {
        widgets::not_available(
            ui,
            "Router",
            "needs a trained router from the training engine, which is not in this build",
            &[
                "the confusion matrix of any trained router (counts or row-normalised), with accuracy and macro-F1",
                "a per-class table of precision, recall and F1",
                "the queries of a clicked cell with the router's probability bars",
                "a misrouted query's candidates under the chosen expert and the correct one, side by side",
            ],
        );
    }
}
