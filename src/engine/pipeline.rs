//! The render thread and the threads it feeds:
//!
//! ```text
//! render (clock) --frames (bounded, skip when full)--> video encoder --+
//!        |                                                             +--> recorder
//!        +-------- sound (bounded) --------------------> audio encoder -+
//! ```
//!
//! The render thread owns the running sources and the compositor. It opens the encoders and
//! outputs before it reports ready, so a refused setting reaches the caller of
//! `Engine::start` at once.

use super::switcher::{Change, OnAir, Switcher};
use super::transition::{self, SceneLook, Transition};
use super::{
    Command, Counters, DisplayTextures, EngineConfig, EngineError, Event, FrameClock, Summary,
    SwitcherStats, TickStart,
};
use crate::audio::monitor::MonitorOutput;
use crate::audio::Mixer;
use crate::encode::{
    i420_frame, AudioEncoder, EncodeError, EncodedPacket, StreamKind, VideoEncoder,
};
use crate::output::{
    AdaptiveBitrate, FrameTimes, OutputError, OutputNotice, OutputState, Recorder, StreamOutput,
};
use crate::render::{Compositor, Gpu, I420Layout, Layer};
use crate::scene::{Collection, Item, Scene};
use crate::sources::{self, FrameRef, Pacing, RunningSource, Tick, SAMPLE_RATE};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use ffmpeg_next as ffmpeg;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Frames waiting for the video encoder; a full queue means the encoder is behind.
const VIDEO_QUEUE: usize = 4;
/// Blocks of sound waiting for the audio encoder (audio is never skipped).
const AUDIO_QUEUE: usize = 32;
/// Packets waiting for an output.
const OUTPUT_QUEUE: usize = 256;
const PREROLL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where encoders deliver packets: a recorder (every packet, blocking: a recording must be
/// complete) or a stream output (never blocking: its queue drops by policy).
#[derive(Clone)]
enum Sink {
    Recorder(Sender<OutputMessage>),
    Stream(Arc<StreamOutput>),
}

impl Sink {
    fn deliver(&self, packet: &Arc<EncodedPacket>) {
        match self {
            // A recorder that failed has dropped its receiver; the others carry on.
            Sink::Recorder(sender) => {
                let _ = sender.send(OutputMessage::Packet(packet.clone()));
            }
            Sink::Stream(stream) => stream.push(packet.clone()),
        }
    }

    fn end(&self, kind: StreamKind) {
        match self {
            Sink::Recorder(sender) => {
                let _ = sender.send(OutputMessage::End(kind));
            }
            Sink::Stream(stream) => stream.end_stream(kind),
        }
    }
}

enum OutputMessage {
    Packet(Arc<EncodedPacket>),
    End(StreamKind),
}

struct Workers {
    video: Sender<ffmpeg::frame::Video>,
    audio: Sender<Vec<f32>>,
    video_thread: JoinHandle<Result<(), EncodeError>>,
    audio_thread: JoinHandle<Result<(), EncodeError>>,
    output_threads: Vec<JoinHandle<Result<(), OutputError>>>,
    streams: Vec<Arc<StreamOutput>>,
    notices: Receiver<OutputNotice>,
    frame_times: Arc<FrameTimes>,
}

pub(super) fn run(
    collection: Collection,
    config: EngineConfig,
    commands: Receiver<Command>,
    events: Sender<Event>,
    counters: Arc<Counters>,
    ready: Sender<Result<DisplayTextures, EngineError>>,
) -> Result<Summary, EngineError> {
    let started = match start(&collection, &config, &counters) {
        Ok(started) => started,
        Err(error) => {
            let _ = ready.send(Err(error));
            return Err(EngineError::Thread("start-up failed".into()));
        }
    };
    let (mut sources, mut compositor, mut preview, workers, encoder_name) = started;
    let _ = ready.send(Ok(DisplayTextures {
        program: compositor.canvas_texture(),
        preview: preview.canvas_texture(),
    }));
    let gpu_name = compositor.gpu().info.name.clone();
    let wall_start = Instant::now();

    let loop_result = render_loop(
        &collection,
        &config,
        &commands,
        &events,
        &counters,
        &mut sources,
        &mut compositor,
        &mut preview,
        &workers,
    );
    let finish_result = finish(workers);
    loop_result?;
    finish_result?;
    Ok(Summary {
        stats: counters.snapshot(),
        wall_time: wall_start.elapsed(),
        encoder: encoder_name,
        gpu: gpu_name,
    })
}

type Started = (
    HashMap<String, Box<dyn RunningSource>>,
    Compositor,
    Compositor,
    Workers,
    String,
);

/// Opens every source of the collection.
pub(super) fn open_sources(
    collection: &Collection,
) -> Result<HashMap<String, Box<dyn RunningSource>>, EngineError> {
    let mut sources = HashMap::new();
    for source in &collection.sources {
        sources.insert(source.id.clone(), sources::open(source, collection)?);
    }
    Ok(sources)
}

fn start(
    collection: &Collection,
    config: &EngineConfig,
    counters: &Arc<Counters>,
) -> Result<Started, EngineError> {
    let canvas = collection.canvas;
    let mut sources = open_sources(collection)?;
    let gpu = match &config.gpu {
        Some(shared) => shared.clone(),
        None => Arc::new(Gpu::open()?),
    };
    let compositor = Compositor::new(gpu.clone(), [canvas.width, canvas.height]);
    // Studio mode's preview: drawn for the screen only, never encoded.
    let canvas_size = [canvas.width, canvas.height];
    let preview = Compositor::for_display(gpu.clone(), canvas_size, gpu.display_size(canvas_size));
    let video_encoder = VideoEncoder::open(&config.video, canvas.width, canvas.height, canvas.fps)?;
    let audio_encoder = AudioEncoder::open(&config.audio)?;
    let encoder_name = video_encoder.name().to_string();

    let mut outputs: Vec<Sink> = Vec::new();
    let mut output_threads = Vec::new();
    if let Some(recording) = &config.recording {
        let recorder = Recorder::create(
            &recording.path,
            recording.format,
            &video_encoder.stream_info(),
            &audio_encoder.stream_info(),
        )?;
        let (sender, receiver) = bounded(OUTPUT_QUEUE);
        outputs.push(Sink::Recorder(sender));
        let counters = counters.clone();
        output_threads.push(spawn("record", move || {
            record(recorder, &receiver, &counters)
        })?);
    }

    let (notice_sender, notices) = bounded(256);
    let frame_times = Arc::new(FrameTimes::default());
    let mut streams = Vec::new();
    for destination in &config.streams {
        let stream = Arc::new(StreamOutput::start(
            destination.clone(),
            video_encoder.stream_info(),
            audio_encoder.stream_info(),
            config.stream_settings.clone(),
            notice_sender.clone(),
            Some(frame_times.clone()),
        ));
        outputs.push(Sink::Stream(stream.clone()));
        streams.push(stream);
    }
    if let Ok(mut shown) = counters.streams.lock() {
        shown.clone_from(&streams);
    }

    let video_bitrate = config.video.bitrate_kbps();
    let (video, video_receiver) = bounded(VIDEO_QUEUE);
    let video_outputs = outputs.clone();
    let video_counters = counters.clone();
    let video_thread = spawn("encode-video", move || {
        encode_video(
            video_encoder,
            video_bitrate,
            &video_receiver,
            &video_outputs,
            &video_counters,
        )
    })?;
    let (audio, audio_receiver) = bounded(AUDIO_QUEUE);
    let audio_thread = spawn("encode-audio", move || {
        encode_audio(audio_encoder, &audio_receiver, &outputs)
    })?;

    // Media files decode their first pictures before the clock starts.
    for source in sources.values_mut() {
        source.preroll(PREROLL_TIMEOUT);
    }
    Ok((
        sources,
        compositor,
        preview,
        Workers {
            video,
            audio,
            video_thread,
            audio_thread,
            output_threads,
            streams,
            notices,
            frame_times,
        },
        encoder_name,
    ))
}

fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, EngineError> {
    let span = tracing::info_span!("thread", name);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || span.in_scope(work))
        .map_err(|error| EngineError::Thread(format!("cannot start thread {name}: {error}")))
}

