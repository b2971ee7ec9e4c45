//! Helpers shared by the integration tests: run the real `tally` binary and the system
//! ffprobe/ffmpeg, and fail with the install command when a tool is missing.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const INSTALL_HINT: &str = "run `sudo packaging/install-deps.sh` to install it";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `tally` binary with an environment that works headless on lavapipe.
pub fn tally() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    command.env("XDG_RUNTIME_DIR", runtime_dir());
    command
}

pub fn runtime_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tally-test-xdg-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    dir
}

pub fn tool(name: &str) -> Command {
    if which(name).is_none() {
        panic!("`{name}` is not installed; {INSTALL_HINT}");
    }
    Command::new(name)
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

pub fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    output
}

pub fn run_ok(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Polls `condition` until it holds, failing the test with `what` if it does not within
/// `timeout`: a test waits on a condition with a deadline, never on a fixed sleep.
pub fn wait_until(what: &str, timeout: std::time::Duration, condition: impl FnMut() -> bool) {
    assert!(poll_until(timeout, condition), "{what}");
}

/// Polls `condition` until it holds (true) or `timeout` passes (false), for a test that has
/// something to do when it does not hold in time.
pub fn poll_until(timeout: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while !condition() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        // Between two looks at the condition, not a wait for it.
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    true
}

/// What a finished command printed on standard error, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// What a finished command printed on standard output, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// `ffprobe -show_entries ENTRIES -of csv=p=0` for one stream, split into lines.
pub fn probe(file: &Path, stream: &str, entries: &str, count_frames: bool) -> Vec<String> {
    let mut command = tool("ffprobe");
    command.args([
        "-v",
        "error",
        "-select_streams",
        stream,
        "-show_entries",
        entries,
        "-of",
        "csv=p=0",
    ]);
    if count_frames {
        command.arg("-count_frames");
    }
    command.arg(file);
    run_ok(&mut command)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect()
}

/// A stream's start time and duration (seconds) as ffprobe reports them.
pub fn stream_times(file: &Path, stream: &str) -> (f64, f64) {
    let fields = probe(file, stream, "stream=start_time,duration", false);
    let values: Vec<f64> = fields[0].split(',').map(|v| v.parse().unwrap()).collect();
    (values[0], values[1])
}

/// Errors `ffmpeg -v error -i FILE -f null -` prints while decoding the whole file.
pub fn decode_errors(file: &Path) -> String {
    let output = run(tool("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"]));
    let mut errors = String::from_utf8_lossy(&output.stderr).to_string();
    if !output.status.success() {
        errors.push_str(&format!("\nffmpeg exited with {}", output.status));
    }
    errors
}

/// Decoded pictures of `file` as raw bytes in `pix_fmt`, one after another: `before_input`
/// goes before `-i` (a seek), `after_input` after it (frame count, filters).
pub fn raw_video(
    file: &Path,
    before_input: &[&str],
    after_input: &[&str],
    pix_fmt: &str,
) -> Vec<u8> {
    let output = tool("ffmpeg")
        .args(["-v", "error"])
        .args(before_input)
        .arg("-i")
        .arg(file)
        .args(after_input)
        .args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Reads the test pattern's frame counter (drawn 1:1 at the top left, as in
/// [`pattern_scene`]) from every frame of `file`.
pub fn frame_counters(file: &Path) -> Vec<Option<u64>> {
    const WIDTH: u32 = 256;
    const HEIGHT: u32 = 64;
    // passthrough: one picture per coded frame, never duplicated to fill a start offset.
    let crop = format!("crop={WIDTH}:{HEIGHT}:0:0");
    raw_video(
        file,
        &[],
        &["-fps_mode", "passthrough", "-vf", &crop],
        "rgba",
    )
    .chunks_exact((WIDTH * HEIGHT * 4) as usize)
    .map(|frame| tally::sources::read_counter(frame, WIDTH, 360))
    .collect()
}

/// Writes a scene collection that may refer to the repo's assets as `ASSETS/...`.
pub fn write_scene(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let assets = repo_root().join("assets");
    let path = dir.join(name);
    std::fs::write(&path, toml.replace("ASSETS", &assets.display().to_string()))
        .expect("write scene");
    path
}

/// A 640x360 canvas: the test pattern drawn 1:1 (so its frame counter can be read back) and
/// the bundled clip, whose sound makes the audio track.
pub fn pattern_scene(dir: &Path, fps: &str) -> PathBuf {
    write_scene(
        dir,
        "pattern.toml",
        &format!(
            r#"
[canvas]
width = 640
height = 360
fps = {fps}

[[sources]]
id = "bars"
kind = "test_pattern"

[[sources]]
id = "clip"
kind = "media"
path = "ASSETS/clip.mp4"

[[scenes]]
name = "Pattern"

[[scenes.items]]
source = "bars"

[[scenes.items]]
source = "clip"
position = [400, 230]
scale = [0.3, 0.3]
"#
        ),
    )
}

/// An HTTP GET on loopback: the status code and the body, or `None` while nothing answers.
pub fn http_get(address: std::net::SocketAddr, path: &str) -> Option<(u16, Vec<u8>)> {
    let mut connection =
        std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(2)).ok()?;
    connection
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    std::io::Write::write_fmt(
        &mut connection,
        format_args!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"),
    )
    .ok()?;
    let mut response = Vec::new();
    std::io::Read::read_to_end(&mut connection, &mut response).ok()?;
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&response[..head_end]).to_string();
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, response[head_end + 4..].to_vec()))
}

