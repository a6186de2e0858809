//! Captures text the user selects in labels: egui reports a settled selection
//! as `OutputCommand::TextSelectionSettled` at the end of a pass; this plugin
//! keeps the latest one with the pass it came from, so a panel can offer
//! "add the selected text to a gazetteer".

use egui::{Context, FullOutput, OutputCommand};

#[derive(Default)]
pub struct SelectionCapture {
    latest: Option<(String, u64)>,
}

impl egui::Plugin for SelectionCapture {
    fn debug_name(&self) -> &'static str {
        "SelectionCapture"
    }

    fn output_hook(&mut self, ctx: &Context, output: &mut FullOutput) {
        for command in &output.platform_output.commands {
            if let OutputCommand::TextSelectionSettled(text) = command {
                self.latest = Some((text.clone(), ctx.cumulative_pass_nr()));
            }
        }
    }
}

impl SelectionCapture {
    /// Takes the latest settled selection and the pass number it settled in.
    pub fn take(ctx: &Context) -> Option<(String, u64)> {
        ctx.plugin_or_default::<SelectionCapture>().lock().latest.take()
    }
}
