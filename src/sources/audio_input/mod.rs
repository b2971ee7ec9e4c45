//! Audio input sources: a microphone, a line input or desktop audio, captured through cpal.
//!
//! The device delivers sound on its own thread; each block is stamped with the engine time it
//! was captured at and fed to a [`Resync`], which resamples it to 48 kHz and steers it onto the
//! engine clock. The mixer then reads it by engine sample position, like any other source.
//! A watchdog thread owns the device stream: when the device fails or goes silent for good
//! (unplugged, sound server restarted) it reports that once and reopens it every second until
//! it is back. A device that cannot be opened at start is a warning, never a failed show.

mod pulse;
mod resync;

use super::{spawn_source_thread, Notices, RunningSource};
use crate::base::lock;
use crate::base::{FrameRef, Pacing, Tick, AUDIO_CHANNELS, SAMPLE_RATE};
use crate::scene::AudioInputSource;
use crate::sources::audio_devices::{self as devices, AudioDeviceError, StreamProblem};
use cpal::traits::{DeviceTrait, StreamTrait};
use resync::Resync;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A device that has delivered nothing for this long is treated as gone.
const SILENT_DEVICE: Duration = Duration::from_secs(2);
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What the capture callback and the render thread share.
struct Shared {
    /// When engine sample 0 is due; sound captured before it is not kept.
    epoch: Option<Instant>,
    resync: Option<Resync>,
    last_delivery: Option<Instant>,
    failure: Option<CaptureFailure>,
}

impl Shared {
    /// A new stream from the device at `rate`: fresh resampling, no failure, no delivery yet.
    /// A rate that cannot be resampled is a failure the watchdog reports and retries; it is
    /// judged before the lock is taken, so nothing can poison it.
    fn start_stream(shared: &Mutex<Shared>, rate: u32) {
        let resync = Resync::new(rate);
        let mut shared = lock(shared);
        shared.last_delivery = None;
        match resync {
            Ok(resync) => {
                shared.resync = Some(resync);
                shared.failure = None;
            }
            Err(unusable) => {
                shared.resync = None;
                shared.failure = Some(CaptureFailure::Rate(unusable));
            }
        }
    }
}

pub struct AudioInput {
    shared: Arc<Mutex<Shared>>,
    notices: Notices,
    stop: Arc<AtomicBool>,
    watchdog: Option<JoinHandle<()>>,
}

impl AudioInput {
    pub fn open(id: &str, settings: &AudioInputSource) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            epoch: None,
            resync: None,
            last_delivery: None,
            failure: None,
        }));
        let notices = Notices::default();
        let stop = Arc::new(AtomicBool::new(false));
        let label = format!("audio input `{id}` (device `{}`)", settings.device);
        let watchdog = {
            let shared = shared.clone();
            let notices = notices.clone();
            let stop = stop.clone();
            let device = settings.device.clone();
            let spawned = spawn_source_thread(&format!("audio-in-{id}"), &notices.clone(), {
                let notices = notices.clone();
                move || watch(&label, &device, &shared, &notices, &stop)
            });
            match spawned {
                Ok(thread) => Some(thread),
                Err(error) => {
                    notices.push(format!(
                        "audio input `{id}` is silent: its capture thread cannot start: {error}"
                    ));
                    None
                }
            }
        };
        Self {
            shared,
            notices,
            stop,
            watchdog,
        }
    }
}

impl RunningSource for AudioInput {
    fn size(&self) -> [u32; 2] {
        [0, 0]
    }

    fn video(&mut self, _tick: Tick) -> Option<FrameRef> {
        None
    }

    fn mix_audio(&mut self, first_sample: u64, out: &mut [f32], _pacing: Pacing) {
        if let Some(resync) = lock(&self.shared).resync.as_mut() {
            resync.read(first_sample, out);
        }
    }

    fn clock_started(&mut self, epoch: Instant) {
        lock(&self.shared).epoch = Some(epoch);
    }

    fn notices(&self) -> Option<&Notices> {
        Some(&self.notices)
    }
}

impl Drop for AudioInput {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watchdog) = self.watchdog.take() {
            let _ = watchdog.join();
        }
    }
}

