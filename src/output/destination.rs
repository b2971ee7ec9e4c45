//! Where a stream goes: validated RTMP(S) and SRT URLs, keys taken from the environment so
//! they stay out of shell history, and a masked form that is safe to print; or a folder that
//! HLS is written to.

use crate::encode::VideoCodec;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Rtmp,
    Rtmps,
    Srt,
    /// HLS with CMAF (fragmented MP4) segments, written to a folder by FFmpeg's HLS muxer, or
    /// pushed with HTTP PUT (and old segments removed with DELETE) to an HLS ingest or origin.
    Hls,
}

/// The files of an HLS folder that players ask for first.
pub const HLS_MASTER_PLAYLIST: &str = "master.m3u8";
pub const HLS_MEDIA_PLAYLIST: &str = "media.m3u8";

/// The `URI="..."` attribute of a playlist tag (`EXT-X-MAP`, `EXT-X-PART`,
/// `EXT-X-PRELOAD-HINT`), as the HLS outputs write it.
pub fn uri_attribute(tag: &str) -> Option<&str> {
    let (_, rest) = tag.split_once("URI=\"")?;
    rest.split_once('"').map(|(uri, _)| uri)
}

impl Protocol {
    /// The FFmpeg muxer this protocol carries `codec` in: FLV over RTMP (HEVC and AV1 as
    /// enhanced FLV, which Tally writes itself: see `flv`); MPEG-TS over SRT, or Matroska for
    /// AV1, which MPEG-TS has no finished mapping for (ffplay, mpv and FFmpeg read Matroska
    /// over SRT).
    pub fn muxer(self, codec: VideoCodec) -> &'static str {
        match (self, codec) {
            (Protocol::Rtmp | Protocol::Rtmps, _) => "flv",
            (Protocol::Srt, VideoCodec::Av1) => "matroska",
            (Protocol::Srt, VideoCodec::H264 | VideoCodec::Hevc) => "mpegts",
            (Protocol::Hls, _) => "hls",
        }
    }
}

/// One ingest URL, checked and ready for FFmpeg.
#[derive(Clone)]
pub struct Endpoint {
    pub protocol: Protocol,
    /// The URL FFmpeg opens, secrets included. Never print it; use [`Endpoint::masked`].
    url: String,
    masked: String,
    /// The text it was parsed from, `${NAME}` unexpanded, to write back into a file.
    written: String,
}

/// Two endpoints are the same when they reach the same place, however they were written.
impl PartialEq for Endpoint {
    fn eq(&self, other: &Self) -> bool {
        self.protocol == other.protocol && self.url == other.url
    }
}

impl Eq for Endpoint {}

impl Endpoint {
    /// HLS written to `folder` (its media playlist is what FFmpeg opens).
    pub fn hls_folder(folder: &std::path::Path) -> Self {
        let shown = folder.display().to_string();
        Self {
            protocol: Protocol::Hls,
            url: folder.join(HLS_MEDIA_PLAYLIST).display().to_string(),
            masked: format!("HLS in {shown}"),
            written: shown,
        }
    }

    /// HLS pushed with HTTP PUT to `text`, an `http://` or `https://` URL of the folder the
    /// files go to (`${NAME}` read from the environment); its last path segment and its query
    /// are masked, as a stream key may be either.
    pub fn hls_push(text: &str) -> Result<Self, DestinationError> {
        let written = text.trim();
        let url = expand_variables(written)?;
        let malformed = |problem: &str| DestinationError::Malformed {
            url: mask_push(written),
            problem: problem.to_string(),
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| malformed("HLS is pushed to an http:// or https:// URL"))?;
        if rest.split('/').next().is_none_or(str::is_empty) {
            return Err(malformed("no host name"));
        }
        if url.contains('?') {
            return Err(malformed(
                "a query cannot be followed by file names; give the folder's URL",
            ));
        }
        let folder = url.trim_end_matches('/');
        Ok(Self {
            protocol: Protocol::Hls,
            url: format!("{folder}/{HLS_MEDIA_PLAYLIST}"),
            masked: format!("HLS to {}", mask_push(written)),
            written: written.to_string(),
        })
    }