#[allow(clippy::too_many_arguments)]
fn render_loop(
    collection: &Collection,
    config: &EngineConfig,
    commands: &Receiver<Command>,
    events: &Sender<Event>,
    counters: &Counters,
    sources: &mut HashMap<String, Box<dyn RunningSource>>,
    compositor: &mut Compositor,
    preview: &mut Compositor,
    workers: &Workers,
) -> Result<(), EngineError> {
    let mut collection = collection.clone();
    let fps = collection.canvas.fps;
    let canvas_size = [
        collection.canvas.width as f32,
        collection.canvas.height as f32,
    ];
    let mut switcher = Switcher::new(&collection.current_scene);
    publish_switcher(&switcher, Duration::ZERO, counters);
    let mut mixer = Mixer::new(&collection);
    let monitor = open_monitor(&mixer, config, events);
    // Live inputs are heard a little after they happen; the mix runs this far behind the
    // picture clock so their sound has arrived when it is mixed. Timestamps stay exact.
    let audio_delay = match config.pacing {
        Pacing::RealTime if has_live_audio(&collection) => LIVE_AUDIO_DELAY_SAMPLES,
        _ => 0,
    };
    let clock_start = Instant::now();
    let clock = FrameClock::new(fps, clock_start);
    for source in sources.values_mut() {
        source.clock_started(clock_start);
    }
    // Meters are read out ten times a second.
    let mut samples_since_levels = 0usize;
    let encoder_gone = Cell::new(false);
    let mut on_ready = |index: u64, bytes: &[u8], layout: &I420Layout| {
        counters.rendered.fetch_add(1, Ordering::Relaxed);
        if !workers.streams.is_empty() {
            workers.frame_times.record(index as i64, Instant::now());
        }
        let frame = i420_frame(index, bytes, layout);
        match config.pacing {
            Pacing::RealTime => match workers.video.try_send(frame) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    counters.skipped.fetch_add(1, Ordering::Relaxed);
                }
                Err(TrySendError::Disconnected(_)) => encoder_gone.set(true),
            },
            Pacing::Deterministic => {
                if workers.video.send(frame).is_err() {
                    encoder_gone.set(true);
                }
            }
        }
    };

    // One controller per adapting output; the encoder gets the lowest of their targets.
    let mut adaptive: Vec<(usize, AdaptiveBitrate)> = match config.video.bitrate_kbps() {
        Some((kbps, _)) if config.stream_settings.adaptive_bitrate => (0..workers.streams.len())
            .map(|i| (i, AdaptiveBitrate::new(kbps)))
            .collect(),
        _ => Vec::new(),
    };
    let mut last_adapted = Instant::now();
    let mut index = 0u64;
    loop {
        if config.frame_limit.is_some_and(|limit| index >= limit) {
            break;
        }
        let mut stop = false;
        let now = Duration::from_nanos(fps.frame_start_nanos(index));
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Stop => stop = true,
                Command::ReconnectOutputs => {
                    for stream in &workers.streams {
                        stream.reconnect_now();
                    }
                }
                Command::UpdateCollection(updated) => {
                    let reopened =
                        update_collection(&mut collection, *updated, sources, &mut mixer, events);
                    for id in reopened {
                        compositor.forget(&id);
                        preview.forget(&id);
                    }
                    let fallback = collection.current_scene.clone();
                    let changes =
                        switcher.retarget(|name| collection.scene(name).is_some(), &fallback);
                    announce(changes, events);
                }
                command => {
                    let changes = switch(&mut switcher, &collection, command, now, events);
                    announce(changes, events);
                }
            }
        }
        announce(switcher.tick(now), events);
        publish_switcher(&switcher, now, counters);
        if index % 10 == 0 {
            if let Ok(mut sizes) = counters.source_sizes.lock() {
                sizes.clear();
                sizes.extend(
                    sources
                        .iter()
                        .map(|(id, source)| (id.clone(), source.size())),
                );
            }
        }
        if !adaptive.is_empty() && last_adapted.elapsed() >= Duration::from_millis(250) {
            let now = Instant::now();
            last_adapted = now;
            let target = adaptive
                .iter_mut()
                .filter_map(|(output, controller)| {
                    let stats = workers.streams.get(*output)?.stats();
                    let live = stats.state == OutputState::Live;
                    Some(if live {
                        controller.update(now, stats.congestion, stats.bitrate_kbps)
                    } else {
                        controller.current_kbps()
                    })
                })
                .min();
            if let Some(target) = target {
                counters.video_target_kbps.store(target, Ordering::Relaxed);
            }
        }
        while let Ok(notice) = workers.notices.try_recv() {
            let _ = events.try_send(Event::Output(notice));
        }
        for message in sources
            .values()
            .filter_map(|source| source.notices())
            .flat_map(|notices| notices.take())
        {
            let _ = events.try_send(Event::Warning(message));
        }
        if stop {
            break;
        }
        if config.pacing == Pacing::RealTime {
            match clock.tick_start(index, Instant::now()) {
                TickStart::WaitFor(wait) => std::thread::sleep(wait),
                TickStart::OnTime => {}
                TickStart::Lagged => {
                    counters.lagged.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let tick_started = Instant::now();
        let tick = Tick {
            index,
            time: Duration::from_nanos(fps.frame_start_nanos(index)),
            pacing: config.pacing,
        };
        let on_air = switcher.on_air(tick.time);
        let program_scenes = scenes_on_air(&collection, &on_air)?;
        // A preview showing what program shows is not drawn twice: front-ends show the
        // program canvas for it (see `SwitcherStats`).
        let preview_scene = switcher
            .preview()
            .filter(|name| *name != switcher.program() || switcher.in_transition())
            .and_then(|name| collection.scene(name));
        let shown: Vec<&Scene> = program_scenes
            .iter()
            .copied()
            .chain(preview_scene)
            .collect();
        let pictures = gather_pictures(&shown, sources, tick);
        let frame = ProgramFrame::new(&on_air, &program_scenes, canvas_size);
        let layers = frame.layers(&pictures, sources);
        compositor.render(index, &layers, &mut on_ready)?;
        if let Some(scene) = preview_scene {
            preview.render_display(&scene_layers(scene, &pictures, sources))?;
        }
        compositor.collect_ready(false, &mut on_ready)?;
        counters
            .render_nanos
            .fetch_add(tick_started.elapsed().as_nanos() as u64, Ordering::Relaxed);

        // Sound for exactly this frame's span of samples, so audio and video never drift.
        let span = fps.first_sample_of_frame(index, SAMPLE_RATE)
            ..fps.first_sample_of_frame(index + 1, SAMPLE_RATE);
        let mixed = span.start.saturating_sub(audio_delay)..span.end.saturating_sub(audio_delay);
        let on_air = audible(&program_scenes);
        let mut audio_step = AudioStep {
            mixer: &mut mixer,
            monitor: monitor.as_ref(),
            counters,
            events,
            samples_since_levels: &mut samples_since_levels,
        };
        let block = audio_step.mix(sources, &on_air, mixed, config.pacing);
        if workers.audio.send(block).is_err() || encoder_gone.get() {
            // An encoder thread ended early; its error is reported when it is joined.
            break;
        }
        index += 1;
    }
    compositor.flush(&mut on_ready)?;
    if audio_delay > 0 && !encoder_gone.get() {
        // The mix is behind the picture: let the live inputs deliver the last of it, then
        // send the sound that belongs to the final frames.
        std::thread::sleep(Duration::from_nanos(
            audio_delay * 1_000_000_000 / u64::from(SAMPLE_RATE),
        ));
        let end = fps.first_sample_of_frame(index, SAMPLE_RATE);
        if let Some(scene) = collection.scene(switcher.program()) {
            let on_air = audible(&[scene]);
            let mut audio_step = AudioStep {
                mixer: &mut mixer,
                monitor: monitor.as_ref(),
                counters,
                events,
                samples_since_levels: &mut samples_since_levels,
            };
            let block = audio_step.mix(sources, &on_air, end - audio_delay..end, config.pacing);
            let _ = workers.audio.send(block);
        }
    }
    Ok(())
}

/// How far the mix runs behind the picture when live audio inputs are in the collection
/// (200 ms): more than a sound server's capture latency and scheduling jitter.
const LIVE_AUDIO_DELAY_SAMPLES: u64 = SAMPLE_RATE as u64 / 5;

fn has_live_audio(collection: &Collection) -> bool {
    collection
        .sources
        .iter()
        .any(|source| matches!(source.kind, crate::scene::SourceKind::AudioInput(_)))
}

/// Sources heard: those shown in the scenes on program (both, during a transition).
fn audible<'a>(scenes: &[&'a Scene]) -> HashSet<&'a str> {
    scenes
        .iter()
        .flat_map(|scene| &scene.items)
        .filter(|item| item.visible)
        .map(|item| item.source.as_str())
        .collect()
}

