//! User-facing encoder settings and how they become FFmpeg options: the codec (H.264, HEVC,
//! AV1) and the encoder that makes it (x264, x265, SVT-AV1, NVENC) are separate choices.

use crate::base::FrameRate;
use ffmpeg_next as ffmpeg;
use ffmpeg_next::Dictionary;

/// The video codec a program is encoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoCodec {
    #[default]
    H264,
    Hevc,
    Av1,
}

impl VideoCodec {
    pub const ALL: [VideoCodec; 3] = [VideoCodec::H264, VideoCodec::Hevc, VideoCodec::Av1];

    /// As written in settings and on the command line: `h264`, `hevc`, `av1`.
    pub fn key(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::Hevc => "hevc",
            VideoCodec::Av1 => "av1",
        }
    }

    /// As people write it: H.264, HEVC, AV1.
    pub fn label(self) -> &'static str {
        match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::Hevc => "HEVC",
            VideoCodec::Av1 => "AV1",
        }
    }

    /// `h264` (or `avc`), `hevc` (or `h265`), `av1`, in any case.
    pub fn from_key(key: &str) -> Option<Self> {
        match key.to_ascii_lowercase().as_str() {
            "h264" | "avc" | "h.264" => Some(VideoCodec::H264),
            "hevc" | "h265" | "h.265" => Some(VideoCodec::Hevc),
            "av1" => Some(VideoCodec::Av1),
            _ => None,
        }
    }

    /// The codec of an FFmpeg stream, if it is one of these.
    pub fn from_ffmpeg_id(id: ffmpeg::codec::Id) -> Option<Self> {
        Self::ALL.into_iter().find(|codec| codec.ffmpeg_id() == id)
    }

    pub fn ffmpeg_id(self) -> ffmpeg::codec::Id {
        match self {
            VideoCodec::H264 => ffmpeg::codec::Id::H264,
            VideoCodec::Hevc => ffmpeg::codec::Id::HEVC,
            VideoCodec::Av1 => ffmpeg::codec::Id::AV1,
        }
    }

    /// The software encoder that makes this codec.
    pub fn software_encoder(self) -> VideoEncoderKind {
        match self {
            VideoCodec::H264 => VideoEncoderKind::X264,
            VideoCodec::Hevc => VideoEncoderKind::X265,
            VideoCodec::Av1 => VideoEncoderKind::SvtAv1,
        }
    }
}

/// Which encoder makes the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoEncoderKind {
    /// The fastest that opens here: NVENC, else the codec's software encoder.
    Auto,
    /// libx264 (H.264).
    X264,
    /// libx265 (HEVC).
    X265,
    /// SVT-AV1 (AV1), FFmpeg's libsvtav1.
    SvtAv1,
    /// rav1e (AV1), the pure-Rust encoder, through its crate.
    Rav1e,
    /// NVIDIA's hardware encoder, for whichever codec is chosen.
    Nvenc,
}

impl VideoEncoderKind {
    pub const ALL: [VideoEncoderKind; 6] = [
        VideoEncoderKind::Auto,
        VideoEncoderKind::X264,
        VideoEncoderKind::X265,
        VideoEncoderKind::SvtAv1,
        VideoEncoderKind::Rav1e,
        VideoEncoderKind::Nvenc,
    ];

