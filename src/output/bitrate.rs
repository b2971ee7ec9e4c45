//! Adaptive bitrate: instead of dropping frames on a slow link, ask the encoder for fewer bits
//! (the link's measured throughput, with headroom), and climb back gradually once the link has
//! kept up for a while. A state machine with time passed in.

use std::time::{Duration, Instant};

/// Queue congestion at or above which the bitrate comes down.
const CONGESTED: f64 = 0.5;
/// Queue congestion below which the link counts as keeping up.
const CALM: f64 = 0.1;
const STEP_DOWN_EVERY: Duration = Duration::from_secs(1);
const CALM_BEFORE_RISING: Duration = Duration::from_secs(5);
const STEP_UP_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct AdaptiveBitrate {
    configured_kbps: u32,
    floor_kbps: u32,
    current_kbps: u32,
    last_change: Option<Instant>,
    calm_since: Option<Instant>,
}

impl AdaptiveBitrate {
    pub fn new(configured_kbps: u32) -> Self {
        Self {
            configured_kbps,
            floor_kbps: (configured_kbps / 10).max(200).min(configured_kbps),
            current_kbps: configured_kbps,
            last_change: None,
            calm_since: None,
        }
    }

    pub fn current_kbps(&self) -> u32 {
        self.current_kbps
    }

    /// Takes the output's queue congestion and the throughput it achieved over the last
    /// second; returns the bitrate the encoder should use now.
    pub fn update(&mut self, now: Instant, congestion: f64, throughput_kbps: f64) -> u32 {
        let since_change = self
            .last_change
            .map_or(Duration::MAX, |at| now.saturating_duration_since(at));
        if congestion >= CONGESTED {
            self.calm_since = None;
            if since_change >= STEP_DOWN_EVERY {
                // What the link carried, less headroom for audio and for the queue to drain.
                let fits = (throughput_kbps * 0.85) as u32;
                let target = fits.min(self.current_kbps * 4 / 5).max(self.floor_kbps);
                if target < self.current_kbps {
                    self.current_kbps = target;
                    self.last_change = Some(now);
                }
            }
        } else if congestion < CALM {
            let calm_since = *self.calm_since.get_or_insert(now);
            let calm_for = now.saturating_duration_since(calm_since);
            if self.current_kbps < self.configured_kbps
                && calm_for >= CALM_BEFORE_RISING
                && since_change >= STEP_UP_EVERY
            {
                let raised = (self.current_kbps + (self.current_kbps / 10).max(50))
                    .min(self.configured_kbps);
                self.current_kbps = raised;
                self.last_change = Some(now);
            }
        } else {
            self.calm_since = None;
        }
        self.current_kbps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comes_down_to_the_throughput_and_climbs_back_when_calm() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut bitrate = AdaptiveBitrate::new(2500);
        assert_eq!(bitrate.update(at(0), 0.0, 2600.0), 2500);
        // Congested on a 600 kbps link: down to 85% of it, in steps at most 1 s apart.
        assert_eq!(bitrate.update(at(1000), 1.2, 600.0), 510);
        assert_eq!(
            bitrate.update(at(1500), 1.5, 600.0),
            510,
            "no second step within a second"
        );
        assert_eq!(bitrate.update(at(2500), 0.8, 500.0), 408);
        // Never below the floor.
        assert_eq!(bitrate.update(at(4000), 2.0, 50.0), 250);
        // Calm for 5 s, then up 10% (at least 50 kbps) every 2 s, back to the setting.
        assert_eq!(bitrate.update(at(5000), 0.0, 300.0), 250);
        assert_eq!(
            bitrate.update(at(9000), 0.0, 300.0),
            250,
            "not calm for 5 s yet"
        );
        assert_eq!(bitrate.update(at(10_000), 0.0, 300.0), 300);
        assert_eq!(
            bitrate.update(at(11_000), 0.0, 300.0),
            300,
            "2 s between steps"
        );
        assert_eq!(bitrate.update(at(12_000), 0.0, 300.0), 350);
        let mut now = 12_000;
        while bitrate.current_kbps() < 2500 {
            now += 2000;
            bitrate.update(at(now), 0.0, 3000.0);
        }
        assert_eq!(bitrate.current_kbps(), 2500);
    }

    #[test]
    fn moderate_congestion_neither_lowers_nor_raises() {
        let start = Instant::now();
        let mut bitrate = AdaptiveBitrate::new(1000);
        bitrate.update(start, 1.0, 500.0);
        let lowered = bitrate.current_kbps();
        for second in 1..20 {
            bitrate.update(start + Duration::from_secs(second), 0.3, 500.0);
        }
        assert_eq!(bitrate.current_kbps(), lowered);
    }
}
