//! The app's window: a winit event loop that feeds egui (egui-winit), runs the app's passes and
//! draws them (`mesh_paint`). It takes the place of eframe's loop because of how the frame
//! reaches the screen. A frame is presented only once it has been rendered: wgpu holds the
//! device's submission lock while it presents, and on a software adapter under an X server
//! without DRI3 the present waits inside that lock for the frame to be drawn and then copies
//! it to the server, which kept the engine's frames waiting (BENCHMARKS.md, seventh
//! measurement). All of that is the software rasteriser's path, and [`Presenter`] chooses it
//! once, when the window opens: on a software adapter egui's meshes go through the branch-free
//! shader (`mesh_paint`), each frame is waited for before it is presented, and where the X
//! server takes MIT-SHM it goes there instead of the swapchain, redrawing only what changed
//! (`x11_shm`, `damage`); on a GPU, egui-wgpu's own renderer draws into the swapchain and a
//! frame is presented as soon as it is submitted, so the GPU draws it while the CPU lays out
//! the next. The UI tests drive the same `TallyApp` through eframe's `App` and egui_kittest.

use super::app::TallyApp;
use super::damage::{self, Damage, DamageTracker};
use super::mesh_paint::{self, MeshPainter};
use super::x11_shm::{self, ShmPresenter};
use eframe::egui;
use eframe::egui_wgpu::{self, RenderState, RendererOptions, ScreenDescriptor};
use eframe::wgpu;
use egui_winit::accesskit_winit;
use egui_winit::winit;
use std::sync::Arc;
use std::time::Instant;
use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy};
use winit::window::{Window, WindowId};

