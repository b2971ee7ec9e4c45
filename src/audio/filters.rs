//! Per-source audio filters, applied in order to interleaved stereo at 48 kHz: gain, noise gate,
//! compressor, limiter. Written by hand: each is a few lines of well-known DSP (an envelope and
//! a gain computer), and the crates that offer them bring whole plugin frameworks with them.

use crate::base::{AUDIO_CHANNELS, SAMPLE_RATE};
use crate::scene::AudioFilter;

pub fn db_to_gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

pub fn gain_to_db(gain: f32) -> f32 {
    20.0 * gain.max(1e-10).log10()
}

/// A one-pole smoothing coefficient reaching ~63% of a step in `ms`.
fn coefficient(ms: f32) -> f32 {
    if ms <= 0.0 {
        0.0
    } else {
        (-1.0 / (ms / 1000.0 * SAMPLE_RATE as f32)).exp()
    }
}

/// A filter with its running state.
pub enum FilterState {
    Gain {
        gain: f32,
    },
    NoiseGate {
        open: f32,
        close: f32,
        attack: f32,
        release: f32,
        hold_samples: u32,
        held_for: u32,
        open_now: bool,
        gain: f32,
    },
    Compressor {
        threshold_db: f32,
        ratio: f32,
        attack: f32,
        release: f32,
        makeup: f32,
        /// Peak envelope, linear: following it in dB would let every zero crossing drag it down.
        envelope: f32,
    },
    Limiter {
        threshold: f32,
        release: f32,
        gain: f32,
    },
}

impl FilterState {
    pub fn new(filter: &AudioFilter) -> Self {
        match *filter {
            AudioFilter::Gain { db } => FilterState::Gain {
                gain: db_to_gain(db),
            },
            AudioFilter::NoiseGate {
                open_db,
                close_db,
                attack_ms,
                hold_ms,
                release_ms,
            } => FilterState::NoiseGate {
                open: db_to_gain(open_db),
                close: db_to_gain(close_db),
                attack: coefficient(attack_ms),
                release: coefficient(release_ms),
                hold_samples: (hold_ms / 1000.0 * SAMPLE_RATE as f32) as u32,
                held_for: 0,
                open_now: false,
                gain: 0.0,
            },
            AudioFilter::Compressor {
                threshold_db,
                ratio,
                attack_ms,
                release_ms,
                makeup_db,
            } => FilterState::Compressor {
                threshold_db,
                ratio: ratio.max(1.0),
                attack: coefficient(attack_ms),
                release: coefficient(release_ms),
                makeup: db_to_gain(makeup_db),
                envelope: 0.0,
            },
            AudioFilter::Limiter {
                threshold_db,
                release_ms,
            } => FilterState::Limiter {
                threshold: db_to_gain(threshold_db),
                release: coefficient(release_ms),
                gain: 1.0,
            },
        }
    }

