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
            if let Err(unheard) = ready.send(Err(error)) {
                // Engine::start stopped waiting; the error is still the thread's end.
                if let Err(error) = unheard.into_inner() {
                    tracing::warn!("the engine did not start: {error}");
                }
            }
            return Err(EngineError::Thread(super::ThreadProblem::StartUpFailed));
        }
    };
    let display = DisplayTextures {
        program: started.compositor.canvas_texture(),
        preview: started.preview.canvas_texture(),
    };
    if ready.send(Ok(display)).is_err() {
        tracing::debug!("nobody waits for the engine to start any more; it runs until stopped");
    }
    let gpu_name = started.compositor.gpu().info.name.clone();
    let wall_start = Instant::now();

    let mut render = RenderLoop::new(collection, &config, &events, &counters, started, wall_start);
    let loop_result = render.run(&commands);
    let outputs = render.into_outputs();
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

/// What start-up opened: the sources, program's compositor and studio mode's preview, and the
/// outputs the engine started with.
struct Started {
    sources: HashMap<String, Box<dyn RunningSource>>,
    compositor: Compositor,
    preview: Compositor,
    outputs: Outputs,
}

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
    Ok(Started {
        sources,
        compositor,
        preview,
        outputs,
    })
}

/// The render thread's state between frames, and one frame's work as methods: take the
/// commands, keep pace with the clock, compose the picture, mix the sound.
/// How often meter readings go out: every 50 ms, as obs-websocket's InputVolumeMeters and
/// broadcast meters update.
const LEVELS_PER_SECOND: usize = 20;

struct RenderLoop<'r> {
    collection: Collection,
    config: &'r EngineConfig,
    events: &'r EventSink,
    counters: &'r Counters,
    sources: HashMap<String, Box<dyn RunningSource>>,
    compositor: Compositor,
    preview: Compositor,
    outputs: Outputs,
    switcher: Switcher,
    audio: ProgramAudio<'r>,
    pacer: Pacer,
    /// When frame 0 was due, for sources opened during the show.
    clock_start: Instant,
    /// Sources being opened on helper threads after an edit, by id; a later edit of the same
    /// source replaces its entry, and the earlier result is then dropped by its thread.
    opening: HashMap<String, Receiver<Opened>>,
    /// The frame the loop renders next.
    index: u64,
    /// Started with outputs (the command line): a failed encoder or recording ends the run.
    /// The app's outputs come and go; a failure there is reported and the show goes on.
    stop_on_output_failure: bool,
    /// Media sources announced as ended, so each end is announced once (a restart clears it).
    ended_media: HashSet<String>,
}

