//! The V4L2 camera backend, through nokhwa. Kept thin: listing, opening in a chosen mode, and
//! reading raw frames; everything else (negotiation, conversion, reattaching) is Tally's own
//! code in the parent module, where it is tested.

use super::{
    CameraBackend, CameraError, CameraInfo, CameraMode, CameraStream, DeviceProblem, PixelFormat,
    RawFrame,
};
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use std::sync::Arc;

pub struct V4lBackend;

const ALL_FORMATS: [FrameFormat; 6] = [
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::GRAY,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
];

fn pixel_format(format: FrameFormat) -> PixelFormat {
    match format {
        FrameFormat::MJPEG => PixelFormat::Mjpeg,
        FrameFormat::YUYV => PixelFormat::Yuyv,
        FrameFormat::NV12 => PixelFormat::Nv12,
        other => PixelFormat::Other(other.to_string()),
    }
}

fn frame_format(pixel: &PixelFormat) -> Option<FrameFormat> {
    match pixel {
        PixelFormat::Mjpeg => Some(FrameFormat::MJPEG),
        PixelFormat::Yuyv => Some(FrameFormat::YUYV),
        PixelFormat::Nv12 => Some(FrameFormat::NV12),
        PixelFormat::Other(_) => None,
    }
}

fn device_path(index: &CameraIndex) -> String {
    match index {
        CameraIndex::Index(number) => format!("/dev/video{number}"),
        CameraIndex::String(text) => text.clone(),
    }
}

fn index_of(device: &str) -> Option<u32> {
    device.strip_prefix("/dev/video")?.parse().ok()
}

/// nokhwa's errors carry the OS message as text; sort out the ones the user can act on.
fn classify(device: &str, error: nokhwa::NokhwaError) -> CameraError {
    let lower = error.to_string().to_lowercase();
    if lower.contains("permission denied") {
        CameraError::Denied {
            device: device.into(),
        }
    } else if lower.contains("busy") {
        CameraError::Busy {
            device: device.into(),
        }
    } else {
        CameraError::Device {
            device: device.into(),
            cause: DeviceProblem::Api(Arc::new(error)),
        }
    }
}

impl CameraBackend for V4lBackend {
    fn list(&self) -> Result<Vec<CameraInfo>, CameraError> {
        let found =
            nokhwa::query(ApiBackend::Video4Linux).map_err(|error| CameraError::Device {
                device: "V4L2".into(),
                cause: DeviceProblem::Api(Arc::new(error)),
            })?;
        let mut cameras = Vec::new();
        for info in found {
            let id = device_path(info.index());
            let modes = match nokhwa::Camera::new(
                info.index().clone(),
                RequestedFormat::with_formats(RequestedFormatType::None, &ALL_FORMATS),
            ) {
                Ok(mut camera) => camera
                    .compatible_camera_formats()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|format| CameraMode {
                        width: format.width(),
                        height: format.height(),
                        fps: format.frame_rate(),
                        pixel: pixel_format(format.format()),
                    })
                    .collect(),
                // A node that cannot be opened (metadata nodes of UVC cameras, a busy camera)
                // is still listed, with no modes.
                Err(_) => Vec::new(),
            };
            cameras.push(CameraInfo {
                id,
                name: info.human_name(),
                modes,
            });
        }
        Ok(cameras)
    }

    fn open(
        &mut self,
        device: &str,
        mode: &CameraMode,
    ) -> Result<Box<dyn CameraStream>, CameraError> {
        let index = index_of(device).ok_or_else(|| CameraError::Device {
            device: device.into(),
            cause: DeviceProblem::NotAVideoDevice,
        })?;
        let format = frame_format(&mode.pixel).ok_or_else(|| CameraError::Device {
            device: device.into(),
            cause: DeviceProblem::Unconvertible(mode.pixel.clone()),
        })?;
        let wanted = CameraFormat::new_from(mode.width, mode.height, format, mode.fps);
        let formats = [format];
        let requested = RequestedFormat::with_formats(RequestedFormatType::Exact(wanted), &formats);
        let mut camera = nokhwa::Camera::new(CameraIndex::Index(index), requested)
            .map_err(|error| classify(device, error))?;
        camera
            .open_stream()
            .map_err(|error| classify(device, error))?;
        Ok(Box::new(V4lStream {
            device: device.into(),
            camera,
        }))
    }
}

struct V4lStream {
    device: String,
    camera: nokhwa::Camera,
}

impl CameraStream for V4lStream {
    fn next_frame(&mut self) -> Result<RawFrame, CameraError> {
        let data = self.camera.frame_raw().map_err(|error| CameraError::Lost {
            device: self.device.clone(),
            cause: DeviceProblem::Api(Arc::new(error)),
        })?;
        Ok(RawFrame {
            data: data.into_owned(),
        })
    }
}
