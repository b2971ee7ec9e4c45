//! The window's large areas, painted with two plain wgpu pipelines instead of egui's meshes:
//! the background (one flat colour) and the monitors (the engine's canvases copied as they are).
//!
//! Why: egui's one shader samples a texture, converts gamma and dithers for every pixel it
//! covers. On a software rasteriser (lavapipe) that costs about 60 ns of CPU a pixel, so a
//! 1280x800 window filled by egui's panels took ~60 ms of CPU a frame before any widget was
//! drawn, and the app could not redraw at the canvas rate while the engine rendered and
//! encoded on the same two cores. A flat fill and a straight texture copy cost a small part of
//! that (figures in BENCHMARKS.md). On a real GPU both are free either way.
//!
//! The canvases hold gamma-encoded RGBA, which is what a non-sRGB framebuffer (eframe's choice)
//! wants, so the copy does no conversion; for an sRGB target (some test renderers) it decodes.

use eframe::egui::{self, Color32, Rect};
use eframe::egui_wgpu::{self, wgpu};

const SHADER: &str = include_str!("window_paint.wgsl");

/// The pipelines and the sampler, made once for the window's target format.
#[derive(Clone)]
pub struct WindowPaint {
    copy: wgpu::RenderPipeline,
    fill: wgpu::RenderPipeline,
    sampler: wgpu::Sampler,
    device: wgpu::Device,
    background: wgpu::BindGroup,
}

/// One canvas ready to be shown by [`WindowPaint::canvas`].
#[derive(Clone)]
pub struct CanvasImage {
    group: wgpu::BindGroup,
}

impl WindowPaint {
    pub fn new(render_state: &egui_wgpu::RenderState, background: Color32) -> Self {
        let device = &render_state.device;
        let target = render_state.target_format;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("window paint"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let pipeline = |label: &str, fragment: &str| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                // Each pipeline's bind group layout is derived from what its entry points use.
                layout: None,
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some("vs_full_viewport"),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some(fragment),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: target,
                        blend: None,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                primitive: wgpu::PrimitiveState::default(),
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                multiview_mask: None,
                cache: None,
            })
        };
        let copy = pipeline(
            "canvas copy",
            if target.is_srgb() {
                "fs_copy_to_srgb_target"
            } else {
                "fs_copy"
            },
        );
        let fill = pipeline("background fill", "fs_fill");
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("canvas on screen"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let color = fill_color(background, target.is_srgb());
        let color_buffer = wgpu::util::DeviceExt::create_buffer_init(
            device,
            &wgpu::util::BufferInitDescriptor {
                label: Some("background colour"),
                contents: bytemuck::cast_slice(&color),
                usage: wgpu::BufferUsages::UNIFORM,
            },
        );
        let background = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("background colour"),
            layout: &fill.get_bind_group_layout(0),
            entries: &[wgpu::BindGroupEntry {
                binding: 2,
                resource: color_buffer.as_entire_binding(),
            }],
        });
        Self {
            copy,
            fill,
            sampler,
            device: device.clone(),
            background,
        }
    }

    /// Prepares `texture` (an engine canvas) for showing.
    pub fn image(&self, texture: &wgpu::Texture) -> CanvasImage {
        let group = crate::render::sampled_texture_group(
            &self.device,
            "canvas on screen",
            &self.copy.get_bind_group_layout(0),
            texture,
            &self.sampler,
        );
        CanvasImage { group }
    }

    /// A shape that fills `rect` with the window's background colour.
    pub fn background(&self, rect: Rect) -> egui::Shape {
        egui_wgpu::Callback::new_paint_callback(
            rect,
            Draw {
                pipeline: self.fill.clone(),
                group: self.background.clone(),
            },
        )
        .into()
    }

    /// A shape that shows `image` stretched over `rect`.
    pub fn canvas(&self, rect: Rect, image: &CanvasImage) -> egui::Shape {
        egui_wgpu::Callback::new_paint_callback(
            rect,
            Draw {
                pipeline: self.copy.clone(),
                group: image.group.clone(),
            },
        )
        .into()
    }
}

/// `color` as the fill shader's uniform: gamma-encoded for a plain target, linear for an sRGB
/// one (the target encodes it again).
fn fill_color(color: Color32, srgb_target: bool) -> [f32; 4] {
    if srgb_target {
        egui::Rgba::from(color).to_array()
    } else {
        color.to_normalized_gamma_f32()
    }
}

/// One full-viewport triangle with a pipeline and its bind group; egui sets the viewport to the
/// callback's rect and the scissor to its clip rect.
struct Draw {
    pipeline: wgpu::RenderPipeline,
    group: wgpu::BindGroup,
}

impl egui_wgpu::CallbackTrait for Draw {
    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        _resources: &egui_wgpu::CallbackResources,
    ) {
        render_pass.set_pipeline(&self.pipeline);
        render_pass.set_bind_group(0, &self.group, &[]);
        render_pass.draw(0..3, 0..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fill_colour_is_encoded_for_the_target() {
        let grey = Color32::from_gray(27);
        let plain = fill_color(grey, false);
        assert!((plain[0] - 27.0 / 255.0).abs() < 1e-6);
        let linear = fill_color(grey, true);
        // sRGB 27/255 is ((27/255 + 0.055) / 1.055)^2.4 = 0.01096 in linear light.
        assert!((linear[0] - 0.01096).abs() < 0.0001, "{linear:?}");
        assert_eq!(plain[3], 1.0);
        assert_eq!(linear[3], 1.0);
    }
}