/// Keeps the device open for as long as the source lives, reopening it when it is lost.
fn watch(
    label: &str,
    device: &str,
    shared: &Arc<Mutex<Shared>>,
    notices: &Notices,
    stop: &AtomicBool,
) {
    let mut stream: Option<LiveCapture> = None;
    let mut last_maintained = Instant::now();
    let mut ever_opened = false;
    let mut last_problem: Option<String> = None;
    let mut next_try = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if stream.is_none() && Instant::now() >= next_try {
            next_try = Instant::now() + RETRY_EVERY;
            match open_stream(device, shared) {
                Ok((opened, description)) => {
                    stream = Some(opened);
                    if ever_opened {
                        notices.push(format!("{label}: reattached ({description})"));
                    } else {
                        tracing::info!("{label}: capturing {description}");
                    }
                    ever_opened = true;
                    last_problem = None;
                }
                Err(error) => {
                    let problem = error.to_string();
                    // Said once, not every second while the device stays away.
                    if last_problem.as_ref() != Some(&problem) {
                        notices.push(format!("{label}: {problem}; retrying every second"));
                        last_problem = Some(problem);
                    }
                }
            }
        }
        if let Some(capture) = stream
            .as_ref()
            .filter(|_| last_maintained.elapsed() >= RETRY_EVERY)
        {
            capture.maintain();
            last_maintained = Instant::now();
        }
        if stream.is_some() {
            let lost = {
                let mut shared = lock(shared);
                let silent = shared
                    .last_delivery
                    .is_some_and(|last| last.elapsed() > SILENT_DEVICE);
                match shared.failure.take() {
                    Some(failure) => Some(failure),
                    None if silent => Some(CaptureFailure::Silent),
                    None => None,
                }
            };
            if let Some(reason) = lost {
                stream = None;
                notices.push(format!(
                    "{label}: lost ({reason}); the mix goes on without it and it is reattached when it is back"
                ));
                last_problem = Some(reason.to_string());
                next_try = Instant::now() + RETRY_EVERY;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens and starts the capture stream; returns it with a description of the format in use.
/// An open capture stream; dropping it closes the device.
enum LiveCapture {
    Pulse(pulse::PulseCapture),
    /// Held only to keep the device open.
    Cpal {
        _stream: cpal::Stream,
    },
}

impl LiveCapture {
    /// Housekeeping from the watchdog, about once a second.
    fn maintain(&self) {
        if let LiveCapture::Pulse(capture) = self {
            capture.refresh_latency();
        }
    }
}

/// Why a capture stream that was running stopped.
#[derive(Debug, thiserror::Error)]
enum CaptureFailure {
    #[error(transparent)]
    Rate(#[from] resync::UnusableRate),
    #[error(transparent)]
    Stream(StreamProblem),
    #[error("the device stopped delivering sound")]
    Silent,
}

fn open_stream(
    wanted: &str,
    shared: &Arc<Mutex<Shared>>,
) -> Result<(LiveCapture, String), AudioDeviceError> {
    let host = devices::host();
    let device = devices::find_input(&host, wanted)?;
    let fail = |cause: StreamProblem| AudioDeviceError::Device {
        device: wanted.to_string(),
        cause,
    };
    if devices::is_pulse(&host) {
        let name = devices::device_id(&device);
        let capture = pulse::PulseCapture::open(&name, shared).map_err(fail)?;
        return Ok((
            LiveCapture::Pulse(capture),
            format!("`{name}` through the sound server, stereo at {SAMPLE_RATE} Hz"),
        ));
    }
    let default = device
        .default_input_config()
        .map_err(|error| fail(error.into()))?;
    // Ask for 48 kHz where the device (or the sound server) offers it, so usually no rate
    // conversion is needed; the resampler still steers the clock.
    let supports_48k = device.supported_input_configs().is_ok_and(|mut configs| {
        configs.any(|range| {
            range.min_sample_rate() <= SAMPLE_RATE && SAMPLE_RATE <= range.max_sample_rate()
        })
    });
    let rate = if supports_48k {
        SAMPLE_RATE
    } else {
        default.sample_rate()
    };
    let channels = default.channels().clamp(1, 2);
    // Small blocks (10 ms) keep the capture latency well inside the mix delay; a host that
    // will not take a fixed size gets its default.
    let format = default.sample_format();
    let fixed = build(
        &device,
        shared,
        rate,
        channels,
        cpal::BufferSize::Fixed(rate / 100),
        format,
    );
    let stream = match fixed {
        Ok(stream) => stream,
        Err(_) => build(
            &device,
            shared,
            rate,
            channels,
            cpal::BufferSize::Default,
            format,
        )
        .map_err(|error| fail(error.into()))?,
    };
    stream.play().map_err(|error| fail(error.into()))?;
    let description = format!("{channels} channel(s) at {rate} Hz");
    Ok((LiveCapture::Cpal { _stream: stream }, description))
}

fn build(
    device: &cpal::Device,
    shared: &Arc<Mutex<Shared>>,
    rate: u32,
    channels: u16,
    buffer_size: cpal::BufferSize,
    format: cpal::SampleFormat,
) -> Result<cpal::Stream, cpal::Error> {
    let config = cpal::StreamConfig {
        channels,
        sample_rate: rate,
        buffer_size,
    };
    Shared::start_stream(shared, rate);
    let on_error = {
        let shared = shared.clone();
        move |error: cpal::Error| {
            lock(&shared).failure = Some(CaptureFailure::Stream(error.into()));
        }
    };
    let mut stereo = Vec::new();
    match format {
        cpal::SampleFormat::I16 | cpal::SampleFormat::U16 | cpal::SampleFormat::I32 => {
            let shared = shared.clone();
            device.build_input_stream::<i16, _, _>(
                config,
                move |data, info| {
                    let samples = data.iter().map(|&s| f32::from(s) / 32768.0);
                    deliver(&shared, samples, channels, latency_of(info), &mut stereo);
                },
                on_error,
                None,
            )
        }
        _ => {
            let shared = shared.clone();
            device.build_input_stream::<f32, _, _>(
                config,
                move |data, info| {
                    let latency = latency_of(info);
                    deliver(
                        &shared,
                        data.iter().copied(),
                        channels,
                        latency,
                        &mut stereo,
                    );
                },
                on_error,
                None,
            )
        }
    }
}

/// How long ago the first frame of a cpal block was captured.
fn latency_of(info: &cpal::InputCallbackInfo) -> Duration {
    let timestamp = info.timestamp();
    timestamp.callback.duration_since(timestamp.capture)
}

/// Runs on the device's thread for each block it captures; `latency` is how long ago the
/// block's first frame was captured.
fn deliver(
    shared: &Mutex<Shared>,
    samples: impl Iterator<Item = f32>,
    channels: u16,
    latency: Duration,
    stereo: &mut Vec<f32>,
) {
    let now = Instant::now();
    let captured = now.checked_sub(latency).unwrap_or(now);
    stereo.clear();
    if channels == 1 {
        // A microphone is one voice in the middle: both sides at full level, as OBS does.
        stereo.extend(samples.flat_map(|s| [s, s]));
    } else {
        stereo.extend(samples);
    }
    let mut shared = lock(shared);
    shared.last_delivery = Some(now);
    let Some(epoch) = shared.epoch else {
        return;
    };
    let seconds = if captured >= epoch {
        (captured - epoch).as_secs_f64()
    } else {
        -(epoch - captured).as_secs_f64()
    };
    if let Some(resync) = shared.resync.as_mut() {
        let captured_at = seconds * f64::from(SAMPLE_RATE);
        let reanchors = resync.state().reanchors;
        resync.push(
            captured_at,
            &stereo[..stereo.len() / AUDIO_CHANNELS * AUDIO_CHANNELS],
        );
        if resync.state().reanchors > reanchors {
            tracing::warn!("an audio input's clock jumped; its sound was realigned (a short gap)");
        }
    }
}

/// cpal's error with what the user can do about it.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_reporting_no_rate_is_a_failure_and_leaves_the_input_usable() {
        let shared = Mutex::new(Shared {
            epoch: None,
            resync: None,
            last_delivery: None,
            failure: None,
        });
        Shared::start_stream(&shared, 0);
        {
            let state = lock(&shared);
            assert!(state.resync.is_none());
            assert!(matches!(
                state.failure,
                Some(CaptureFailure::Rate(resync::UnusableRate(0)))
            ));
        }
        // Not poisoned: the watchdog's next stream at a real rate takes over.
        assert!(!shared.is_poisoned());
        Shared::start_stream(&shared, 48_000);
        let state = lock(&shared);
        assert!(state.resync.is_some() && state.failure.is_none());
    }
}
