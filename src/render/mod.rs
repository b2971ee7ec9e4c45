//! The compositor: draws a scene's items on the GPU (wgpu) and hands back the canvas as I420
//! for the encoder, or as RGBA for snapshots.
//!
//! Its face is small on purpose: [`Compositor::render`] takes layers (a texture-able picture
//! plus a transform) and submits GPU work; [`Compositor::collect_ready`] hands back finished
//! frames through a ring of staging buffers, so the CPU never waits on the frame it just
//! submitted. It knows nothing about encoders, files or clocks.

mod dirty;
mod textures;
mod unpack;

use crate::base::{lock, I420Layout};
use crate::base::{FrameRef, Packing, VideoFrame};
use crate::scene::Item;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

pub use crate::scene::geometry::{item_quad, ndc_from_canvas, Quad};
pub use dirty::CanvasRect;
use dirty::{DrawnLayer, ItemUniform};
#[cfg(feature = "app")]
pub(crate) use textures::sampled_rgba_texture;
use textures::SourceTextures;

/// How many converted frames may be in flight between GPU and CPU.
const READBACK_RING: usize = 3;
const UNIFORM_ALIGN: u64 = 256;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "no GPU adapter found (not even software Vulkan); install Mesa's lavapipe with \
         `sudo packaging/install-deps.sh` (package mesa-vulkan-drivers): {0}"
    )]
    NoAdapter(wgpu::RequestAdapterError),
    #[error("the GPU adapter {adapter} refused to open a device: {cause}")]
    Device {
        adapter: String,
        cause: wgpu::RequestDeviceError,
    },
    #[error("reading the canvas back from the GPU failed: {0}")]
    Readback(ReadbackProblem),
}

/// Why a frame could not be read back from the GPU.
#[derive(Debug, thiserror::Error)]
pub enum ReadbackProblem {
    #[error("a compositor that draws for the screen only does not convert frames")]
    DisplayOnly,
    #[error("no free readback buffer")]
    NoFreeBuffer,
    #[error("waiting for the GPU failed: {0}")]
    Poll(#[from] wgpu::PollError),
    #[error("mapping the staging buffer failed")]
    MapFailed,
    #[error("the mapped buffer cannot be read: {0}")]
    MappedRange(#[from] wgpu::MapRangeError),
}

impl From<wgpu::PollError> for RenderError {
    fn from(error: wgpu::PollError) -> Self {
        RenderError::Readback(error.into())
    }
}

impl From<wgpu::MapRangeError> for RenderError {
    fn from(error: wgpu::MapRangeError) -> Self {
        RenderError::Readback(error.into())
    }
}

/// A wgpu instance on the native APIs (Vulkan, Metal, DX12); `WGPU_BACKEND` overrides.
/// OpenGL stays out by default: on Linux it loads a second Mesa driver and its memory for an
/// adapter that Vulkan already offers.
fn instance() -> wgpu::Instance {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        descriptor.backends = wgpu::Backends::PRIMARY;
    }
    wgpu::Instance::new(descriptor)
}

/// A bind group layout entry for a 2D float texture at `binding`: sampled with filtering, or
/// read texel by texel (`textureLoad`) when not `filterable`.
fn texture_2d_entry(
    binding: u32,
    visibility: wgpu::ShaderStages,
    filterable: bool,
) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility,
        ty: wgpu::BindingType::Texture {
            sample_type: wgpu::TextureSampleType::Float { filterable },
            view_dimension: wgpu::TextureViewDimension::D2,
            multisampled: false,
        },
        count: None,
    }
}

/// A bind group of a whole texture (binding 0) and the sampler that reads it (binding 1): how
/// the compositor's sources and the window's monitors are drawn.
pub(crate) fn sampled_texture_group(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    texture: &wgpu::Texture,
    sampler: &wgpu::Sampler,
) -> wgpu::BindGroup {
    let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::TextureView(&view),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: wgpu::BindingResource::Sampler(sampler),
            },
        ],
    })
}

