//! Low-latency HLS, written by Tally itself into a folder: CMAF partial segments a fraction
//! of a second long as they are encoded, the whole segments they make up, and a media
//! playlist with the LL-HLS tags (`EXT-X-PART`, `EXT-X-PRELOAD-HINT`, `EXT-X-PART-INF`,
//! `EXT-X-SERVER-CONTROL`) rewritten after every part, beside a one-variant master playlist.
//!
//! Parts are cut on the video's decode times, at the first frame at or past the part target;
//! segments at the first keyframe at or past the segment target, so they always start with
//! one. Sound goes into the part whose time span it starts in. Every file is written under a
//! temporary name and renamed when whole, so the folder always holds a playable stream, and
//! a clean end adds `EXT-X-ENDLIST`. Segments that left the playlist's window are deleted one
//! window-move later, with their parts, so a player still fetching one is not cut off.
//!
//! Serving it (blocking playlist reloads, preload hints) is [`super::hls_server`]'s job.

use super::cmaf::{self, InitSegment, Sample, Track, TrackRun};
use super::destination::{HLS_MASTER_PLAYLIST, HLS_MEDIA_PLAYLIST as MEDIA_PLAYLIST};
use crate::encode::{EncodedPacket, StreamInfo, StreamKind, VideoCodec};
use ffmpeg_next as ffmpeg;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const INIT_SEGMENT: &str = "init.mp4";
/// Complete segments that still list their parts: the spec asks for parts within three
/// target durations of the end.
const SEGMENTS_WITH_PARTS: usize = 2;

#[derive(Debug, Clone, thiserror::Error)]
pub enum LowLatencyError {
    #[error("writing {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: Arc<std::io::Error>,
    },
    #[error("making the CMAF initialisation segment: {0}")]
    Init(ffmpeg::Error),
}

impl PartialEq for LowLatencyError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Write { path, cause }, Self::Write { path: p, cause: c }) => {
                path == p && cause.kind() == c.kind()
            }
            (Self::Init(a), Self::Init(b)) => a == b,
            _ => false,
        }
    }
}

/// How a low-latency HLS stream is cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LowLatencyLayout {
    pub segment: Duration,
    pub part: Duration,
    /// Complete segments the playlist lists.
    pub window: u32,
    /// The first segment's media sequence number.
    pub first_segment: u64,
}

/// When a segment's first frame left the compositor, for its `EXT-X-PROGRAM-DATE-TIME`.
pub trait FrameClock: Send {
    fn left_compositor(&self, frame: i64) -> Option<SystemTime>;
}

/// A part of the segment being written, as the playlist lists it.
#[derive(Debug, Clone)]
struct PartEntry {
    duration: f64,
    independent: bool,
    uri: String,
}

#[derive(Debug, Clone)]
struct SegmentEntry {
    msn: u64,
    duration: f64,
    program_date_time: SystemTime,
    parts: Vec<PartEntry>,
}

/// A video sample kept until the next one gives its duration.
struct HeldVideo {
    decode: i64,
    sample: Sample,
}

/// An audio frame waiting for the part its time falls in.
struct QueuedAudio {
    decode: i64,
    sample: Sample,
}

pub struct LowLatencyHls {
    folder: PathBuf,
    init: InitSegment,
    layout: LowLatencyLayout,
    clock: Option<Box<dyn FrameClock>>,
    codec: VideoCodec,
    /// Width, height and frame rate, for the master playlist.
    picture: Option<(u32, u32, f64)>,
    /// One video frame, in video ticks.
    frame_ticks: i64,
    /// What the playlist advertises as PART-TARGET: the part target rounded to whole frames.
    part_target: f64,
    /// The first keyframe's decode time in seconds: time zero of the stream.
    origin: Option<f64>,
    held_video: Option<HeldVideo>,
    audio: VecDeque<QueuedAudio>,
    /// The part being gathered: its video samples and the decode time it starts at.
    part_video: Vec<Sample>,
    part_start: i64,
    part_independent: bool,
    segment: SegmentEntry,
    segment_start: i64,
    segment_bytes: Vec<u8>,
    done: VecDeque<SegmentEntry>,
    /// Segments out of the window, deleted at the next move.
    leaving: VecDeque<SegmentEntry>,
    fragment_sequence: u32,
    master_written: bool,
    ended: bool,
}

