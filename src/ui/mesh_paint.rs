//! Draws egui's meshes in the app's real window, in place of egui-wgpu's renderer, which still
//! draws the paint callbacks (the monitors) in between.
//!
//! Why: egui-wgpu's one shader chooses per pixel between hardware and software texture
//! filtering and whether to dither. A software rasteriser (lavapipe, llvmpipe) runs every side
//! of a branch for every lane, masked, so each pixel also paid for four texel loads and their
//! wrap arithmetic. This painter's shader samples and multiplies, nothing else; the window's
//! drawing costs about half the CPU it did (BENCHMARKS.md, "ninth measurement"). On a real GPU both
//! are free. The UI tests draw with egui-wgpu through eframe, whose pixels this painter
//! matches (a test below compares them).

use eframe::egui::epaint::{ClippedPrimitive, ImageDelta, Primitive, Vertex};
use eframe::egui::{self, TextureId, TextureOptions};
use eframe::egui_wgpu::{self, wgpu, ScreenDescriptor};
use std::collections::HashMap;

const SHADER: &str = include_str!("mesh_paint.wgsl");

/// A texture egui asked for (the font atlas, images) and its bind group.
struct Image {
    texture: wgpu::Texture,
    group: wgpu::BindGroup,
}

/// Where one mesh's vertices and indices lie in the shared buffers.
#[derive(Clone)]
struct MeshRange {
    first_vertex: i32,
    indices: std::ops::Range<u32>,
}

/// A buffer that grows (to the next power of two) when a frame needs more.
struct GrowingBuffer {
    buffer: wgpu::Buffer,
    usage: wgpu::BufferUsages,
    label: &'static str,
}

impl GrowingBuffer {
    fn new(device: &wgpu::Device, label: &'static str, usage: wgpu::BufferUsages) -> Self {
        let usage = usage | wgpu::BufferUsages::COPY_DST;
        Self {
            buffer: Self::create(device, label, usage, 1 << 16),
            usage,
            label,
        }
    }

    fn create(
        device: &wgpu::Device,
        label: &str,
        usage: wgpu::BufferUsages,
        size: u64,
    ) -> wgpu::Buffer {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        })
    }

    /// Writes `parts` one after another from the start of the buffer.
    fn write<'a>(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        parts: impl Iterator<Item = &'a [u8]> + Clone,
    ) {
        let size: u64 = parts.clone().map(|part| part.len() as u64).sum();
        let Some(size) = std::num::NonZeroU64::new(size) else {
            return;
        };
        if size.get() > self.buffer.size() {
            self.buffer = Self::create(
                device,
                self.label,
                self.usage,
                size.get().next_power_of_two(),
            );
        }
        let Some(mut view) = queue.write_buffer_with(&self.buffer, 0, size) else {
            return;
        };
        let mut at = 0;
        for part in parts {
            view.slice(at..at + part.len()).copy_from_slice(part);
            at += part.len();
        }
    }
}

/// The pipeline, egui's textures and this frame's meshes, for the window's target format.
pub struct MeshPainter {
    pipeline: wgpu::RenderPipeline,
    screen: wgpu::Buffer,
    screen_group: wgpu::BindGroup,
    image_layout: wgpu::BindGroupLayout,
    samplers: HashMap<TextureOptions, wgpu::Sampler>,
    images: HashMap<TextureId, Image>,
    vertices: GrowingBuffer,
    indices: GrowingBuffer,
    /// One per mesh of the primitives last prepared, in their order.
    meshes: Vec<MeshRange>,
}

