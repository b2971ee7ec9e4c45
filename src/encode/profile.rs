//! Encode profiles: a named encode (codec, encoder, picture size, rate control, bitrate) that
//! outputs name so that a recording and a stream, or the renditions of an HLS ladder, are
//! encoded apart from one program canvas. Outputs naming the same profile share one encode.
//!
//! A profile is written `NAME=KEY=VALUE,...` (keys: `size` WIDTHxHEIGHT, `bitrate` kbps,
//! `max-bitrate` kbps, `crf`, `rate-control` cbr|vbr|crf, `codec`, `encoder`, `preset`),
//! anything unsaid taken from the run's own encode; or one of the ladder's names (`1080p`,
//! `720p`, `480p`, `360p`), the run's encode at that height and a bitrate usual for it.

use super::{RateControl, VideoCodec, VideoEncoderKind, VideoSettings};

#[derive(Debug, Clone, PartialEq)]
pub struct EncodeProfile {
    pub name: String,
    pub video: VideoSettings,
    /// The picture size; `None`: the canvas's.
    pub size: Option<(u32, u32)>,
}

/// The ladder's rungs: name, height, CBR bitrate (kbps) for 30 fps H.264.
const LADDER: [(&str, u32, u32); 4] = [
    ("1080p", 1080, 6000),
    ("720p", 720, 3000),
    ("480p", 480, 1200),
    ("360p", 360, 800),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("`{0}` is not a profile: write NAME=KEY=VALUE,... or one of 1080p, 720p, 480p, 360p")]
    Unknown(String),
    #[error("profile `{profile}`: `{key}` is not a setting (size, bitrate, max-bitrate, crf, rate-control, codec, encoder, preset)")]
    UnknownKey { profile: String, key: String },
    #[error("profile `{profile}`: {key} `{value}` is not {expected}")]
    BadValue {
        profile: String,
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("profile `{profile}`: {encoder} does not make {codec}", encoder = encoder.key(), codec = codec.label())]
    WrongCodec {
        profile: String,
        encoder: VideoEncoderKind,
        codec: VideoCodec,
    },
}

impl EncodeProfile {
    /// Reads `text` (see the module's documentation); what it leaves unsaid comes from `base`,
    /// and a ladder name's width follows the canvas's shape (`canvas`: width, height).
    pub fn parse(
        text: &str,
        base: &VideoSettings,
        canvas: (u32, u32),
    ) -> Result<Self, ProfileError> {
        let text = text.trim();
        let Some((name, settings)) = text.split_once('=') else {
            return Self::ladder(text, base, canvas)
                .ok_or_else(|| ProfileError::Unknown(text.into()));
        };
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(ProfileError::Unknown(text.into()));
        }
        let mut video = base.clone();
        let mut size = None;
        let mut codec = None;
        let mut encoder = None;
        let (mut kbps, mut max_kbps, mut crf, mut mode) = (None, None, None, None);
        for pair in settings.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = |expected| ProfileError::BadValue {
                profile: name.clone(),
                key: key.into(),
                value: value.into(),
                expected,
            };
            match key {
                "size" => {
                    size = Some(
                        parse_size(value)
                            .ok_or_else(|| bad("WIDTHxHEIGHT, both even, up to 8192"))?,
                    )
                }
                "bitrate" => {
                    kbps = Some(
                        value
                            .parse::<u32>()
                            .ok()
                            .filter(|k| *k > 0)
                            .ok_or_else(|| bad("kbps, a whole number"))?,
                    )
                }
                "max-bitrate" => {
                    max_kbps = Some(
                        value
                            .parse::<u32>()
                            .ok()
                            .filter(|k| *k > 0)
                            .ok_or_else(|| bad("kbps, a whole number"))?,
                    )
                }
                "crf" => {
                    crf = Some(
                        value
                            .parse::<u8>()
                            .ok()
                            .filter(|c| *c <= 51)
                            .ok_or_else(|| bad("0-51"))?,
                    )
                }
                "rate-control" => {
                    mode = Some(match value {
                        "cbr" | "vbr" | "crf" => value,
                        _ => return Err(bad("cbr, vbr or crf")),
                    })
                }
                "codec" => {
                    codec = Some(
                        VideoCodec::ALL
                            .into_iter()
                            .find(|c| c.key() == value)
                            .ok_or_else(|| bad("h264, hevc or av1"))?,
                    )
                }
                "encoder" => {
                    encoder = Some(
                        VideoEncoderKind::from_key(value)
                            .ok_or_else(|| bad("an encoder `tally devices` lists"))?,
                    )
                }
                "preset" if !value.is_empty() => video.preset = value.to_string(),
                _ => {
                    return Err(ProfileError::UnknownKey {
                        profile: name.clone(),
                        key: key.into(),
                    })
                }
            }
        }
        if codec.is_some() || encoder.is_some() {
            let codec = codec
                .or_else(|| encoder.and_then(VideoEncoderKind::only_codec))
                .unwrap_or(base.codec);
            let encoder = encoder.unwrap_or_else(|| codec.software_encoder());
            if encoder.encoder_name(codec).is_none() {
                return Err(ProfileError::WrongCodec {
                    profile: name,
                    encoder,
                    codec,
                });
            }
            video.codec = codec;
            video.encoder = encoder;
        }
        let (base_kbps, base_max) = base.bitrate_kbps().unwrap_or((2500, 2500));
        video.rate_control = match (mode, crf) {
            (Some("crf"), _) | (None, Some(_)) => RateControl::Crf {
                crf: crf.unwrap_or(23),
            },
            (Some("vbr"), _) => {
                let kbps = kbps.unwrap_or(base_kbps);
                RateControl::Vbr {
                    kbps,
                    max_kbps: max_kbps.unwrap_or(kbps * 3 / 2),
                }
            }
            (Some(_), _) => RateControl::Cbr {
                kbps: kbps.unwrap_or(base_kbps),
            },
            (None, None) => match (base.rate_control, kbps) {
                (RateControl::Vbr { .. }, _) => {
                    let kbps = kbps.unwrap_or(base_kbps);
                    let max_kbps = max_kbps.unwrap_or(if kbps == base_kbps {
                        base_max
                    } else {
                        kbps * 3 / 2
                    });
                    RateControl::Vbr { kbps, max_kbps }
                }
                (RateControl::Crf { crf }, None) => RateControl::Crf { crf },
                _ => RateControl::Cbr {
                    kbps: kbps.unwrap_or(base_kbps),
                },
            },
        };
        Ok(Self { name, video, size })
    }

    /// A rung of the usual ladder, or `None` for another name.
    fn ladder(name: &str, base: &VideoSettings, canvas: (u32, u32)) -> Option<Self> {
        let (_, height, kbps) = LADDER.into_iter().find(|(rung, _, _)| *rung == name)?;
        let mut video = base.clone();
        video.rate_control = RateControl::Cbr { kbps };
        Some(Self {
            name: name.to_string(),
            video,
            size: Some(scaled_to_height(canvas, height)),
        })
    }

    /// The picture size on a canvas of `canvas` (width, height).
    pub fn size_on(&self, canvas: (u32, u32)) -> (u32, u32) {
        self.size.unwrap_or(canvas)
    }
}

