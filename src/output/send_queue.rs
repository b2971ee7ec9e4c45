//! A stream output's send queue and its drop policy, without I/O: time is passed in, so tests
//! drive it with a manual clock.
//!
//! Encoders push packets without ever blocking; the output's writer thread pops them. When the
//! oldest packet has waited longer than the threshold (the link is slower than the stream),
//! the queue drops video that no other frame needs first (non-reference frames: H.264 slices
//! with nal_ref_idc 0, HEVC sub-layer non-reference slices; AV1 has none it can tell), then all
//! video but keyframes, and the rest of a group of pictures it has cut into. Audio and keyframes are never dropped for congestion,
//! so what the receiver gets always decodes. While disconnected, only what follows the latest
//! keyframe is kept, so a reconnect resumes on a keyframe with current pictures.

use crate::encode::{EncodedPacket, StreamKind, VideoCodec};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueSettings {
    /// Queue duration (age of the oldest packet) above which frames are dropped.
    pub drop_threshold: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            drop_threshold: Duration::from_millis(700),
        }
    }
}

struct Queued {
    packet: Arc<EncodedPacket>,
    pushed_at: Instant,
    kind: StreamKind,
    keyframe: bool,
    disposable: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounters {
    /// Video frames dropped for congestion or while disconnected.
    pub dropped_frames: u64,
    /// Audio packets discarded while disconnected (never for congestion).
    pub dropped_audio: u64,
}

pub struct SendQueue {
    video_codec: VideoCodec,
    settings: QueueSettings,
    items: VecDeque<Queued>,
    /// After dropping into a group of pictures, the rest of it cannot decode: drop incoming
    /// video until the next keyframe.
    waiting_for_keyframe: bool,
    connected: bool,
    counters: QueueCounters,
}

impl SendQueue {
    pub fn new(settings: QueueSettings) -> Self {
        Self {
            video_codec: VideoCodec::H264,
            settings,
            items: VecDeque::new(),
            waiting_for_keyframe: false,
            connected: false,
            counters: QueueCounters::default(),
        }
    }

    /// The queue carries `codec` video (H.264 unless told), which says which frames no other
    /// frame needs.
    pub fn for_video(mut self, codec: VideoCodec) -> Self {
        self.video_codec = codec;
        self
    }

