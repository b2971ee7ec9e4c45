//! The engine's outputs while it runs: the recording and the live streams, and the encode
//! session they share.
//!
//! An encode session (a video and an audio encoder, each on its own thread) opens when the
//! first output starts and closes after the last one stops, so a show with nothing recording or
//! streaming encodes nothing. Outputs start and stop at any frame without disturbing each
//! other: one that joins a running session gets a keyframe asked for at its first frame, one
//! that leaves ends before a keyframe asked for at its last (see [`OutputWindow`]). The render
//! thread owns this and drives it: frames and sound in, commands, and a poll each frame that
//! reaps finished threads and reports what ended as [`Event`]s.

use super::keyframes::KeyframeSchedule;
use super::{Counters, EngineError, Event, RecordingConfig, ThreadProblem};
use crate::base::lock;
use crate::base::FrameRate;
use crate::base::I420Layout;
use crate::base::{Pacing, SAMPLE_RATE};
use crate::encode::{
    i420_frame, AudioEncoder, AudioSettings, EncodeError, EncodeProfile, EncodedPacket, StreamInfo,
    StreamKind, VideoEncoder, VideoSettings,
};
use crate::output::{
    AdaptiveBitrate, Destination, FrameTimes, OutputError, OutputNotice, OutputState, OutputWindow,
    Recorder, RecordingProblem, ShowInstant, StreamOutput, StreamSettings, Verdict,
};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use ffmpeg_next as ffmpeg;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Frames waiting for the video encoder; a full queue means the encoder is behind.
const VIDEO_QUEUE: usize = 4;
/// Blocks of sound waiting for the audio encoder (audio is never skipped).
const AUDIO_QUEUE: usize = 32;
/// Packets waiting for the recorder.
const RECORDER_QUEUE: usize = 256;

/// What outputs are encoded with; fixed for the engine's run.
pub(super) struct OutputSetup {
    pub video: VideoSettings,
    pub audio: AudioSettings,
    pub stream_settings: StreamSettings,
    pub width: u32,
    pub height: u32,
    pub fps: FrameRate,
    pub pacing: Pacing,
    pub faults: super::Faults,
}

enum RecorderMessage {
    Packet(Arc<EncodedPacket>),
    End(StreamKind),
}

/// Where encoders deliver packets: a recorder (every packet, blocking: a recording must be
/// complete) or a stream output (never blocking: its queue drops by policy).
enum Target {
    Recorder(Sender<RecorderMessage>),
    Stream(Arc<StreamOutput>),
}

/// One output as the encoder threads see it: where its packets go, and which are its.
struct Sink {
    target: Target,
    window: Mutex<OutputWindow>,
}

impl Sink {
    fn deliver(&self, packet: &Arc<EncodedPacket>) {
        let keyframe = packet.kind == StreamKind::Video && packet.is_keyframe();
        let pts = packet.packet.pts().unwrap_or(0);
        let verdict = lock(&self.window).judge(packet.kind, pts, keyframe);
        match verdict {
            Verdict::Deliver => match &self.target {
                // A recorder that failed has dropped its receiver; the others carry on.
                Target::Recorder(sender) => {
                    let _ = sender.send(RecorderMessage::Packet(packet.clone()));
                }
                Target::Stream(stream) => stream.push(packet.clone()),
            },
            Verdict::End => self.end(packet.kind),
            Verdict::Skip => {}
        }
    }

    fn encoder_ended(&self, kind: StreamKind) {
        if lock(&self.window).encoder_ended(kind) {
            self.end(kind);
        }
    }

    fn end(&self, kind: StreamKind) {
        match &self.target {
            Target::Recorder(sender) => {
                let _ = sender.send(RecorderMessage::End(kind));
            }
            Target::Stream(stream) => stream.end_stream(kind),
        }
    }

    /// Tells the output to stop at `end`; false if it was stopping already.
    fn stop_at(&self, end: ShowInstant) -> bool {
        lock(&self.window).end_at(end)
    }