/// `canvas` scaled to `height`, its width rounded to an even number (as 4:2:0 needs).
pub fn scaled_to_height(canvas: (u32, u32), height: u32) -> (u32, u32) {
    let width = (u64::from(canvas.0) * u64::from(height) / u64::from(canvas.1.max(1))) as u32;
    ((width + 1) & !1, height & !1)
}

fn parse_size(text: &str) -> Option<(u32, u32)> {
    let (width, height) = text.split_once('x')?;
    let (width, height) = (width.parse::<u32>().ok()?, height.parse::<u32>().ok()?);
    let fits = |side: u32| (16..=8192).contains(&side) && side % 2 == 0;
    (fits(width) && fits(height)).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> VideoSettings {
        VideoSettings::default()
    }

    #[test]
    fn a_profile_takes_what_it_says_and_the_rest_from_the_run() {
        let profile =
            EncodeProfile::parse("low=size=640x360,bitrate=800", &base(), (1280, 720)).unwrap();
        assert_eq!(profile.name, "low");
        assert_eq!(profile.size, Some((640, 360)));
        assert_eq!(profile.video.rate_control, RateControl::Cbr { kbps: 800 });
        assert_eq!(profile.video.codec, VideoCodec::H264);
        assert_eq!(profile.video.preset, base().preset);
        let high = EncodeProfile::parse(
            "high=codec=hevc,rate-control=crf,crf=20",
            &base(),
            (1280, 720),
        )
        .unwrap();
        assert_eq!(
            (high.video.codec, high.video.encoder),
            (VideoCodec::Hevc, VideoEncoderKind::X265)
        );
        assert_eq!(high.video.rate_control, RateControl::Crf { crf: 20 });
        assert_eq!(high.size_on((1280, 720)), (1280, 720));
    }

    #[test]
    fn ladder_names_keep_the_canvas_shape() {
        let rung = EncodeProfile::parse("480p", &base(), (1920, 1080)).unwrap();
        assert_eq!(rung.size, Some((854, 480)));
        assert_eq!(rung.video.rate_control, RateControl::Cbr { kbps: 1200 });
        assert_eq!(scaled_to_height((1280, 720), 360), (640, 360));
    }

    #[test]
    fn mistakes_are_named() {
        let canvas = (1280, 720);
        assert_eq!(
            EncodeProfile::parse("777p", &base(), canvas),
            Err(ProfileError::Unknown("777p".into()))
        );
        assert!(matches!(
            EncodeProfile::parse("x=size=641x360", &base(), canvas),
            Err(ProfileError::BadValue { .. })
        ));
        assert!(matches!(
            EncodeProfile::parse("x=speed=9", &base(), canvas),
            Err(ProfileError::UnknownKey { .. })
        ));
        assert!(matches!(
            EncodeProfile::parse("x=codec=av1,encoder=x265", &base(), canvas),
            Err(ProfileError::WrongCodec { .. })
        ));
    }
}
