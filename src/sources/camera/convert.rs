//! Camera pixel formats to what the compositor takes: YUYV (4:2:2 packed) is passed on as it is
//! and unpacked on the GPU (`render::unpack`); NV12 (4:2:0 semi-planar) is converted to RGBA
//! here, and MJPEG decoded by FFmpeg (full-range JPEG YUV) and scaled to RGBA. Webcams send
//! BT.601 limited-range YUV unless they say otherwise, which is what V4L2 cameras almost
//! always do. `yuyv_to_rgba` is the CPU reference the GPU unpacking is tested against.

use super::PixelFormat;
use crate::base::{Packing, VideoFrame};
use crate::sources::media::packed_rgba;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConvertError {
    #[error("{format} frame of {got} bytes is too short for {width}x{height} (needs {needed})")]
    Truncated {
        format: &'static str,
        width: u32,
        height: u32,
        got: usize,
        needed: usize,
    },
    #[error("{0} width must be even")]
    OddWidth(&'static str),
    #[error("MJPEG frame could not be decoded: {0}")]
    Jpeg(JpegProblem),
    #[error("the camera sends {0}, which Tally cannot convert; ask for mjpeg or yuyv")]
    Unsupported(String),
}

/// Why an MJPEG frame did not decode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JpegProblem {
    #[error("this FFmpeg has no MJPEG decoder")]
    NoDecoder,
    #[error("not a JPEG image (no start-of-image marker)")]
    NotJpeg,
    #[error("{0}")]
    Ffmpeg(#[from] ffmpeg_next::Error),
}

impl From<ffmpeg_next::Error> for ConvertError {
    fn from(error: ffmpeg_next::Error) -> Self {
        ConvertError::Jpeg(error.into())
    }
}

/// Turns one camera frame into a picture for the compositor. `jpeg` keeps an MJPEG decoder
/// between frames.
pub fn to_frame(
    format: &PixelFormat,
    width: u32,
    height: u32,
    data: Vec<u8>,
    jpeg: &mut Option<JpegDecoder>,
) -> Result<VideoFrame, ConvertError> {
    match format {
        PixelFormat::Yuyv => yuyv_frame(width, height, data),
        PixelFormat::Nv12 => nv12_to_rgba(width, height, &data),
        PixelFormat::Mjpeg => {
            if jpeg.is_none() {
                *jpeg = Some(JpegDecoder::new()?);
            }
            match jpeg.as_mut() {
                Some(decoder) => decoder.decode(&data),
                None => Err(ConvertError::Jpeg(JpegProblem::NoDecoder)),
            }
        }
        PixelFormat::Other(name) => Err(ConvertError::Unsupported(name.clone())),
    }
}

/// BT.601 limited range to RGB, in 16.16 fixed point.
#[inline]
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (i32::from(y) - 16) * 76_309;
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |value: i32| ((value + 32_768) >> 16).clamp(0, 255) as u8;
    [
        clamp(c + 104_597 * e),
        clamp(c - 25_675 * d - 53_279 * e),
        clamp(c + 132_201 * d),
    ]
}

/// A YUYV picture for the GPU to unpack, checked for size.
pub fn yuyv_frame(width: u32, height: u32, mut data: Vec<u8>) -> Result<VideoFrame, ConvertError> {
    check_yuyv(width, height, data.len())?;
    data.truncate(width as usize * height as usize * 2);
    Ok(VideoFrame {
        width,
        height,
        pixels: data,
        packing: Packing::Yuyv,
    })
}

fn check_yuyv(width: u32, height: u32, got: usize) -> Result<(), ConvertError> {
    if width % 2 != 0 {
        return Err(ConvertError::OddWidth("YUYV"));
    }
    let needed = width as usize * height as usize * 2;
    if got < needed {
        return Err(ConvertError::Truncated {
            format: "YUYV",
            width,
            height,
            got,
            needed,
        });
    }
    Ok(())
}

pub fn yuyv_to_rgba(width: u32, height: u32, data: &[u8]) -> Result<VideoFrame, ConvertError> {
    check_yuyv(width, height, data.len())?;
    let needed = width as usize * height as usize * 2;
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 4);
    for quad in data[..needed].chunks_exact(4) {
        let (y0, u, y1, v) = (quad[0], quad[1], quad[2], quad[3]);
        let [r, g, b] = yuv_to_rgb(y0, u, v);
        pixels.extend_from_slice(&[r, g, b, 255]);
        let [r, g, b] = yuv_to_rgb(y1, u, v);
        pixels.extend_from_slice(&[r, g, b, 255]);
    }
    Ok(VideoFrame {
        width,
        height,
        pixels,
        packing: Packing::Rgba,
    })
}