    fn is_stopping(&self) -> bool {
        lock(&self.window).is_stopping()
    }

    fn is_over(&self) -> bool {
        lock(&self.window).is_over()
    }
}

type Sinks = Arc<Mutex<Vec<Arc<Sink>>>>;

/// A video and an audio encoder fed from the show, from `start` until `end`, at one profile.
struct EncodeSession {
    /// The profile's name; `None` for the run's own encode.
    profile: Option<String>,
    /// The picture size it encodes (the canvas's, or its profile's).
    size: (u32, u32),
    start: ShowInstant,
    /// Set when its last output stopped: frames and sound up to here are still encoded.
    end: Option<ShowInstant>,
    video: Option<Sender<ffmpeg::frame::Video>>,
    audio: Option<Sender<Vec<f32>>>,
    sinks: Sinks,
    video_info: StreamInfo,
    audio_info: StreamInfo,
    audio_frame_size: i64,
    /// Whether its video encoder makes a keyframe where asked; if not, outputs join it at its
    /// own keyframes, every `keyframe_interval` frames from `start`.
    forces_keyframes: bool,
    keyframe_interval: u64,
    /// Frames that must be keyframes (an output starts or stops there, in this session or in
    /// another: every session is asked alike, so the encodes' keyframes stay aligned).
    keyframes: KeyframeSchedule,
    /// The bitrate its streams' adaptive bitrate asks for (kbps); 0: the configured one.
    target_kbps: Arc<AtomicU32>,
    /// Its video encoder ("H.264 (libx264)") and configured bitrate, for the statistics.
    encoder_name: String,
    configured_kbps: Option<u32>,
    threads: Vec<JoinHandle<Result<(), EncodeError>>>,
}

impl EncodeSession {
    fn open(
        setup: &OutputSetup,
        profile: Option<&EncodeProfile>,
        start: ShowInstant,
        counters: &Arc<Counters>,
    ) -> Result<(Self, String), EngineError> {
        let video_settings = profile.map_or(&setup.video, |profile| &profile.video);
        let size = profile.map_or((setup.width, setup.height), |profile| {
            profile.size_on((setup.width, setup.height))
        });
        let video_encoder = VideoEncoder::open(video_settings, size.0, size.1, setup.fps)?;
        let audio_encoder = AudioEncoder::open(&setup.audio)?.starting_at(start.sample);
        // "HEVC (libx265)": the codec people choose, and the encoder that made it.
        let name = format!(
            "{} ({})",
            video_encoder.codec().label(),
            video_encoder.name()
        );
        let forces_keyframes = video_encoder.forces_keyframes();
        let keyframe_interval = u64::from(video_settings.keyframe_interval_frames(setup.fps));
        let video_info = video_encoder.stream_info();
        let audio_info = audio_encoder.stream_info();
        let audio_frame_size = audio_encoder.frame_size() as i64;
        let sinks: Sinks = Arc::default();
        let configured_kbps = video_settings.bitrate_kbps();
        let target_kbps = Arc::new(AtomicU32::new(0));
        let video_target = target_kbps.clone();
        let (video, video_frames) = bounded(VIDEO_QUEUE);
        let video_sinks = sinks.clone();
        let video_counters = counters.clone();
        let panic_after = setup.faults.panic_video_encoder_after;
        let video_thread = spawn("encode-video", move || {
            encode_video(
                video_encoder,
                configured_kbps,
                &video_target,
                &video_frames,
                &video_sinks,
                &video_counters,
                panic_after,
            )
        })?;
        let (audio, audio_blocks) = bounded(AUDIO_QUEUE);
        let audio_sinks = sinks.clone();
        let audio_thread = spawn("encode-audio", move || {
            encode_audio(audio_encoder, &audio_blocks, &audio_sinks)
        })?;
        let session = Self {
            profile: profile.map(|profile| profile.name.clone()),
            size,
            start,
            end: None,
            video: Some(video),
            audio: Some(audio),
            sinks,
            video_info,
            audio_info,
            audio_frame_size,
            forces_keyframes,
            keyframe_interval,
            keyframes: KeyframeSchedule::default(),
            target_kbps,
            encoder_name: name.clone(),
            configured_kbps: configured_kbps.map(|(kbps, _)| kbps),
            threads: vec![video_thread, audio_thread],
        };
        Ok((session, name))
    }