impl MeshPainter {
    pub fn new(device: &wgpu::Device, target: wgpu::TextureFormat) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("egui meshes"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let fragment = if target.is_srgb() {
            "fs_srgb_target"
        } else {
            "fs_gamma_target"
        };
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("egui meshes"),
            // The bind group layouts are derived from what the entry points use.
            layout: None,
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<Vertex>() as u64,
                    step_mode: wgpu::VertexStepMode::Vertex,
                    // egui's Vertex: position and uv as two f32 each, then RGBA as four bytes.
                    attributes: &wgpu::vertex_attr_array![
                        0 => Float32x2, 1 => Float32x2, 2 => Unorm8x4
                    ],
                })],
            },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some(fragment),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: target,
                    // egui's colours are premultiplied.
                    blend: Some(wgpu::BlendState {
                        color: wgpu::BlendComponent {
                            src_factor: wgpu::BlendFactor::One,
                            dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
                            operation: wgpu::BlendOperation::Add,
                        },
                        alpha: wgpu::BlendComponent {
                            src_factor: wgpu::BlendFactor::OneMinusDstAlpha,
                            dst_factor: wgpu::BlendFactor::One,
                            operation: wgpu::BlendOperation::Add,
                        },
                    }),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        });
        let screen = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("egui screen size"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let screen_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("egui screen size"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: screen.as_entire_binding(),
            }],
        });
        Self {
            image_layout: pipeline.get_bind_group_layout(1),
            pipeline,
            screen,
            screen_group,
            samplers: HashMap::new(),
            images: HashMap::new(),
            vertices: GrowingBuffer::new(device, "egui vertices", wgpu::BufferUsages::VERTEX),
            indices: GrowingBuffer::new(device, "egui indices", wgpu::BufferUsages::INDEX),
            meshes: Vec::new(),
        }
    }

    /// Makes or patches the texture egui knows as `id`.
    pub fn set_texture(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        id: TextureId,
        delta: &ImageDelta,
    ) {
        let egui::ImageData::Color(image) = &delta.image;
        let [width, height] = image.size.map(|side| side as u32);
        if width == 0 || height == 0 {
            return;
        }
        let origin = match delta.pos {
            Some([x, y]) => wgpu::Origin3d {
                x: x as u32,
                y: y as u32,
                z: 0,
            },
            None => {
                let sampler = self
                    .samplers
                    .entry(delta.options)
                    .or_insert_with(|| sampler_for(device, delta.options));
                // Gamma-encoded bytes sampled as they are: egui blends in gamma space.
                let (texture, group) = crate::render::sampled_rgba_texture(
                    device,
                    &self.image_layout,
                    sampler,
                    "egui image",
                    [width, height],
                    false,
                );
                self.images.insert(id, Image { texture, group });
                wgpu::Origin3d::ZERO
            }
        };
        let Some(target) = self.images.get(&id) else {
            tracing::debug!(?id, "egui patched a texture it never made; ignored");
            return;
        };
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &target.texture,
                mip_level: 0,
                origin,
                aspect: wgpu::TextureAspect::All,
            },
            bytemuck::cast_slice(&image.pixels),
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(width * 4),
                rows_per_image: Some(height),
            },
            wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
        );
    }

    pub fn free_texture(&mut self, id: TextureId) {
        self.images.remove(&id);
    }

    /// Uploads the meshes of `primitives` and the screen size, and lets egui-wgpu's renderer
    /// prepare the paint callbacks among them. Returns the command buffers the callbacks
    /// recorded, to be submitted before the frame's.
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        callbacks: &mut egui_wgpu::Renderer,
        primitives: &[ClippedPrimitive],
        screen: &ScreenDescriptor,
    ) -> Vec<wgpu::CommandBuffer> {
        let size_in_points = screen
            .size_in_pixels
            .map(|side| side as f32 / screen.pixels_per_point);
        queue.write_buffer(
            &self.screen,
            0,
            bytemuck::cast_slice(&[size_in_points[0], size_in_points[1], 0.0, 0.0]),
        );
        let meshes = primitives
            .iter()
            .filter_map(|clipped| match &clipped.primitive {
                Primitive::Mesh(mesh) => Some(mesh),
                Primitive::Callback(_) => None,
            });
        self.meshes.clear();
        let (mut vertices, mut indices) = (0, 0);
        for mesh in meshes.clone() {
            self.meshes.push(MeshRange {
                first_vertex: vertices as i32,
                indices: indices..indices + mesh.indices.len() as u32,
            });
            vertices += mesh.vertices.len();
            indices += mesh.indices.len() as u32;
        }
        self.vertices.write(
            device,
            queue,
            meshes
                .clone()
                .map(|mesh| bytemuck::cast_slice(&mesh.vertices)),
        );
        self.indices.write(
            device,
            queue,
            meshes.map(|mesh| bytemuck::cast_slice(&mesh.indices)),
        );
        let callback_primitives: Vec<ClippedPrimitive> = primitives
            .iter()
            .filter(|clipped| matches!(clipped.primitive, Primitive::Callback(_)))
            .cloned()
            .collect();
        callbacks.update_buffers(device, queue, encoder, &callback_primitives, screen)
    }

    /// Draws the primitives last prepared, in their order, each within its clip rect.
    pub fn paint(
        &self,
        pass: &mut wgpu::RenderPass<'static>,
        callbacks: &egui_wgpu::Renderer,
        primitives: &[ClippedPrimitive],
        screen: &ScreenDescriptor,
    ) {
        let [width, height] = screen.size_in_pixels;
        let mut meshes = self.meshes.iter();
        let mut needs_state = true;
        for clipped in primitives {
            let mesh_range = match clipped.primitive {
                Primitive::Mesh(_) => meshes.next().cloned(),
                Primitive::Callback(_) => None,
            };
            let clip = clipped.clip_rect * screen.pixels_per_point;
            let left = (clip.min.x.round().max(0.0) as u32).min(width);
            let top = (clip.min.y.round().max(0.0) as u32).min(height);
            let right = (clip.max.x.round().max(0.0) as u32).min(width);
            let bottom = (clip.max.y.round().max(0.0) as u32).min(height);
            if right <= left || bottom <= top {
                continue;
            }
            match &clipped.primitive {
                Primitive::Mesh(mesh) => {
                    let (Some(range), Some(image)) =
                        (mesh_range, self.images.get(&mesh.texture_id))
                    else {
                        tracing::debug!(id = ?mesh.texture_id, "a mesh's texture is missing; not drawn");
                        continue;
                    };
                    if needs_state {
                        pass.set_viewport(0.0, 0.0, width as f32, height as f32, 0.0, 1.0);
                        pass.set_pipeline(&self.pipeline);
                        pass.set_bind_group(0, &self.screen_group, &[]);
                        pass.set_vertex_buffer(0, self.vertices.buffer.slice(..));
                        pass.set_index_buffer(
                            self.indices.buffer.slice(..),
                            wgpu::IndexFormat::Uint32,
                        );
                        needs_state = false;
                    }
                    pass.set_scissor_rect(left, top, right - left, bottom - top);
                    pass.set_bind_group(1, &image.group, &[]);
                    pass.draw_indexed(range.indices, range.first_vertex, 0..1);
                }
                Primitive::Callback(_) => {
                    callbacks.render(pass, std::slice::from_ref(clipped), screen);
                    // The callback may have set anything.
                    needs_state = true;
                }
            }
        }
    }
}

