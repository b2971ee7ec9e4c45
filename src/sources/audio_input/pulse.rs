//! Capture straight from a PulseAudio (or PipeWire-Pulse) source over the native protocol.
//!
//! cpal's PulseAudio host caps a fixed-size record buffer at one fragment, so whenever the
//! server hands over more than that at once (a monitor source whose sink renders in large
//! blocks, e.g. while a music player with a long buffer plays) the excess is dropped and the
//! sound comes out chopped. Here the buffer is the server's maximum and only the fragment is
//! small (10 ms), so nothing is lost and the latency stays low.

use super::{deliver, Shared};
use crate::base::SAMPLE_RATE;
use crate::sources::audio_devices::StreamProblem;
use pulseaudio::protocol;
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHANNELS: u16 = 2;
const BYTES_PER_FRAME: u32 = 4 * CHANNELS as u32;

pub struct PulseCapture {
    _client: pulseaudio::Client,
    stream: Option<pulseaudio::RecordStream>,
    /// The source's own latency (microseconds), refreshed by [`PulseCapture::refresh_latency`].
    source_latency_us: Arc<AtomicU64>,
}

impl PulseCapture {
    /// Records `source` (the server's name for it) as 48 kHz float stereo into `shared`.
    pub fn open(source: &str, shared: &Arc<Mutex<Shared>>) -> Result<Self, StreamProblem> {
        let client = pulseaudio::Client::from_env(c"Tally")?;
        let name = CString::new(source).map_err(|_| StreamProblem::NulInName)?;
        let info = pollster::block_on(client.source_info_by_name(name))?;
        Shared::start_stream(shared, SAMPLE_RATE);
        let source_latency_us = Arc::new(AtomicU64::new(0));
        let params = protocol::RecordStreamParams {
            sample_spec: protocol::SampleSpec {
                format: protocol::SampleFormat::Float32Le,
                channels: CHANNELS as u8,
                sample_rate: SAMPLE_RATE,
            },
            channel_map: protocol::ChannelMap::new([
                protocol::ChannelPosition::FrontLeft,
                protocol::ChannelPosition::FrontRight,
            ]),
            source_index: Some(info.index),
            buffer_attr: protocol::stream::BufferAttr {
                fragment_size: SAMPLE_RATE / 100 * BYTES_PER_FRAME,
                ..Default::default()
            },
            flags: protocol::stream::StreamFlags {
                adjust_latency: true,
                // When the device goes away the server would quietly move the stream to
                // another one (capturing the wrong thing); instead it ends, the watchdog
                // reports it, and the right device is reattached when it is back.
                no_move: true,
                ..Default::default()
            },
            ..Default::default()
        };
        let callback = {
            let shared = shared.clone();
            let source_latency_us = source_latency_us.clone();
            let mut stereo = Vec::new();
            move |bytes: &[u8]| {
                let frames = bytes.len() as u64 / u64::from(BYTES_PER_FRAME);
                // The block's last frame left the source `source latency` ago; its first frame
                // one block earlier.
                let latency = Duration::from_micros(source_latency_us.load(Ordering::Relaxed))
                    + Duration::from_nanos(frames * 1_000_000_000 / u64::from(SAMPLE_RATE));
                let samples = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                deliver(&shared, samples, CHANNELS, latency, &mut stereo);
            }
        };
        let stream = pollster::block_on(client.create_record_stream(params, callback))?;
        let capture = Self {
            _client: client,
            stream: Some(stream),
            source_latency_us,
        };
        capture.refresh_latency();
        Ok(capture)
    }

    /// Asks the server how far behind the source runs (called about once a second).
    pub fn refresh_latency(&self) {
        if let Some(stream) = &self.stream {
            if let Ok(timing) = pollster::block_on(stream.timing_info()) {
                self.source_latency_us
                    .store(timing.source_usec, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for PulseCapture {
    fn drop(&mut self) {
        if let Some(stream) = self.stream.take() {
            let _ = pollster::block_on(stream.delete());
        }
    }
}
