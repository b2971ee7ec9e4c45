//! Media files: anything the system FFmpeg decodes, video and its audio, looping or not.
//!
//! Video and audio are decoded on two threads that each open the file, so neither waits on
//! the other's queue (one decoder feeding two bounded queues can deadlock when the file's
//! interleaving is coarser than a queue). Both map the file onto the same timeline: media time
//! zero is when the engine starts, and a loop lasts the container's duration, so pictures and
//! sound stay together however often the file repeats.

use super::{
    spawn_source_thread, ControlError, MediaControl, MediaPlayback, Notices, PlaybackState,
    RunningSource,
};
use crate::base::{FrameRef, Pacing, Packing, Tick, VideoFrame, AUDIO_CHANNELS, SAMPLE_RATE};
use crate::scene::MediaSource;
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use ffmpeg_next as ffmpeg;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Decoded pictures kept ready ahead of the render clock.
const VIDEO_QUEUE_FRAMES: usize = 3;
/// Decoded sound kept ready, in chunks of one decoded frame each (about 20-40 ms).
const AUDIO_QUEUE_CHUNKS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot open media file {path}: {cause}")]
    Open { path: String, cause: MediaProblem },
}

/// What is wrong with a media file, or with playing it here.
#[derive(Debug, thiserror::Error)]
pub enum MediaProblem {
    #[error("not a media file FFmpeg can read ({0})")]
    Unreadable(ffmpeg::Error),
    #[error("no decoder for its video: {0}")]
    NoVideoDecoder(ffmpeg::Error),
    #[error("it has neither video nor audio")]
    NothingToPlay,
    #[error("its picture does not decode: {0}")]
    PictureUndecodable(ffmpeg::Error),
    #[error("it holds no picture that decodes")]
    NoPicture,
    #[error("its sound does not decode: {0}")]
    SoundUndecodable(ffmpeg::Error),
    #[error("it holds no sound that decodes")]
    NoSound,
    #[error("cannot start its decoder thread: {0}")]
    Thread(std::io::Error),
}

struct DecodedPicture {
    pts_nanos: i64,
    frame: Arc<VideoFrame>,
}

struct DecodedSound {
    /// Index of the first sample (per channel) on the media timeline.
    first_sample: u64,
    samples: Vec<f32>,
}

pub struct MediaPlayer {
    path: PathBuf,
    info: FileInfo,
    looping: bool,
    decode_size: [u32; 2],
    /// Engine time at which the file's time zero plays: zero, or when it was restarted, moved
    /// on by every pause.
    media_zero: Duration,
    /// Engine time at which it was paused, while it is.
    paused_at: Option<Duration>,
    size: [u32; 2],
    video: Option<Receiver<DecodedPicture>>,
    pending_picture: Option<DecodedPicture>,
    current: Option<FrameRef>,
    generation: u64,
    audio: Option<Receiver<DecodedSound>>,
    sound: VecDeque<f32>,
    /// Media-timeline index of the first sample in `sound`.
    sound_start: u64,
    audio_finished: bool,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Decode errors and a decoder thread's death, for the operator.
    notices: Notices,
}

#[derive(Debug, Clone, Copy)]
struct FileInfo {
    width: u32,
    height: u32,
    has_video: bool,
    has_audio: bool,
    /// How long one pass of the file lasts; the loop period.
    duration_nanos: i64,
}

fn probe(path: &Path) -> Result<FileInfo, MediaProblem> {
    let input = ffmpeg::format::input(path).map_err(MediaProblem::Unreadable)?;
    let video = input.streams().best(ffmpeg::media::Type::Video);
    let (width, height) = match &video {
        Some(stream) => {
            let decoder = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
                .and_then(|context| context.decoder().video())
                .map_err(MediaProblem::NoVideoDecoder)?;
            (decoder.width(), decoder.height())
        }
        None => (0, 0),
    };
    let has_audio = input.streams().best(ffmpeg::media::Type::Audio).is_some();
    if video.is_none() && !has_audio {
        return Err(MediaProblem::NothingToPlay);
    }
    let duration_nanos = if input.duration() > 0 {
        input.duration() * 1_000_000_000 / i64::from(ffmpeg::ffi::AV_TIME_BASE)
    } else {
        0
    };
    Ok(FileInfo {
        width,
        height,
        has_video: video.is_some(),
        has_audio,
        duration_nanos,
    })
}

