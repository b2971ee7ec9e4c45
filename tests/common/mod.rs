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

/// Writes a scene collection that may refer to the repo's assets as `ASSETS/...`.
pub fn write_scene(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let assets = repo_root().join("assets");
    let path = dir.join(name);
    std::fs::write(&path, toml.replace("ASSETS", &assets.display().to_string()))
        .expect("write scene");
    path
}