/// Whether the loop goes on after a frame's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl<'r> RenderLoop<'r> {
    fn new(
        collection: Collection,
        config: &'r EngineConfig,
        events: &'r EventSink,
        counters: &'r Counters,
        started: Started,
        clock_start: Instant,
    ) -> Self {
        let Started {
            mut sources,
            compositor,
            preview,
            outputs,
        } = started;
        let switcher = Switcher::new(&collection.current_scene);
        publish_switcher(&switcher, Duration::ZERO, counters);
        let mut audio = ProgramAudio {
            mixer: Mixer::new(&collection),
            monitor: None,
            monitor_refused: false,
            counters,
            events,
            // Live inputs are heard a little after they happen; the mix runs this far behind
            // the picture clock so their sound has arrived when it is mixed. Timestamps stay
            // exact.
            delay: match config.pacing {
                Pacing::RealTime if has_live_audio(&collection) => LIVE_AUDIO_DELAY_SAMPLES,
                _ => 0,
            },
            pacing: config.pacing,
            samples_since_levels: 0,
        };
        audio.open_monitor_if_asked(config);
        for source in sources.values_mut() {
            source.clock_started(clock_start);
        }
        Self {
            pacer: Pacer::new(collection.canvas.fps, clock_start, config.frame_limit),
            stop_on_output_failure: config.recording.is_some() || !config.streams.is_empty(),
            collection,
            config,
            events,
            counters,
            sources,
            compositor,
            preview,
            outputs,
            switcher,
            audio,
            clock_start,
            opening: HashMap::new(),
            index: 0,
            ended_media: HashSet::new(),
        }
    }

    /// Renders frames until told to stop, the frame limit, or (for outputs the engine started
    /// with) an output's failure; then hands the outputs the last picture and sound.
    fn run(&mut self, commands: &Receiver<Command>) -> Result<(), EngineError> {
        while !self.pacer.past_limit(self.index) {
            let now = self.canvas_time(self.index);
            let pending = self.gather_commands(commands, now);
            let mut flow = Flow::Continue;
            for command in pending {
                if self.apply(command, now) == Flow::Stop {
                    flow = Flow::Stop;
                }
            }
            self.report(now);
            if flow == Flow::Stop || (self.stop_on_output_failure && self.outputs.failed()) {
                break;
            }
            if self.config.pacing == Pacing::RealTime {
                self.keep_pace(Instant::now())?;
                if self.pacer.past_limit(self.index) {
                    break;
                }
            }
            let tick_started = Instant::now();
            self.compose()?;
            self.counters.rendered.fetch_add(1, Ordering::Relaxed);
            self.counters
                .render_nanos
                .fetch_add(tick_started.elapsed().as_nanos() as u64, Ordering::Relaxed);
            // Sound for exactly this frame's span of samples, so audio and video never drift.
            self.mix(self.index..self.index + 1)?;
            self.index += 1;
        }
        self.finish()
    }

    fn into_outputs(self) -> Outputs {
        self.outputs
    }

    fn canvas_time(&self, index: u64) -> Duration {
        Duration::from_nanos(self.collection.canvas.fps.frame_start_nanos(index))
    }

    /// This frame's commands: those queued, with the GO presses counted and handed to the show
    /// driver, plus what the driver answers.
    fn gather_commands(&mut self, commands: &Receiver<Command>, now: Duration) -> Vec<Command> {
        let (go, mut pending) = split_go(commands.try_iter().collect());
        if let Some(driver) = &self.config.driver {
            let context = super::FrameContext {
                index: self.index,
                now,
                go,
                media_ended: self
                    .sources
                    .iter()
                    .filter(|(_, source)| source.has_ended())
                    .map(|(id, _)| id.clone())
                    .collect(),
            };
            let output = crate::base::lock(&driver.0).frame(&context);
            pending.extend(output.commands);
            for event in output.events {
                self.events.send(event);
            }
        }
        pending
    }

    /// Carries out one command at canvas time `now`; a command that cannot be carried out is
    /// reported as an event, never dropped.
    fn apply(&mut self, command: Command, now: Duration) -> Flow {
        match command {
            Command::Stop => return Flow::Stop,
            // Counted for the driver in `gather_commands`.
            Command::Go => {}
            Command::Media { source, control } => {
                let outcome = match self.sources.get_mut(&source) {
                    Some(running) => running.control(control, now),
                    None => Err(sources::ControlError::NoSuchSource),
                };
                if let Err(error) = outcome {
                    self.events.send(Event::Warning(format!(
                        "cannot {control:?} source `{source}`: {error}"
                    )));
                }
            }
            Command::ReconnectOutputs => self.outputs.reconnect_streams(),
            Command::StartRecording(recording) => {
                match self.outputs.start_recording(&recording, self.index) {
                    Ok(()) => self.events.send(Event::RecordingStarted {
                        path: recording.path,
                    }),
                    Err(error) => self.events.send(Event::RecordingStopped {
                        path: recording.path,
                        error: Some(error.to_string()),
                    }),
                }
            }
            Command::StopRecording => self.outputs.stop_recording(self.index),
            Command::StartStreaming(destinations) => {
                if let Err(error) = self.outputs.start_streams(&destinations, self.index) {
                    self.events.send(Event::StreamingStopped {
                        error: Some(error.to_string()),
                    });
                }
            }
            Command::StopStreaming => self.outputs.stop_streams(self.index, None),
            Command::StopStreamingTo(destinations) => {
                self.outputs.stop_streams(self.index, Some(&destinations));
            }
            Command::SetVideoSettings(video) => self.outputs.set_video_settings(video),
            Command::UpdateCollection(updated) => self.take_collection(*updated),
            Command::Edit(edit) => {
                let mut edited = self.collection.clone();
                match crate::scene::apply_edit(&mut edited, &edit) {
                    Ok(()) => {
                        self.take_collection(edited);
                        self.events.send(Event::Edited(edit));
                    }
                    Err(error) => self
                        .events
                        .send(Event::Warning(format!("an edit did not apply: {error}"))),
                }
            }
            command => {
                let changes = switch(
                    &mut self.switcher,
                    &self.collection,
                    command,
                    now,
                    self.events,
                );
                announce(changes, self.events);
            }
        }
        Flow::Continue
    }

    /// The collection becomes `updated`: new and changed sources are opened, and the switcher
    /// leaves scenes that are gone.
    fn take_collection(&mut self, updated: Collection) {
        let to_open = update_collection(
            &mut self.collection,
            updated,
            &mut self.sources,
            &mut self.audio.mixer,
            self.events,
        );
        let collection = &self.collection;
        self.opening.retain(|id, _| collection.source(id).is_some());
        for id in to_open {
            self.open_source(&id);
        }
        self.audio.open_monitor_if_asked(self.config);
        let fallback = self.collection.current_scene.clone();
        let collection = &self.collection;
        let changes = self
            .switcher
            .retarget(|name| collection.scene(name).is_some(), &fallback);
        announce(changes, self.events);
    }

    /// Opens source `id` of the collection for an edit. In real time a source that decodes or
    /// captures is opened and prerolled on a helper thread, so program output never waits for
    /// it: the source it replaces plays on until it is ready ([`Self::take_opened`]). With
    /// deterministic pacing it is opened here, so an edit lands on its exact frame.
    fn open_source(&mut self, id: &str) {
        let Some(source) = self.collection.source(id).cloned() else {
            return;
        };
        if self.config.pacing == Pacing::RealTime && opens_slowly(&source.kind) {
            let (sender, result) = crossbeam_channel::bounded(1);
            let collection = self.collection.clone();
            let to_open = source.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("open {id}").chars().take(15).collect())
                .spawn(move || {
                    let opened = sources::open(&to_open, &collection).map(|mut running| {
                        running.preroll(EDIT_PREROLL);
                        running
                    });
                    // The render loop went on to another edit of this source (or stopped):
                    // this one is not wanted any more.
                    if sender.send(opened).is_err() {
                        tracing::debug!(
                            "source `{}` opened after it was no longer wanted",
                            to_open.id
                        );
                    }
                });
            match spawned {
                Ok(_) => {
                    self.opening.insert(id.to_string(), result);
                    return;
                }
                Err(error) => self.events.send(Event::Warning(format!(
                    "source `{id}` is opened on the render thread (no helper thread: {error})"
                ))),
            }
        }
        self.opening.remove(id);
        let opened = sources::open(&source, &self.collection);
        self.swap_in(id, opened, true);
    }

    /// Puts the sources opened on helper threads since the last frame in place of the ones
    /// they replace.
    fn take_opened(&mut self) {
        let mut finished = Vec::new();
        for (id, result) in &self.opening {
            match result.try_recv() {
                Ok(opened) => finished.push((id.clone(), Some(opened))),
                Err(crossbeam_channel::TryRecvError::Empty) => {}
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    finished.push((id.clone(), None));
                }
            }
        }
        for (id, opened) in finished {
            self.opening.remove(&id);
            tracing::debug!("source `{id}` opened off the render thread");
            match opened {
                Some(opened) => self.swap_in(&id, opened, false),
                None => self.events.send(Event::Warning(format!(
                    "source `{id}`: the thread opening it ended without a result (it panicked)"
                ))),
            }
        }
    }

    /// Source `id` (re)opened for an edit, or why not; `preroll` waits for its first picture.
    fn swap_in(&mut self, id: &str, opened: Opened, preroll: bool) {
        match opened {
            Ok(mut running) => {
                if preroll {
                    running.preroll(EDIT_PREROLL);
                }
                // A live source places what it captures on the engine's clock.
                running.clock_started(self.clock_start);
                self.sources.insert(id.to_string(), running);
            }
            Err(error) => {
                self.sources.remove(id);
                self.events.send(Event::Warning(error.to_string()));
            }
        }
        // Its pictures on the GPU are the old source's.
        self.compositor.forget(id);
        self.preview.forget(id);
    }

    /// What the operator and the front-ends see once a frame: the switcher's state, the
    /// sources' sizes, the outputs' news and bitrates, the sources' warnings.
    fn report(&mut self, now: Duration) {
        self.take_opened();
        announce(self.switcher.tick(now), self.events);
        publish_switcher(&self.switcher, now, self.counters);
        if self.index % 10 == 0 {
            if let Ok(mut sizes) = self.counters.source_sizes.lock() {
                sizes.clear();
                sizes.extend(
                    self.sources
                        .iter()
                        .map(|(id, source)| (id.clone(), source.size())),
                );
            }
        }
        self.report_media(now);
        self.outputs.adapt_bitrate();
        self.events.flush();
        self.outputs.poll(self.events);
        for message in self
            .sources
            .values()
            .filter_map(|source| source.notices())
            .flat_map(|notices| notices.take())
        {
            self.events.send(Event::Warning(message));
        }
    }

    /// Where each media file is, for the front-ends, and the end of a file played once, as an
    /// event (once per end: a restart plays it again).
    fn report_media(&mut self, now: Duration) {
        let media: HashMap<String, sources::MediaPlayback> = self
            .sources
            .iter()
            .filter_map(|(id, source)| Some((id.clone(), source.playback(now)?)))
            .collect();
        let ended = |id: &String| {
            media
                .get(id)
                .is_some_and(|playback| playback.state == sources::PlaybackState::Ended)
        };
        self.ended_media.retain(ended);
        for id in media.keys().filter(|id| ended(id)) {
            if self.ended_media.insert(id.clone()) {
                self.events.send(Event::MediaEnded { source: id.clone() });
            }
        }
        if let Ok(mut shown) = self.counters.media.lock() {
            if !(media.is_empty() && shown.is_empty()) {
                *shown = media;
            }
        }
    }

    /// Waits for this frame's slot, or, when the render is behind, counts the frame as lagged
    /// and gives up the frames it cannot catch up (see [`Pacer`]).
    fn keep_pace(&mut self, now: Instant) -> Result<(), EngineError> {
        match self.pacer.before_frame(self.index, now) {
            Pace::Wait(wait) => std::thread::sleep(wait),
            Pace::Render => {}
            Pace::Lagged { resume_at } => {
                self.counters.lagged.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(frame = self.index, "lagged: its slot had passed");
                if resume_at > self.index {
                    self.skip_frames(self.index..resume_at)?;
                    self.index = resume_at;
                }
            }
        }
        Ok(())
    }

    /// Gives up rendering `frames` (the render fell too far behind): their sound is still mixed
    /// and sent, so it has no gap, while the picture freezes on the last frame for that long
    /// (the outputs' timestamps jump, as with variable frame rate). They are counted as skipped.
    fn skip_frames(&mut self, frames: std::ops::Range<u64>) -> Result<(), EngineError> {
        self.mix(frames.clone())?;
        self.counters
            .skipped
            .fetch_add(frames.end - frames.start, Ordering::Relaxed);
        tracing::warn!(
            "the render fell more than {} s behind real time: skipped frames {} to {} to stay on \
             time",
            GIVE_UP_AFTER.as_secs(),
            frames.start,
            frames.end - 1
        );
        Ok(())
    }

    /// Mixes and sends the sound of `frames` (one, or those skipped), as the scenes on program
    /// at the first of them make it heard.
    fn mix(&mut self, frames: std::ops::Range<u64>) -> Result<(), EngineError> {
        let on_air = self.switcher.on_air(self.canvas_time(frames.start));
        let program_scenes = scenes_on_air(&self.collection, &on_air)?;
        let span = frame_samples(self.collection.canvas.fps, frames);
        self.audio.send(
            &mut self.sources,
            &audible(&program_scenes),
            span,
            &mut self.outputs,
        );
        Ok(())
    }

    /// Draws this frame: program (converted and handed to the outputs when anything encodes)
    /// and studio mode's preview.
    fn compose(&mut self) -> Result<(), EngineError> {
        let tick = Tick {
            index: self.index,
            time: self.canvas_time(self.index),
            pacing: self.config.pacing,
        };
        let on_air = self.switcher.on_air(tick.time);
        let shown = ShownScenes::at(&self.collection, &self.switcher, &on_air)?;
        let pictures = gather_pictures(&shown.all(), &mut self.sources, tick);
        let canvas = &self.collection.canvas;
        let frame = ProgramFrame::new(
            &on_air,
            &shown.program,
            [canvas.width as f32, canvas.height as f32],
        );
        let layers = frame.layers(&pictures, &self.sources);
        let encoding = self.outputs.wants_video();
        if encoding {
            self.compositor
                .set_output_sizes(&self.outputs.wanted_sizes());
        }
        let outputs = &mut self.outputs;
        let mut to_outputs = |index, bytes: &[u8], layout: &_| {
            outputs.video_frame(index, bytes, layout);
        };
        if encoding {
            self.compositor
                .render(self.index, &layers, &mut to_outputs)?;
        } else {
            // Nothing records or streams: draw for the screen only; no conversion, no readback.
            self.compositor.flush(&mut to_outputs)?;
            self.compositor.render_display(&layers)?;
        }
        if let Some(scene) = shown.preview {
            self.preview
                .render_display(&scene_layers(scene, &pictures, &self.sources))?;
        }
        self.compositor.collect_ready(false, &mut to_outputs)?;
        if let Some(listener) = &self.config.on_frame {
            listener.frame_submitted(self.index);
        }
        Ok(())
    }

    /// After the last frame: the pictures still on the GPU go to the outputs, and with live
    /// inputs the sound that belongs to the final frames, which the mix runs behind.
    fn finish(&mut self) -> Result<(), EngineError> {
        let outputs = &mut self.outputs;
        self.compositor
            .flush(&mut |index, bytes, layout| outputs.video_frame(index, bytes, layout))?;
        if self.audio.delay > 0 && self.outputs.wants_audio() {
            // Let the live inputs deliver the last of it, then send it.
            std::thread::sleep(Duration::from_nanos(
                self.audio.delay * 1_000_000_000 / u64::from(SAMPLE_RATE),
            ));
            let end = self
                .collection
                .canvas
                .fps
                .first_sample_of_frame(self.index, SAMPLE_RATE);
            if let Some(scene) = self.collection.scene(self.switcher.program()) {
                let delay = self.audio.delay;
                self.audio.send(
                    &mut self.sources,
                    &audible(&[scene]),
                    end..end + delay,
                    &mut self.outputs,
                );
            }
        }
        Ok(())
    }
}