impl MediaPlayer {
    /// Opens `path`. `shown_at` gives the largest scale the picture is displayed at for the
    /// file's native size; pictures are decoded at that size (the app will reopen sources
    /// when an item grows).
    pub fn open(
        path: &Path,
        settings: &MediaSource,
        shown_at: impl Fn([u32; 2]) -> Option<f32>,
    ) -> Result<Self, MediaError> {
        crate::base::init_ffmpeg();
        let info = probe(path).map_err(|cause| MediaError::Open {
            path: path.display().to_string(),
            cause,
        })?;
        let looping = settings.looping && info.duration_nanos > 0;
        let decode_size = decode_size(
            [info.width, info.height],
            shown_at([info.width, info.height]),
        );
        let mut player = Self {
            path: path.to_path_buf(),
            info,
            looping,
            decode_size,
            media_zero: Duration::ZERO,
            paused_at: None,
            size: [info.width.max(1), info.height.max(1)],
            video: None,
            pending_picture: None,
            current: None,
            generation: 0,
            audio: None,
            sound: VecDeque::new(),
            sound_start: 0,
            audio_finished: false,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            notices: Notices::default(),
        };
        player.start_decoders()?;
        Ok(player)
    }

    /// (Re)starts decoding from the file's beginning: the decoder threads there were are
    /// stopped first, and what they had decoded is dropped (the last picture stays on screen
    /// until the first new one).
    fn start_decoders(&mut self) -> Result<(), MediaError> {
        self.stop_decoders();
        self.stop = Arc::new(AtomicBool::new(false));
        self.pending_picture = None;
        self.sound.clear();
        self.sound_start = 0;
        self.audio_finished = false;
        let name = self
            .path
            .file_name()
            .map_or("media".into(), |n| n.to_string_lossy().to_string());
        let job = || DecodeJob {
            decode_size: self.decode_size,
            path: self.path.clone(),
            looping: self.looping,
            duration_nanos: self.info.duration_nanos,
            stop: self.stop.clone(),
            first_only: false,
            notices: self.notices.clone(),
        };
        if self.info.has_video {
            let (sender, receiver) = bounded(VIDEO_QUEUE_FRAMES);
            let job = job();
            self.threads.push(spawn(
                &format!("media-video {name}"),
                &self.notices,
                move || job.run_video(&sender),
            )?);
            self.video = Some(receiver);
        }
        if self.info.has_audio {
            let (sender, receiver) = bounded(AUDIO_QUEUE_CHUNKS);
            let job = job();
            self.threads.push(spawn(
                &format!("media-audio {name}"),
                &self.notices,
                move || job.run_audio(&sender),
            )?);
            self.audio = Some(receiver);
        }
        Ok(())
    }

    fn stop_decoders(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock decoders waiting on a full queue.
        self.video = None;
        self.audio = None;
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                // spawn_source_thread catches panics inside the thread; nothing left to say.
                tracing::debug!("a decoder thread of {} ended badly", self.path.display());
            }
        }
    }

    /// Engine time `now` as a time in the file (zero before it starts playing).
    fn media_time(&self, now: Duration) -> Duration {
        self.paused_at
            .unwrap_or(now)
            .saturating_sub(self.media_zero)
    }

    fn next_picture(&mut self, pacing: Pacing) -> Option<DecodedPicture> {
        let receiver = self.video.as_ref()?;
        match pacing {
            Pacing::RealTime => match receiver.try_recv() {
                Ok(picture) => Some(picture),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => {
                    self.video = None;
                    None
                }
            },
            Pacing::Deterministic => match receiver.recv() {
                Ok(picture) => Some(picture),
                Err(_) => {
                    self.video = None;
                    None
                }
            },
        }
    }

    /// Media-timeline index just past the last sample in `sound`.
    fn sound_end(&self) -> u64 {
        self.sound_start + (self.sound.len() / AUDIO_CHANNELS) as u64
    }

    /// Pulls decoded sound until `sound` reaches `end_sample` (or what is ready, live).
    fn fill_sound(&mut self, end_sample: u64, pacing: Pacing) {
        while !self.audio_finished && self.sound_end() < end_sample {
            let Some(receiver) = &self.audio else {
                self.audio_finished = true;
                break;
            };
            let chunk = match pacing {
                Pacing::RealTime => match receiver.try_recv() {
                    Ok(chunk) => chunk,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.audio_finished = true;
                        break;
                    }
                },
                Pacing::Deterministic => match receiver.recv() {
                    Ok(chunk) => chunk,
                    Err(_) => {
                        self.audio_finished = true;
                        break;
                    }
                },
            };
            if self.sound.is_empty() {
                self.sound_start = chunk.first_sample;
            }
            self.sound.extend(chunk.samples);
        }
    }
}

