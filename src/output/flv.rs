//! FLV tags Tally writes itself, for what FFmpeg 5.1's FLV muxer refuses: HEVC and AV1 video
//! as the enhanced RTMP specification (veovera, v1) carries them, with AAC audio as classic
//! FLV carries it. Tally's own RTMP client ([`super::rtmp`]) sends each tag as one message.
//!
//! An enhanced video tag starts with a byte holding the extended-header flag, the frame type
//! and a packet type, then the codec's FourCC (`hvc1`, `av01`): a sequence start carries the
//! codec's configuration record (as in MP4's `hvcC` and `av1C` boxes), coded frames carry the
//! pictures (HEVC: NAL units with 4-byte lengths, after a composition-time offset; AV1: OBUs
//! without temporal delimiters). Pure byte-building, tested on its own.

use super::amf::Amf;
use crate::encode::VideoCodec;

/// RTMP message types, which are FLV's tag types.
pub const TAG_AUDIO: u8 = 8;
pub const TAG_VIDEO: u8 = 9;
pub const TAG_SCRIPT: u8 = 18;

const EX_HEADER: u8 = 0x80;
const FRAME_KEY: u8 = 1;
const FRAME_INTER: u8 = 2;
const PACKET_SEQUENCE_START: u8 = 0;
const PACKET_CODED_FRAMES: u8 = 1;

/// AAC-LC, 48 kHz, stereo: Tally's only audio (object type 2, frequency index 3, 2 channels).
pub const AAC_LC_48K_STEREO_CONFIG: [u8; 2] = [0x11, 0x90];

/// One FLV tag, which RTMP sends as one message of the same type.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    /// [`TAG_AUDIO`], [`TAG_VIDEO`] or [`TAG_SCRIPT`].
    pub kind: u8,
    pub timestamp_ms: u32,
    pub body: Vec<u8>,
}

/// The FourCC enhanced RTMP names a codec by; `None` for H.264, which stays classic FLV.
pub fn fourcc(codec: VideoCodec) -> Option<[u8; 4]> {
    match codec {
        VideoCodec::H264 => None,
        VideoCodec::Hevc => Some(*b"hvc1"),
        VideoCodec::Av1 => Some(*b"av01"),
    }
}

/// What `onMetaData` says of the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metadata {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub fourcc: [u8; 4],
}

/// The `onMetaData` script data, as a publisher sends it (`@setDataFrame` asks the server to
/// keep it for players); `videocodecid` is the FourCC read as a number, as the specification
/// says.
pub fn metadata(meta: &Metadata) -> Tag {
    let entries = [
        ("duration", Amf::Number(0.0)),
        ("width", Amf::Number(f64::from(meta.width))),
        ("height", Amf::Number(f64::from(meta.height))),
        ("framerate", Amf::Number(meta.fps)),
        (
            "videocodecid",
            Amf::Number(f64::from(u32::from_be_bytes(meta.fourcc))),
        ),
        ("audiocodecid", Amf::Number(10.0)),
        ("audiosamplerate", Amf::Number(48_000.0)),
        ("audiosamplesize", Amf::Number(16.0)),
        ("stereo", Amf::Boolean(true)),
        ("encoder", Amf::string("Tally")),
    ];
    let mut body = Vec::new();
    Amf::string("@setDataFrame").write(&mut body);
    Amf::string("onMetaData").write(&mut body);
    Amf::EcmaArray(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect(),
    )
    .write(&mut body);
    Tag {
        kind: TAG_SCRIPT,
        timestamp_ms: 0,
        body,
    }
}

/// The video sequence start: the codec's configuration record (`hvcC` or `av1C` contents).
pub fn video_sequence_start(fourcc: [u8; 4], config: &[u8]) -> Tag {
    let mut body = vec![EX_HEADER | FRAME_KEY << 4 | PACKET_SEQUENCE_START];
    body.extend_from_slice(&fourcc);
    body.extend_from_slice(config);
    Tag {
        kind: TAG_VIDEO,
        timestamp_ms: 0,
        body,
    }
}

/// One coded picture, decoded at `dts_ms` and shown `cts_ms` later. `data` is as the encoder
/// gave it: HEVC in Annex B, AV1 as OBUs.
pub fn video_frame(
    codec: VideoCodec,
    keyframe: bool,
    dts_ms: u32,
    cts_ms: i32,
    data: &[u8],
) -> Option<Tag> {
    let fourcc = fourcc(codec)?;
    let frame_type = if keyframe { FRAME_KEY } else { FRAME_INTER };
    let mut body = vec![EX_HEADER | frame_type << 4 | PACKET_CODED_FRAMES];
    body.extend_from_slice(&fourcc);
    match codec {
        VideoCodec::Hevc => {
            body.extend_from_slice(&cts_ms.to_be_bytes()[1..]);
            body.extend(annex_b_to_length_prefixed(data));
        }
        VideoCodec::Av1 => body.extend(av1_without_temporal_delimiters(data)),
        VideoCodec::H264 => return None,
    }
    Some(Tag {
        kind: TAG_VIDEO,
        timestamp_ms: dts_ms,
        body,
    })
}

