//! Which packets of a shared encode belong to one output.
//!
//! Recording and streaming share one pair of encoders, and either can start or stop while the
//! other runs. An output that joins in mid-show starts at the keyframe the engine asks the
//! encoder for at that frame, with sound from the same instant; one that leaves stops just
//! before the keyframe asked for at its stop frame, so its last group of pictures is whole
//! (closed GOPs: nothing before a keyframe in decode order is shown after it). An encoder that
//! cannot be asked for keyframes (SVT-AV1 in FFmpeg 5.1) is joined at its own next keyframe,
//! and left at the stop frame itself. Pure: packets' timestamps in, verdicts out.

use crate::encode::StreamKind;

/// A point of the show: a canvas frame and the first audio sample that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShowInstant {
    pub frame: i64,
    pub sample: i64,
}

/// What to do with one packet for one output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Deliver,
    Skip,
    /// This stream is over for the output (the packet itself is not part of it).
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Open,
    Ended,
}

#[derive(Debug, Clone)]
pub struct OutputWindow {
    start: Option<ShowInstant>,
    end: Option<ShowInstant>,
    video: Phase,
    audio: Phase,
    /// Audio packets taken from before the start: an AAC packet's first samples are decoded
    /// with the help of the previous packet's, as a fresh encoder's priming packet provides.
    audio_lead: i64,
    /// Pictures end at the first keyframe at or after the end (the keyframe the engine asks
    /// for there); otherwise at the end frame itself, for an encoder that cannot be asked for
    /// keyframes and shows every picture in the order it codes it (SVT-AV1's low-delay
    /// structure), where any frame ends a whole sequence.
    ends_on_keyframe: bool,
}

impl OutputWindow {
    /// An output opened with the encoders: every packet from their first.
    pub fn from_first_packet() -> Self {
        Self {
            start: None,
            end: None,
            video: Phase::Open,
            audio: Phase::Open,
            audio_lead: 0,
            ends_on_keyframe: true,
        }
    }

    /// An output joining encoders that are already running, at `start`. `audio_lead` is the
    /// audio encoder's frame size.
    pub fn joining_at(start: ShowInstant, audio_lead: i64) -> Self {
        Self {
            start: Some(start),
            end: None,
            video: Phase::Waiting,
            audio: Phase::Waiting,
            audio_lead,
            ends_on_keyframe: true,
        }
    }

    /// Pictures end at the end frame, keyframe or not (see `ends_on_keyframe`).
    pub fn ending_at_any_frame(mut self) -> Self {
        self.ends_on_keyframe = false;
        self
    }

    /// The output stops at `end`: its pictures end before that frame's keyframe, its sound
    /// before that frame's first sample. False (and nothing changes) if it was already told
    /// where to stop.
    pub fn end_at(&mut self, end: ShowInstant) -> bool {
        let first = self.end.is_none();
        if first {
            self.end = Some(end);
        }
        first
    }

    /// Whether the output has been told to stop.
    pub fn is_stopping(&self) -> bool {
        self.end.is_some()
    }

    pub fn judge(&mut self, kind: StreamKind, pts: i64, keyframe: bool) -> Verdict {
        let (start, end) = (self.start, self.end);
        match kind {
            StreamKind::Video => {
                let ends_here =
                    (keyframe || !self.ends_on_keyframe) && end.is_some_and(|end| pts >= end.frame);
                let starts_here = keyframe && start.is_none_or(|start| pts >= start.frame);
                step(&mut self.video, ends_here, starts_here)
            }
            StreamKind::Audio => {
                let ends_here = end.is_some_and(|end| pts >= end.sample);
                let starts_here = start.is_none_or(|start| pts >= start.sample - self.audio_lead);
                step(&mut self.audio, ends_here, starts_here)
            }
        }
    }

    /// The encoder of `kind` has finished: true when the output still had that stream open
    /// and must be told it is over.
    pub fn encoder_ended(&mut self, kind: StreamKind) -> bool {
        let phase = match kind {
            StreamKind::Video => &mut self.video,
            StreamKind::Audio => &mut self.audio,
        };
        std::mem::replace(phase, Phase::Ended) != Phase::Ended
    }

    pub fn is_over(&self) -> bool {
        self.video == Phase::Ended && self.audio == Phase::Ended
    }
}

