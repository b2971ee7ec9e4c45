//! One client's connection: the WebSocket handshake (with the subprotocol that picks JSON or
//! MessagePack), Hello and Identify with the password's challenge, then requests and batches
//! handed to the controller's thread as [`Call`]s, and the events the client subscribed to.
//! Each connection has its own thread, which reads with a short timeout so it can also send
//! the events queued for it.

use super::protocol::{
    self, intent, op, Challenge, CloseCode, Encoded, Encoding, Frame, Status, RPC_VERSION,
};
use super::requests::{Failure, SessionCounts};
use super::{Call, Shared};
use serde_json::{json, Map, Value};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::handshake::server::{Request as Upgrade, Response as Accepted};
use tungstenite::protocol::frame::coding::CloseCode as WireCloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// How long a connection waits for the controller's thread to answer a request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a connection looks for events to send while no message arrives.
const POLL: Duration = Duration::from_millis(10);
/// Events waiting to be sent to one client; a client that leaves more unread is cut off (it
/// would miss changes of state otherwise), except that meter readings are simply skipped.
pub(super) const OUTBOX_EVENTS: usize = 4096;
/// How long a wrong password waits before its connection is closed, so passwords cannot be
/// tried quickly.
const AUTHENTICATION_FAILURE_DELAY: Duration = Duration::from_secs(1);
/// Messages a client may send a second, on average, and in a burst.
const MESSAGES_PER_SECOND: f64 = 500.0;
const MESSAGE_BURST: f64 = 1000.0;
/// The longest Sleep a batch may ask for, as OBS allows.
const MAX_SLEEP_MILLIS: u64 = 50_000;
const MAX_SLEEP_FRAMES: u64 = 10_000;

/// What the event thread needs of a connection to send it events.
pub(super) struct ClientHandle {
    pub identified: Arc<AtomicBool>,
    pub subscriptions: Arc<AtomicU32>,
    pub outbox: crossbeam_channel::Sender<Value>,
    /// Set when the client left a change of state unsent for lack of room: it is closed.
    pub fell_behind: Arc<AtomicBool>,
}

/// The WebSocket handshake's answer: the subprotocol the client offered that picks the
/// encoding (JSON when it offered neither).
struct ChooseEncoding<'a>(&'a mut Encoding);

impl tungstenite::handshake::server::Callback for ChooseEncoding<'_> {
    fn on_request(
        self,
        upgrade: &Upgrade,
        mut accepted: Accepted,
    ) -> Result<Accepted, tungstenite::handshake::server::ErrorResponse> {
        let offered = upgrade
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|value| value.to_str().ok());
        *self.0 = Encoding::choose(offered);
        if offered.is_some() {
            if let Ok(value) = self.0.protocol_name().parse() {
                accepted
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", value);
            }
        }
        Ok(accepted)
    }
}

/// The largest message and frame a client may send: requests are small, and a huge one is an
/// attack or a mistake (the connection closes with "message too big").
const MAX_MESSAGE_BYTES: usize = 1 << 20;

fn limits() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// Counts a connection among those served while it lives.
struct SessionCount<'a>(&'a Shared);