    /// Processes interleaved stereo in place.
    pub fn process(&mut self, samples: &mut [f32]) {
        for frame in samples.chunks_exact_mut(AUDIO_CHANNELS) {
            // Both channels share one gain, so the stereo image does not wander.
            let level = frame.iter().fold(0.0f32, |peak, s| peak.max(s.abs()));
            let gain = match self {
                FilterState::Gain { gain } => *gain,
                FilterState::NoiseGate {
                    open,
                    close,
                    attack,
                    release,
                    hold_samples,
                    held_for,
                    open_now,
                    gain,
                } => {
                    if level >= *open {
                        *open_now = true;
                        *held_for = 0;
                    } else if *open_now && level < *close {
                        *held_for += 1;
                        if *held_for > *hold_samples {
                            *open_now = false;
                        }
                    }
                    let (target, smoothing) = if *open_now {
                        (1.0, *attack)
                    } else {
                        (0.0, *release)
                    };
                    *gain = target + (*gain - target) * smoothing;
                    *gain
                }
                FilterState::Compressor {
                    threshold_db,
                    ratio,
                    attack,
                    release,
                    makeup,
                    envelope,
                } => {
                    let smoothing = if level > *envelope { *attack } else { *release };
                    *envelope = level + (*envelope - level) * smoothing;
                    let over = (gain_to_db(*envelope) - *threshold_db).max(0.0);
                    let reduction_db = over * (1.0 - 1.0 / *ratio);
                    db_to_gain(-reduction_db) * *makeup
                }
                FilterState::Limiter {
                    threshold,
                    release,
                    gain,
                } => {
                    // Instant attack: no sample ever leaves above the threshold.
                    let needed = if level > *threshold {
                        *threshold / level
                    } else {
                        1.0
                    };
                    *gain = if needed < *gain {
                        needed
                    } else {
                        needed + (*gain - needed) * *release
                    };
                    (*gain).min(needed)
                }
            };
            for sample in frame.iter_mut() {
                *sample *= gain;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interleaved stereo sine, both channels equal.
    pub(crate) fn sine(frequency: f32, amplitude: f32, seconds: f32) -> Vec<f32> {
        let count = (seconds * SAMPLE_RATE as f32) as usize;
        (0..count)
            .flat_map(|n| {
                let value = amplitude
                    * (2.0 * std::f32::consts::PI * frequency * n as f32 / SAMPLE_RATE as f32)
                        .sin();
                [value, value]
            })
            .collect()
    }

    fn peak(samples: &[f32]) -> f32 {
        samples.iter().fold(0.0, |p, s| p.max(s.abs()))
    }

    #[test]
    fn gain_scales_by_decibels() {
        let mut samples = vec![0.5, -0.5];
        FilterState::new(&AudioFilter::Gain { db: -6.0206 }).process(&mut samples);
        assert!((samples[0] - 0.25).abs() < 1e-4);
    }

    #[test]
    fn noise_gate_silences_quiet_signals_and_passes_loud_ones() {
        let gate = AudioFilter::NoiseGate {
            open_db: -30.0,
            close_db: -40.0,
            attack_ms: 5.0,
            hold_ms: 50.0,
            release_ms: 50.0,
        };
        let mut quiet = sine(440.0, db_to_gain(-50.0), 0.5);
        FilterState::new(&gate).process(&mut quiet);
        assert!(peak(&quiet) < 1e-4, "a -50 dBFS hum must be gated");
        let mut loud = sine(440.0, db_to_gain(-10.0), 0.5);
        FilterState::new(&gate).process(&mut loud);
        let settled = &loud[loud.len() / 2..];
        assert!(
            (gain_to_db(peak(settled)) + 10.0).abs() < 0.1,
            "a -10 dBFS voice passes unchanged"
        );
    }

    #[test]
    fn compressor_reduces_by_the_ratio_above_the_threshold() {
        // -10 dBFS peaks, threshold -20 dB, ratio 4: 10 dB over becomes 2.5 dB over.
        let compressor = AudioFilter::Compressor {
            threshold_db: -20.0,
            ratio: 4.0,
            attack_ms: 5.0,
            release_ms: 50.0,
            makeup_db: 0.0,
        };
        let mut samples = sine(1000.0, db_to_gain(-10.0), 1.0);
        FilterState::new(&compressor).process(&mut samples);
        let settled = gain_to_db(peak(&samples[samples.len() / 2..]));
        assert!(
            (settled + 17.5).abs() < 1.0,
            "settled at {settled} dBFS, expected about -17.5"
        );
    }

    #[test]
    fn limiter_never_lets_a_sample_above_the_threshold() {
        let limiter = AudioFilter::Limiter {
            threshold_db: -6.0,
            release_ms: 60.0,
        };
        let mut samples = sine(997.0, 1.0, 1.0);
        samples.extend(sine(50.0, 0.9, 0.5));
        FilterState::new(&limiter).process(&mut samples);
        assert!(peak(&samples) <= db_to_gain(-6.0) + 1e-6);
        assert!(
            gain_to_db(peak(&samples)) > -6.1,
            "it limits, it does not mute"
        );
    }
}
