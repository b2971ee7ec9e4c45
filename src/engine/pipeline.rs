//! The render thread: it owns the running sources, the compositors and the outputs
//! ([`Outputs`]), and each frame composites program (and studio mode's preview), mixes the
//! sound, and hands both to the outputs:
//!
//! ```text
//! render (clock) --frames (bounded, skip when full)--> video encoder --+--> recorder
//!        |                                                             +--> stream outputs
//!        +-------- sound (bounded) --------------------> audio encoder -+
//! ```
//!
//! The outputs the engine starts with are opened before it reports ready, so a refused setting
//! reaches the caller of `Engine::start` at once; later ones start and stop on commands.

use super::events::EventSink;
use super::outputs::{OutputSetup, Outputs};
use super::switcher::{Change, OnAir, Switcher};
use super::transition::{self, SceneLook, Transition};
use super::{
    Command, Counters, DisplayTextures, EngineConfig, EngineError, Event, FrameClock, Summary,
    SwitcherStats, TickStart,
};
use crate::audio::monitor::MonitorOutput;
use crate::audio::Mixer;
use crate::base::FrameRate;
use crate::base::{FrameRef, Pacing, Tick, SAMPLE_RATE};
use crate::render::{Compositor, Gpu, Layer};
use crate::scene::{Collection, Item, Scene};
use crate::sources::{self, RunningSource};
use crossbeam_channel::{Receiver, Sender};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PREROLL_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn run(
    collection: Collection,
    config: EngineConfig,
    commands: Receiver<Command>,
    events: EventSink,
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
    let (mut sources, mut compositor, mut preview, mut outputs) = started;
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
        &mut outputs,
    );
    let encoder = outputs
        .encoder_name
        .clone()
        .unwrap_or_else(|| "none (nothing was recorded or streamed)".into());
    let finish_result = outputs.finish();
    loop_result?;
    finish_result?;
    Ok(Summary {
        stats: counters.snapshot(),
        wall_time: wall_start.elapsed(),
        encoder,
        gpu: gpu_name,
    })
}

type Started = (
    HashMap<String, Box<dyn RunningSource>>,
    Compositor,
    Compositor,
    Outputs,
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
    let canvas_size = [canvas.width, canvas.height];
    let compositor = Compositor::new(gpu.clone(), canvas_size);
    // Studio mode's preview: drawn for the screen only, never encoded, from the same uploads.
    let preview = Compositor::for_display_beside(&compositor, gpu.display_size(canvas_size));
    let setup = OutputSetup {
        video: config.video.clone(),
        audio: config.audio,
        stream_settings: config.stream_settings.clone(),
        width: canvas.width,
        height: canvas.height,
        fps: canvas.fps,
        pacing: config.pacing,
        faults: config.faults,
    };
    let mut outputs = Outputs::new(setup, counters.clone());
    if let Some(recording) = &config.recording {
        outputs.start_recording(recording, 0)?;
    }
    outputs.start_streams(&config.streams, 0)?;

    // Media files decode their first pictures before the clock starts.
    for source in sources.values_mut() {
        source.preroll(PREROLL_TIMEOUT);
    }
    Ok((sources, compositor, preview, outputs))
}

