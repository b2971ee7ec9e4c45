//! Encoders: H.264, HEVC or AV1 video (libx264, libx265, SVT-AV1, or NVENC when the machine
//! has it) and AAC audio, through the system FFmpeg (ffmpeg-next). Each encoder takes raw frames and gives back packets tagged
//! with their time base; it knows nothing about files or sockets, so one encode can feed
//! several outputs.

mod profile;
mod rav1e_encoder;
mod settings;

pub use profile::{EncodeProfile, ProfileError};
pub use settings::{AudioSettings, RateControl, VideoCodec, VideoEncoderKind, VideoSettings};

use crate::base::init_ffmpeg;
use crate::base::FrameRate;
use crate::base::I420Layout;
use crate::base::{AUDIO_CHANNELS, SAMPLE_RATE};
use ffmpeg_next as ffmpeg;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("FFmpeg has no encoder named {0}; install FFmpeg with it (packaging/install-deps.sh)")]
    Missing(String),
    #[error(
        "encoder {encoder} refused these settings ({settings}): {cause}{}",
        hint_for(encoder)
    )]
    Open {
        encoder: String,
        settings: String,
        cause: ffmpeg::Error,
    },
    #[error(
        "encoder {} does not make {}; for {} use {}",
        .encoder.key(), .codec.label(), .codec.label(), .codec.software_encoder().key()
    )]
    WrongCodec {
        encoder: VideoEncoderKind,
        codec: VideoCodec,
    },
    #[error("rav1e refused these settings ({settings}): {cause}")]
    Rav1e {
        settings: String,
        cause: rav1e_encoder::Rav1eProblem,
    },
    #[error("rav1e failed: {0}")]
    Rav1eFailed(::rav1e::EncoderStatus),
    #[error("encoder {encoder} failed: {cause}")]
    Encode {
        encoder: String,
        cause: ffmpeg::Error,
    },
}

/// Which elementary stream a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Video,
    Audio,
}

/// An encoded packet with the time base its timestamps are in.
pub struct EncodedPacket {
    pub kind: StreamKind,
    pub packet: ffmpeg::Packet,
    pub time_base: ffmpeg::Rational,
}

impl EncodedPacket {
    pub fn is_keyframe(&self) -> bool {
        self.packet.is_key()
    }
}

/// What an output needs to know about a stream before its first packet.
#[derive(Clone)]
pub struct StreamInfo {
    pub parameters: ffmpeg::codec::Parameters,
    pub time_base: ffmpeg::Rational,
    pub codec: ffmpeg::codec::Id,
    /// Video: the picture size and frame rate (what a stream's metadata announces).
    pub picture: Option<PictureShape>,
}

/// A video stream's picture size and frame rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PictureShape {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

pub struct VideoEncoder {
    name: String,
    codec: VideoCodec,
    backend: Backend,
    time_base: ffmpeg::Rational,
    /// Frames handed to the encoder, and whether it was flushed (see the `Drop`).
    frames_sent: u64,
    flushed: bool,
}

/// Which library encodes.
enum Backend {
    Ffmpeg(ffmpeg::encoder::Video),
    Rav1e(Box<rav1e_encoder::Rav1eEncoder>),
}

impl VideoEncoder {
    /// Opens the encoder for `width`x`height` at `fps`. With [`VideoEncoderKind::Auto`], NVENC
    /// is tried first and the codec's software encoder is the fallback.
    pub fn open(
        settings: &VideoSettings,
        width: u32,
        height: u32,
        fps: FrameRate,
    ) -> Result<Self, EncodeError> {
        init_ffmpeg();
        match settings.encoder {
            VideoEncoderKind::Auto => {
                let mut nvenc = settings.clone();
                nvenc.encoder = VideoEncoderKind::Nvenc;
                Self::open(&nvenc, width, height, fps).or_else(|nvenc_error| {
                    tracing::debug!("NVENC not used: {nvenc_error}");
                    let mut software = settings.clone();
                    software.encoder = settings.codec.software_encoder();
                    Self::open(&software, width, height, fps)
                })
            }
            kind => Self::open_named(kind, settings, width, height, fps),
        }
    }

