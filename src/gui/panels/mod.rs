//! The app's panels, one per file. A panel draws from the shared [`PanelContext`]
//! (workspace, jobs, settings) and never calls another panel.

pub mod abstraction;
pub mod datasets;
pub mod rankings;
pub mod router;
pub mod training;

use crate::gui::jobs::Jobs;
use crate::gui::state::{AppRequest, Settings, SharedSelection, Workspace};

/// What every panel gets each frame.
pub struct PanelContext<'a> {
    pub workspace: &'a Workspace,
    pub jobs: &'a mut Jobs,
    pub settings: &'a mut Settings,
    /// Requests for the app (e.g. load a dataset), handled after the frame's panels.
    pub requests: &'a mut Vec<AppRequest>,
    /// The query shown in the Datasets and Abstraction panels.
    pub selection: &'a mut SharedSelection,
}
