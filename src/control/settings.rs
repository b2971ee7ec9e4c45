//! The settings the show controller keeps for every front-end: how to encode (and the encode
//! profiles recordings and streams may use apart), where recordings go, where to stream (and
//! the HLS to publish), the collection open last (and the app's monitor rate). Kept in the platform config directory (`$XDG_CONFIG_HOME/tally/settings.toml`,
//! else `~/.config/tally/settings.toml`), never in a scene file, so a collection can be shared
//! without its stream keys.

use crate::encode::{
    EncodeProfile, ProfileError, RateControl, VideoCodec, VideoEncoderKind, VideoSettings,
};
use crate::output::hls_publication::{HlsPlan, HlsPush};
use crate::output::hls_upload::UploadSettings;
use crate::output::{HlsSettings, RecordingFormat};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `h264`, `hevc` or `av1`.
    pub codec: String,
    /// The codec's software encoder (`x264`, `x265`, `svt-av1`), `nvenc` (NVIDIA's hardware
    /// encoder) or `auto` (NVENC when it opens, else the software one).
    pub encoder: String,
    /// x264 preset.
    pub preset: String,
    pub bitrate_kbps: u32,
    pub keyframe_interval_secs: f64,
    pub recordings_dir: PathBuf,
    /// `mp4` or `mkv`.
    pub recording_format: String,
    /// Stream destinations (`rtmp://...`, `srt://...`; `PRIMARY|BACKUP`; `${VAR}` for keys).
    pub destinations: Vec<String>,
    /// Encode profiles, `NAME=KEY=VALUE,...` as `tally stream --profile` takes them.
    pub profiles: Vec<String>,
    /// The profile recordings are encoded at (one of `profiles`, or 1080p, 720p, 480p,
    /// 360p); empty: the encoding above, shared with the streams.
    pub recording_profile: String,
    /// The profile streams are encoded at; empty: the encoding above.
    pub stream_profile: String,
    pub last_collection: Option<PathBuf>,
    /// How often the window redraws the monitors, per second; 0 means at the canvas rate.
    /// Lower it where the window's drawing competes with the program output (no GPU).
    pub monitor_fps: u32,
    /// Remote control (obs-websocket v5) in the app.
    pub remote_control: bool,
    pub remote_port: u16,
    /// The address remote control listens on: 127.0.0.1 (this computer only, the default) or
    /// another, such as 0.0.0.0 for every network, which needs a password.
    pub remote_bind: std::net::IpAddr,
    /// The password remote clients answer; empty for none (then only loopback is served).
    /// `TALLY_CONTROL_PASSWORD` in the environment wins over it.
    pub remote_password: String,
    /// Publish HLS while streaming, beside the destinations above (or on its own).
    pub hls: bool,
    /// The folder HLS is written to (its earlier stream replaced); empty: a temporary one,
    /// removed when streaming stops.
    pub hls_dir: String,
    /// Serve the HLS at `http://ADDRESS/live/master.m3u8`; empty: only written.
    pub hls_serve: String,
    /// Push the HLS with HTTP PUT to this folder URL of an ingest or origin (`${VAR}` for a
    /// key); empty: not pushed.
    pub hls_push: String,
    /// HLS renditions, one profile each, under one master playlist; empty: one rendition at
    /// the stream profile.
    pub hls_ladder: Vec<String>,
    /// LL-HLS: partial segments of `hls_part_ms`, preload hints, blocking reloads.
    pub hls_low_latency: bool,
    pub hls_segment_secs: f64,
    pub hls_part_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        let video = VideoSettings::default();
        Self {
            codec: "h264".into(),
            encoder: "x264".into(),
            preset: video.preset,
            bitrate_kbps: 2500,
            keyframe_interval_secs: video.keyframe_interval_secs,
            recordings_dir: home().join("Videos"),
            recording_format: "mp4".into(),
            destinations: Vec::new(),
            profiles: Vec::new(),
            recording_profile: String::new(),
            stream_profile: String::new(),
            last_collection: None,
            monitor_fps: 0,
            remote_control: false,
            remote_port: 4455,
            remote_bind: std::net::Ipv4Addr::LOCALHOST.into(),
            remote_password: String::new(),
            hls: false,
            hls_dir: String::new(),
            hls_serve: "127.0.0.1:8088".into(),
            hls_push: String::new(),
            hls_ladder: Vec::new(),
            hls_low_latency: false,
            hls_segment_secs: 2.0,
            hls_part_ms: 500,
        }
    }
}