/// The scenes drawn on program: one, or the outgoing and incoming during a transition.
fn scenes_on_air<'c>(
    collection: &'c Collection,
    on_air: &OnAir<'_>,
) -> Result<Vec<&'c Scene>, EngineError> {
    let names = match on_air {
        OnAir::Scene(name) => vec![*name],
        OnAir::Transition { from, to, .. } => vec![*from, *to],
    };
    names
        .into_iter()
        .map(|name| {
            collection
                .scene(name)
                .ok_or_else(|| EngineError::NoSuchScene(name.to_string()))
        })
        .collect()
}

/// The items of the program picture with a transition's look applied (owned, since a
/// transition changes their opacity, position and clipping), plus a colour wash.
struct ProgramFrame {
    /// Bottom first, each with its clip rectangle.
    items: Vec<(Item, Option<[f32; 4]>)>,
    wash: Option<(FrameRef, Item)>,
    canvas_size: [u32; 2],
}

/// Source id of the colour wash of fade-to-colour; ids in files cannot start with a space.
const WASH_ID: &str = " transition wash";

impl ProgramFrame {
    fn new(on_air: &OnAir<'_>, scenes: &[&Scene], canvas: [f32; 2]) -> Self {
        let (looks, wash) = match on_air {
            OnAir::Scene(_) => (vec![SceneLook::NORMAL], None),
            OnAir::Transition {
                transition,
                progress,
                ..
            } => {
                let blend = transition::blend(transition.kind, *progress, canvas);
                (vec![blend.outgoing, blend.incoming], blend.wash)
            }
        };
        let items = scenes
            .iter()
            .zip(looks)
            .filter(|(_, look)| !look.is_hidden())
            .flat_map(|(scene, look)| {
                scene
                    .items
                    .iter()
                    .filter(|item| item.visible)
                    .map(move |item| {
                        let mut item = item.clone();
                        item.opacity *= look.opacity;
                        item.position[0] += look.offset[0];
                        item.position[1] += look.offset[1];
                        (item, look.clip)
                    })
            })
            .collect();
        let canvas_size = canvas.map(|side| side as u32);
        let wash = wash
            .filter(|(_, alpha)| *alpha > 0.0)
            .map(|(color, alpha)| {
                let frame = FrameRef {
                    frame: Arc::new(sources::VideoFrame::solid(1, 1, color.premultiplied())),
                    generation: u64::from(u32::from_be_bytes([color.r, color.g, color.b, color.a])),
                };
                let item = Item {
                    opacity: alpha,
                    ..Item::new(WASH_ID, [0.0, 0.0])
                };
                (frame, item)
            });
        Self {
            items,
            wash,
            canvas_size,
        }
    }