/// Whether `adapter` is a software rasteriser (lavapipe), where every pixel drawn costs CPU.
pub fn is_software_adapter(adapter: &wgpu::AdapterInfo) -> bool {
    adapter.device_type == wgpu::DeviceType::Cpu
}

/// The wgpu device the compositor draws with.
#[derive(Debug)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
}

impl Gpu {
    /// Whether this is a software rasteriser (lavapipe), where every pixel drawn costs CPU.
    pub fn is_software(&self) -> bool {
        is_software_adapter(&self.info)
    }

    /// The size to draw a canvas of `canvas` pixels at when it is only shown on a monitor
    /// (studio mode's preview). A software rasteriser pays CPU for every pixel, and a monitor
    /// in a 1280-wide window is about 630 pixels across, so there it is drawn at half size;
    /// a real GPU draws it full size.
    pub fn display_size(&self, canvas: [u32; 2]) -> [u32; 2] {
        if self.is_software() {
            canvas.map(|side| side.div_ceil(2))
        } else {
            canvas
        }
    }

    /// Opens the best adapter: a real GPU when there is one, else software Vulkan (lavapipe).
    pub fn open() -> Result<Self, RenderError> {
        let instance = instance();
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        }))
        .map_err(RenderError::NoAdapter)?;
        let info = adapter.get_info();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("tally compositor"),
            required_limits: wgpu::Limits::downlevel_defaults().using_resolution(adapter.limits()),
            // Small allocation blocks: the compositor has few, fixed resources, and on software
            // Vulkan every block is ordinary RAM.
            memory_hints: wgpu::MemoryHints::MemoryUsage,
            ..Default::default()
        }))
        .map_err(|error| RenderError::Device {
            adapter: info.name.clone(),
            cause: error,
        })?;
        tracing::info!(
            "GPU: {} ({:?}, {:?})",
            info.name,
            info.backend,
            info.device_type
        );
        Ok(Self {
            device,
            queue,
            info,
        })
    }

    /// Every adapter wgpu can see, for `tally devices`.
    pub fn list_adapters() -> Vec<wgpu::AdapterInfo> {
        pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
            .iter()
            .map(wgpu::Adapter::get_info)
            .collect()
    }
}

/// One item to draw: its source's picture, the source's logical size and the item transform.
pub struct Layer<'a> {
    /// Identifies the source, so its texture is cached and reused across frames.
    pub source_id: &'a str,
    pub frame: &'a FrameRef,
    pub source_size: [u32; 2],
    pub item: &'a Item,
    /// Only this canvas rectangle `[x0, y0, x1, y1]` of the layer is drawn (wipe transitions).
    pub clip: Option<[f32; 4]>,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ConvertParams {
    width: u32,
    height: u32,
    luma_stride_words: u32,
    chroma_stride_words: u32,
    u_offset_words: u32,
    v_offset_words: u32,
    region_x_words: u32,
    region_y: u32,
    region_width_words: u32,
    region_height: u32,
    source_width: u32,
    source_height: u32,
}

struct Readback {
    buffer: wgpu::Buffer,
    /// 0: waiting for the GPU, 1: mapped, 2: mapping failed.
    state: Arc<AtomicU8>,
}

/// Turns the canvas into I420 planes on the GPU, at the canvas's size or scaled to another,
/// and reads them back through a ring of staging buffers. Only the compositor whose frames are
/// encoded has them: one at the canvas's size, and one for each other size an output encodes.
struct I420Conversion {
    layout: I420Layout,
    source_size: [u32; 2],
    /// Its planes hold nothing yet: the next frame is converted whole.
    needs_whole: bool,
    luma_pipeline: wgpu::ComputePipeline,
    chroma_pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    params: wgpu::Buffer,
    planes: wgpu::Buffer,
    free_readbacks: Vec<Readback>,
}

