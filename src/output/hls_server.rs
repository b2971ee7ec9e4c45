//! Tally's own HTTP server for an HLS folder: what a studio monitor, a browser with hls.js or
//! ffplay on the LAN plays from, at `http://ADDRESS/live/master.m3u8`. It serves the playlists,
//! the initialisation files and the segments the HLS output writes, a ladder's renditions in
//! their folders (GET and HEAD, nothing
//! else: no listings, no other paths, no files FFmpeg is still writing), and binds to
//! loopback unless told otherwise.
//!
//! One thread accepts; each request gets a thread of its own, up to [`MAX_CONNECTIONS`] at
//! once (more are answered 503 at once), so a slow player holds up nobody else.
//!
//! For low-latency HLS it does what the LL-HLS spec asks of a server: a playlist request with
//! `_HLS_msn` (and `_HLS_part`) is held until the playlist has that segment (or part), and a
//! request for the part a playlist's preload hint names is held until the part is written;
//! both for at most three target durations. It learns of new parts by reading the playlist
//! again every [`LOOK_AGAIN_EVERY`]: the folder may be written by another process, so the
//! files are the only thing the writer and the server share.

use super::destination::uri_attribute;
use crate::base::lock;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The path the folder is served under.
pub const HLS_PATH_PREFIX: &str = "/live/";
/// Requests served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// A client that sends nothing (or takes nothing) for this long is dropped.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's head (request line and headers) longer than this is refused.
const MAX_REQUEST_HEAD: u64 = 8 * 1024;
/// How often a held request looks at the playlist again.
const LOOK_AGAIN_EVERY: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum HlsServerError {
    #[error("cannot serve HLS on {address}: {cause} (is another program using that port?)")]
    Bind {
        address: SocketAddr,
        cause: std::io::Error,
    },
    #[error("cannot start the HLS server's thread: {0}")]
    Spawn(std::io::Error),
    #[error("the HLS server's thread panicked")]
    Panicked,
}

pub struct HlsServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The last thing that went wrong in the accept loop, for [`HlsServer::stop`] to report.
    problem: Arc<Mutex<Option<String>>>,
}

