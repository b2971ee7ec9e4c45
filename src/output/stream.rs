//! A live stream output (RTMP/RTMPS with FLV, SRT with MPEG-TS): one writer thread per
//! output, fed through its own [`SendQueue`], reconnecting with backoff when the link drops.
//!
//! Encoders call [`StreamOutput::push`], which never blocks: the queue applies the drop policy.
//! The writer thread does the blocking network writes through FFmpeg, so a slow or dead link
//! holds up nobody but itself.

use super::backoff::{Backoff, ReconnectSettings};
use super::destination::{Destination, Endpoint, Protocol};
use super::flv;
use super::ll_hls::{FrameClock, LowLatencyError, LowLatencyHls, LowLatencyLayout};
use super::rtmp::{PublishOptions, PublishTarget, Publisher, RtmpError};
use super::send_queue::{QueueSettings, SendQueue};
use crate::base::init_ffmpeg;
use crate::base::lock;
use crate::encode::{EncodedPacket, PictureShape, StreamInfo, StreamKind, VideoCodec};
use ffmpeg_next as ffmpeg;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When each canvas frame left the compositor, by frame number, so outputs can measure how long
/// a frame takes to reach the network. Holds the last few seconds only.
#[derive(Default)]
pub struct FrameTimes {
    frames: Mutex<VecDeque<(i64, Instant)>>,
}

impl FrameTimes {
    const KEPT: usize = 600;

    pub fn record(&self, frame: i64, at: Instant) {
        let mut frames = lock(&self.frames);
        if frames.len() == Self::KEPT {
            frames.pop_front();
        }
        frames.push_back((frame, at));
    }

    fn left_compositor(&self, frame: i64) -> Option<Instant> {
        let frames = lock(&self.frames);
        frames
            .iter()
            .rev()
            .find(|(number, _)| *number == frame)
            .map(|(_, at)| *at)
    }
}

/// Latency samples kept for the percentiles (about the last two minutes at 30 fps).
const LATENCY_SAMPLES: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
pub struct StreamSettings {
    pub queue: QueueSettings,
    pub reconnect: ReconnectSettings,
    /// A connect or write that makes no progress for this long counts as a lost connection.
    pub io_timeout: Duration,
    /// Certificate authorities RTMPS servers are checked against, instead of the system's.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Lower the encoder's bitrate to what a congested link carries, instead of only dropping
    /// frames (the encoder is shared, so the recording gets the lower bitrate too).
    pub adaptive_bitrate: bool,
    pub hls: HlsSettings,
}

/// How HLS outputs cut and keep their segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HlsSettings {
    /// The length a segment aims at; each is cut at the first keyframe after it, so with
    /// keyframes every `segment` seconds every segment is this long.
    pub segment: Duration,
    /// Segments the media playlist lists; older ones are removed from disk.
    pub window: u32,
    /// Low-latency HLS: the partial segments' target length (Tally writes the stream itself,
    /// see [`super::ll_hls`]); `None` for plain HLS through FFmpeg.
    pub part: Option<Duration>,
    /// The first segment's number. Pushed HLS starts from the time in seconds, so that a
    /// later run never reuses a name an origin or a player may have cached.
    pub first_segment: u64,
}

impl Default for HlsSettings {
    fn default() -> Self {
        Self {
            segment: Duration::from_secs(2),
            window: 6,
            part: None,
            first_segment: 0,
        }
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            queue: QueueSettings::default(),
            reconnect: ReconnectSettings::default(),
            io_timeout: Duration::from_secs(5),
            tls_ca_file: None,
            adaptive_bitrate: false,
            hls: HlsSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutputState {
    Connecting,
    Live,
    Reconnecting { attempt: u32, retry_in: Duration },
    Stopped,
    Failed(StreamFailure),
}

/// Why a stream output gave up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StreamFailure {
    #[error("closing the stream: {0}")]
    Close(ConnectionError),
    #[error("connection to {endpoint} lost: {cause}{hint}")]
    Lost {
        /// The destination with its key masked.
        endpoint: String,
        cause: ConnectionError,
        hint: &'static str,
    },
    #[error("cannot connect to {endpoint}: {cause}{hint}")]
    Connect {
        endpoint: String,
        cause: ConnectionError,
        hint: &'static str,
    },
    #[error("gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        attempts: u32,
        last: Box<StreamFailure>,
    },
}