impl RunningSource for MediaPlayer {
    fn size(&self) -> [u32; 2] {
        self.size
    }

    fn video(&mut self, tick: Tick) -> Option<FrameRef> {
        if self.paused_at.is_some() {
            return self.current.clone();
        }
        let now = i64::try_from(self.media_time(tick.time).as_nanos()).unwrap_or(i64::MAX);
        loop {
            if self.pending_picture.is_none() {
                self.pending_picture = self.next_picture(tick.pacing);
            }
            match self.pending_picture.take() {
                Some(picture) if picture.pts_nanos <= now => {
                    self.generation += 1;
                    self.current = Some(FrameRef {
                        frame: picture.frame,
                        generation: self.generation,
                    });
                }
                other => {
                    self.pending_picture = other;
                    break;
                }
            }
        }
        self.current.clone()
    }

    fn mix_audio(&mut self, first_sample: u64, out: &mut [f32], pacing: Pacing) {
        if self.paused_at.is_some() {
            return;
        }
        // The file's sound starts `media_zero` into the show: the engine samples before that
        // stay silent, the rest are the file's from its first sample.
        let zero =
            u64::try_from(self.media_zero.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000)
                .unwrap_or(u64::MAX);
        let silent = zero
            .saturating_sub(first_sample)
            .min((out.len() / AUDIO_CHANNELS) as u64) as usize;
        let out = &mut out[silent * AUDIO_CHANNELS..];
        let first_sample = first_sample + silent as u64 - zero.min(first_sample + silent as u64);
        let wanted = (out.len() / AUDIO_CHANNELS) as u64;
        self.fill_sound(first_sample + wanted, pacing);
        // Drop what is already in the past (live: sound that arrived late).
        if self.sound_start < first_sample {
            let stale =
                ((first_sample - self.sound_start) as usize * AUDIO_CHANNELS).min(self.sound.len());
            self.sound.drain(..stale);
            self.sound_start += (stale / AUDIO_CHANNELS) as u64;
        }
        let offset = (self.sound_start.saturating_sub(first_sample) as usize) * AUDIO_CHANNELS;
        let available = self.sound.len().min(out.len().saturating_sub(offset));
        for (slot, sample) in out
            .iter_mut()
            .skip(offset)
            .zip(self.sound.drain(..available))
        {
            *slot += sample;
        }
        self.sound_start += (available / AUDIO_CHANNELS) as u64;
    }

    fn notices(&self) -> Option<&Notices> {
        Some(&self.notices)
    }

    fn control(&mut self, control: MediaControl, now: Duration) -> Result<(), ControlError> {
        match control {
            MediaControl::Pause => {
                self.paused_at.get_or_insert(now);
            }
            MediaControl::Play => {
                if let Some(paused_at) = self.paused_at.take() {
                    self.media_zero += now.saturating_sub(paused_at);
                }
            }
            MediaControl::Restart => {
                self.paused_at = None;
                self.media_zero = now;
                self.start_decoders()?;
            }
        }
        Ok(())
    }

    fn has_ended(&self) -> bool {
        !self.looping
            && self.pending_picture.is_none()
            && (self.video.is_none() || !self.info.has_video)
            && (self.audio_finished || !self.info.has_audio)
            && self.sound.is_empty()
    }

