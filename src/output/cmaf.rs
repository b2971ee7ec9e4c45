//! CMAF (fragmented MP4) pieces that Tally writes itself, for low-latency HLS: the
//! initialisation segment and one `moof` + `mdat` fragment per partial segment.
//!
//! The initialisation segment comes from FFmpeg's MP4 muxer (a header-only fragmented file):
//! it knows every codec's sample description (`avcC`, `hvcC`, `av1C`, `esds`), and this module
//! reads back the track numbers and time scales it chose. The fragments are Tally's own, because
//! FFmpeg 5.1's muxers cannot cut a fragment on demand and hand it over at once, which partial
//! segments need.

use crate::encode::{StreamInfo, VideoCodec};
use ffmpeg_next as ffmpeg;
use std::sync::atomic::{AtomicU64, Ordering};

/// A track of the initialisation segment, as its fragments must name and time it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    pub id: u32,
    /// Ticks per second of the track's timestamps.
    pub timescale: u32,
}

/// The `ftyp` and `moov` every fragment of a stream follows.
#[derive(Debug, Clone)]
pub struct InitSegment {
    pub bytes: Vec<u8>,
    /// Video first, then audio.
    pub tracks: [Track; 2],
    /// The RFC 6381 codecs of both tracks, as a master playlist's `CODECS` lists them.
    pub codecs: String,
}

impl InitSegment {
    /// The initialisation segment for a video and an audio stream.
    pub fn for_streams(video: &StreamInfo, audio: &StreamInfo) -> Result<Self, ffmpeg::Error> {
        let file = header_only_mp4(&[video, audio])?;
        let mut bytes = Vec::new();
        let mut tracks = Vec::new();
        for (kind, body, whole) in boxes(&file) {
            match &kind {
                b"ftyp" => bytes.extend_from_slice(whole),
                b"moov" => {
                    bytes.extend_from_slice(whole);
                    for (kind, trak, _) in boxes(body) {
                        if &kind == b"trak" {
                            tracks.push(read_track(trak).ok_or(ffmpeg::Error::InvalidData)?);
                        }
                    }
                }
                _ => {}
            }
        }
        let [video_track, audio_track] = tracks[..] else {
            return Err(ffmpeg::Error::InvalidData);
        };
        let codec = VideoCodec::from_ffmpeg_id(video.codec).unwrap_or_default();
        let video_codec = video_codec_string(&bytes, codec).ok_or(ffmpeg::Error::InvalidData)?;
        Ok(Self {
            bytes,
            tracks: [video_track, audio_track],
            codecs: format!("{video_codec},mp4a.40.2"),
        })
    }
}

/// A header-only fragmented MP4 of `streams`, made by FFmpeg's MP4 muxer in the temporary
/// folder: for a fragmented file it writes the sample descriptions at once, from the encoders'
/// headers.
pub fn header_only_mp4(streams: &[&StreamInfo]) -> Result<Vec<u8>, ffmpeg::Error> {
    static FILES: AtomicU64 = AtomicU64::new(0);
    let serial = FILES.fetch_add(1, Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("tally-{}-{serial}-header.mp4", std::process::id()));
    let written = (|| -> Result<Vec<u8>, ffmpeg::Error> {
        let mut context = ffmpeg::format::output_as(&path, "mp4")?;
        for info in streams {
            let mut stream = context.add_stream(ffmpeg::encoder::find(info.codec))?;
            stream.set_parameters(info.parameters.clone());
            stream.set_time_base(info.time_base);
            if info.codec == ffmpeg::codec::Id::HEVC {
                super::tag_hevc_as_hvc1(&mut stream);
            }
        }
        let mut options = ffmpeg::Dictionary::new();
        options.set("movflags", "frag_keyframe+empty_moov+default_base_moof");
        context.write_header_with(options)?;
        context.write_trailer()?;
        std::fs::read(&path).map_err(|error| {
            // FFmpeg's error type has no room for the cause: it goes to the log.
            tracing::warn!("reading {}: {error}", path.display());
            ffmpeg::Error::InvalidData
        })
    })();
    if let Err(error) = std::fs::remove_file(&path) {
        tracing::debug!("{}: {error}", path.display());
    }
    written
}