impl Settings {
    /// The profile called `name` on a canvas of `canvas` (width, height): one of `profiles`,
    /// or a ladder name; `None` for an empty name (the encoding above).
    pub fn profile(
        &self,
        name: &str,
        canvas: (u32, u32),
    ) -> Result<Option<EncodeProfile>, ProfileError> {
        let name = name.trim();
        if name.is_empty() {
            return Ok(None);
        }
        let base = self.video();
        for text in &self.profiles {
            let profile = EncodeProfile::parse(text, &base, canvas)?;
            if profile.name == name {
                return Ok(Some(profile));
            }
        }
        EncodeProfile::parse(name, &base, canvas).map(Some)
    }

    /// The HLS publication these settings ask for (`None` when HLS is off), on a canvas of
    /// `canvas`.
    pub fn hls_plan(&self, canvas: (u32, u32)) -> Result<Option<HlsPlan>, HlsSettingsError> {
        if !self.hls {
            return Ok(None);
        }
        let serve = match self.hls_serve.trim() {
            "" => None,
            address => Some(address.parse().map_err(|_| HlsSettingsError::Address {
                text: address.to_string(),
            })?),
        };
        let push = match self.hls_push.trim() {
            "" => None,
            url => Some(HlsPush {
                endpoint: crate::output::Endpoint::hls_push(url)?,
                settings: UploadSettings {
                    io_timeout: Duration::from_secs(5),
                    tls_ca_file: None,
                    retry: crate::output::ReconnectSettings::default(),
                },
            }),
        };
        let mut ladder = Vec::new();
        for name in &self.hls_ladder {
            ladder.extend(self.profile(name, canvas)?);
        }
        let seconds = |value: f64| {
            Duration::try_from_secs_f64(value)
                .ok()
                .filter(|d| !d.is_zero())
        };
        let segment = seconds(self.hls_segment_secs).ok_or(HlsSettingsError::Segment {
            seconds: self.hls_segment_secs,
        })?;
        let part = Duration::from_millis(u64::from(self.hls_part_ms.max(1)));
        Ok(Some(HlsPlan {
            folder: Some(self.hls_dir.trim())
                .filter(|folder| !folder.is_empty())
                .map(PathBuf::from),
            // The app's HLS folder is its own output, rewritten each time streaming starts.
            replace: true,
            serve,
            push,
            ladder,
            profile: self.profile(&self.stream_profile, canvas)?,
            layout: HlsSettings {
                segment,
                window: HlsSettings::default().window,
                part: self.hls_low_latency.then_some(part),
                first_segment: 0,
            },
        }))
    }
}

/// Why the HLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HlsSettingsError {
    #[error(
        "the HLS server's address {text:?} is not an address and port, such as 127.0.0.1:8088"
    )]
    Address { text: String },
    #[error("the HLS segment length ({seconds} s) must be more than zero")]
    Segment { seconds: f64 },
    #[error("the HLS ladder: {0}")]
    Profile(#[from] ProfileError),
    #[error("the HLS push URL: {0}")]
    Push(#[from] crate::output::DestinationError),
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(std::env::temp_dir, PathBuf::from)
}

/// Where the settings file lives.
pub fn settings_path() -> PathBuf {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| home().join(".config"), PathBuf::from);
    config.join("tally").join("settings.toml")
}