fn step(phase: &mut Phase, ends_here: bool, starts_here: bool) -> Verdict {
    match *phase {
        Phase::Ended => Verdict::Skip,
        _ if ends_here => {
            *phase = Phase::Ended;
            Verdict::End
        }
        Phase::Open => Verdict::Deliver,
        Phase::Waiting if starts_here => {
            *phase = Phase::Open;
            Verdict::Deliver
        }
        Phase::Waiting => Verdict::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StreamKind::{Audio, Video};

    fn at(frame: i64) -> ShowInstant {
        // 30 fps, 48 kHz.
        ShowInstant {
            frame,
            sample: frame * 1600,
        }
    }

    #[test]
    fn a_joining_output_starts_at_the_first_keyframe_from_its_start() {
        let mut window = OutputWindow::joining_at(at(100), 1024);
        // A keyframe from before the join, and pictures after it, are not this output's.
        assert_eq!(window.judge(Video, 90, true), Verdict::Skip);
        assert_eq!(window.judge(Video, 100, false), Verdict::Skip);
        // Sound from one AAC frame before the start on is.
        assert_eq!(window.judge(Audio, 160_000 - 1025, false), Verdict::Skip);
        assert_eq!(window.judge(Audio, 160_000 - 1024, false), Verdict::Deliver);
        assert_eq!(window.judge(Video, 101, true), Verdict::Deliver);
        // From then on everything, B-frames shown before the keyframe's successors included.
        assert_eq!(window.judge(Video, 104, false), Verdict::Deliver);
        assert_eq!(window.judge(Video, 102, false), Verdict::Deliver);
        assert!(!window.is_over());
    }

    #[test]
    fn without_keyframes_on_request_pictures_end_at_the_end_frame() {
        let mut window = OutputWindow::from_first_packet().ending_at_any_frame();
        assert_eq!(window.judge(Video, 0, true), Verdict::Deliver);
        window.end_at(at(60));
        assert_eq!(window.judge(Video, 59, false), Verdict::Deliver);
        assert_eq!(window.judge(Video, 60, false), Verdict::End);
        assert_eq!(window.judge(Video, 61, false), Verdict::Skip);
    }

    #[test]
    fn a_stopping_output_ends_before_the_keyframe_at_its_stop() {
        let mut window = OutputWindow::from_first_packet();
        assert_eq!(window.judge(Video, 0, true), Verdict::Deliver);
        window.end_at(at(60));
        // Pictures before the stop's keyframe, in decode order, still belong to the output:
        // a P-frame shown at 59 and the B-frames before it.
        assert_eq!(window.judge(Video, 59, false), Verdict::Deliver);
        assert_eq!(window.judge(Video, 58, false), Verdict::Deliver);
        assert_eq!(window.judge(Audio, 60 * 1600 - 1, false), Verdict::Deliver);
        assert_eq!(window.judge(Video, 60, true), Verdict::End);
        assert_eq!(window.judge(Video, 61, false), Verdict::Skip);
        assert!(!window.is_over(), "its sound has not reached the stop yet");
        assert_eq!(window.judge(Audio, 60 * 1600, false), Verdict::End);
        assert_eq!(window.judge(Audio, 60 * 1600 + 1024, false), Verdict::Skip);
        assert!(window.is_over());
        // Ended streams are not ended twice when the encoders finish.
        assert!(!window.encoder_ended(Video));
        assert!(!window.encoder_ended(Audio));
    }

    #[test]
    fn an_output_stopped_before_its_first_keyframe_never_opens() {
        let mut window = OutputWindow::joining_at(at(100), 1024);
        window.end_at(at(101));
        assert_eq!(window.judge(Video, 101, true), Verdict::End);
        assert_eq!(window.judge(Audio, 101 * 1600, false), Verdict::End);
        assert!(window.is_over());
    }

    #[test]
    fn the_encoders_finishing_ends_what_is_still_open() {
        let mut window = OutputWindow::from_first_packet();
        assert_eq!(window.judge(Video, 0, true), Verdict::Deliver);
        assert!(window.encoder_ended(Video));
        assert!(!window.is_over());
        assert!(window.encoder_ended(Audio));
        assert!(window.is_over());
    }
}