    /// As it was written (environment variables unexpanded): what a saved file holds.
    pub fn written(&self) -> &str {
        &self.written
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn masked(&self) -> &str {
        &self.masked
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({})", self.masked)
    }
}

/// A stream output: a primary ingest and an optional backup used when the primary fails.
#[derive(Debug, Clone, PartialEq)]
pub struct Destination {
    pub primary: Endpoint,
    pub backup: Option<Endpoint>,
    /// The encode it is streamed at; `None`: the run's own, shared with the other outputs.
    pub profile: Option<crate::encode::EncodeProfile>,
    /// How an HLS output cuts its segments; `None`: as the run's stream settings say.
    pub hls: Option<super::stream::HlsSettings>,
}

impl Destination {
    /// The name shown in statistics, logs and errors (secrets masked).
    pub fn name(&self) -> &str {
        self.primary.masked()
    }

    /// As it was written, `PRIMARY|BACKUP` with `${NAME}` unexpanded.
    pub fn written(&self) -> String {
        match &self.backup {
            Some(backup) => format!("{}|{}", self.primary.written(), backup.written()),
            None => self.primary.written().to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("`{0}` is not a URL; expected rtmp://host/app/key, rtmps://... or srt://host:port")]
    NotAUrl(String),
    #[error("unknown scheme `{scheme}` in {url}; Tally streams to rtmp://, rtmps:// and srt://")]
    UnknownScheme { scheme: String, url: String },
    #[error("{url}: {problem}")]
    Malformed { url: String, problem: String },
    #[error("{url}: environment variable {variable} is not set")]
    MissingVariable { url: String, variable: String },
}

/// Parses `PRIMARY` or `PRIMARY|BACKUP`, expanding `${NAME}` from the environment.
pub fn parse_destination(text: &str) -> Result<Destination, DestinationError> {
    let (primary, backup) = match text.split_once('|') {
        Some((primary, backup)) => (primary, Some(backup)),
        None => (text, None),
    };
    Ok(Destination {
        primary: parse_endpoint(primary)?,
        backup: backup.map(parse_endpoint).transpose()?,
        profile: None,
        hls: None,
    })
}

pub fn parse_endpoint(text: &str) -> Result<Endpoint, DestinationError> {
    let mut endpoint = parse_expanded(text)?;
    endpoint.written = text.trim().to_string();
    Ok(endpoint)
}

fn parse_expanded(text: &str) -> Result<Endpoint, DestinationError> {
    let written = text.trim();
    let url = expand_variables(written)?;
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| DestinationError::NotAUrl(mask_written(written)))?;
    let protocol = match scheme.to_ascii_lowercase().as_str() {
        "rtmp" => Protocol::Rtmp,
        "rtmps" => Protocol::Rtmps,
        "srt" => Protocol::Srt,
        other => {
            return Err(DestinationError::UnknownScheme {
                scheme: other.to_string(),
                url: mask_written(written),
            })
        }
    };
    let malformed = |problem: &str| DestinationError::Malformed {
        url: mask_written(written),
        problem: problem.to_string(),
    };
    let (authority, path_and_query) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(malformed("no host name"));
    }
    if let Some((_, port)) = authority.rsplit_once(':') {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(malformed("the port must be a number from 1 to 65535"));
        }
    }
    match protocol {
        Protocol::Rtmp | Protocol::Rtmps => {
            let path = path_and_query.split('?').next().unwrap_or("");
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            if segments.len() < 2 {
                return Err(malformed("expected rtmp://host[:port]/app/stream-key"));
            }
            let masked = format!(
                "{scheme}://{authority}/{}/****",
                segments[..segments.len() - 1].join("/")
            );
            Ok(Endpoint {
                protocol,
                url,
                masked,
                written: String::new(),
            })
        }
        Protocol::Hls => Err(malformed(
            "HLS is written to a folder (--hls-dir), not sent to a URL",
        )),
        Protocol::Srt => {
            if !authority.contains(':') {
                return Err(malformed("SRT needs a port: srt://host:port"));
            }
            srt_endpoint(authority, path_and_query).map_err(|problem| malformed(&problem))
        }
    }
}