/// The contents of the first box of type `kind` anywhere in `bytes` (a codec's configuration
/// record such as `avcC`), found by its type: sample entries put fixed fields before their
/// boxes, so a walk would need to know every entry's layout.
pub fn find_box(bytes: &[u8], kind: &[u8; 4]) -> Option<Vec<u8>> {
    let at = bytes
        .windows(4)
        .position(|window| window == kind)
        .filter(|&at| at >= 4)?;
    let size = u32::from_be_bytes(bytes[at - 4..at].try_into().ok()?) as usize;
    bytes
        .get(at + 4..(at - 4).checked_add(size)?)
        .map(<[u8]>::to_vec)
}

/// The child boxes of `bytes`: type, contents, and the whole box.
fn boxes(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8], &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let header = bytes.get(at..at + 8)?;
        let size = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
        let kind: [u8; 4] = header[4..8].try_into().ok()?;
        let whole = bytes.get(at..at.checked_add(size)?).filter(|_| size >= 8)?;
        at += size;
        Some((kind, &whole[8..], whole))
    })
}

fn child<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(bytes)
        .find(|(k, _, _)| k == kind)
        .map(|(_, body, _)| body)
}

/// A `trak`'s track number (`tkhd`) and time scale (`mdhd`).
fn read_track(trak: &[u8]) -> Option<Track> {
    let tkhd = child(trak, b"tkhd")?;
    // Version 1 has 64-bit creation and modification times.
    let id_at = if tkhd.first()? == &1 { 20 } else { 12 };
    let id = u32::from_be_bytes(tkhd.get(id_at..id_at + 4)?.try_into().ok()?);
    let mdhd = child(child(trak, b"mdia")?, b"mdhd")?;
    let scale_at = if mdhd.first()? == &1 { 20 } else { 12 };
    let timescale = u32::from_be_bytes(mdhd.get(scale_at..scale_at + 4)?.try_into().ok()?);
    (timescale > 0).then_some(Track { id, timescale })
}

/// The video codec as RFC 6381 names it (`avc1.64001f`, `hvc1.1.6.L93.B0`, `av01.0.08M.08`),
/// from the configuration record in `init`.
fn video_codec_string(init: &[u8], codec: VideoCodec) -> Option<String> {
    match codec {
        VideoCodec::H264 => {
            let avcc = find_box(init, b"avcC")?;
            let [_, profile, compatibility, level, ..] = avcc[..] else {
                return None;
            };
            Some(format!("avc1.{profile:02x}{compatibility:02x}{level:02x}"))
        }
        VideoCodec::Hevc => {
            let hvcc = find_box(init, b"hvcC")?;
            let first = *hvcc.get(1)?;
            let space = ["", "A", "B", "C"][usize::from(first >> 6)];
            let tier = if first & 0x20 != 0 { 'H' } else { 'L' };
            let profile = first & 0x1f;
            // The compatibility flags are written in reverse bit order.
            let compatibility = u32::from_be_bytes(hvcc.get(2..6)?.try_into().ok()?).reverse_bits();
            let level = *hvcc.get(12)?;
            let mut constraints: Vec<u8> = hvcc.get(6..12)?.to_vec();
            while constraints.last() == Some(&0) {
                constraints.pop();
            }
            let mut text = format!("hvc1.{space}{profile}.{compatibility:x}.{tier}{level}");
            for byte in constraints {
                text.push_str(&format!(".{byte:X}"));
            }
            Some(text)
        }
        VideoCodec::Av1 => {
            let av1c = find_box(init, b"av1C")?;
            let (first, second) = (*av1c.get(1)?, *av1c.get(2)?);
            let profile = first >> 5;
            let level = first & 0x1f;
            let tier = if second & 0x80 != 0 { 'H' } else { 'M' };
            let depth = match (second & 0x40 != 0, second & 0x20 != 0) {
                (true, true) => 12,
                (true, false) => 10,
                _ => 8,
            };
            Some(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
        }
    }
}

/// One sample (an access unit or an audio frame) of a fragment.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// In the track's ticks.
    pub duration: u32,
    /// Presentation minus decode time, in the track's ticks.
    pub composition_offset: i32,
    /// A keyframe: decodable on its own.
    pub sync: bool,
    pub data: Vec<u8>,
}