    fn is_open(&self) -> bool {
        self.end.is_none() && self.video.is_some()
    }

    /// The window for an output starting at `at`: everything, if the session starts there.
    fn window_from(&self, at: ShowInstant) -> OutputWindow {
        let window = if at == self.start {
            OutputWindow::from_first_packet()
        } else {
            OutputWindow::joining_at(at, self.audio_frame_size)
        };
        // No keyframe can be asked for where the output stops; SVT-AV1's pictures are coded in
        // the order they are shown, so the stop frame itself ends a whole sequence.
        if self.forces_keyframes {
            window
        } else {
            window.ending_at_any_frame()
        }
    }

    fn attach(&self, target: Target, window: OutputWindow) -> Arc<Sink> {
        let sink = Arc::new(Sink {
            target,
            window: Mutex::new(window),
        });
        lock(&self.sinks).push(sink.clone());
        sink
    }

    fn is_finished(&self) -> bool {
        self.video.is_none()
            && self.audio.is_none()
            && self.threads.iter().all(JoinHandle::is_finished)
    }

    /// Waits for the encoder threads (after both inputs were closed); the first error.
    fn join(self) -> Result<(), EngineError> {
        drop(self.video);
        drop(self.audio);
        let mut result = Ok(());
        for thread in self.threads {
            let joined = match thread.join() {
                Ok(joined) => joined.map_err(EngineError::from),
                Err(_) => Err(EngineError::Thread(ThreadProblem::Panicked("encoder"))),
            };
            if result.is_ok() {
                result = joined;
            }
        }
        result
    }
}

struct RecordingOutput {
    path: PathBuf,
    /// The profile it is encoded at (`None`: the run's own encode).
    profile: Option<String>,
    sink: Arc<Sink>,
    thread: JoinHandle<Result<(), OutputError>>,
}

impl RecordingOutput {
    /// Waits for the file to be finished; its path and how it ended.
    fn join(self) -> (PathBuf, Result<(), EngineError>) {
        let result = match self.thread.join() {
            Ok(result) => result.map_err(EngineError::from),
            Err(_) => Err(EngineError::Thread(ThreadProblem::Panicked("recorder"))),
        };
        (self.path, result)
    }
}

struct LiveStream {
    /// Where it goes, keys and all: two streams to one server differ only in their keys, which
    /// their names mask.
    destination: Destination,
    output: Arc<StreamOutput>,
    sink: Arc<Sink>,
    adaptive: Option<AdaptiveBitrate>,
    /// The profile it is encoded at (`None`: the run's own encode).
    profile: Option<String>,
}

pub(super) struct Outputs {
    setup: OutputSetup,
    counters: Arc<Counters>,
    /// The open session last; sessions whose outputs all stopped finish encoding before it.
    sessions: Vec<EncodeSession>,
    recordings: Vec<RecordingOutput>,
    streams: Vec<LiveStream>,
    /// Streams were stopped (or failed to start) and `StreamingStopped` is still to be said.
    streams_stopping: bool,
    notices: Sender<OutputNotice>,
    notice_receiver: Receiver<OutputNotice>,
    frame_times: Arc<FrameTimes>,
    /// The video encoder the last session opened, for the run's summary.
    pub encoder_name: Option<String>,
    /// An encoder or output failed; with `stop_on_failure` the engine stops.
    failed: bool,
    /// Errors of outputs that ended while the engine ran, returned when it stops.
    first_error: Option<EngineError>,
    last_adapted: Instant,
}