/// What went wrong on one connection: in FFmpeg (H.264 over RTMP, SRT) or in Tally's own
/// RTMP client (enhanced RTMP).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Ffmpeg(#[from] ffmpeg::Error),
    #[error(transparent)]
    Rtmp(#[from] RtmpError),
    #[error(transparent)]
    LowLatencyHls(#[from] LowLatencyError),
}

impl std::fmt::Display for OutputState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputState::Connecting => write!(f, "connecting"),
            OutputState::Live => write!(f, "live"),
            OutputState::Reconnecting { attempt, retry_in } => {
                write!(
                    f,
                    "reconnecting (attempt {attempt}, next in {:.1} s)",
                    retry_in.as_secs_f64()
                )
            }
            OutputState::Stopped => write!(f, "stopped"),
            OutputState::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

/// A stream output's figures at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputStats {
    /// The destination with its key masked.
    pub name: String,
    pub state: OutputState,
    pub bytes_sent: u64,
    /// Over the last second.
    pub bitrate_kbps: f64,
    pub dropped_frames: u64,
    pub queue_duration: Duration,
    /// Queue duration over the drop threshold: under 1 the link keeps up.
    pub congestion: f64,
    pub reconnects: u32,
    pub on_backup: bool,
    /// From a frame leaving the compositor to its packet handed to the socket: median and
    /// 99th percentile over the recent frames (encoder delay included).
    pub latency_median: Option<Duration>,
    pub latency_p99: Option<Duration>,
}

/// A state change worth telling the user about.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputNotice {
    pub output: String,
    pub state: OutputState,
    pub detail: Option<String>,
}

struct QueueState {
    queue: SendQueue,
    open_streams: usize,
    stop: bool,
    reconnect_now: bool,
    /// The writer has ended (stopped or failed): packets are no longer kept.
    closed: bool,
}

struct Shared {
    name: String,
    state: Mutex<QueueState>,
    wake: Condvar,
    stats: Mutex<OutputStats>,
    sent_window: Mutex<VecDeque<(Instant, usize)>>,
    latencies: Mutex<VecDeque<Duration>>,
    frame_times: Option<Arc<FrameTimes>>,
    notices: crossbeam_channel::Sender<OutputNotice>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        lock(&self.state)
    }

    fn stats(&self) -> MutexGuard<'_, OutputStats> {
        lock(&self.stats)
    }

    fn set_state(&self, state: OutputState, detail: Option<String>) {
        let changed = {
            let mut stats = self.stats();
            let changed = std::mem::discriminant(&stats.state) != std::mem::discriminant(&state);
            if matches!(state, OutputState::Reconnecting { .. })
                && matches!(stats.state, OutputState::Live)
            {
                stats.reconnects += 1;
            }
            stats.state = state.clone();
            changed
        };
        if changed || detail.is_some() {
            let _ = self.notices.try_send(OutputNotice {
                output: self.name.clone(),
                state,
                detail,
            });
        }
    }
}

pub struct StreamOutput {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl StreamOutput {
    /// The destination's name (its primary URL with secrets masked).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn start(
        destination: Destination,
        video: StreamInfo,
        audio: StreamInfo,
        settings: StreamSettings,
        notices: crossbeam_channel::Sender<OutputNotice>,
        frame_times: Option<Arc<FrameTimes>>,
        start_seconds: f64,
    ) -> Self {
        init_ffmpeg();
        let name = destination.name().to_string();
        let shared = Arc::new(Shared {
            name: name.clone(),
            state: Mutex::new(QueueState {
                queue: SendQueue::new(settings.queue)
                    .for_video(VideoCodec::from_ffmpeg_id(video.codec).unwrap_or_default()),
                open_streams: 2,
                stop: false,
                reconnect_now: false,
                closed: false,
            }),
            wake: Condvar::new(),
            stats: Mutex::new(OutputStats {
                name: name.clone(),
                state: OutputState::Connecting,
                bytes_sent: 0,
                bitrate_kbps: 0.0,
                dropped_frames: 0,
                queue_duration: Duration::ZERO,
                congestion: 0.0,
                reconnects: 0,
                on_backup: false,
                latency_median: None,
                latency_p99: None,
            }),
            sent_window: Mutex::new(VecDeque::new()),
            latencies: Mutex::new(VecDeque::new()),
            frame_times,
            notices,
        });
        let writer = Writer {
            shared: shared.clone(),
            destination,
            streams: [video, audio],
            settings,
            start_seconds,
        };
        let span = tracing::info_span!("stream", output = %name);
        let thread = std::thread::Builder::new()
            .name("stream".into())
            .spawn(move || span.in_scope(|| writer.run()))
            .map_err(|error| tracing::error!("cannot start the writer thread for {name}: {error}"))
            .ok();
        Self {
            shared,
            thread: Mutex::new(thread),
        }
    }