/// Adds the options FFmpeg's SRT needs for live MPEG-TS and checks the user's.
fn srt_endpoint(authority: &str, path_and_query: &str) -> Result<Endpoint, String> {
    let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
    let mut options: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "mode" if !matches!(value, "caller" | "listener" | "rendezvous") => {
                return Err(format!(
                    "mode `{value}` is not one of caller, listener, rendezvous"
                ));
            }
            "passphrase" if !(10..=79).contains(&value.len()) => {
                return Err("an SRT passphrase is 10 to 79 characters".into());
            }
            // Users think of latency in milliseconds; FFmpeg takes microseconds.
            "latency_ms" => {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| "latency_ms must be a whole number".to_string())?;
                options.push(("latency".into(), (ms * 1000).to_string()));
                continue;
            }
            _ => {}
        }
        options.push((key.to_string(), value.to_string()));
    }
    let has = |key: &str, options: &[(String, String)]| options.iter().any(|(k, _)| k == key);
    // One MPEG-TS packet group per datagram, and let the last packets go out on close.
    for (key, value) in [
        ("pkt_size", "1316"),
        ("latency", "200000"),
        ("linger", "5"),
        ("mode", "caller"),
    ] {
        if !has(key, &options) {
            options.push((key.into(), value.into()));
        }
    }
    let mode_is_listener = options.iter().any(|(k, v)| k == "mode" && v == "listener");
    if mode_is_listener && !has("listen_timeout", &options) {
        // Stop waiting for a receiver now and then, so the output can be stopped.
        options.push(("listen_timeout".into(), "1000000".into()));
    }
    let join = |mask: bool| {
        options
            .iter()
            .map(|(k, v)| {
                if mask && matches!(k.as_str(), "passphrase" | "streamid") {
                    format!("{k}=****")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    };
    Ok(Endpoint {
        protocol: Protocol::Srt,
        url: format!("srt://{authority}?{}", join(false)),
        masked: format!("srt://{authority}?{}", join(true)),
        written: String::new(),
    })
}

fn expand_variables(text: &str) -> Result<String, DestinationError> {
    let mut expanded = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        expanded.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(DestinationError::Malformed {
                url: mask_written(text),
                problem: "`${` without a closing `}`".into(),
            });
        };
        let name = &after[..end];
        let value = std::env::var(name).map_err(|_| DestinationError::MissingVariable {
            url: mask_written(text),
            variable: name.to_string(),
        })?;
        expanded.push_str(&value);
        rest = &after[end + 1..];
    }
    expanded.push_str(rest);
    Ok(expanded)
}

/// A URL as the user wrote it, safe to print: the last path segment (the stream key) and
/// secret query values are hidden unless they are `${VARIABLE}` references.
/// An HLS push URL with its last path segment (the usual place of a stream key) masked.
fn mask_push(text: &str) -> String {
    let trimmed = text.trim().trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((head, last))
            if head.contains("://") && head.len() > head.find("://").unwrap_or(0) + 3 =>
        {
            if last.starts_with("${") {
                trimmed.to_string()
            } else {
                format!("{head}/****")
            }
        }
        _ => trimmed.to_string(),
    }
}

fn mask_written(text: &str) -> String {
    let (base, query) = text.split_once('?').unwrap_or((text, ""));
    let mut masked = match base.rsplit_once('/') {
        // Any last path segment may be a key (in a malformed URL it could be the only one).
        Some((head, key)) if head.contains("://") && !key.starts_with("${") => {
            format!("{head}/****")
        }
        _ => base.to_string(),
    };
    if !query.is_empty() {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key @ ("passphrase" | "streamid" | "key"), value))
                    if !value.starts_with("${") =>
                {
                    format!("{key}=****")
                }
                _ => pair.to_string(),
            })
            .collect();
        masked.push('?');
        masked.push_str(&pairs.join("&"));
    }
    masked
}