/// Why the settings could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("the settings cannot be written as TOML: {0}")]
    Toml(#[from] toml::ser::Error),
    #[error("{folder}: {cause}", folder = folder.display())]
    Folder {
        folder: PathBuf,
        cause: std::io::Error,
    },
    #[error("{0}")]
    Write(std::io::Error),
    #[error("{}: {cause}", path.display())]
    Unreadable {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: {cause}; using default settings until they are saved again", path.display())]
    Malformed {
        path: PathBuf,
        cause: toml::de::Error,
    },
}

impl Settings {
    /// The saved settings; defaults when there are none. A file that cannot be read is
    /// reported and left alone (it is not overwritten until the user saves).
    pub fn load(path: &Path) -> (Self, Option<SettingsError>) {
        match std::fs::read_to_string(path) {
            Ok(text) => match toml::from_str(&text) {
                Ok(settings) => (settings, None),
                Err(cause) => (
                    Self::default(),
                    Some(SettingsError::Malformed {
                        path: path.to_path_buf(),
                        cause,
                    }),
                ),
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => (Self::default(), None),
            Err(cause) => (
                Self::default(),
                Some(SettingsError::Unreadable {
                    path: path.to_path_buf(),
                    cause,
                }),
            ),
        }
    }

    /// Writes the settings atomically, creating the directory if needed.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let text = toml::to_string_pretty(self)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|cause| SettingsError::Folder {
                folder: parent.to_path_buf(),
                cause,
            })?;
        }
        crate::scene::write_atomically(path, text.as_bytes()).map_err(SettingsError::Write)
    }

    pub fn video(&self) -> VideoSettings {
        VideoSettings {
            preset: self.preset.clone(),
            rate_control: RateControl::Cbr {
                kbps: self.bitrate_kbps,
            },
            keyframe_interval_secs: self.keyframe_interval_secs,
            codec: self.codec(),
            encoder: self.encoder(),
            ..VideoSettings::default()
        }
    }

    pub fn codec(&self) -> VideoCodec {
        VideoCodec::from_key(&self.codec).unwrap_or_default()
    }

    /// The encoder chosen, where it makes the chosen codec; else the codec's software encoder
    /// (the codec was changed and the encoder left as it was).
    pub fn encoder(&self) -> VideoEncoderKind {
        let codec = self.codec();
        VideoEncoderKind::from_key(&self.encoder)
            .filter(|encoder| encoder.encoder_name(codec).is_some())
            .unwrap_or(codec.software_encoder())
    }

    /// The remote-control password: `TALLY_CONTROL_PASSWORD`, else the settings' own (`None`
    /// when neither is set).
    pub fn remote_password(&self) -> Option<String> {
        std::env::var("TALLY_CONTROL_PASSWORD")
            .ok()
            .filter(|password| !password.is_empty())
            .or_else(|| Some(self.remote_password.clone()).filter(|p| !p.is_empty()))
    }

    pub fn recording_format(&self) -> RecordingFormat {
        if self.recording_format.eq_ignore_ascii_case("mkv") {
            RecordingFormat::Mkv
        } else {
            RecordingFormat::Mp4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_a_broken_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tally").join("settings.toml");
        let (loaded, problem) = Settings::load(&path);
        assert_eq!(loaded, Settings::default());
        assert!(problem.is_none());
        let settings = Settings {
            bitrate_kbps: 6000,
            encoder: "nvenc".into(),
            destinations: vec!["rtmp://live.example/app/${KEY}".into()],
            last_collection: Some("/shows/monday.toml".into()),
            monitor_fps: 10,
            ..Settings::default()
        };
        settings.save(&path).unwrap();
        assert_eq!(Settings::load(&path).0, settings);
        assert_eq!(settings.video().encoder, VideoEncoderKind::Nvenc);
        assert_eq!(Settings::default().video().encoder, VideoEncoderKind::X264);
        // An encoder that does not make the codec gives way to the codec's own.
        let av1 = Settings {
            codec: "av1".into(),
            encoder: "x264".into(),
            ..Settings::default()
        };
        assert_eq!(av1.video().codec, VideoCodec::Av1);
        assert_eq!(av1.video().encoder, VideoEncoderKind::SvtAv1);
        let hevc_on_nvenc = Settings {
            codec: "hevc".into(),
            encoder: "nvenc".into(),
            ..Settings::default()
        };
        assert_eq!(hevc_on_nvenc.video().encoder, VideoEncoderKind::Nvenc);
        std::fs::write(&path, "bitrate_kbps = \"fast\"").unwrap();
        let (loaded, problem) = Settings::load(&path);
        assert_eq!(loaded, Settings::default());
        assert!(problem.unwrap().to_string().contains("settings.toml"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "bitrate_kbps = \"fast\""
        );
    }
}
