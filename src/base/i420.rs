//! The I420 layout the compositor's conversion writes and the encoders read.

/// Where each plane lives in a converted frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct I420Layout {
    pub width: u32,
    pub height: u32,
    pub luma_stride: usize,
    pub chroma_stride: usize,
    pub u_offset: usize,
    pub v_offset: usize,
    pub total_bytes: usize,
}

impl I420Layout {
    pub fn new(width: u32, height: u32) -> Self {
        let chroma_width = width.div_ceil(2);
        let chroma_height = height.div_ceil(2);
        let luma_stride = (width as usize).div_ceil(4) * 4;
        let chroma_stride = (chroma_width as usize).div_ceil(4) * 4;
        let u_offset = luma_stride * height as usize;
        let v_offset = u_offset + chroma_stride * chroma_height as usize;
        Self {
            width,
            height,
            luma_stride,
            chroma_stride,
            u_offset,
            v_offset,
            total_bytes: v_offset + chroma_stride * chroma_height as usize,
        }
    }

    pub fn chroma_height(&self) -> usize {
        self.height.div_ceil(2) as usize
    }
}