/// Splits the GO presses (counted, for the show driver) from the other commands, which keep
/// their order.
fn split_go(commands: Vec<Command>) -> (u32, Vec<Command>) {
    let (go, rest): (Vec<Command>, Vec<Command>) = commands
        .into_iter()
        .partition(|command| *command == Command::Go);
    (go.len() as u32, rest)
}

/// The engine's audio samples that belong to `frames`: frame `n` carries samples
/// `floor(n * 48000 / fps) .. floor((n+1) * 48000 / fps)`, so audio and video cannot drift.
fn frame_samples(fps: FrameRate, frames: std::ops::Range<u64>) -> std::ops::Range<u64> {
    fps.first_sample_of_frame(frames.start, SAMPLE_RATE)
        ..fps.first_sample_of_frame(frames.end, SAMPLE_RATE)
}

/// When to render the next frame in real time: the clock's deadlines, the rule for giving up
/// frames after a long stall, and the frame limit. Time is an argument, so it is tested
/// without sleeping.
struct Pacer {
    clock: FrameClock,
    /// A render further behind than this many frames gives up the frames it missed.
    give_up_after: u64,
    frame_limit: Option<u64>,
}

/// What the render loop does before frame `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// Early: wait this long, then render.
    Wait(Duration),
    /// Within its slot: render now.
    Render,
    /// Its slot has passed: count it as lagged and render `resume_at` next (the same frame
    /// unless the render is too far behind to catch up).
    Lagged { resume_at: u64 },
}

