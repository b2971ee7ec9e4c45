//! Puts a capture device's sound onto the engine clock.
//!
//! A sound card runs on its own crystal: a "48 kHz" microphone may deliver 48 010 samples per
//! engine second, and over an hour that is seconds of drift. [`Resync`] takes the device's
//! samples with the time each block was captured (already mapped to engine sample positions),
//! resamples them to 48 kHz with a sinc resampler, and steers the resampling ratio with a
//! slow PI controller so the output stays lined up with the capture timestamps. The ratio moves
//! smoothly, so drift is absorbed without dropped or repeated samples (no clicks). Only a jump
//! too big to steer out (a stalled or re-plugged device) re-anchors the stream.
//!
//! Pure logic: no devices, no clocks; the capture side feeds it and the render side reads it.

use crate::base::{AUDIO_CHANNELS, SAMPLE_RATE};
use rubato::{
    Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};
use std::collections::VecDeque;

/// Device frames resampled at a time (10 ms at 48 kHz).
const CHUNK_FRAMES: usize = 480;
/// The steering never moves the ratio further than this from nominal (±0.5 %, far more than
/// any real crystal is off).
const MAX_CORRECTION: f64 = 0.005;
/// Beyond this misalignment the stream is re-anchored instead of steered (1 s). Some devices
/// deliver in bursts (a sound-server monitor of a sink that renders far ahead), so single
/// timestamps can be hundreds of milliseconds off while the stream itself is fine.
const REANCHOR_SAMPLES: f64 = SAMPLE_RATE as f64;
/// Resampled sound kept waiting for the mixer before the oldest is discarded (2 s).
const MAX_BUFFERED: usize = SAMPLE_RATE as usize * 2;
/// Time constant of the timestamp-jitter filter, in device blocks pushed.
const ERROR_SMOOTHING: f64 = 0.02;
const PROPORTIONAL: f64 = 2.0e-6;
const INTEGRAL: f64 = 2.0e-9;

pub struct Resync {
    device_rate: u32,
    resampler: SincFixedIn<f32>,
    /// Device frames waiting to fill a chunk, planar.
    pending: [Vec<f32>; AUDIO_CHANNELS],
    output: [Vec<f32>; AUDIO_CHANNELS],
    /// Resampled frames not read yet; the front one belongs at engine sample `front_position`.
    ready: VecDeque<[f32; AUDIO_CHANNELS]>,
    front_position: i64,
    /// Engine position the next resampled frame will have.
    next_position: i64,
    anchored: bool,
    /// Smoothed misalignment (samples) and its running sum, for the controller.
    error: f64,
    error_sum: f64,
    correction: f64,
    reanchors: u64,
}

/// How well the stream follows the engine clock, for statistics and tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResyncState {
    /// Current ratio correction: 0.001 means the device is being sped up by 0.1 %.
    pub correction: f64,
    /// Smoothed difference between where samples land and where their timestamps say, in
    /// samples; positive is late.
    pub error_samples: f64,
    pub buffered_samples: usize,
    pub reanchors: u64,
}

/// A device rate the resampler cannot work from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the device reports a sample rate of {0} Hz, which cannot be resampled to 48 kHz")]
pub struct UnusableRate(pub u32);

/// Device rates accepted: from telephone sound to the fastest interfaces sold.
const DEVICE_RATES: std::ops::RangeInclusive<u32> = 4_000..=768_000;