impl I420Conversion {
    fn new(
        device: &wgpu::Device,
        canvas_view: &wgpu::TextureView,
        canvas_size: [u32; 2],
        size: [u32; 2],
    ) -> Self {
        let layout = I420Layout::new(size[0], size[1]);
        let convert_shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("convert_i420.wgsl"),
            source: wgpu::ShaderSource::Wgsl(
                include_str!("../../shaders/convert_i420.wgsl").into(),
            ),
        });
        let planes = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("i420 planes"),
            size: layout.total_bytes as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let params_buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("convert params"),
            size: std::mem::size_of::<ConvertParams>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let convert_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("convert"),
            entries: &[
                texture_2d_entry(0, wgpu::ShaderStages::COMPUTE, true),
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 2,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        // Scaled conversions average areas of the canvas with bilinear taps.
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("convert scaling"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let convert_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("convert"),
            layout: &convert_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::TextureView(canvas_view),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: planes.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: params_buffer.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::Sampler(&sampler),
                },
            ],
        });
        let convert_pipeline_layout =
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("convert"),
                bind_group_layouts: &[Some(&convert_layout)],
                immediate_size: 0,
            });
        let compute = |entry_point: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry_point),
                layout: Some(&convert_pipeline_layout),
                module: &convert_shader,
                entry_point: Some(entry_point),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let luma_pipeline = compute("luma");
        let chroma_pipeline = compute("chroma");
        let free_readbacks = (0..READBACK_RING)
            .map(|_| Readback {
                buffer: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: layout.total_bytes as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                state: Arc::new(AtomicU8::new(0)),
            })
            .collect();
        Self {
            layout,
            source_size: canvas_size,
            needs_whole: true,
            luma_pipeline,
            chroma_pipeline,
            group: convert_group,
            params: params_buffer,
            planes,
            free_readbacks,
        }
    }
}

impl I420Conversion {
    /// Converts `region` (in this conversion's pixels) into the planes and copies them to
    /// `readback`.
    fn encode(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        region: Option<CanvasRect>,
        readback: &Readback,
    ) {
        if let Some(region) = region {
            let layout = &self.layout;
            let params = ConvertParams {
                width: layout.width,
                height: layout.height,
                luma_stride_words: (layout.luma_stride / 4) as u32,
                chroma_stride_words: (layout.chroma_stride / 4) as u32,
                u_offset_words: (layout.u_offset / 4) as u32,
                v_offset_words: (layout.v_offset / 4) as u32,
                region_x_words: region.x / 4,
                region_y: region.y,
                region_width_words: region.width.div_ceil(4),
                region_height: region.height,
                source_width: self.source_size[0],
                source_height: self.source_size[1],
            };
            queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("convert i420"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, &self.group, &[]);
            pass.set_pipeline(&self.luma_pipeline);
            pass.dispatch_workgroups(
                params.region_width_words.div_ceil(16),
                region.height.div_ceil(8),
                1,
            );
            pass.set_pipeline(&self.chroma_pipeline);
            pass.dispatch_workgroups(
                params.region_width_words.div_ceil(2).div_ceil(16),
                region.height.div_ceil(2).div_ceil(8),
                1,
            );
        }
        encoder.copy_buffer_to_buffer(
            &self.planes,
            0,
            &readback.buffer,
            0,
            self.layout.total_bytes as u64,
        );
    }

    fn size(&self) -> [u32; 2] {
        [self.layout.width, self.layout.height]
    }

    /// The part of this conversion's picture that canvas region `region` touches: scaled,
    /// widened by a pixel for the bilinear taps that reach across its edge, and aligned as the
    /// shader needs (8 pixels across, 2 down).
    fn scaled_region(&self, region: CanvasRect) -> CanvasRect {
        let [width, height] = self.size();
        let [source_width, source_height] = self.source_size;
        let scale_down = |value: u32, to: u32, from: u32| {
            (u64::from(value) * u64::from(to) / u64::from(from.max(1))) as u32
        };
        let scale_up = |value: u32, to: u32, from: u32| {
            (u64::from(value) * u64::from(to)).div_ceil(u64::from(from.max(1))) as u32
        };
        let x = scale_down(region.x, width, source_width).saturating_sub(1) & !7;
        let y = scale_down(region.y, height, source_height).saturating_sub(1) & !1;
        let right = (scale_up(region.x + region.width, width, source_width) + 1).min(width);
        let bottom = (scale_up(region.y + region.height, height, source_height) + 1).min(height);
        CanvasRect {
            x,
            y,
            width: right.saturating_sub(x),
            height: bottom.saturating_sub(y),
        }
    }
}