impl Pacer {
    fn new(fps: FrameRate, clock_start: Instant, frame_limit: Option<u64>) -> Self {
        Self {
            clock: FrameClock::new(fps, clock_start),
            give_up_after: fps.frames_in(GIVE_UP_AFTER),
            frame_limit,
        }
    }

    fn past_limit(&self, index: u64) -> bool {
        self.frame_limit.is_some_and(|limit| index >= limit)
    }

    fn before_frame(&self, index: u64, now: Instant) -> Pace {
        match self.clock.tick_start(index, now) {
            TickStart::WaitFor(wait) => Pace::Wait(wait),
            TickStart::OnTime => Pace::Render,
            TickStart::Lagged => Pace::Lagged {
                resume_at: self
                    .clock
                    .resume_at(index, now, self.give_up_after)
                    .min(self.frame_limit.unwrap_or(u64::MAX)),
            },
        }
    }
}

/// The scenes a frame draws: on program one, or the outgoing and incoming during a
/// transition; and studio mode's preview unless it shows what program shows (front-ends show
/// the program canvas for it then, see `SwitcherStats`).
struct ShownScenes<'c> {
    program: Vec<&'c Scene>,
    preview: Option<&'c Scene>,
}

impl<'c> ShownScenes<'c> {
    fn at(
        collection: &'c Collection,
        switcher: &Switcher,
        on_air: &OnAir<'_>,
    ) -> Result<Self, EngineError> {
        let preview = switcher
            .preview()
            .filter(|name| *name != switcher.program() || switcher.in_transition())
            .and_then(|name| collection.scene(name));
        Ok(Self {
            program: scenes_on_air(collection, on_air)?,
            preview,
        })
    }