impl Resync {
    /// Resampling from `device_rate`; a rate outside 4 kHz to 768 kHz (a device that reports
    /// 0 Hz) is refused rather than handed to the resampler.
    pub fn new(device_rate: u32) -> Result<Self, UnusableRate> {
        if !DEVICE_RATES.contains(&device_rate) {
            return Err(UnusableRate(device_rate));
        }
        let parameters = SincInterpolationParameters {
            sinc_len: 64,
            f_cutoff: 0.95,
            interpolation: SincInterpolationType::Linear,
            oversampling_factor: 128,
            window: WindowFunction::BlackmanHarris2,
        };
        let ratio = f64::from(SAMPLE_RATE) / f64::from(device_rate);
        let resampler = SincFixedIn::new(
            ratio,
            1.0 + MAX_CORRECTION * 2.0,
            parameters,
            CHUNK_FRAMES,
            AUDIO_CHANNELS,
        )
        .map_err(|_| UnusableRate(device_rate))?;
        let output = std::array::from_fn(|_| vec![0.0; resampler.output_frames_max()]);
        Ok(Self {
            device_rate,
            resampler,
            pending: std::array::from_fn(|_| Vec::with_capacity(CHUNK_FRAMES)),
            output,
            ready: VecDeque::new(),
            front_position: 0,
            next_position: 0,
            anchored: false,
            error: 0.0,
            error_sum: 0.0,
            correction: 0.0,
            reanchors: 0,
        })
    }

    /// Adds device frames (interleaved stereo) whose first frame was captured at engine sample
    /// `captured_at` (fractional, may be negative before the engine started).
    pub fn push(&mut self, captured_at: f64, frames: &[f32]) {
        if frames.is_empty() {
            return;
        }
        let error = self.landing_position() - captured_at;
        if !self.anchored
            || error.abs() > REANCHOR_SAMPLES * 2.0
            || self.error.abs() > REANCHOR_SAMPLES
        {
            self.anchor(captured_at);
        } else {
            self.steer(error);
        }
        for frame in frames.chunks_exact(AUDIO_CHANNELS) {
            for (channel, sample) in frame.iter().enumerate() {
                self.pending[channel].push(*sample);
            }
            if self.pending[0].len() == CHUNK_FRAMES {
                self.resample_chunk();
            }
        }
    }

    /// Adds the sound for engine samples `first..first + out.len() / 2` into `out`; samples
    /// that have not arrived are left silent and sound older than `first` is discarded.
    pub fn read(&mut self, first: u64, out: &mut [f32]) {
        let first = first as i64;
        while self.front_position < first && self.ready.pop_front().is_some() {
            self.front_position += 1;
        }
        let wanted = out.len() / AUDIO_CHANNELS;
        let gap = (self.front_position - first).clamp(0, wanted as i64) as usize;
        for slot in out.chunks_exact_mut(AUDIO_CHANNELS).skip(gap) {
            let Some(frame) = self.ready.pop_front() else {
                break;
            };
            self.front_position += 1;
            for (out, sample) in slot.iter_mut().zip(frame) {
                *out += sample;
            }
        }
    }

    pub fn state(&self) -> ResyncState {
        ResyncState {
            correction: self.correction,
            error_samples: self.error,
            buffered_samples: self.ready.len(),
            reanchors: self.reanchors,
        }
    }

    /// Where a device frame pushed now will come out of the resampler, in engine samples.
    fn landing_position(&self) -> f64 {
        let ratio = f64::from(SAMPLE_RATE) / f64::from(self.device_rate) * (1.0 + self.correction);
        // rubato's SincFixedIn starts its output aligned with its input (its reported
        // `output_delay` is already compensated for), so no delay term is needed.
        self.next_position as f64 + self.pending[0].len() as f64 * ratio
    }

    fn anchor(&mut self, captured_at: f64) {
        if self.anchored {
            self.reanchors += 1;
        }
        self.resampler.reset();
        self.correction = 0.0;
        let _ = self.resampler.set_resample_ratio_relative(1.0, false);
        for channel in &mut self.pending {
            channel.clear();
        }
        self.ready.clear();
        let start = captured_at.round() as i64;
        self.next_position = start;
        self.front_position = start;
        self.error = 0.0;
        self.error_sum = 0.0;
        self.anchored = true;
    }

