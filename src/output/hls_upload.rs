//! Pushing HLS to an origin or ingest: the HLS outputs write into a local folder as always,
//! and this mirrors the folder to the origin's folder URL with Tally's own HTTP/1.1 client:
//! a PUT for every file written or rewritten, a DELETE (without a body, which origins such as
//! nginx's WebDAV refuse) for every file the outputs removed as their windows moved on.
//!
//! A playlist goes up only after every file it names (segments, parts, initialisation
//! segments, a ladder's media playlists), so the origin never lists what it does not hold.
//! The folder is looked at every [`LOOK_EVERY`]; a failed request is retried with the
//! stream outputs' backoff, and files that left the folder meanwhile are simply not sent.
//! Once asked to finish, one last pass sends the ended playlists. The stream key (the URL's
//! last path segment) is masked in everything this says.

use super::backoff::{Backoff, ReconnectSettings};
use super::destination::{uri_attribute, Endpoint, HLS_MASTER_PLAYLIST};
use super::net::{NetError, Transport};
use crate::base::lock;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// How often the folder is looked at for new files.
pub const LOOK_EVERY: Duration = Duration::from_millis(50);
/// Tries at sending the last files once the stream has ended.
const FINAL_ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot connect to {origin}: {cause}{}", connect_hint(cause))]
    Connect { origin: String, cause: NetError },
    #[error("sending {file}: {kind}")]
    Io {
        file: String,
        kind: std::io::ErrorKind,
    },
    #[error("the origin refused {method} {file}: HTTP {code}")]
    Refused {
        method: &'static str,
        file: String,
        code: u16,
    },
    #[error("the origin's answer to {file} is not HTTP")]
    NotHttp { file: String },
    #[error("reading {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot start the HLS upload thread: {0}")]
    Spawn(std::io::Error),
    #[error("the HLS upload thread panicked")]
    Panicked,
    #[error("stopped pushing after {attempts} failed attempts in a row; last: {last}")]
    GaveUp {
        attempts: u32,
        last: Box<UploadError>,
    },
}

/// What the operator can do about a failed connection, where the failure says.
fn connect_hint(cause: &NetError) -> &'static str {
    match cause {
        NetError::Tls(_) | NetError::TlsName(_) => {
            " (the origin's certificate must be valid for its name: --tls-ca-file adds a \
             private certificate authority)"
        }
        _ => "",
    }
}

/// Where the files go: an `http://` or `https://` folder URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTarget {
    tls: bool,
    host: String,
    port: u16,
    /// The folder's path, starting and ending with `/`.
    folder: String,
    /// The folder URL with the key masked.
    masked: String,
}

impl UploadTarget {
    /// From an endpoint made by [`Endpoint::hls_push`].
    pub fn from_endpoint(endpoint: &Endpoint) -> Option<Self> {
        let url = endpoint.url();
        let (tls, rest) = match url.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, url.strip_prefix("http://")?),
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let default_port = if tls { 443 } else { 80 };
        // An IPv6 address is written in brackets, its colons not a port's.
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => match bracketed.split_once("]:") {
                Some((host, port)) => (host, port.parse().ok()?),
                None => (bracketed.trim_end_matches(']'), default_port),
            },
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().ok()?),
                None => (authority, default_port),
            },
        };
        // The endpoint's URL names the media playlist in the folder.
        let folder = path.rsplit_once('/').map_or("", |(folder, _)| folder);
        let masked = endpoint
            .masked()
            .strip_prefix("HLS to ")
            .unwrap_or(endpoint.masked())
            .to_string();
        Some(Self {
            tls,
            host: host.to_string(),
            port,
            folder: format!("/{folder}/").replace("//", "/"),
            masked,
        })
    }

    pub fn masked(&self) -> &str {
        &self.masked
    }

    fn shown(&self, name: &str) -> String {
        format!("{}/{name}", self.masked.trim_end_matches('/'))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UploadSettings {
    pub io_timeout: Duration,
    pub tls_ca_file: Option<PathBuf>,
    pub retry: ReconnectSettings,
}

/// What went up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UploadStats {
    pub files_sent: u64,
    pub bytes_sent: u64,
    pub files_deleted: u64,
    /// Requests that failed and were retried.
    pub failures: u64,
}

