//! The `tally` command line: check scene files, record them, take snapshots, list devices.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tally::base::Pacing;
use tally::control::{Controller, Received, Request, Settings, Subscription};
use tally::encode::{
    AudioSettings, EncodeProfile, RateControl, VideoCodec, VideoEncoderKind, VideoSettings,
};
use tally::engine::{EngineConfig, Event, RecordingConfig, Summary};
use tally::output::{
    hls_publication::{HlsPlan, HlsPublication, HlsPublicationError, HlsPush},
    hls_upload::UploadSettings,
    parse_destination, Destination, Endpoint, HlsSettings, OutputState, OutputStats, QueueSettings,
    ReconnectSettings, RecordingFormat, StreamSettings,
};
use tally::remote::{RemoteConfig, RemoteServer};
use tally::scene::{self, Collection};

#[derive(Parser)]
#[command(
    name = "tally",
    version,
    about = "Live-production switcher and streaming encoder",
    long_about = "Live-production switcher and streaming encoder.\n\nWithout a command, opens the \
                  desktop app on COLLECTION (or the bundled demo).",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Commands>,
    /// Scene collection, or show script (with its collection and a Cue List), to open in the app.
    collection: Option<PathBuf>,
    /// Start recording to this file as soon as the app opens (Ctrl-C closes the app and
    /// finishes the recording).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    #[command(flatten)]
    overwrite: OverwriteArg,
}

#[derive(Subcommand)]
enum Commands {
    /// Check scene collection files and report every problem with file, line and field.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Record a scene collection to an MP4 or MKV file.
    Record(RecordArgs),
    /// Stream a scene collection live over RTMP(S) or SRT, optionally recording it too.
    Stream(Box<StreamArgs>),
    /// Run a show script: its cues take scenes, change texts and volumes, start and stop
    /// recordings and streams. Cues that wait for GO fire on Enter.
    Run(RunArgs),
    /// Serve a collection (or a show) to remote control, the obs-websocket v5 protocol that
    /// control surfaces speak, until Ctrl-C. Recordings and streams started remotely use the
    /// settings (recordings folder, stream destinations).
    Serve(ServeArgs),
    /// Render one frame of a scene collection to a PNG.
    Snapshot {
        scene_file: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Which canvas frame to render (media and test patterns move with it).
        #[arg(long, default_value_t = 0)]
        frame: u64,
        /// Scene to render instead of the collection's current scene.
        #[arg(long)]
        scene: Option<String>,
        /// Width of the picture in pixels (a thumbnail); the height keeps the canvas's shape.
        /// Without it, the canvas's own size.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=16384))]
        width: Option<u32>,
        #[command(flatten)]
        overwrite: OverwriteArg,
    },
    /// List GPU adapters and encoders found on this machine.
    Devices,
}

#[derive(clap::Args)]
struct RecordArgs {
    scene_file: PathBuf,
    /// Output file; .mp4 or .mkv.
    #[arg(short, long)]
    output: PathBuf,
    /// How long to record, e.g. 30s, 1m30s, 500ms or 90 (seconds). Without it, until Ctrl-C.
    #[arg(short, long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Render as fast as the machine allows instead of in real time (same result every run).
    #[arg(long)]
    fast: bool,
    /// Scene to put on air instead of the collection's current scene.
    #[arg(long)]
    scene: Option<String>,
    #[command(flatten)]
    overwrite: OverwriteArg,
    #[command(flatten)]
    encoding: EncodingArgs,
    #[command(flatten)]
    monitoring: MonitoringArgs,
}

/// Where remote control listens.
#[derive(clap::Args)]
struct ControlAddress {
    /// Remote control's port (obs-websocket's own by default).
    #[arg(long, value_name = "PORT", default_value_t = tally::remote::DEFAULT_PORT)]
    control_port: u16,
    /// The address remote control listens on; anything but loopback needs a password
    /// (TALLY_CONTROL_PASSWORD, or the one in Settings).
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1")]
    control_bind: std::net::IpAddr,
}

/// Remote control beside a run or a stream.
#[derive(clap::Args)]
struct ControlArgs {
    /// Serve remote control (obs-websocket v5) while it runs.
    #[arg(long)]
    control: bool,
    #[command(flatten)]
    address: ControlAddress,
}

impl ControlArgs {
    fn remote(&self, settings: &Settings) -> Option<RemoteConfig> {
        self.control.then(|| self.address.remote(settings))
    }
}

