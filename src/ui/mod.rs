//! The desktop app: a studio-mode production switcher in egui on wgpu.
//!
//! The app is one more front-end over the show controller (`crate::control`), which owns the
//! collection, its undo history, the settings and the engine session; the app keeps only what
//! the window shows and how. It shares the engine's GPU device (the engine draws with the device
//! the window's renderer created), so the preview and program monitors show the compositor's
//! own canvases with no copies. The window runs in the app's own winit loop (`window_loop`); the UI
//! tests drive the same `TallyApp` through eframe's `App` trait.

mod app;
mod cue_list;
mod damage;
mod docks;
mod handles;

mod mesh_paint;
mod monitor;
mod pickers;
mod properties;
mod window_loop;
mod window_paint;
mod x11_shm;

pub use app::{demo_collection, TallyApp, TransitionChoice};
pub use pickers::PickFor;

use std::path::PathBuf;

/// Opens the app's window on `collection` (or the bundled demo), recording to `record` from
/// the start if given, and runs until it is closed (or interrupted with Ctrl-C).
pub fn run(
    collection: Option<PathBuf>,
    record: Option<PathBuf>,
) -> Result<(), window_loop::WindowError> {
    let viewport = eframe::egui::ViewportBuilder::default()
        .with_title("Tally")
        .with_inner_size([1280.0, 800.0])
        .with_min_inner_size([960.0, 600.0]);
    let make_app = move |ctx: &eframe::egui::Context, render_state: &_| {
        // Ctrl-C (and SIGTERM, SIGHUP, SIGQUIT) close the window the normal way, so the
        // recording is finished properly.
        let interrupted = ctx.clone();
        if let Err(error) = crate::signals::on_stop_signal(move |_| {
            interrupted.send_viewport_cmd(eframe::egui::ViewportCommand::Close);
            interrupted.request_repaint();
        }) {
            tracing::error!("Ctrl-C will end Tally without finishing its recording: {error}");
        }
        TallyApp::on_context_without_engine(
            ctx,
            Some(render_state),
            collection,
            crate::control::settings_path(),
        )
    };
    // The engine starts once the window has drawn its first frame (see
    // `TallyApp::on_context_without_engine`).
    let after_first_frame = move |app: &mut TallyApp| match record {
        Some(path) => app.record_to(path),
        None => app.ensure_engine(),
    };
    window_loop::run(viewport, wgpu_setup(), make_app, after_first_frame)
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
