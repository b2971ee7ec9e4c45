//! The render clock: frame deadlines computed from the start time and an exact frame rate, so
//! the clock never drifts, the rule for when a frame counts as lagged, and when a render that
//! has fallen too far behind gives up the frames it missed. Time is passed in, so the logic
//! is tested without sleeping.

use crate::base::FrameRate;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct FrameClock {
    fps: FrameRate,
    start: Instant,
}

/// What the render thread should do before rendering a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickStart {
    /// Early: wait this long, then render.
    WaitFor(Duration),
    /// Within its slot: render now.
    OnTime,
    /// Its whole slot has already passed: render now and count it as lagged.
    Lagged,
}

impl FrameClock {
    pub fn new(fps: FrameRate, start: Instant) -> Self {
        Self { fps, start }
    }

    /// When frame `index` is due: `start + index * period`, computed exactly.
    pub fn deadline(&self, index: u64) -> Instant {
        self.start + Duration::from_nanos(self.fps.frame_start_nanos(index))
    }

    /// The frame whose slot `now` falls in.
    pub fn slot_at(&self, now: Instant) -> u64 {
        self.fps
            .frames_in(now.saturating_duration_since(self.start))
    }

    /// Where a render that should be at frame `index` resumes at `now`: `index` itself while it
    /// is at most `give_up_after` frames behind (it catches up by rendering without waiting),
    /// else the frame whose slot `now` is in, so that a machine that cannot keep up drops
    /// frames instead of falling further and further behind real time.
    pub fn resume_at(&self, index: u64, now: Instant, give_up_after: u64) -> u64 {
        let current = self.slot_at(now);
        if current > index.saturating_add(give_up_after) {
            current
        } else {
            index
        }
    }

    pub fn tick_start(&self, index: u64, now: Instant) -> TickStart {
        let due = self.deadline(index);
        if now < due {
            TickStart::WaitFor(due - now)
        } else if now >= self.deadline(index + 1) {
            TickStart::Lagged
        } else {
            TickStart::OnTime
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_do_not_drift_at_ntsc_rates() {
        let start = Instant::now();
        let clock = FrameClock::new(FrameRate::new(30000, 1001), start);
        // 30000 frames at 29.97 fps last exactly 1001 seconds.
        assert_eq!(clock.deadline(30000) - start, Duration::from_secs(1001));
    }

    #[test]
    fn a_render_more_than_the_allowance_behind_resumes_at_the_current_slot() {
        let start = Instant::now();
        let clock = FrameClock::new(FrameRate::new(30, 1), start);
        let ms = Duration::from_millis;
        assert_eq!(clock.slot_at(start), 0);
        assert_eq!(clock.slot_at(start + ms(1010)), 30);
        // 20 frames behind with an allowance of 30: it catches up by itself.
        assert_eq!(clock.resume_at(10, start + ms(1010), 30), 10);
        assert_eq!(clock.resume_at(0, start + ms(1010), 30), 0);
        // 31 frames behind: skip to now.
        assert_eq!(clock.resume_at(0, start + ms(1040), 30), 31);
        assert_eq!(clock.resume_at(100, start + ms(10_000), 30), 300);
    }

    #[test]
    fn a_frame_is_lagged_only_once_its_slot_has_passed() {
        let start = Instant::now();
        let clock = FrameClock::new(FrameRate::new(30, 1), start);
        let period = Duration::from_nanos(33_333_333);
        assert_eq!(clock.tick_start(1, start), TickStart::WaitFor(period));
        assert_eq!(
            clock.tick_start(1, start + period + Duration::from_millis(5)),
            TickStart::OnTime
        );
        assert_eq!(
            clock.tick_start(1, start + period * 2 + Duration::from_millis(1)),
            TickStart::Lagged
        );
    }
}