    /// Queues a packet; never blocks.
    pub fn push(&self, packet: Arc<EncodedPacket>) {
        let mut state = self.shared.lock();
        if state.closed {
            return;
        }
        state.queue.push(packet, Instant::now());
        drop(state);
        self.shared.wake.notify_all();
    }

    /// No more packets will come for this stream.
    pub fn end_stream(&self, _kind: StreamKind) {
        let mut state = self.shared.lock();
        state.open_streams = state.open_streams.saturating_sub(1);
        drop(state);
        self.shared.wake.notify_all();
    }

    /// Skips the wait before the next reconnect attempt.
    pub fn reconnect_now(&self) {
        self.shared.lock().reconnect_now = true;
        self.shared.wake.notify_all();
    }

    pub fn stats(&self) -> OutputStats {
        let now = Instant::now();
        let (queue_duration, congestion, dropped) = {
            let state = self.shared.lock();
            (
                state.queue.duration(now),
                state.queue.congestion(now),
                state.queue.counters().dropped_frames,
            )
        };
        let bitrate_kbps = {
            let mut window = lock(&self.shared.sent_window);
            while window
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(1))
            {
                window.pop_front();
            }
            window.iter().map(|(_, bytes)| *bytes).sum::<usize>() as f64 * 8.0 / 1000.0
        };
        let (latency_median, latency_p99) = {
            let latencies = lock(&self.shared.latencies);
            let mut sorted: Vec<Duration> = latencies.iter().copied().collect();
            sorted.sort();
            let at = |share: f64| {
                sorted
                    .get(((sorted.len() as f64 - 1.0) * share).round() as usize)
                    .copied()
            };
            (at(0.5), at(0.99))
        };
        let mut stats = self.shared.stats().clone();
        stats.latency_median = latency_median;
        stats.latency_p99 = latency_p99;
        stats.queue_duration = queue_duration;
        stats.congestion = congestion;
        stats.dropped_frames = dropped;
        stats.bitrate_kbps = bitrate_kbps;
        stats
    }

    /// Waits for the writer to send what is queued (or give up) and returns the final figures.
    /// Call it after both streams have ended.
    pub fn finish(&self) -> OutputStats {
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
        self.stats()
    }

    /// Whether the writer has ended (sent everything after both streams ended, gave up, or
    /// was stopped).
    pub fn is_finished(&self) -> bool {
        lock(&self.thread)
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    }

    /// Asks the writer to stop at once, dropping what is queued.
    pub fn abort(&self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
    }
}

impl std::fmt::Debug for StreamOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StreamOutput({})", self.shared.name)
    }
}

impl Drop for StreamOutput {
    fn drop(&mut self) {
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            self.abort();
            if thread.join().is_err() {
                tracing::error!("{}: the stream's writer thread panicked", self.shared.name);
            }
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    destination: Destination,
    streams: [StreamInfo; 2],
    settings: StreamSettings,
    /// The show time the stream starts at (seconds): zero, or later for a stream started
    /// while the encoders were already running.
    start_seconds: f64,
}

enum SendEnd {
    /// Both streams ended and everything queued was sent.
    Finished,
    /// The output was told to stop.
    Stopped,
}

impl Writer {
    fn run(self) {
        self.connect_and_send();
        let mut state = self.shared.lock();
        state.closed = true;
        while state.queue.pop().is_some() {}
    }