impl<'a> SessionCount<'a> {
    fn enter(shared: &'a Shared) -> Self {
        shared.sessions.fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for SessionCount<'_> {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a connection ends: the close code and the reason sent with it.
struct Closing(CloseCode, String);

/// How many messages a client may send: a bucket of `MESSAGE_BURST` that refills at
/// `MESSAGES_PER_SECOND`. Time is an argument, so it is tested without waiting.
#[derive(Debug, Clone, Copy)]
pub(super) struct RateLimit {
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    pub(super) fn new(now: Instant) -> Self {
        Self {
            tokens: MESSAGE_BURST,
            at: now,
        }
    }

    /// Whether one more message arriving at `now` is allowed.
    pub(super) fn allow(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * MESSAGES_PER_SECOND).min(MESSAGE_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Connection {
    socket: WebSocket<TcpStream>,
    rate: RateLimit,
    encoding: Encoding,
    shared: Arc<Shared>,
    identified: Arc<AtomicBool>,
    subscriptions: Arc<AtomicU32>,
    fell_behind: Arc<AtomicBool>,
    challenge: Option<Challenge>,
    counts: SessionCounts,
    peer: String,
}

/// Serves one client until it leaves, breaks the protocol, or the server stops.
pub(super) fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "a client".to_string(), |address| address.to_string());
    let mut encoding = Encoding::Json;
    let handshake =
        tungstenite::accept_hdr_with_config(stream, ChooseEncoding(&mut encoding), Some(limits()));
    let socket = match handshake {
        Ok(socket) => socket,
        Err(error) => {
            tracing::info!("remote control: {peer} did not open a WebSocket: {error}");
            return;
        }
    };
    let _counted = SessionCount::enter(&shared);
    if shared.sessions.load(Ordering::Relaxed) > super::MAX_CLIENTS {
        let mut refused = socket;
        let reason = format!("Tally serves {} clients at most", super::MAX_CLIENTS);
        tracing::warn!("remote control: refused {peer}: {reason}");
        let frame = CloseFrame {
            code: WireCloseCode::from(CloseCode::TryAgainLater as u16),
            reason: reason.into(),
        };
        if let Err(error) = refused.close(Some(frame)).and_then(|()| refused.flush()) {
            tracing::debug!("remote control: refusing {peer}: {error}");
        }
        return;
    }
    if let Err(error) = socket.get_ref().set_read_timeout(Some(POLL)) {
        tracing::warn!("remote control: {peer}: cannot poll the connection: {error}");
        return;
    }
    let challenge = match shared.password.as_ref().map(|_| Challenge::random()) {
        None => None,
        Some(Ok(challenge)) => Some(challenge),
        Some(Err(error)) => {
            tracing::error!("remote control: no randomness for a password challenge: {error}");
            return;
        }
    };
    let (outbox, events) = crossbeam_channel::bounded(OUTBOX_EVENTS);
    let mut connection = Connection {
        socket,
        encoding,
        shared: shared.clone(),
        rate: RateLimit::new(Instant::now()),
        identified: Arc::new(AtomicBool::new(false)),
        subscriptions: Arc::new(AtomicU32::new(intent::ALL)),
        fell_behind: Arc::new(AtomicBool::new(false)),
        challenge,
        counts: SessionCounts::default(),
        peer: peer.clone(),
    };
    shared.add_client(ClientHandle {
        identified: connection.identified.clone(),
        subscriptions: connection.subscriptions.clone(),
        outbox,
        fell_behind: connection.fell_behind.clone(),
    });
    tracing::info!("remote control: {peer} connected ({encoding:?})");
    let ending = connection.run(&events);
    match ending {
        Ok(()) => tracing::info!("remote control: {peer} left"),
        Err(Closing(code, reason)) => {
            tracing::info!("remote control: closing {peer}'s connection: {reason}");
            connection.close(code, &reason);
        }
    }
}

impl Connection {
    fn run(&mut self, events: &crossbeam_channel::Receiver<Value>) -> Result<(), Closing> {
        self.send(&self.hello())?;
        while !self.shared.stopping() {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    let message = self.decode(Frame::Text(text.as_str()))?;
                    self.handle(message)?;
                }
                Ok(Message::Binary(bytes)) => {
                    let message = self.decode(Frame::Binary(&bytes))?;
                    self.handle(message)?;
                }
                Ok(Message::Close(_)) => return Ok(()),
                Ok(_) => {}
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ok(())
                }
                Err(error) => {
                    tracing::info!("remote control: {}: {error}", self.peer);
                    return Ok(());
                }
            }
            for event in events.try_iter() {
                self.send(&event)?;
            }
            if self.fell_behind.load(Ordering::Relaxed) {
                return Err(Closing(
                    CloseCode::GoingAway,
                    format!("fell more than {OUTBOX_EVENTS} events behind; reconnect to catch up"),
                ));
            }
        }
        // What was queued before the stop (ExitStarted) goes out first.
        for event in events.try_iter() {
            self.send(&event)?;
        }
        Err(Closing(CloseCode::GoingAway, "Tally is stopping".into()))
    }

    fn hello(&self) -> Value {
        let mut data = json!({
            "obsStudioVersion": format!("Tally {}", env!("CARGO_PKG_VERSION")),
            "obsWebSocketVersion": protocol::OBS_WEBSOCKET_VERSION,
            "rpcVersion": RPC_VERSION,
        });
        if let Some(challenge) = &self.challenge {
            data["authentication"] =
                json!({"challenge": challenge.challenge, "salt": challenge.salt});
        }
        json!({"op": op::HELLO, "d": data})
    }

    fn decode(&mut self, frame: Frame<'_>) -> Result<Value, Closing> {
        self.counts.incoming += 1;
        if !self.rate.allow(Instant::now()) {
            return Err(Closing(
                CloseCode::PolicyViolation,
                format!("more than {MESSAGES_PER_SECOND} messages a second"),
            ));
        }
        protocol::decode(self.encoding, frame)
            .map_err(|why| Closing(CloseCode::MessageDecodeError, why))
    }

    fn send(&mut self, message: &Value) -> Result<(), Closing> {
        self.counts.outgoing += 1;
        let frame = match protocol::encode(self.encoding, message) {
            Encoded::Text(text) => Message::text(text),
            Encoded::Binary(bytes) => Message::binary(bytes),
        };
        match self.socket.send(frame) {
            Ok(()) => Ok(()),
            // The client is gone: nothing more to send or to close.
            Err(error) => {
                tracing::info!("remote control: {}: cannot send: {error}", self.peer);
                Err(Closing(CloseCode::GoingAway, "the connection broke".into()))
            }
        }
    }

    fn close(&mut self, code: CloseCode, reason: &str) {
        let frame = CloseFrame {
            code: WireCloseCode::from(code as u16),
            reason: reason.to_string().into(),
        };
        if let Err(error) = self.socket.close(Some(frame)) {
            tracing::debug!("remote control: {}: closing: {error}", self.peer);
            return;
        }
        // Let the close frame go out and the client answer it (or give up after a second).
        for _ in 0..100 {
            match self.socket.read() {
                Err(tungstenite::Error::Io(error))
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if let Err(error) = self.socket.flush() {
                        tracing::debug!("remote control: {}: closing: {error}", self.peer);
                    }
                }
                Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn handle(&mut self, message: Value) -> Result<(), Closing> {
        let Some(object) = message.as_object() else {
            return Err(Closing(
                CloseCode::MessageDecodeError,
                "a message is an object with `op` and `d`".into(),
            ));
        };
        let code = required_number(object, "op", "the message")?;
        let data = match object.get("d") {
            Some(Value::Object(data)) => data,
            Some(_) => {
                return Err(Closing(
                    CloseCode::InvalidDataFieldType,
                    "`d` must be an object".into(),
                ))
            }
            None => {
                return Err(Closing(
                    CloseCode::MissingDataField,
                    "the message has no `d`".into(),
                ))
            }
        };
        let identified = self.identified.load(Ordering::Relaxed);
        match code {
            op::IDENTIFY if identified => Err(Closing(
                CloseCode::AlreadyIdentified,
                "already identified: send Reidentify to change the subscriptions".into(),
            )),
            op::IDENTIFY => self.identify(data),
            _ if !identified => Err(Closing(
                CloseCode::NotIdentified,
                "identify first (op 1) before anything else".into(),
            )),
            op::REIDENTIFY => {
                self.subscribe(data)?;
                self.send(
                    &json!({"op": op::IDENTIFIED, "d": {"negotiatedRpcVersion": RPC_VERSION}}),
                )
            }
            op::REQUEST => {
                let response = self.request(data);
                self.send(&json!({"op": op::REQUEST_RESPONSE, "d": response}))
            }
            op::REQUEST_BATCH => {
                let response = self.batch(data);
                self.send(&json!({"op": op::REQUEST_BATCH_RESPONSE, "d": response}))
            }
            other => Err(Closing(
                CloseCode::UnknownOpCode,
                format!("op {other} is not one a client sends"),
            )),
        }
    }

    fn identify(&mut self, data: &Map<String, Value>) -> Result<(), Closing> {
        let version = required_number(data, "rpcVersion", "Identify")?;
        if version != RPC_VERSION {
            return Err(Closing(
                CloseCode::UnsupportedRpcVersion,
                format!("Tally speaks RPC version {RPC_VERSION}, not {version}"),
            ));
        }
        if let (Some(challenge), Some(password)) = (&self.challenge, &self.shared.password) {
            let answer = data.get("authentication").and_then(Value::as_str);
            if answer != Some(challenge.expected_answer(password).as_str()) {
                tracing::warn!(
                    "remote control: {} gave a wrong password (or none)",
                    self.peer
                );
                std::thread::sleep(AUTHENTICATION_FAILURE_DELAY);
                return Err(Closing(
                    CloseCode::AuthenticationFailed,
                    "authentication failed: wrong password, or none given".into(),
                ));
            }
        }
        self.subscribe(data)?;
        self.identified.store(true, Ordering::Relaxed);
        self.send(&json!({"op": op::IDENTIFIED, "d": {"negotiatedRpcVersion": RPC_VERSION}}))
    }

    /// Takes the client's event subscriptions; bits Tally does not know are ignored (clients
    /// send bits of newer event classes).
    fn subscribe(&mut self, data: &Map<String, Value>) -> Result<(), Closing> {
        let mask = match data.get("eventSubscriptions") {
            None | Some(Value::Null) => intent::ALL,
            Some(mask) => mask.as_u64().ok_or_else(|| {
                Closing(
                    CloseCode::InvalidDataFieldType,
                    "`eventSubscriptions` must be a number".into(),
                )
            })? as u32,
        };
        self.subscriptions.store(mask, Ordering::Relaxed);
        Ok(())
    }

    /// One request's response data: its type and id mirrored, its status, its answer.
    fn request(&mut self, data: &Map<String, Value>) -> Value {
        let request_type = data.get("requestType").and_then(Value::as_str);
        let id = data.get("requestId").cloned().unwrap_or(Value::Null);
        let Some(request_type) = request_type else {
            return response(
                "",
                id,
                Err(Failure::new(
                    Status::MissingRequestType,
                    "the request has no `requestType`",
                )),
            );
        };
        let request_data = data.get("requestData").cloned().unwrap_or(Value::Null);
        let answer = self.call(request_type, request_data);
        response(request_type, id, answer)
    }

    fn call(&mut self, request_type: &str, data: Value) -> Result<Value, Failure> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let call = Call {
            request_type: request_type.to_string(),
            data,
            session: self.counts,
            reply,
        };
        if self
            .shared
            .calls
            .send_timeout(call, ANSWER_TIMEOUT)
            .is_err()
        {
            return Err(Failure::new(
                Status::NotReady,
                "the show has ended: Tally takes no more requests",
            ));
        }
        if let Some(wake) = crate::base::lock(&self.shared.waker).clone() {
            wake();
        }
        match answer.recv_timeout(ANSWER_TIMEOUT) {
            Ok(answer) => answer,
            Err(_) => Err(Failure::new(
                Status::NotReady,
                format!("Tally did not answer within {ANSWER_TIMEOUT:?}"),
            )),
        }
    }

    /// A batch's response data: each request's result in order, with its own id; Sleep
    /// requests pause the batch (in milliseconds, or frames of the canvas).
    fn batch(&mut self, data: &Map<String, Value>) -> Value {
        let id = data.get("requestId").cloned().unwrap_or(Value::Null);
        let halt = data
            .get("haltOnFailure")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let execution = data
            .get("executionType")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let requests = match data.get("requests") {
            Some(Value::Array(requests)) => requests.clone(),
            _ => Vec::new(),
        };
        let mut results = Vec::new();
        if !(0..=1).contains(&execution) {
            // Parallel batches and the `None` type are OBS's own; each request says so.
            for request in &requests {
                let request_type = request["requestType"].as_str().unwrap_or("");
                results.push(response(
                    request_type,
                    request.get("requestId").cloned().unwrap_or(Value::Null),
                    Err(Failure::new(
                        Status::UnsupportedRequestBatchExecutionType,
                        "Tally runs batches serially (executionType 0 or 1)",
                    )),
                ));
            }
            return json!({"requestId": id, "results": results});
        }
        for request in &requests {
            let Some(request) = request.as_object() else {
                continue;
            };
            let result = if request.get("requestType").and_then(Value::as_str) == Some("Sleep") {
                let request_id = request.get("requestId").cloned().unwrap_or(Value::Null);
                let asked = request.get("requestData").cloned().unwrap_or(Value::Null);
                response("Sleep", request_id, self.sleep(&asked, execution))
            } else {
                self.request(request)
            };
            let failed = result["requestStatus"]["result"] == false;
            results.push(result);
            if failed && halt {
                break;
            }
        }
        json!({"requestId": id, "results": results})
    }

    fn sleep(&mut self, data: &Value, execution: i64) -> Result<Value, Failure> {
        let duration = if execution == 1 {
            let frames = data["sleepFrames"].as_u64().ok_or_else(|| {
                Failure::new(
                    Status::MissingRequestField,
                    "a frame-serial batch sleeps `sleepFrames`",
                )
            })?;
            if frames > MAX_SLEEP_FRAMES {
                return Err(Failure::new(
                    Status::RequestFieldOutOfRange,
                    format!("`sleepFrames` is at most {MAX_SLEEP_FRAMES}"),
                ));
            }
            let video = self.call("GetVideoSettings", Value::Null)?;
            let numerator = video["fpsNumerator"].as_f64().unwrap_or(30.0);
            let denominator = video["fpsDenominator"].as_f64().unwrap_or(1.0);
            Duration::from_secs_f64(frames as f64 * denominator / numerator.max(1.0))
        } else {
            let millis = data["sleepMillis"].as_u64().ok_or_else(|| {
                Failure::new(Status::MissingRequestField, "Sleep needs `sleepMillis`")
            })?;
            if millis > MAX_SLEEP_MILLIS {
                return Err(Failure::new(
                    Status::RequestFieldOutOfRange,
                    format!("`sleepMillis` is at most {MAX_SLEEP_MILLIS}"),
                ));
            }
            Duration::from_millis(millis)
        };
        // The client asked the batch to wait: this connection's thread waits.
        std::thread::sleep(duration);
        Ok(Value::Null)
    }
}

