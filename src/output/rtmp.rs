//! Tally's own RTMP publisher, for enhanced RTMP (HEVC and AV1): FFmpeg 5.1's RTMP client
//! cannot list the codecs in the connect command (`fourCcList`, as the enhanced RTMP
//! specification asks), so this client does the whole exchange: the handshake, `connect`
//! with the codec list, `createStream`, `publish`, then each FLV tag ([`super::flv`]) as one
//! message. RTMPS is the same over TLS (rustls, checked against the system's certificate
//! authorities or the ones given). H.264 keeps going through FFmpeg's client.
//!
//! One blocking connection per call, with the I/O timeout on every read and write. What the
//! server sends while Tally publishes (acknowledgement windows, pings, a status that says the
//! publish was stopped) is read between messages without blocking.

use super::amf::{Amf, AmfError};
use super::destination::{Endpoint, Protocol};
use super::flv::Tag;
use super::net::{NetError, Transport};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Where a publish goes, taken apart from an `rtmp://` or `rtmps://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishTarget {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// Every path segment but the last (`live`, or `app/instance`).
    pub app: String,
    /// The last segment, with the query if there is one.
    pub stream_key: String,
    /// The URL of the application, as `connect` names it.
    pub tc_url: String,
}

impl PublishTarget {
    /// `None` for SRT, or for a URL that [`super::destination`] would not have let through.
    pub fn from_endpoint(endpoint: &Endpoint) -> Option<Self> {
        let tls = match endpoint.protocol {
            Protocol::Rtmp => false,
            Protocol::Rtmps => true,
            Protocol::Srt | Protocol::Hls => return None,
        };
        let (scheme, rest) = endpoint.url().split_once("://")?;
        let (authority, path) = rest.split_at(rest.find('/')?);
        let (host, port) = split_host_port(authority, if tls { 443 } else { 1935 })?;
        let path = path.trim_start_matches('/');
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let (app, key) = path.trim_end_matches('/').rsplit_once('/')?;
        if app.is_empty() || key.is_empty() {
            return None;
        }
        let stream_key = match query {
            Some(query) => format!("{key}?{query}"),
            None => key.to_string(),
        };
        Some(Self {
            host,
            port,
            tls,
            app: app.to_string(),
            stream_key,
            tc_url: format!("{scheme}://{authority}/{app}"),
        })
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None => default_port,
        };
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), default_port)),
    }
}

/// What a publish needs besides the target.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// A read or write that makes no progress for this long fails the connection.
    pub io_timeout: Duration,
    /// Certificate authorities to check an RTMPS server against, instead of the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// The codecs announced in `connect` (`fourCcList`).
    pub fourcc_list: Vec<[u8; 4]>,
}

/// Where in the exchange something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connecting,
    Handshake,
    Connect,
    CreateStream,
    Publish,
    Sending,
    Closing,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Connecting => "while connecting",
            Step::Handshake => "during the RTMP handshake",
            Step::Connect => "after `connect`",
            Step::CreateStream => "after `createStream`",
            Step::Publish => "after `publish`",
            Step::Sending => "while sending",
            Step::Closing => "while closing",
        })
    }
}

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RtmpError {
    /// Finding, reaching or securing the server, as `net` says it.
    #[error(transparent)]
    Net(NetError),
    #[error("{kind} {step}")]
    Io { step: Step, kind: io::ErrorKind },
    #[error("no answer {step} within {seconds} s", seconds = timeout.as_secs_f64())]
    TimedOut { step: Step, timeout: Duration },
    #[error("the server closed the connection {step}")]
    Closed { step: Step },
    #[error(
        "the server refused `{command}`: {code}{}",
        description_suffix(description)
    )]
    Refused {
        command: &'static str,
        code: String,
        description: String,
    },
    #[error("the server's reply {step} is not RTMP Tally can read: {problem}")]
    Protocol {
        step: Step,
        problem: ProtocolProblem,
    },
}

fn description_suffix(description: &str) -> String {
    if description.is_empty() {
        String::new()
    } else {
        format!(" ({description})")
    }
}

/// What was wrong with a reply that is not RTMP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolProblem {
    #[error("the handshake is for RTMP version {0}, not 3")]
    Version(u8),
    #[error("a message of {0} bytes, larger than any reply")]
    TooLarge(usize),
    #[error("a chunk size of 0")]
    ZeroChunkSize,
    #[error("{0}")]
    Amf(AmfError),
    #[error("`createStream` answered without a stream id")]
    NoStreamId,
}

impl RtmpError {
    fn from_net(error: NetError, timeout: Duration) -> Self {
        // Connecting is one step of the session: said the way the later steps' failures are.
        match error {
            NetError::Connect { kind } => RtmpError::Io {
                step: Step::Connecting,
                kind,
            },
            NetError::ConnectTimedOut { .. } => RtmpError::TimedOut {
                step: Step::Connecting,
                timeout,
            },
            other => RtmpError::Net(other),
        }
    }

    fn from_io(step: Step, timeout: Duration, error: io::Error) -> Self {
        if let Some(tls) = NetError::tls_cause(&error) {
            return RtmpError::Net(tls);
        }
        match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                RtmpError::TimedOut { step, timeout }
            }
            io::ErrorKind::UnexpectedEof => RtmpError::Closed { step },
            kind => RtmpError::Io { step, kind },
        }
    }
}

const HANDSHAKE_SIZE: usize = 1536;
/// Tally's outgoing chunk size: large chunks, few headers.
const OUT_CHUNK_SIZE: usize = 4096;
/// Replies are small; a message larger than this from the server is not a reply.
const MAX_INCOMING_MESSAGE: usize = 1 << 20;

const MSG_SET_CHUNK_SIZE: u8 = 1;
const MSG_ABORT: u8 = 2;
const MSG_ACKNOWLEDGEMENT: u8 = 3;
const MSG_USER_CONTROL: u8 = 4;
const MSG_WINDOW_ACK_SIZE: u8 = 5;
const MSG_SET_PEER_BANDWIDTH: u8 = 6;
const MSG_DATA_AMF0: u8 = 18;
const MSG_COMMAND_AMF3: u8 = 17;
const MSG_COMMAND_AMF0: u8 = 20;

const USER_CONTROL_PING_REQUEST: u16 = 6;
const USER_CONTROL_PING_RESPONSE: u16 = 7;

const CHUNK_STREAM_CONTROL: u32 = 2;
const CHUNK_STREAM_COMMAND: u32 = 3;
const CHUNK_STREAM_AUDIO: u32 = 4;
const CHUNK_STREAM_DATA: u32 = 5;
const CHUNK_STREAM_VIDEO: u32 = 6;

/// One message as the server sent it.
#[derive(Debug, Clone, PartialEq)]
struct Message {
    chunk_stream: u32,
    type_id: u8,
    timestamp: u32,
    body: Vec<u8>,
}

/// The header state one incoming chunk stream carries from chunk to chunk.
#[derive(Debug, Clone, Copy, Default)]
struct ChunkHeader {
    timestamp: u32,
    delta: u32,
    length: usize,
    type_id: u8,
    extended: bool,
}

/// Reassembles the server's chunks into messages.
#[derive(Default)]
struct ChunkReader {
    buffered: Vec<u8>,
    chunk_size: usize,
    headers: HashMap<u32, ChunkHeader>,
    partial: HashMap<u32, Vec<u8>>,
}

impl ChunkReader {
    fn new() -> Self {
        Self {
            chunk_size: 128,
            ..Self::default()
        }
    }

    /// The next whole message in what has been read, if there is one.
    fn next_message(&mut self) -> Result<Option<Message>, ProtocolProblem> {
        loop {
            let Some((used, message)) = self.read_chunk()? else {
                return Ok(None);
            };
            self.buffered.drain(..used);
            if let Some(message) = message {
                return Ok(Some(message));
            }
        }
    }

    /// Parses one chunk from the front of the buffer: how many bytes it took, and the message
    /// it completed. `None` (nothing changed) while the chunk has not all arrived.
    fn read_chunk(&mut self) -> Result<Option<(usize, Option<Message>)>, ProtocolProblem> {
        let bytes = &self.buffered;
        let Some(&first) = bytes.first() else {
            return Ok(None);
        };
        let format = first >> 6;
        let (chunk_stream, mut at) = match first & 0x3f {
            0 => match bytes.get(1) {
                Some(&low) => (64 + u32::from(low), 2),
                None => return Ok(None),
            },
            1 => match (bytes.get(1), bytes.get(2)) {
                (Some(&low), Some(&high)) => (64 + u32::from(low) + 256 * u32::from(high), 3),
                _ => return Ok(None),
            },
            id => (u32::from(id), 1),
        };
        let header_size = [11, 7, 3, 0][usize::from(format)];
        if bytes.len() < at + header_size {
            return Ok(None);
        }
        let field = &bytes[at..at + header_size];
        let u24 = |i: usize| u32::from_be_bytes([0, field[i], field[i + 1], field[i + 2]]);
        let previous = self.headers.get(&chunk_stream).copied().unwrap_or_default();
        let mut header = previous;
        let time_field = (format < 3).then(|| u24(0));
        if format <= 1 {
            header.length = u24(3) as usize;
            header.type_id = field[6];
        }
        at += header_size;
        header.extended = match time_field {
            Some(value) => value == 0x00ff_ffff,
            None => previous.extended,
        };
        let time = if header.extended {
            let Some(extended) = bytes.get(at..at + 4) else {
                return Ok(None);
            };
            at += 4;
            u32::from_be_bytes([extended[0], extended[1], extended[2], extended[3]])
        } else {
            time_field.unwrap_or(previous.delta)
        };
        if header.length > MAX_INCOMING_MESSAGE {
            return Err(ProtocolProblem::TooLarge(header.length));
        }
        let received = self.partial.get(&chunk_stream).map_or(0, Vec::len);
        let starts_message = received == 0;
        let size = self
            .chunk_size
            .min(header.length - received.min(header.length));
        if bytes.len() < at + size {
            return Ok(None);
        }
        if starts_message {
            match format {
                0 => header.timestamp = time,
                1 | 2 => {
                    header.delta = time;
                    header.timestamp = previous.timestamp.wrapping_add(time);
                }
                _ => header.timestamp = previous.timestamp.wrapping_add(previous.delta),
            }
        }
        let data = bytes[at..at + size].to_vec();
        self.headers.insert(chunk_stream, header);
        let partial = self.partial.entry(chunk_stream).or_default();
        partial.extend_from_slice(&data);
        let message = (partial.len() >= header.length).then(|| Message {
            chunk_stream,
            type_id: header.type_id,
            timestamp: header.timestamp,
            body: std::mem::take(partial),
        });
        Ok(Some((at + size, message)))
    }
}

/// A command the server sent: its name, transaction number and arguments.
struct Command {
    name: String,
    transaction: f64,
    arguments: Vec<Amf>,
}

impl Command {
    fn parse(message: &Message) -> Result<Option<Self>, ProtocolProblem> {
        let body = match message.type_id {
            MSG_COMMAND_AMF0 | MSG_DATA_AMF0 => &message.body[..],
            // An AMF3 command starts with a format byte, then AMF0 values.
            MSG_COMMAND_AMF3 => message.body.get(1..).unwrap_or(&[]),
            _ => return Ok(None),
        };
        let mut values = Amf::read_all(body)
            .map_err(ProtocolProblem::Amf)?
            .into_iter();
        let Some(Amf::String(name)) = values.next() else {
            return Ok(None);
        };
        let transaction = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
        Ok(Some(Self {
            name,
            transaction,
            arguments: values.collect(),
        }))
    }

    /// The status object of `_error` or `onStatus` (the first object argument).
    fn info(&self) -> Option<&Amf> {
        self.arguments
            .iter()
            .find(|value| matches!(value, Amf::Object(_)))
    }

    fn code(&self) -> String {
        self.info_field("code")
    }

    fn info_field(&self, key: &str) -> String {
        self.info()
            .and_then(|info| info.get(key))
            .and_then(Amf::as_str)
            .unwrap_or("")
            .to_string()
    }

    fn is_error_status(&self) -> bool {
        self.name == "onStatus" && self.info_field("level") == "error"
    }

    fn refusal(&self, command: &'static str) -> RtmpError {
        RtmpError::Refused {
            command,
            code: match self.code() {
                code if code.is_empty() => self.name.clone(),
                code => code,
            },
            description: self.info_field("description"),
        }
    }
}

/// A connection that publishes one stream.
pub struct Publisher {
    transport: Transport,
    io_timeout: Duration,
    reader: ChunkReader,
    stream_id: u32,
    /// Acknowledgements the server asked for: after this many bytes read, say how many.
    ack_window: u32,
    bytes_read: u64,
    bytes_acknowledged: u64,
}

impl Publisher {
    /// Connects, announces the codecs, and starts publishing `target`'s stream key.
    pub fn connect(target: &PublishTarget, options: &PublishOptions) -> Result<Self, RtmpError> {
        let timeout = options.io_timeout;
        let transport = Transport::open(
            &target.host,
            target.port,
            target.tls,
            options.tls_ca_file.as_deref(),
            timeout,
        )
        .map_err(|error| RtmpError::from_net(error, timeout))?;
        let mut publisher = Self {
            transport,
            io_timeout: timeout,
            reader: ChunkReader::new(),
            stream_id: 0,
            ack_window: 0,
            bytes_read: 0,
            bytes_acknowledged: 0,
        };
        publisher.handshake()?;
        publisher.send_message(
            CHUNK_STREAM_CONTROL,
            MSG_SET_CHUNK_SIZE,
            0,
            0,
            &(OUT_CHUNK_SIZE as u32).to_be_bytes(),
            Step::Connect,
        )?;
        let fourccs = options
            .fourcc_list
            .iter()
            .map(|fourcc| Amf::String(String::from_utf8_lossy(fourcc).into_owned()))
            .collect();
        publisher.send_command(
            "connect",
            1.0,
            &[Amf::object([
                ("app", Amf::string(&target.app)),
                ("type", Amf::string("nonprivate")),
                ("flashVer", Amf::string("FMLE/3.0 (compatible; Tally)")),
                ("tcUrl", Amf::string(&target.tc_url)),
                ("fourCcList", Amf::StrictArray(fourccs)),
            ])],
            0,
            Step::Connect,
        )?;
        publisher.wait_for_result(1.0, "connect", Step::Connect)?;
        let key = Amf::string(&target.stream_key);
        // Servers that expect a publisher to be an encoder like FMLE look for these two; the
        // others ignore them (or answer `_error`, which is ignored too).
        publisher.send_command(
            "releaseStream",
            2.0,
            &[Amf::Null, key.clone()],
            0,
            Step::Connect,
        )?;
        publisher.send_command(
            "FCPublish",
            3.0,
            &[Amf::Null, key.clone()],
            0,
            Step::Connect,
        )?;
        publisher.send_command("createStream", 4.0, &[Amf::Null], 0, Step::CreateStream)?;
        let reply = publisher.wait_for_result(4.0, "createStream", Step::CreateStream)?;
        let stream_id =
            reply
                .arguments
                .iter()
                .find_map(Amf::as_number)
                .ok_or(RtmpError::Protocol {
                    step: Step::CreateStream,
                    problem: ProtocolProblem::NoStreamId,
                })?;
        publisher.stream_id = stream_id as u32;
        publisher.send_command(
            "publish",
            5.0,
            &[Amf::Null, key, Amf::string("live")],
            publisher.stream_id,
            Step::Publish,
        )?;
        publisher.wait_for_publish_start()?;
        Ok(publisher)
    }

    /// Sends one tag as a message on the published stream, after reading (without waiting)
    /// what the server has sent meanwhile.
    pub fn send(&mut self, tag: &Tag) -> Result<(), RtmpError> {
        self.read_pending()?;
        let chunk_stream = match tag.kind {
            super::flv::TAG_AUDIO => CHUNK_STREAM_AUDIO,
            super::flv::TAG_VIDEO => CHUNK_STREAM_VIDEO,
            _ => CHUNK_STREAM_DATA,
        };
        self.send_message(
            chunk_stream,
            tag.kind,
            self.stream_id,
            tag.timestamp_ms,
            &tag.body,
            Step::Sending,
        )
    }

    /// Ends the publish and closes the connection.
    pub fn close(mut self) -> Result<(), RtmpError> {
        let key_less = [Amf::Null, Amf::Number(f64::from(self.stream_id))];
        self.send_command("deleteStream", 6.0, &key_less, 0, Step::Closing)?;
        if let Transport::Tls(stream) = &mut self.transport {
            stream.conn.send_close_notify();
            stream
                .flush()
                .map_err(|error| RtmpError::from_io(Step::Closing, self.io_timeout, error))?;
        }
        self.transport
            .socket()
            .shutdown(std::net::Shutdown::Both)
            .or_else(|error| match error.kind() {
                // The server may close first once the stream is deleted.
                io::ErrorKind::NotConnected => Ok(()),
                _ => Err(RtmpError::from_io(Step::Closing, self.io_timeout, error)),
            })
    }

    fn io_error(&self, step: Step) -> impl Fn(io::Error) -> RtmpError {
        let timeout = self.io_timeout;
        move |error| RtmpError::from_io(step, timeout, error)
    }

    /// The simple handshake: C0+C1, S0+S1+S2 back, then C2 echoing S1.
    fn handshake(&mut self) -> Result<(), RtmpError> {
        let step = Step::Handshake;
        let mut hello = vec![3u8];
        hello.extend_from_slice(&[0; 8]); // time and zero
        let mut random = [0u8; HANDSHAKE_SIZE - 8];
        getrandom::fill(&mut random).map_err(|_| RtmpError::Io {
            step,
            kind: io::ErrorKind::Other,
        })?;
        hello.extend_from_slice(&random);
        self.transport
            .write_all(&hello)
            .map_err(self.io_error(step))?;
        self.transport.flush().map_err(self.io_error(step))?;
        let mut reply = vec![0u8; 1 + 2 * HANDSHAKE_SIZE];
        self.transport
            .read_exact(&mut reply)
            .map_err(self.io_error(step))?;
        if reply[0] != 3 {
            return Err(RtmpError::Protocol {
                step,
                problem: ProtocolProblem::Version(reply[0]),
            });
        }
        self.transport
            .write_all(&reply[1..=HANDSHAKE_SIZE])
            .map_err(self.io_error(step))?;
        self.transport.flush().map_err(self.io_error(step))
    }

    fn send_command(
        &mut self,
        name: &str,
        transaction: f64,
        arguments: &[Amf],
        stream_id: u32,
        step: Step,
    ) -> Result<(), RtmpError> {
        let mut body = Vec::new();
        Amf::string(name).write(&mut body);
        Amf::Number(transaction).write(&mut body);
        for argument in arguments {
            argument.write(&mut body);
        }
        self.send_message(
            CHUNK_STREAM_COMMAND,
            MSG_COMMAND_AMF0,
            stream_id,
            0,
            &body,
            step,
        )
    }

    /// Writes one message in chunks: a full header first, then continuation headers.
    fn send_message(
        &mut self,
        chunk_stream: u32,
        type_id: u8,
        stream_id: u32,
        timestamp: u32,
        body: &[u8],
        step: Step,
    ) -> Result<(), RtmpError> {
        let bytes = chunk_message(chunk_stream, type_id, stream_id, timestamp, body);
        self.transport
            .write_all(&bytes)
            .map_err(self.io_error(step))?;
        self.transport.flush().map_err(self.io_error(step))
    }

    /// Reads until a whole message has arrived (blocking, with the I/O timeout).
    fn read_message(&mut self, step: Step) -> Result<Message, RtmpError> {
        loop {
            if let Some(message) = self.next_buffered(step)? {
                return Ok(message);
            }
            let mut buffer = [0u8; 4096];
            let read = self
                .transport
                .read(&mut buffer)
                .map_err(self.io_error(step))?;
            if read == 0 {
                return Err(RtmpError::Closed { step });
            }
            self.on_bytes_read(&buffer[..read], step)?;
        }
    }

    /// The next buffered message that is not a control message (those are handled here).
    fn next_buffered(&mut self, step: Step) -> Result<Option<Message>, RtmpError> {
        while let Some(message) = self
            .reader
            .next_message()
            .map_err(|problem| RtmpError::Protocol { step, problem })?
        {
            if !self.handle_control(&message, step)? {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }

    fn on_bytes_read(&mut self, bytes: &[u8], step: Step) -> Result<(), RtmpError> {
        self.reader.buffered.extend_from_slice(bytes);
        self.bytes_read += bytes.len() as u64;
        if self.ack_window > 0
            && self.bytes_read - self.bytes_acknowledged >= u64::from(self.ack_window)
        {
            self.bytes_acknowledged = self.bytes_read;
            let sequence = (self.bytes_read as u32).to_be_bytes();
            self.send_message(
                CHUNK_STREAM_CONTROL,
                MSG_ACKNOWLEDGEMENT,
                0,
                0,
                &sequence,
                step,
            )?;
        }
        Ok(())
    }

    /// Handles a protocol-control or user-control message; false for anything else.
    fn handle_control(&mut self, message: &Message, step: Step) -> Result<bool, RtmpError> {
        let number = |body: &[u8]| {
            body.get(..4)
                .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        };
        match message.type_id {
            MSG_SET_CHUNK_SIZE => {
                let size = number(&message.body) & 0x7fff_ffff;
                if size == 0 {
                    return Err(RtmpError::Protocol {
                        step,
                        problem: ProtocolProblem::ZeroChunkSize,
                    });
                }
                self.reader.chunk_size = size as usize;
            }
            MSG_ABORT => {
                self.reader.partial.remove(&number(&message.body));
            }
            MSG_ACKNOWLEDGEMENT => {}
            MSG_USER_CONTROL => {
                let event = message
                    .body
                    .get(..2)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                if event == USER_CONTROL_PING_REQUEST {
                    let mut pong = USER_CONTROL_PING_RESPONSE.to_be_bytes().to_vec();
                    pong.extend_from_slice(message.body.get(2..6).unwrap_or(&[0; 4]));
                    self.send_message(CHUNK_STREAM_CONTROL, MSG_USER_CONTROL, 0, 0, &pong, step)?;
                }
            }
            MSG_WINDOW_ACK_SIZE => self.ack_window = number(&message.body),
            MSG_SET_PEER_BANDWIDTH => {
                // The server limits what Tally sends before an acknowledgement; Tally says it
                // heard by announcing the same window for what it receives.
                let window = number(&message.body).to_be_bytes();
                self.send_message(
                    CHUNK_STREAM_CONTROL,
                    MSG_WINDOW_ACK_SIZE,
                    0,
                    0,
                    &window,
                    step,
                )?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Waits for `_result` (or `_error`) of the command sent as `transaction`.
    fn wait_for_result(
        &mut self,
        transaction: f64,
        command: &'static str,
        step: Step,
    ) -> Result<Command, RtmpError> {
        loop {
            let message = self.read_message(step)?;
            let Some(reply) = Command::parse(&message)
                .map_err(|problem| RtmpError::Protocol { step, problem })?
            else {
                continue;
            };
            if reply.is_error_status() {
                return Err(reply.refusal(command));
            }
            if reply.transaction != transaction {
                continue;
            }
            match reply.name.as_str() {
                "_result" => return Ok(reply),
                "_error" => return Err(reply.refusal(command)),
                _ => {}
            }
        }
    }

    fn wait_for_publish_start(&mut self) -> Result<(), RtmpError> {
        loop {
            let message = self.read_message(Step::Publish)?;
            let reply = Command::parse(&message).map_err(|problem| RtmpError::Protocol {
                step: Step::Publish,
                problem,
            })?;
            match reply {
                Some(reply) if reply.is_error_status() || reply.name == "_error" => {
                    return Err(reply.refusal("publish"));
                }
                Some(reply)
                    if reply.name == "onStatus" && reply.code() == "NetStream.Publish.Start" =>
                {
                    return Ok(());
                }
                _ => {}
            }
        }
    }

    /// Reads what the server has sent without waiting: control messages are answered, and a
    /// status that ends the publish is an error.
    fn read_pending(&mut self) -> Result<(), RtmpError> {
        let step = Step::Sending;
        loop {
            self.transport
                .socket()
                .set_nonblocking(true)
                .map_err(self.io_error(step))?;
            let mut buffer = [0u8; 4096];
            let read = self.transport.read(&mut buffer);
            self.transport
                .socket()
                .set_nonblocking(false)
                .map_err(self.io_error(step))?;
            match read {
                Ok(0) => return Err(RtmpError::Closed { step }),
                Ok(count) => self.on_bytes_read(&buffer[..count], step)?,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(RtmpError::from_io(step, self.io_timeout, error)),
            }
        }
        while let Some(message) = self.next_buffered(step)? {
            let command = Command::parse(&message)
                .map_err(|problem| RtmpError::Protocol { step, problem })?;
            if let Some(command) = command.filter(Command::is_error_status) {
                return Err(command.refusal("publish"));
            }
        }
        Ok(())
    }
}

/// One message as chunks: a type-0 header on the first, type-3 headers on the rest.
fn chunk_message(
    chunk_stream: u32,
    type_id: u8,
    stream_id: u32,
    timestamp: u32,
    body: &[u8],
) -> Vec<u8> {
    let extended = timestamp >= 0x00ff_ffff;
    let chunk_count = body.len().div_ceil(OUT_CHUNK_SIZE).max(1);
    let mut bytes = Vec::with_capacity(body.len() + 16 + chunk_count * 5);
    // Tally's chunk streams are all under 64: one-byte basic headers.
    bytes.push(chunk_stream as u8 & 0x3f);
    let time_field = if extended { 0x00ff_ffff } else { timestamp };
    bytes.extend_from_slice(&time_field.to_be_bytes()[1..]);
    bytes.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    bytes.push(type_id);
    bytes.extend_from_slice(&stream_id.to_le_bytes());
    for (index, chunk) in body.chunks(OUT_CHUNK_SIZE).enumerate() {
        if index > 0 {
            bytes.push(0xc0 | (chunk_stream as u8 & 0x3f));
        }
        if extended {
            bytes.extend_from_slice(&timestamp.to_be_bytes());
        }
        bytes.extend_from_slice(chunk);
    }
    if body.is_empty() && extended {
        bytes.extend_from_slice(&timestamp.to_be_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::destination::parse_endpoint;

    fn target(url: &str) -> PublishTarget {
        PublishTarget::from_endpoint(&parse_endpoint(url).unwrap()).unwrap()
    }

    #[test]
    fn a_url_splits_into_host_port_app_and_key() {
        let plain = target("rtmp://127.0.0.1:1936/live/key");
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.tls),
            ("127.0.0.1", 1936, false)
        );
        assert_eq!(
            (plain.app.as_str(), plain.stream_key.as_str()),
            ("live", "key")
        );
        assert_eq!(plain.tc_url, "rtmp://127.0.0.1:1936/live");
        let secure = target("rtmps://ingest.example/app/inst/abc?token=1");
        assert_eq!((secure.port, secure.tls), (443, true));
        assert_eq!(secure.app, "app/inst");
        assert_eq!(secure.stream_key, "abc?token=1");
        assert_eq!(secure.tc_url, "rtmps://ingest.example/app/inst");
        assert_eq!(target("rtmp://host/live/k").port, 1935);
    }

    #[test]
    fn a_long_message_goes_in_chunks_with_continuation_headers() {
        let body = vec![7u8; OUT_CHUNK_SIZE + 10];
        let bytes = chunk_message(6, 9, 1, 40, &body);
        assert_eq!(bytes[0], 6, "type 0 header on chunk stream 6");
        assert_eq!(&bytes[1..4], &[0, 0, 40]);
        assert_eq!(
            &bytes[4..7],
            &((OUT_CHUNK_SIZE + 10) as u32).to_be_bytes()[1..]
        );
        assert_eq!(bytes[7], 9);
        assert_eq!(&bytes[8..12], &[1, 0, 0, 0], "stream id, little-endian");
        assert_eq!(bytes[12 + OUT_CHUNK_SIZE], 0xc6, "type 3 continuation");
        assert_eq!(bytes.len(), 12 + OUT_CHUNK_SIZE + 1 + 10);
    }

    #[test]
    fn chunks_reassemble_into_messages_whatever_the_header_types() {
        let mut reader = ChunkReader::new();
        reader.chunk_size = 4;
        // A 6-byte command on chunk stream 3 (type 0 then type 3), then a type-2 header that
        // reuses its length and type with a time delta.
        let mut bytes = vec![0x03, 0, 0, 10, 0, 0, 6, 20, 0, 0, 0, 0, 1, 2, 3, 4];
        bytes.extend_from_slice(&[0xc3, 5, 6]);
        bytes.extend_from_slice(&[0x83, 0, 0, 5, 9, 9, 9, 9, 0xc3, 9, 9]);
        for (index, byte) in bytes.iter().enumerate() {
            reader.buffered.push(*byte);
            let message = reader.next_message().unwrap();
            match index {
                18 => {
                    let message = message.expect("the first message");
                    assert_eq!(message.body, [1, 2, 3, 4, 5, 6]);
                    assert_eq!((message.type_id, message.timestamp), (20, 10));
                }
                29 => {
                    let message = message.expect("the second message");
                    assert_eq!(message.body, [9; 6]);
                    assert_eq!(message.timestamp, 15);
                }
                _ => assert!(message.is_none(), "a message after byte {index}"),
            }
        }
    }

    #[test]
    fn an_extended_timestamp_follows_the_header_of_every_chunk() {
        let body = vec![1u8; OUT_CHUNK_SIZE + 1];
        let bytes = chunk_message(4, 8, 1, 0x0100_0000, &body);
        assert_eq!(&bytes[1..4], &[0xff, 0xff, 0xff]);
        assert_eq!(&bytes[12..16], &[1, 0, 0, 0]);
        let second = 16 + OUT_CHUNK_SIZE;
        assert_eq!(bytes[second], 0xc4);
        assert_eq!(&bytes[second + 1..second + 5], &[1, 0, 0, 0]);
        let mut reader = ChunkReader::new();
        reader.chunk_size = OUT_CHUNK_SIZE;
        reader.buffered = bytes;
        let message = reader.next_message().unwrap().unwrap();
        assert_eq!(
            (message.timestamp, message.body.len()),
            (0x0100_0000, body.len())
        );
    }

    #[test]
    fn an_oversized_reply_is_refused_before_it_is_read() {
        let mut reader = ChunkReader::new();
        reader.buffered = vec![0x03, 0, 0, 0, 0x7f, 0xff, 0xff, 20, 0, 0, 0, 0];
        assert!(matches!(
            reader.next_message(),
            Err(ProtocolProblem::TooLarge(_))
        ));
    }
}