impl Outputs {
    pub fn new(setup: OutputSetup, counters: Arc<Counters>) -> Self {
        let (notices, notice_receiver) = bounded(256);
        Self {
            setup,
            counters,
            sessions: Vec::new(),
            recordings: Vec::new(),
            streams: Vec::new(),
            streams_stopping: false,
            notices,
            notice_receiver,
            frame_times: Arc::new(FrameTimes::default()),
            encoder_name: None,
            failed: false,
            first_error: None,
            last_adapted: Instant::now(),
        }
    }

    fn instant(&self, frame: u64) -> ShowInstant {
        ShowInstant {
            frame: frame as i64,
            sample: self.setup.fps.first_sample_of_frame(frame, SAMPLE_RATE) as i64,
        }
    }

    fn seconds(&self, frame: u64) -> f64 {
        self.setup.fps.frame_start_nanos(frame) as f64 / 1e9
    }

    /// The frame an output asked for at `frame` starts at, on the session of `profile` (the
    /// run's own encode for `None`), which opens there if it is not open. Joining a running
    /// encode, it starts on a keyframe: one asked for at `frame`, or, where the encoder cannot
    /// be asked, the encoder's next own keyframe. Every other open session is asked for a
    /// keyframe at the same frame, so the encodes' keyframes stay at the same instants.
    fn join_at(&mut self, frame: u64, profile: Option<&EncodeProfile>) -> Result<u64, EngineError> {
        let key = profile.map(|profile| profile.name.clone());
        if self.open_session(&key).is_err() {
            let (session, name) =
                EncodeSession::open(&self.setup, profile, self.instant(frame), &self.counters)?;
            if key.is_none() {
                if let Ok(mut shown) = self.counters.encoder.lock() {
                    shown.clone_from(&Some(name.clone()));
                }
            }
            if key.is_none() || self.encoder_name.is_none() {
                self.encoder_name = Some(name);
            }
            self.want_keyframe(frame);
            self.sessions.push(session);
            self.publish_encodes();
            return Ok(frame);
        }
        let session = self.open_session(&key)?;
        if session.forces_keyframes {
            self.want_keyframe(frame);
            return Ok(frame);
        }
        // Its keyframes come every interval from its first frame (no scene-cut keyframes).
        let first = u64::try_from(session.start.frame).unwrap_or(0);
        let interval = session.keyframe_interval.max(1);
        Ok(first + frame.saturating_sub(first).div_ceil(interval) * interval)
    }

    /// Asks every open session for a keyframe at `frame`.
    fn want_keyframe(&mut self, frame: u64) {
        for session in self.sessions.iter_mut().filter(|s| s.is_open()) {
            session.keyframes.want(frame);
        }
    }

    /// The open session of profile `key`, which outputs of that profile join.
    fn open_session(&self, key: &Option<String>) -> Result<&EncodeSession, EngineError> {
        self.sessions
            .iter()
            .rev()
            .find(|session| session.is_open() && session.profile == *key)
            .ok_or(EngineError::Thread(ThreadProblem::NoEncodeSession))
    }