/// The number in field `name` of `message` (described as `what` if it has none): a missing
/// field and one of another type close the connection with their own codes.
fn required_number(message: &Map<String, Value>, name: &str, what: &str) -> Result<u64, Closing> {
    match message.get(name) {
        None => Err(Closing(
            CloseCode::MissingDataField,
            format!("{what} has no `{name}`"),
        )),
        Some(value) => value.as_u64().ok_or_else(|| {
            Closing(
                CloseCode::InvalidDataFieldType,
                format!("`{name}` must be a number"),
            )
        }),
    }
}

/// A RequestResponse's data.
fn response(request_type: &str, id: Value, answer: Result<Value, Failure>) -> Value {
    let mut data = json!({"requestType": request_type, "requestId": id});
    match answer {
        Ok(response) => {
            data["requestStatus"] = json!({"result": true, "code": Status::Success as u16});
            if !response.is_null() {
                data["responseData"] = response;
            }
        }
        Err(failure) => {
            data["requestStatus"] = json!({
                "result": false, "code": failure.status as u16, "comment": failure.comment,
            });
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_may_send_a_burst_then_its_rate() {
        let start = Instant::now();
        let mut limit = RateLimit::new(start);
        assert!((0..1000).all(|_| limit.allow(start)));
        assert!(!limit.allow(start), "the burst is spent");
        // Half a second later, 250 more.
        let later = start + Duration::from_millis(500);
        assert_eq!((0..400).filter(|_| limit.allow(later)).count(), 250);
    }
}