impl HlsServer {
    /// Listens on `address` (port 0 picks a free one) and serves `folder` under `/live/`.
    pub fn start(address: SocketAddr, folder: PathBuf) -> Result<Self, HlsServerError> {
        let listener =
            TcpListener::bind(address).map_err(|cause| HlsServerError::Bind { address, cause })?;
        let address = listener
            .local_addr()
            .map_err(|cause| HlsServerError::Bind { address, cause })?;
        let stop = Arc::new(AtomicBool::new(false));
        let problem = Arc::new(Mutex::new(None));
        let thread = std::thread::Builder::new()
            .name("hls-server".into())
            .spawn({
                let (stop, problem) = (stop.clone(), problem.clone());
                move || accept_loop(&listener, &folder, &stop, &problem)
            })
            .map_err(HlsServerError::Spawn)?;
        Ok(Self {
            address,
            stop,
            thread: Some(thread),
            problem,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The master playlist's URL.
    pub fn master_url(&self) -> String {
        format!(
            "http://{}{HLS_PATH_PREFIX}{}",
            self.address,
            super::destination::HLS_MASTER_PLAYLIST
        )
    }

    /// Stops accepting and waits for the accept loop to end (requests in flight finish on
    /// their own threads).
    pub fn stop(mut self) -> Result<(), HlsServerError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), HlsServerError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop blocks in accept(): a connection of our own wakes it to see the flag.
        if let Err(error) = TcpStream::connect_timeout(&self.address, Duration::from_secs(1)) {
            tracing::debug!("waking the HLS server: {error}");
        }
        thread.join().map_err(|_| HlsServerError::Panicked)?;
        if let Some(problem) = lock(&self.problem).take() {
            tracing::warn!("the HLS server: {problem}");
        }
        Ok(())
    }
}

impl Drop for HlsServer {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            tracing::warn!("{error}");
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    folder: &Path,
    stop: &AtomicBool,
    problem: &Mutex<Option<String>>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for connection in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let mut connection = match connection {
            Ok(connection) => connection,
            Err(error) => {
                // Out of file descriptors and the like: the next accept may work.
                *lock(problem) = Some(format!("accepting a connection: {error}"));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            if let Err(error) = respond_status(&mut connection, 503, "Service Unavailable", false) {
                tracing::debug!("turning a client away: {error}");
            }
            continue;
        }
        let folder = folder.to_path_buf();
        let counted = active.clone();
        let spawned = std::thread::Builder::new()
            .name("hls-request".into())
            .spawn(move || {
                if let Err(error) = serve_one(connection, &folder) {
                    tracing::debug!("an HLS request: {error}");
                }
                counted.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(error) = spawned {
            active.fetch_sub(1, Ordering::SeqCst);
            *lock(problem) = Some(format!("cannot start a thread for a request: {error}"));
            tracing::warn!("the HLS server cannot start a thread for a request: {error}");
        }
    }
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// GET (`with_body`) or HEAD of a file in the folder.
    File {
        name: String,
        with_body: bool,
        /// A blocking playlist reload's `_HLS_msn` and `_HLS_part`.
        hold: Option<Hold>,
    },
    NotFound,
    MethodNotAllowed,
    Bad,
}

/// Reads the request line and skips the headers.
fn read_request(connection: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(std::io::Read::take(connection, MAX_REQUEST_HEAD));
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    Ok(parse_request_line(&request_line))
}

fn parse_request_line(line: &str) -> Request {
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Request::Bad;
    };
    let with_body = match method {
        "GET" => true,
        "HEAD" => false,
        _ => return Request::MethodNotAllowed,
    };
    // Players add queries (hls.js's cache busting, LL-HLS's _HLS_msn); the file is the same.
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path
        .strip_prefix(HLS_PATH_PREFIX)
        .filter(|name| served_name(name))
    {
        Some(name) => {
            let hold = if name.ends_with(".m3u8") {
                match Hold::from_query(query) {
                    Ok(hold) => hold,
                    Err(()) => return Request::Bad,
                }
            } else {
                None
            };
            Request::File {
                name: name.to_string(),
                with_body,
                hold,
            }
        }
        None => Request::NotFound,
    }
}

/// A blocking playlist reload: answer once the playlist holds segment `msn` (part `part` of
/// it, when given) or a later one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hold {
    msn: u64,
    part: Option<u64>,
}

impl Hold {
    /// From a query's `_HLS_msn` and `_HLS_part`; a part without a segment, or a number that
    /// is not one, is a bad request.
    fn from_query(query: &str) -> Result<Option<Self>, ()> {
        let mut msn = None;
        let mut part = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("_HLS_msn", value)) => msn = Some(value.parse().map_err(|_| ())?),
                Some(("_HLS_part", value)) => part = Some(value.parse().map_err(|_| ())?),
                _ => {}
            }
        }
        match (msn, part) {
            (Some(msn), part) => Ok(Some(Self { msn, part })),
            (None, Some(_)) => Err(()),
            (None, None) => Ok(None),
        }
    }
}

/// Where a live media playlist stands, as a held request needs it.
#[derive(Debug, Clone, PartialEq)]
struct LivePosition {
    /// The number of the segment being written (every earlier one is whole).
    next_msn: u64,
    /// Parts of that segment already listed.
    parts_of_next: u64,
    ended: bool,
    target_duration: Duration,
    /// The URI of the preload hint, if any.
    hint: Option<String>,
}

impl LivePosition {
    /// The playlist file's position; `None` while it is missing or not a live playlist yet.
    fn load(path: &Path) -> Option<Self> {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| Self::read(&text))
    }

    fn read(text: &str) -> Option<Self> {
        let mut media_sequence = 0;
        let mut segments = 0;
        let mut parts_of_next = 0;
        let mut ended = false;
        let mut target_duration = None;
        let mut hint = None;
        for line in text.lines().map(str::trim) {
            if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                media_sequence = value.parse().ok()?;
            } else if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                target_duration = Some(Duration::from_secs(value.parse().ok()?));
            } else if line.starts_with("#EXT-X-PART:") {
                parts_of_next += 1;
            } else if line.starts_with("#EXT-X-ENDLIST") {
                ended = true;
            } else if let Some(attributes) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
                hint = uri_attribute(attributes).map(str::to_string);
            } else if !line.is_empty() && !line.starts_with('#') {
                segments += 1;
                parts_of_next = 0;
            }
        }
        Some(Self {
            next_msn: media_sequence + segments,
            parts_of_next,
            ended,
            target_duration: target_duration?,
            hint,
        })
    }

    fn holds(&self, hold: Hold) -> bool {
        self.ended
            || hold.msn < self.next_msn
            || (hold.msn == self.next_msn
                && hold.part.is_some_and(|part| part < self.parts_of_next))
    }

    /// The spec's bound: a request more than two segments ahead is refused, not held.
    fn too_far(&self, hold: Hold) -> bool {
        hold.msn > self.next_msn + 2
    }
}