    fn open_named(
        kind: VideoEncoderKind,
        settings: &VideoSettings,
        width: u32,
        height: u32,
        fps: FrameRate,
    ) -> Result<Self, EncodeError> {
        let name = kind
            .encoder_name(settings.codec)
            .ok_or(EncodeError::WrongCodec {
                encoder: kind,
                codec: settings.codec,
            })?;
        let time_base = ffmpeg::Rational::new(fps.den as i32, fps.num as i32);
        if kind == VideoEncoderKind::Rav1e {
            let encoder = rav1e_encoder::Rav1eEncoder::open(settings, width, height, fps)?;
            return Ok(Self {
                name: rav1e_encoder::NAME.to_string(),
                codec: settings.codec,
                backend: Backend::Rav1e(Box::new(encoder)),
                time_base,
                frames_sent: 0,
                flushed: false,
            });
        }
        let codec =
            ffmpeg::encoder::find_by_name(name).ok_or_else(|| EncodeError::Missing(name.into()))?;
        let mut encoder = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|error| open_error(name, settings, error))?;
        encoder.set_width(width);
        encoder.set_height(height);
        encoder.set_format(ffmpeg::format::Pixel::YUV420P);
        encoder.set_time_base(time_base);
        encoder.set_frame_rate(Some(ffmpeg::Rational::new(fps.num as i32, fps.den as i32)));
        encoder.set_gop(settings.keyframe_interval_frames(fps));
        encoder.set_colorspace(ffmpeg::color::Space::BT709);
        encoder.set_color_range(ffmpeg::color::Range::MPEG);
        encoder.set_color_primaries(ffmpeg::color::Primaries::BT709);
        encoder.set_color_transfer_characteristic(ffmpeg::color::TransferCharacteristic::BT709);
        // Every container Tally writes (MP4, MKV, FLV) wants SPS/PPS out of band. Closed GOPs:
        // FFmpeg's libx264 wrapper otherwise turns on open GOP, whose keyframes are not IDR
        // frames and whose leading B-frames lean on the previous group; ingest servers want
        // IDR keyframes, and a stream can only be cut at a keyframe if nothing crosses it.
        encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER | ffmpeg::codec::Flags::CLOSED_GOP);
        let options = settings.ffmpeg_options(kind, fps);
        let encoder = encoder
            .open_with(options)
            .map_err(|error| open_error(name, settings, error))?;
        Ok(Self {
            name: name.to_string(),
            codec: settings.codec,
            backend: Backend::Ffmpeg(encoder),
            time_base,
            frames_sent: 0,
            flushed: false,
        })
    }

    /// The encoder that opened (`libx264`, `hevc_nvenc`, `rav1e`...).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Whether a frame marked as a keyframe (`pict_type` I) is encoded as one. SVT-AV1 in
    /// Debian's FFmpeg 5.1 ignores the mark (FFmpeg 6.0 passes it on); it makes keyframes
    /// only at its fixed interval from its first frame.
    pub fn forces_keyframes(&self) -> bool {
        self.name != "libsvtav1"
    }

    pub fn stream_info(&self) -> StreamInfo {
        let encoder = match &self.backend {
            Backend::Ffmpeg(encoder) => encoder,
            Backend::Rav1e(rav1e) => return rav1e.stream_info(),
        };
        StreamInfo {
            parameters: ffmpeg::codec::Parameters::from(&**encoder),
            time_base: self.time_base,
            codec: self.codec.ffmpeg_id(),
            picture: Some(PictureShape {
                width: encoder.width(),
                height: encoder.height(),
                fps: f64::from(self.time_base.denominator())
                    / f64::from(self.time_base.numerator().max(1)),
            }),
        }
    }

    /// Changes the bitrate (kbps) from the next frame on; FFmpeg's libx264 and NVENC wrappers
    /// reconfigure the running encoder when they see the new values. rav1e keeps the bitrate
    /// it opened with (its crate cannot change it while it runs).
    pub fn set_bitrate(&mut self, kbps: u32, max_kbps: u32) {
        if let Backend::Ffmpeg(encoder) = &mut self.backend {
            encoder.set_bit_rate(kbps as usize * 1000);
            encoder.set_max_bit_rate(max_kbps as usize * 1000);
        }
    }

    /// Encodes one frame; returns the packets the encoder released.
    pub fn encode(
        &mut self,
        frame: &ffmpeg::frame::Video,
    ) -> Result<Vec<EncodedPacket>, EncodeError> {
        self.frames_sent += 1;
        match &mut self.backend {
            Backend::Ffmpeg(encoder) => {
                encoder
                    .send_frame(frame)
                    .map_err(|error| EncodeError::Encode {
                        encoder: self.name.clone(),
                        cause: error,
                    })?;
                Ok(self.drain())
            }
            Backend::Rav1e(rav1e) => rav1e.encode(frame),
        }
    }

    /// Flushes the encoder at end of stream.
    pub fn finish(&mut self) -> Result<Vec<EncodedPacket>, EncodeError> {
        self.flushed = true;
        let encoder = match &mut self.backend {
            Backend::Ffmpeg(encoder) => encoder,
            Backend::Rav1e(rav1e) => return rav1e.finish(),
        };
        let mut packets = Vec::new();
        if self.frames_sent == 0 && self.name == "libsvtav1" {
            // SVT-AV1 1.4 never ends a stream that had no picture: its close would wait for
            // ever. One frame (whose packets go nowhere) gives it one.
            let filler = ffmpeg::frame::Video::new(
                ffmpeg::format::Pixel::YUV420P,
                encoder.width(),
                encoder.height(),
            );
            packets.extend(self.encode(&filler)?);
        }
        if let Backend::Ffmpeg(encoder) = &mut self.backend {
            encoder.send_eof().map_err(|error| EncodeError::Encode {
                encoder: self.name.clone(),
                cause: error,
            })?;
        }
        packets.extend(self.drain());
        Ok(packets)
    }

    /// The packets an FFmpeg encoder has ready.
    fn drain(&mut self) -> Vec<EncodedPacket> {
        let mut packets = Vec::new();
        let Backend::Ffmpeg(encoder) = &mut self.backend else {
            return packets;
        };
        let mut packet = ffmpeg::Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            packets.push(EncodedPacket {
                kind: StreamKind::Video,
                packet: std::mem::replace(&mut packet, ffmpeg::Packet::empty()),
                time_base: self.time_base,
            });
        }
        packets
    }
}