    pub fn counters(&self) -> QueueCounters {
        self.counters
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How long the oldest packet has waited.
    pub fn duration(&self, now: Instant) -> Duration {
        self.items.front().map_or(Duration::ZERO, |oldest| {
            now.saturating_duration_since(oldest.pushed_at)
        })
    }

    /// Queue duration as a share of the drop threshold: 0 is an idle link, 1 is dropping.
    pub fn congestion(&self, now: Instant) -> f64 {
        self.duration(now).as_secs_f64() / self.settings.drop_threshold.as_secs_f64().max(1e-9)
    }

    pub fn push(&mut self, packet: Arc<EncodedPacket>, now: Instant) {
        let kind = packet.kind;
        let keyframe = kind == StreamKind::Video && packet.is_keyframe();
        let disposable = kind == StreamKind::Video
            && !keyframe
            && is_non_reference(self.video_codec, packet.packet.data().unwrap_or(&[]));
        if kind == StreamKind::Video {
            if keyframe {
                self.waiting_for_keyframe = false;
            } else if self.waiting_for_keyframe {
                self.counters.dropped_frames += 1;
                return;
            }
        }
        self.items.push_back(Queued {
            packet,
            pushed_at: now,
            kind,
            keyframe,
            disposable,
        });
        if self.connected {
            self.relieve_congestion(now);
        } else if keyframe {
            self.keep_from_latest_keyframe();
        }
    }

    pub fn pop(&mut self) -> Option<Arc<EncodedPacket>> {
        self.items.pop_front().map(|queued| queued.packet)
    }

    /// The writer lost its connection: from now on keep only what a reconnect can start with.
    pub fn set_disconnected(&mut self) {
        self.connected = false;
        self.keep_from_latest_keyframe();
    }

    /// The writer (re)connected: start from the latest keyframe and send from there.
    pub fn set_connected(&mut self) {
        self.keep_from_latest_keyframe();
        self.connected = true;
    }

    fn relieve_congestion(&mut self, now: Instant) {
        if self.duration(now) <= self.settings.drop_threshold {
            return;
        }
        // First the frames nothing refers to.
        let before = self.items.len();
        self.items.retain(|queued| !queued.disposable);
        self.counters.dropped_frames += (before - self.items.len()) as u64;
        if self.duration(now) <= self.settings.drop_threshold {
            return;
        }
        // Then every queued video frame but keyframes. If the newest video is not a keyframe,
        // its group of pictures is now broken: drop its remaining frames as they come, until
        // the next keyframe.
        let newest_video_is_keyframe = self
            .items
            .iter()
            .rev()
            .find(|queued| queued.kind == StreamKind::Video)
            .is_some_and(|queued| queued.keyframe);
        let before = self.items.len();
        self.items
            .retain(|queued| queued.kind != StreamKind::Video || queued.keyframe);
        let dropped = (before - self.items.len()) as u64;
        self.counters.dropped_frames += dropped;
        if dropped > 0 && !newest_video_is_keyframe {
            self.waiting_for_keyframe = true;
        }
    }

    /// Drops everything before the latest queued keyframe, and audio that is older than it,
    /// so sending starts with a keyframe and sound that belongs with it.
    fn keep_from_latest_keyframe(&mut self) {
        let Some(position) = self.items.iter().rposition(|queued| queued.keyframe) else {
            // No keyframe yet: nothing queued can be the start of a stream.
            let video = self
                .items
                .iter()
                .filter(|q| q.kind == StreamKind::Video)
                .count() as u64;
            self.counters.dropped_frames += video;
            self.counters.dropped_audio += self.items.len() as u64 - video;
            self.items.clear();
            // Pictures that come before the next keyframe cannot start a stream either.
            self.waiting_for_keyframe = true;
            return;
        };
        for queued in self.items.drain(..position) {
            match queued.kind {
                StreamKind::Video => self.counters.dropped_frames += 1,
                StreamKind::Audio => self.counters.dropped_audio += 1,
            }
        }
        let start = self
            .items
            .front()
            .map(|keyframe| presentation_seconds(&keyframe.packet));
        if let Some(start) = start {
            let before = self.items.len();
            self.items.retain(|queued| {
                queued.kind == StreamKind::Video || presentation_seconds(&queued.packet) >= start
            });
            self.counters.dropped_audio += (before - self.items.len()) as u64;
        }
    }
}

/// A packet's decode time in seconds.
pub(crate) fn presentation_seconds(packet: &EncodedPacket) -> f64 {
    let ts = packet.packet.dts().or(packet.packet.pts()).unwrap_or(0);
    ts as f64 * f64::from(packet.time_base)
}

/// Whether an access unit holds only pictures no other picture references, so dropping it
/// harms nothing else. H.264 (Annex B or length-prefixed): every slice has nal_ref_idc 0.
/// HEVC: every slice is a sub-layer non-reference one (TRAIL_N, TSA_N, STSA_N, RADL_N,
/// RASL_N); Tally's encoders make no temporal sub-layers, so nothing refers to those. AV1:
/// `false`, as telling needs the frame header parsed; its congestion drops whole groups.
pub fn is_non_reference(codec: VideoCodec, data: &[u8]) -> bool {
    let slice_is_referenced = match codec {
        VideoCodec::H264 => |header: u8| {
            let nal_type = header & 0x1f;
            (1..=5)
                .contains(&nal_type)
                .then_some((header >> 5) & 0x3 != 0)
        },
        VideoCodec::Hevc => |header: u8| {
            let nal_type = (header >> 1) & 0x3f;
            // VCL NAL units are types 0-31; the even ones up to 14 are sub-layer non-reference.
            (nal_type <= 31).then_some(nal_type > 14 || nal_type % 2 == 1)
        },
        VideoCodec::Av1 => return false,
    };
    let mut saw_slice = false;
    for header in nal_headers(data) {
        match slice_is_referenced(header) {
            Some(true) => return false,
            Some(false) => saw_slice = true,
            None => {}
        }
    }
    saw_slice
}

/// The first byte of each NAL unit in an access unit.
fn nal_headers(data: &[u8]) -> Vec<u8> {
    let annex_b = data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1]);
    let mut headers = Vec::new();
    if annex_b {
        let mut i = 0;
        while i + 3 <= data.len() {
            if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
                if let Some(&header) = data.get(i + 3) {
                    headers.push(header);
                }
                i += 3;
            } else {
                i += 1;
            }
        }
    } else {
        let mut i = 0;
        while i + 4 < data.len() {
            let length =
                u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
            headers.push(data[i + 4]);
            i += 4 + length;
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffmpeg_next as ffmpeg;

    /// A fake H.264 access unit: Annex B, one slice NAL of the given type and ref_idc.
    fn video(dts: i64, keyframe: bool, referenced: bool) -> Arc<EncodedPacket> {
        let nal_type: u8 = if keyframe { 5 } else { 1 };
        let header = nal_type | if referenced || keyframe { 0x60 } else { 0 };
        let mut packet = ffmpeg::Packet::copy(&[0, 0, 0, 1, header, 0x88, 0x84]);
        packet.set_dts(Some(dts));
        packet.set_pts(Some(dts));
        if keyframe {
            packet.set_flags(ffmpeg::packet::Flags::KEY);
        }
        Arc::new(EncodedPacket {
            kind: StreamKind::Video,
            packet,
            time_base: ffmpeg::Rational::new(1, 30),
        })
    }

    fn audio(dts: i64) -> Arc<EncodedPacket> {
        let mut packet = ffmpeg::Packet::copy(&[0x21, 0x10]);
        packet.set_dts(Some(dts));
        packet.set_pts(Some(dts));
        packet.set_flags(ffmpeg::packet::Flags::KEY);
        Arc::new(EncodedPacket {
            kind: StreamKind::Audio,
            packet,
            time_base: ffmpeg::Rational::new(1, 48000),
        })
    }

    fn drain_kinds(queue: &mut SendQueue) -> Vec<(StreamKind, bool)> {
        std::iter::from_fn(|| queue.pop())
            .map(|p| (p.kind, p.is_keyframe()))
            .collect()
    }

    #[test]
    fn recognises_non_reference_slices() {
        let h264 = |data: &[u8]| is_non_reference(VideoCodec::H264, data);
        assert!(h264(&[0, 0, 1, 0x01, 0xaa]));
        assert!(!h264(&[0, 0, 1, 0x41, 0xaa]));
        assert!(!h264(&[0, 0, 0, 1, 0x65, 0xaa]));
        // Length-prefixed: an SEI (not a slice) and a non-reference slice.
        assert!(h264(&[0, 0, 0, 2, 0x06, 0x05, 0, 0, 0, 2, 0x01, 0x9a]));
        assert!(!h264(&[0, 0, 0, 2, 0x06, 0x05]));
        // HEVC: the NAL type is bits 1-6 of the first header byte.
        let hevc = |nal_types: &[u8]| {
            let mut data = Vec::new();
            for nal_type in nal_types {
                data.extend([0, 0, 0, 1, nal_type << 1, 0x01, 0xaf]);
            }
            is_non_reference(VideoCodec::Hevc, &data)
        };
        assert!(hevc(&[0]), "TRAIL_N");
        assert!(hevc(&[39, 8]), "a prefix SEI and RASL_N");
        assert!(!hevc(&[1]), "TRAIL_R");
        assert!(!hevc(&[19]), "IDR_W_RADL");
        assert!(!hevc(&[0, 1]), "one referenced slice is enough");
        assert!(!hevc(&[32, 33, 34]), "parameter sets, no slice");
        assert!(!is_non_reference(VideoCodec::Av1, &[0x12, 0x00]));
    }

    #[test]
    fn a_fast_link_drops_nothing() {
        let start = Instant::now();
        let mut queue = SendQueue::new(QueueSettings::default());
        queue.set_connected();
        for i in 0..90 {
            let now = start + Duration::from_millis(33 * i);
            queue.push(video(i as i64, i % 30 == 0, i % 2 == 0), now);
            queue.push(audio(i as i64 * 1600), now);
            while queue.pop().is_some() {}
        }
        assert_eq!(queue.counters(), QueueCounters::default());
    }

    #[test]
    fn congestion_drops_non_reference_frames_first_then_to_the_next_keyframe() {
        let start = Instant::now();
        let mut queue = SendQueue::new(QueueSettings {
            drop_threshold: Duration::from_millis(500),
        });
        queue.set_connected();
        // Nothing is popped: the link is stalled. Keyframe every 30 frames; odd frames are
        // non-reference.
        for i in 0..20u64 {
            let now = start + Duration::from_millis(33 * i);
            queue.push(video(i as i64, i == 0, i % 2 == 0), now);
            queue.push(audio(i as i64 * 1600), now);
        }
        // At 627 ms the 500 ms threshold was crossed: the non-reference frames went first,
        // then the reference frames after the keyframe (no later keyframe is queued).
        let left = drain_kinds(&mut queue);
        let video_left: Vec<bool> = left
            .iter()
            .filter(|(k, _)| *k == StreamKind::Video)
            .map(|(_, key)| *key)
            .collect();
        assert!(
            video_left.iter().all(|key| *key),
            "only keyframes survive: {video_left:?}"
        );
        assert_eq!(
            left.iter().filter(|(k, _)| *k == StreamKind::Audio).count(),
            20,
            "audio is never dropped"
        );
        assert!(queue.counters().dropped_frames >= 10);
        assert_eq!(queue.counters().dropped_audio, 0);

        // Until the next keyframe arrives, new video is dropped too; then sending resumes.
        let later = start + Duration::from_millis(700);
        queue.push(video(21, false, true), later);
        assert!(queue.is_empty());
        queue.push(video(30, true, true), later);
        queue.push(video(31, false, true), later);
        assert_eq!(
            drain_kinds(&mut queue),
            vec![(StreamKind::Video, true), (StreamKind::Video, false)]
        );
    }

    #[test]
    fn while_disconnected_only_the_latest_group_of_pictures_is_kept() {
        let start = Instant::now();
        let mut queue = SendQueue::new(QueueSettings::default());
        queue.set_connected();
        queue.set_disconnected();
        for i in 0..70u64 {
            let now = start + Duration::from_millis(33 * i);
            queue.push(video(i as i64, i % 30 == 0, true), now);
            queue.push(audio(i as i64 * 1600), now);
        }
        queue.set_connected();
        let first = queue.pop().unwrap();
        assert!(first.is_keyframe());
        assert_eq!(first.packet.dts(), Some(60));
        // The sound kept starts no earlier than that keyframe (60 frames = 96000 samples).
        let earliest_audio = std::iter::from_fn(|| queue.pop())
            .filter(|p| p.kind == StreamKind::Audio)
            .filter_map(|p| p.packet.dts())
            .min();
        assert_eq!(earliest_audio, Some(96000));
        assert_eq!(queue.counters().dropped_frames, 60);
    }

    #[test]
    fn a_connection_with_no_keyframe_queued_starts_at_the_next_one() {
        let start = Instant::now();
        let mut queue = SendQueue::new(QueueSettings::default());
        // Pictures from the middle of a group: a stream cannot start with them.
        queue.push(video(5, false, true), start);
        queue.set_connected();
        queue.push(video(6, false, true), start);
        queue.push(audio(6 * 1600), start);
        queue.push(video(7, true, true), start);
        queue.push(video(8, false, true), start);
        assert_eq!(
            drain_kinds(&mut queue),
            vec![
                (StreamKind::Audio, true),
                (StreamKind::Video, true),
                (StreamKind::Video, false)
            ]
        );
        assert_eq!(queue.counters().dropped_frames, 2);
    }
}