    /// The picture sizes the open sessions encode: the compositor makes one conversion each.
    pub fn wanted_sizes(&self) -> Vec<(u32, u32)> {
        let mut sizes: Vec<(u32, u32)> = self
            .sessions
            .iter()
            .filter(|session| session.video.is_some())
            .map(|session| session.size)
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// Starts recording at canvas frame `frame`.
    pub fn start_recording(
        &mut self,
        config: &RecordingConfig,
        frame: u64,
    ) -> Result<(), EngineError> {
        if let Some(current) = self.recordings.iter().find(|r| !r.sink.is_stopping()) {
            return Err(OutputError::Recording {
                path: config.path.display().to_string(),
                cause: RecordingProblem::AlreadyRecording(current.path.clone()),
            }
            .into());
        }
        let frame = self.join_at(frame, config.profile.as_ref())?;
        let start = self.instant(frame);
        let start_seconds = self.seconds(frame);
        let counters = self.counters.clone();
        let profile = config.profile.as_ref().map(|profile| profile.name.clone());
        let session = self.open_session(&profile)?;
        let recorder = Recorder::create(
            &config.path,
            config.format,
            &session.video_info,
            &session.audio_info,
        )?
        .starting_at(start_seconds);
        let (sender, packets) = bounded(RECORDER_QUEUE);
        let thread = spawn("record", move || record(recorder, &packets, &counters))?;
        let window = session.window_from(start);
        let sink = session.attach(Target::Recorder(sender), window);
        self.recordings.push(RecordingOutput {
            path: config.path.clone(),
            profile,
            sink,
            thread,
        });
        self.counters.bytes_written.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Stops the recording at canvas frame `frame` (the file ends before it), if one runs.
    pub fn stop_recording(&mut self, frame: u64) {
        let end = self.instant(frame);
        if stop_all(self.recordings.iter().map(|r| &r.sink), end) {
            self.after_stop(frame);
        }
    }

    /// Starts streaming to `destinations` at canvas frame `frame`, beside any streams already
    /// live.
    pub fn start_streams(
        &mut self,
        destinations: &[Destination],
        frame: u64,
    ) -> Result<(), EngineError> {
        if destinations.is_empty() {
            return Ok(());
        }
        let mut started = Vec::new();
        for destination in destinations {
            let profile = destination.profile.as_ref();
            let frame = self.join_at(frame, profile)?;
            let start = self.instant(frame);
            let start_seconds = self.seconds(frame);
            let adaptive_kbps = profile
                .map_or(&self.setup.video, |profile| &profile.video)
                .bitrate_kbps()
                .filter(|_| self.setup.stream_settings.adaptive_bitrate)
                .map(|(kbps, _)| kbps);
            let key = profile.map(|profile| profile.name.clone());
            let session = self.open_session(&key)?;
            let mut settings = self.setup.stream_settings.clone();
            if let Some(hls) = destination.hls {
                settings.hls = hls;
            }
            let output = Arc::new(StreamOutput::start(
                destination.clone(),
                session.video_info.clone(),
                session.audio_info.clone(),
                settings,
                self.notices.clone(),
                Some(self.frame_times.clone()),
                start_seconds,
            ));
            let sink = session.attach(Target::Stream(output.clone()), session.window_from(start));
            started.push(LiveStream {
                destination: destination.clone(),
                output,
                sink,
                adaptive: adaptive_kbps.map(AdaptiveBitrate::new),
                profile: key,
            });
        }
        self.streams.extend(started);
        self.streams_stopping = false;
        self.publish_streams();
        Ok(())
    }

    /// Stops the live streams to `only` (every one when `None`) at canvas frame `frame`.
    pub fn stop_streams(&mut self, frame: u64, only: Option<&[Destination]>) {
        let end = self.instant(frame);
        let chosen = self
            .streams
            .iter()
            .filter(|stream| only.is_none_or(|wanted| wanted.contains(&stream.destination)));
        if stop_all(chosen.map(|s| &s.sink), end) {
            self.streams_stopping = true;
            if self.streams.iter().all(|stream| stream.sink.is_stopping()) {
                self.counters.video_target_kbps.store(0, Ordering::Relaxed);
                for session in &self.sessions {
                    session.target_kbps.store(0, Ordering::Relaxed);
                }
            }
            self.after_stop(frame);
        }
    }

    /// Outputs stopped at `frame`: a session whose outputs have all stopped finishes encoding
    /// there; the others make a keyframe there (all alike, to stay aligned).
    fn after_stop(&mut self, frame: u64) {
        let end = self.instant(frame);
        let in_use: Vec<Option<String>> = self
            .recordings
            .iter()
            .filter(|r| !r.sink.is_stopping())
            .map(|r| r.profile.clone())
            .chain(
                self.streams
                    .iter()
                    .filter(|s| !s.sink.is_stopping())
                    .map(|s| s.profile.clone()),
            )
            .collect();
        for session in self.sessions.iter_mut().filter(|s| s.is_open()) {
            if in_use.contains(&session.profile) {
                session.keyframes.want(frame);
            } else {
                session.end = Some(end);
            }
        }
        self.publish_encodes();
    }

    /// Settings for the next session; a running one keeps its own.
    pub fn set_video_settings(&mut self, video: VideoSettings) {
        self.setup.video = video;
    }

    pub fn reconnect_streams(&self) {
        for stream in &self.streams {
            stream.output.reconnect_now();
        }
    }

    /// Whether any session still takes frames (the compositor then reads frames back).
    pub fn wants_video(&self) -> bool {
        self.sessions.iter().any(|session| session.video.is_some())
    }

    /// Whether any session still takes sound.
    pub fn wants_audio(&self) -> bool {
        self.sessions.iter().any(|session| session.audio.is_some())
    }

    /// Whether the engine should stop: an encoder failed and `stop_on_failure` holds.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// A canvas frame read back from the compositor.
    /// A frame read back from the compositor at one of [`Self::wanted_sizes`]: it goes to the
    /// sessions of that size.
    pub fn video_frame(&mut self, index: u64, bytes: &[u8], layout: &I420Layout) {
        let size = (layout.width, layout.height);
        if !self.streams.is_empty() && size == (self.setup.width, self.setup.height) {
            self.frame_times.record(index as i64, Instant::now());
        }
        let pacing = self.setup.pacing;
        for session in &mut self.sessions {
            if session.size != size {
                continue;
            }
            let Some(sender) = &session.video else {
                continue;
            };
            if (index as i64) < session.start.frame {
                continue;
            }
            if session.end.is_some_and(|end| index as i64 >= end.frame) {
                session.video = None;
                continue;
            }
            let mut frame = i420_frame(index, bytes, layout);
            let keyframe = session.end.is_none() && session.keyframes.due(index);
            if keyframe {
                frame.set_kind(ffmpeg::picture::Type::I);
            }
            let sent = match pacing {
                Pacing::RealTime => match sender.try_send(frame) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => {
                        self.counters.skipped.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        session.video = None;
                        self.failed = true;
                        false
                    }
                },
                Pacing::Deterministic => {
                    let sent = sender.send(frame).is_ok();
                    if !sent {
                        session.video = None;
                        self.failed = true;
                    }
                    sent
                }
            };
            if sent && keyframe {
                session.keyframes.sent_keyframe(index);
            }
        }
    }

    /// The mix for show samples `span` (interleaved stereo), trimmed to each session's span.
    pub fn audio_block(&mut self, span: Range<u64>, block: &[f32]) {
        for session in &mut self.sessions {
            let Some(sender) = &session.audio else {
                continue;
            };
            let from = session.start.sample as u64;
            let until = session.end.map_or(u64::MAX, |end| end.sample as u64);
            let (first, last) = (span.start.max(from), span.end.min(until));
            if last > first {
                let channels = block.len() / (span.end - span.start).max(1) as usize;
                let at = |sample: u64| ((sample - span.start) as usize * channels).min(block.len());
                if sender.send(block[at(first)..at(last)].to_vec()).is_err() {
                    session.audio = None;
                    self.failed = true;
                    continue;
                }
            }
            if span.end >= until {
                session.audio = None;
            }
        }
    }

    /// Lowers each session's bitrate to what the most congested of its live streams carries;
    /// a recording at another profile keeps its own.
    pub fn adapt_bitrate(&mut self) {
        if self.last_adapted.elapsed() < Duration::from_millis(250) {
            return;
        }
        let now = Instant::now();
        self.last_adapted = now;
        let mut targets: Vec<(Option<String>, u32)> = Vec::new();
        for stream in self
            .streams
            .iter_mut()
            .filter(|stream| !stream.sink.is_stopping())
        {
            let Some(controller) = stream.adaptive.as_mut() else {
                continue;
            };
            let stats = stream.output.stats();
            let target = if stats.state == OutputState::Live {
                controller.update(now, stats.congestion, stats.bitrate_kbps)
            } else {
                controller.current_kbps()
            };
            match targets.iter_mut().find(|(key, _)| *key == stream.profile) {
                Some((_, lowest)) => *lowest = (*lowest).min(target),
                None => targets.push((stream.profile.clone(), target)),
            }
        }
        for (key, target) in targets {
            if let Ok(session) = self.open_session(&key) {
                session.target_kbps.store(target, Ordering::Relaxed);
            }
            if key.is_none() {
                self.counters
                    .video_target_kbps
                    .store(target, Ordering::Relaxed);
            }
        }
    }

    /// Reaps what has finished and says so: recordings closed, streams ended, sessions done.
    pub fn poll(&mut self, events: &super::events::EventSink) {
        while let Ok(notice) = self.notice_receiver.try_recv() {
            events.send(Event::Output(notice));
        }
        for session in &self.sessions {
            lock(&session.sinks).retain(|sink| !sink.is_over());
        }
        let (finished, running): (Vec<_>, Vec<_>) = std::mem::take(&mut self.recordings)
            .into_iter()
            .partition(|recording| recording.thread.is_finished());
        self.recordings = running;
        for recording in finished {
            let (path, result) = recording.join();
            let error = result.err();
            events.send(Event::RecordingStopped {
                path,
                error: error.as_ref().map(ToString::to_string),
            });
            if let Some(error) = error {
                self.failed = true;
                self.first_error.get_or_insert(error);
            }
        }
        let before = self.streams.len();
        self.streams.retain(|stream| {
            let done = stream.sink.is_stopping() && stream.output.is_finished();
            if done {
                stream.output.finish();
            }
            !done
        });
        if self.streams.len() != before {
            self.publish_streams();
        }
        if self.streams_stopping && !self.streams.iter().any(|s| s.sink.is_stopping()) {
            self.streams_stopping = false;
            events.send(Event::StreamingStopped { error: None });
        }
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sessions)
            .into_iter()
            .partition(EncodeSession::is_finished);
        self.sessions = open;
        if !done.is_empty() {
            self.publish_encodes();
        }
        for session in done {
            if let Err(error) = session.join() {
                events.send(Event::Warning(format!("encoding stopped: {error}")));
                self.failed = true;
                self.first_error.get_or_insert(error);
            }
        }
    }