struct Shared {
    finish: Mutex<bool>,
    wake: Condvar,
    stats: Mutex<UploadStats>,
    /// The newest failure, until a front-end takes it to show.
    problem: Mutex<Option<String>>,
}

pub struct HlsUploader {
    target: UploadTarget,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), UploadError>>>,
}

impl HlsUploader {
    pub fn start(
        folder: PathBuf,
        target: UploadTarget,
        settings: UploadSettings,
    ) -> Result<Self, UploadError> {
        let shared = Arc::new(Shared {
            finish: Mutex::new(false),
            wake: Condvar::new(),
            stats: Mutex::new(UploadStats::default()),
            problem: Mutex::new(None),
        });
        let mirror = Mirror {
            folder,
            client: Client {
                target: target.clone(),
                settings: settings.clone(),
            },
            sent: HashMap::new(),
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("hls-upload".into())
            .spawn(move || mirror.run(settings.retry))
            .map_err(UploadError::Spawn)?;
        Ok(Self {
            target,
            shared,
            thread: Some(thread),
        })
    }

    pub fn target(&self) -> &UploadTarget {
        &self.target
    }

    /// The newest failure since the last call, for a front-end to show as it happens.
    pub fn take_problem(&self) -> Option<String> {
        lock(&self.shared.problem).take()
    }

    /// Sends what the folder holds now (the outputs have ended), and ends.
    pub fn finish(mut self) -> Result<UploadStats, UploadError> {
        self.end()?;
        Ok(*lock(&self.shared.stats))
    }

    fn end(&mut self) -> Result<(), UploadError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        *lock(&self.shared.finish) = true;
        self.shared.wake.notify_all();
        thread.join().map_err(|_| UploadError::Panicked)?
    }
}

impl Drop for HlsUploader {
    fn drop(&mut self) {
        if let Err(error) = self.end() {
            tracing::warn!("HLS push to {}: {error}", self.target.masked);
        }
    }
}

/// A file's size and time when it was sent: a rewritten playlist differs in one or the other.
type Stamp = (u64, Option<SystemTime>);

struct Mirror {
    folder: PathBuf,
    client: Client,
    /// What the origin holds, by name relative to the folder.
    sent: HashMap<String, Stamp>,
    shared: Arc<Shared>,
}

impl Mirror {
    fn run(mut self, retry: ReconnectSettings) -> Result<(), UploadError> {
        let mut backoff = Backoff::new(retry, u64::from(std::process::id()));
        let mut wait = LOOK_EVERY;
        // Once the stream has ended, an origin that stays away is not waited for forever.
        let mut final_attempts = 0;
        let mut failed_in_a_row = 0;
        loop {
            let finishing = self.wait(wait);
            if finishing {
                final_attempts += 1;
            }
            match self.mirror_once() {
                Ok(()) => {
                    backoff.reset();
                    failed_in_a_row = 0;
                    wait = LOOK_EVERY;
                    if finishing {
                        return Ok(());
                    }
                }
                Err(error) => {
                    tracing::warn!("HLS push: {error}");
                    lock(&self.shared.stats).failures += 1;
                    failed_in_a_row += 1;
                    match backoff.next_delay() {
                        Some(delay) if final_attempts < FINAL_ATTEMPTS => {
                            *lock(&self.shared.problem) = Some(error.to_string());
                            wait = delay;
                        }
                        _ => {
                            let gave_up = UploadError::GaveUp {
                                attempts: failed_in_a_row,
                                last: Box::new(error),
                            };
                            // The owner may look before it ends the push: say the push stopped.
                            *lock(&self.shared.problem) = Some(gave_up.to_string());
                            return Err(gave_up);
                        }
                    }
                }
            }
        }
    }