    /// A PI controller on the smoothed misalignment. Sound landing later than its timestamp
    /// means more samples are being made than the engine uses (a fast device), so a positive
    /// error lowers the output/input ratio.
    fn steer(&mut self, error: f64) {
        self.error += (error - self.error) * ERROR_SMOOTHING;
        self.error_sum = (self.error_sum + self.error)
            .clamp(-MAX_CORRECTION / INTEGRAL, MAX_CORRECTION / INTEGRAL);
        let correction = -(PROPORTIONAL * self.error + INTEGRAL * self.error_sum);
        self.correction = correction.clamp(-MAX_CORRECTION, MAX_CORRECTION);
        let _ = self
            .resampler
            .set_resample_ratio_relative(1.0 + self.correction, true);
    }

    fn resample_chunk(&mut self) {
        let Ok((_, produced)) =
            self.resampler
                .process_into_buffer(&self.pending, &mut self.output, None)
        else {
            // Only possible with mismatched buffer sizes, which are fixed at construction.
            return;
        };
        for channel in &mut self.pending {
            channel.clear();
        }
        for i in 0..produced {
            self.ready
                .push_back(std::array::from_fn(|channel| self.output[channel][i]));
        }
        self.next_position += produced as i64;
        // Nobody is reading (the source is off air): keep only the newest sound.
        while self.ready.len() > MAX_BUFFERED {
            self.ready.pop_front();
            self.front_position += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::TAU;

    /// A sine generated on the device's clock, pushed in 10 ms device blocks whose timestamps
    /// carry the engine time they were captured at, plus up to ±2 ms of scheduling jitter.
    struct FakeDevice {
        rate: u32,
        /// Device seconds per engine second (1.001 = crystal 0.1 % fast).
        speed: f64,
        frequency: f64,
        sent: u64,
        jitter_seed: u64,
    }

    impl FakeDevice {
        fn block(&mut self) -> (f64, Vec<f32>) {
            let frames = self.rate as usize / 100;
            let device_time = self.sent as f64 / f64::from(self.rate);
            let engine_time = device_time / self.speed;
            self.jitter_seed = self
                .jitter_seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1);
            let jitter = ((self.jitter_seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.004;
            let captured_at = (engine_time + jitter) * f64::from(SAMPLE_RATE);
            let samples = (0..frames)
                .flat_map(|i| {
                    let t = (self.sent + i as u64) as f64 / f64::from(self.rate);
                    let value = (0.5 * (TAU * self.frequency * t).sin()) as f32;
                    [value, value]
                })
                .collect();
            self.sent += frames as u64;
            (captured_at, samples)
        }
    }

    /// Runs the device against an engine reading 10 ms blocks for `seconds`, with the engine
    /// reading `delay` behind real time as the mixer does. Returns the left channel read.
    fn run(device: &mut FakeDevice, seconds: f64, resync: &mut Resync) -> Vec<f32> {
        let delay = 4800u64;
        let mut read = Vec::new();
        let mut engine_sample = 0u64;
        let end = (seconds * f64::from(SAMPLE_RATE)) as u64;
        while engine_sample < end {
            // Deliver every device block captured by now.
            loop {
                let next_engine_time = device.sent as f64 / f64::from(device.rate) / device.speed;
                if next_engine_time * f64::from(SAMPLE_RATE) > engine_sample as f64 {
                    break;
                }
                let (at, block) = device.block();
                resync.push(at, &block);
            }
            if engine_sample >= delay {
                let mut out = vec![0.0; 480 * 2];
                resync.read(engine_sample - delay, &mut out);
                read.extend(out.chunks_exact(2).map(|f| f[0]));
            }
            engine_sample += 480;
        }
        read
    }

    fn largest_second_difference(samples: &[f32]) -> f32 {
        samples
            .windows(3)
            .map(|w| (w[2] - 2.0 * w[1] + w[0]).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn a_device_that_reports_no_rate_is_refused_not_a_panic() {
        assert_eq!(Resync::new(0).err(), Some(UnusableRate(0)));
        assert_eq!(Resync::new(u32::MAX).err(), Some(UnusableRate(u32::MAX)));
        assert!(Resync::new(44_100).is_ok());
    }

    #[test]
    fn a_fast_device_is_steered_onto_the_engine_clock_without_clicks() {
        let mut device = FakeDevice {
            rate: 48_000,
            speed: 1.002,
            frequency: 440.0,
            sent: 0,
            jitter_seed: 7,
        };
        let mut resync = Resync::new(48_000).unwrap();
        let read = run(&mut device, 60.0, &mut resync);
        let state = resync.state();
        // The device gives 0.2 % more samples than the engine takes: the ratio must come down
        // by that much and the backlog stay small instead of growing by 96 samples a second.
        assert!(
            (state.correction + 0.002).abs() < 0.0003,
            "correction {state:?}"
        );
        assert!(state.buffered_samples < 4800 + 2400, "{state:?}");
        assert_eq!(state.reanchors, 0);
        // A dropped or repeated sample in a 440 Hz sine at half scale shows as a second
        // difference of about 0.03; the smooth sine's own is 0.0017.
        let settled = &read[48_000 * 2..];
        let worst = largest_second_difference(settled);
        assert!(worst < 0.004, "discontinuity of {worst}");
        assert!(settled.iter().map(|s| s.abs()).fold(0.0, f32::max) > 0.45);
    }

    #[test]
    fn a_slow_44k1_device_is_resampled_and_followed() {
        let mut device = FakeDevice {
            rate: 44_100,
            speed: 0.999,
            frequency: 1000.0,
            sent: 0,
            jitter_seed: 3,
        };
        let mut resync = Resync::new(44_100).unwrap();
        let read = run(&mut device, 40.0, &mut resync);
        let state = resync.state();
        assert!(
            (state.correction - 0.001).abs() < 0.0003,
            "correction {state:?}"
        );
        assert!(state.error_samples.abs() < 480.0, "{state:?}");
        // 1 kHz at 48 kHz: count zero crossings over the last 10 s (device slow by 0.1 %, so
        // the tone reads 0.999 kHz on the engine clock).
        let tail = &read[read.len() - 480_000..];
        let crossings = tail
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        assert!(
            (19_960..=19_990).contains(&crossings),
            "{crossings} crossings"
        );
        assert!(
            largest_second_difference(tail) < 0.3 * (TAU * 1000.0 / 48_000.0).powi(2) as f32 * 10.0
        );
    }

    #[test]
    fn sound_lands_at_its_capture_time() {
        // A click captured at engine sample 10 000 is read back at 10 000.
        let mut resync = Resync::new(48_000).unwrap();
        let mut block = vec![0.0f32; 9600 * 2];
        block[(2000) * 2] = 1.0;
        block[(2000) * 2 + 1] = 1.0;
        resync.push(8000.0, &block);
        let mut out = vec![0.0f32; 9600 * 2];
        resync.read(6000, &mut out);
        let peak = out
            .chunks_exact(2)
            .enumerate()
            .max_by(|a, b| a.1[0].abs().total_cmp(&b.1[0].abs()))
            .map(|(i, _)| i + 6000)
            .unwrap();
        assert!((9999..=10001).contains(&peak), "click read back at {peak}");
    }

    #[test]
    fn a_device_that_jumps_is_reanchored() {
        let mut resync = Resync::new(48_000).unwrap();
        let block = vec![0.1f32; 480 * 2];
        resync.push(0.0, &block);
        resync.push(480.0, &block);
        // Half a second late is jitter to steer out, not a jump.
        resync.push(960.0 + 24_000.0, &block);
        assert_eq!(resync.state().reanchors, 0);
        // The device stalled for three seconds.
        resync.push(960.0 + 3.0 * 48_000.0, &block);
        assert_eq!(resync.state().reanchors, 1);
    }
}
