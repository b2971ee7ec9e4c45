//! The one sound format every stage after the sources uses.

/// Interleaved stereo, 48 kHz, f32.
pub const AUDIO_CHANNELS: usize = 2;
pub const SAMPLE_RATE: u32 = 48_000;