    /// As written in settings and on the command line.
    pub fn key(self) -> &'static str {
        match self {
            VideoEncoderKind::Auto => "auto",
            VideoEncoderKind::X264 => "x264",
            VideoEncoderKind::X265 => "x265",
            VideoEncoderKind::SvtAv1 => "svt-av1",
            VideoEncoderKind::Rav1e => "rav1e",
            VideoEncoderKind::Nvenc => "nvenc",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.key().eq_ignore_ascii_case(key))
    }

    /// The encoder that makes `codec` this way (FFmpeg's name for it, or `rav1e`); `None`
    /// where this encoder does not make that codec (x264 makes no AV1). `Auto` names the first
    /// it tries.
    pub fn encoder_name(self, codec: VideoCodec) -> Option<&'static str> {
        match (self, codec) {
            (VideoEncoderKind::Auto | VideoEncoderKind::Nvenc, VideoCodec::H264) => {
                Some("h264_nvenc")
            }
            (VideoEncoderKind::Auto | VideoEncoderKind::Nvenc, VideoCodec::Hevc) => {
                Some("hevc_nvenc")
            }
            (VideoEncoderKind::Auto | VideoEncoderKind::Nvenc, VideoCodec::Av1) => {
                Some("av1_nvenc")
            }
            (VideoEncoderKind::X264, VideoCodec::H264) => Some("libx264"),
            (VideoEncoderKind::X265, VideoCodec::Hevc) => Some("libx265"),
            (VideoEncoderKind::SvtAv1, VideoCodec::Av1) => Some("libsvtav1"),
            (VideoEncoderKind::Rav1e, VideoCodec::Av1) => Some("rav1e"),
            _ => None,
        }
    }

    /// The codec this encoder makes when only the encoder was chosen (`--encoder x265`).
    pub fn only_codec(self) -> Option<VideoCodec> {
        match self {
            VideoEncoderKind::X264 => Some(VideoCodec::H264),
            VideoEncoderKind::X265 => Some(VideoCodec::Hevc),
            VideoEncoderKind::SvtAv1 | VideoEncoderKind::Rav1e => Some(VideoCodec::Av1),
            VideoEncoderKind::Auto | VideoEncoderKind::Nvenc => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateControl {
    /// Constant bitrate (what streaming platforms ask for).
    Cbr { kbps: u32 },
    /// Variable bitrate with a ceiling.
    Vbr { kbps: u32, max_kbps: u32 },
    /// Constant quality; lower is better (x264: 0-51, 23 is the default).
    Crf { crf: u8 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct VideoSettings {
    pub codec: VideoCodec,
    pub encoder: VideoEncoderKind,
    /// x264 preset name (ultrafast ... placebo); x265 takes the same names, SVT-AV1 and NVENC
    /// the nearest of theirs (SVT-AV1 also takes its own number, 0-13).
    pub preset: String,
    pub tune: Option<String>,
    /// The codec's profile; `None`: H.264 high, HEVC main, AV1 main.
    pub profile: Option<String>,
    pub rate_control: RateControl,
    pub keyframe_interval_secs: f64,
    /// Encoder threads; `None` lets the encoder choose (x264 takes 1.5 per core).
    pub threads: Option<u32>,
}

impl Default for VideoSettings {
    fn default() -> Self {
        Self {
            codec: VideoCodec::H264,
            encoder: VideoEncoderKind::X264,
            preset: "veryfast".into(),
            tune: None,
            profile: None,
            rate_control: RateControl::Cbr { kbps: 2500 },
            keyframe_interval_secs: 2.0,
            threads: None,
        }
    }
}

impl VideoSettings {
    /// The bitrate and ceiling (kbps) the rate control aims at; `None` for constant quality.
    pub fn bitrate_kbps(&self) -> Option<(u32, u32)> {
        match self.rate_control {
            RateControl::Cbr { kbps } => Some((kbps, kbps)),
            RateControl::Vbr { kbps, max_kbps } => Some((kbps, max_kbps)),
            RateControl::Crf { .. } => None,
        }
    }

    pub fn keyframe_interval_frames(&self, fps: FrameRate) -> u32 {
        (self.keyframe_interval_secs * fps.as_f64())
            .round()
            .max(1.0) as u32
    }

    pub fn describe(&self) -> String {
        let rate = match self.rate_control {
            RateControl::Cbr { kbps } => format!("CBR {kbps} kbps"),
            RateControl::Vbr { kbps, max_kbps } => format!("VBR {kbps} kbps (max {max_kbps})"),
            RateControl::Crf { crf } => format!("CRF {crf}"),
        };
        format!(
            "{}, preset {}, profile {}, {rate}, keyframe every {} s{}",
            self.codec.label(),
            self.preset,
            self.profile(),
            self.keyframe_interval_secs,
            self.tune
                .as_deref()
                .map(|t| format!(", tune {t}"))
                .unwrap_or_default()
        )
    }

    /// The profile asked for, or the codec's usual one.
    pub fn profile(&self) -> &str {
        match (&self.profile, self.codec) {
            (Some(profile), _) => profile,
            (None, VideoCodec::H264) => "high",
            (None, VideoCodec::Hevc | VideoCodec::Av1) => "main",
        }
    }

    /// The options for FFmpeg encoder `kind` (a concrete one, not `Auto`).
    pub(crate) fn ffmpeg_options(
        &self,
        kind: VideoEncoderKind,
        fps: FrameRate,
    ) -> Dictionary<'static> {
        let mut options = Dictionary::new();
        let keyint = self.keyframe_interval_frames(fps).to_string();
        options.set("g", &keyint);
        if let Some(threads) = self.threads {
            options.set("threads", &threads.to_string());
        }
        // SVT-AV1 in Debian's FFmpeg takes no profile option (main is its only 4:2:0 one).
        if kind != VideoEncoderKind::SvtAv1 {
            options.set("profile", self.profile());
        }
        let (bitrate, maxrate, bufsize) = match self.rate_control {
            // SVT-AV1 keeps CBR by itself, and refuses a ceiling equal to the target.
            RateControl::Cbr { kbps } if kind == VideoEncoderKind::SvtAv1 => {
                (Some(kbps), None, None)
            }
            RateControl::Cbr { kbps } => (Some(kbps), Some(kbps), Some(kbps)),
            RateControl::Vbr { kbps, max_kbps } => (Some(kbps), Some(max_kbps), Some(max_kbps * 2)),
            RateControl::Crf { .. } => (None, None, None),
        };
        if let Some(kbps) = bitrate {
            options.set("b", &format!("{kbps}k"));
        }
        if let Some(kbps) = maxrate {
            options.set("maxrate", &format!("{kbps}k"));
        }
        if let Some(kbps) = bufsize {
            options.set("bufsize", &format!("{kbps}k"));
        }
        match kind {
            VideoEncoderKind::Nvenc => {
                options.set("preset", nvenc_preset(&self.preset));
                // A keyframe asked for (an output joining or leaving the running encoder)
                // must be an IDR frame, where a stream can start; NVENC otherwise makes a
                // plain intra frame. libx264 makes IDR frames with closed GOPs already.
                options.set("forced-idr", "1");
                match self.rate_control {
                    RateControl::Cbr { .. } => options.set("rc", "cbr"),
                    RateControl::Vbr { .. } => options.set("rc", "vbr"),
                    RateControl::Crf { crf } => {
                        options.set("rc", "vbr");
                        options.set("cq", &crf.to_string());
                    }
                }
                if let Some(tune) = &self.tune {
                    options.set("tune", tune);
                }
            }
            VideoEncoderKind::X265 => {
                options.set("preset", &self.preset);
                if let Some(tune) = &self.tune {
                    options.set("tune", tune);
                }
                if let RateControl::Crf { crf } = self.rate_control {
                    options.set("crf", &crf.to_string());
                }
                // A keyframe asked for must be an IDR frame (x265 otherwise makes a CRA);
                // a fixed cadence with closed GOPs, as for x264; quiet, as x265 logs to
                // stderr by default.
                options.set("forced-idr", "1");
                options.set(
                    "x265-params",
                    &format!(
                        "keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:log-level=error"
                    ),
                );
            }
            VideoEncoderKind::SvtAv1 => {
                options.set("preset", &svt_av1_preset(&self.preset).to_string());
                // Low-delay prediction (no frame waits for a later one, as live wants), which
                // is also the only structure Debian's SVT-AV1 1.4 takes CBR in; key frames as
                // intra refresh, so each one is a clean place to join (closed GOP).
                let rate = match self.rate_control {
                    RateControl::Cbr { .. } => "rc=2".to_string(),
                    RateControl::Vbr { .. } => "rc=1".to_string(),
                    RateControl::Crf { crf } => {
                        options.set("crf", &crf.to_string());
                        "rc=0".to_string()
                    }
                };
                options.set(
                    "svtav1-params",
                    &format!("pred-struct=1:{rate}:irefresh-type=2:scd=0"),
                );
            }
            // rav1e is configured through its crate (encode::rav1e_encoder), not FFmpeg.
            VideoEncoderKind::Rav1e => {}
            VideoEncoderKind::Auto | VideoEncoderKind::X264 => {
                options.set("preset", &self.preset);
                if let Some(tune) = &self.tune {
                    options.set("tune", tune);
                }
                if let RateControl::Crf { crf } = self.rate_control {
                    options.set("crf", &crf.to_string());
                }
                // A fixed keyframe cadence (no scene-cut keyframes), as ingest servers expect.
                // sync-lookahead=0 runs the lookahead in the encoding threads instead of its
                // own buffered thread: the same decisions, a dozen fewer 720p frames in memory
                // and less latency.
                options.set(
                    "x264-params",
                    &format!("keyint={keyint}:min-keyint={keyint}:scenecut=0:sync-lookahead=0"),
                );
            }
        }
        options
    }
}

/// x264's preset names, fastest first: the names every encoder's preset is chosen by.
const X264_PRESETS: [&str; 9] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

/// An encoder's numbered preset for `preset`: the number itself (at most `numbers[0]`, the
/// fastest), or the number `numbers` gives x264's name in the same place of
/// [`X264_PRESETS`]; a name not there (placebo) gets the last, slowest.
pub(super) fn numbered_preset(preset: &str, numbers: [u8; 9]) -> u8 {
    if let Ok(number) = preset.parse::<u8>() {
        return number.min(numbers[0]);
    }
    X264_PRESETS
        .iter()
        .position(|name| *name == preset)
        .map_or(numbers[8], |place| numbers[place])
}

/// SVT-AV1's preset (0 slowest ... 13 fastest). Live encoding on a few cores needs the fast
/// end: 12 holds 720p30 on two cores.
fn svt_av1_preset(preset: &str) -> u8 {
    numbered_preset(preset, [13, 12, 11, 10, 9, 8, 6, 4, 2])
}

fn nvenc_preset(x264_preset: &str) -> &'static str {
    match x264_preset {
        "ultrafast" | "superfast" => "p1",
        "veryfast" => "p2",
        "faster" | "fast" => "p3",
        "medium" => "p4",
        "slow" => "p5",
        "slower" => "p6",
        _ => "p7",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSettings {
    pub bitrate_kbps: u32,
}

impl Default for AudioSettings {
    fn default() -> Self {
        Self { bitrate_kbps: 160 }
    }
}