    /// Waits `delay` or until asked to finish; true once asked.
    fn wait(&self, delay: Duration) -> bool {
        let finish = lock(&self.shared.finish);
        if *finish {
            return true;
        }
        let (finish, _) = self
            .shared
            .wake
            .wait_timeout(finish, delay)
            .unwrap_or_else(|error| error.into_inner());
        *finish
    }

    /// Sends what changed since the last pass and deletes what went.
    fn mirror_once(&mut self) -> Result<(), UploadError> {
        let on_disk = hls_files(&self.folder)?;
        // Media first, then the playlists that name them; each playlist checks again that
        // what it names went up.
        for (name, stamp) in on_disk.iter().filter(|(name, _)| !is_playlist(name)) {
            if self.sent.get(name) != Some(stamp) {
                self.put_file(name, *stamp)?;
            }
        }
        let mut playlists: Vec<&String> = on_disk.keys().filter(|name| is_playlist(name)).collect();
        // Renditions' playlists before the folder's own, the master last.
        playlists.sort_by_key(|name| (!name.contains('/'), name.ends_with(HLS_MASTER_PLAYLIST)));
        for name in playlists {
            let stamp = on_disk[name];
            if self.sent.get(name) != Some(&stamp) {
                self.put_playlist(name, stamp)?;
            }
        }
        let gone: Vec<String> = self
            .sent
            .keys()
            .filter(|name| !on_disk.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            self.client.delete(&name)?;
            self.sent.remove(&name);
            lock(&self.shared.stats).files_deleted += 1;
        }
        Ok(())
    }

    fn put_file(&mut self, name: &str, stamp: Stamp) -> Result<(), UploadError> {
        match self.read_unless_gone(name)? {
            Some(body) => self.send(name, stamp, &body),
            None => Ok(()),
        }
    }

    fn put_playlist(&mut self, name: &str, stamp: Stamp) -> Result<(), UploadError> {
        let Some(body) = self.read_unless_gone(name)? else {
            return Ok(());
        };
        let text = std::str::from_utf8(&body).map_err(|error| UploadError::Read {
            path: self.folder.join(name),
            cause: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
        })?;
        let base = name.rsplit_once('/').map_or("", |(folder, _)| folder);
        for named in named_files(text) {
            let relative = if base.is_empty() {
                named
            } else {
                format!("{base}/{named}")
            };
            if self.sent.contains_key(&relative) {
                continue;
            }
            let path = self.folder.join(&relative);
            let stamp_now = match std::fs::metadata(&path) {
                Ok(metadata) => stamp_of(&metadata),
                // Named by a playlist written before the window moved on: not sent.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(cause) => return Err(UploadError::Read { path, cause }),
            };
            if is_playlist(&relative) {
                self.put_playlist(&relative, stamp_now)?;
            } else {
                self.put_file(&relative, stamp_now)?;
            }
        }
        self.send(name, stamp, &body)
    }

    /// The file's bytes, or `None` once it has left the folder (the window moved on since
    /// the folder was looked at: nothing to send).
    fn read_unless_gone(&self, name: &str) -> Result<Option<Vec<u8>>, UploadError> {
        let path = self.folder.join(name);
        match std::fs::read(&path) {
            Ok(body) => Ok(Some(body)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(cause) => Err(UploadError::Read { path, cause }),
        }
    }

    /// Puts `body` on the origin as `name`, and counts it as sent at `stamp`.
    fn send(&mut self, name: &str, stamp: Stamp, body: &[u8]) -> Result<(), UploadError> {
        self.client.put(name, body)?;
        self.sent.insert(name.to_string(), stamp);
        let mut stats = lock(&self.shared.stats);
        stats.files_sent += 1;
        stats.bytes_sent += body.len() as u64;
        Ok(())
    }
}

fn is_playlist(name: &str) -> bool {
    name.ends_with(".m3u8")
}

/// The files a playlist names (URI lines, `EXT-X-MAP`, `EXT-X-PART`), not the preload hint's,
/// which is not written yet.
fn named_files(playlist: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in playlist.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("#EXT-X-PRELOAD-HINT") {
            continue;
        }
        if !line.starts_with('#') {
            names.push(line.to_string());
        } else if let Some(uri) = uri_attribute(line) {
            names.push(uri.to_string());
        }
    }
    names
}