/// A frame on its way back from the GPU: the canvas-size planes, and those of each scaled
/// conversion, all from one submission.
struct InFlight {
    frame_index: u64,
    readback: Readback,
    scaled: Vec<([u32; 2], Readback)>,
}

pub struct Compositor {
    gpu: Arc<Gpu>,
    /// The coordinate space items are placed in (the collection's canvas).
    canvas_size: [u32; 2],
    /// The canvas texture's size: `canvas_size`, or smaller for a display-only compositor.
    target_size: [u32; 2],
    canvas: wgpu::Texture,
    canvas_view: wgpu::TextureView,
    item_pipeline: wgpu::RenderPipeline,
    item_uniform_layout: wgpu::BindGroupLayout,
    item_uniforms: wgpu::Buffer,
    item_uniform_group: wgpu::BindGroup,
    item_capacity: u64,
    /// The sources' pictures, shared with the compositors drawing beside this one.
    sources: Arc<Mutex<SourceTextures>>,
    /// `None` for a compositor that draws for the screen only.
    conversion: Option<I420Conversion>,
    /// Conversions to the other sizes outputs encode (see [`Compositor::set_output_sizes`]).
    scaled: Vec<I420Conversion>,
    /// An opaque black 1x1 texture, drawn under the dirty region to clear it.
    clear_texture: wgpu::BindGroup,
    /// The layers drawn last frame; `None` until the canvas has been drawn once.
    drawn: Option<Vec<DrawnLayer>>,
    in_flight: VecDeque<InFlight>,
    /// The canvas was drawn without converting it (`render_display`): the I420 planes are
    /// out of date everywhere, not just where the next frame changes.
    planes_stale: bool,
}

impl Compositor {
    pub fn new(gpu: Arc<Gpu>, canvas_size: [u32; 2]) -> Self {
        let sources = Arc::new(Mutex::new(SourceTextures::new(gpu.clone())));
        Self::with_target_size(gpu, canvas_size, canvas_size, sources, true)
    }

    /// A compositor for [`render_display`](Self::render_display) only, drawing the canvas's
    /// contents into a texture of `target_size` (smaller than the canvas, for a monitor).
    pub fn for_display(gpu: Arc<Gpu>, canvas_size: [u32; 2], target_size: [u32; 2]) -> Self {
        let sources = Arc::new(Mutex::new(SourceTextures::new(gpu.clone())));
        Self::with_target_size(gpu, canvas_size, target_size, sources, false)
    }

    /// A display-only compositor (as [`for_display`](Self::for_display)) for `beside`'s canvas
    /// that draws with `beside`'s source textures: a picture both show is uploaded once.
    pub fn for_display_beside(beside: &Compositor, target_size: [u32; 2]) -> Self {
        Self::with_target_size(
            beside.gpu.clone(),
            beside.canvas_size,
            target_size,
            beside.sources.clone(),
            false,
        )
    }