    /// Every scene drawn, program's first.
    fn all(&self) -> Vec<&'c Scene> {
        self.program.iter().copied().chain(self.preview).collect()
    }
}

/// How far behind real time the render may fall before it skips ahead (1 s): a short stall
/// is caught up by rendering without waiting, so the outputs get every frame; beyond this
/// the show stays on time instead, as a stream's viewers and a recording's length need.
const GIVE_UP_AFTER: Duration = Duration::from_secs(1);

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
            Change::TransitionStarted { to, transition } => {
                Event::TransitionStarted { to, transition }
            }
            Change::TransitionEnded { to, transition } => Event::TransitionEnded { to, transition },
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

/// Swaps in an edited collection: removed sources are closed, and the ids of sources that are
/// new or whose settings changed are returned, to be opened (the caller decides where: see
/// [`RenderLoop::open_source`]); item changes (position, size...) need nothing more, and a
/// change of a source's sound alone is the mixer's (reopening would restart a media file from
/// its start).
fn update_collection(
    collection: &mut Collection,
    updated: Collection,
    sources: &mut HashMap<String, Box<dyn RunningSource>>,
    mixer: &mut Mixer,
    events: &EventSink,
) -> Vec<String> {
    let mut to_open = Vec::new();
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
        if running && old.is_some_and(|old| old.kind.same_apart_from_audio(&source.kind)) {
            continue;
        }
        to_open.push(source.id.clone());
    }
    let canvas = collection.canvas;
    *collection = updated;
    collection.canvas = canvas;
    if sound_changed {
        mixer.update(collection);
    }
    to_open
}