impl Drop for VideoEncoder {
    /// SVT-AV1 1.4 closes only after its stream has ended (its close waits for the end of
    /// stream): an encoder dropped unflushed (an output failed, a probe) is flushed first, or
    /// the thread dropping it would hang.
    fn drop(&mut self) {
        if !self.flushed && self.name == "libsvtav1" {
            if let Err(error) = self.finish() {
                tracing::debug!("flushing {} before closing it: {error}", self.name);
            }
        }
    }
}

/// Makes an FFmpeg frame for canvas frame `index` from a converted canvas.
pub fn i420_frame(index: u64, bytes: &[u8], layout: &I420Layout) -> ffmpeg::frame::Video {
    let mut frame =
        ffmpeg::frame::Video::new(ffmpeg::format::Pixel::YUV420P, layout.width, layout.height);
    let planes = [
        (
            0,
            0,
            layout.luma_stride,
            layout.width as usize,
            layout.height as usize,
        ),
        (
            1,
            layout.u_offset,
            layout.chroma_stride,
            layout.width.div_ceil(2) as usize,
            layout.chroma_height(),
        ),
        (
            2,
            layout.v_offset,
            layout.chroma_stride,
            layout.width.div_ceil(2) as usize,
            layout.chroma_height(),
        ),
    ];
    for (plane, offset, source_stride, row_bytes, rows) in planes {
        let target_stride = frame.stride(plane);
        let target = frame.data_mut(plane);
        for row in 0..rows {
            let from = offset + row * source_stride;
            let to = row * target_stride;
            if let (Some(source), Some(target)) = (
                bytes.get(from..from + row_bytes),
                target.get_mut(to..to + row_bytes),
            ) {
                target.copy_from_slice(source);
            }
        }
    }
    frame.set_pts(i64::try_from(index).ok());
    frame.set_color_space(ffmpeg::color::Space::BT709);
    frame.set_color_range(ffmpeg::color::Range::MPEG);
    frame.set_color_primaries(ffmpeg::color::Primaries::BT709);
    frame.set_color_transfer_characteristic(ffmpeg::color::TransferCharacteristic::BT709);
    frame
}