pub fn nv12_to_rgba(width: u32, height: u32, data: &[u8]) -> Result<VideoFrame, ConvertError> {
    if width % 2 != 0 {
        return Err(ConvertError::OddWidth("NV12"));
    }
    let (w, h) = (width as usize, height as usize);
    let needed = w * h + w * h.div_ceil(2);
    if data.len() < needed {
        return Err(ConvertError::Truncated {
            format: "NV12",
            width,
            height,
            got: data.len(),
            needed,
        });
    }
    let (luma, chroma) = data.split_at(w * h);
    let mut pixels = Vec::with_capacity(w * h * 4);
    for row in 0..h {
        let chroma_row = &chroma[(row / 2) * w..(row / 2) * w + w];
        for (column, &y) in luma[row * w..row * w + w].iter().enumerate() {
            let pair = column & !1;
            let [r, g, b] = yuv_to_rgb(y, chroma_row[pair], chroma_row[pair + 1]);
            pixels.extend_from_slice(&[r, g, b, 255]);
        }
    }
    Ok(VideoFrame {
        width,
        height,
        pixels,
        packing: Packing::Rgba,
    })
}

/// FFmpeg's MJPEG decoder and a scaler to RGBA, reused frame after frame.
pub struct JpegDecoder {
    decoder: ffmpeg_next::decoder::Video,
    scaler: Option<(
        ffmpeg_next::software::scaling::Context,
        [u32; 2],
        ffmpeg_next::format::Pixel,
    )>,
    decoded: ffmpeg_next::frame::Video,
    rgba: ffmpeg_next::frame::Video,
}

impl JpegDecoder {
    pub fn new() -> Result<Self, ConvertError> {
        crate::base::init_ffmpeg();
        let codec = ffmpeg_next::decoder::find(ffmpeg_next::codec::Id::MJPEG)
            .ok_or(ConvertError::Jpeg(JpegProblem::NoDecoder))?;
        let mut context = ffmpeg_next::codec::context::Context::new_with_codec(codec);
        context.set_threading(ffmpeg_next::threading::Config::count(1));
        let decoder = context.decoder().video()?;
        Ok(Self {
            decoder,
            scaler: None,
            decoded: ffmpeg_next::frame::Video::empty(),
            rgba: ffmpeg_next::frame::Video::empty(),
        })
    }

    pub fn decode(&mut self, jpeg: &[u8]) -> Result<VideoFrame, ConvertError> {
        if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
            return Err(ConvertError::Jpeg(JpegProblem::NotJpeg));
        }
        let packet = ffmpeg_next::Packet::copy(jpeg);
        self.decoder.send_packet(&packet)?;
        self.decoder.receive_frame(&mut self.decoded)?;
        let size = [self.decoded.width(), self.decoded.height()];
        let format = self.decoded.format();
        let stale = self
            .scaler
            .as_ref()
            .is_none_or(|(_, old_size, old_format)| *old_size != size || *old_format != format);
        if stale {
            let scaler = ffmpeg_next::software::scaling::Context::get(
                format,
                size[0],
                size[1],
                ffmpeg_next::format::Pixel::RGBA,
                size[0],
                size[1],
                ffmpeg_next::software::scaling::Flags::BILINEAR,
            )?;
            self.scaler = Some((scaler, size, format));
        }
        if let Some((scaler, _, _)) = self.scaler.as_mut() {
            scaler.run(&self.decoded, &mut self.rgba)?;
        }
        Ok(packed_rgba(&self.rgba))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_colours_convert_exactly() {
        // BT.601 limited: black, white, and the 75 % red, green and blue bars.
        assert_eq!(yuv_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(yuv_to_rgb(235, 128, 128), [255, 255, 255]);
        let close = |got: [u8; 3], want: [u8; 3]| {
            got.iter()
                .zip(want)
                .all(|(g, w)| (i32::from(*g) - i32::from(w)).abs() <= 1)
        };
        assert!(
            close(yuv_to_rgb(65, 100, 212), [191, 0, 0]),
            "{:?}",
            yuv_to_rgb(65, 100, 212)
        );
        assert!(
            close(yuv_to_rgb(112, 72, 58), [0, 191, 0]),
            "{:?}",
            yuv_to_rgb(112, 72, 58)
        );
        assert!(
            close(yuv_to_rgb(35, 212, 114), [0, 0, 191]),
            "{:?}",
            yuv_to_rgb(35, 212, 114)
        );
    }

    #[test]
    fn short_frames_are_reported_not_read_past() {
        let error = yuyv_to_rgba(4, 2, &[0; 10]).unwrap_err();
        assert!(error.to_string().contains("needs 16"), "{error}");
        assert!(nv12_to_rgba(4, 2, &[0; 11]).is_err());
        assert!(yuyv_to_rgba(3, 2, &[0; 12]).is_err());
    }

    #[test]
    fn garbage_is_not_a_jpeg() {
        let mut decoder = JpegDecoder::new().unwrap();
        assert!(decoder.decode(b"hello world").is_err());
        assert!(decoder.decode(&[0xFF, 0xD8, 0, 0, 0]).is_err());
    }
}