/// Opens the window and runs the app in it until it closes; `after_first_frame` runs once,
/// after the first pass has drawn (or tried to draw) its frame.
pub fn run(
    viewport: egui::ViewportBuilder,
    wgpu_setup: egui_wgpu::WgpuSetup,
    make_app: impl FnOnce(&egui::Context, &RenderState) -> TallyApp + 'static,
    after_first_frame: impl FnOnce(&mut TallyApp) + 'static,
) -> Result<(), WindowError> {
    let event_loop = EventLoop::<Wake>::with_user_event().build()?;
    let mut handler = Handler {
        viewport,
        wgpu_setup: Some(wgpu_setup),
        make_app: Some(Box::new(make_app)),
        after_first_frame: Some(Box::new(after_first_frame)),
        proxy: event_loop.create_proxy(),
        running: None,
        failure: None,
    };
    event_loop.run_app(&mut handler)?;
    match handler.failure {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// Why the event loop is woken from another thread.
#[derive(Debug)]
enum Wake {
    /// egui wants a pass at this time; asked for during (or after) pass number `pass`.
    Repaint {
        at: Instant,
        pass: u64,
    },
    Accessibility(accesskit_winit::Event),
}

impl From<accesskit_winit::Event> for Wake {
    fn from(event: accesskit_winit::Event) -> Self {
        Self::Accessibility(event)
    }
}

type MakeApp = Box<dyn FnOnce(&egui::Context, &RenderState) -> TallyApp>;
type AfterFirstFrame = Box<dyn FnOnce(&mut TallyApp)>;

struct Handler {
    viewport: egui::ViewportBuilder,
    wgpu_setup: Option<egui_wgpu::WgpuSetup>,
    make_app: Option<MakeApp>,
    after_first_frame: Option<AfterFirstFrame>,
    proxy: EventLoopProxy<Wake>,
    running: Option<Running>,
    failure: Option<WindowError>,
}

/// Why the app's window could not open or run.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("the app could not start: {0}")]
    EventLoop(#[from] winit::error::EventLoopError),
    #[error("the app could not open its window: {0}")]
    Window(#[from] winit::error::OsError),
    #[error("the app could not draw into its window: {0}")]
    Surface(#[from] wgpu::CreateSurfaceError),
    #[error("the app found no GPU to draw with: {0}")]
    NoGpu(#[from] egui_wgpu::WgpuError),
    #[error("the GPU cannot draw into the app's window")]
    NoSurfaceFormat,
}

/// How the window's frames reach the screen, chosen once when it opens.
enum Presenter {
    /// A GPU: egui-wgpu's renderer into the swapchain, each frame presented as soon as it is
    /// submitted.
    Gpu,
    /// A software rasteriser (lavapipe without a GPU).
    Software(Box<SoftwarePresenter>),
}

/// The software rasteriser's path: every cost of drawing the window is paid on the CPU.
struct SoftwarePresenter {
    /// Draws egui's meshes; egui-wgpu's renderer draws only the paint callbacks.
    meshes: MeshPainter,
    /// Where frames go instead of the swapchain, when the X server takes them.
    shared_memory: Option<ShmPresenter>,
    /// What each pass changed, for a frame that lives on between passes (`shared_memory`).
    damage: DamageTracker,
}

impl Presenter {
    /// The software path on a software adapter, unless `TALLY_WINDOW_PRESENTER=gpu` asks for
    /// the GPU's path anyway (the tests check that path on lavapipe with it).
    fn choose(window: &Window, render: &RenderState) -> Self {
        let software = crate::render::is_software_adapter(&render.adapter.get_info());
        let forced_gpu = std::env::var("TALLY_WINDOW_PRESENTER").is_ok_and(|value| value == "gpu");
        if !software || forced_gpu {
            tracing::debug!("the window draws with egui-wgpu into the swapchain");
            return Presenter::Gpu;
        }
        Presenter::Software(Box::new(SoftwarePresenter {
            meshes: MeshPainter::new(&render.device, render.target_format),
            shared_memory: shared_memory_output(window, render),
            damage: DamageTracker::default(),
        }))
    }

    /// Whether the swapchain is where frames go (it is then kept configured).
    fn uses_swapchain(&self) -> bool {
        match self {
            Presenter::Gpu => true,
            Presenter::Software(software) => software.shared_memory.is_none(),
        }
    }
}

/// The open window and what draws into it.
struct Running {
    window: Arc<Window>,
    egui_ctx: egui::Context,
    input: egui_winit::State,
    /// What egui knows of the window (size, focus, close requests), sent with each pass.
    info: egui::ViewportInfo,
    surface: wgpu::Surface<'static>,
    surface_config: wgpu::SurfaceConfiguration,
    render: RenderState,
    presenter: Presenter,
    app: TallyApp,
    /// When egui next wants a pass.
    repaint_at: Option<Instant>,
    /// egui's passes so far (its cumulative pass number).
    passes: u64,
    /// The surface no longer matches the window (a frame came back suboptimal).
    reconfigure: bool,
    closing: bool,
}

impl ApplicationHandler<Wake> for Handler {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.running.is_some() {
            return;
        }
        let (Some(wgpu_setup), Some(make_app)) = (self.wgpu_setup.take(), self.make_app.take())
        else {
            return;
        };
        match Running::open(
            event_loop,
            &self.viewport,
            wgpu_setup,
            make_app,
            &self.proxy,
        ) {
            Ok(running) => {
                running.window.request_redraw();
                self.running = Some(running);
            }
            Err(failure) => {
                self.failure = Some(failure);
                event_loop.exit();
            }
        }
    }

    fn user_event(&mut self, _event_loop: &ActiveEventLoop, wake: Wake) {
        let Some(running) = &mut self.running else {
            return;
        };
        match wake {
            Wake::Repaint { at, pass } => {
                // Made during the last pass or since: not yet met (a request from before the
                // last pass was met by it).
                if pass + 1 >= running.passes {
                    running.repaint_at = Some(running.repaint_at.map_or(at, |old| old.min(at)));
                }
            }
            Wake::Accessibility(event) => match event.window_event {
                accesskit_winit::WindowEvent::InitialTreeRequested => {
                    running.egui_ctx.enable_accesskit();
                    running.window.request_redraw();
                }
                accesskit_winit::WindowEvent::ActionRequested(request) => {
                    running.input.on_accesskit_action_request(request);
                    running.window.request_redraw();
                }
                accesskit_winit::WindowEvent::AccessibilityDeactivated => {
                    running.egui_ctx.disable_accesskit();
                }
            },
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        let Some(running) = &mut self.running else {
            return;
        };
        match &event {
            WindowEvent::RedrawRequested => {
                running.pass();
                if running.closing {
                    event_loop.exit();
                } else if let Some(after_first_frame) = self.after_first_frame.take() {
                    after_first_frame(&mut running.app);
                }
                return;
            }
            WindowEvent::Resized(size) => running.resize(size.width, size.height),
            WindowEvent::CloseRequested => {
                // The app hears of it in its next pass, and may cancel it (unsaved edits).
                running.info.events.push(egui::ViewportEvent::Close);
                running.window.request_redraw();
            }
            _ => {}
        }
        let response = running.input.on_window_event(&running.window, &event);
        if response.repaint {
            running.window.request_redraw();
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let Some(running) = &mut self.running else {
            return;
        };
        match running.repaint_at {
            Some(at) if at <= Instant::now() => {
                running.repaint_at = None;
                running.window.request_redraw();
                event_loop.set_control_flow(ControlFlow::Wait);
            }
            Some(at) => event_loop.set_control_flow(ControlFlow::WaitUntil(at)),
            None => event_loop.set_control_flow(ControlFlow::Wait),
        }
    }

    fn exiting(&mut self, _event_loop: &ActiveEventLoop) {
        if let Some(mut running) = self.running.take() {
            running.app.finish();
        }
    }
}

impl Running {
    fn open(
        event_loop: &ActiveEventLoop,
        viewport: &egui::ViewportBuilder,
        wgpu_setup: egui_wgpu::WgpuSetup,
        make_app: MakeApp,
        proxy: &EventLoopProxy<Wake>,
    ) -> Result<Self, WindowError> {
        let egui_ctx = egui::Context::default();
        // No second native window is ever opened: a viewport would be drawn inside this one.
        egui_ctx.set_embed_viewports(true);
        let window = Arc::new(egui_winit::create_window(&egui_ctx, event_loop, viewport)?);
        let config = egui_wgpu::WgpuConfiguration {
            wgpu_setup,
            ..Default::default()
        };
        let instance = pollster::block_on(config.wgpu_setup.new_instance());
        let surface = instance.create_surface(window.clone())?;
        let render = pollster::block_on(RenderState::create(
            &config,
            &instance,
            Some(&surface),
            RendererOptions::default(),
        ))?;
        let size = window.inner_size();
        let (width, height) = (size.width.max(1), size.height.max(1));
        let capabilities = surface.get_capabilities(&render.adapter);
        let surface_config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            format: render.target_format,
            present_mode: wgpu::PresentMode::AutoVsync,
            desired_maximum_frame_latency: 2,
            alpha_mode: capabilities
                .alpha_modes
                .first()
                .copied()
                .unwrap_or(wgpu::CompositeAlphaMode::Auto),
            view_formats: vec![render.target_format],
            ..surface
                .get_default_config(&render.adapter, width, height)
                .ok_or(WindowError::NoSurfaceFormat)?
        };
        let presenter = Presenter::choose(&window, &render);
        if presenter.uses_swapchain() {
            surface.configure(&render.device, &surface_config);
        }

        let mut input = egui_winit::State::new(
            egui_ctx.clone(),
            egui::ViewportId::ROOT,
            event_loop,
            Some(window.scale_factor() as f32),
            event_loop.system_theme(),
            Some(render.device.limits().max_texture_dimension_2d as usize),
        );
        input.init_accesskit(event_loop, &window, proxy.clone());
        let wake = proxy.clone();
        egui_ctx.set_request_repaint_callback(move |request| {
            let _ = wake.send_event(Wake::Repaint {
                at: Instant::now() + request.delay,
                pass: request.current_cumulative_pass_nr,
            });
        });
        let app = make_app(&egui_ctx, &render);
        let mut info = egui::ViewportInfo::default();
        egui_winit::update_viewport_info(&mut info, &egui_ctx, &window, true);
        Ok(Self {
            window,
            egui_ctx,
            input,
            info,
            surface,
            surface_config,
            render,
            presenter,
            app,
            repaint_at: None,
            passes: 0,
            reconfigure: false,
            closing: false,
        })
    }

    fn resize(&mut self, width: u32, height: u32) {
        if width == 0 || height == 0 {
            return;
        }
        self.surface_config.width = width;
        self.surface_config.height = height;
        if self.presenter.uses_swapchain() {
            self.surface
                .configure(&self.render.device, &self.surface_config);
        }
        self.window.request_redraw();
    }

    /// One egui pass: input in, the app's logic and widgets, output handled, the frame drawn.
    fn pass(&mut self) {
        // Whatever was asked for until now is met by this pass; what it asks for comes after.
        self.repaint_at = None;
        egui_winit::update_viewport_info(&mut self.info, &self.egui_ctx, &self.window, false);
        let mut raw_input = self.input.take_egui_input(&self.window);
        raw_input
            .viewports
            .insert(egui::ViewportId::ROOT, self.info.clone());
        let close_requested = raw_input.viewport().close_requested();
        let app = &mut self.app;
        let output = self.egui_ctx.run_ui(raw_input, |ui| {
            app.logic_pass(ui.ctx());
            app.ui_pass(ui);
        });
        self.passes = self.egui_ctx.cumulative_pass_nr();
        self.info.events.clear();
        self.input
            .handle_platform_output(&self.window, output.platform_output);
        let mut close_cancelled = false;
        if let Some(viewport) = output.viewport_output.get(&egui::ViewportId::ROOT) {
            close_cancelled = viewport
                .commands
                .contains(&egui::ViewportCommand::CancelClose);
            let mut actions = Vec::new();
            egui_winit::process_viewport_commands(
                &self.egui_ctx,
                &mut self.info,
                viewport.commands.iter().cloned(),
                &self.window,
                &mut actions,
            );
            // A Close command (Ctrl-C, or the app's own after its unsaved-edits prompt) is a
            // close request like the window manager's: heard in the next pass.
            if self.info.close_requested() {
                self.window.request_redraw();
            }
        }
        if close_requested && !close_cancelled {
            self.closing = true;
            return;
        }
        self.paint(
            output.shapes,
            output.pixels_per_point,
            output.textures_delta,
        );
    }

    fn paint(
        &mut self,
        shapes: Vec<egui::epaint::ClippedShape>,
        pixels_per_point: f32,
        textures: egui::TexturesDelta,
    ) {
        match &mut self.presenter {
            Presenter::Gpu => self.paint_on_gpu(shapes, pixels_per_point, textures),
            Presenter::Software(_) => self.paint_in_software(shapes, pixels_per_point, textures),
        }
    }

    /// The GPU's path: egui-wgpu draws everything, and the frame is presented at once.
    fn paint_on_gpu(
        &mut self,
        shapes: Vec<egui::epaint::ClippedShape>,
        pixels_per_point: f32,
        mut textures: egui::TexturesDelta,
    ) {
        let device = &self.render.device.clone();
        let queue = &self.render.queue.clone();
        {
            // egui sends each texture change once: uploaded even when no frame is shown now.
            let mut renderer = self.render.renderer.write();
            for (id, deltas) in &textures.set {
                for delta in deltas {
                    renderer.update_texture(device, queue, *id, delta);
                }
            }
        }
        let Some(frame) = self.surface_frame() else {
            self.free_textures(textures.free.drain());
            return;
        };
        let view = frame
            .texture
            .create_view(&wgpu::TextureViewDescriptor::default());
        let meshes = self.egui_ctx.tessellate(shapes, pixels_per_point);
        let screen = ScreenDescriptor {
            size_in_pixels: [frame.texture.width(), frame.texture.height()],
            pixels_per_point,
        };
        let [r, g, b, a] = self
            .app
            .background()
            .to_normalized_gamma_f32()
            .map(f64::from);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("window"),
        });
        let callback_buffers = self.render.renderer.write().update_buffers(
            device,
            queue,
            &mut encoder,
            &meshes,
            &screen,
        );
        {
            let mut pass =
                mesh_paint::window_pass(&mut encoder, &view, Some(wgpu::Color { r, g, b, a }));
            self.render
                .renderer
                .read()
                .render(&mut pass, &meshes, &screen);
        }
        queue.submit(callback_buffers.into_iter().chain([encoder.finish()]));
        self.free_textures(textures.free.drain());
        self.window.pre_present_notify();
        queue.present(frame);
    }

    /// The software rasteriser's path: the branch-free mesh shader, only what changed when the
    /// frame lives on in shared memory, and each frame waited for before it is shown.
    fn paint_in_software(
        &mut self,
        shapes: Vec<egui::epaint::ClippedShape>,
        pixels_per_point: f32,
        mut textures: egui::TexturesDelta,
    ) {
        // Pixels that changed under unchanged shapes: any texture's but for the font atlas's
        // new glyphs, which no shape of the last pass used.
        let textures_changed = textures.set.iter().any(|(id, deltas)| {
            *id != egui::TextureId::default() || deltas.iter().any(|delta| delta.pos.is_none())
        });
        // Handles (reference-counted), so the painter can be borrowed mutably beside them.
        let device = &self.render.device.clone();
        let queue = &self.render.queue.clone();
        let Presenter::Software(software) = &mut self.presenter else {
            return;
        };
        // egui sends each texture change once: uploaded even when no frame is shown now, so
        // nothing is lost (the font atlas above all).
        for (id, deltas) in textures.set.drain() {
            for delta in &deltas {
                software.meshes.set_texture(device, queue, id, delta);
            }
        }
        let (view, surface_frame, damage) = match &mut software.shared_memory {
            Some(presenter) => {
                let size = self.window.inner_size();
                let (view, new) = presenter.target(device, [size.width, size.height]);
                let size = [view.texture().width(), view.texture().height()];
                let damage = software.damage.damage(
                    &shapes,
                    size,
                    pixels_per_point,
                    new || textures_changed,
                );
                (view, None, damage)
            }
            None => {
                let Some(frame) = self.surface_frame() else {
                    self.free_textures(textures.free.drain());
                    return;
                };
                let view = frame
                    .texture
                    .create_view(&wgpu::TextureViewDescriptor::default());
                (view, Some(frame), Damage::Everything)
            }
        };
        let background = self.app.background();
        let (shapes, clear) = match &damage {
            Damage::Everything => {
                let [r, g, b, a] = background.to_normalized_gamma_f32().map(f64::from);
                (shapes, Some(wgpu::Color { r, g, b, a }))
            }
            Damage::Rects(rects) => (
                damage::shapes_within(&shapes, rects, pixels_per_point, background),
                None,
            ),
        };
        let meshes = self.egui_ctx.tessellate(shapes, pixels_per_point);
        let screen = ScreenDescriptor {
            size_in_pixels: [view.texture().width(), view.texture().height()],
            pixels_per_point,
        };
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("window"),
        });
        let Presenter::Software(software) = &mut self.presenter else {
            return;
        };
        let callback_buffers = software.meshes.prepare(
            device,
            queue,
            &mut encoder,
            &mut self.render.renderer.write(),
            &meshes,
            &screen,
        );
        {
            let mut pass = mesh_paint::window_pass(&mut encoder, &view, clear);
            software
                .meshes
                .paint(&mut pass, &self.render.renderer.read(), &meshes, &screen);
        }
        if let Some(presenter) = &mut software.shared_memory {
            presenter.read_back(&mut encoder, &damage);
        }
        let submitted = queue.submit(callback_buffers.into_iter().chain([encoder.finish()]));
        // After the submit: the frame may still have drawn with them.
        self.free_textures(textures.free.drain());
        // The point of this path: wait for the frame here, where the engine can still submit,
        // so the present below holds wgpu's lock only for the copy to the screen.
        if let Err(error) = device.poll(wgpu::PollType::Wait {
            submission_index: Some(submitted.clone()),
            timeout: None,
        }) {
            tracing::warn!("waiting for the window's frame failed: {error}");
        }
        self.window.pre_present_notify();
        let Presenter::Software(software) = &mut self.presenter else {
            return;
        };
        if let Some(frame) = surface_frame {
            queue.present(frame);
        } else if let Some(presenter) = &mut software.shared_memory {
            if let Err(error) = presenter.show(device, submitted) {
                // The X server went away or refused the segment: the swapchain from now on.
                tracing::warn!("the window's frames go through the swapchain from now on: {error}");
                software.shared_memory = None;
                self.surface.configure(device, &self.surface_config);
                self.window.request_redraw();
            }
        }
    }

    fn free_textures(&mut self, ids: impl IntoIterator<Item = egui::TextureId>) {
        match &mut self.presenter {
            Presenter::Gpu => {
                let mut renderer = self.render.renderer.write();
                for id in ids {
                    renderer.free_texture(&id);
                }
            }
            Presenter::Software(software) => {
                for id in ids {
                    software.meshes.free_texture(id);
                }
            }
        }
    }

    /// The surface's next texture, or `None` when there is none to draw into now.
    fn surface_frame(&mut self) -> Option<wgpu::SurfaceTexture> {
        if std::mem::take(&mut self.reconfigure) {
            self.surface
                .configure(&self.render.device, &self.surface_config);
        }
        match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(frame) => Some(frame),
            wgpu::CurrentSurfaceTexture::Suboptimal(frame) => {
                // Not while the frame is held: before the next one.
                self.reconfigure = true;
                Some(frame)
            }
            wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                self.surface
                    .configure(&self.render.device, &self.surface_config);
                self.window.request_redraw();
                None
            }
            // Not shown now (occluded, or the compositor is slow): the next pass draws again.
            _ => None,
        }
    }
}

/// MIT-SHM in place of the swapchain on a software rasteriser, where the X server can take it
/// (`x11_shm`); `TALLY_WINDOW_SHM=off` keeps the swapchain.
fn shared_memory_output(window: &Window, render: &RenderState) -> Option<ShmPresenter> {
    if std::env::var("TALLY_WINDOW_SHM").is_ok_and(|value| value == "off") {
        tracing::debug!("the window's frames go through the swapchain: TALLY_WINDOW_SHM=off");
        return None;
    }
    if render.target_format != x11_shm::FORMAT {
        tracing::info!(
            "the window's frames go through the swapchain: the window's format is {:?}",
            render.target_format
        );
        return None;
    }
    match ShmPresenter::connect(window) {
        Ok(presenter) => {
            tracing::debug!("the window's frames go to the X server through shared memory");
            Some(presenter)
        }
        Err(reason) => {
            tracing::info!("the window's frames go through the swapchain: {reason}");
            None
        }
    }
}