fn open_error(name: &str, settings: &VideoSettings, error: ffmpeg::Error) -> EncodeError {
    EncodeError::Open {
        encoder: name.into(),
        settings: settings.describe(),
        cause: error,
    }
}

/// What to try when encoder `name` will not open.
fn hint_for(name: &str) -> &'static str {
    match name {
        "h264_nvenc" => {
            "; NVENC needs an NVIDIA GPU with its driver, and `--encoder x264` works everywhere"
        }
        "hevc_nvenc" => {
            "; NVENC needs an NVIDIA GPU with its driver, and `--encoder x265` works everywhere"
        }
        "av1_nvenc" => {
            "; AV1 NVENC needs an NVIDIA RTX 40-series GPU or newer, and `--encoder svt-av1` \
             works everywhere"
        }
        "libsvtav1" => "; live SVT-AV1 on few cores wants a fast preset (12 or 13)",
        _ => "",
    }
}

/// AAC-LC at 48 kHz stereo. Takes interleaved f32 samples in any amount and encodes them in
/// the encoder's frame size; timestamps count samples from zero, or from where it starts.
pub struct AudioEncoder {
    encoder: ffmpeg::encoder::Audio,
    frame_size: usize,
    pending: Vec<f32>,
    next_pts: i64,
}

impl AudioEncoder {
    pub fn open(settings: &AudioSettings) -> Result<Self, EncodeError> {
        init_ffmpeg();
        let name = "aac";
        let codec =
            ffmpeg::encoder::find_by_name(name).ok_or_else(|| EncodeError::Missing(name.into()))?;
        let open_error = |error: ffmpeg::Error| EncodeError::Open {
            encoder: name.into(),
            settings: format!("{} kbps", settings.bitrate_kbps),
            cause: error,
        };
        let mut encoder = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(open_error)?;
        encoder.set_rate(SAMPLE_RATE as i32);
        encoder.set_format(ffmpeg::format::Sample::F32(
            ffmpeg::format::sample::Type::Planar,
        ));
        encoder.set_channel_layout(ffmpeg::ChannelLayout::STEREO);
        encoder.set_channels(AUDIO_CHANNELS as i32);
        encoder.set_bit_rate(settings.bitrate_kbps as usize * 1000);
        encoder.set_time_base(ffmpeg::Rational::new(1, SAMPLE_RATE as i32));
        encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
        let encoder = encoder.open().map_err(open_error)?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        Ok(Self {
            encoder,
            frame_size,
            pending: Vec::new(),
            next_pts: 0,
        })
    }

    /// Timestamps count from `sample` (the show's sample the first block starts at).
    pub fn starting_at(mut self, sample: i64) -> Self {
        self.next_pts = sample;
        self
    }

    /// Samples per AAC packet.
    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    pub fn stream_info(&self) -> StreamInfo {
        StreamInfo {
            parameters: ffmpeg::codec::Parameters::from(&*self.encoder),
            time_base: ffmpeg::Rational::new(1, SAMPLE_RATE as i32),
            codec: ffmpeg::codec::Id::AAC,
            picture: None,
        }
    }