    /// Publishes the open sessions for the statistics: when one opens, ends or finishes, not
    /// every frame.
    fn publish_encodes(&self) {
        let encodes = self
            .sessions
            .iter()
            .filter(|session| session.is_open())
            .map(|session| super::EncodeStatus {
                profile: session.profile.clone(),
                encoder: session.encoder_name.clone(),
                size: session.size,
                configured_kbps: session.configured_kbps,
                target_kbps: session.target_kbps.clone(),
            })
            .collect();
        *lock(&self.counters.encodes) = encodes;
    }

    fn publish_streams(&self) {
        let outputs = self.streams.iter().map(|s| s.output.clone()).collect();
        *lock(&self.counters.streams) = outputs;
    }

    /// Ends everything at the engine's stop: encoders drain, then outputs close. The first
    /// error of the run.
    pub fn finish(mut self) -> Result<(), EngineError> {
        let mut result = self.first_error.take().map_or(Ok(()), Err);
        for session in std::mem::take(&mut self.sessions) {
            let joined = session.join();
            if result.is_ok() {
                result = joined;
            }
        }
        for recording in std::mem::take(&mut self.recordings) {
            let (_, joined) = recording.join();
            if result.is_ok() {
                result = joined;
            }
        }
        for stream in &self.streams {
            let stats = stream.output.finish();
            tracing::info!(
                "{}: {} ({} bytes sent)",
                stats.name,
                stats.state,
                stats.bytes_sent
            );
        }
        result
    }
}

