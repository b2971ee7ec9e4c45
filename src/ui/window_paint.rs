//! The monitors (the engine's canvases copied as they are), painted with a plain wgpu pipeline
//! instead of egui's meshes. The window's background is the frame's clear colour
//! ([`eframe::App::clear_color`]), which costs next to nothing; nothing paints over it.
//!
//! Why: egui's one shader samples a texture, converts gamma and dithers for every pixel it
//! covers. On a software rasteriser (lavapipe) that costs about 60 ns of CPU a pixel, so a
//! 1280x800 window filled by egui's panels took ~60 ms of CPU a frame before any widget was
//! drawn, and the app could not redraw at the canvas rate while the engine rendered and
//! encoded on the same two cores. A straight texture copy costs a small part of that (figures
//! in BENCHMARKS.md). On a real GPU both are free either way.
//!
//! The canvases hold gamma-encoded RGBA, which is what a non-sRGB framebuffer (eframe's choice)
//! wants, so the copy does no conversion; for an sRGB target (some test renderers) it decodes.

use eframe::egui::{self, Rect};
use eframe::egui_wgpu::{self, wgpu};

const SHADER: &str = include_str!("window_paint.wgsl");

/// The pipeline and the sampler, made once for the window's target format.
#[derive(Clone)]
pub struct WindowPaint {
    copy: wgpu::RenderPipeline,
    sampler: wgpu::Sampler,
    device: wgpu::Device,
}

/// One canvas ready to be shown by [`WindowPaint::canvas`].
#[derive(Clone)]
pub struct CanvasImage {
    group: wgpu::BindGroup,
}

impl WindowPaint {
    pub fn new(render_state: &egui_wgpu::RenderState) -> Self {
        let device = &render_state.device;
        let target = render_state.target_format;
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("window paint"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        let fragment = if target.is_srgb() {
            "fs_copy_to_srgb_target"
        } else {
            "fs_copy"
        };
        let copy = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("canvas copy"),
            // The bind group layout is derived from what the entry points use.
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
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("canvas on screen"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        Self {
            copy,
            sampler,
            device: device.clone(),
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

/// One full-viewport triangle with the copy pipeline and a canvas's bind group; egui sets the viewport to the
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