/// A free TCP/UDP port on loopback (bound, then released for the server to take).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A real nginx with the RTMP module, on loopback, recording every published stream to FLV.
pub struct RtmpServer {
    pub port: u16,
    /// With TLS: the port where nginx terminates TLS in front of RTMP (RTMPS).
    pub tls_port: Option<u16>,
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl RtmpServer {
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Also serves RTMPS, with a self-signed certificate for 127.0.0.1 ([`Self::ca_file`]).
    pub fn start_with_tls() -> Self {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let port = free_port();
        let tls_port = tls.then(free_port);
        if tls {
            let root = dir.path();
            run_ok(
                tool("openssl")
                    .args([
                        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    ])
                    .args([
                        "-subj",
                        "/CN=127.0.0.1",
                        "-addext",
                        "subjectAltName=IP:127.0.0.1",
                    ])
                    .arg("-keyout")
                    .arg(root.join("key.pem"))
                    .arg("-out")
                    .arg(root.join("cert.pem")),
            );
        }
        let mut server = Self {
            port,
            tls_port,
            dir,
            child: None,
        };
        server.launch();
        server
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn rtmps_url(&self, stream: &str) -> String {
        format!(
            "rtmps://127.0.0.1:{}/live/{stream}",
            self.tls_port.expect("started with TLS")
        )
    }

    fn launch(&mut self) {
        let module = Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so");
        assert!(
            module.exists(),
            "nginx's RTMP module is missing; {INSTALL_HINT}"
        );
        let root = self.dir.path();
        let records = root.join("records");
        std::fs::create_dir_all(&records).expect("records folder");
        let tls = match self.tls_port {
            Some(tls_port) => {
                let stream_module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
                assert!(
                    stream_module.exists(),
                    "nginx's stream module is missing; {INSTALL_HINT}"
                );
                format!(
                    "stream {{ server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {root}/cert.pem; \
                     ssl_certificate_key {root}/key.pem; proxy_pass 127.0.0.1:{port}; }} }}\n",
                    root = root.display(),
                    port = self.port,
                )
            }
            None => String::new(),
        };
        let stream_module = if self.tls_port.is_some() {
            "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
        } else {
            ""
        };
        let config = format!(
            r#"{stream_module}load_module {module};
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            record all;
            record_path {records};
            record_unique on;
        }}
    }}
}}
{tls}"#,
            module = module.display(),
            root = root.display(),
            port = self.port,
            records = records.display(),
        );
        let config_path = root.join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");
        let child = tool("nginx")
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(&config_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nginx");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nginx did not start listening on {}",
                self.port
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Kills the server at once (like a crash), keeping what it recorded.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn url(&self, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{stream}", self.port)
    }

    /// The FLV files nginx recorded for `stream`, one per publish, oldest first.
    pub fn recordings(&self, stream: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("records"))
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{stream}-")) && n.ends_with(".flv"))
        });
        files.sort();
        files
    }

    /// The one FLV file nginx recorded for `stream` (a single publish).
    pub fn recording(&self, stream: &str) -> PathBuf {
        let files = self.recordings(stream);
        assert_eq!(
            files.len(),
            1,
            "expected one publish of {stream}, found {files:?}"
        );
        files[0].clone()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for RtmpServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real X server (Xvfb) on a free display number, kept alive between clients.
pub struct XServer {
    pub display: String,
    child: std::process::Child,
}

impl XServer {
    pub fn start(width: u32, height: u32) -> Self {
        // Xvfb makes the socket directory when it is missing, but two servers starting at once
        // on a new machine race to make it, and the loser listens on its abstract socket only
        // ("mkdir(/tmp/.X11-unix) failed, errno = 17"), so its socket file never appears.
        let socket_dir = Path::new("/tmp/.X11-unix");
        if std::fs::create_dir(socket_dir).is_ok() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(socket_dir, std::fs::Permissions::from_mode(0o1777))
                .expect("make /tmp/.X11-unix writable to all, as X expects");
        }
        // Tests in one process run at once: each takes its own numbers.
        static TAKEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let first = 100
            + std::process::id() % 400
            + 50 * TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for number in first..2000 {
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            let lock = PathBuf::from(format!("/tmp/.X{number}-lock"));
            if socket.exists() || lock.exists() {
                continue;
            }
            let display = format!(":{number}");
            let child = tool("Xvfb")
                .arg(&display)
                .args([
                    "-screen",
                    "0",
                    &format!("{width}x{height}x24"),
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start Xvfb");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !socket.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let server = Self { display, child };
            assert!(socket.exists(), "Xvfb did not start on {}", server.display);
            return server;
        }
        panic!("no free X display number");
    }

    /// Paints the root window (the desktop) one colour, e.g. "#ff0000".
    pub fn paint_root(&self, color: &str) {
        run_ok(
            tool("xsetroot")
                .env("DISPLAY", &self.display)
                .args(["-solid", color]),
        );
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private D-Bus session bus on which the XDG desktop portal and its GTK backend start when
/// first asked (as on a GNOME desktop), drawing their dialogs on `x`'s display. The portal
/// processes leave with the bus when it stops.
pub struct DesktopPortal {
    /// For `DBUS_SESSION_BUS_ADDRESS`.
    pub bus_address: String,
    daemon: std::process::Child,
    _dir: tempfile::TempDir,
}

impl DesktopPortal {
    pub fn start(x: &XServer) -> Self {
        let dir = tempfile::tempdir().expect("a directory for the bus");
        let runtime = dir.path().join("runtime");
        std::fs::create_dir(&runtime).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let socket = dir.path().join("bus");
        let bus_address = format!("unix:path={}", socket.display());
        for part in ["xdg-desktop-portal", "xdg-desktop-portal-gtk"] {
            assert!(
                Path::new("/usr/libexec").join(part).exists(),
                "`{part}` is not installed; {INSTALL_HINT}"
            );
        }
        // Services started on the bus inherit the daemon's environment: the display to draw
        // on, and the desktop whose portal backend (GTK's, "UseIn=gnome") is chosen.
        let daemon = tool("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile"])
            .arg(format!("--address={bus_address}"))
            .env("DISPLAY", &x.display)
            .env("XDG_CURRENT_DESKTOP", "GNOME")
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus_address)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dbus-daemon");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(socket.exists(), "dbus-daemon did not start");
        Self {
            bus_address,
            daemon,
            _dir: dir,
        }
    }
}

impl Drop for DesktopPortal {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A real PulseAudio server on a private socket with null sinks (virtual sound cards), for
/// capture tests: `speakers` (the default output) and `headphones`. Children that should
/// use it get `PULSE_SERVER` from [`PulseServer::env`].
pub struct PulseServer {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl PulseServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("native");
        let null_sink = |name: &str| {
            format!("module-null-sink sink_name={name} rate=48000 sink_properties=device.description={name}")
        };
        let child = tool("pulseaudio")
            .env("HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disable-shm=yes",
                "--use-pid-file=no",
                "--realtime=no",
                "--high-priority=no",
                "--log-level=error",
                "-L",
            ])
            .arg(format!(
                "module-native-protocol-unix socket={} auth-anonymous=1",
                socket.display()
            ))
            .args(["-L", &null_sink("speakers"), "-L", &null_sink("headphones")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start pulseaudio (packaging/install-deps.sh installs it)");
        let server = Self { dir, child };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(socket.exists(), "pulseaudio did not start");
        run_ok(
            server
                .command("pactl")
                .args(["set-default-sink", "speakers"]),
        );
        server
    }

    pub fn address(&self) -> String {
        format!("unix:{}", self.dir.path().join("native").display())
    }

    /// A command that talks to this server (pactl, pacat, tally...).
    pub fn env<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .env("PULSE_SERVER", self.address())
            .env("HOME", self.dir.path())
    }

    pub fn command(&self, program: &str) -> Command {
        let mut command = tool(program);
        self.env(&mut command);
        command
    }

    /// Plays a sine at `frequency` Hz (a whole number, so the generator's one-second loop
    /// joins without a seam) into `sink` until the guard drops. The tone is made by the sound
    /// server itself (module-sine, 0.5 peak: -6.02 dBFS, RMS -9.03 dBFS), so it has no gaps:
    /// a player process that is not scheduled in time on a loaded machine (pacat with a short
    /// buffer, measured) underruns, and the sink then plays silence into the tone.
    pub fn play_sine(&self, sink: &str, frequency: u32) -> SineTone {
        let module = self.load_module(&[
            "module-sine",
            &format!("sink={sink}"),
            &format!("frequency={frequency}"),
        ]);
        SineTone {
            unload: {
                let mut command = self.command("pactl");
                command.args(["unload-module", &module]);
                command
            },
        }
    }

    /// Loads a sound-server module (`name` and its arguments); returns its index, for
    /// `pactl unload-module`.
    pub fn load_module(&self, module: &[&str]) -> String {
        run_ok(self.command("pactl").arg("load-module").args(module))
            .trim()
            .to_string()
    }

    /// Records `seconds` of what `sink` plays (its monitor) as interleaved stereo f32.
    pub fn record_sink(&self, sink: &str, seconds: f64) -> Vec<f32> {
        let output = self
            .command("timeout")
            .arg(format!("{seconds}"))
            .args([
                "parec",
                "--format=float32le",
                "--rate=48000",
                "--channels=2",
            ])
            .arg(format!("--device={sink}.monitor"))
            .output()
            .expect("run parec");
        output
            .stdout
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

impl Drop for PulseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tone the sound server plays until this drops.
pub struct SineTone {
    unload: Command,
}

impl Drop for SineTone {
    fn drop(&mut self) {
        let _ = self.unload.output();
    }
}

/// The decoded sound of `file` as the average of its two channels, f32 samples at 48 kHz.
pub fn mono_audio(file: &Path) -> Vec<f32> {
    let output = tool("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args([
            "-af",
            "pan=mono|c0=0.5*c0+0.5*c1",
            "-ar",
            "48000",
            "-f",
            "f32le",
            "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The strongest frequency in `samples` (48 kHz) and the RMS level in dBFS.
pub fn dominant_tone(samples: &[f32]) -> (f64, f64) {
    use realfft::RealFftPlanner;
    let n = samples.len().min(1 << 16) & !1;
    let mut input: Vec<f32> = samples[..n]
        .iter()
        .enumerate()
        // Hann window, so the peak does not leak into its neighbours.
        .map(|(i, s)| s * (0.5 - 0.5 * (std::f32::consts::TAU * i as f32 / n as f32).cos()))
        .collect();
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n);
    let mut spectrum = fft.make_output_vec();
    fft.process(&mut input, &mut spectrum).expect("fft");
    let (bin, _) = spectrum
        .iter()
        .enumerate()
        .skip(1)
        .max_by(|a, b| a.1.norm().total_cmp(&b.1.norm()))
        .expect("non-empty spectrum");
    let frequency = bin as f64 * 48_000.0 / n as f64;
    let rms = (samples[..n]
        .iter()
        .map(|s| f64::from(*s).powi(2))
        .sum::<f64>()
        / n as f64)
        .sqrt();
    (frequency, 20.0 * rms.log10())
}

/// First timestamp at which a per-frame measurement printed by an ffmpeg filter passes `above`.
pub fn first_time_above(file: &Path, filter: &str, key: &str, above: f64) -> f64 {
    let (measurements, printed) = frame_measurements(file, filter, key);
    measurements
        .iter()
        .find(|(_, value)| *value > above)
        .map(|(time, _)| *time)
        .unwrap_or_else(|| panic!("nothing above {above} for {key}:\n{printed}"))
}

/// Every timestamp at which a per-frame measurement printed by an ffmpeg filter rises past
/// `above` from at or below it (or is above it at the start), in order.
pub fn times_rising_above(file: &Path, filter: &str, key: &str, above: f64) -> Vec<f64> {
    let (measurements, _) = frame_measurements(file, filter, key);
    let mut was_above = false;
    let mut rises = Vec::new();
    for (time, value) in measurements {
        let is_above = value > above;
        if is_above && !was_above {
            rises.push(time);
        }
        was_above = is_above;
    }
    rises
}

/// (presentation time, value of `key`) for each frame of an ffprobe lavfi `filter` graph that
/// reads `file`, and what ffprobe printed, for messages.
fn frame_measurements(file: &Path, filter: &str, key: &str) -> (Vec<(f64, f64)>, String) {
    let output = tool("ffprobe")
        .args(["-v", "error", "-f", "lavfi"])
        .arg(filter)
        .args([
            "-show_entries",
            &format!("frame=pts_time:frame_tags={key}"),
            "-of",
            "csv=p=0",
        ])
        .current_dir(file.parent().unwrap())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let measurements = text
        .lines()
        .filter_map(|line| {
            let (time, value) = line.split_once(',')?;
            Some((time.parse::<f64>().ok()?, value.parse::<f64>().ok()?))
        })
        .collect();
    let printed = format!("{text}\n{}", String::from_utf8_lossy(&output.stderr));
    (measurements, printed)
}

/// The mean colour (RGB) of the `size`-pixel square at `at` in every frame of `file`.
pub fn square_colours(file: &Path, at: [u32; 2], size: u32) -> Vec<[f64; 3]> {
    let crop = format!("crop={size}:{size}:{}:{}", at[0], at[1]);
    raw_video(
        file,
        &[],
        &["-fps_mode", "passthrough", "-vf", &crop],
        "rgb24",
    )
    .chunks_exact((size * size * 3) as usize)
    .map(|frame| {
        let mut sum = [0.0; 3];
        for pixel in frame.chunks_exact(3) {
            for (total, value) in sum.iter_mut().zip(pixel) {
                *total += f64::from(*value);
            }
        }
        sum.map(|total| total / f64::from(size * size))
    })
    .collect()
}

/// The RMS level of `samples`, in dBFS.
pub fn rms_db(samples: &[f32]) -> f64 {
    let mean = samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len() as f64;
    10.0 * mean.max(1e-20).log10()
}

/// A raw WebSocket to the server, offering `subprotocol`, having read its Hello.
pub fn raw_client(
    url: &str,
    subprotocol: Option<&str>,
) -> tungstenite::WebSocket<std::net::TcpStream> {
    use tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("a WebSocket URL");
    if let Some(subprotocol) = subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", subprotocol.parse().unwrap());
    }
    let address = url.trim_start_matches("ws://");
    let stream = std::net::TcpStream::connect(address).expect("the server listens");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let (mut socket, _) = tungstenite::client(request, stream).expect("the handshake");
    let hello = socket.read().expect("a Hello");
    assert!(hello.is_text() || hello.is_binary(), "{hello:?}");
    socket
}

/// Reads until the server closes; its close code (`None` when the connection just ended).
pub fn close_code(socket: &mut tungstenite::WebSocket<std::net::TcpStream>) -> Option<u16> {
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Identifies (no password, every event class).
pub fn identify(socket: &mut tungstenite::WebSocket<std::net::TcpStream>) {
    socket
        .send(tungstenite::Message::text(
            serde_json::json!({"op": 1, "d": {"rpcVersion": 1}}).to_string(),
        ))
        .unwrap();
}

/// An FFmpeg SRT listener that saves what it receives.
pub struct SrtListener {
    child: std::process::Child,
    output: PathBuf,
    pub port: u16,
}

impl SrtListener {
    /// Saves MPEG-TS, as it arrives.
    pub fn start(dir: &Path, passphrase: Option<&str>) -> Self {
        Self::saving_as(dir, passphrase, "mpegts")
    }

    /// Saves in `format` (an FFmpeg muxer: `mpegts`, `matroska`).
    pub fn saving_as(dir: &Path, passphrase: Option<&str>, format: &str) -> Self {
        let port = free_port();
        let output = dir.join(format!("srt-{port}.{format}"));
        let mut url = format!("srt://127.0.0.1:{port}?mode=listener&latency=200000");
        if let Some(passphrase) = passphrase {
            url.push_str(&format!("&passphrase={passphrase}"));
        }
        let child = tool("ffmpeg")
            .args(["-v", "error", "-y", "-i", &url, "-c", "copy", "-f", format])
            .arg(&output)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_until(
            "the SRT listener binds",
            std::time::Duration::from_secs(10),
            || udp_port_bound(port),
        );
        Self {
            child,
            output,
            port,
        }
    }

    /// Waits for the caller to hang up (up to 15 s); the saved file and FFmpeg's errors.
    pub fn finish(mut self) -> (PathBuf, String) {
        use std::io::Read;
        let child = &mut self.child;
        let ended = poll_until(std::time::Duration::from_secs(15), || {
            child.try_wait().unwrap().is_some()
        });
        if !ended {
            if let Err(error) = self.child.kill() {
                eprintln!("the SRT listener: {error}");
            }
            self.child.wait().unwrap();
        }
        let mut errors = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            stderr.read_to_string(&mut errors).unwrap();
        }
        (self.output.clone(), errors)
    }
}

impl Drop for SrtListener {
    /// A listener whose caller never came (a refused passphrase) would wait for ever.
    fn drop(&mut self) {
        // Already gone after `finish`: nothing to kill then.
        if self.child.kill().is_ok() {
            self.child.wait().unwrap();
        }
    }
}

/// Whether a UDP socket is bound to `port` on this machine (from /proc/net/udp).
pub fn udp_port_bound(port: u16) -> bool {
    let wanted = format!(":{port:04X} ");
    ["/proc/net/udp", "/proc/net/udp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                line.split_whitespace()
                    .nth(1)
                    .is_some_and(|local| format!("{local} ").ends_with(&wanted))
            })
        })
    })
}