    fn playback(&self, now: Duration) -> Option<MediaPlayback> {
        let duration = u64::try_from(self.info.duration_nanos)
            .ok()
            .filter(|nanos| *nanos > 0)
            .map(Duration::from_nanos);
        let state = if self.has_ended() {
            PlaybackState::Ended
        } else if self.paused_at.is_some() {
            PlaybackState::Paused
        } else {
            PlaybackState::Playing
        };
        let played = self.media_time(now);
        let cursor = match (duration, state) {
            (Some(duration), PlaybackState::Ended) => duration,
            (Some(duration), _) if self.looping => Duration::from_nanos(
                (played.as_nanos() % duration.as_nanos())
                    .try_into()
                    .unwrap_or(0),
            ),
            (Some(duration), _) => played.min(duration),
            (None, _) => played,
        };
        Some(MediaPlayback {
            state,
            cursor,
            duration,
        })
    }

    fn preroll(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.pending_picture.is_none() && self.video.is_some() {
            let Some(receiver) = &self.video else { break };
            let remaining = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(remaining) {
                Ok(picture) => self.pending_picture = Some(picture),
                Err(_) => break,
            }
        }
    }
}

impl Drop for MediaPlayer {
    fn drop(&mut self) {
        self.stop_decoders();
    }
}