/// The HLS files in `folder` and its renditions' subfolders (no temporary ones), by name
/// relative to it, in name order. A folder that cannot be read is an error, never an empty
/// listing: the mirror deletes from the origin what the listing lacks.
fn hls_files(folder: &Path) -> Result<BTreeMap<String, Stamp>, UploadError> {
    let mut files = BTreeMap::new();
    let mut look = |dir: &Path, prefix: &str| -> Result<Vec<(PathBuf, String)>, UploadError> {
        let unreadable = |cause| UploadError::Read {
            path: dir.to_path_buf(),
            cause,
        };
        let mut subfolders = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let name = entry.file_name().to_string_lossy().to_string();
            let metadata = match entry.metadata() {
                Ok(metadata) => metadata,
                // Removed since the folder was listed: the window moved on.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(cause) => return Err(unreadable(cause)),
            };
            if metadata.is_dir() && prefix.is_empty() {
                subfolders.push((entry.path(), format!("{name}/")));
            } else if metadata.is_file() && is_hls_file(&name) {
                files.insert(format!("{prefix}{name}"), stamp_of(&metadata));
            }
        }
        Ok(subfolders)
    };
    for (dir, prefix) in look(folder, "")? {
        look(&dir, &prefix)?;
    }
    Ok(files)
}

fn stamp_of(metadata: &std::fs::Metadata) -> Stamp {
    // A file system without modification times still has sizes to compare.
    (metadata.len(), metadata.modified().ok())
}

fn is_hls_file(name: &str) -> bool {
    !name.starts_with('.')
        && [".m3u8", ".m4s", ".mp4"]
            .iter()
            .any(|ending| name.ends_with(ending))
}

fn content_type(name: &str) -> &'static str {
    if is_playlist(name) {
        "application/vnd.apple.mpegurl"
    } else if name.ends_with(".mp4") {
        "video/mp4"
    } else {
        "video/iso.segment"
    }
}

/// One request per connection: simple, and a stalled one never holds up the next.
struct Client {
    target: UploadTarget,
    settings: UploadSettings,
}

impl Client {
    fn put(&self, name: &str, body: &[u8]) -> Result<(), UploadError> {
        let head = format!(
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            content_type(name),
            body.len()
        );
        self.request("PUT", name, &head, body)
    }

    fn delete(&self, name: &str) -> Result<(), UploadError> {
        match self.request("DELETE", name, "", &[]) {
            // Gone already: what a DELETE wants.
            Err(UploadError::Refused { code: 404, .. }) => Ok(()),
            other => other,
        }
    }