/// How a held request ended.
enum Held {
    Ready,
    TooFar,
    TimedOut,
}

/// Waits until the playlist at `path` satisfies `hold`, for at most three target durations.
fn hold_playlist(path: &Path, hold: Hold) -> Held {
    let started = std::time::Instant::now();
    loop {
        let position = LivePosition::load(path);
        if let Some(position) = &position {
            if position.holds(hold) {
                return Held::Ready;
            }
            if position.too_far(hold) {
                return Held::TooFar;
            }
        }
        let limit = position.map_or(Duration::from_secs(6), |p| p.target_duration * 3);
        if started.elapsed() >= limit {
            return Held::TimedOut;
        }
        std::thread::sleep(LOOK_AGAIN_EVERY);
    }
}

/// Waits for the part a playlist in its folder hints at, for at most three target durations;
/// returns at once for a name that is not hinted at.
fn wait_for_hinted_part(folder: &Path, name: &str) {
    let (rendition, file) = name.rsplit_once('/').unwrap_or(("", name));
    let playlist = folder
        .join(rendition)
        .join(super::destination::HLS_MEDIA_PLAYLIST);
    let started = std::time::Instant::now();
    loop {
        let Some(position) = LivePosition::load(&playlist) else {
            return;
        };
        if folder.join(name).exists() {
            return;
        }
        // Once the hint has moved on without this part written, it never will be.
        if position.hint.as_deref() != Some(file)
            || started.elapsed() >= position.target_duration * 3
        {
            return;
        }
        std::thread::sleep(LOOK_AGAIN_EVERY);
    }
}

/// Only the names the HLS output writes: a file, or a file in a rendition's folder (a
/// ladder's), no hidden names, no files in the middle of being written (FFmpeg gives those a
/// `.tmp` ending).
fn served_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    let plain = |part: &&str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    };
    parts.len() <= 2 && parts.iter().all(plain) && content_type(name).is_some()
}

fn content_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1;
    match extension {
        "m3u8" => Some("application/vnd.apple.mpegurl"),
        "m4s" => Some("video/iso.segment"),
        "mp4" => Some("video/mp4"),
        _ => None,
    }
}

fn serve_one(mut connection: TcpStream, folder: &Path) -> std::io::Result<()> {
    connection.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    connection.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    match read_request(&connection)? {
        Request::File {
            name,
            with_body,
            hold,
        } => {
            if let Some(hold) = hold {
                match hold_playlist(&folder.join(&name), hold) {
                    Held::Ready => {}
                    Held::TooFar => {
                        return respond_status(&mut connection, 400, "Bad Request", with_body)
                    }
                    Held::TimedOut => {
                        return respond_status(
                            &mut connection,
                            503,
                            "Service Unavailable",
                            with_body,
                        )
                    }
                }
            } else if name.ends_with(".m4s") && !folder.join(&name).exists() {
                // The part a preload hint names is answered once it is written.
                wait_for_hinted_part(folder, &name);
            }
            // A segment deleted as the window moved on, or not written yet, is simply not there.
            match std::fs::read(folder.join(&name)) {
                Ok(body) => respond_file(&mut connection, &name, &body, with_body),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    respond_status(&mut connection, 404, "Not Found", with_body)
                }
                Err(error) => {
                    tracing::warn!("serving {name}: {error}");
                    respond_status(&mut connection, 500, "Internal Server Error", with_body)
                }
            }
        }
        Request::NotFound => respond_status(&mut connection, 404, "Not Found", true),
        Request::MethodNotAllowed => {
            respond_status(&mut connection, 405, "Method Not Allowed", true)
        }
        Request::Bad => respond_status(&mut connection, 400, "Bad Request", true),
    }
}

fn respond_file(
    connection: &mut TcpStream,
    name: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let content_type = content_type(name).unwrap_or("application/octet-stream");
    // Playlists change with every segment; segments never change once written.
    let cache = if name.ends_with(".m3u8") {
        "no-cache"
    } else {
        "max-age=3600"
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: {cache}\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
        body.len()
    );
    connection.write_all(head.as_bytes())?;
    if with_body {
        connection.write_all(body)?;
    }
    connection.flush()
}