    fn layers<'f>(
        &'f self,
        pictures: &'f HashMap<String, FrameRef>,
        sources: &HashMap<String, Box<dyn RunningSource>>,
    ) -> Vec<Layer<'f>> {
        let mut layers: Vec<Layer<'f>> = self
            .items
            .iter()
            .filter_map(|(item, clip)| {
                Some(Layer {
                    source_id: &item.source,
                    frame: pictures.get(&item.source)?,
                    source_size: sources.get(&item.source)?.size(),
                    item,
                    clip: *clip,
                })
            })
            .collect();
        if let Some((frame, item)) = &self.wash {
            layers.push(Layer {
                source_id: WASH_ID,
                frame,
                source_size: self.canvas_size,
                item,
                clip: None,
            });
        }
        layers
    }
}

/// Applies a switching command to the switcher; unknown scene names are warnings.
fn switch(
    switcher: &mut Switcher,
    collection: &Collection,
    command: Command,
    now: Duration,
    events: &Sender<Event>,
) -> Vec<Change> {
    let known = |name: &str| {
        let exists = collection.scene(name).is_some();
        if !exists {
            let _ = events.try_send(Event::Warning(format!("no scene is named `{name}`")));
        }
        exists
    };
    match command {
        Command::SwitchScene(name) if known(&name) => {
            switcher.transition_to(&name, Transition::CUT, now)
        }
        Command::SetPreview(None) => switcher.set_preview(None),
        Command::SetPreview(Some(name)) if known(&name) => switcher.set_preview(Some(&name)),
        Command::Transition {
            to: Some(name),
            transition,
        } if known(&name) => switcher.transition_to(&name, transition, now),
        Command::Transition {
            to: None,
            transition,
        } => switcher.take(transition, now),
        Command::SetTBar {
            position,
            transition,
        } => switcher.set_tbar(position, transition),
        _ => Vec::new(),
    }
}