/// Starts a decoder thread (see [`spawn_source_thread`]).
fn spawn(
    name: &str,
    notices: &Notices,
    work: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, MediaError> {
    spawn_source_thread(name, notices, work).map_err(|error| MediaError::Open {
        path: name.to_string(),
        cause: MediaProblem::Thread(error),
    })
}

/// The picture size to decode at: native, scaled down to `scale` (never up), with even sides.
fn decode_size(native: [u32; 2], scale: Option<f32>) -> [u32; 2] {
    let scale = scale.unwrap_or(1.0).clamp(0.01, 1.0);
    native.map(|side| {
        let scaled = (side as f32 * scale).ceil() as u32;
        (scaled.div_ceil(2) * 2).clamp(2, side.max(2))
    })
}

struct DecodeJob {
    decode_size: [u32; 2],
    path: PathBuf,
    looping: bool,
    duration_nanos: i64,
    stop: Arc<AtomicBool>,
    /// Stop after the first picture or sound (checking a file before the show).
    first_only: bool,
    notices: Notices,
}

impl DecodeJob {
    fn run_video(self, sender: &Sender<DecodedPicture>) {
        if let Err(error) = self.decode_video(sender) {
            self.notices.push(format!(
                "{}: its picture stopped: {error}",
                self.path.display()
            ));
        }
    }

    fn run_audio(self, sender: &Sender<DecodedSound>) {
        if let Err(error) = self.decode_audio(sender) {
            self.notices.push(format!(
                "{}: its sound stopped: {error}",
                self.path.display()
            ));
        }
    }

    fn decode_video(&self, sender: &Sender<DecodedPicture>) -> Result<(), ffmpeg::Error> {
        let mut input = ffmpeg::format::input(&self.path)?;
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Video)
            .ok_or(ffmpeg::Error::StreamNotFound)?;
        let index = stream.index();
        let time_base = stream.time_base();
        let start = stream.start_time().max(0);
        let mut context = ffmpeg::codec::context::Context::from_parameters(stream.parameters())?;
        // One decoding thread: a picture on a live canvas rarely needs more, and each extra
        // frame thread keeps its own reference pictures in memory.
        context.set_threading(ffmpeg::threading::Config::count(1));
        let mut decoder = context.decoder().video()?;
        // Made from the first decoded picture, and again whenever a picture's format or size
        // changes: a file that is not really a video (a still picture, a renamed text file)
        // can report no format or size in its header, and libswscale aborts the process
        // when handed a picture it was not made for.
        let mut scaler: Option<ffmpeg::software::scaling::Context> = None;
        let mut decoded = ffmpeg::frame::Video::empty();
        let mut rgba = ffmpeg::frame::Video::empty();
        let mut loop_offset = 0i64;
        loop {
            let mut emit = |decoder: &mut ffmpeg::decoder::Video| -> Result<bool, ffmpeg::Error> {
                while decoder.receive_frame(&mut decoded).is_ok() {
                    let pts = decoded.timestamp().unwrap_or(0) - start;
                    let pts_nanos = rescale_to_nanos(pts, time_base);
                    if self.looping && pts_nanos >= self.duration_nanos {
                        continue;
                    }
                    let scaler = scaler_for(&mut scaler, &decoded, self.decode_size)?;
                    scaler.run(&decoded, &mut rgba)?;
                    let frame = Arc::new(packed_rgba(&rgba));
                    let picture = DecodedPicture {
                        pts_nanos: pts_nanos + loop_offset,
                        frame,
                    };
                    if self.stop.load(Ordering::Relaxed)
                        || sender.send(picture).is_err()
                        || self.first_only
                    {
                        return Ok(false);
                    }
                }
                Ok(true)
            };
            for (stream, packet) in input.packets() {
                if stream.index() != index {
                    continue;
                }
                decoder.send_packet(&packet)?;
                if !emit(&mut decoder)? {
                    return Ok(());
                }
            }
            decoder.send_eof()?;
            if !emit(&mut decoder)? || !self.looping {
                return Ok(());
            }
            loop_offset += self.duration_nanos;
            input.seek(0, ..)?;
            decoder.flush();
        }
    }

    fn decode_audio(&self, sender: &Sender<DecodedSound>) -> Result<(), ffmpeg::Error> {
        let mut input = ffmpeg::format::input(&self.path)?;
        let stream = input
            .streams()
            .best(ffmpeg::media::Type::Audio)
            .ok_or(ffmpeg::Error::StreamNotFound)?;
        let index = stream.index();
        let context = ffmpeg::codec::context::Context::from_parameters(stream.parameters())?;
        let mut decoder = context.decoder().audio()?;
        let layout = if decoder.channel_layout().is_empty() {
            ffmpeg::ChannelLayout::default(i32::from(decoder.channels()))
        } else {
            decoder.channel_layout()
        };
        let mut resampler = ffmpeg::software::resampling::Context::get(
            decoder.format(),
            layout,
            decoder.rate(),
            ffmpeg::format::Sample::F32(ffmpeg::format::sample::Type::Packed),
            ffmpeg::ChannelLayout::STEREO,
            SAMPLE_RATE,
        )?;
        let loop_samples = u64::try_from(
            i128::from(self.duration_nanos) * i128::from(SAMPLE_RATE) / 1_000_000_000,
        )
        .unwrap_or(0);
        let mut decoded = ffmpeg::frame::Audio::empty();
        let mut resampled = ffmpeg::frame::Audio::empty();
        let mut loop_start = 0u64;
        loop {
            // Samples emitted in this pass of the file.
            let mut pass_samples = 0u64;
            let send = |samples: &[f32], pass_samples: &mut u64| -> bool {
                let mut samples = samples;
                if self.looping {
                    // A pass never runs past the loop period, so every loop starts on time.
                    let room = loop_samples.saturating_sub(*pass_samples) as usize * AUDIO_CHANNELS;
                    samples = &samples[..samples.len().min(room)];
                }
                if samples.is_empty() {
                    return !self.stop.load(Ordering::Relaxed);
                }
                let chunk = DecodedSound {
                    first_sample: loop_start + *pass_samples,
                    samples: samples.to_vec(),
                };
                *pass_samples += (samples.len() / AUDIO_CHANNELS) as u64;
                !self.stop.load(Ordering::Relaxed) && sender.send(chunk).is_ok() && !self.first_only
            };
            let mut resample_and_send = |decoded: &ffmpeg::frame::Audio,
                                         pass_samples: &mut u64|
             -> Result<bool, ffmpeg::Error> {
                resampler.run(decoded, &mut resampled)?;
                Ok(send(&packed_f32(&resampled), pass_samples))
            };
            for (stream, packet) in input.packets() {
                if stream.index() != index {
                    continue;
                }
                decoder.send_packet(&packet)?;
                while decoder.receive_frame(&mut decoded).is_ok() {
                    if decoded.channel_layout().is_empty() {
                        decoded.set_channel_layout(layout);
                    }
                    if !resample_and_send(&decoded, &mut pass_samples)? {
                        return Ok(());
                    }
                }
            }
            decoder.send_eof()?;
            while decoder.receive_frame(&mut decoded).is_ok() {
                if decoded.channel_layout().is_empty() {
                    decoded.set_channel_layout(layout);
                }
                if !resample_and_send(&decoded, &mut pass_samples)? {
                    return Ok(());
                }
            }
            if !self.looping {
                return Ok(());
            }
            // Pad a pass whose sound is shorter than the file with silence.
            let silence =
                vec![0.0f32; loop_samples.saturating_sub(pass_samples) as usize * AUDIO_CHANNELS];
            if !send(&silence, &mut pass_samples) {
                return Ok(());
            }
            loop_start += loop_samples;
            input.seek(0, ..)?;
            decoder.flush();
        }
    }
}