    /// Queues interleaved stereo samples and encodes every whole frame of them.
    pub fn encode(&mut self, interleaved: &[f32]) -> Result<Vec<EncodedPacket>, EncodeError> {
        self.pending.extend_from_slice(interleaved);
        let mut packets = Vec::new();
        let frame_values = self.frame_size * AUDIO_CHANNELS;
        while self.pending.len() >= frame_values {
            let chunk: Vec<f32> = self.pending.drain(..frame_values).collect();
            self.send(&chunk, self.frame_size)?;
            packets.extend(self.drain());
        }
        Ok(packets)
    }

    /// Encodes what is left (padded with silence to a whole frame) and flushes the encoder.
    pub fn finish(&mut self) -> Result<Vec<EncodedPacket>, EncodeError> {
        let mut packets = Vec::new();
        if !self.pending.is_empty() {
            let samples = self.pending.len() / AUDIO_CHANNELS;
            let mut chunk = std::mem::take(&mut self.pending);
            chunk.resize(self.frame_size * AUDIO_CHANNELS, 0.0);
            // Only the real samples count towards the stream's length.
            self.send(&chunk, samples.max(1))?;
            packets.extend(self.drain());
        }
        self.encoder
            .send_eof()
            .map_err(|error| audio_error(&error))?;
        packets.extend(self.drain());
        Ok(packets)
    }

    fn send(&mut self, interleaved: &[f32], samples: usize) -> Result<(), EncodeError> {
        let mut frame = ffmpeg::frame::Audio::new(
            ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Planar),
            samples,
            ffmpeg::ChannelLayout::STEREO,
        );
        frame.set_rate(SAMPLE_RATE);
        for channel in 0..AUDIO_CHANNELS {
            let plane = frame.data_mut(channel);
            for (index, value) in interleaved
                .iter()
                .skip(channel)
                .step_by(AUDIO_CHANNELS)
                .take(samples)
                .enumerate()
            {
                if let Some(bytes) = plane.get_mut(index * 4..index * 4 + 4) {
                    bytes.copy_from_slice(&value.to_ne_bytes());
                }
            }
        }
        frame.set_pts(Some(self.next_pts));
        self.next_pts += samples as i64;
        self.encoder
            .send_frame(&frame)
            .map_err(|error| audio_error(&error))
    }

    fn drain(&mut self) -> Vec<EncodedPacket> {
        let mut packets = Vec::new();
        let mut packet = ffmpeg::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            packets.push(EncodedPacket {
                kind: StreamKind::Audio,
                packet: std::mem::replace(&mut packet, ffmpeg::Packet::empty()),
                time_base: ffmpeg::Rational::new(1, SAMPLE_RATE as i32),
            });
        }
        packets
    }
}

fn audio_error(error: &ffmpeg::Error) -> EncodeError {
    EncodeError::Encode {
        encoder: "aac".into(),
        cause: *error,
    }
}

/// What `tally devices` reports about one encoder.
pub struct EncoderProbe {
    pub name: &'static str,
    pub description: &'static str,
    /// `Ok` when a small test encode opened; otherwise why not.
    pub usable: Result<(), Unusable>,
}

