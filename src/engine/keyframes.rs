//! Which frames the encoder must make keyframes: an output that joins a running encode starts
//! on one, and one that leaves ends just before one, so each output's first and last groups of
//! pictures are whole. Pure bookkeeping, tested on its own.

use std::collections::BTreeSet;

/// The frames wanted as keyframes and not yet met.
#[derive(Debug, Default)]
pub(super) struct KeyframeSchedule {
    wanted: BTreeSet<u64>,
}

impl KeyframeSchedule {
    /// Frame `frame` must be a keyframe (or, if it never reaches the encoder, the first one
    /// after it that does).
    pub(super) fn want(&mut self, frame: u64) {
        self.wanted.insert(frame);
    }

    /// Whether frame `index` is to be made a keyframe: some wanted frame is at or before it.
    pub(super) fn due(&self, index: u64) -> bool {
        self.wanted.first().is_some_and(|&wanted| index >= wanted)
    }

    /// Frame `index` reached the encoder as a keyframe: every want at or before it is met. A
    /// frame skipped on its way (a full queue) meets nothing, so the next one sent takes it.
    pub(super) fn sent_keyframe(&mut self, index: u64) {
        self.wanted.retain(|&wanted| wanted > index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wanted_frame_is_due_from_itself_on_until_one_is_sent() {
        let mut schedule = KeyframeSchedule::default();
        assert!(!schedule.due(0));
        schedule.want(10);
        assert!(!schedule.due(9));
        assert!(schedule.due(10));
        // Frame 10 was skipped (the encoder's queue was full): frame 11 takes its place.
        assert!(schedule.due(11));
        schedule.sent_keyframe(11);
        assert!(!schedule.due(12));
    }

    #[test]
    fn one_keyframe_meets_every_want_at_or_before_it_and_none_after() {
        let mut schedule = KeyframeSchedule::default();
        schedule.want(30);
        schedule.want(5);
        schedule.want(6);
        assert!(schedule.due(5));
        schedule.sent_keyframe(6);
        assert!(!schedule.due(29), "5 and 6 are met by one keyframe");
        assert!(schedule.due(30), "30 is still wanted");
        schedule.sent_keyframe(30);
        assert!(!schedule.due(1000));
    }
}