/// The scaler for `picture`, made anew if there is none yet or the picture's format or size
/// is not the one it was made for.
fn scaler_for<'s>(
    scaler: &'s mut Option<ffmpeg::software::scaling::Context>,
    picture: &ffmpeg::frame::Video,
    [width, height]: [u32; 2],
) -> Result<&'s mut ffmpeg::software::scaling::Context, ffmpeg::Error> {
    if picture.format() == ffmpeg::format::Pixel::None
        || picture.width() == 0
        || picture.height() == 0
        || picture.planes() == 0
    {
        return Err(ffmpeg::Error::InvalidData);
    }
    let fits = scaler.as_ref().is_some_and(|made| {
        let input = made.input();
        input.format == picture.format()
            && input.width == picture.width()
            && input.height == picture.height()
    });
    if !fits {
        *scaler = None;
    }
    match scaler {
        Some(made) => Ok(made),
        None => Ok(scaler.insert(ffmpeg::software::scaling::Context::get(
            picture.format(),
            picture.width(),
            picture.height(),
            ffmpeg::format::Pixel::RGBA,
            width,
            height,
            ffmpeg::software::scaling::Flags::BILINEAR,
        )?)),
    }
}

/// The size of `path`'s picture; [0, 0] when it has none or cannot be read.
pub(super) fn picture_size(path: &Path) -> [u32; 2] {
    crate::base::init_ffmpeg();
    probe(path).map_or([0, 0], |info| [info.width, info.height])
}

/// Opens `path` as a media source does and decodes its first picture and its first sound, so
/// a file that would fail (or is no clip at all) is found before the show: why, if it fails.
pub(super) fn check_file(path: &Path) -> Result<(), MediaProblem> {
    crate::base::init_ffmpeg();
    let info = probe(path)?;
    let job = DecodeJob {
        decode_size: decode_size([info.width, info.height], None),
        path: path.to_path_buf(),
        looping: false,
        duration_nanos: info.duration_nanos,
        stop: Arc::new(AtomicBool::new(false)),
        first_only: true,
        notices: Notices::default(),
    };
    if info.has_video {
        let (sender, receiver) = bounded(1);
        job.decode_video(&sender)
            .map_err(MediaProblem::PictureUndecodable)?;
        if receiver.try_recv().is_err() {
            return Err(MediaProblem::NoPicture);
        }
    }
    if info.has_audio {
        let (sender, receiver) = bounded(1);
        job.decode_audio(&sender)
            .map_err(MediaProblem::SoundUndecodable)?;
        if receiver.try_recv().is_err() && !info.has_video {
            return Err(MediaProblem::NoSound);
        }
    }
    Ok(())
}

fn rescale_to_nanos(pts: i64, time_base: ffmpeg::Rational) -> i64 {
    let value = i128::from(pts) * i128::from(time_base.numerator()) * 1_000_000_000
        / i128::from(time_base.denominator().max(1));
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Copies an RGBA frame out of FFmpeg's padded rows into packed rows.
pub(super) fn packed_rgba(frame: &ffmpeg::frame::Video) -> VideoFrame {
    let (width, height) = (frame.width(), frame.height());
    let row_bytes = width as usize * 4;
    let stride = frame.stride(0);
    let data = frame.data(0);
    let mut pixels = Vec::with_capacity(row_bytes * height as usize);
    for row in 0..height as usize {
        if let Some(line) = data.get(row * stride..row * stride + row_bytes) {
            pixels.extend_from_slice(line);
        }
    }
    VideoFrame {
        width,
        height,
        pixels,
        packing: Packing::Rgba,
    }
}

fn packed_f32(frame: &ffmpeg::frame::Audio) -> Vec<f32> {
    let bytes = frame.samples() * AUDIO_CHANNELS * std::mem::size_of::<f32>();
    let data = frame.data(0);
    data[..bytes.min(data.len())]
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