/// The AAC sequence header: the AudioSpecificConfig.
pub fn audio_sequence_header(config: &[u8]) -> Tag {
    let mut body = vec![0xaf, 0x00];
    body.extend_from_slice(config);
    Tag {
        kind: TAG_AUDIO,
        timestamp_ms: 0,
        body,
    }
}

/// One raw AAC frame.
pub fn audio_frame(dts_ms: u32, data: &[u8]) -> Tag {
    let mut body = vec![0xaf, 0x01];
    body.extend_from_slice(data);
    Tag {
        kind: TAG_AUDIO,
        timestamp_ms: dts_ms,
        body,
    }
}

/// HEVC NAL units from Annex B (start codes) to 4-byte big-endian lengths, as `hvcC` says
/// (lengthSizeMinusOne 3).
pub fn annex_b_to_length_prefixed(data: &[u8]) -> Vec<u8> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(data.len() + 4 * starts.len());
    for (n, &start) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(data.len(), |next| next - 3);
        // A four-byte start code leaves a zero before the next three-byte one.
        while end > start && data[end - 1] == 0 && starts.get(n + 1).is_some() {
            end -= 1;
        }
        let nal = &data[start..end];
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// AV1 OBUs (low-overhead format, each with its size) without temporal delimiters, which
/// enhanced RTMP and MP4 leave out. Data that does not parse is passed on as it is.
pub fn av1_without_temporal_delimiters(data: &[u8]) -> Vec<u8> {
    const OBU_TEMPORAL_DELIMITER: u8 = 2;
    let mut out = Vec::with_capacity(data.len());
    let mut at = 0;
    while at < data.len() {
        let header = data[at];
        let obu_type = (header >> 3) & 0x0f;
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let header_len = 1 + usize::from(has_extension);
        if !has_size {
            return data.to_vec();
        }
        let Some((size, size_len)) = leb128(data.get(at + header_len..).unwrap_or(&[])) else {
            return data.to_vec();
        };
        let end = at + header_len + size_len + size;
        if end > data.len() {
            return data.to_vec();
        }
        if obu_type != OBU_TEMPORAL_DELIMITER {
            out.extend_from_slice(&data[at..end]);
        }
        at = end;
    }
    out
}

/// An unsigned LEB128 number and how many bytes it took.
fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value = 0usize;
    for (index, byte) in bytes.iter().take(8).enumerate() {
        value |= usize::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hevc_frames_carry_the_extended_header_fourcc_composition_time_and_lengths() {
        let annex_b = [0, 0, 0, 1, 0x26, 0x01, 0xaf, 0, 0, 1, 0x02, 0x01, 0xbb];
        let tag = video_frame(VideoCodec::Hevc, true, 40, 33, &annex_b).unwrap();
        assert_eq!((tag.kind, tag.timestamp_ms), (TAG_VIDEO, 40));
        let body = &tag.body;
        assert_eq!(body[0], 0x80 | 0x10 | 1, "extended, keyframe, coded frames");
        assert_eq!(&body[1..5], b"hvc1");
        assert_eq!(&body[5..8], &[0, 0, 33]);
        assert_eq!(
            &body[8..],
            &[0, 0, 0, 3, 0x26, 0x01, 0xaf, 0, 0, 0, 3, 0x02, 0x01, 0xbb]
        );
        let inter = video_frame(VideoCodec::Hevc, false, 40, -10, &annex_b).unwrap();
        assert_eq!(inter.body[0], 0x80 | 0x20 | 1);
        assert_eq!(
            &inter.body[5..8],
            &[0xff, 0xff, 0xf6],
            "a negative offset, 24 bits"
        );
    }

    #[test]
    fn av1_frames_leave_out_temporal_delimiters_and_have_no_composition_time() {
        // A temporal delimiter (type 2, size 0), then a frame OBU (type 6) of 3 bytes.
        let obus = [0x12, 0x00, 0x32, 0x03, 0xa1, 0xa2, 0xa3];
        let body = video_frame(VideoCodec::Av1, false, 0, 0, &obus)
            .unwrap()
            .body;
        assert_eq!(&body[1..5], b"av01");
        assert_eq!(&body[5..], &[0x32, 0x03, 0xa1, 0xa2, 0xa3]);
        assert!(video_frame(VideoCodec::H264, true, 0, 0, &obus).is_none());
    }

    #[test]
    fn metadata_names_the_codec_by_its_fourcc() {
        let tag = metadata(&Metadata {
            width: 1280,
            height: 720,
            fps: 30.0,
            fourcc: *b"av01",
        });
        assert_eq!(tag.kind, TAG_SCRIPT);
        let values = Amf::read_all(&tag.body).unwrap();
        assert_eq!(values[0].as_str(), Some("@setDataFrame"));
        assert_eq!(values[1].as_str(), Some("onMetaData"));
        assert_eq!(
            values[2].get("videocodecid").and_then(Amf::as_number),
            Some(f64::from(u32::from_be_bytes(*b"av01")))
        );
    }

    #[test]
    fn leb128_reads_multi_byte_sizes() {
        assert_eq!(leb128(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(leb128(&[0x05]), Some((5, 1)));
        assert_eq!(leb128(&[0x80]), None);
    }
}
