//! Pictures as they travel from sources to the compositor: a frame's pixels and packing, and
//! the shared handle with a generation that tells the compositor when to upload again.

use std::sync::Arc;

/// A picture, rows packed with no padding: premultiplied-alpha RGBA8, or a camera's YUYV that
/// the compositor unpacks on the GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    pub packing: Packing,
}

/// How a [`VideoFrame`]'s bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// 4 bytes a pixel, premultiplied RGBA.
    Rgba,
    /// 4 bytes per two pixels (Y0 U Y1 V), BT.601 limited range, opaque; `width` is even.
    Yuyv,
}

impl VideoFrame {
    pub fn solid(width: u32, height: u32, rgba: [u8; 4]) -> Self {
        let count = width as usize * height as usize;
        Self {
            width,
            height,
            pixels: rgba.repeat(count),
            packing: Packing::Rgba,
        }
    }
}

/// A source's current picture. `generation` changes whenever the picture does, so the
/// compositor uploads a texture only when it must.
#[derive(Debug, Clone)]
pub struct FrameRef {
    pub frame: Arc<VideoFrame>,
    pub generation: u64,
}
