//! User-facing encoder settings and how they become FFmpeg options.

use crate::base::FrameRate;
use ffmpeg_next::Dictionary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoEncoderKind {
    /// NVENC when it opens on this machine, else libx264.
    Auto,
    X264,
    Nvenc,
}

impl VideoEncoderKind {
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            VideoEncoderKind::Auto | VideoEncoderKind::X264 => "libx264",
            VideoEncoderKind::Nvenc => "h264_nvenc",
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
    pub encoder: VideoEncoderKind,
    /// x264 preset name (ultrafast ... placebo); mapped to the nearest NVENC preset.
    pub preset: String,
    pub tune: Option<String>,
    pub profile: String,
    pub rate_control: RateControl,
    pub keyframe_interval_secs: f64,
    /// Encoder threads; `None` lets the encoder choose (x264 takes 1.5 per core).
    pub threads: Option<u32>,
}

impl Default for VideoSettings {
    fn default() -> Self {
        Self {
            encoder: VideoEncoderKind::X264,
            preset: "veryfast".into(),
            tune: None,
            profile: "high".into(),
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
            "preset {}, profile {}, {rate}, keyframe every {} s{}",
            self.preset,
            self.profile,
            self.keyframe_interval_secs,
            self.tune
                .as_deref()
                .map(|t| format!(", tune {t}"))
                .unwrap_or_default()
        )
    }

    pub(crate) fn ffmpeg_options(&self, fps: FrameRate) -> Dictionary<'static> {
        let mut options = Dictionary::new();
        let keyint = self.keyframe_interval_frames(fps).to_string();
        options.set("g", &keyint);
        if let Some(threads) = self.threads {
            options.set("threads", &threads.to_string());
        }
        options.set("profile", &self.profile);
        let (bitrate, maxrate, bufsize) = match self.rate_control {
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
        match self.encoder {
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