impl ControlAddress {
    fn remote(&self, settings: &Settings) -> RemoteConfig {
        RemoteConfig {
            bind: std::net::SocketAddr::new(self.control_bind, self.control_port),
            password: settings.remote_password(),
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The scene collection to serve.
    scene_file: PathBuf,
    /// A show script to run with it (its own collection must be this one); GO comes from
    /// remote clients (CallVendorRequest, vendor `tally`) or Enter.
    #[arg(long, value_name = "SHOW")]
    show: Option<PathBuf>,
    #[command(flatten)]
    address: ControlAddress,
    #[command(flatten)]
    encoding: EncodingArgs,
    #[command(flatten)]
    monitoring: MonitoringArgs,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The show file (TOML with `collection` and `[[cues]]`).
    show_file: PathBuf,
    /// Record the whole show to this file (.mp4 or .mkv), beside what its cues record.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Stream the whole show to this URL (repeat for more), beside what its cues stream.
    #[arg(long = "to", value_name = "URL")]
    to: Vec<String>,
    /// Fire the cues that wait for GO or a time of day at once (a rehearsal).
    #[arg(long)]
    auto: bool,
    /// Render the show as fast as the machine allows, the same frames every run (needs --auto
    /// for cues that wait for GO or a time of day, and an `end` cue or --duration).
    #[arg(long)]
    fast: bool,
    /// Stop after this long even if no cue ends the show.
    #[arg(short, long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Start just before this cue (its name, or its number from 1), in the state the cues
    /// above it leave: scene on air, items, texts, volumes, recording and streams.
    #[arg(long, value_name = "CUE", conflicts_with = "from")]
    start_at: Option<String>,
    /// Start at this time on the show clock (HH:MM:SS), in the state the show has there.
    #[arg(long, value_name = "TIME", value_parser = parse_show_time)]
    from: Option<Duration>,
    #[command(flatten)]
    overwrite: OverwriteArg,
    #[command(flatten)]
    encoding: EncodingArgs,
    #[command(flatten)]
    monitoring: MonitoringArgs,
    #[command(flatten)]
    control: ControlArgs,
}

/// A time on the show clock: HH:MM:SS[.fff], MM:SS, or a duration such as 90s.
fn parse_show_time(text: &str) -> Result<Duration, String> {
    match tally::show::parse_clock(text) {
        Some(time) => Ok(time),
        None if text.contains(':') => Err(format!("`{text}` is not a time; try 00:02:30")),
        None => parse_duration(text),
    }
}

#[derive(clap::Args)]
struct OverwriteArg {
    /// Replace the output file if it exists (never one the collection reads).
    #[arg(short = 'y', long)]
    overwrite: bool,
}

#[derive(clap::Args)]
struct StreamArgs {
    scene_file: PathBuf,
    /// Where to stream: rtmp://host/app/KEY, rtmps://..., or srt://host:port?options. Repeat for
    /// several outputs; `PRIMARY|BACKUP` adds a backup ingest. `${NAME}` is read from the
    /// environment, so keys stay out of shell history.
    #[arg(long = "to", value_name = "URL")]
    to: Vec<String>,
    /// A TOML file of destinations (`[[destination]]` with `url` and optional `backup`).
    #[arg(long, value_name = "FILE")]
    destinations: Option<PathBuf>,
    /// Write HLS (CMAF segments, media and master playlists) into this folder.
    #[arg(long, value_name = "DIR")]
    hls_dir: Option<PathBuf>,
    /// Serve the HLS over HTTP at http://ADDRESS/live/master.m3u8 (into a temporary folder
    /// unless --hls-dir is given). Loopback (127.0.0.1:8088) keeps it on this computer.
    #[arg(long, value_name = "ADDRESS")]
    hls_serve: Option<std::net::SocketAddr>,
    /// Push the HLS with HTTP PUT to this folder URL of an HLS ingest or origin
    /// (http(s)://host/path/KEY/; `${NAME}` is read from the environment, and the last
    /// segment is masked in everything Tally prints).
    #[arg(long, value_name = "URL")]
    hls_push: Option<String>,
    /// The HLS segment length; segments are cut on keyframes, so make it a multiple of
    /// --keyframe-interval.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    hls_segment: Duration,
    /// Segments the HLS media playlist lists; older ones are deleted.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1000))]
    hls_window: u32,
    /// Low-latency HLS: partial segments of --hls-part each, announced with preload hints,
    /// and blocking playlist reloads from --hls-serve, for 2-5 s from camera to screen.
    #[arg(long)]
    low_latency: bool,
    /// The partial segments' length with --low-latency (rounded to whole frames).
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    hls_part: Duration,
    /// Also record to this file (.mp4 or .mkv), from the same encode (or --record-profile's).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// An encode profile: NAME=KEY=VALUE,... with size (WIDTHxHEIGHT), bitrate, max-bitrate
    /// (kbps), rate-control (cbr, vbr, crf), crf, codec, encoder, preset; what it leaves out is
    /// this run's encoding. 1080p, 720p, 480p and 360p are there without defining them.
    #[arg(long = "profile", value_name = "NAME=SETTINGS")]
    profiles: Vec<String>,
    /// The profile the recording is encoded at, apart from the streams.
    #[arg(long, value_name = "NAME")]
    record_profile: Option<String>,
    /// The profile the --to streams are encoded at (a destinations file names its own).
    #[arg(long, value_name = "NAME")]
    stream_profile: Option<String>,
    /// HLS renditions, one profile each (for example 1080p,720p,480p): each is encoded apart,
    /// scaled on the GPU, with keyframes at the same instants, under one master playlist.
    #[arg(long, value_name = "PROFILES", value_delimiter = ',')]
    ladder: Vec<String>,
    #[command(flatten)]
    overwrite: OverwriteArg,
    /// How long to stay live; without it, until Ctrl-C.
    #[arg(short, long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Scene to put on air instead of the collection's current scene.
    #[arg(long)]
    scene: Option<String>,
    /// First wait before reconnecting; it doubles up to --reconnect-max-delay.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    reconnect_delay: Duration,
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    reconnect_max_delay: Duration,
    /// Failed attempts in a row before an output gives up (0: never).
    #[arg(long, default_value_t = 20)]
    max_retries: u32,
    /// Certificate authorities (PEM) to check RTMPS servers against, for private servers; public
    /// platforms are checked against the system's authorities.
    #[arg(long, value_name = "FILE")]
    tls_ca_file: Option<PathBuf>,
    /// On a congested link, lower the video bitrate to what the link carries (and recover it
    /// gradually) instead of only dropping frames. The recording shares the encoder, so it gets
    /// the lower bitrate too.
    #[arg(long)]
    adaptive_bitrate: bool,
    /// Queue duration above which frames are dropped (non-reference frames first).
    #[arg(long, value_parser = parse_duration, default_value = "700ms")]
    drop_threshold: Duration,
    #[command(flatten)]
    encoding: EncodingArgs,
    #[command(flatten)]
    monitoring: MonitoringArgs,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(clap::Args)]
struct EncodingArgs {
    /// The video codec; the default is the encoder's (x265: HEVC, svt-av1: AV1), else H.264.
    #[arg(long, value_enum)]
    codec: Option<CodecArg>,
    /// The encoder; the default is the codec's software encoder.
    #[arg(long, value_enum)]
    encoder: Option<EncoderArg>,
    /// Encoder preset: x264's names (ultrafast ... veryslow), which x265 shares and SVT-AV1
    /// and NVENC map to their nearest (SVT-AV1 also takes its number, 0-13).
    #[arg(long, default_value = "veryfast")]
    preset: String,
    /// x264 tune (film, animation, zerolatency, ...).
    #[arg(long)]
    tune: Option<String>,
    /// The codec's profile (H.264: baseline, main, high; HEVC: main); the default is H.264's
    /// high, HEVC's and AV1's main.
    #[arg(long)]
    profile: Option<String>,
    #[arg(long, value_enum, default_value_t = RateControlArg::Cbr)]
    rate_control: RateControlArg,
    /// Video bitrate in kbps (CBR and VBR).
    #[arg(long, default_value_t = 2500)]
    bitrate: u32,
    /// Ceiling for VBR in kbps; defaults to 1.5 times --bitrate.
    #[arg(long)]
    max_bitrate: Option<u32>,
    /// Quality for --rate-control crf (0-51, lower is better).
    #[arg(long, default_value_t = 23, value_parser = clap::value_parser!(u8).range(0..=51))]
    crf: u8,
    /// Seconds between keyframes.
    #[arg(long, default_value_t = 2.0)]
    keyframe_interval: f64,
    /// Video encoder threads. The default is one per CPU core: each extra x264 frame thread
    /// adds a frame of latency and a set of frame buffers, and the compositor needs CPU too.
    #[arg(long)]
    encoder_threads: Option<u32>,
    /// AAC bitrate in kbps.
    #[arg(long, default_value_t = 160)]
    audio_bitrate: u32,
    /// Do not draw a progress bar or per-second statistics.
    #[arg(long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct MonitoringArgs {
    /// Output device for audio monitoring (id or name from `tally devices`); the default output
    /// when not given. Used only by sources with `monitoring` set.
    #[arg(long, value_name = "DEVICE")]
    monitor_device: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum EncoderArg {
    /// NVENC when it opens, else the codec's software encoder.
    Auto,
    /// H.264, software.
    X264,
    /// HEVC, software.
    X265,
    /// AV1, software (SVT-AV1 through FFmpeg).
    #[value(name = "svt-av1")]
    SvtAv1,
    /// AV1, software (rav1e, the pure-Rust encoder): slower, for --fast renders.
    Rav1e,
    /// NVIDIA's hardware encoder, for the chosen codec.
    Nvenc,
}

#[derive(Clone, Copy, ValueEnum)]
enum CodecArg {
    H264,
    Hevc,
    Av1,
}

#[derive(Clone, Copy, ValueEnum)]
enum RateControlArg {
    Cbr,
    Vbr,
    Crf,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Duration::from_secs_f64(seconds),
        Ok(_) => return Err("a duration cannot be negative".into()),
        Err(_) => humantime::parse_duration(text).map_err(|error| {
            format!("`{text}` is not a duration ({error}); try 30s, 1m30s or 500ms")
        })?,
    };
    if duration.is_zero() {
        return Err("the duration must be longer than zero".into());
    }
    Ok(duration)
}

/// Log filter when `TALLY_LOG` is not set: warnings, but not the PulseAudio client's, which
/// logs every closed connection as an error (Tally reports device trouble itself), nor the
/// errors of rfd's portal attempt on desktops without a file-chooser portal: rfd then warns
/// that it uses zenity, which says all the user needs.
const QUIET_LOG: &str = "warn,pulseaudio=off,rfd::backend::xdg_desktop_portal::portal=off";

fn main() -> std::process::ExitCode {
    quiet_vulkan_device_select();
    quiet_svt_av1();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TALLY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(QUIET_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(message) = std::env::args_os()
        .nth(1)
        .and_then(|word| mistyped_command(&word))
    {
        eprintln!("error: {message}");
        return std::process::ExitCode::from(2);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        None => open_app(cli.collection, cli.record, cli.overwrite.overwrite),
        Some(Commands::Check { files }) => check(&files),
        Some(Commands::Record(args)) => record(&args).map(|()| true),
        Some(Commands::Stream(args)) => stream(&args).map(|()| true),
        Some(Commands::Run(args)) => run_show(&args).map(|()| true),
        Some(Commands::Serve(args)) => serve(&args).map(|()| true),
        Some(Commands::Snapshot {
            scene_file,
            output,
            frame,
            scene,
            width,
            overwrite,
        }) => snapshot(
            &scene_file,
            &output,
            frame,
            scene,
            width,
            overwrite.overwrite,
        )
        .map(|()| true),
        Some(Commands::Devices) => {
            devices();
            Ok(true)
        }
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            match error.downcast_ref::<scene::LoadError>() {
                // Each of its lines already says "error:", with the file, line and field.
                Some(load_error) => eprintln!("{load_error}"),
                None => eprintln!("error: {error:#}"),
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Mesa's Vulkan device-select layer looks for a Wayland compositor to find the GPU the
/// desktop uses, and with no `XDG_RUNTIME_DIR` (servers, containers, cron) libwayland prints
/// "error: XDG_RUNTIME_DIR is invalid or not set" on every run. Without that variable no
/// compositor can be reached anyway, so the layer is turned off; wgpu still chooses the GPU.
fn quiet_vulkan_device_select() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none()
        && std::env::var_os("NODEVICE_SELECT").is_none()
    {
        // Still single-threaded here: nothing else reads the environment yet.
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// SVT-AV1 prints its whole configuration, and warnings about its low-delay mode, on every
/// encoder it opens; errors are what the operator needs (`SVT_LOG=3` shows the rest).
fn quiet_svt_av1() {
    if std::env::var_os("SVT_LOG").is_none() {
        // Still single-threaded here: nothing else reads the environment yet.
        std::env::set_var("SVT_LOG", "1");
    }
}

/// What to say when the first word looks like a misspelt command (`tally recrod`) rather than
/// a collection to open: clap would take it for a file name and say something confusing.
fn mistyped_command(word: &std::ffi::OsStr) -> Option<String> {
    use clap::CommandFactory;
    let word = word.to_str()?;
    if word.starts_with('-') || Path::new(word).exists() {
        return None;
    }
    let cli = Cli::command();
    let commands: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
    if commands.contains(&word) || word == "help" {
        return None;
    }
    let closest = commands
        .iter()
        .map(|&command| (strsim::damerau_levenshtein(word, command), command))
        .min()?;
    let looks_like_a_file = word.contains('.') || word.contains('/');
    if closest.0 <= 2 && !looks_like_a_file {
        return Some(format!(
            "`{word}` is not a command; did you mean `tally {}`? (commands: {})",
            closest.1,
            commands.join(", ")
        ));
    }
    Some(format!(
        "{word}: no such file or command; `tally` opens a scene collection file in the app, \
         and its commands are {}",
        commands.join(", ")
    ))
}

fn check(files: &[PathBuf]) -> Result<bool> {
    let mut all_good = true;
    for file in files {
        if tally::show::looks_like_show(file) {
            match tally::show::load_file_checked(file, &tally::sources::InputFiles) {
                Ok(show) => say_out(&format!(
                    "{}: ok ({} cues on {})",
                    file.display(),
                    show.cues.len(),
                    show.collection_file.display()
                )),
                Err(error) => {
                    all_good = false;
                    eprintln!("{error}");
                }
            }
            continue;
        }
        match scene::load_file_checked(file, &tally::sources::InputFiles) {
            Ok(collection) => {
                say_out(&format!(
                    "{}: ok ({} sources, {} scenes, {}x{} at {} fps)",
                    file.display(),
                    collection.sources.len(),
                    collection.scenes.len(),
                    collection.canvas.width,
                    collection.canvas.height,
                    collection.canvas.fps
                ));
                warn_of_memory(file, &collection);
            }
            Err(error) => {
                all_good = false;
                eprintln!("{error}");
            }
        }
    }
    Ok(all_good)
}

/// Above this, `check`, `record` and `stream` say how much memory the sources will take.
const MEMORY_WORTH_SAYING: u64 = 1 << 30;

/// Says what a collection's sources will cost in memory when that is a lot (hundreds of
/// media files decoding at once), before the show rather than when the machine runs out.
fn warn_of_memory(file: &Path, collection: &Collection) {
    let estimate = tally::sources::memory_estimate(collection);
    if estimate.bytes >= MEMORY_WORTH_SAYING {
        say_err(&format!(
            "warning: {}: its sources need about {:.1} GB of memory while the show runs \
             ({} media files decode at once, on air or not); remove the ones no scene uses",
            file.display(),
            estimate.bytes as f64 / f64::from(1u32 << 30),
            estimate.media_files
        ));
    }
}

fn load(path: &Path, scene: Option<String>) -> Result<Collection> {
    let mut collection = scene::load_file_checked(path, &tally::sources::InputFiles)?;
    warn_of_memory(path, &collection);
    if let Some(scene) = scene {
        if collection.scene(&scene).is_none() {
            let names: Vec<&str> = collection.scenes.iter().map(|s| s.name.as_str()).collect();
            bail!(
                "{} has no scene named `{scene}`; scenes are: {}",
                path.display(),
                names.join(", ")
            );
        }
        collection.current_scene = scene;
    }
    Ok(collection)
}

fn video_settings(args: &EncodingArgs) -> Result<VideoSettings> {
    let encoder = args.encoder.map(|encoder| match encoder {
        EncoderArg::Auto => VideoEncoderKind::Auto,
        EncoderArg::X264 => VideoEncoderKind::X264,
        EncoderArg::X265 => VideoEncoderKind::X265,
        EncoderArg::SvtAv1 => VideoEncoderKind::SvtAv1,
        EncoderArg::Rav1e => VideoEncoderKind::Rav1e,
        EncoderArg::Nvenc => VideoEncoderKind::Nvenc,
    });
    let codec = match args.codec {
        Some(CodecArg::H264) => VideoCodec::H264,
        Some(CodecArg::Hevc) => VideoCodec::Hevc,
        Some(CodecArg::Av1) => VideoCodec::Av1,
        None => encoder
            .and_then(VideoEncoderKind::only_codec)
            .unwrap_or_default(),
    };
    let encoder = encoder.unwrap_or(codec.software_encoder());
    if encoder.encoder_name(codec).is_none() {
        bail!(tally::encode::EncodeError::WrongCodec { encoder, codec });
    }
    Ok(VideoSettings {
        codec,
        encoder,
        preset: args.preset.clone(),
        tune: args.tune.clone(),
        profile: args.profile.clone(),
        rate_control: match args.rate_control {
            RateControlArg::Cbr => RateControl::Cbr { kbps: args.bitrate },
            RateControlArg::Vbr => RateControl::Vbr {
                kbps: args.bitrate,
                max_kbps: args.max_bitrate.unwrap_or(args.bitrate * 3 / 2),
            },
            RateControlArg::Crf => RateControl::Crf { crf: args.crf },
        },
        keyframe_interval_secs: args.keyframe_interval,
        threads: Some(args.encoder_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, |cores| cores.get() as u32)
        })),
    })
}

fn record(args: &RecordArgs) -> Result<()> {
    let recording = recording_config(&args.output)?;
    let collection = load(&args.scene_file, args.scene.clone())?;
    check_output(
        &args.output,
        &args.scene_file,
        Some(&collection),
        args.overwrite.overwrite,
    )?;
    let frame_limit = args
        .duration
        .map(|d| collection.canvas.fps.frames_in(d).max(1));
    let config = EngineConfig {
        pacing: if args.fast {
            Pacing::Deterministic
        } else {
            Pacing::RealTime
        },
        frame_limit,
        video: video_settings(&args.encoding)?,
        audio: AudioSettings {
            bitrate_kbps: args.encoding.audio_bitrate,
        },
        recording: Some(recording),
        streams: Vec::new(),
        stream_settings: StreamSettings::default(),
        monitor_device: args.monitoring.monitor_device.clone(),
        gpu: None,
        on_frame: None,
        faults: Default::default(),
        driver: None,
    };
    run_engine(Run {
        recording: Some(&args.output),
        file: Some(args.scene_file.clone()),
        ..Run::new(collection, config, args.encoding.quiet)
    })
}

/// Refuses an output path that would destroy what the user has: one of the collection's own
/// files (or the collection itself) always, any other existing file unless `overwrite`.
fn check_output(
    output: &Path,
    scene_file: &Path,
    collection: Option<&Collection>,
    overwrite: bool,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(existing) = std::fs::metadata(output) else {
        return Ok(());
    };
    if !existing.is_file() {
        bail!(
            "{} is not a regular file (a folder or a device); name a file to write",
            output.display()
        );
    }
    let same_file = |input: &Path| {
        std::fs::metadata(input)
            .is_ok_and(|m| m.dev() == existing.dev() && m.ino() == existing.ino())
    };
    let inputs = std::iter::once(scene_file.to_path_buf())
        .chain(collection.map(Collection::input_files).unwrap_or_default());
    for input in inputs {
        if same_file(&input) {
            bail!(
                "{} is one of the show's own inputs ({}); writing to it would destroy it: choose \
                 another output file",
                output.display(),
                input.display()
            );
        }
    }
    if !overwrite {
        bail!(
            "{} already exists; choose another name, or pass --overwrite (-y) to replace it",
            output.display()
        );
    }
    Ok(())
}

fn recording_config(path: &Path) -> Result<RecordingConfig> {
    let format = RecordingFormat::from_path(path)
        .with_context(|| format!("{}: the recording must end in .mp4 or .mkv", path.display()))?;
    Ok(RecordingConfig {
        path: path.to_path_buf(),
        format,
        profile: None,
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationsFile {
    /// Profiles, written as --profile takes them.
    #[serde(default)]
    profile: Vec<String>,
    destination: Vec<DestinationEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationEntry {
    url: String,
    backup: Option<String>,
    /// The profile this destination is encoded at.
    profile: Option<String>,
}

/// Where `tally stream` sends the show, each with the name of the profile it is encoded at,
/// and the profiles the destinations file defines.
struct StreamTargets {
    destinations: Vec<(Destination, Option<String>)>,
    file_profiles: Vec<String>,
}

fn destinations(args: &StreamArgs) -> Result<StreamTargets> {
    let mut written: Vec<(String, Option<String>)> = args
        .to
        .iter()
        .map(|url| (url.clone(), args.stream_profile.clone()))
        .collect();
    let mut profiles = Vec::new();
    if let Some(file) = &args.destinations {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let parsed: DestinationsFile = toml::from_str(&text)
            .map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
        profiles = parsed.profile;
        for entry in parsed.destination {
            let url = match entry.backup {
                Some(backup) => format!("{}|{backup}", entry.url),
                None => entry.url,
            };
            written.push((url, entry.profile));
        }
    }
    if written.is_empty()
        && args.hls_dir.is_none()
        && args.hls_serve.is_none()
        && args.hls_push.is_none()
    {
        bail!("nowhere to stream: give --to URL (or --destinations FILE, --hls-dir, --hls-serve)");
    }
    let destinations = written
        .iter()
        .enumerate()
        .map(|(index, (text, profile))| {
            parse_destination(text)
                .with_context(|| format!("destination {}", index + 1))
                .map(|destination| (destination, profile.clone()))
        })
        .collect::<Result<_>>()?;
    Ok(StreamTargets {
        destinations,
        file_profiles: profiles,
    })
}

/// The profiles a run defines (`--profile` and the destinations file's), and the ladder's
/// names, which need no definition.
struct Profiles {
    defined: Vec<EncodeProfile>,
    base: VideoSettings,
    canvas: (u32, u32),
}

impl Profiles {
    fn new(written: &[String], base: &VideoSettings, canvas: (u32, u32)) -> Result<Self> {
        let defined = written
            .iter()
            .map(|text| EncodeProfile::parse(text, base, canvas))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            defined,
            base: base.clone(),
            canvas,
        })
    }

    fn find(&self, name: &str) -> Result<EncodeProfile> {
        if let Some(profile) = self.defined.iter().find(|profile| profile.name == name) {
            return Ok(profile.clone());
        }
        EncodeProfile::parse(name, &self.base, self.canvas).map_err(|_| {
            let defined: Vec<&str> = self.defined.iter().map(|p| p.name.as_str()).collect();
            anyhow::anyhow!(
                "no profile `{name}`: define it with --profile {name}=SETTINGS, or use one of \
                 1080p, 720p, 480p, 360p{}",
                if defined.is_empty() {
                    String::new()
                } else {
                    format!(", {}", defined.join(", "))
                }
            )
        })
    }
}

/// How a stream output, or the HLS push, retries after a failure.
fn reconnect_settings(args: &StreamArgs) -> ReconnectSettings {
    ReconnectSettings {
        first_delay: args.reconnect_delay,
        max_delay: args.reconnect_max_delay,
        max_retries: (args.max_retries > 0).then_some(args.max_retries),
        ..ReconnectSettings::default()
    }
}

fn stream(args: &StreamArgs) -> Result<()> {
    let StreamTargets {
        destinations: named_streams,
        file_profiles,
    } = destinations(args)?;
    if !args.ladder.is_empty()
        && args.hls_dir.is_none()
        && args.hls_serve.is_none()
        && args.hls_push.is_none()
    {
        bail!("--ladder is for HLS: give --hls-dir, --hls-serve or --hls-push too");
    }
    let video = video_settings(&args.encoding)?;
    let mut recording = args.record.as_deref().map(recording_config).transpose()?;
    if let Some(ca_file) = &args.tls_ca_file {
        check_ca_file(ca_file)?;
    }
    let collection = load(&args.scene_file, args.scene.clone())?;
    let canvas = (collection.canvas.width, collection.canvas.height);
    let written_profiles: Vec<String> = args
        .profiles
        .iter()
        .chain(&file_profiles)
        .cloned()
        .collect();
    let profiles = Profiles::new(&written_profiles, &video, canvas)?;
    let mut streams = Vec::new();
    for (mut destination, profile) in named_streams {
        destination.profile = profile.map(|name| profiles.find(&name)).transpose()?;
        streams.push(destination);
    }
    if let (Some(recording), Some(name)) = (&mut recording, &args.record_profile) {
        recording.profile = Some(profiles.find(name)?);
    }
    let ladder = args
        .ladder
        .iter()
        .map(|name| profiles.find(name))
        .collect::<Result<Vec<_>>>()?;
    let publishes_hls =
        args.hls_dir.is_some() || args.hls_serve.is_some() || args.hls_push.is_some();
    if args.low_latency && !publishes_hls {
        bail!("--low-latency is for HLS: give --hls-dir, --hls-serve or --hls-push");
    }
    let push = args
        .hls_push
        .as_deref()
        .map(|url| -> Result<HlsPush> {
            Ok(HlsPush {
                endpoint: Endpoint::hls_push(url).context("--hls-push")?,
                settings: UploadSettings {
                    io_timeout: StreamSettings::default().io_timeout,
                    tls_ca_file: args.tls_ca_file.clone(),
                    retry: reconnect_settings(args),
                },
            })
        })
        .transpose()?;
    let hls_layout = HlsSettings {
        segment: args.hls_segment,
        window: args.hls_window,
        part: args.low_latency.then_some(args.hls_part),
        first_segment: 0,
    };
    let hls = if publishes_hls {
        let publication = HlsPublication::start(&HlsPlan {
            folder: args.hls_dir.clone(),
            replace: args.overwrite.overwrite,
            serve: args.hls_serve,
            push,
            ladder,
            profile: None,
            layout: hls_layout,
        })
        .map_err(|error| match error {
            HlsPublicationError::HoldsAStream { folder, playlist } => anyhow::anyhow!(
                "{} already holds an HLS stream ({}); --overwrite replaces it",
                folder.display(),
                playlist.display()
            ),
            other => other.into(),
        })?;
        streams.extend(publication.destinations().iter().cloned());
        if let Some(url) = publication.master_url() {
            eprintln!("HLS: {url}");
        }
        if let Some(target) = publication.push_target() {
            eprintln!("HLS: pushing to {target}");
        }
        Some(publication)
    } else {
        None
    };
    if let Some(record) = &args.record {
        check_output(
            record,
            &args.scene_file,
            Some(&collection),
            args.overwrite.overwrite,
        )?;
    }
    let frame_limit = args
        .duration
        .map(|d| collection.canvas.fps.frames_in(d).max(1));
    let config = EngineConfig {
        pacing: Pacing::RealTime,
        frame_limit,
        video,
        audio: AudioSettings {
            bitrate_kbps: args.encoding.audio_bitrate,
        },
        recording,
        streams,
        monitor_device: args.monitoring.monitor_device.clone(),
        gpu: None,
        on_frame: None,
        faults: Default::default(),
        driver: None,
        stream_settings: StreamSettings {
            queue: QueueSettings {
                drop_threshold: args.drop_threshold,
            },
            reconnect: reconnect_settings(args),
            tls_ca_file: args.tls_ca_file.clone(),
            adaptive_bitrate: args.adaptive_bitrate,
            hls: hls_layout,
            ..StreamSettings::default()
        },
    };
    let (settings, _) = load_settings();
    let ran = run_engine(Run {
        recording: args.record.as_deref(),
        remote: args.control.remote(&settings),
        settings,
        file: Some(args.scene_file.clone()),
        ..Run::new(collection, config, args.encoding.quiet)
    });
    if let Some(hls) = hls {
        let target = hls.push_target().map(String::from);
        if let (Some(pushed), Some(target)) = (hls.stop()?, target) {
            eprintln!(
                "  HLS push to {target}: {} files sent ({:.2} MB), {} deleted, {} failed attempts",
                pushed.files_sent,
                pushed.bytes_sent as f64 / 1e6,
                pushed.files_deleted,
                pushed.failures
            );
        }
    }
    ran
}

fn serve(args: &ServeArgs) -> Result<()> {
    let show = args
        .show
        .as_deref()
        .map(|file| tally::show::load_file_checked(file, &tally::sources::InputFiles))
        .transpose()?;
    let collection = match &show {
        Some(show) => {
            let same = |path: &Path| path.canonicalize().ok();
            if same(&show.collection_file) != same(&args.scene_file) {
                bail!(
                    "{}: the show runs {}, not {}",
                    args.show.as_deref().unwrap_or(Path::new("")).display(),
                    show.collection_file.display(),
                    args.scene_file.display()
                );
            }
            show.collection.clone()
        }
        None => load(&args.scene_file, None)?,
    };
    warn_of_memory(&args.scene_file, &collection);
    let config = EngineConfig {
        video: video_settings(&args.encoding)?,
        audio: AudioSettings {
            bitrate_kbps: args.encoding.audio_bitrate,
        },
        monitor_device: args.monitoring.monitor_device.clone(),
        ..EngineConfig::default()
    };
    let runner = show
        .as_ref()
        .map(|show| tally::show::CueRunner::new(show, false, tally::show::local_time_of_day));
    let go = match &show {
        Some(show) if show.waits_for_the_world() => {
            say_out("cues that wait for GO fire on Enter, or on a remote GO");
            Some(go_from_stdin()?)
        }
        _ => None,
    };
    let (settings, _) = load_settings();
    run_engine(Run {
        file: Some(args.scene_file.clone()),
        show: show.as_ref().zip(runner),
        go,
        remote: Some(args.address.remote(&settings)),
        settings,
        ..Run::new(collection, config, args.encoding.quiet)
    })
}

fn run_show(args: &RunArgs) -> Result<()> {
    let show = tally::show::load_file_checked(&args.show_file, &tally::sources::InputFiles)?;
    if args.fast && !args.auto && show.waits_for_the_world() {
        bail!(
            "{}: cues wait for GO or a time of day, which --fast cannot: add --auto to fire them \
             at once",
            args.show_file.display()
        );
    }
    if args.fast && !show.ends_by_itself() && args.duration.is_none() {
        bail!(
            "{}: no cue ends the show (`{{ do = \"end\" }}`), so --fast would never finish: add \
             one, or give --duration",
            args.show_file.display()
        );
    }
    warn_of_memory(&show.collection_file, &show.collection);
    // Neither the whole-show recording nor the cues' own may replace what the show reads.
    let inputs = |output: &Path| {
        check_output(output, &args.show_file, None, args.overwrite.overwrite)?;
        check_output(
            output,
            &show.collection_file,
            Some(&show.collection),
            args.overwrite.overwrite,
        )
    };
    let recording = args.record.as_deref().map(recording_config).transpose()?;
    let cue_recordings = show.recording_files();
    if let (Some(record), Some(first)) = (&args.record, cue_recordings.first()) {
        bail!(
            "{}: its cues record ({}), and Tally records one file at a time: drop --record {}, \
             or let the cues do the recording",
            args.show_file.display(),
            first.display(),
            record.display()
        );
    }
    for output in args.record.iter().chain(&cue_recordings) {
        inputs(output)?;
    }
    let streams = args
        .to
        .iter()
        .enumerate()
        .map(|(index, text)| {
            parse_destination(text).with_context(|| format!("destination {}", index + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut collection = show.collection.clone();
    let mut runner = tally::show::CueRunner::new(&show, args.auto, tally::show::local_time_of_day);
    let start = match (&args.start_at, args.from) {
        (Some(cue), _) => Some(tally::show::StartPoint::Cue(show.find_cue(cue)?)),
        (None, Some(time)) => Some(tally::show::StartPoint::Time(time)),
        (None, None) => None,
    };
    if let Some(start) = start {
        let state = runner.start_at(start)?;
        say_out(&format!(
            "starting at {:.3} s on the show clock with `{}` on program{}",
            state.at.as_secs_f64(),
            state.collection.current_scene,
            state
                .recording
                .as_ref()
                .map_or(String::new(), |path| format!(
                    "; the cues' recording goes on in {}",
                    tally::show::resumed_path(path).display()
                ))
        ));
        collection = state.collection;
    }
    let config = EngineConfig {
        pacing: if args.fast {
            Pacing::Deterministic
        } else {
            Pacing::RealTime
        },
        frame_limit: args
            .duration
            .map(|d| collection.canvas.fps.frames_in(d).max(1)),
        video: video_settings(&args.encoding)?,
        audio: AudioSettings {
            bitrate_kbps: args.encoding.audio_bitrate,
        },
        recording,
        streams,
        stream_settings: StreamSettings::default(),
        monitor_device: args.monitoring.monitor_device.clone(),
        gpu: None,
        on_frame: None,
        faults: Default::default(),
        driver: None,
    };
    let go = if args.auto || !show.waits_for_the_world() {
        None
    } else {
        say_out("cues that wait for GO fire on Enter");
        Some(go_from_stdin()?)
    };
    let (settings, _) = load_settings();
    run_engine(Run {
        file: Some(show.collection_file.clone()),
        show: Some((&show, runner)),
        recording: args.record.as_deref(),
        go,
        remote: args.control.remote(&settings),
        settings,
        ..Run::new(collection, config, args.encoding.quiet)
    })
}

/// A GO each time Enter is pressed in the terminal (a line on standard input).
fn go_from_stdin() -> Result<crossbeam_channel::Receiver<()>> {
    let (sender, receiver) = crossbeam_channel::bounded(64);
    std::thread::Builder::new()
        .name("go-from-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lines() {
                if line.is_err() || sender.send(()).is_err() {
                    break;
                }
            }
        })
        .context("cannot read GO from the terminal")?;
    Ok(receiver)
}

/// Checks that `--tls-ca-file` names a readable file of PEM certificates, before going live:
/// otherwise every RTMPS connection would fail later with a TLS error that does not say why.
fn check_ca_file(path: &Path) -> Result<()> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("--tls-ca-file {}: cannot read it", path.display()))?;
    if !metadata.is_file() {
        bail!(
            "--tls-ca-file {}: not a regular file; give a PEM file of certificate authorities",
            path.display()
        );
    }
    let mut head = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path)
                .with_context(|| format!("--tls-ca-file {}: cannot read it", path.display()))?,
            1 << 20,
        ),
        &mut head,
    )
    .with_context(|| format!("--tls-ca-file {}: cannot read it", path.display()))?;
    if !String::from_utf8_lossy(&head).contains("-----BEGIN CERTIFICATE-----") {
        bail!(
            "--tls-ca-file {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(())
}

/// Prints a line on standard output. The terminal may be gone (SIGHUP after it closed), and
/// the run must still finish its files, so a failed write is given up quietly.
fn say_out(line: &str) {
    use std::io::Write;
    if writeln!(std::io::stdout(), "{line}").is_err() {
        tracing::debug!("standard output is closed: {line}");
    }
}

/// As [`say_out`], on standard error.
fn say_err(line: &str) {
    use std::io::Write;
    if writeln!(std::io::stderr(), "{line}").is_err() {
        tracing::debug!("standard error is closed: {line}");
    }
}

/// Prints the engine's events waiting to be read: warnings on standard error, the rest on
/// standard output (through the progress bar when it is drawn).
/// Prints `line` above the progress bar, or plainly when there is no bar: indicatif drops
/// println when it draws nothing (no terminal).
fn say_beside(progress: &ProgressBar, line: String) {
    if progress.is_hidden() {
        say_out(&line);
    } else {
        progress.println(line);
    }
}

fn say_events(events: &Subscription, progress: &ProgressBar) {
    let say = |line: String| say_beside(progress, line);
    while let Some(received) = events.try_next() {
        let event = match received {
            Received::Event(event) => event,
            Received::Overrun => {
                say_err("warning: the terminal fell too far behind the show's events; some were not shown");
                return;
            }
        };
        match event {
            // Warnings go to stderr, where scripts look for trouble.
            Event::Warning(message) if progress.is_hidden() => {
                say_err(&format!("warning: {message}"));
            }
            Event::Warning(message) => progress.println(format!("warning: {message}")),
            Event::SceneChanged { scene } => say(format!("on air: {scene}")),
            Event::MediaEnded { source } => say(format!("{source}: played to its end")),
            Event::AudioLevels(_)
            | Event::PreviewChanged { .. }
            | Event::Edited(_)
            | Event::TransitionStarted { .. }
            | Event::TransitionEnded { .. }
            | Event::ScenesChanged { .. } => {}
            Event::RecordingStarted { path } => say(format!("recording to {}", path.display())),
            Event::RecordingStopped { path, error } => match error {
                Some(error) => say(format!("recording {} failed: {error}", path.display())),
                None => say(format!("recording {} complete", path.display())),
            },
            Event::StreamingStopped { error } => match error {
                Some(error) => say(format!("streaming failed: {error}")),
                None => say("streaming stopped".into()),
            },
            Event::CueFired { cue, name, frame } => {
                say(format!("cue {} `{name}` fired at frame {frame}", cue + 1));
            }
            Event::Output(notice) => say(format!(
                "{}: {}{}",
                notice.output,
                notice.state,
                notice.detail.map(|d| format!(" ({d})")).unwrap_or_default()
            )),
        }
    }
}

/// What [`run_engine`] runs, and how it is watched and driven.
struct Run<'a> {
    collection: Collection,
    /// The collection's file (remote control opens its siblings and saves it).
    file: Option<PathBuf>,
    config: EngineConfig,
    show: Option<(&'a tally::show::Show, tally::show::CueRunner)>,
    quiet: bool,
    /// The whole run's recording, for the summary.
    recording: Option<&'a Path>,
    /// A GO for each line typed in the terminal.
    go: Option<crossbeam_channel::Receiver<()>>,
    /// Remote control to serve while it runs.
    remote: Option<RemoteConfig>,
    /// The settings file's settings, for what remote clients start (recordings, streams).
    settings: Settings,
}

impl<'a> Run<'a> {
    fn new(collection: Collection, config: EngineConfig, quiet: bool) -> Self {
        Self {
            collection,
            file: None,
            config,
            show: None,
            quiet,
            recording: None,
            go: None,
            remote: None,
            settings: Settings::default(),
        }
    }
}

/// The settings file's settings; one that cannot be read is a warning, and the defaults serve.
fn load_settings() -> (Settings, PathBuf) {
    let path = tally::control::settings_path();
    let (settings, problem) = Settings::load(&path);
    if let Some(problem) = problem {
        say_err(&format!("warning: {problem}"));
    }
    (settings, path)
}

/// Runs the engine until it ends or Ctrl-C, showing progress, events and per-output figures.
fn run_engine(run: Run<'_>) -> Result<()> {
    let Run {
        collection,
        file,
        config,
        show,
        quiet,
        recording,
        go,
        remote,
        settings,
    } = run;
    let fps = collection.canvas.fps;
    let frame_limit = config.frame_limit;
    let streaming = !config.streams.is_empty();
    let settings_path = remote.is_some().then(tally::control::settings_path);
    let mut controller =
        Controller::new(collection, file, config).with_settings(settings, settings_path);
    if let Some((show, runner)) = show {
        controller = controller.with_show(show, runner);
    }
    let events = controller.subscribe();
    let remote_events = remote.as_ref().map(|_| controller.subscribe());
    controller.start().context("cannot start")?;
    // Clients connect to a running show: their first requests find an engine.
    let mut server = match remote.zip(remote_events) {
        Some((remote, remote_events)) => {
            let server = RemoteServer::start(remote, remote_events)?;
            say_out(&format!(
                "remote control (obs-websocket v5) on ws://{}",
                server.address()
            ));
            Some(server)
        }
        None => None,
    };

    let (interrupt_sender, interrupted) = crossbeam_channel::bounded(4);
    tally::signals::on_stop_signal(move |name| {
        // Full: a stop is already on its way, and one is all it takes.
        if let Err(crossbeam_channel::TrySendError::Disconnected(_)) =
            interrupt_sender.try_send(name)
        {
            tracing::debug!("{name} after the run ended");
        }
    })
    .context("cannot listen for Ctrl-C and SIGTERM")?;
    let mut stopping = false;
    let progress = if quiet {
        ProgressBar::hidden()
    } else if let Some(limit) = frame_limit {
        ProgressBar::new(limit).with_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} frames  {elapsed} elapsed, {eta} left  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    } else {
        ProgressBar::new_spinner().with_message("running; Ctrl-C stops")
    };
    let mut last_report = std::time::Instant::now();
    while !controller.is_finished() {
        let say = |line: String| say_beside(&progress, line);
        for () in go.iter().flat_map(|go| go.try_iter()) {
            if let Err(error) = controller.request(Request::Go) {
                say(format!("GO did not reach the show: {error}"));
            }
        }
        if let Ok(signal) = interrupted.try_recv() {
            if stopping {
                say(format!("{signal}: already stopping, finishing outputs..."));
            } else {
                say(format!("{signal}: stopping, finishing outputs..."));
                stopping = true;
                if let Err(error) = controller.request(Request::Stop) {
                    say(format!("the show did not take the stop: {error}"));
                }
            }
        }
        controller.pump();
        say_events(&events, &progress);
        let Some(stats) = controller.stats() else {
            break;
        };
        progress.set_position(stats.frames_rendered);
        let loudness = stats.audio_levels.as_ref().map_or(String::new(), |levels| {
            format!(
                "  audio {:.1} LUFS, peak {:.1} dBTP",
                levels.master.short_term_lufs.max(-99.0),
                levels.master.true_peak_dbfs.max(-99.0)
            )
        });
        progress.set_message(format!(
            "lagged {} skipped {}  {:.1} MB{loudness}",
            stats.frames_lagged,
            stats.frames_skipped,
            stats.bytes_written as f64 / 1e6
        ));
        if streaming && !quiet && last_report.elapsed() >= Duration::from_secs(1) {
            last_report = std::time::Instant::now();
            for output in &stats.outputs {
                say(output_line(output));
            }
            if let Some(kbps) = stats.adapted_bitrate_kbps {
                say(format!("  video encoder bitrate {kbps} kbps (adaptive)"));
            }
            for encode in &stats.encodes {
                if let Some(profile) = &encode.profile {
                    say(format!("  profile {profile}: {}", encode.describe()));
                }
            }
        }
        match &mut server {
            Some(server) => {
                server.answer_until(
                    &mut controller,
                    std::time::Instant::now() + Duration::from_millis(100),
                );
                if let Err(error) = server.check() {
                    say(format!("{error}"));
                }
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    if let Some(server) = server {
        server.stop();
    }
    let summary = controller.wait().context("failed")?;
    // What the last frames said (the cue that ended the show, a recording's end).
    say_events(&events, &progress);
    progress.finish_and_clear();
    let summary = summary.context("the show never started")?;
    print_summary(&summary, recording, fps.as_f64());
    // A stream that never got a byte through failed, whether it was still retrying at the end
    // or had given up: the exit code must not depend on which came first.
    let failed: Vec<String> = summary
        .stats
        .outputs
        .iter()
        .filter_map(|output| match &output.state {
            OutputState::Failed(_) => Some(output.name.clone()),
            _ if output.bytes_sent == 0 => Some(format!("{} (never connected)", output.name)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        bail!("{} output(s) failed: {}", failed.len(), failed.join(", "));
    }
    Ok(())
}

fn output_line(output: &OutputStats) -> String {
    format!(
        "  {} [{}] {:.0} kbps, {:.2} MB sent, {} dropped, {} reconnects, queue {:.2} s, \
         congestion {:.2}{}{}",
        output.name,
        output.state,
        output.bitrate_kbps,
        output.bytes_sent as f64 / 1e6,
        output.dropped_frames,
        output.reconnects,
        output.queue_duration.as_secs_f64(),
        output.congestion,
        if output.on_backup { ", on backup" } else { "" },
        match (output.latency_median, output.latency_p99) {
            (Some(median), Some(p99)) => format!(
                ", latency {:.0} ms median, {:.0} ms p99",
                median.as_secs_f64() * 1000.0,
                p99.as_secs_f64() * 1000.0
            ),
            _ => String::new(),
        }
    )
}

fn print_summary(summary: &Summary, recording: Option<&Path>, fps: f64) {
    let stats = &summary.stats;
    let media_seconds = stats.frames_rendered as f64 / fps;
    let wall = summary.wall_time.as_secs_f64().max(1e-9);
    match recording {
        Some(path) => {
            let size = std::fs::metadata(path)
                .map(|m| m.len())
                .unwrap_or(stats.bytes_written);
            say_out(&format!(
                "Recorded {media_seconds:.3} s to {} ({:.2} MB)",
                path.display(),
                size as f64 / 1e6
            ));
        }
        None => say_out(&format!("Ran {media_seconds:.3} s")),
    }
    say_out(&format!(
        "  frames: {} rendered, {} lagged, {} skipped, {} encoded",
        stats.frames_rendered, stats.frames_lagged, stats.frames_skipped, stats.frames_encoded
    ));
    say_out(&format!(
        "  speed: {:.1} fps ({:.2}x real time); render {:.2} ms/frame on {}; video encoder {}",
        stats.frames_rendered as f64 / wall,
        media_seconds / wall,
        stats.mean_render_time.as_secs_f64() * 1000.0,
        summary.gpu,
        summary.encoder
    ));
    for output in &stats.outputs {
        say_out(&output_line(output));
    }
}

fn snapshot(
    scene_file: &Path,
    output: &Path,
    frame: u64,
    scene: Option<String>,
    width: Option<u32>,
    overwrite: bool,
) -> Result<()> {
    let format = match output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("png") => image::ImageFormat::Png,
        Some("jpg" | "jpeg") => image::ImageFormat::Jpeg,
        _ => bail!("{}: a snapshot must end in .png or .jpg", output.display()),
    };
    let collection = load(scene_file, scene)?;
    check_output(output, scene_file, Some(&collection), overwrite)?;
    let canvas = &collection.canvas;
    let size = match width {
        Some(width) => {
            let height = u64::from(width) * u64::from(canvas.height) / u64::from(canvas.width);
            [width, (height as u32).max(1)]
        }
        None => [canvas.width, canvas.height],
    };
    let picture = tally::engine::render_snapshot_at_size(&collection, frame, size)
        .context("cannot render the snapshot")?;
    let rgba = image::RgbaImage::from_raw(picture.width, picture.height, picture.pixels)
        .context("the rendered picture has the wrong size")?;
    let written_to = |path: &Path| match format {
        // JPEG has no alpha: the canvas is opaque anyway.
        image::ImageFormat::Jpeg => image::DynamicImage::ImageRgba8(rgba.clone())
            .to_rgb8()
            .save_with_format(path, format),
        _ => rgba.save_with_format(path, format),
    };
    // Written beside the output and renamed over it, so a full disk leaves no half picture.
    let partial = output.with_extension(format!("{}.partial", format.extensions_str()[0]));
    if let Err(error) = written_to(&partial) {
        if let Err(cleanup) = std::fs::remove_file(&partial) {
            tracing::debug!("{}: {cleanup}", partial.display());
        }
        return Err(error).with_context(|| format!("cannot write {}", output.display()));
    }
    std::fs::rename(&partial, output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    say_out(&format!(
        "{}: frame {frame} of `{}`",
        output.display(),
        collection.current_scene
    ));
    Ok(())
}

/// The headless build (`--no-default-features`) has no app to open.
#[cfg(not(feature = "app"))]
fn open_app(
    _collection: Option<PathBuf>,
    _record: Option<PathBuf>,
    _overwrite: bool,
) -> Result<bool> {
    eprintln!(
        "error: this tally is the headless build, without the desktop app (it was built with \
         --no-default-features). Run a collection with `tally record`, `tally stream` or \
         `tally run`, or build with the default features for the app."
    );
    Ok(false)
}

#[cfg(feature = "app")]
fn open_app(collection: Option<PathBuf>, record: Option<PathBuf>, overwrite: bool) -> Result<bool> {
    if let Some(record) = &record {
        recording_config(record)?;
        let scene_file = collection
            .clone()
            .unwrap_or_else(tally::ui::demo_collection);
        // A collection that does not load is the app's to show; its file is still an input.
        if tally::show::looks_like_show(&scene_file) {
            check_output(record, &scene_file, None, overwrite)?;
            if let Ok(show) = tally::show::load_file(&scene_file) {
                check_output(
                    record,
                    &show.collection_file,
                    Some(&show.collection),
                    overwrite,
                )?;
            }
        } else {
            let loaded = scene::load_file(&scene_file).ok();
            check_output(record, &scene_file, loaded.as_ref(), overwrite)?;
        }
    }
    let has_display = std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty());
    if !has_display {
        eprintln!(
            "error: no display to open the app on (DISPLAY is not set). Run it in an X session, or \
             under Xvfb (`xvfb-run tally`); without a screen, `tally record` and `tally stream` run \
             a collection headless."
        );
        return Ok(false);
    }
    tally::ui::run(collection, record)?;
    Ok(true)
}

fn devices() {
    println!("Cameras:");
    use tally::sources::camera::CameraBackend;
    match tally::sources::camera::V4lBackend.list() {
        Ok(cameras) if cameras.is_empty() => println!(
            "  none found (no /dev/video* devices): plug one in, or check that this user is in the `video` group"
        ),
        Ok(cameras) => {
            for camera in cameras {
                println!("  {}  {}", camera.id, camera.name);
                if camera.modes.is_empty() {
                    println!("      (could not be opened to list its formats: busy, or not a capture node)");
                }
                for mode in camera.modes {
                    println!("      {mode}");
                }
            }
        }
        Err(error) => println!("  cannot list cameras: {error}"),
    }
    use tally::sources::audio_devices::Direction;
    match tally::sources::audio_devices::list() {
        Ok(devices) => {
            for (direction, heading) in [
                (
                    Direction::Input,
                    "Audio inputs (use the id as `device`; `desktop` is what the computer plays):",
                ),
                (Direction::Output, "Audio outputs (for --monitor-device):"),
            ] {
                println!("{heading}");
                let mut any = false;
                for device in devices.iter().filter(|d| d.direction == direction) {
                    any = true;
                    let mut notes = Vec::new();
                    if device.is_default {
                        notes.push("default");
                    }
                    if device.is_monitor {
                        notes.push("monitor of an output");
                    }
                    let notes = if notes.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", notes.join(", "))
                    };
                    println!(
                        "  {}  {} ({} ch, {} Hz){notes}",
                        device.id, device.name, device.channels, device.sample_rate
                    );
                }
                if !any {
                    println!("  none");
                }
            }
        }
        Err(error) => println!("Audio devices:\n  {error}"),
    }
    println!("GPU adapters:");
    let adapters = tally::render::Gpu::list_adapters();
    if adapters.is_empty() {
        println!("  none found; install Mesa's software Vulkan: sudo packaging/install-deps.sh");
    }
    for adapter in adapters {
        println!(
            "  {} ({:?}, {:?}, driver {})",
            adapter.name, adapter.backend, adapter.device_type, adapter.driver_info
        );
    }
    println!("Encoders:");
    for probe in tally::encode::probe_encoders() {
        match probe.usable {
            Ok(()) => println!("  {:<11} {}: usable", probe.name, probe.description),
            Err(reason) => println!(
                "  {:<11} {}: not usable: {reason}",
                probe.name, probe.description
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_accept_units_and_bare_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