/// A render pass over the whole window's `view`, for [`MeshPainter::paint`]: cleared to
/// `clear` (the window's only background: egui's panels paint none), or keeping what the view
/// holds (a pass that redraws only part of it, see `damage`).
pub fn window_pass(
    encoder: &mut wgpu::CommandEncoder,
    view: &wgpu::TextureView,
    clear: Option<wgpu::Color>,
) -> wgpu::RenderPass<'static> {
    encoder
        .begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("window"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: clear.map_or(wgpu::LoadOp::Load, wgpu::LoadOp::Clear),
                    store: wgpu::StoreOp::Store,
                },
                depth_slice: None,
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        })
        .forget_lifetime()
}

fn sampler_for(device: &wgpu::Device, options: TextureOptions) -> wgpu::Sampler {
    let filter = |filter| match filter {
        egui::TextureFilter::Nearest => wgpu::FilterMode::Nearest,
        egui::TextureFilter::Linear => wgpu::FilterMode::Linear,
    };
    let address_mode = match options.wrap_mode {
        egui::TextureWrapMode::ClampToEdge => wgpu::AddressMode::ClampToEdge,
        egui::TextureWrapMode::Repeat => wgpu::AddressMode::Repeat,
        egui::TextureWrapMode::MirroredRepeat => wgpu::AddressMode::MirrorRepeat,
    };
    device.create_sampler(&wgpu::SamplerDescriptor {
        label: Some("egui image"),
        mag_filter: filter(options.magnification),
        min_filter: filter(options.minification),
        address_mode_u: address_mode,
        address_mode_v: address_mode,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    //! The painter against egui-wgpu's renderer (without dithering, which only adds noise), on
    //! the same device: the same UI, drawn by each into its own texture, must give the same
    //! pixels.

    use super::*;
    use crate::render::Gpu;
    use eframe::egui::{Color32, ColorImage, Rect, Vec2};

    const SIZE: [u32; 2] = [320, 240];
    const PIXELS_PER_POINT: f32 = 1.5;
    const BACKGROUND: wgpu::Color = wgpu::Color {
        r: 0.1,
        g: 0.1,
        b: 0.1,
        a: 1.0,
    };
    const CALLBACK_RGB: [u8; 3] = [200, 40, 160];

    /// Fills the callback's viewport with one colour, as the monitors fill theirs.
    struct SolidFill(wgpu::RenderPipeline);

    impl egui_wgpu::CallbackTrait for SolidFill {
        fn paint(
            &self,
            _info: egui::PaintCallbackInfo,
            pass: &mut wgpu::RenderPass<'static>,
            _resources: &egui_wgpu::CallbackResources,
        ) {
            pass.set_pipeline(&self.0);
            pass.draw(0..3, 0..1);
        }
    }

    fn solid_fill_pipeline(device: &wgpu::Device) -> wgpu::RenderPipeline {
        let [r, g, b] = CALLBACK_RGB.map(|value| f32::from(value) / 255.0);
        let source = format!(
            "@vertex fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {{
                 let uv = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
                 return vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
             }}
             @fragment fn fs() -> @location(0) vec4<f32> {{ return vec4<f32>({r}, {g}, {b}, 1.0); }}"
        );
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("solid fill"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("solid fill"),
            layout: None,
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::TextureFormat::Rgba8Unorm.into())],
            }),
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            multiview_mask: None,
            cache: None,
        })
    }

    /// A UI with what the app's docks use: text, frames, widgets, a painted image with its own
    /// texture options, a paint callback, and shapes drawn after the callback.
    fn docks(
        ui: &mut egui::Ui,
        text: &str,
        image: &egui::TextureHandle,
        fill: &wgpu::RenderPipeline,
    ) {
        egui::CentralPanel::default().show(ui, |ui| {
            ui.heading(text);
            let _ = ui.button("Start Recording");
            ui.add(egui::Slider::new(&mut 0.4f32, 0.0..=1.0).text("fader"));
            ui.image((image.id(), Vec2::new(24.0, 24.0)));
            let monitor = Rect::from_min_size(egui::pos2(120.0, 60.0), Vec2::new(60.0, 40.0));
            ui.painter().add(egui_wgpu::Callback::new_paint_callback(
                monitor,
                SolidFill(fill.clone()),
            ));
            ui.painter().circle_filled(
                monitor.right_bottom(),
                10.0,
                Color32::from_rgba_unmultiplied(40, 180, 80, 160),
            );
        });
    }

    fn read_back(gpu: &Gpu, texture: &wgpu::Texture) -> Vec<u8> {
        let bytes_per_row = SIZE[0] * 4;
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read back"),
            size: u64::from(bytes_per_row * SIZE[1]),
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(bytes_per_row),
                    rows_per_image: None,
                },
            },
            texture.size(),
        );
        gpu.queue.submit([encoder.finish()]);
        buffer.slice(..).map_async(wgpu::MapMode::Read, |_| ());
        gpu.device
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap();
        let pixels = buffer.slice(..).get_mapped_range().unwrap().to_vec();
        pixels
    }

    fn target(gpu: &Gpu) -> wgpu::Texture {
        gpu.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("window stand-in"),
            size: wgpu::Extent3d {
                width: SIZE[0],
                height: SIZE[1],
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        })
    }

    #[test]
    fn draws_what_egui_wgpu_draws() {
        let gpu = Gpu::open().expect("a wgpu adapter (lavapipe without a GPU)");
        let (device, queue) = (&gpu.device, &gpu.queue);
        let format = wgpu::TextureFormat::Rgba8Unorm;
        let mut painter = MeshPainter::new(device, format);
        let mut reference = egui_wgpu::Renderer::new(
            device,
            format,
            egui_wgpu::RendererOptions {
                dithering: false,
                ..Default::default()
            },
        );
        let fill = solid_fill_pipeline(device);
        let ctx = egui::Context::default();
        let checker = ColorImage::from_rgba_unmultiplied(
            [2, 2],
            &[
                255, 255, 255, 255, 0, 0, 0, 128, 0, 0, 0, 128, 255, 255, 255, 255,
            ],
        );
        let image = ctx.load_texture("checker", checker, egui::TextureOptions::NEAREST);
        let input = egui::RawInput {
            screen_rect: Some(Rect::from_min_size(
                egui::Pos2::ZERO,
                Vec2::new(SIZE[0] as f32, SIZE[1] as f32) / PIXELS_PER_POINT,
            )),
            ..Default::default()
        };
        let mut viewport_input = input.clone();
        viewport_input
            .viewports
            .entry(egui::ViewportId::ROOT)
            .or_default()
            .native_pixels_per_point = Some(PIXELS_PER_POINT);

        // Two passes: the second one's new glyphs patch the font atlas (a partial update).
        let mut patched = false;
        let mut output = None;
        for text in ["Scenes", "Wörld 123 ✓ Ärger"] {
            let full = ctx.run_ui(viewport_input.clone(), |ui| docks(ui, text, &image, &fill));
            for (id, deltas) in &full.textures_delta.set {
                for delta in deltas {
                    patched |= delta.pos.is_some();
                    painter.set_texture(device, queue, *id, delta);
                    reference.update_texture(device, queue, *id, delta);
                }
            }
            output = Some(full);
        }
        assert!(patched, "the second pass should patch the font atlas");
        let output = output.unwrap();
        let primitives = ctx.tessellate(output.shapes, output.pixels_per_point);
        assert!(primitives
            .iter()
            .any(|clipped| matches!(clipped.primitive, Primitive::Callback(_))));
        let screen = ScreenDescriptor {
            size_in_pixels: SIZE,
            pixels_per_point: output.pixels_per_point,
        };

        let ours = target(&gpu);
        let theirs = target(&gpu);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        let mut buffers = painter.prepare(
            device,
            queue,
            &mut encoder,
            &mut reference,
            &primitives,
            &screen,
        );
        {
            let view = ours.create_view(&Default::default());
            let mut pass = window_pass(&mut encoder, &view, Some(BACKGROUND));
            painter.paint(&mut pass, &reference, &primitives, &screen);
        }
        buffers.extend(reference.update_buffers(device, queue, &mut encoder, &primitives, &screen));
        {
            let view = theirs.create_view(&Default::default());
            let mut pass = window_pass(&mut encoder, &view, Some(BACKGROUND));
            reference.render(&mut pass, &primitives, &screen);
        }
        buffers.push(encoder.finish());
        queue.submit(buffers);
        let (ours, theirs) = (read_back(&gpu, &ours), read_back(&gpu, &theirs));

        let background =
            [BACKGROUND.r, BACKGROUND.g, BACKGROUND.b].map(|v| (v * 255.0).round() as u8);
        let drawn = ours
            .chunks_exact(4)
            .filter(|pixel| pixel[..3] != background)
            .count();
        assert!(drawn > 5_000, "only {drawn} pixels drawn");
        let callback_pixels = ours
            .chunks_exact(4)
            .filter(|pixel| pixel[..3] == CALLBACK_RGB)
            .count();
        // 60x40 points at 1.5 pixels a point, less the corner the circle covers.
        assert!(
            (4_500..=5_400).contains(&callback_pixels),
            "{callback_pixels} pixels of the callback's colour"
        );
        let differing = ours
            .chunks_exact(4)
            .zip(theirs.chunks_exact(4))
            .filter(|(a, b)| a.iter().zip(b.iter()).any(|(a, b)| a.abs_diff(*b) > 1))
            .count();
        assert_eq!(
            differing, 0,
            "pixels that differ from egui-wgpu's by more than one level"
        );
    }

    /// Draws `primitives` into `view` with `painter` (its callbacks through `callbacks`),
    /// cleared first or keeping what is there.
    fn draw_into(
        gpu: &Gpu,
        painter: &mut MeshPainter,
        callbacks: &mut egui_wgpu::Renderer,
        primitives: &[ClippedPrimitive],
        screen: &ScreenDescriptor,
        view: &wgpu::TextureView,
        clear: Option<wgpu::Color>,
    ) {
        let (device, queue) = (&gpu.device, &gpu.queue);
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        let mut buffers =
            painter.prepare(device, queue, &mut encoder, callbacks, primitives, screen);
        {
            let mut pass = window_pass(&mut encoder, view, clear);
            painter.paint(&mut pass, callbacks, primitives, screen);
        }
        buffers.push(encoder.finish());
        queue.submit(buffers);
    }

    /// The window's partial redraw (`damage`): a pass that changed some text redraws only the
    /// rectangles it and the monitor cover, over the last frame, and the frame is then the
    /// same as one drawn whole.
    #[test]
    fn redrawing_only_the_damage_gives_the_whole_frame() {
        use crate::ui::damage::{shapes_within, Damage, DamageTracker};
        let gpu = Gpu::open().expect("a wgpu adapter (lavapipe without a GPU)");
        let (device, queue) = (&gpu.device, &gpu.queue);
        let mut painter = MeshPainter::new(device, wgpu::TextureFormat::Rgba8Unorm);
        let mut callbacks = egui_wgpu::Renderer::new(
            device,
            wgpu::TextureFormat::Rgba8Unorm,
            egui_wgpu::RendererOptions::default(),
        );
        let fill = solid_fill_pipeline(device);
        let ctx = egui::Context::default();
        // As in the app: the window's background shows through the panels.
        ctx.all_styles_mut(|style| style.visuals.panel_fill = Color32::TRANSPARENT);
        let image = ctx.load_texture(
            "grey",
            ColorImage::new([2, 2], vec![Color32::GRAY; 4]),
            egui::TextureOptions::NEAREST,
        );
        let mut input = egui::RawInput {
            screen_rect: Some(Rect::from_min_size(
                egui::Pos2::ZERO,
                Vec2::new(SIZE[0] as f32, SIZE[1] as f32) / PIXELS_PER_POINT,
            )),
            ..Default::default()
        };
        input
            .viewports
            .entry(egui::ViewportId::ROOT)
            .or_default()
            .native_pixels_per_point = Some(PIXELS_PER_POINT);
        let background_color = Color32::from_rgb(25, 25, 25);
        let [r, g, b, a] = background_color.to_normalized_gamma_f32().map(f64::from);
        let background = wgpu::Color { r, g, b, a };
        let screen = ScreenDescriptor {
            size_in_pixels: SIZE,
            pixels_per_point: PIXELS_PER_POINT,
        };
        let mut tracker = DamageTracker::default();
        let partial = target(&gpu);
        let partial_view = partial.create_view(&Default::default());
        let mut last_damage = None;
        let mut last_shapes = Vec::new();
        // The second pass's new glyphs patch the font atlas, which redraws no more than its text.
        for text in ["Program 29.9 fps", "Program 30.1 fps"] {
            let output = ctx.run_ui(input.clone(), |ui| docks(ui, text, &image, &fill));
            let mut textures_changed = false;
            for (id, deltas) in &output.textures_delta.set {
                for delta in deltas {
                    textures_changed |= *id != egui::TextureId::default() || delta.pos.is_none();
                    painter.set_texture(device, queue, *id, delta);
                }
            }
            let damage = tracker.damage(&output.shapes, SIZE, PIXELS_PER_POINT, textures_changed);
            let (shapes, clear) = match &damage {
                Damage::Everything => (output.shapes.clone(), Some(background)),
                Damage::Rects(rects) => (
                    shapes_within(&output.shapes, rects, PIXELS_PER_POINT, background_color),
                    None,
                ),
            };
            let primitives = ctx.tessellate(shapes, PIXELS_PER_POINT);
            draw_into(
                &gpu,
                &mut painter,
                &mut callbacks,
                &primitives,
                &screen,
                &partial_view,
                clear,
            );
            last_damage = Some(damage);
            last_shapes = output.shapes;
        }
        let Some(Damage::Rects(rects)) = last_damage else {
            panic!("the second pass should redraw rectangles, not {last_damage:?}");
        };
        let damaged: u32 = rects.iter().map(|rect| rect.width * rect.height).sum();
        assert!(
            damaged > 0 && damaged < SIZE[0] * SIZE[1] / 3,
            "{damaged} pixels redrawn in {rects:?}"
        );

        let whole = target(&gpu);
        let primitives = ctx.tessellate(last_shapes, PIXELS_PER_POINT);
        draw_into(
            &gpu,
            &mut painter,
            &mut callbacks,
            &primitives,
            &screen,
            &whole.create_view(&Default::default()),
            Some(background),
        );
        let (partial, whole) = (read_back(&gpu, &partial), read_back(&gpu, &whole));
        let differing = partial
            .chunks_exact(4)
            .zip(whole.chunks_exact(4))
            .filter(|(a, b)| a.iter().zip(b.iter()).any(|(a, b)| a.abs_diff(*b) > 1))
            .count();
        assert_eq!(
            differing, 0,
            "pixels that differ from the frame drawn whole"
        );
        let callback_pixels = partial
            .chunks_exact(4)
            .filter(|pixel| pixel[..3] == CALLBACK_RGB)
            .count();
        assert!(
            callback_pixels > 4_000,
            "{callback_pixels} pixels of the monitor"
        );
    }
}
