//! Abstraction panel. Needs the entity abstraction engine (`r2r::abstraction`),
//! not in this build yet, so it shows what it will hold and no data.
//!
//! Planned layout: a query-group picker; original and abstracted text side by
//! side with entity spans coloured by type (legend; hover shows type,
//! placeholder and recogniser); type toggles and an intensity slider; per-type
//! counts; gazetteer additions and not-an-entity corrections; gold-span mode with
//! misses and false alarms marked.

use super::PanelContext;
use crate::gui::widgets;

#[derive(Default)]
pub struct AbstractionPanel {}

impl AbstractionPanel {
    pub fn ui(&mut self, ui: &mut egui::Ui, _cx: &mut PanelContext<'_>) {
        widgets::not_available(
            ui,
            "Entity abstraction",
            "needs the entity abstraction engine, which is not in this build",
            &[
                "original and abstracted text side by side, entity spans coloured by type",
                "toggles for the types to mask, an intensity slider and per-type counts",
                "gazetteer additions and not-an-entity corrections, applied at once",
                "gold spans where the data has them, with misses and false alarms marked",
            ],
        );
    }
}