    fn connect_and_send(&self) {
        let seed = Instant::now().elapsed().as_nanos() as u64 ^ u64::from(std::process::id()) << 20;
        let mut backoff = Backoff::new(
            self.settings.reconnect,
            seed ^ self.shared.name.len() as u64,
        );
        let mut on_backup = false;
        let mut connected_before = false;
        loop {
            let endpoint = match (&self.destination.backup, on_backup) {
                (Some(backup), true) => backup,
                _ => &self.destination.primary,
            };
            self.shared.stats().on_backup = on_backup;
            self.shared.set_state(OutputState::Connecting, None);
            let offset = (!connected_before).then_some(self.start_seconds);
            let opened = Connection::open(
                endpoint,
                &self.streams,
                &self.settings,
                offset,
                self.shared.frame_times.clone(),
            );
            let failure = match opened {
                Ok(mut connection) => {
                    connected_before = true;
                    self.shared.lock().queue.set_connected();
                    self.shared.set_state(
                        OutputState::Live,
                        Some(format!("connected to {}", endpoint.masked())),
                    );
                    backoff.reset();
                    match self.send(&mut connection) {
                        Ok(SendEnd::Finished) => {
                            let result = connection.close();
                            let state = match result {
                                Ok(()) => OutputState::Stopped,
                                Err(error) => OutputState::Failed(StreamFailure::Close(error)),
                            };
                            self.shared.set_state(state, None);
                            return;
                        }
                        Ok(SendEnd::Stopped) => {
                            self.shared.set_state(OutputState::Stopped, None);
                            return;
                        }
                        Err(error) => StreamFailure::Lost {
                            endpoint: endpoint.masked().to_string(),
                            hint: lost_hint(&error, connection.enhanced),
                            cause: error,
                        },
                    }
                }
                Err(error) => StreamFailure::Connect {
                    endpoint: endpoint.masked().to_string(),
                    cause: error,
                    hint: connect_hint(endpoint),
                },
            };
            tracing::warn!("{failure}");
            self.shared.lock().queue.set_disconnected();
            if self.should_end() {
                self.shared.set_state(OutputState::Failed(failure), None);
                return;
            }
            let Some(delay) = backoff.next_delay() else {
                let reason = StreamFailure::GaveUp {
                    attempts: backoff.failures(),
                    last: Box::new(failure),
                };
                self.shared.set_state(OutputState::Failed(reason), None);
                return;
            };
            self.shared.set_state(
                OutputState::Reconnecting {
                    attempt: backoff.failures(),
                    retry_in: delay,
                },
                Some(failure.to_string()),
            );
            if !self.wait_before_retry(delay) {
                self.shared.set_state(OutputState::Stopped, None);
                return;
            }
            if self.destination.backup.is_some() {
                on_backup = !on_backup;
            }
        }
    }

    fn record_latency(&self, packet: &EncodedPacket) {
        let Some(frame_times) = &self.shared.frame_times else {
            return;
        };
        if packet.kind != StreamKind::Video {
            return;
        }
        let Some(left) = packet
            .packet
            .pts()
            .and_then(|frame| frame_times.left_compositor(frame))
        else {
            return;
        };
        let mut latencies = lock(&self.shared.latencies);
        if latencies.len() == LATENCY_SAMPLES {
            latencies.pop_front();
        }
        latencies.push_back(left.elapsed());
    }

    /// Whether the show is over: streams ended (or stop asked) and nothing left worth sending.
    fn should_end(&self) -> bool {
        let state = self.shared.lock();
        state.stop || state.open_streams == 0
    }

    /// Waits `delay`, or less if asked to reconnect now. False when told to stop instead.
    fn wait_before_retry(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let mut state = self.shared.lock();
        loop {
            if state.stop || state.open_streams == 0 {
                return false;
            }
            if state.reconnect_now {
                state.reconnect_now = false;
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|error| error.into_inner().0);
        }
    }

    fn send(&self, connection: &mut Connection) -> Result<SendEnd, ConnectionError> {
        loop {
            let packet = {
                let mut state = self.shared.lock();
                loop {
                    if state.stop {
                        return Ok(SendEnd::Stopped);
                    }
                    if let Some(packet) = state.queue.pop() {
                        break packet;
                    }
                    if state.open_streams == 0 {
                        return Ok(SendEnd::Finished);
                    }
                    state = self
                        .shared
                        .wake
                        .wait_timeout(state, Duration::from_millis(200))
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|error| error.into_inner().0);
                }
            };
            let size = connection.write(&packet)?;
            self.record_latency(&packet);
            self.shared.stats().bytes_sent += size as u64;
            lock(&self.shared.sent_window).push_back((Instant::now(), size));
        }
    }
}

