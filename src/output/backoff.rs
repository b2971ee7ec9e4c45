//! Reconnect timing: exponential backoff with jitter, as a plain state machine.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectSettings {
    pub first_delay: Duration,
    /// Each delay is the previous one times this.
    pub growth: f64,
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row; `None` retries for ever.
    pub max_retries: Option<u32>,
    /// Each delay is moved randomly by up to this share (0.2 = plus or minus 20%), so many
    /// encoders that lost the same server do not come back at the same instant.
    pub jitter: f64,
}

impl Default for ReconnectSettings {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(2),
            growth: 2.0,
            max_delay: Duration::from_secs(60),
            max_retries: Some(20),
            jitter: 0.2,
        }
    }
}

pub struct Backoff {
    settings: ReconnectSettings,
    failures: u32,
    random_state: u64,
}

impl Backoff {
    pub fn new(settings: ReconnectSettings, seed: u64) -> Self {
        // splitmix64 spreads nearby seeds (1, 2, a pid) over the whole state space; raw small
        // seeds would give xorshift tiny, nearly equal first values.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self {
            settings,
            failures: 0,
            random_state: (z ^ (z >> 31)) | 1,
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A connection worked: the next failure starts from the first delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Records a failure and returns how long to wait before the next attempt, or `None`
    /// once the retries are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self
            .settings
            .max_retries
            .is_some_and(|max| self.failures >= max)
        {
            return None;
        }
        let exponent = i32::try_from(self.failures).unwrap_or(i32::MAX);
        self.failures += 1;
        let base = self.settings.first_delay.as_secs_f64() * self.settings.growth.powi(exponent);
        let capped = base.min(self.settings.max_delay.as_secs_f64());
        let spread = (self.random_unit() * 2.0 - 1.0) * self.settings.jitter;
        Some(Duration::from_secs_f64((capped * (1.0 + spread)).max(0.0)))
    }

    /// xorshift64: uniform enough for spreading retries; no need for a crate.
    fn random_unit(&mut self) -> f64 {
        let mut x = self.random_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random_state = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_within_the_jitter() {
        let settings = ReconnectSettings {
            first_delay: Duration::from_secs(1),
            growth: 2.0,
            max_delay: Duration::from_secs(10),
            max_retries: None,
            jitter: 0.2,
        };
        let mut backoff = Backoff::new(settings, 42);
        let expected = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0];
        for base in expected {
            let delay = backoff.next_delay().unwrap().as_secs_f64();
            assert!(
                (base * 0.8..=base * 1.2).contains(&delay),
                "{delay} not within 20% of {base}"
            );
        }
    }

    #[test]
    fn jitter_spreads_retries() {
        let mut a = Backoff::new(ReconnectSettings::default(), 1);
        let mut b = Backoff::new(ReconnectSettings::default(), 2);
        assert_ne!(a.next_delay(), b.next_delay());
    }

    #[test]
    fn gives_up_after_max_retries_and_reset_starts_over() {
        let settings = ReconnectSettings {
            max_retries: Some(2),
            jitter: 0.0,
            ..ReconnectSettings::default()
        };
        let mut backoff = Backoff::new(settings, 7);
        assert_eq!(backoff.next_delay(), Some(Duration::from_secs(2)));
        assert_eq!(backoff.next_delay(), Some(Duration::from_secs(4)));
        assert_eq!(backoff.next_delay(), None);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Some(Duration::from_secs(2)));
    }
}
