//! Audio monitoring: plays the mixer's monitoring bus on an output device (headphones), so the
//! operator hears the sources set to "monitor only" or "monitor and output".
//!
//! The render thread hands over each block; the device's own thread plays them from a short
//! queue. The two clocks are not locked together, so the queue is kept short: when it runs dry
//! the device plays silence, and when it grows past its limit the oldest sound is dropped.
//! Monitoring is for the operator's ears only; nothing here touches the program or recording.

use crate::base::{AUDIO_CHANNELS, SAMPLE_RATE};
use crate::sources::audio_devices::{self as devices, AudioDeviceError, StreamProblem};
use cpal::traits::{DeviceTrait, StreamTrait};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Longest wait in the queue (150 ms) before old sound is dropped to catch up.
const MAX_QUEUED: usize = SAMPLE_RATE as usize * 150 / 1000 * AUDIO_CHANNELS;

pub struct MonitorOutput {
    queue: Arc<Mutex<VecDeque<f32>>>,
    _stream: cpal::Stream,
    pub device: String,
}

impl MonitorOutput {
    /// Opens `device` (id, name or `default`) for playback at 48 kHz stereo.
    pub fn open(device: &str) -> Result<Self, AudioDeviceError> {
        let host = devices::host();
        let output = devices::find_output(&host, device)?;
        let fail = |cause: StreamProblem| AudioDeviceError::Device {
            device: device.to_string(),
            cause,
        };
        // 20 ms: a sound server's default playback buffer is seconds long, and it would ask
        // for more sound at once than the short monitoring queue ever holds.
        let config = cpal::StreamConfig {
            channels: AUDIO_CHANNELS as u16,
            sample_rate: SAMPLE_RATE,
            buffer_size: cpal::BufferSize::Fixed(SAMPLE_RATE / 50),
        };
        let queue = Arc::new(Mutex::new(VecDeque::with_capacity(MAX_QUEUED)));
        let playing = queue.clone();
        let stream = output
            .build_output_stream::<f32, _, _>(
                config,
                move |out: &mut [f32], _info| {
                    let mut queue = crate::base::lock(&playing);
                    for sample in out.iter_mut() {
                        *sample = queue.pop_front().unwrap_or(0.0);
                    }
                },
                |error| tracing::warn!("monitoring output: {error}"),
                None,
            )
            .map_err(|error| fail(error.into()))?;
        stream.play().map_err(|error| fail(error.into()))?;
        Ok(Self {
            queue,
            _stream: stream,
            device: device.to_string(),
        })
    }

    /// Queues a block of the monitoring bus (interleaved stereo).
    pub fn play(&self, block: &[f32]) {
        let mut queue = crate::base::lock(&self.queue);
        queue.extend(block);
        let excess = queue.len().saturating_sub(MAX_QUEUED);
        // Whole frames only, so left and right never swap.
        queue.drain(..excess - excess % AUDIO_CHANNELS);
    }
}
