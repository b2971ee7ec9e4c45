//! Source pictures on the GPU: one texture per source, uploaded when its picture changes.
//!
//! Program and studio mode's preview draw with the same [`SourceTextures`], so a source seen
//! in both (a moving test pattern, a camera) is uploaded once a frame, not once per monitor.

use super::{unpack, Gpu};
use crate::base::{FrameRef, Packing, VideoFrame};
use std::collections::HashMap;
use std::sync::Arc;

struct CachedTexture {
    texture: wgpu::Texture,
    bind_group: wgpu::BindGroup,
    generation: u64,
    frame: Arc<VideoFrame>,
    /// For YUYV sources: the packed upload the GPU unpacks into `texture`.
    packed: Option<wgpu::Texture>,
}

/// The sources' textures, with the bind group layout and sampler the composite shader reads
/// them through.
pub struct SourceTextures {
    gpu: Arc<Gpu>,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    cache: HashMap<String, CachedTexture>,
    /// Made when the first YUYV picture arrives.
    yuyv: Option<unpack::YuyvUnpacker>,
    uploads: u64,
}

impl SourceTextures {
    pub fn new(gpu: Arc<Gpu>) -> Self {
        let device = &gpu.device;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("source texture"),
            entries: &[
                super::texture_2d_entry(0, wgpu::ShaderStages::FRAGMENT, true),
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
            ],
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("bilinear"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        Self {
            gpu,
            layout,
            sampler,
            cache: HashMap::new(),
            yuyv: None,
            uploads: 0,
        }
    }

    /// The layout of the bind groups handed out here, for the pipelines that sample them.
    pub fn layout(&self) -> &wgpu::BindGroupLayout {
        &self.layout
    }

    /// What the shader samples for `source_id`, once a picture of it was uploaded.
    pub fn bind_group(&self, source_id: &str) -> Option<&wgpu::BindGroup> {
        self.cache.get(source_id).map(|cached| &cached.bind_group)
    }

    /// How many source pictures were uploaded so far.
    pub fn uploads(&self) -> u64 {
        self.uploads
    }

    /// Drops `source_id`'s texture (the source was replaced); the next picture makes a new one.
    pub fn forget(&mut self, source_id: &str) {
        self.cache.remove(source_id);
    }

    /// A 1x1 texture of one colour, sampled like a source's.
    pub fn solid(&self, rgba: [u8; 4]) -> wgpu::BindGroup {
        let (texture, bind_group) = sampled_rgba_texture(
            &self.gpu.device,
            &self.layout,
            &self.sampler,
            "solid",
            [1, 1],
            false,
        );
        write_rgba(&self.gpu.queue, &texture, &VideoFrame::solid(1, 1, rgba));
        bind_group
    }

    /// Uploads a source's picture unless this very picture is already on the GPU. A picture
    /// larger than the GPU's largest texture (a very long line of text, a huge image) is
    /// uploaded scaled down to fit: it is drawn at the same place and size, less sharp.
    pub fn update(&mut self, source_id: &str, frame: &FrameRef) {
        let picture = &frame.frame;
        if let Some(cached) = self.cache.get(source_id) {
            if cached.generation == frame.generation && Arc::ptr_eq(&cached.frame, picture) {
                return;
            }
        }
        let limit = self.gpu.device.limits().max_texture_dimension_2d;
        let upload = fit_within(picture, limit);
        if upload.width != picture.width || upload.height != picture.height {
            tracing::warn!(
                "source `{source_id}`: its {}x{} picture is larger than the GPU's largest \
                 texture ({limit} pixels a side); drawn from a {}x{} copy",
                picture.width,
                picture.height,
                upload.width,
                upload.height
            );
        }
        let yuyv = upload.packing == Packing::Yuyv;
        let reusable = self.cache.get(source_id).is_some_and(|cached| {
            cached.texture.width() == upload.width.max(1)
                && cached.texture.height() == upload.height.max(1)
                && cached.packed.is_some() == yuyv
        });
        if !reusable {
            let (texture, bind_group) = sampled_rgba_texture(
                &self.gpu.device,
                &self.layout,
                &self.sampler,
                source_id,
                [upload.width, upload.height],
                yuyv,
            );
            let packed = yuyv.then(|| packed_texture(&self.gpu.device, &upload));
            self.cache.insert(
                source_id.to_string(),
                CachedTexture {
                    texture,
                    bind_group,
                    generation: u64::MAX,
                    frame: picture.clone(),
                    packed,
                },
            );
        }
        if yuyv && self.yuyv.is_none() {
            self.yuyv = Some(unpack::YuyvUnpacker::new(&self.gpu.device));
        }
        if let Some(cached) = self.cache.get_mut(source_id) {
            match (&cached.packed, &self.yuyv) {
                (Some(packed), Some(unpacker)) => {
                    write_rgba(&self.gpu.queue, packed, &upload);
                    unpacker.unpack(&self.gpu.device, &self.gpu.queue, packed, &cached.texture);
                }
                _ => write_rgba(&self.gpu.queue, &cached.texture, &upload),
            }
            cached.generation = frame.generation;
            cached.frame = picture.clone();
            self.uploads += 1;
        }
    }
}

/// `picture` as it is if both its sides are at most `limit`, else shrunk by the smallest whole
/// factor that fits, each pixel the average of the block it replaces. (A YUYV picture that
/// large, which no camera makes, becomes one transparent pixel.)
fn fit_within(picture: &VideoFrame, limit: u32) -> std::borrow::Cow<'_, VideoFrame> {
    use std::borrow::Cow;
    let limit = limit.max(1);
    if picture.width <= limit && picture.height <= limit {
        return Cow::Borrowed(picture);
    }
    if picture.packing != Packing::Rgba {
        return Cow::Owned(VideoFrame::solid(1, 1, [0, 0, 0, 0]));
    }
    let factor = picture.width.max(picture.height).div_ceil(limit) as usize;
    let (width, height) = (picture.width as usize, picture.height as usize);
    let (fitted_width, fitted_height) = (width.div_ceil(factor), height.div_ceil(factor));
    let mut pixels = vec![0u8; fitted_width * fitted_height * 4];
    for fitted_y in 0..fitted_height {
        for fitted_x in 0..fitted_width {
            let mut sum = [0u32; 4];
            let mut count = 0u32;
            for y in fitted_y * factor..((fitted_y + 1) * factor).min(height) {
                let row = y * width * 4;
                for x in fitted_x * factor..((fitted_x + 1) * factor).min(width) {
                    let at = row + x * 4;
                    if let Some(pixel) = picture.pixels.get(at..at + 4) {
                        for (total, &value) in sum.iter_mut().zip(pixel) {
                            *total += u32::from(value);
                        }
                        count += 1;
                    }
                }
            }
            let at = (fitted_y * fitted_width + fitted_x) * 4;
            for (channel, total) in sum.iter().enumerate() {
                pixels[at + channel] = (total / count.max(1)) as u8;
            }
        }
    }
    Cow::Owned(VideoFrame {
        width: fitted_width as u32,
        height: fitted_height as u32,
        pixels,
        packing: Packing::Rgba,
    })
}