fn announce(changes: Vec<Change>, events: &Sender<Event>) {
    for change in changes {
        let event = match change {
            Change::Program(scene) => Event::SceneChanged { scene },
            Change::Preview(scene) => Event::PreviewChanged { scene },
        };
        let _ = events.try_send(event);
    }
}

fn publish_switcher(switcher: &Switcher, now: Duration, counters: &Counters) {
    if let Ok(mut shown) = counters.switcher.lock() {
        *shown = SwitcherStats {
            program: switcher.program().to_string(),
            preview: switcher.preview().map(str::to_string),
            transition_progress: match switcher.on_air(now) {
                OnAir::Transition { progress, .. } => Some(progress),
                OnAir::Scene(_) => None,
            },
        };
    }
}

/// Swaps in an edited collection: sources that are new or whose settings changed are
/// (re)opened, removed ones closed; item changes (position, size...) need nothing more.
/// A source that fails to open is a warning; the rest of the edit still applies. Returns the
/// ids of the sources replaced, whose cached textures are now stale.
fn update_collection(
    collection: &mut Collection,
    updated: Collection,
    sources: &mut HashMap<String, Box<dyn RunningSource>>,
    mixer: &mut Mixer,
    events: &Sender<Event>,
) -> Vec<String> {
    let mut reopened = Vec::new();
    if updated.canvas != collection.canvas {
        let _ = events.try_send(Event::Warning(
            "canvas size and frame rate changes apply when the engine restarts".into(),
        ));
    }
    sources.retain(|id, _| updated.source(id).is_some());
    let mut sound_changed = false;
    for source in &updated.sources {
        let unchanged =
            collection.source(&source.id) == Some(source) && sources.contains_key(&source.id);
        if unchanged {
            continue;
        }
        sound_changed |= source.kind.audio().is_some()
            || collection
                .source(&source.id)
                .is_some_and(|old| old.kind.audio().is_some());
        reopened.push(source.id.clone());
        match sources::open(source, &updated) {
            Ok(mut running) => {
                running.preroll(Duration::from_millis(500));
                sources.insert(source.id.clone(), running);
            }
            Err(error) => {
                sources.remove(&source.id);
                let _ = events.try_send(Event::Warning(error.to_string()));
            }
        }
    }
    let canvas = collection.canvas;
    *collection = updated;
    collection.canvas = canvas;
    if sound_changed {
        *mixer = Mixer::new(collection);
    }
    reopened
}