impl LowLatencyHls {
    /// Starts a stream in `folder` (which must exist): writes the initialisation segment.
    pub fn start(
        folder: &Path,
        streams: &[StreamInfo; 2],
        layout: LowLatencyLayout,
        clock: Option<Box<dyn FrameClock>>,
    ) -> Result<Self, LowLatencyError> {
        let init =
            InitSegment::for_streams(&streams[0], &streams[1]).map_err(LowLatencyError::Init)?;
        let fps = streams[0]
            .picture
            .map_or(30.0, |picture| picture.fps)
            .max(1.0);
        let frame_ticks = (f64::from(init.tracks[0].timescale) / fps).round().max(1.0) as i64;
        let frames_per_part = (layout.part.as_secs_f64() * fps).round().max(1.0);
        let writer = Self {
            folder: folder.to_path_buf(),
            layout,
            clock,
            codec: VideoCodec::from_ffmpeg_id(streams[0].codec).unwrap_or_default(),
            picture: streams[0]
                .picture
                .map(|picture| (picture.width, picture.height, picture.fps)),
            frame_ticks,
            part_target: frames_per_part / fps,
            origin: None,
            held_video: None,
            audio: VecDeque::new(),
            part_video: Vec::new(),
            part_start: 0,
            part_independent: false,
            segment: SegmentEntry {
                msn: layout.first_segment,
                duration: 0.0,
                program_date_time: SystemTime::now(),
                parts: Vec::new(),
            },
            segment_start: 0,
            segment_bytes: Vec::new(),
            done: VecDeque::new(),
            leaving: VecDeque::new(),
            fragment_sequence: 0,
            master_written: false,
            ended: false,
            init,
        };
        writer.write_file(INIT_SEGMENT, &writer.init.bytes)?;
        Ok(writer)
    }

    /// The part target the playlist advertises, in seconds.
    pub fn part_target(&self) -> f64 {
        self.part_target
    }

    pub fn write(&mut self, packet: &EncodedPacket) -> Result<(), LowLatencyError> {
        let decode = packet.packet.dts().or(packet.packet.pts()).unwrap_or(0);
        let seconds = decode as f64 * f64::from(packet.time_base);
        let origin = match (self.origin, packet.kind) {
            (Some(origin), _) => origin,
            // Time zero is the first keyframe; what comes before it cannot be shown.
            (None, StreamKind::Video) if packet.is_keyframe() => {
                self.origin = Some(seconds);
                seconds
            }
            (None, _) => return Ok(()),
        };
        let track = match packet.kind {
            StreamKind::Video => self.init.tracks[0],
            StreamKind::Audio => self.init.tracks[1],
        };
        let ticks = |time: f64| ((time - origin) * f64::from(track.timescale)).round() as i64;
        let decode_ticks = ticks(seconds);
        if decode_ticks < 0 {
            return Ok(());
        }
        let presentation = packet
            .packet
            .pts()
            .map_or(seconds, |pts| pts as f64 * f64::from(packet.time_base));
        let data = packet.packet.data().unwrap_or(&[]);
        match packet.kind {
            StreamKind::Audio => {
                let duration = (packet.packet.duration() as f64
                    * f64::from(packet.time_base)
                    * f64::from(track.timescale))
                .round() as u32;
                self.audio.push_back(QueuedAudio {
                    decode: decode_ticks,
                    sample: Sample {
                        duration: if duration == 0 { 1024 } else { duration },
                        composition_offset: 0,
                        sync: true,
                        data: data.to_vec(),
                    },
                });
                Ok(())
            }
            StreamKind::Video => {
                let sample = Sample {
                    duration: self.frame_ticks as u32,
                    composition_offset: (ticks(presentation) - decode_ticks) as i32,
                    sync: packet.is_keyframe(),
                    data: match self.codec {
                        VideoCodec::Av1 => super::flv::av1_without_temporal_delimiters(data),
                        _ => super::flv::annex_b_to_length_prefixed(data),
                    },
                };
                let frame = packet.packet.pts();
                self.video(decode_ticks, sample, frame)
            }
        }
    }

