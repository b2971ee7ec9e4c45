//! AV1 through rav1e, the pure-Rust encoder (its crate, not FFmpeg's wrapper): speed preset,
//! tiles, low-latency mode (no frame waits for a later one), bitrate or quantizer, keyframes on
//! request. Slower than SVT-AV1 for live work (BENCHMARKS.md has its speed at each preset);
//! offered for `--fast` renders and recordings where bits matter more than CPU.
//!
//! FFmpeg's muxers want the stream's AV1 sequence header (MP4's `av1C`, Matroska's
//! CodecPrivate) before the first packet, and ffmpeg-next has no way to set a stream's
//! extradata. So at open a throwaway encoder with the same settings makes one keyframe,
//! FFmpeg reads it back from a temporary `.obu` file, and its probe fills in the stream's
//! parameters, sequence header included (FFmpeg extracts it from the first packet).

use super::{EncodeError, EncodedPacket, PictureShape, StreamInfo, StreamKind};
use super::{RateControl, VideoSettings};
use crate::base::FrameRate;
use ffmpeg_next as ffmpeg;
use rav1e::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The name Tally reports for this encoder.
pub(super) const NAME: &str = "rav1e";

pub(super) struct Rav1eEncoder {
    context: Context<u8>,
    info: StreamInfo,
    /// The canvas frame of each frame handed over, by rav1e's frame number, until its packet
    /// comes back.
    pts_of: HashMap<u64, i64>,
    frames_sent: u64,
}

impl Rav1eEncoder {
    pub(super) fn open(
        settings: &VideoSettings,
        width: u32,
        height: u32,
        fps: FrameRate,
    ) -> Result<Self, EncodeError> {
        let config = config(settings, width, height, fps);
        let context = config
            .new_context()
            .map_err(|error| refused(settings, error))?;
        let time_base = ffmpeg::Rational::new(fps.den as i32, fps.num as i32);
        let parameters = probed_parameters(&config, width, height, settings)?;
        Ok(Self {
            context,
            info: StreamInfo {
                parameters,
                time_base,
                codec: ffmpeg::codec::Id::AV1,
                picture: Some(PictureShape {
                    width,
                    height,
                    fps: fps.as_f64(),
                }),
            },
            pts_of: HashMap::new(),
            frames_sent: 0,
        })
    }

    pub(super) fn stream_info(&self) -> StreamInfo {
        self.info.clone()
    }

    /// Encodes one frame (a keyframe if it is marked as one); returns the packets ready.
    pub(super) fn encode(
        &mut self,
        frame: &ffmpeg::frame::Video,
    ) -> Result<Vec<EncodedPacket>, EncodeError> {
        let mut picture = self.context.new_frame();
        for (plane, target) in picture.planes.iter_mut().enumerate() {
            target.copy_from_raw_u8(frame.data(plane), frame.stride(plane), 1);
        }
        let keyframe = frame.kind() == ffmpeg::picture::Type::I;
        let parameters = FrameParameters {
            frame_type_override: if keyframe {
                FrameTypeOverride::Key
            } else {
                FrameTypeOverride::No
            },
            ..FrameParameters::default()
        };
        self.pts_of.insert(
            self.frames_sent,
            frame.pts().unwrap_or(self.frames_sent as i64),
        );
        self.frames_sent += 1;
        self.context
            .send_frame((picture, parameters))
            .map_err(failed)?;
        self.drain()
    }

    /// Flushes the encoder at end of stream.
    pub(super) fn finish(&mut self) -> Result<Vec<EncodedPacket>, EncodeError> {
        self.context.flush();
        self.drain()
    }

    fn drain(&mut self) -> Result<Vec<EncodedPacket>, EncodeError> {
        let mut packets = Vec::new();
        loop {
            match self.context.receive_packet() {
                Ok(packet) => {
                    let pts = self
                        .pts_of
                        .remove(&packet.input_frameno)
                        .unwrap_or(packet.input_frameno as i64);
                    let mut encoded = ffmpeg::Packet::copy(&packet.data);
                    // Low-latency mode: pictures come out in the order they are shown.
                    encoded.set_pts(Some(pts));
                    encoded.set_dts(Some(pts));
                    if packet.frame_type == FrameType::KEY {
                        encoded.set_flags(ffmpeg::packet::Flags::KEY);
                    }
                    packets.push(EncodedPacket {
                        kind: StreamKind::Video,
                        packet: encoded,
                        time_base: self.info.time_base,
                    });
                }
                Err(EncoderStatus::Encoded) => {}
                Err(EncoderStatus::NeedMoreData | EncoderStatus::LimitReached) => break,
                Err(other) => return Err(failed(other)),
            }
        }
        Ok(packets)
    }
}

/// rav1e's speed (0 slowest ... 10 fastest) for an x264 preset name, or the number itself.
fn speed(preset: &str) -> u8 {
    super::settings::numbered_preset(preset, [10, 9, 8, 7, 6, 5, 4, 3, 2])
}

