//! Time on the engine's clock: exact frame rates, the tick a source is asked for its picture
//! at, and whether the render waits for sources (deterministic) or never does (live).

use std::fmt;
use std::time::Duration;

/// A frame rate as an exact fraction, so 30000/1001 never drifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    pub const fn new(num: u32, den: u32) -> Self {
        Self { num, den }
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }

    /// When frame `index` starts, in nanoseconds from frame 0, computed exactly from the fraction.
    pub fn frame_start_nanos(self, index: u64) -> u64 {
        let nanos = u128::from(index) * 1_000_000_000 * u128::from(self.den) / u128::from(self.num);
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    /// How many whole frames fit in `duration` (30 s at 30 fps is 900; at 30000/1001 it is 899).
    pub fn frames_in(self, duration: std::time::Duration) -> u64 {
        let frames =
            duration.as_nanos() * u128::from(self.num) / (u128::from(self.den) * 1_000_000_000);
        u64::try_from(frames).unwrap_or(u64::MAX)
    }

    /// Index of the first audio sample that belongs to frame `index` at `sample_rate`.
    pub fn first_sample_of_frame(self, index: u64, sample_rate: u32) -> u64 {
        let samples = u128::from(index) * u128::from(sample_rate) * u128::from(self.den)
            / u128::from(self.num);
        u64::try_from(samples).unwrap_or(u64::MAX)
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

impl serde::Serialize for FrameRate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.den == 1 {
            serializer.serialize_u32(self.num)
        } else {
            serializer.serialize_str(&self.to_string())
        }
    }
}

/// How the render thread treats sources that produce frames over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Live: take whatever is ready now; never wait.
    RealTime,
    /// Rendering faster or slower than real time: wait for each source's exact frame.
    Deterministic,
}

/// Where the render clock stands when a source is asked for its picture.
#[derive(Debug, Clone, Copy)]
pub struct Tick {
    /// Canvas frame number since the engine started.
    pub index: u64,
    /// Canvas time of this frame since the engine started.
    pub time: Duration,
    pub pacing: Pacing,
}