    fn video(
        &mut self,
        decode: i64,
        sample: Sample,
        frame: Option<i64>,
    ) -> Result<(), LowLatencyError> {
        if let Some(held) = self.held_video.take() {
            let mut sample = held.sample;
            sample.duration = (decode - held.decode).max(1) as u32;
            self.part_video.push(sample);
        }
        if !self.part_video.is_empty() {
            let timescale = f64::from(self.init.tracks[0].timescale);
            let half_frame = self.frame_ticks / 2;
            let segment_due = (self.layout.segment.as_secs_f64() * timescale) as i64 - half_frame;
            let part_due = (self.part_target * timescale) as i64 - half_frame;
            if sample.sync && decode - self.segment_start >= segment_due {
                self.cut_part(decode, true)?;
            } else if decode - self.part_start >= part_due {
                self.cut_part(decode, false)?;
            }
        }
        if self.part_video.is_empty() && self.held_video.is_none() {
            self.part_start = decode;
            self.part_independent = sample.sync;
            if self.segment.parts.is_empty() {
                self.segment_start = decode;
                self.segment.program_date_time = frame
                    .and_then(|frame| self.clock.as_ref()?.left_compositor(frame))
                    .unwrap_or_else(SystemTime::now);
            }
        }
        self.held_video = Some(HeldVideo { decode, sample });
        Ok(())
    }

    /// Closes the part that ends at video decode time `end` (and the segment with it):
    /// writes its file, the segment's when it ends, and the playlist.
    fn cut_part(&mut self, end: i64, ends_segment: bool) -> Result<(), LowLatencyError> {
        let [video_track, audio_track] = self.init.tracks;
        let end_seconds = end as f64 / f64::from(video_track.timescale);
        let mut audio = Vec::new();
        let mut audio_start = None;
        while let Some(queued) = self.audio.front() {
            if queued.decode as f64 / f64::from(audio_track.timescale) >= end_seconds {
                break;
            }
            let queued = self.audio.pop_front().expect("looked at above");
            audio_start.get_or_insert(queued.decode);
            audio.push(queued.sample);
        }
        self.fragment_sequence += 1;
        let bytes = cmaf::fragment(
            self.fragment_sequence,
            &[
                run(video_track, self.part_start, &self.part_video),
                run(audio_track, audio_start.unwrap_or(0), &audio),
            ],
        );
        let uri = format!(
            "segment-{:06}.{}.m4s",
            self.segment.msn,
            self.segment.parts.len()
        );
        self.write_file(&uri, &bytes)?;
        self.segment_bytes.extend_from_slice(&bytes);
        let duration = (end - self.part_start) as f64 / f64::from(video_track.timescale);
        self.segment.parts.push(PartEntry {
            duration,
            independent: self.part_independent,
            uri,
        });
        self.segment.duration += duration;
        self.part_video.clear();
        if ends_segment {
            self.end_segment()?;
        }
        self.write_playlist()
    }