    fn with_target_size(
        gpu: Arc<Gpu>,
        canvas_size: [u32; 2],
        target_size: [u32; 2],
        sources: Arc<Mutex<SourceTextures>>,
        converts: bool,
    ) -> Self {
        let target_size = target_size.map(|side| side.max(1));
        let device = &gpu.device;
        let canvas = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("canvas"),
            size: wgpu::Extent3d {
                width: target_size[0],
                height: target_size[1],
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT
                | wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let canvas_view = canvas.create_view(&wgpu::TextureViewDescriptor::default());

        let composite_shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("composite.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/composite.wgsl").into()),
        });
        let item_uniform_layout =
            device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("item uniform"),
                entries: &[wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(
                            std::mem::size_of::<ItemUniform>() as u64
                        ),
                    },
                    count: None,
                }],
            });
        let (texture_layout, clear_texture) = {
            let sources = lock(&sources);
            (sources.layout().clone(), sources.solid([0, 0, 0, 255]))
        };
        let item_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("composite"),
            bind_group_layouts: &[Some(&item_uniform_layout), Some(&texture_layout)],
            immediate_size: 0,
        });
        let premultiplied_over = wgpu::BlendComponent {
            src_factor: wgpu::BlendFactor::One,
            dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
            operation: wgpu::BlendOperation::Add,
        };
        let item_pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("composite"),
            layout: Some(&item_pipeline_layout),
            vertex: wgpu::VertexState {
                module: &composite_shader,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState {
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                ..Default::default()
            },
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &composite_shader,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: wgpu::TextureFormat::Rgba8Unorm,
                    blend: Some(wgpu::BlendState {
                        color: premultiplied_over,
                        alpha: premultiplied_over,
                    }),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        let item_capacity = 16;
        let (item_uniforms, item_uniform_group) =
            Self::item_uniform_buffer(device, &item_uniform_layout, item_capacity);

        let conversion =
            converts.then(|| I420Conversion::new(device, &canvas_view, canvas_size, canvas_size));

        Self {
            gpu,
            canvas_size,
            target_size,
            canvas,
            canvas_view,
            item_pipeline,
            item_uniform_layout,
            item_uniforms,
            item_uniform_group,
            item_capacity,
            sources,
            conversion,
            scaled: Vec::new(),
            clear_texture,
            drawn: None,
            in_flight: VecDeque::new(),
            planes_stale: false,
        }
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Drops what is cached for `source_id` (its texture, and the record of what was drawn),
    /// after the source was replaced: the next frame uploads and redraws it in full.
    pub fn forget(&mut self, source_id: &str) {
        lock(&self.sources).forget(source_id);
        self.drawn = None;
    }

    /// How many source pictures were uploaded for this compositor and those drawing beside it.
    pub fn source_uploads(&self) -> u64 {
        lock(&self.sources).uploads()
    }

    /// The canvas the layers are drawn on (RGBA, premultiplied), for showing on screen.
    pub fn canvas_texture(&self) -> wgpu::Texture {
        self.canvas.clone()
    }

    /// `[x, y, width, height]` in canvas pixels as pixels of the canvas texture: the same for
    /// the program, scaled (outwards, to whole pixels) for a compositor drawn smaller.
    fn target_rect(&self, [x, y, width, height]: [u32; 4]) -> [u32; 4] {
        if self.target_size == self.canvas_size {
            return [x, y, width, height];
        }
        let scale = |value: u32, axis: usize| {
            f64::from(value) * f64::from(self.target_size[axis]) / f64::from(self.canvas_size[axis])
        };
        let x0 = scale(x, 0).floor() as u32;
        let y0 = scale(y, 1).floor() as u32;
        let x1 = (scale(x + width, 0).ceil() as u32).min(self.target_size[0]);
        let y1 = (scale(y + height, 1).ceil() as u32).min(self.target_size[1]);
        [x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0)]
    }

    /// Composites `layers` onto the canvas for display only: no conversion, no readback.
    pub fn render_display(&mut self, layers: &[Layer<'_>]) -> Result<(), RenderError> {
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("display"),
            });
        if self.draw(&mut encoder, layers, false).is_some() {
            self.gpu.queue.submit([encoder.finish()]);
            self.planes_stale = true;
        }
        Ok(())
    }

    fn item_uniform_buffer(
        device: &wgpu::Device,
        layout: &wgpu::BindGroupLayout,
        capacity: u64,
    ) -> (wgpu::Buffer, wgpu::BindGroup) {
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("item uniforms"),
            size: capacity * UNIFORM_ALIGN,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("item uniforms"),
            layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &buffer,
                    offset: 0,
                    size: wgpu::BufferSize::new(std::mem::size_of::<ItemUniform>() as u64),
                }),
            }],
        });
        (buffer, group)
    }

    /// Draws `layers` (bottom first) onto the canvas, redrawing only what changed since the
    /// last call unless `full`. Returns the region redrawn, `None` if nothing changed.
    fn draw(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        layers: &[Layer<'_>],
        full: bool,
    ) -> Option<CanvasRect> {
        let sources = self.sources.clone();
        let mut sources = lock(&sources);
        for layer in layers {
            sources.update(layer.source_id, layer.frame);
        }
        let planned = dirty::plan(layers, self.canvas_size);
        if full {
            self.drawn = None;
        }
        let region = dirty::dirty_region(self.drawn.as_deref(), &planned, self.canvas_size);
        self.drawn = Some(planned);
        let region = region?;
        let planned = self.drawn.as_deref().unwrap_or_default();

        // Slot 0 clears the region; the layers follow.
        let slots = planned.len() as u64 + 1;
        if slots > self.item_capacity {
            self.item_capacity = slots.next_power_of_two();
            let (buffer, group) = Self::item_uniform_buffer(
                &self.gpu.device,
                &self.item_uniform_layout,
                self.item_capacity,
            );
            self.item_uniforms = buffer;
            self.item_uniform_group = group;
        }
        let clear = ItemUniform {
            corners: [
                [-1.0, 1.0, 0.5, 0.5],
                [1.0, 1.0, 0.5, 0.5],
                [-1.0, -1.0, 0.5, 0.5],
                [1.0, -1.0, 0.5, 0.5],
            ],
            opacity: [1.0, 0.0, 0.0, 0.0],
        };
        let mut staging = vec![0u8; slots as usize * UNIFORM_ALIGN as usize];
        staging[..std::mem::size_of::<ItemUniform>()].copy_from_slice(bytemuck::bytes_of(&clear));
        for (index, layer) in planned.iter().enumerate() {
            let start = (index + 1) * UNIFORM_ALIGN as usize;
            staging[start..start + layer.uniform.len()].copy_from_slice(&layer.uniform);
        }
        self.gpu
            .queue
            .write_buffer(&self.item_uniforms, 0, &staging);

        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("composite"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: &self.canvas_view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Load,
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        pass.set_pipeline(&self.item_pipeline);
        let [x, y, width, height] =
            self.target_rect([region.x, region.y, region.width, region.height]);
        pass.set_scissor_rect(x, y, width, height);
        pass.set_bind_group(0, &self.item_uniform_group, &[0]);
        pass.set_bind_group(1, &self.clear_texture, &[]);
        pass.draw(0..4, 0..1);
        let region_bounds = [
            region.x as f32,
            region.y as f32,
            (region.x + region.width) as f32,
            (region.y + region.height) as f32,
        ];
        for (index, layer) in planned.iter().enumerate() {
            let overlaps = layer.bounds[0] < region_bounds[2]
                && layer.bounds[2] > region_bounds[0]
                && layer.bounds[1] < region_bounds[3]
                && layer.bounds[3] > region_bounds[1];
            let Some(bind_group) = sources.bind_group(&layer.source_id).filter(|_| overlaps) else {
                continue;
            };
            let scissor = match layer.clip {
                Some([x0, y0, x1, y1]) => {
                    let x = x0.max(region.x);
                    let y = y0.max(region.y);
                    let right = x1.min(region.x + region.width);
                    let bottom = y1.min(region.y + region.height);
                    if right <= x || bottom <= y {
                        continue;
                    }
                    [x, y, right - x, bottom - y]
                }
                None => [region.x, region.y, region.width, region.height],
            };
            let [x, y, width, height] = self.target_rect(scissor);
            pass.set_scissor_rect(x, y, width, height);
            pass.set_bind_group(
                0,
                &self.item_uniform_group,
                &[((index as u64 + 1) * UNIFORM_ALIGN) as u32],
            );
            pass.set_bind_group(1, bind_group, &[]);
            pass.draw(0..4, 0..1);
        }
        Some(region)
    }

    /// The sizes outputs encode at, besides the canvas's: one scaled conversion each, made
    /// when a size first appears and dropped when no output wants it.
    pub fn set_output_sizes(&mut self, sizes: &[(u32, u32)]) {
        if self.conversion.is_none() {
            return;
        }
        let canvas = self.canvas_size;
        let wanted: Vec<[u32; 2]> = sizes
            .iter()
            .map(|&(width, height)| [width, height])
            .filter(|&size| size != canvas)
            .collect();
        self.scaled
            .retain(|conversion| wanted.contains(&conversion.size()));
        for size in wanted {
            if !self
                .scaled
                .iter()
                .any(|conversion| conversion.size() == size)
            {
                let conversion =
                    I420Conversion::new(&self.gpu.device, &self.canvas_view, canvas, size);
                self.scaled.push(conversion);
            }
        }
    }

    /// Composites `layers`, converts the canvas to I420 and starts reading it back. The frame
    /// comes out of [`collect_ready`](Self::collect_ready) tagged with `frame_index`. When the
    /// ring of readback buffers is full, this first waits for the oldest frame and passes it
    /// to `on_ready`.
    pub fn render(
        &mut self,
        frame_index: u64,
        layers: &[Layer<'_>],
        on_ready: &mut dyn FnMut(u64, &[u8], &I420Layout),
    ) -> Result<(), RenderError> {
        let Some(ring_empty) = self
            .conversion
            .as_ref()
            .map(|conversion| conversion.free_readbacks.is_empty())
        else {
            return Err(RenderError::Readback(ReadbackProblem::DisplayOnly));
        };
        if ring_empty {
            self.collect_ready(true, on_ready)?;
        }
        // Held apart while the canvas is drawn (drawing borrows the whole compositor); put back
        // below, with no early return in between.
        let Some(mut conversion) = self.conversion.take() else {
            return Err(RenderError::Readback(ReadbackProblem::DisplayOnly));
        };
        let Some(readback) = conversion.free_readbacks.pop() else {
            self.conversion = Some(conversion);
            return Err(RenderError::Readback(ReadbackProblem::NoFreeBuffer));
        };
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("frame"),
            });
        let full = std::mem::take(&mut self.planes_stale);
        let region = self.draw(&mut encoder, layers, full);
        conversion.encode(&self.gpu.queue, &mut encoder, region, &readback);
        // Scaled pictures follow the same dirty region, scaled; a new one starts whole.
        let mut scaled = Vec::new();
        for conversion in &mut self.scaled {
            let Some(readback) = conversion.free_readbacks.pop() else {
                continue;
            };
            let [width, height] = conversion.size();
            let scaled_region = if std::mem::take(&mut conversion.needs_whole) {
                Some(CanvasRect {
                    x: 0,
                    y: 0,
                    width,
                    height,
                })
            } else {
                region.map(|region| conversion.scaled_region(region))
            };
            conversion.encode(&self.gpu.queue, &mut encoder, scaled_region, &readback);
            scaled.push((conversion.size(), readback));
        }
        self.conversion = Some(conversion);
        self.gpu.queue.submit([encoder.finish()]);
        for readback in std::iter::once(&readback).chain(scaled.iter().map(|(_, r)| r)) {
            readback.state.store(0, Ordering::Release);
            let state = readback.state.clone();
            readback
                .buffer
                .map_async(wgpu::MapMode::Read, .., move |result| {
                    state.store(if result.is_ok() { 1 } else { 2 }, Ordering::Release);
                });
        }
        self.in_flight.push_back(InFlight {
            frame_index,
            readback,
            scaled,
        });
        Ok(())
    }

    /// Passes finished frames, oldest first, to `on_ready`. With `wait_for_one`, blocks until
    /// at least the oldest frame in flight is done.
    pub fn collect_ready(
        &mut self,
        wait_for_one: bool,
        on_ready: &mut dyn FnMut(u64, &[u8], &I420Layout),
    ) -> Result<usize, RenderError> {
        // A compositor that draws for the screen only has nothing in flight.
        let Some(conversion) = self.conversion.as_mut() else {
            return Ok(0);
        };
        let poll = if wait_for_one && !self.in_flight.is_empty() {
            wgpu::PollType::wait_indefinitely()
        } else {
            wgpu::PollType::Poll
        };
        self.gpu.device.poll(poll)?;
        let mut delivered = 0;
        while let Some(front) = self.in_flight.front() {
            let states = std::iter::once(&front.readback)
                .chain(front.scaled.iter().map(|(_, readback)| readback))
                .map(|readback| readback.state.load(Ordering::Acquire));
            let (mut waiting, mut failed) = (false, false);
            for state in states {
                waiting |= state == 0;
                failed |= state == 2;
            }
            if failed {
                return Err(RenderError::Readback(ReadbackProblem::MapFailed));
            }
            if waiting {
                if wait_for_one && delivered == 0 {
                    self.gpu.device.poll(wgpu::PollType::wait_indefinitely())?;
                    continue;
                }
                break;
            }
            let Some(done) = self.in_flight.pop_front() else {
                break;
            };
            {
                let bytes = done.readback.buffer.get_mapped_range(..)?;
                on_ready(done.frame_index, &bytes, &conversion.layout);
            }
            done.readback.buffer.unmap();
            conversion.free_readbacks.push(done.readback);
            for (size, readback) in done.scaled {
                // A size no output wants any more was dropped meanwhile: so is its frame.
                if let Some(scaled) = self.scaled.iter_mut().find(|c| c.size() == size) {
                    {
                        let bytes = readback.buffer.get_mapped_range(..)?;
                        on_ready(done.frame_index, &bytes, &scaled.layout);
                    }
                    readback.buffer.unmap();
                    scaled.free_readbacks.push(readback);
                }
            }
            delivered += 1;
        }
        Ok(delivered)
    }

    /// Waits for every frame in flight and passes each to `on_ready`.
    pub fn flush(
        &mut self,
        on_ready: &mut dyn FnMut(u64, &[u8], &I420Layout),
    ) -> Result<(), RenderError> {
        while !self.in_flight.is_empty() {
            self.collect_ready(true, on_ready)?;
        }
        Ok(())
    }

    /// Composites `layers` and returns the canvas as packed RGBA (for snapshots and tests).
    pub fn render_rgba(&mut self, layers: &[Layer<'_>]) -> Result<VideoFrame, RenderError> {
        self.read_rgba(Some(layers))
    }

    /// The canvas as it is now, as packed RGBA (for tests of what was drawn).
    pub fn canvas_rgba(&mut self) -> Result<VideoFrame, RenderError> {
        self.read_rgba(None)
    }

    /// Reads the canvas back, first drawing `layers` in full if given.
    fn read_rgba(&mut self, layers: Option<&[Layer<'_>]>) -> Result<VideoFrame, RenderError> {
        let [width, height] = self.target_size;
        let padded_row = (width * 4).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
            * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let buffer = self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("rgba readback"),
            size: u64::from(padded_row) * u64::from(height),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("snapshot"),
            });
        if let Some(layers) = layers {
            self.draw(&mut encoder, layers, true);
            self.planes_stale = true;
        }
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &self.canvas,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(padded_row),
                    rows_per_image: Some(height),
                },
            },
            wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
        );
        self.gpu.queue.submit([encoder.finish()]);
        let state = Arc::new(AtomicU8::new(0));
        let mapped = state.clone();
        buffer.map_async(wgpu::MapMode::Read, .., move |result| {
            mapped.store(if result.is_ok() { 1 } else { 2 }, Ordering::Release);
        });
        self.gpu.device.poll(wgpu::PollType::wait_indefinitely())?;
        if state.load(Ordering::Acquire) != 1 {
            return Err(RenderError::Readback(ReadbackProblem::MapFailed));
        }
        let mut pixels = Vec::with_capacity((width * height * 4) as usize);
        {
            let bytes = buffer.get_mapped_range(..)?;
            for row in bytes.chunks(padded_row as usize).take(height as usize) {
                pixels.extend_from_slice(&row[..(width * 4) as usize]);
            }
        }
        buffer.unmap();
        Ok(VideoFrame {
            width,
            height,
            pixels,
            packing: Packing::Rgba,
        })
    }
}