fn config(settings: &VideoSettings, width: u32, height: u32, fps: FrameRate) -> Config {
    let keyint = u64::from(settings.keyframe_interval_frames(fps));
    let mut speed_settings = SpeedSettings::from_preset(speed(&settings.preset));
    // A fixed keyframe cadence, as for every other encoder (outputs join on those).
    speed_settings.scene_detection_mode = SceneDetectionSpeed::None;
    let threads = settings.threads.unwrap_or(0) as usize;
    let mut encoder = EncoderConfig {
        width: width as usize,
        height: height as usize,
        time_base: Rational::new(u64::from(fps.den), u64::from(fps.num)),
        bit_depth: 8,
        chroma_sampling: ChromaSampling::Cs420,
        min_key_frame_interval: keyint,
        max_key_frame_interval: keyint,
        low_latency: true,
        speed_settings,
        // Tiles are what rav1e encodes in parallel: one per thread.
        tiles: threads.max(1),
        ..EncoderConfig::default()
    };
    match settings.rate_control {
        RateControl::Cbr { kbps } | RateControl::Vbr { kbps, .. } => {
            encoder.bitrate = i32::try_from(kbps.saturating_mul(1000)).unwrap_or(i32::MAX);
        }
        // x264's 0-51 onto rav1e's 0-255 quantizer.
        RateControl::Crf { crf } => encoder.quantizer = usize::from(crf) * 5,
    }
    Config::new()
        .with_encoder_config(encoder)
        .with_threads(threads)
}

/// The stream's FFmpeg parameters, sequence header included: one keyframe from a throwaway
/// encoder with the same settings, read back by FFmpeg from a temporary `.obu` file.
fn probed_parameters(
    config: &Config,
    width: u32,
    height: u32,
    settings: &VideoSettings,
) -> Result<ffmpeg::codec::Parameters, EncodeError> {
    static FILES: AtomicU64 = AtomicU64::new(0);
    let mut context: Context<u8> = config
        .new_context()
        .map_err(|error| refused(settings, error))?;
    let mut grey = context.new_frame();
    for plane in grey.planes.iter_mut() {
        let bytes = vec![128u8; plane.cfg.stride * plane.cfg.alloc_height];
        plane.copy_from_raw_u8(&bytes, plane.cfg.stride, 1);
    }
    context
        .send_frame(grey)
        .map_err(|status| refused(settings, Rav1eProblem::FirstFrame(status)))?;
    context.flush();
    // The low-overhead OBU format FFmpeg reads starts each temporal unit with a delimiter.
    let mut obus = Vec::new();
    loop {
        match context.receive_packet() {
            Ok(packet) => {
                if packet.data.first().map(|header| (header >> 3) & 0x0f) != Some(2) {
                    obus.extend_from_slice(&[0x12, 0x00]);
                }
                obus.extend_from_slice(&packet.data);
            }
            Err(EncoderStatus::Encoded) => {}
            Err(EncoderStatus::LimitReached | EncoderStatus::NeedMoreData) => break,
            Err(other) => return Err(refused(settings, Rav1eProblem::FirstFrame(other))),
        }
    }
    let path = std::env::temp_dir().join(format!(
        "tally-{}-{}-{width}x{height}.obu",
        std::process::id(),
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    let probed = std::fs::write(&path, &obus)
        .map_err(|cause| {
            refused(
                settings,
                Rav1eProblem::TemporaryFile {
                    path: path.clone(),
                    cause,
                },
            )
        })
        .and_then(|()| {
            let input = ffmpeg::format::input(&path)
                .map_err(|error| refused(settings, Rav1eProblem::Unreadable(error)))?;
            let stream = input
                .streams()
                .best(ffmpeg::media::Type::Video)
                .ok_or_else(|| refused(settings, Rav1eProblem::NoPicture))?;
            Ok(stream.parameters())
        });
    if let Err(error) = std::fs::remove_file(&path) {
        tracing::debug!("{}: {error}", path.display());
    }
    probed
}

/// Why rav1e could not start.
#[derive(Debug, thiserror::Error)]
pub enum Rav1eProblem {
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    #[error("its first frame did not encode: {0}")]
    FirstFrame(EncoderStatus),
    #[error("cannot write {path}: {cause}")]
    TemporaryFile {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    #[error("FFmpeg cannot read its first frame: {0}")]
    Unreadable(ffmpeg::Error),
    #[error("FFmpeg found no picture in its first frame")]
    NoPicture,
}

fn refused(settings: &VideoSettings, cause: impl Into<Rav1eProblem>) -> EncodeError {
    EncodeError::Rav1e {
        settings: settings.describe(),
        cause: cause.into(),
    }
}

fn failed(status: EncoderStatus) -> EncodeError {
    EncodeError::Rav1eFailed(status)
}