/// Tells each output behind `sinks` to stop at `end`; whether any was still running.
fn stop_all<'a>(sinks: impl Iterator<Item = &'a Arc<Sink>>, end: ShowInstant) -> bool {
    sinks.fold(false, |stopped, sink| sink.stop_at(end) | stopped)
}

fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, EngineError> {
    let span = tracing::info_span!("thread", name);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || span.in_scope(work))
        .map_err(|cause| {
            EngineError::Thread(ThreadProblem::Spawn {
                name: name.to_string(),
                cause,
            })
        })
}

fn fan_out(sinks: &Sinks, packets: Vec<EncodedPacket>) {
    if packets.is_empty() {
        return;
    }
    let sinks = lock(sinks).clone();
    for packet in packets {
        let packet = Arc::new(packet);
        for sink in &sinks {
            sink.deliver(&packet);
        }
    }
}

/// Tells every output that an encoder's stream has ended when it is dropped: when the encoder
/// is done, and also when its thread unwinds from a panic, since the recorder and the stream
/// writers wait for this to finish their files.
struct EndOfStream<'a> {
    sinks: &'a Sinks,
    kind: StreamKind,
}

impl Drop for EndOfStream<'_> {
    fn drop(&mut self) {
        for sink in lock(self.sinks).iter() {
            sink.encoder_ended(self.kind);
        }
    }
}