/// What to check when a connection fails; FFmpeg's own reasons are often generic.
/// FFmpeg's HLS muxer, as Tally writes HLS: CMAF segments (fragmented MP4) after one
/// initialisation file, a sliding window of segments with the older ones deleted, every file
/// written under a temporary name and renamed when whole (so a crash leaves a playlist whose
/// segments are all there), and a master playlist beside the media playlist. (Pushing is
/// [`super::hls_upload`]'s, from the folder.)
fn hls_options(endpoint: &Endpoint, hls: &HlsSettings) -> ffmpeg::Dictionary<'static> {
    let folder = endpoint
        .url()
        .rsplit_once('/')
        .map_or(".", |(folder, _)| folder);
    let mut options = ffmpeg::Dictionary::new();
    options.set("hls_segment_type", "fmp4");
    options.set("hls_fmp4_init_filename", "init.mp4");
    options.set(
        "hls_segment_filename",
        &format!("{folder}/segment-%06d.m4s"),
    );
    options.set("start_number", &hls.first_segment.to_string());
    options.set("hls_time", &format!("{:.3}", hls.segment.as_secs_f64()));
    options.set("hls_list_size", &hls.window.max(1).to_string());
    options.set(
        "hls_flags",
        "delete_segments+independent_segments+temp_file+program_date_time",
    );
    options.set("master_pl_name", super::destination::HLS_MASTER_PLAYLIST);
    options
}

/// The codecs Tally announces in an enhanced RTMP `connect`: those it can send.
const ENHANCED_FOURCCS: [[u8; 4]; 2] = [*b"av01", *b"hvc1"];

/// The codec's configuration record (the contents of MP4's `hvcC` or `av1C` box), made by
/// FFmpeg's MP4 muxer from the encoder's headers.
fn configuration_record(video: &StreamInfo, codec: VideoCodec) -> Result<Vec<u8>, ffmpeg::Error> {
    let box_type: &[u8; 4] = match codec {
        VideoCodec::Hevc => b"hvcC",
        VideoCodec::Av1 => b"av1C",
        VideoCodec::H264 => b"avcC",
    };
    let file = super::cmaf::header_only_mp4(&[video])?;
    super::cmaf::find_box(&file, box_type).ok_or(ffmpeg::Error::InvalidData)
}

fn connect_hint(endpoint: &Endpoint) -> &'static str {
    match endpoint.protocol {
        Protocol::Srt if endpoint.url().contains("passphrase=") => {
            " (check that the listener is running and that both sides use the same passphrase)"
        }
        Protocol::Srt => {
            " (check that the listener is running, and whether it expects a passphrase)"
        }
        Protocol::Rtmp => {
            " (check the server address and port, and the application name and stream key)"
        }
        Protocol::Hls => " (check that the folder can be written to and that the disk has room)",
        Protocol::Rtmps => {
            " (check the server address and port, the application name and stream key, and that \
             the server's TLS certificate is valid for its name: --tls-ca-file adds a private \
             certificate authority)"
        }
    }
}

/// A server that does not take HEVC or AV1 over RTMP closes the connection once the frames
/// come; the one error it leaves says nothing about the codec.
fn lost_hint(error: &ConnectionError, enhanced: Option<VideoCodec>) -> &'static str {
    let closed = matches!(
        error,
        ConnectionError::Rtmp(RtmpError::Closed { .. } | RtmpError::Io { .. })
    );
    match enhanced {
        Some(VideoCodec::Hevc) if closed => {
            " (HEVC goes as enhanced RTMP: a server that does not take it closes the \
             connection; node-media-server 4, FFmpeg 6.1 or later and YouTube take it, \
             nginx-rtmp does not)"
        }
        Some(VideoCodec::Av1) if closed => {
            " (AV1 goes as enhanced RTMP: a server that does not take it closes the \
             connection; node-media-server 4, FFmpeg 6.1 or later and YouTube take it, \
             nginx-rtmp does not)"
        }
        _ => "",
    }
}

/// Where a connection's packets go.
enum Sink {
    /// An FFmpeg muxer writing to the network.
    Ffmpeg(ffmpeg::format::context::Output),
    /// HEVC or AV1 over RTMP: FLV tags Tally writes (see [`super::flv`]), sent by Tally's own
    /// RTMP client (see [`super::rtmp`]).
    Enhanced(Publisher),
    /// Low-latency HLS into a folder, written by Tally (see [`super::ll_hls`]).
    LowLatencyHls(Box<LowLatencyHls>),
}