/// How long a source opened during the show may take to show its first picture.
const EDIT_PREROLL: Duration = Duration::from_millis(500);

/// A source opened for an edit, or why not.
type Opened = Result<Box<dyn RunningSource>, sources::SourceError>;

/// Sources that decode or capture take long to open (a media file prerolls for up to
/// [`EDIT_PREROLL`], a device may not answer at once); the others are made in a moment.
fn opens_slowly(kind: &crate::scene::SourceKind) -> bool {
    use crate::scene::SourceKind;
    matches!(
        kind,
        SourceKind::Media(_)
            | SourceKind::Screen(_)
            | SourceKind::Camera(_)
            | SourceKind::AudioInput(_)
    )
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
        let levels_period = SAMPLE_RATE as usize / LEVELS_PER_SECOND;
        if self.samples_since_levels >= levels_period {
            // Keep the remainder, so readings come at their rate on average (at 30 fps, two
            // every three frames); a frame longer than 50 ms gives one reading.
            self.samples_since_levels %= levels_period;
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
        let to_open = update_collection(
            &mut collection,
            quieter.clone(),
            &mut sources,
            &mut mixer,
            &events,
        );
        assert!(to_open.is_empty(), "{to_open:?}");
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

        // Another file is another source, to be opened anew; the playing one plays on until
        // the new one is ready.
        let other_file = with_clip(
            "other.mp4",
            quieter.sources[0].kind.audio().unwrap().clone(),
        );
        let to_open = update_collection(
            &mut collection,
            other_file.clone(),
            &mut sources,
            &mut mixer,
            &events,
        );
        assert_eq!(to_open, ["clip"]);
        assert!(sources.contains_key("clip"));
        assert_eq!(collection, other_file);

        // A source taken out of the collection is closed at once.
        let mut without = other_file;
        without.sources.clear();
        let to_open =
            update_collection(&mut collection, without, &mut sources, &mut mixer, &events);
        assert!(to_open.is_empty());
        assert!(sources.is_empty());
    }

    fn two_scenes() -> Collection {
        crate::scene::parse_str(
            "[canvas]\nwidth = 64\nheight = 36\nfps = 30\n\n\
             [[sources]]\nid = \"red\"\nkind = \"color\"\ncolor = \"#ff0000\"\n\n\
             [[sources]]\nid = \"blue\"\nkind = \"color\"\ncolor = \"#0000ff\"\n\n\
             [[scenes]]\nname = \"A\"\n[[scenes.items]]\nsource = \"red\"\n\n\
             [[scenes]]\nname = \"B\"\n[[scenes.items]]\nsource = \"blue\"\n",
            std::path::Path::new("two.toml"),
            std::path::Path::new("."),
        )
        .expect("the test collection loads")
    }

    fn names(scenes: &[&Scene]) -> Vec<String> {
        scenes.iter().map(|scene| scene.name.clone()).collect()
    }

    #[test]
    fn go_presses_are_counted_and_the_other_commands_keep_their_order() {
        let (go, rest) = split_go(vec![
            Command::Go,
            Command::SwitchScene("B".into()),
            Command::Go,
            Command::StopRecording,
        ]);
        assert_eq!(go, 2);
        assert_eq!(
            rest,
            vec![Command::SwitchScene("B".into()), Command::StopRecording]
        );
    }

    #[test]
    fn each_frame_carries_its_own_samples_and_skipped_frames_theirs() {
        let ntsc = FrameRate::new(30000, 1001);
        assert_eq!(frame_samples(ntsc, 0..1), 0..1601);
        assert_eq!(frame_samples(ntsc, 1..2), 1601..3203);
        // Skipping frames 1 to 29 mixes exactly what rendering them one by one would.
        let one_by_one: u64 = (1..30)
            .map(|frame| {
                let span = frame_samples(ntsc, frame..frame + 1);
                span.end - span.start
            })
            .sum();
        let skipped = frame_samples(ntsc, 1..30);
        assert_eq!(skipped.end - skipped.start, one_by_one);
    }

    #[test]
    fn the_pacer_waits_renders_lags_and_gives_up_after_a_second() {
        let start = Instant::now();
        let fps = FrameRate::new(25, 1);
        let pacer = Pacer::new(fps, start, Some(100));
        let period = Duration::from_millis(40);
        assert_eq!(pacer.before_frame(1, start), Pace::Wait(period));
        assert_eq!(pacer.before_frame(1, start + period), Pace::Render);
        // Frame 1 starting in frame 2's slot: lagged, still rendered.
        assert_eq!(
            pacer.before_frame(1, start + period * 2),
            Pace::Lagged { resume_at: 1 }
        );
        // Over a second (25 frames) behind: resume at the frame whose slot it is.
        assert_eq!(
            pacer.before_frame(1, start + period * 40),
            Pace::Lagged { resume_at: 40 }
        );
        // Never past the frame limit.
        assert_eq!(
            pacer.before_frame(1, start + period * 500),
            Pace::Lagged { resume_at: 100 }
        );
        assert!(!pacer.past_limit(99));
        assert!(pacer.past_limit(100));
        assert!(!Pacer::new(fps, start, None).past_limit(u64::MAX));
    }

    #[test]
    fn a_frame_draws_program_and_a_preview_only_when_it_differs() {
        let collection = two_scenes();
        let mut switcher = Switcher::new("A");
        let on_air = switcher.on_air(Duration::ZERO);
        let shown = ShownScenes::at(&collection, &switcher, &on_air).unwrap();
        assert_eq!(names(&shown.all()), ["A"]);

        switcher.set_preview(Some("B"));
        let on_air = switcher.on_air(Duration::ZERO);
        let shown = ShownScenes::at(&collection, &switcher, &on_air).unwrap();
        assert_eq!(names(&shown.program), ["A"]);
        assert_eq!(names(&shown.all()), ["A", "B"]);

        // Preview on the scene that is on program: drawn once.
        switcher.set_preview(Some("A"));
        let on_air = switcher.on_air(Duration::ZERO);
        let shown = ShownScenes::at(&collection, &switcher, &on_air).unwrap();
        assert!(shown.preview.is_none());

        // During a fade both scenes are on program and both are heard.
        switcher.transition_to(
            "B",
            Transition::fade(Duration::from_secs(1)),
            Duration::ZERO,
        );
        let on_air = switcher.on_air(Duration::from_millis(500));
        let shown = ShownScenes::at(&collection, &switcher, &on_air).unwrap();
        assert_eq!(names(&shown.program), ["A", "B"]);
        let heard = audible(&shown.program);
        assert!(heard.contains("red") && heard.contains("blue"), "{heard:?}");
    }

    #[test]
    fn a_scene_missing_from_the_collection_is_an_error_not_a_panic() {
        let collection = two_scenes();
        let switcher = Switcher::new("Gone");
        let on_air = switcher.on_air(Duration::ZERO);
        assert!(matches!(
            ShownScenes::at(&collection, &switcher, &on_air),
            Err(EngineError::NoSuchScene(name)) if name == "Gone"
        ));
    }

    #[test]
    fn a_switching_command_for_an_unknown_scene_is_a_warning() {
        let collection = two_scenes();
        let mut switcher = Switcher::new("A");
        let (sender, events) = crossbeam_channel::bounded(8);
        let sink = crate::engine::events::EventSink::new(sender);
        let changes = switch(
            &mut switcher,
            &collection,
            Command::SwitchScene("Nope".into()),
            Duration::ZERO,
            &sink,
        );
        assert!(changes.is_empty());
        assert!(
            matches!(events.try_recv(), Ok(Event::Warning(message)) if message.contains("Nope"))
        );
        let changes = switch(
            &mut switcher,
            &collection,
            Command::SwitchScene("B".into()),
            Duration::ZERO,
            &sink,
        );
        assert!(
            changes.contains(&Change::Program("B".into())),
            "{changes:?}"
        );
    }
}