fn encode_video(
    mut encoder: VideoEncoder,
    configured_kbps: Option<(u32, u32)>,
    target_kbps: &AtomicU32,
    frames: &Receiver<ffmpeg::frame::Video>,
    sinks: &Sinks,
    counters: &Counters,
    panic_after: Option<u64>,
) -> Result<(), EncodeError> {
    let _end = EndOfStream {
        sinks,
        kind: StreamKind::Video,
    };
    let mut applied_kbps = configured_kbps.map_or(0, |(kbps, _)| kbps);
    let mut handed = 0u64;
    (|| {
        for frame in frames {
            handed += 1;
            if panic_after.is_some_and(|after| handed > after) {
                panic!("injected fault: the video encoder panics after {handed} frames");
            }
            // 0: no stream asks for less than the configured bitrate (any more).
            if let Some((kbps, max_kbps)) = configured_kbps {
                let target = match target_kbps.load(Ordering::Relaxed) {
                    0 => kbps,
                    target => target,
                };
                if target != applied_kbps {
                    let max = u64::from(target) * u64::from(max_kbps) / u64::from(kbps.max(1));
                    encoder.set_bitrate(target, u32::try_from(max).unwrap_or(u32::MAX));
                    applied_kbps = target;
                }
            }
            let packets = encoder.encode(&frame)?;
            counters.encoded.fetch_add(1, Ordering::Relaxed);
            fan_out(sinks, packets);
        }
        fan_out(sinks, encoder.finish()?);
        Ok(())
    })()
}

fn encode_audio(
    mut encoder: AudioEncoder,
    blocks: &Receiver<Vec<f32>>,
    sinks: &Sinks,
) -> Result<(), EncodeError> {
    let _end = EndOfStream {
        sinks,
        kind: StreamKind::Audio,
    };
    for block in blocks {
        fan_out(sinks, encoder.encode(&block)?);
    }
    fan_out(sinks, encoder.finish()?);
    Ok(())
}

fn record(
    mut recorder: Recorder,
    packets: &Receiver<RecorderMessage>,
    counters: &Counters,
) -> Result<(), OutputError> {
    let mut open_streams = vec![StreamKind::Video, StreamKind::Audio];
    for message in packets {
        match message {
            RecorderMessage::Packet(packet) => {
                if let Err(error) = recorder.write(&packet) {
                    recorder.abandon();
                    return Err(error);
                }
                counters
                    .bytes_written
                    .store(recorder.bytes_written(), Ordering::Relaxed);
            }
            RecorderMessage::End(kind) => {
                open_streams.retain(|open| *open != kind);
                if open_streams.is_empty() {
                    break;
                }
            }
        }
    }
    recorder.finish()
}