/// One track's samples in a fragment.
#[derive(Debug, Clone, Copy)]
pub struct TrackRun<'a> {
    pub track: Track,
    /// The first sample's decode time, in the track's ticks from the stream's start.
    pub base_decode_time: u64,
    pub samples: &'a [Sample],
}

/// `sample_depends_on` = 2: decodes on its own.
const SYNC_SAMPLE: u32 = 0x0200_0000;
/// `sample_depends_on` = 1 and `sample_is_non_sync_sample`.
const NON_SYNC_SAMPLE: u32 = 0x0101_0000;

/// A fragment (`moof` then `mdat`) of the runs that have samples, in their order.
pub fn fragment(sequence: u32, runs: &[TrackRun]) -> Vec<u8> {
    let runs: Vec<&TrackRun> = runs.iter().filter(|run| !run.samples.is_empty()).collect();
    // Each `trun` names where its first sample starts, counted from the start of the `moof`,
    // so the `moof`'s size comes first.
    let traf_size = |run: &TrackRun| 8 + 16 + 20 + (12 + 8 + 16 * run.samples.len());
    let moof_size = 8 + 16 + runs.iter().map(|run| traf_size(run)).sum::<usize>();
    let mut data_offset = moof_size + 8;
    let mut out = Vec::new();
    let moof = begin_box(&mut out, b"moof");
    let mfhd = begin_full_box(&mut out, b"mfhd", 0, 0);
    out.extend_from_slice(&sequence.to_be_bytes());
    end_box(&mut out, mfhd);
    for run in &runs {
        let traf = begin_box(&mut out, b"traf");
        // default-base-is-moof: offsets count from this fragment, as CMAF asks.
        let tfhd = begin_full_box(&mut out, b"tfhd", 0, 0x02_0000);
        out.extend_from_slice(&run.track.id.to_be_bytes());
        end_box(&mut out, tfhd);
        let tfdt = begin_full_box(&mut out, b"tfdt", 1, 0);
        out.extend_from_slice(&run.base_decode_time.to_be_bytes());
        end_box(&mut out, tfdt);
        // data offset, and per sample: duration, size, flags, composition offset (signed in
        // version 1).
        let trun = begin_full_box(&mut out, b"trun", 1, 0x00_0f01);
        out.extend_from_slice(&(run.samples.len() as u32).to_be_bytes());
        out.extend_from_slice(&(data_offset as u32).to_be_bytes());
        for sample in run.samples {
            out.extend_from_slice(&sample.duration.to_be_bytes());
            out.extend_from_slice(&(sample.data.len() as u32).to_be_bytes());
            let flags = if sample.sync {
                SYNC_SAMPLE
            } else {
                NON_SYNC_SAMPLE
            };
            out.extend_from_slice(&flags.to_be_bytes());
            out.extend_from_slice(&sample.composition_offset.to_be_bytes());
            data_offset += sample.data.len();
        }
        end_box(&mut out, trun);
        end_box(&mut out, traf);
    }
    end_box(&mut out, moof);
    debug_assert_eq!(out.len(), moof_size);
    let mdat = begin_box(&mut out, b"mdat");
    for run in &runs {
        for sample in run.samples {
            out.extend_from_slice(&sample.data);
        }
    }
    end_box(&mut out, mdat);
    out
}

fn begin_box(out: &mut Vec<u8>, kind: &[u8; 4]) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    start
}

fn begin_full_box(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32) -> usize {
    let start = begin_box(out, kind);
    out.extend_from_slice(&(u32::from(version) << 24 | flags).to_be_bytes());
    start
}