/// The compositor's frame times as wall-clock times, for low-latency HLS's program dates.
struct CompositorClock(Arc<FrameTimes>);

impl FrameClock for CompositorClock {
    fn left_compositor(&self, frame: i64) -> Option<std::time::SystemTime> {
        let at = self.0.left_compositor(frame)?;
        std::time::SystemTime::now().checked_sub(at.elapsed())
    }
}

/// One connection to an ingest.
struct Connection {
    sink: Sink,
    /// `Some` (the codec) when this connection writes enhanced FLV itself.
    enhanced: Option<VideoCodec>,
    time_bases: [ffmpeg::Rational; 2],
    /// Timestamps start near zero on every connection, as servers expect of a new publish.
    /// The first connection starts where the output started (its packets are shifted back
    /// by that show time); a reconnection starts at a keyframe in mid-show, and its
    /// timestamps are shifted back by that keyframe's.
    offset_seconds: Option<f64>,
}

impl Connection {
    fn open(
        endpoint: &Endpoint,
        streams: &[StreamInfo; 2],
        settings: &StreamSettings,
        offset_seconds: Option<f64>,
        frame_times: Option<Arc<FrameTimes>>,
    ) -> Result<Self, ConnectionError> {
        if let (Protocol::Hls, Some(part)) = (endpoint.protocol, settings.hls.part) {
            let folder = std::path::Path::new(endpoint.url())
                .parent()
                .unwrap_or(std::path::Path::new("."));
            let layout = LowLatencyLayout {
                segment: settings.hls.segment,
                part,
                window: settings.hls.window,
                first_segment: settings.hls.first_segment,
            };
            let clock =
                frame_times.map(|times| Box::new(CompositorClock(times)) as Box<dyn FrameClock>);
            return Ok(Self {
                sink: Sink::LowLatencyHls(Box::new(LowLatencyHls::start(
                    folder, streams, layout, clock,
                )?)),
                enhanced: None,
                time_bases: [streams[0].time_base, streams[1].time_base],
                offset_seconds,
            });
        }
        let codec = VideoCodec::from_ffmpeg_id(streams[0].codec).unwrap_or_default();
        let muxer = endpoint.protocol.muxer(codec);
        if muxer == "flv" && codec != VideoCodec::H264 {
            return Self::open_enhanced(endpoint, streams, settings, codec, offset_seconds);
        }
        let io_timeout = settings.io_timeout;
        let mut options = ffmpeg::Dictionary::new();
        if endpoint.protocol == Protocol::Rtmps {
            // FFmpeg's TLS accepts any certificate unless told to check: a stream key sent
            // over an unchecked connection is a key given to whoever sits in the middle.
            options.set("tls_verify", "1");
            if let Some(ca_file) = &settings.tls_ca_file {
                options.set("ca_file", &ca_file.display().to_string());
            }
        }
        let timeout_micros = io_timeout.as_micros().to_string();
        options.set("rw_timeout", &timeout_micros);
        if endpoint.protocol == Protocol::Srt {
            options.set("connect_timeout", &io_timeout.as_millis().to_string());
        } else if endpoint.protocol != Protocol::Hls {
            // Keep the kernel's send buffer small: autotuned, it grows to megabytes and hides
            // a slow link from the send queue for many seconds, so drops come far too late.
            options.set("send_buffer_size", "262144");
        }
        let mut context = ffmpeg::format::output_as_with(endpoint.url(), muxer, options)?;
        for info in streams {
            let mut stream = context.add_stream(ffmpeg::encoder::find(info.codec))?;
            stream.set_parameters(info.parameters.clone());
            stream.set_time_base(info.time_base);
        }
        let mut header_options = ffmpeg::Dictionary::new();
        match muxer {
            // A live FLV stream cannot seek back to patch duration and size at the end.
            "flv" => header_options.set("flvflags", "no_duration_filesize"),
            // Matroska sends a cluster when it closes: short ones keep the delay down.
            "matroska" => header_options.set("cluster_time_limit", "200"),
            "hls" => header_options = hls_options(endpoint, &settings.hls),
            _ => {}
        }
        context.write_header_with(header_options)?;
        let time_base = |index: usize| {
            context
                .stream(index)
                .map_or(ffmpeg::Rational::new(1, 1000), |s| s.time_base())
        };
        let time_bases = [time_base(0), time_base(1)];
        Ok(Self {
            sink: Sink::Ffmpeg(context),
            enhanced: None,
            time_bases,
            offset_seconds,
        })
    }