fn respond_status(
    connection: &mut TcpStream,
    code: u16,
    reason: &str,
    with_body: bool,
) -> std::io::Result<()> {
    let body = format!("{code} {reason}\n");
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
        body.len()
    );
    connection.write_all(head.as_bytes())?;
    if with_body {
        connection.write_all(body.as_bytes())?;
    }
    connection.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hls_files_under_live_are_served() {
        let file = |name: &str| Request::File {
            name: name.into(),
            with_body: true,
            hold: None,
        };
        assert_eq!(
            parse_request_line("GET /live/master.m3u8 HTTP/1.1"),
            file("master.m3u8")
        );
        assert_eq!(
            parse_request_line("GET /live/media.m3u8?cache=12 HTTP/1.1"),
            file("media.m3u8")
        );
        assert_eq!(
            parse_request_line("HEAD /live/segment-000001.m4s HTTP/1.1"),
            Request::File {
                name: "segment-000001.m4s".into(),
                with_body: false,
                hold: None,
            }
        );
        for refused in [
            "GET /live/../secret.m3u8 HTTP/1.1",
            "GET /live/a/b/init.mp4 HTTP/1.1",
            "GET /live/720p/../../secret.m3u8 HTTP/1.1",
            "GET /live/segment-000002.m4s.tmp HTTP/1.1",
            "GET /live/.hidden.m3u8 HTTP/1.1",
            "GET /other/master.m3u8 HTTP/1.1",
            "GET /live/ HTTP/1.1",
        ] {
            assert_eq!(parse_request_line(refused), Request::NotFound, "{refused}");
        }
        assert_eq!(
            parse_request_line("GET /live/720p/segment-000003.m4s HTTP/1.1"),
            file("720p/segment-000003.m4s")
        );
        assert_eq!(
            parse_request_line("PUT /live/master.m3u8 HTTP/1.1"),
            Request::MethodNotAllowed
        );
        assert_eq!(parse_request_line("garbage"), Request::Bad);
    }

    #[test]
    fn blocking_reloads_are_read_from_the_query() {
        let held = |target: &str| match parse_request_line(&format!("GET {target} HTTP/1.1")) {
            Request::File { hold, .. } => Ok(hold),
            other => Err(other),
        };
        assert_eq!(
            held("/live/720p/media.m3u8?_HLS_msn=4&_HLS_part=2"),
            Ok(Some(Hold {
                msn: 4,
                part: Some(2)
            }))
        );
        assert_eq!(
            held("/live/media.m3u8?_HLS_msn=9"),
            Ok(Some(Hold { msn: 9, part: None }))
        );
        assert_eq!(held("/live/media.m3u8?_HLS_part=1"), Err(Request::Bad));
        assert_eq!(held("/live/media.m3u8?_HLS_msn=x"), Err(Request::Bad));
        assert_eq!(held("/live/segment-000001.m4s?_HLS_msn=x"), Ok(None));
    }

    #[test]
    fn a_live_playlist_holds_what_it_lists() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
                    #EXT-X-PART:DURATION=0.5,URI=\"segment-000008.0.m4s\"\n\
                    #EXTINF:2.0,\nsegment-000007.m4s\n\
                    #EXTINF:2.0,\nsegment-000008.m4s\n\
                    #EXT-X-PART:DURATION=0.5,URI=\"segment-000009.0.m4s\"\n\
                    #EXT-X-PART:DURATION=0.5,URI=\"segment-000009.1.m4s\"\n\
                    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"segment-000009.2.m4s\"\n";
        let position = LivePosition::read(text).unwrap();
        assert_eq!(position.next_msn, 9);
        assert_eq!(position.parts_of_next, 2);
        assert_eq!(position.hint.as_deref(), Some("segment-000009.2.m4s"));
        assert_eq!(position.target_duration, Duration::from_secs(2));
        let hold = |msn, part| Hold { msn, part };
        assert!(position.holds(hold(8, None)));
        assert!(position.holds(hold(9, Some(1))));
        assert!(!position.holds(hold(9, Some(2))));
        assert!(!position.holds(hold(9, None)));
        assert!(!position.too_far(hold(11, Some(0))));
        assert!(position.too_far(hold(12, None)));
        let ended = LivePosition::read(&format!("{text}#EXT-X-ENDLIST\n")).unwrap();
        assert!(ended.holds(hold(10, None)));
    }
}