fn end_box(out: &mut [u8], start: usize) {
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fragment_points_each_run_at_its_samples_in_the_mdat() {
        let video = [
            Sample {
                duration: 512,
                composition_offset: 1024,
                sync: true,
                data: vec![1, 2, 3],
            },
            Sample {
                duration: 512,
                composition_offset: -512,
                sync: false,
                data: vec![4, 5],
            },
        ];
        let audio = [Sample {
            duration: 1024,
            composition_offset: 0,
            sync: true,
            data: vec![9; 4],
        }];
        let runs = [
            TrackRun {
                track: Track {
                    id: 1,
                    timescale: 15360,
                },
                base_decode_time: 30720,
                samples: &video,
            },
            TrackRun {
                track: Track {
                    id: 2,
                    timescale: 48000,
                },
                base_decode_time: 96000,
                samples: &audio,
            },
        ];
        let bytes = fragment(7, &runs);
        let top: Vec<_> = boxes(&bytes).map(|(kind, _, _)| kind).collect();
        assert_eq!(top, [*b"moof", *b"mdat"]);
        let moof = child(&bytes, b"moof").unwrap();
        assert_eq!(&child(moof, b"mfhd").unwrap()[4..8], &7u32.to_be_bytes());
        let trafs: Vec<&[u8]> = boxes(moof)
            .filter(|(kind, _, _)| kind == b"traf")
            .map(|(_, body, _)| body)
            .collect();
        assert_eq!(trafs.len(), 2);
        let read_u32 =
            |bytes: &[u8], at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        let second_trun = child(trafs[1], b"trun").unwrap();
        let audio_offset = read_u32(second_trun, 8) as usize;
        assert_eq!(&bytes[audio_offset..audio_offset + 4], &[9; 4]);
        let first_trun = child(trafs[0], b"trun").unwrap();
        let video_offset = read_u32(first_trun, 8) as usize;
        assert_eq!(&bytes[video_offset..video_offset + 5], &[1, 2, 3, 4, 5]);
        // The second video sample: not a sync sample, shown 512 ticks before it is decoded.
        assert_eq!(read_u32(first_trun, 12 + 16 + 8), NON_SYNC_SAMPLE);
        assert_eq!(read_u32(first_trun, 12 + 16 + 12) as i32, -512);
        let tfdt = child(trafs[1], b"tfdt").unwrap();
        assert_eq!(u64::from_be_bytes(tfdt[4..12].try_into().unwrap()), 96000);
    }

    #[test]
    fn a_track_with_no_samples_is_left_out() {
        let audio = [Sample {
            duration: 1024,
            composition_offset: 0,
            sync: true,
            data: vec![1],
        }];
        let track = |id| Track {
            id,
            timescale: 48000,
        };
        let bytes = fragment(
            1,
            &[
                TrackRun {
                    track: track(1),
                    base_decode_time: 0,
                    samples: &[],
                },
                TrackRun {
                    track: track(2),
                    base_decode_time: 0,
                    samples: &audio,
                },
            ],
        );
        let moof = child(&bytes, b"moof").unwrap();
        let trafs = boxes(moof).filter(|(kind, _, _)| kind == b"traf").count();
        assert_eq!(trafs, 1);
    }

    #[test]
    fn codec_strings_come_from_the_configuration_records() {
        let mut avcc = vec![0, 0, 0, 12];
        avcc.extend_from_slice(b"avcC");
        avcc.extend_from_slice(&[1, 0x64, 0x00, 0x1f]);
        assert_eq!(
            video_codec_string(&avcc, VideoCodec::H264).as_deref(),
            Some("avc1.64001f")
        );
        // Main profile, main tier, level 3.1 (93), progressive-source flag set.
        let mut hvcc = vec![0, 0, 0, 21];
        hvcc.extend_from_slice(b"hvcC");
        hvcc.extend_from_slice(&[1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93]);
        assert_eq!(
            video_codec_string(&hvcc, VideoCodec::Hevc).as_deref(),
            Some("hvc1.1.6.L93.90")
        );
        // Main profile, level 4.0 (8), main tier, 8 bits.
        let mut av1c = vec![0, 0, 0, 12];
        av1c.extend_from_slice(b"av1C");
        av1c.extend_from_slice(&[0x81, 0x08, 0x0c, 0]);
        assert_eq!(
            video_codec_string(&av1c, VideoCodec::Av1).as_deref(),
            Some("av01.0.08M.08")
        );
    }
}