/// An RGBA8 texture to be sampled, with its bind group (binding 0 the texture, 1 the sampler):
/// a source's pictures for the composite shader, written by copies or, when
/// `unpacked_on_gpu`, by the unpacking compute shader; also egui's images in the window.
pub(crate) fn sampled_rgba_texture(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    sampler: &wgpu::Sampler,
    label: &str,
    size: [u32; 2],
    unpacked_on_gpu: bool,
) -> (wgpu::Texture, wgpu::BindGroup) {
    let written_by = if unpacked_on_gpu {
        wgpu::TextureUsages::STORAGE_BINDING
    } else {
        wgpu::TextureUsages::COPY_DST
    };
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width: size[0].max(1),
            height: size[1].max(1),
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | written_by,
        view_formats: &[],
    });
    let bind_group = super::sampled_texture_group(device, label, layout, &texture, sampler);
    (texture, bind_group)
}

/// The texture a YUYV picture is uploaded to: one RGBA8 texel per pixel pair.
fn packed_texture(device: &wgpu::Device, picture: &VideoFrame) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some("packed yuyv"),
        size: wgpu::Extent3d {
            width: (picture.width / 2).max(1),
            height: picture.height.max(1),
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// Uploads a picture's bytes into `texture`, 4 bytes a texel: RGBA pixels as they are, YUYV
/// as one texel per pixel pair (for the GPU to unpack).
fn write_rgba(queue: &wgpu::Queue, texture: &wgpu::Texture, picture: &VideoFrame) {
    let texels_per_row = match picture.packing {
        Packing::Rgba => picture.width,
        Packing::Yuyv => picture.width / 2,
    };
    if picture.pixels.len() < texels_per_row as usize * picture.height as usize * 4 {
        return;
    }
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        &picture.pixels,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(texels_per_row * 4),
            rows_per_image: Some(picture.height),
        },
        wgpu::Extent3d {
            width: texels_per_row,
            height: picture.height,
            depth_or_array_layers: 1,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_within_the_limit_is_uploaded_as_it_is() {
        let picture = VideoFrame::solid(8, 4, [1, 2, 3, 4]);
        assert!(matches!(
            fit_within(&picture, 8),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_picture_over_the_limit_is_averaged_down_by_a_whole_factor() {
        // 10x2: left half white, right half black; limit 4 -> factor 3, 4x1.
        let mut picture = VideoFrame::solid(10, 2, [0, 0, 0, 255]);
        for y in 0..2 {
            for x in 0..5 {
                let at = (y * 10 + x) * 4;
                picture.pixels[at..at + 4].copy_from_slice(&[255, 255, 255, 255]);
            }
        }
        let fitted = fit_within(&picture, 4);
        assert_eq!([fitted.width, fitted.height], [4, 1]);
        let reds: Vec<u8> = fitted.pixels.chunks_exact(4).map(|p| p[0]).collect();
        // Blocks of columns 0-2, 3-5 (two white of three), 6-8, 9.
        assert_eq!(reds, [255, 170, 0, 0]);
        assert!(fitted.pixels.chunks_exact(4).all(|p| p[3] == 255));
    }
}