    /// HEVC or AV1 over RTMP: Tally's RTMP client announces the codec in `connect`, then
    /// sends the metadata and both sequence headers before the first frame.
    fn open_enhanced(
        endpoint: &Endpoint,
        streams: &[StreamInfo; 2],
        settings: &StreamSettings,
        codec: VideoCodec,
        offset_seconds: Option<f64>,
    ) -> Result<Self, ConnectionError> {
        let fourcc = flv::fourcc(codec).ok_or(ffmpeg::Error::InvalidData)?;
        let config = configuration_record(&streams[0], codec)?;
        let target = PublishTarget::from_endpoint(endpoint).ok_or(ffmpeg::Error::InvalidData)?;
        let options = PublishOptions {
            io_timeout: settings.io_timeout,
            tls_ca_file: settings.tls_ca_file.clone(),
            fourcc_list: ENHANCED_FOURCCS.to_vec(),
        };
        let mut publisher = Publisher::connect(&target, &options)?;
        let picture = streams[0].picture.unwrap_or(PictureShape {
            width: 0,
            height: 0,
            fps: 0.0,
        });
        publisher.send(&flv::metadata(&flv::Metadata {
            width: picture.width,
            height: picture.height,
            fps: picture.fps,
            fourcc,
        }))?;
        publisher.send(&flv::video_sequence_start(fourcc, &config))?;
        publisher.send(&flv::audio_sequence_header(&flv::AAC_LC_48K_STEREO_CONFIG))?;
        Ok(Self {
            sink: Sink::Enhanced(publisher),
            enhanced: Some(codec),
            time_bases: [ffmpeg::Rational::new(1, 1000); 2],
            offset_seconds,
        })
    }

    /// Writes one packet; returns its size.
    fn write(&mut self, encoded: &EncodedPacket) -> Result<usize, ConnectionError> {
        let index = match encoded.kind {
            StreamKind::Video => 0,
            StreamKind::Audio => 1,
        };
        // A resumed connection starts with the keyframe the queue put first; sound that came
        // before it has no picture to go with.
        if self.offset_seconds.is_none() && encoded.kind == StreamKind::Audio {
            return Ok(0);
        }

        let mut packet = encoded.packet.clone();
        let offset = *self
            .offset_seconds
            .get_or_insert_with(|| super::send_queue::presentation_seconds(encoded));
        let shift = (offset / f64::from(encoded.time_base)).round() as i64;
        packet.set_pts(packet.pts().map(|pts| pts - shift));
        packet.set_dts(packet.dts().map(|dts| dts - shift));
        packet.set_stream(index);
        packet.rescale_ts(encoded.time_base, self.time_bases[index]);
        packet.set_position(-1);
        let size = packet.size();
        let context = match &mut self.sink {
            Sink::Ffmpeg(context) => context,
            Sink::LowLatencyHls(writer) => {
                // It keeps its own clock, from the first keyframe.
                writer.write(encoded)?;
                return Ok(size);
            }
            Sink::Enhanced(publisher) => {
                let codec = self.enhanced.unwrap_or_default();
                // Milliseconds, as FLV counts (the time bases are 1/1000 here).
                let dts = packet.dts().or(packet.pts()).unwrap_or(0).max(0);
                let pts = packet.pts().unwrap_or(dts);
                let dts_ms = u32::try_from(dts).unwrap_or(u32::MAX);
                let data = packet.data().unwrap_or(&[]);
                let tag = match encoded.kind {
                    StreamKind::Video => {
                        let cts_ms = i32::try_from(pts - dts).unwrap_or(0);
                        flv::video_frame(codec, encoded.is_keyframe(), dts_ms, cts_ms, data)
                            .ok_or(ffmpeg::Error::InvalidData)?
                    }
                    StreamKind::Audio => flv::audio_frame(dts_ms, data),
                };
                publisher.send(&tag)?;
                return Ok(size);
            }
        };
        packet.write_interleaved(context)?;
        Ok(size)
    }

    fn close(self) -> Result<(), ConnectionError> {
        match self.sink {
            Sink::Ffmpeg(mut context) => Ok(context.write_trailer()?),
            Sink::Enhanced(publisher) => Ok(publisher.close()?),
            Sink::LowLatencyHls(mut writer) => Ok(writer.finish()?),
        }
    }
}
