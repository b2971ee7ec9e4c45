//! Level meters: sample peak, true peak (4x oversampled, BS.1770), RMS, and EBU R128 momentary
//! (400 ms) and short-term (3 s) loudness. Loudness and true peak come from the `ebur128` crate;
//! peaks and RMS are held over each reporting window, as a meter shows them.

use super::filters::gain_to_db;
use crate::base::{AUDIO_CHANNELS, SAMPLE_RATE};
use ebur128::{EbuR128, Mode};

/// One meter reading. Levels in dBFS (-inf for silence), loudness in LUFS (-inf until there
/// is enough sound to measure).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Levels {
    pub sample_peak_dbfs: f32,
    pub true_peak_dbfs: f32,
    pub rms_dbfs: f32,
    pub momentary_lufs: f32,
    pub short_term_lufs: f32,
}

pub struct Meter {
    loudness: Option<EbuR128>,
    sample_peak: f32,
    true_peak: f32,
    sum_of_squares: f64,
    samples: u64,
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

impl Meter {
    pub fn new() -> Self {
        let loudness = EbuR128::new(
            AUDIO_CHANNELS as u32,
            SAMPLE_RATE,
            Mode::S | Mode::SAMPLE_PEAK | Mode::TRUE_PEAK,
        )
        .map_err(|error| tracing::warn!("loudness metering unavailable: {error}"))
        .ok();
        Self {
            loudness,
            sample_peak: 0.0,
            true_peak: 0.0,
            sum_of_squares: 0.0,
            samples: 0,
        }
    }

    /// Adds interleaved stereo samples.
    pub fn add(&mut self, interleaved: &[f32]) {
        for sample in interleaved {
            self.sample_peak = self.sample_peak.max(sample.abs());
            self.sum_of_squares += f64::from(*sample) * f64::from(*sample);
        }
        self.samples += interleaved.len() as u64;
        if let Some(loudness) = &mut self.loudness {
            if loudness.add_frames_f32(interleaved).is_ok() {
                for channel in 0..AUDIO_CHANNELS as u32 {
                    let peak = loudness.prev_true_peak(channel).unwrap_or(0.0) as f32;
                    self.true_peak = self.true_peak.max(peak);
                }
            }
        }
    }

    /// The reading since the last call; peaks and RMS start over, loudness keeps its windows.
    pub fn take(&mut self) -> Levels {
        let rms = if self.samples > 0 {
            (self.sum_of_squares / self.samples as f64).sqrt() as f32
        } else {
            0.0
        };
        let (momentary, short_term) =
            self.loudness
                .as_ref()
                .map_or((f64::NEG_INFINITY, f64::NEG_INFINITY), |l| {
                    (
                        l.loudness_momentary().unwrap_or(f64::NEG_INFINITY),
                        l.loudness_shortterm().unwrap_or(f64::NEG_INFINITY),
                    )
                });
        let levels = Levels {
            sample_peak_dbfs: to_db(self.sample_peak),
            true_peak_dbfs: to_db(self.true_peak.max(self.sample_peak)),
            rms_dbfs: to_db(rms),
            momentary_lufs: momentary as f32,
            short_term_lufs: short_term as f32,
        };
        self.sample_peak = 0.0;
        self.true_peak = 0.0;
        self.sum_of_squares = 0.0;
        self.samples = 0;
        levels
    }
}

fn to_db(level: f32) -> f32 {
    if level <= 0.0 {
        f32::NEG_INFINITY
    } else {
        gain_to_db(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::filters::db_to_gain;

    fn sine(frequency: f32, amplitude: f32, seconds: f32, phase: f32) -> Vec<f32> {
        let count = (seconds * SAMPLE_RATE as f32) as usize;
        (0..count)
            .flat_map(|n| {
                let t = n as f32 / SAMPLE_RATE as f32;
                let value = amplitude * (2.0 * std::f32::consts::PI * frequency * t + phase).sin();
                [value, value]
            })
            .collect()
    }

    #[test]
    fn full_scale_sine_reads_minus_3_01_dbfs_rms_and_0_dbfs_peak() {
        let mut meter = Meter::new();
        meter.add(&sine(1000.0, 1.0, 1.0, 0.0));
        let levels = meter.take();
        assert!(
            (levels.rms_dbfs + 3.0103).abs() < 0.01,
            "RMS {}",
            levels.rms_dbfs
        );
        assert!(levels.sample_peak_dbfs.abs() < 0.01);
    }

    #[test]
    fn ebu_tech_3341_sines_read_their_loudness_within_a_tenth() {
        // Tech 3341 cases 1 and 2: 1 kHz stereo sine at -23 and -33 dBFS is -23 and -33 LUFS.
        for level in [-23.0f32, -33.0] {
            let mut meter = Meter::new();
            meter.add(&sine(1000.0, db_to_gain(level), 5.0, 0.0));
            let levels = meter.take();
            assert!(
                (levels.momentary_lufs - level).abs() < 0.1,
                "momentary {}",
                levels.momentary_lufs
            );
            assert!(
                (levels.short_term_lufs - level).abs() < 0.1,
                "short-term {}",
                levels.short_term_lufs
            );
        }
    }

    #[test]
    fn true_peak_sees_between_the_samples() {
        // A quarter-rate sine sampled 45 degrees off its crests: every sample is at 0.707,
        // the waveform between them reaches 1.0.
        let mut meter = Meter::new();
        meter.add(&sine(
            SAMPLE_RATE as f32 / 4.0,
            1.0,
            0.5,
            std::f32::consts::FRAC_PI_4,
        ));
        let levels = meter.take();
        assert!(
            (levels.sample_peak_dbfs + 3.01).abs() < 0.05,
            "sample peak {}",
            levels.sample_peak_dbfs
        );
        assert!(
            levels.true_peak_dbfs > -0.6,
            "true peak {}",
            levels.true_peak_dbfs
        );
    }

    #[test]
    fn silence_reads_minus_infinity() {
        let mut meter = Meter::new();
        meter.add(&[0.0; 9600]);
        let levels = meter.take();
        assert!(levels.sample_peak_dbfs.is_infinite() && levels.rms_dbfs.is_infinite());
    }
}