/// Opens the monitoring device when some source is monitored; a device that will not open
/// is a warning, not a stopped show.
fn open_monitor(
    mixer: &Mixer,
    config: &EngineConfig,
    events: &Sender<Event>,
) -> Option<MonitorOutput> {
    if !mixer.monitors_anything() {
        return None;
    }
    let device = config.monitor_device.as_deref().unwrap_or("default");
    match MonitorOutput::open(device) {
        Ok(monitor) => Some(monitor),
        Err(error) => {
            let _ = events.try_send(Event::Warning(format!("audio monitoring is off: {error}")));
            None
        }
    }
}

/// One block of the mix: program sound for the encoder, the monitoring bus for the operator's
/// headphones, and the meters every tenth of a second.
struct AudioStep<'a> {
    mixer: &'a mut Mixer,
    monitor: Option<&'a MonitorOutput>,
    counters: &'a Counters,
    events: &'a Sender<Event>,
    samples_since_levels: &'a mut usize,
}

impl AudioStep<'_> {
    fn mix(
        &mut self,
        sources: &mut HashMap<String, Box<dyn RunningSource>>,
        on_air: &HashSet<&str>,
        span: std::ops::Range<u64>,
        pacing: Pacing,
    ) -> Vec<f32> {
        let samples = (span.end - span.start) as usize;
        let block = self
            .mixer
            .mix(sources, on_air, span.start, samples, pacing)
            .to_vec();
        if let Some(monitor) = self.monitor {
            monitor.play(self.mixer.monitor_block());
        }
        self.counters
            .audio_samples
            .fetch_add(samples as u64, Ordering::Relaxed);
        *self.samples_since_levels += samples;
        if *self.samples_since_levels >= SAMPLE_RATE as usize / 10 {
            *self.samples_since_levels = 0;
            let levels = self.mixer.take_levels();
            if let Ok(mut latest) = self.counters.audio_levels.lock() {
                *latest = Some(levels.clone());
            }
            let _ = self.events.try_send(Event::AudioLevels(levels));
        }
        block
    }
}