/// Why `tally devices` says an encoder cannot be used here.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("not in this FFmpeg build")]
    NotInFfmpeg,
    #[error("present in FFmpeg; {0}")]
    NotWiredIn(&'static str),
    #[error(transparent)]
    Refused(#[from] EncodeError),
}

/// Checks which encoders this FFmpeg build has and which of them open on this machine, codec
/// by codec.
pub fn probe_encoders() -> Vec<EncoderProbe> {
    init_ffmpeg();
    let fps = FrameRate::new(30, 1);
    let try_video = |codec: VideoCodec, kind: VideoEncoderKind| {
        let settings = VideoSettings {
            codec,
            encoder: kind,
            // SVT-AV1's default preset takes seconds for one frame; the check needs to open.
            preset: "ultrafast".into(),
            ..VideoSettings::default()
        };
        match VideoEncoder::open(&settings, 640, 360, fps) {
            Ok(_) => Ok(()),
            Err(EncodeError::Missing(_)) => Err(Unusable::NotInFfmpeg),
            Err(error) => Err(Unusable::from(error)),
        }
    };
    let present = |name: &str| {
        ffmpeg::encoder::find_by_name(name)
            .map(|_| ())
            .ok_or(Unusable::NotInFfmpeg)
    };
    let vaapi = |name: &str| {
        present(name).and(Err(Unusable::NotWiredIn(
            "Tally does not drive VA-API surfaces yet",
        )))
    };
    use VideoCodec::{Av1, Hevc, H264};
    use VideoEncoderKind::{Nvenc, Rav1e, SvtAv1, X264, X265};
    vec![
        EncoderProbe {
            name: "libx264",
            description: "H.264, software (x264)",
            usable: try_video(H264, X264),
        },
        EncoderProbe {
            name: "h264_nvenc",
            description: "H.264, NVIDIA NVENC",
            usable: try_video(H264, Nvenc),
        },
        EncoderProbe {
            name: "h264_vaapi",
            description: "H.264, VA-API (Intel/AMD)",
            usable: vaapi("h264_vaapi"),
        },
        EncoderProbe {
            name: "libx265",
            description: "HEVC, software (x265)",
            usable: try_video(Hevc, X265),
        },
        EncoderProbe {
            name: "hevc_nvenc",
            description: "HEVC, NVIDIA NVENC",
            usable: try_video(Hevc, Nvenc),
        },
        EncoderProbe {
            name: "hevc_vaapi",
            description: "HEVC, VA-API (Intel/AMD)",
            usable: vaapi("hevc_vaapi"),
        },
        EncoderProbe {
            name: "libsvtav1",
            description: "AV1, software (SVT-AV1)",
            usable: try_video(Av1, SvtAv1),
        },
        EncoderProbe {
            name: "av1_nvenc",
            description: "AV1, NVIDIA NVENC (RTX 40-series and newer)",
            usable: try_video(Av1, Nvenc),
        },
        EncoderProbe {
            name: "rav1e",
            description: "AV1, software (rav1e)",
            usable: try_video(Av1, Rav1e),
        },
        EncoderProbe {
            name: "aac",
            description: "AAC-LC audio",
            usable: AudioEncoder::open(&AudioSettings::default())
                .map(|_| ())
                .map_err(Unusable::from),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svt_av1() -> VideoEncoder {
        let settings = VideoSettings {
            codec: VideoCodec::Av1,
            encoder: VideoEncoderKind::SvtAv1,
            preset: "13".into(),
            ..VideoSettings::default()
        };
        VideoEncoder::open(&settings, 320, 180, FrameRate::new(30, 1)).unwrap()
    }

    #[test]
    fn presets_are_x264_names_or_the_encoders_own_numbers() {
        let svt = [13, 12, 11, 10, 9, 8, 6, 4, 2];
        assert_eq!(settings::numbered_preset("veryfast", svt), 11);
        assert_eq!(settings::numbered_preset("veryslow", svt), 2);
        assert_eq!(settings::numbered_preset("placebo", svt), 2);
        assert_eq!(settings::numbered_preset("7", svt), 7);
        assert_eq!(
            settings::numbered_preset("99", svt),
            13,
            "no faster than the fastest"
        );
    }

    #[test]
    fn an_svt_av1_encoder_that_never_encoded_closes() {
        drop(svt_av1());
    }

    #[test]
    fn an_svt_av1_encoder_flushed_without_frames_closes() {
        let mut encoder = svt_av1();
        encoder.finish().unwrap();
        drop(encoder);
    }
}