/// Whether a TCP socket listens on `port` on this machine (from /proc/net/tcp; state 0A), for
/// a server that takes a single connection, which a probing connect would use up.
pub fn tcp_port_listening(port: u16) -> bool {
    let wanted = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.len() > 3 && fields[1].ends_with(&wanted) && fields[3] == "0A"
            })
        })
    })
}

/// FFmpeg 7.0 from PyPI (imageio-ffmpeg, installed by packaging/install-deps.sh): it demuxes
/// enhanced FLV, which Debian's FFmpeg 5.1 cannot.
pub fn ffmpeg7() -> PathBuf {
    let venv = repo_root().join("tests/ffmpeg7/.venv/lib");
    let found = std::fs::read_dir(&venv).ok().and_then(|pythons| {
        pythons.flatten().find_map(|python| {
            let binaries = python.path().join("site-packages/imageio_ffmpeg/binaries");
            std::fs::read_dir(binaries)
                .ok()?
                .flatten()
                .find_map(|entry| {
                    let name = entry.file_name().to_string_lossy().to_string();
                    (name.starts_with("ffmpeg-") && !name.ends_with(".md")).then(|| entry.path())
                })
        })
    });
    found.unwrap_or_else(|| panic!("FFmpeg 7 (imageio-ffmpeg) is not installed: {INSTALL_HINT}"))
}
