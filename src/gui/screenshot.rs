//! `r2r --screenshot OUT.png --panel NAME`: once the dataset has loaded and the
//! background jobs are done, the app asks eframe for a screenshot of its window,
//! writes it as PNG and closes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The outcome shared with `gui::run`, which reports it after the window closes.
pub type ScreenshotOutcome = Arc<Mutex<Option<Result<PathBuf, String>>>>;

pub struct ScreenshotTask {
    path: PathBuf,
    outcome: ScreenshotOutcome,
    started: Instant,
    quiet_frames: u32,
    requested: bool,
}

impl ScreenshotTask {
    /// Frames to draw after the last job finished (layout settles, plots size themselves).
    const SETTLE_FRAMES: u32 = 10;
    /// Taken anyway after this long (then it shows whatever the app shows, e.g. a load error).
    const TIMEOUT: Duration = Duration::from_secs(180);

    pub fn new(path: PathBuf, outcome: ScreenshotOutcome) -> Self {
        ScreenshotTask { path, outcome, started: Instant::now(), quiet_frames: 0, requested: false }
    }

    /// Called at the end of every frame with whether background work is still going.
    pub fn step(&mut self, ctx: &egui::Context, busy: bool) {
        ctx.request_repaint();
        if self.outcome.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        if self.requested {
            return;
        }
        self.quiet_frames = if busy { 0 } else { self.quiet_frames + 1 };
        if self.quiet_frames >= Self::SETTLE_FRAMES || self.started.elapsed() > Self::TIMEOUT {
            self.requested = true;
            let path = self.path.clone();
            let outcome = self.outcome.clone();
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                let result = write_png(&path, &image).map(|()| path).map_err(|e| format!("{e:#}"));
                *outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                repaint.request_repaint();
            });
        }
    }
}

/// Encodes an egui image as PNG and writes it atomically.
pub fn write_png(path: &std::path::Path, image: &egui::ColorImage) -> anyhow::Result<()> {
    crate::util::atomic_write(path, &png_bytes(image)?)
}

/// An egui image as PNG bytes.
pub fn png_bytes(image: &egui::ColorImage) -> anyhow::Result<Vec<u8>> {
    let [width, height] = image.size;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    let buffer = image::RgbaImage::from_raw(width as u32, height as u32, bytes)
        .ok_or_else(|| anyhow::anyhow!("image has {} pixels, expected {width}×{height}", image.pixels.len()))?;
    let mut png = std::io::Cursor::new(Vec::new());
    buffer.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}