#[allow(clippy::too_many_arguments)]
fn render_loop(
    collection: &Collection,
    config: &EngineConfig,
    commands: &Receiver<Command>,
    events: &EventSink,
    counters: &Counters,
    sources: &mut HashMap<String, Box<dyn RunningSource>>,
    compositor: &mut Compositor,
    preview: &mut Compositor,
    outputs: &mut Outputs,
) -> Result<(), EngineError> {
    let mut collection = collection.clone();
    let fps = collection.canvas.fps;
    let canvas_size = [
        collection.canvas.width as f32,
        collection.canvas.height as f32,
    ];
    // Started with outputs (the command line): a failed encoder or recording ends the run.
    // The app's outputs come and go; a failure there is reported and the show goes on.
    let stop_on_output_failure = config.recording.is_some() || !config.streams.is_empty();
    let mut switcher = Switcher::new(&collection.current_scene);
    publish_switcher(&switcher, Duration::ZERO, counters);
    let mut audio = ProgramAudio {
        mixer: Mixer::new(&collection),
        monitor: None,
        monitor_refused: false,
        counters,
        events,
        // Live inputs are heard a little after they happen; the mix runs this far behind the
        // picture clock so their sound has arrived when it is mixed. Timestamps stay exact.
        delay: match config.pacing {
            Pacing::RealTime if has_live_audio(&collection) => LIVE_AUDIO_DELAY_SAMPLES,
            _ => 0,
        },
        pacing: config.pacing,
        samples_since_levels: 0,
    };
    audio.open_monitor_if_asked(config);
    let clock_start = Instant::now();
    let clock = FrameClock::new(fps, clock_start);
    for source in sources.values_mut() {
        source.clock_started(clock_start);
    }
    // A render further behind than this gives up the frames it missed (see `skip_frames`).
    let give_up_after = fps.frames_in(GIVE_UP_AFTER);
    let mut index = 0u64;
    loop {
        if config.frame_limit.is_some_and(|limit| index >= limit) {
            break;
        }
        let mut stop = false;
        let now = Duration::from_nanos(fps.frame_start_nanos(index));
        let mut pending: Vec<Command> = commands.try_iter().collect();
        let go = pending.iter().filter(|c| **c == Command::Go).count() as u32;
        pending.retain(|command| *command != Command::Go);
        if let Some(driver) = &config.driver {
            let context = super::FrameContext {
                index,
                now,
                go,
                media_ended: sources
                    .iter()
                    .filter(|(_, source)| source.has_ended())
                    .map(|(id, _)| id.clone())
                    .collect(),
            };
            let output = crate::base::lock(&driver.0).frame(&context);
            pending.extend(output.commands);
            for event in output.events {
                events.send(event);
            }
        }
        for command in pending {
            match command {
                Command::Stop => stop = true,
                // Counted above, for the driver.
                Command::Go => {}
                Command::Media { source, control } => {
                    let outcome = match sources.get_mut(&source) {
                        Some(running) => running.control(control, now),
                        None => Err(sources::ControlError::Failed("no such source".into())),
                    };
                    if let Err(error) = outcome {
                        events.send(Event::Warning(format!(
                            "cannot {control:?} source `{source}`: {error}"
                        )));
                    }
                }
                Command::ReconnectOutputs => outputs.reconnect_streams(),
                Command::StartRecording(recording) => {
                    if let Err(error) = outputs.start_recording(&recording, index) {
                        events.send(Event::RecordingStopped {
                            path: recording.path,
                            error: Some(error.to_string()),
                        });
                    }
                }
                Command::StopRecording => outputs.stop_recording(index),
                Command::StartStreaming(destinations) => {
                    if let Err(error) = outputs.start_streams(&destinations, index) {
                        events.send(Event::StreamingStopped {
                            error: Some(error.to_string()),
                        });
                    }
                }
                Command::StopStreaming => outputs.stop_streams(index),
                Command::SetVideoSettings(video) => outputs.set_video_settings(video),
                Command::UpdateCollection(updated) => {
                    let reopened = update_collection(
                        &mut collection,
                        *updated,
                        sources,
                        &mut audio.mixer,
                        events,
                    );
                    for id in reopened {
                        compositor.forget(&id);
                        preview.forget(&id);
                    }
                    audio.open_monitor_if_asked(config);
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
        outputs.adapt_bitrate();
        events.flush();
        outputs.poll(events);
        for message in sources
            .values()
            .filter_map(|source| source.notices())
            .flat_map(|notices| notices.take())
        {
            events.send(Event::Warning(message));
        }
        if stop || (stop_on_output_failure && outputs.failed()) {
            break;
        }
        if config.pacing == Pacing::RealTime {
            match clock.tick_start(index, Instant::now()) {
                TickStart::WaitFor(wait) => std::thread::sleep(wait),
                TickStart::OnTime => {}
                TickStart::Lagged => {
                    counters.lagged.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(frame = index, "lagged: its slot had passed");
                    let resume = clock
                        .resume_at(index, Instant::now(), give_up_after)
                        .min(config.frame_limit.unwrap_or(u64::MAX));
                    if resume > index {
                        skip_frames(
                            index..resume,
                            fps,
                            &collection,
                            &switcher,
                            &mut audio,
                            sources,
                            outputs,
                        )?;
                        index = resume;
                        if config.frame_limit.is_some_and(|limit| index >= limit) {
                            continue;
                        }
                    }
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
        let encoding = outputs.wants_video();
        let mut to_outputs = |index, bytes: &[u8], layout: &_| {
            outputs.video_frame(index, bytes, layout);
        };
        if encoding {
            compositor.render(index, &layers, &mut to_outputs)?;
        } else {
            // Nothing records or streams: draw for the screen only; no conversion, no readback.
            compositor.flush(&mut to_outputs)?;
            compositor.render_display(&layers)?;
        }
        if let Some(scene) = preview_scene {
            preview.render_display(&scene_layers(scene, &pictures, sources))?;
        }
        compositor.collect_ready(false, &mut to_outputs)?;
        if let Some(listener) = &config.on_frame {
            listener.frame_submitted(index);
        }
        counters.rendered.fetch_add(1, Ordering::Relaxed);
        counters
            .render_nanos
            .fetch_add(tick_started.elapsed().as_nanos() as u64, Ordering::Relaxed);

        // Sound for exactly this frame's span of samples, so audio and video never drift.
        let span = fps.first_sample_of_frame(index, SAMPLE_RATE)
            ..fps.first_sample_of_frame(index + 1, SAMPLE_RATE);
        audio.send(sources, &audible(&program_scenes), span, outputs);
        index += 1;
    }
    compositor.flush(&mut |index, bytes, layout| outputs.video_frame(index, bytes, layout))?;
    if audio.delay > 0 && outputs.wants_audio() {
        // The mix is behind the picture: let the live inputs deliver the last of it, then
        // send the sound that belongs to the final frames.
        std::thread::sleep(Duration::from_nanos(
            audio.delay * 1_000_000_000 / u64::from(SAMPLE_RATE),
        ));
        let end = fps.first_sample_of_frame(index, SAMPLE_RATE);
        if let Some(scene) = collection.scene(switcher.program()) {
            audio.send(sources, &audible(&[scene]), end..end + audio.delay, outputs);
        }
    }
    Ok(())
}

/// How far behind real time the render may fall before it skips ahead (1 s): a short stall
/// is caught up by rendering without waiting, so the outputs get every frame; beyond this
/// the show stays on time instead, as a stream's viewers and a recording's length need.
const GIVE_UP_AFTER: Duration = Duration::from_secs(1);

/// Gives up rendering `frames` (the render fell too far behind): their sound is still mixed
/// and sent, so it has no gap, while the picture freezes on the last frame for that long (the
/// outputs' timestamps jump, as with variable frame rate). They are counted as skipped.
fn skip_frames(
    frames: std::ops::Range<u64>,
    fps: FrameRate,
    collection: &Collection,
    switcher: &Switcher,
    audio: &mut ProgramAudio<'_>,
    sources: &mut HashMap<String, Box<dyn RunningSource>>,
    outputs: &mut Outputs,
) -> Result<(), EngineError> {
    let on_air = switcher.on_air(Duration::from_nanos(fps.frame_start_nanos(frames.start)));
    let program_scenes = scenes_on_air(collection, &on_air)?;
    let span = fps.first_sample_of_frame(frames.start, SAMPLE_RATE)
        ..fps.first_sample_of_frame(frames.end, SAMPLE_RATE);
    audio.send(sources, &audible(&program_scenes), span, outputs);
    audio
        .counters
        .skipped
        .fetch_add(frames.end - frames.start, Ordering::Relaxed);
    tracing::warn!(
        "the render fell more than {} s behind real time: skipped frames {} to {} to stay on time",
        GIVE_UP_AFTER.as_secs(),
        frames.start,
        frames.end - 1
    );
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
                    frame: Arc::new(crate::base::VideoFrame::solid(1, 1, color.premultiplied())),
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
    events: &EventSink,
) -> Vec<Change> {
    let known = |name: &str| {
        let exists = collection.scene(name).is_some();
        if !exists {
            events.send(Event::Warning(format!("no scene is named `{name}`")));
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

fn announce(changes: Vec<Change>, events: &EventSink) {
    for change in changes {
        let event = match change {
            Change::Program(scene) => Event::SceneChanged { scene },
            Change::Preview(scene) => Event::PreviewChanged { scene },
        };
        events.send(event);
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
    events: &EventSink,
) -> Vec<String> {
    let mut reopened = Vec::new();
    if updated.canvas != collection.canvas {
        events.send(Event::Warning(
            "canvas size and frame rate changes apply when the engine restarts".into(),
        ));
    }
    sources.retain(|id, _| updated.source(id).is_some());
    let mut sound_changed = false;
    for source in &updated.sources {
        let old = collection.source(&source.id);
        let running = sources.contains_key(&source.id);
        if old == Some(source) && running {
            continue;
        }
        sound_changed |=
            source.kind.audio().is_some() || old.is_some_and(|old| old.kind.audio().is_some());
        // A fader, mute or filter change is the mixer's alone: reopening would restart a
        // media file from its start and hold up this frame while it prerolls.
        if running && old.is_some_and(|old| old.kind.same_apart_from_audio(&source.kind)) {
            continue;
        }
        reopened.push(source.id.clone());
        match sources::open(source, &updated) {
            Ok(mut running) => {
                running.preroll(Duration::from_millis(500));
                sources.insert(source.id.clone(), running);
            }
            Err(error) => {
                sources.remove(&source.id);
                events.send(Event::Warning(error.to_string()));
            }
        }
    }
    let canvas = collection.canvas;
    *collection = updated;
    collection.canvas = canvas;
    if sound_changed {
        mixer.update(collection);
    }
    reopened
}

/// The program's sound as the render loop makes it: each block of the mix goes to the
/// outputs, the monitoring bus to the operator's headphones, and the meters are read out
/// every tenth of a second.
struct ProgramAudio<'a> {
    mixer: Mixer,
    /// Opened the first time a strip is monitored, and kept.
    monitor: Option<MonitorOutput>,
    /// The monitoring device would not open: not asked again.
    monitor_refused: bool,
    counters: &'a Counters,
    events: &'a EventSink,
    /// How far the mix runs behind the picture clock, in samples.
    delay: u64,
    pacing: Pacing,
    samples_since_levels: usize,
}

impl ProgramAudio<'_> {
    /// Opens the monitoring device once some strip is monitored, at the start or when an edit
    /// turns monitoring on; a device that will not open is a warning, not a stopped show.
    fn open_monitor_if_asked(&mut self, config: &EngineConfig) {
        if self.monitor.is_some() || self.monitor_refused || !self.mixer.monitors_anything() {
            return;
        }
        let device = config.monitor_device.as_deref().unwrap_or("default");
        match MonitorOutput::open(device) {
            Ok(monitor) => self.monitor = Some(monitor),
            Err(error) => {
                self.monitor_refused = true;
                self.events
                    .send(Event::Warning(format!("audio monitoring is off: {error}")));
            }
        }
    }

    /// Mixes what `on_air` makes heard for the picture clock's samples `span` (taken `delay`
    /// earlier) and sends it to the outputs.
    fn send(
        &mut self,
        sources: &mut HashMap<String, Box<dyn RunningSource>>,
        on_air: &HashSet<&str>,
        span: std::ops::Range<u64>,
        outputs: &mut Outputs,
    ) {
        let mixed = span.start.saturating_sub(self.delay)..span.end.saturating_sub(self.delay);
        let samples = (mixed.end - mixed.start) as usize;
        let block = self
            .mixer
            .mix(sources, on_air, mixed.start, samples, self.pacing);
        outputs.audio_block(mixed, block);
        if let Some(monitor) = &self.monitor {
            monitor.play(self.mixer.monitor_block());
        }
        self.counters
            .audio_samples
            .fetch_add(samples as u64, Ordering::Relaxed);
        self.samples_since_levels += samples;
        if self.samples_since_levels >= SAMPLE_RATE as usize / 10 {
            self.samples_since_levels = 0;
            let levels = self.mixer.take_levels();
            if let Ok(mut latest) = self.counters.audio_levels.lock() {
                *latest = Some(levels.clone());
            }
            self.events.send_levels(Event::AudioLevels(levels));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::AUDIO_CHANNELS;
    use crate::scene::{AudioFilter, AudioSettings};

    /// Stands for a media file that is playing, sounding a constant 0.5; there is no file
    /// behind it, so opening the source anew fails.
    struct Playing;

    impl RunningSource for Playing {
        fn size(&self) -> [u32; 2] {
            [1, 1]
        }
        fn video(&mut self, _tick: Tick) -> Option<FrameRef> {
            None
        }
        fn mix_audio(&mut self, _first_sample: u64, out: &mut [f32], _pacing: Pacing) {
            out.iter_mut().for_each(|sample| *sample += 0.5);
        }
    }

    fn with_clip(path: &str, audio: AudioSettings) -> Collection {
        Collection::with_one_media_source("clip", path, audio)
    }

    #[test]
    fn a_mixer_change_leaves_the_source_playing_and_a_new_file_reopens_it() {
        let mut collection = with_clip("missing.mp4", AudioSettings::default());
        let mut sources: HashMap<String, Box<dyn RunningSource>> = HashMap::new();
        sources.insert("clip".into(), Box::new(Playing));
        let mut mixer = Mixer::new(&collection);
        let (events, warnings) = crossbeam_channel::bounded(8);
        let events = crate::engine::events::EventSink::new(events);
        let on_air: HashSet<&str> = ["clip"].into_iter().collect();

        // The fader down 6 dB and a gain filter of -14 dB: -20 dB in all.
        let quieter = with_clip(
            "missing.mp4",
            AudioSettings {
                volume_db: -6.0,
                filters: vec![AudioFilter::Gain { db: -14.0 }],
                ..AudioSettings::default()
            },
        );
        let reopened = update_collection(
            &mut collection,
            quieter.clone(),
            &mut sources,
            &mut mixer,
            &events,
        );
        assert!(reopened.is_empty(), "{reopened:?}");
        assert!(
            sources.contains_key("clip"),
            "the playing source was dropped"
        );
        assert!(warnings.try_recv().is_err(), "nothing was opened");
        assert_eq!(collection, quieter);
        let block = mixer.mix(&mut sources, &on_air, 0, 4, Pacing::Deterministic);
        assert_eq!(block.len(), 4 * AUDIO_CHANNELS);
        assert!(
            block.iter().all(|sample| (sample - 0.05).abs() < 1e-3),
            "the mixer did not take the new settings: {block:?}"
        );

        // Another file is another source: opened anew (and this one is missing).
        let other_file = with_clip(
            "other.mp4",
            quieter.sources[0].kind.audio().unwrap().clone(),
        );
        let reopened = update_collection(
            &mut collection,
            other_file,
            &mut sources,
            &mut mixer,
            &events,
        );
        assert_eq!(reopened, ["clip"]);
        assert!(!sources.contains_key("clip"));
        assert!(
            matches!(warnings.try_recv(), Ok(Event::Warning(message)) if message.contains("other.mp4")),
            "the missing file is a warning"
        );
    }
}