    fn request(
        &self,
        method: &'static str,
        name: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<(), UploadError> {
        let target = &self.target;
        let shown = target.shown(name);
        let io = |error: std::io::Error| match NetError::tls_cause(&error) {
            // TLS checks the certificate on the first write: a connection failure after all.
            Some(cause) => UploadError::Connect {
                origin: target.masked.clone(),
                cause,
            },
            None => UploadError::Io {
                file: shown.clone(),
                kind: error.kind(),
            },
        };
        let mut transport = Transport::open(
            &target.host,
            target.port,
            target.tls,
            self.settings.tls_ca_file.as_deref(),
            self.settings.io_timeout,
        )
        .map_err(|cause| UploadError::Connect {
            origin: target.masked.clone(),
            cause,
        })?;
        let host = if target.port == 80 || target.port == 443 {
            target.host.clone()
        } else {
            format!("{}:{}", target.host, target.port)
        };
        let request = format!(
            "{method} {}{name} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Tally\r\n{headers}Connection: close\r\n\r\n",
            target.folder
        );
        transport.write_all(request.as_bytes()).map_err(io)?;
        transport.write_all(body).map_err(io)?;
        transport.flush().map_err(io)?;
        let mut status = String::new();
        BufReader::new(&mut transport)
            .read_line(&mut status)
            .map_err(io)?;
        let code: u16 = status
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or(UploadError::NotHttp {
                file: shown.clone(),
            })?;
        if (200..300).contains(&code) {
            Ok(())
        } else {
            Err(UploadError::Refused {
                method,
                file: shown,
                code,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_url_becomes_a_host_and_a_folder_with_the_key_masked() {
        let endpoint = Endpoint::hls_push("https://origin.example:8443/live/secret/").unwrap();
        let target = UploadTarget::from_endpoint(&endpoint).unwrap();
        assert!(target.tls);
        assert_eq!(
            (target.host.as_str(), target.port),
            ("origin.example", 8443)
        );
        assert_eq!(target.folder, "/live/secret/");
        assert!(!target.masked().contains("secret"), "{}", target.masked());
        assert!(!target.shown("720p/media.m3u8").contains("secret"));
        let plain = UploadTarget::from_endpoint(&Endpoint::hls_push("http://origin/k").unwrap());
        assert_eq!(
            plain.map(|t| (t.port, t.folder)),
            Some((80, "/k/".to_string()))
        );
    }

    #[test]
    fn a_playlist_names_its_segments_parts_and_map_but_not_the_hint() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.0,\nsegment-000001.m4s\n\
                    #EXT-X-PART:DURATION=0.5,URI=\"segment-000002.0.m4s\",INDEPENDENT=YES\n\
                    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"segment-000002.1.m4s\"\n";
        assert_eq!(
            named_files(text),
            ["init.mp4", "segment-000001.m4s", "segment-000002.0.m4s"]
        );
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/media.m3u8\n";
        assert_eq!(named_files(master), ["720p/media.m3u8"]);
    }

    #[test]
    fn an_origin_that_never_answers_is_given_up_on_and_the_owner_hears_it() {
        // A port that was free a moment ago: nothing listens, every connection is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("init.mp4"), b"init").unwrap();
        let endpoint = Endpoint::hls_push(&format!("http://127.0.0.1:{port}/live/key/")).unwrap();
        let settings = UploadSettings {
            io_timeout: Duration::from_secs(2),
            tls_ca_file: None,
            retry: ReconnectSettings {
                first_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(20),
                max_retries: Some(2),
                ..ReconnectSettings::default()
            },
        };
        let uploader = HlsUploader::start(
            folder.path().to_path_buf(),
            UploadTarget::from_endpoint(&endpoint).unwrap(),
            settings,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let problem = loop {
            match uploader.take_problem() {
                Some(problem) if problem.starts_with("stopped pushing") => break problem,
                _ if std::time::Instant::now() > deadline => panic!("the push never gave up"),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        assert!(!problem.contains("key"), "the key shows: {problem}");
        match uploader.finish() {
            Err(UploadError::GaveUp { attempts, .. }) => assert_eq!(attempts, 3),
            other => panic!("expected the push to have given up, got {other:?}"),
        }
    }

    #[test]
    fn a_folder_that_cannot_be_read_is_an_error_not_an_empty_listing() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::create_dir(folder.path().join("720p")).unwrap();
        std::fs::write(folder.path().join("720p/media.m3u8"), b"#EXTM3U\n").unwrap();
        std::fs::write(folder.path().join("master.m3u8"), b"#EXTM3U\n").unwrap();
        std::fs::write(folder.path().join(".master.m3u8.tmp"), b"").unwrap();
        let listed = hls_files(folder.path()).unwrap();
        assert_eq!(
            listed.keys().collect::<Vec<_>>(),
            ["720p/media.m3u8", "master.m3u8"]
        );
        let gone = folder.path().join("gone");
        assert!(matches!(
            hls_files(&gone),
            Err(UploadError::Read { path, .. }) if path == gone
        ));
    }
}