#[cfg(test)]
mod hls_push_tests {
    use super::*;

    #[test]
    fn a_push_url_is_a_folder_whose_last_segment_is_masked() {
        let endpoint = Endpoint::hls_push("https://origin.example/live/secret-key/").unwrap();
        assert_eq!(
            endpoint.url(),
            "https://origin.example/live/secret-key/media.m3u8"
        );
        assert_eq!(endpoint.masked(), "HLS to https://origin.example/live/****");
        assert!(Endpoint::hls_push("ftp://origin/live/key").is_err());
        assert!(Endpoint::hls_push("https://origin/upload?cid=key").is_err());
        assert!(Endpoint::hls_push("https:///live/key").is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtmp_key_is_masked_everywhere() {
        let destination = parse_destination("rtmp://live.example.com/app/sk_live_SECRET").unwrap();
        assert_eq!(
            destination.primary.masked(),
            "rtmp://live.example.com/app/****"
        );
        assert_eq!(
            destination.primary.url(),
            "rtmp://live.example.com/app/sk_live_SECRET"
        );
        assert!(!format!("{destination:?}").contains("SECRET"));
        let error = parse_endpoint("rtmp://host/SECRET")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("SECRET"), "{error}");
    }

    #[test]
    fn keys_come_from_the_environment() {
        std::env::set_var("TALLY_TEST_STREAM_KEY", "abc123");
        let endpoint = parse_endpoint("rtmps://host:443/live2/${TALLY_TEST_STREAM_KEY}").unwrap();
        assert_eq!(endpoint.url(), "rtmps://host:443/live2/abc123");
        assert_eq!(endpoint.masked(), "rtmps://host:443/live2/****");
        let missing = parse_endpoint("rtmp://host/app/${TALLY_NO_SUCH_VARIABLE}").unwrap_err();
        assert!(missing
            .to_string()
            .contains("TALLY_NO_SUCH_VARIABLE is not set"));
    }

    #[test]
    fn bad_urls_get_clear_messages() {
        assert!(matches!(
            parse_endpoint("http://host/app/key"),
            Err(DestinationError::UnknownScheme { .. })
        ));
        assert!(matches!(
            parse_endpoint("not a url"),
            Err(DestinationError::NotAUrl(_))
        ));
        let no_key = parse_endpoint("rtmp://host/app").unwrap_err().to_string();
        assert!(
            no_key.contains("rtmp://host[:port]/app/stream-key"),
            "{no_key}"
        );
        assert!(parse_endpoint("srt://host")
            .unwrap_err()
            .to_string()
            .contains("needs a port"));
        assert!(parse_endpoint("rtmp://host:99999/app/key")
            .unwrap_err()
            .to_string()
            .contains("port"));
        let short = parse_endpoint("srt://127.0.0.1:9000?passphrase=short")
            .unwrap_err()
            .to_string();
        assert!(
            short.contains("10 to 79") && !short.contains("short"),
            "{short}"
        );
    }

    #[test]
    fn srt_gets_live_defaults_and_masks_secrets() {
        let endpoint =
            parse_endpoint("srt://127.0.0.1:9000?passphrase=0123456789ab&latency_ms=120").unwrap();
        assert_eq!(
            endpoint.url(),
            "srt://127.0.0.1:9000?passphrase=0123456789ab&latency=120000&pkt_size=1316&linger=5&mode=caller"
        );
        assert!(endpoint.masked().contains("passphrase=****"));
    }

    #[test]
    fn backup_follows_a_bar() {
        let destination = parse_destination("rtmp://a/app/k1|rtmp://b/app/k2").unwrap();
        assert_eq!(destination.backup.unwrap().url(), "rtmp://b/app/k2");
    }
}
