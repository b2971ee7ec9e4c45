//! The render clock: frame deadlines computed from the start time and an exact frame rate, so
//! the clock never drifts, and the rule for when a frame counts as lagged. Time is passed in,
//! so the logic is tested without sleeping.

use crate::scene::FrameRate;
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