/// Asks each source shown in `scene` for its picture, once per tick however many items show it.
pub(super) fn gather_pictures(
    scenes: &[&Scene],
    sources: &mut HashMap<String, Box<dyn RunningSource>>,
    tick: Tick,
) -> HashMap<String, FrameRef> {
    let mut pictures = HashMap::new();
    let items = scenes.iter().flat_map(|scene| &scene.items);
    for item in items.filter(|item| item.visible) {
        if pictures.contains_key(&item.source) {
            continue;
        }
        if let Some(frame) = sources
            .get_mut(&item.source)
            .and_then(|source| source.video(tick))
        {
            pictures.insert(item.source.clone(), frame);
        }
    }
    pictures
}

/// The compositor's layers for `scene`, bottom first; items whose source has no picture yet
/// are left out.
pub(super) fn scene_layers<'a>(
    scene: &'a Scene,
    pictures: &'a HashMap<String, FrameRef>,
    sources: &HashMap<String, Box<dyn RunningSource>>,
) -> Vec<Layer<'a>> {
    scene
        .items
        .iter()
        .filter(|item| item.visible)
        .filter_map(|item| {
            Some(Layer {
                source_id: &item.source,
                frame: pictures.get(&item.source)?,
                source_size: sources.get(&item.source)?.size(),
                item,
                clip: None,
            })
        })
        .collect()
}

