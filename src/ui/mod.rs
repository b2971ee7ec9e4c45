//! The desktop app: a studio-mode production switcher in egui/eframe on wgpu.
//!
//! The app is one more front-end over the engine's handle. It shares the engine's GPU device
//! (the engine draws with the device eframe created), so the preview and program monitors show
//! the compositor's own canvases with no copies. Everything the operator changes is an edit of
//! the scene collection (kept with an undo history) sent to the running engine as a whole.

mod app;
mod docks;
mod handles;
mod history;
mod monitor;
mod pickers;
mod properties;
mod settings;
mod stats;
mod window_paint;

pub use app::{TallyApp, TransitionChoice};
pub use history::History;
pub use pickers::PickFor;
pub use settings::{settings_path, AppSettings};

use std::path::PathBuf;

/// Opens the app's window on `collection` (or the bundled demo), recording to `record` from
/// the start if given, and runs until it is closed (or interrupted with Ctrl-C).
pub fn run(collection: Option<PathBuf>, record: Option<PathBuf>) -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("Tally")
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([960.0, 600.0]),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: wgpu_options(),
        ..Default::default()
    };
    eframe::run_native(
        "Tally",
        options,
        Box::new(move |cc| {
            // Ctrl-C closes the window the normal way, so the recording is finished properly.
            let ctx = cc.egui_ctx.clone();
            let _ = ctrlc::set_handler(move || {
                ctx.send_viewport_cmd(eframe::egui::ViewportCommand::Close);
                ctx.request_repaint();
            });
            let mut app = TallyApp::new(cc, collection);
            if let Some(path) = record {
                app.record_to(path);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|error| format!("the app could not start: {error}"))
}

fn wgpu_options() -> eframe::egui_wgpu::WgpuConfiguration {
    eframe::egui_wgpu::WgpuConfiguration {
        wgpu_setup: wgpu_setup(),
        ..Default::default()
    }
}

/// Vulkan (lavapipe without a GPU) unless `WGPU_BACKEND` says otherwise: the compositor is
/// tuned for it, and the GL backend would load a second driver. The device gets the limits
/// and memory hints the compositor asks for. Public for the UI tests' renderer.
pub fn wgpu_setup() -> eframe::egui_wgpu::WgpuSetup {
    use eframe::egui_wgpu::{WgpuSetup, WgpuSetupCreateNew};
    let mut setup = WgpuSetupCreateNew::without_display_handle();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        setup.instance_descriptor.backends = eframe::wgpu::Backends::VULKAN;
    }
    setup.device_descriptor = std::sync::Arc::new(|adapter| eframe::wgpu::DeviceDescriptor {
        label: Some("tally"),
        required_limits: eframe::wgpu::Limits::downlevel_defaults()
            .using_resolution(adapter.limits()),
        memory_hints: eframe::wgpu::MemoryHints::MemoryUsage,
        ..Default::default()
    });
    WgpuSetup::CreateNew(setup)
}