    fn end_segment(&mut self) -> Result<(), LowLatencyError> {
        let name = segment_name(self.segment.msn);
        self.write_file(&name, &self.segment_bytes)?;
        if !self.master_written {
            let bits_per_second =
                self.segment_bytes.len() as f64 * 8.0 / self.segment.duration.max(0.001);
            self.write_master(bits_per_second)?;
        }
        self.segment_bytes.clear();
        let next = SegmentEntry {
            msn: self.segment.msn + 1,
            duration: 0.0,
            program_date_time: SystemTime::now(),
            parts: Vec::new(),
        };
        self.done
            .push_back(std::mem::replace(&mut self.segment, next));
        while self.done.len() > self.layout.window.max(1) as usize {
            let left = self.done.pop_front().expect("longer than the window");
            self.leaving.push_back(left);
        }
        // One window-move of grace: a player may still be fetching what just left.
        while self.leaving.len() > 1 {
            let old = self.leaving.pop_front().expect("more than one");
            self.remove_segment(&old);
        }
        Ok(())
    }

    fn remove_segment(&self, segment: &SegmentEntry) {
        let names = std::iter::once(segment_name(segment.msn))
            .chain(segment.parts.iter().map(|part| part.uri.clone()));
        for name in names {
            let path = self.folder.join(&name);
            if let Err(error) = std::fs::remove_file(&path) {
                // Someone else cleaned up: nothing is lost, the playlist no longer names it.
                tracing::debug!("removing {}: {error}", path.display());
            }
        }
    }

    /// Ends the stream: the last frame, part and segment, and `EXT-X-ENDLIST`.
    pub fn finish(&mut self) -> Result<(), LowLatencyError> {
        if self.ended {
            return Ok(());
        }
        if let Some(held) = self.held_video.take() {
            let end = held.decode + i64::from(held.sample.duration);
            self.part_video.push(held.sample);
            self.ended = true;
            self.cut_part(end, true)?;
        }
        self.ended = true;
        self.write_playlist()
    }

    fn write_playlist(&self) -> Result<(), LowLatencyError> {
        let text = media_playlist(&MediaPlaylist {
            target_duration: self.layout.segment.as_secs_f64().ceil().max(1.0) as u64,
            part_target: self.part_target,
            done: &self.done,
            current: (!self.ended).then_some(&self.segment),
            ended: self.ended,
        });
        self.write_file(MEDIA_PLAYLIST, text.as_bytes())
    }

    fn write_master(&mut self, bits_per_second: f64) -> Result<(), LowLatencyError> {
        let mut attributes = format!(
            "BANDWIDTH={},CODECS=\"{}\"",
            // Some headroom over the first segment: the peak is what a player budgets for.
            (bits_per_second * 1.2).ceil() as u64,
            self.init.codecs
        );
        if let Some((width, height, fps)) = self.picture {
            attributes.push_str(&format!(",RESOLUTION={width}x{height},FRAME-RATE={fps:.3}"));
        }
        let text = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:{attributes}\n{MEDIA_PLAYLIST}\n"
        );
        self.write_file(HLS_MASTER_PLAYLIST, text.as_bytes())?;
        self.master_written = true;
        Ok(())
    }

    /// Writes `name` in the folder under a temporary name, then renames it.
    fn write_file(&self, name: &str, bytes: &[u8]) -> Result<(), LowLatencyError> {
        let path = self.folder.join(name);
        let temporary = self.folder.join(format!("{name}.tmp"));
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|cause| LowLatencyError::Write {
                path,
                cause: Arc::new(cause),
            })
    }
}

fn run(track: Track, base: i64, samples: &[Sample]) -> TrackRun<'_> {
    TrackRun {
        track,
        base_decode_time: base.max(0) as u64,
        samples,
    }
}

fn segment_name(msn: u64) -> String {
    format!("segment-{msn:06}.m4s")
}

struct MediaPlaylist<'a> {
    target_duration: u64,
    part_target: f64,
    done: &'a VecDeque<SegmentEntry>,
    current: Option<&'a SegmentEntry>,
    ended: bool,
}