/// Ends the streams in order (encoders drain, then outputs close) and reports the first error.
fn finish(workers: Workers) -> Result<(), EngineError> {
    let Workers {
        video,
        audio,
        video_thread,
        audio_thread,
        output_threads,
        streams,
        notices: _,
        frame_times: _,
    } = workers;
    drop(video);
    drop(audio);
    let joined = |result: std::thread::Result<Result<(), EncodeError>>| match result {
        Ok(result) => result.map_err(EngineError::from),
        Err(_) => Err(EngineError::Thread("an encoder thread panicked".into())),
    };
    let video_result = joined(video_thread.join());
    let audio_result = joined(audio_thread.join());
    let mut output_result = Ok(());
    for thread in output_threads {
        let result = match thread.join() {
            Ok(result) => result.map_err(EngineError::from),
            Err(_) => Err(EngineError::Thread("an output thread panicked".into())),
        };
        if output_result.is_ok() {
            output_result = result;
        }
    }
    for stream in &streams {
        let stats = stream.finish();
        tracing::info!(
            "{}: {} ({} bytes sent)",
            stats.name,
            stats.state,
            stats.bytes_sent
        );
    }
    video_result.and(audio_result).and(output_result)
}

fn fan_out(outputs: &[Sink], packets: Vec<EncodedPacket>) {
    for packet in packets {
        let packet = Arc::new(packet);
        for output in outputs {
            output.deliver(&packet);
        }
    }
}

fn end_stream(outputs: &[Sink], kind: StreamKind) {
    for output in outputs {
        output.end(kind);
    }
}

fn encode_video(
    mut encoder: VideoEncoder,
    bitrate: Option<(u32, u32)>,
    frames: &Receiver<ffmpeg::frame::Video>,
    outputs: &[Sink],
    counters: &Counters,
) -> Result<(), EncodeError> {
    let mut applied_kbps = 0;
    let result = (|| {
        for frame in frames {
            let target_kbps = counters.video_target_kbps.load(Ordering::Relaxed);
            if target_kbps != 0 && target_kbps != applied_kbps {
                if let Some((kbps, max_kbps)) = bitrate {
                    let max = u64::from(target_kbps) * u64::from(max_kbps) / u64::from(kbps.max(1));
                    encoder.set_bitrate(target_kbps, u32::try_from(max).unwrap_or(u32::MAX));
                    applied_kbps = target_kbps;
                }
            }
            let packets = encoder.encode(&frame)?;
            counters.encoded.fetch_add(1, Ordering::Relaxed);
            fan_out(outputs, packets);
        }
        fan_out(outputs, encoder.finish()?);
        Ok(())
    })();
    end_stream(outputs, StreamKind::Video);
    result
}

fn encode_audio(
    mut encoder: AudioEncoder,
    blocks: &Receiver<Vec<f32>>,
    outputs: &[Sink],
) -> Result<(), EncodeError> {
    let result = (|| {
        for block in blocks {
            fan_out(outputs, encoder.encode(&block)?);
        }
        fan_out(outputs, encoder.finish()?);
        Ok(())
    })();
    end_stream(outputs, StreamKind::Audio);
    result
}

fn record(
    mut recorder: Recorder,
    packets: &Receiver<OutputMessage>,
    counters: &Counters,
) -> Result<(), OutputError> {
    let mut open_streams = vec![StreamKind::Video, StreamKind::Audio];
    for message in packets {
        match message {
            OutputMessage::Packet(packet) => {
                recorder.write(&packet)?;
                counters
                    .bytes_written
                    .store(recorder.bytes_written(), Ordering::Relaxed);
            }
            OutputMessage::End(kind) => {
                open_streams.retain(|open| *open != kind);
                if open_streams.is_empty() {
                    break;
                }
            }
        }
    }
    recorder.finish()
}