fn media_playlist(playlist: &MediaPlaylist) -> String {
    let first = playlist
        .done
        .front()
        .or(playlist.current)
        .map_or(0, |segment| segment.msn);
    let mut text = String::new();
    let part_target = playlist.part_target;
    // The hold-back: three part targets, as the spec recommends (it must be at least two).
    text.push_str(&format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-PART-INF:PART-TARGET={part_target:.5}\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.5}\n\
         #EXT-X-MEDIA-SEQUENCE:{first}\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{INIT_SEGMENT}\"\n",
        playlist.target_duration,
        part_target * 3.0
    ));
    let with_parts_from = playlist.done.len().saturating_sub(SEGMENTS_WITH_PARTS);
    for (index, segment) in playlist.done.iter().enumerate() {
        text.push_str(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n",
            date_time(segment.program_date_time)
        ));
        if index >= with_parts_from {
            write_parts(&mut text, &segment.parts);
        }
        text.push_str(&format!(
            "#EXTINF:{:.5},\n{}\n",
            segment.duration,
            segment_name(segment.msn)
        ));
    }
    if let Some(current) = playlist.current {
        if !current.parts.is_empty() {
            text.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:{}\n",
                date_time(current.program_date_time)
            ));
            write_parts(&mut text, &current.parts);
        }
        text.push_str(&format!(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"segment-{:06}.{}.m4s\"\n",
            current.msn,
            current.parts.len()
        ));
    }
    if playlist.ended {
        text.push_str("#EXT-X-ENDLIST\n");
    }
    text
}

fn write_parts(text: &mut String, parts: &[PartEntry]) {
    for part in parts {
        text.push_str(&format!(
            "#EXT-X-PART:DURATION={:.5},URI=\"{}\"",
            part.duration, part.uri
        ));
        if part.independent {
            text.push_str(",INDEPENDENT=YES");
        }
        text.push('\n');
    }
}

fn date_time(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(msn: u64, parts: usize) -> SegmentEntry {
        SegmentEntry {
            msn,
            duration: 0.5 * parts as f64,
            program_date_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + msn),
            parts: (0..parts)
                .map(|index| PartEntry {
                    duration: 0.5,
                    independent: index == 0,
                    uri: format!("segment-{msn:06}.{index}.m4s"),
                })
                .collect(),
        }
    }

    #[test]
    fn the_playlist_lists_recent_parts_and_hints_at_the_next() {
        let done: VecDeque<SegmentEntry> = (4..8).map(|msn| segment(msn, 4)).collect();
        let current = segment(8, 1);
        let text = media_playlist(&MediaPlaylist {
            target_duration: 2,
            part_target: 0.5,
            done: &done,
            current: Some(&current),
            ended: false,
        });
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:4\n"), "{text}");
        assert!(
            text.contains("#EXT-X-PART-INF:PART-TARGET=0.50000\n"),
            "{text}"
        );
        assert!(
            text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.50000\n"),
            "{text}"
        );
        // Parts of the last two whole segments and of the current one; none older.
        assert!(!text.contains("segment-000005.0.m4s"), "{text}");
        assert!(text.contains(
            "#EXT-X-PART:DURATION=0.50000,URI=\"segment-000006.0.m4s\",INDEPENDENT=YES\n"
        ));
        assert!(text.contains("#EXT-X-PART:DURATION=0.50000,URI=\"segment-000007.3.m4s\"\n"));
        assert!(text.contains("segment-000008.0.m4s"), "{text}");
        assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"segment-000008.1.m4s\"\n"));
        assert_eq!(text.matches("#EXTINF:2.00000,").count(), 4, "{text}");
        assert!(
            text.contains("#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:04.000Z\n"),
            "{text}"
        );

        let ended = media_playlist(&MediaPlaylist {
            target_duration: 2,
            part_target: 0.5,
            done: &done,
            current: None,
            ended: true,
        });
        assert!(
            ended.ends_with("segment-000007.m4s\n#EXT-X-ENDLIST\n"),
            "{ended}"
        );
        assert!(!ended.contains("PRELOAD-HINT"), "{ended}");
    }
}
