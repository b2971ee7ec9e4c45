//! Remote control over the obs-websocket v5 protocol, so the control surfaces and scripts that
//! drive OBS (Bitfocus Companion, Stream Deck, Touch Portal, show-control software) drive Tally
//! unchanged. A front-end over the show controller, like the app and the command line.
//!
//! [`RemoteServer::start`] listens (loopback unless told otherwise) and serves each client on
//! its own thread (`session`: handshake, Hello and Identify with the password's challenge,
//! requests and batches). A request is carried out where the controller lives: the connection
//! hands it over as a [`Call`], and the front-end that owns the controller answers calls in its
//! loop ([`Call::answer`], with `requests`). One more thread reads the controller's events
//! through its own subscription and sends each client those it subscribed to (`events`).

mod events;
pub mod protocol;
mod requests;
mod session;

pub use requests::REQUESTS;

use crate::control::{Controller, Subscription};
use crossbeam_channel::{Receiver, Sender};
use requests::{Failure, SessionCounts};
use serde_json::Value;
use session::ClientHandle;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the server listens and the password clients must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteConfig {
    pub bind: SocketAddr,
    /// `None`: no authentication (only sensible on loopback).
    pub password: Option<String>,
}

/// Requests waiting for the controller's thread; a connection waits for room (each client has
/// at most one request in flight, so this is only reached with hundreds of clients).
const WAITING_CALLS: usize = 256;

/// Clients served at once; one more is told to try again later.
pub const MAX_CLIENTS: usize = 64;

/// obs-websocket's own port.
pub const DEFAULT_PORT: u16 = 4455;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("remote control cannot listen on {address}: {cause}")]
    Listen {
        address: SocketAddr,
        cause: std::io::Error,
    },
    #[error("remote control cannot start its {name} thread: {cause}")]
    Spawn {
        name: &'static str,
        cause: std::io::Error,
    },
    #[error("remote control's {0} thread died")]
    ThreadDied(&'static str),
    #[error(
        "remote control on {0} would be open to the network without a password: set \
         TALLY_CONTROL_PASSWORD (or the password in Settings), or bind to 127.0.0.1"
    )]
    NoPassword(SocketAddr),
}

/// Wakes the thread that answers calls (a window asking for a redraw).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A request from a remote client, waiting for the controller's thread.
pub struct Call {
    request_type: String,
    data: Value,
    session: SessionCounts,
    reply: Sender<Result<Value, Failure>>,
}

impl Call {
    /// Carries out the request on `controller` and hands the answer back to its connection.
    pub fn answer(self, controller: &mut Controller) {
        let answer = requests::handle(controller, &self.request_type, &self.data, self.session);
        if self.reply.send(answer).is_err() {
            tracing::info!(
                "remote control: a client left before its {} was answered",
                self.request_type
            );
        }
    }

    pub fn request_type(&self) -> &str {
        &self.request_type
    }
}

/// What the server's threads share.
pub(crate) struct Shared {
    password: Option<String>,
    calls: Sender<Call>,
    clients: Mutex<Vec<ClientHandle>>,
    /// Connections being served now.
    sessions: std::sync::atomic::AtomicUsize,
    /// Told when a call is waiting, by a front-end that answers calls between redraws.
    waker: Mutex<Option<Waker>>,
    stop: AtomicBool,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn add_client(&self, client: ClientHandle) {
        crate::base::lock(&self.clients).push(client);
    }
}

/// A running remote-control server.
pub struct RemoteServer {
    address: SocketAddr,
    calls: Receiver<Call>,
    shared: Arc<Shared>,
    threads: Vec<(&'static str, JoinHandle<()>)>,
}

impl RemoteServer {
    /// Listens on `config.bind` and sends clients the events of `events` (a subscription to the
    /// controller whose requests this server's calls carry).
    pub fn start(config: RemoteConfig, events: Subscription) -> Result<Self, RemoteError> {
        if config.password.is_none() && !config.bind.ip().is_loopback() {
            return Err(RemoteError::NoPassword(config.bind));
        }
        let listener = TcpListener::bind(config.bind).map_err(|cause| RemoteError::Listen {
            address: config.bind,
            cause,
        })?;
        let address = listener.local_addr().map_err(|cause| RemoteError::Listen {
            address: config.bind,
            cause,
        })?;
        let (call_sender, calls) = crossbeam_channel::bounded(WAITING_CALLS);
        let shared = Arc::new(Shared {
            password: config.password,
            calls: call_sender,
            clients: Mutex::new(Vec::new()),
            sessions: std::sync::atomic::AtomicUsize::new(0),
            waker: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let mut threads = Vec::new();
        let accepting = shared.clone();
        threads.push((
            "listener",
            spawn("remote-listen", move || accept(&listener, &accepting))?,
        ));
        let broadcasting = shared.clone();
        threads.push((
            "events",
            spawn("remote-events", move || broadcast(&events, &broadcasting))?,
        ));
        tracing::info!("remote control (obs-websocket v5) on ws://{address}");
        Ok(Self {
            address,
            calls,
            shared,
            threads,
        })
    }

    /// Where it listens (the port chosen, when asked for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `waker` is called each time a request waits to be answered.
    pub fn wake_with(&self, waker: Waker) {
        *crate::base::lock(&self.shared.waker) = Some(waker);
    }

    /// Requests waiting for the controller's thread.
    pub fn calls(&self) -> &Receiver<Call> {
        &self.calls
    }

    /// Answers every request waiting, then those that arrive before `deadline`.
    pub fn answer_until(&self, controller: &mut Controller, deadline: Instant) {
        while let Ok(call) = self.calls.recv_deadline(deadline) {
            call.answer(controller);
            // The answer may have changed the show: its events go out before the next call.
            controller.pump();
        }
    }

    /// Whether its threads still run; a thread that died is reported once.
    pub fn check(&mut self) -> Result<(), RemoteError> {
        if let Some(index) = self.threads.iter().position(|(_, t)| t.is_finished()) {
            let (name, _) = self.threads.remove(index);
            if !self.shared.stopping() {
                return Err(RemoteError::ThreadDied(name));
            }
        }
        Ok(())
    }

    /// Closes every connection (going away) and stops listening.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        // Clients hear that Tally is going before their connections close.
        let exit = events::RemoteEvent::exit_started().message();
        for client in crate::base::lock(&self.shared.clients).iter() {
            if client.identified.load(Ordering::Relaxed)
                && client.subscriptions.load(Ordering::Relaxed) & protocol::intent::GENERAL != 0
                && client.outbox.try_send(exit.clone()).is_err()
            {
                tracing::debug!("remote control: a client did not get ExitStarted");
            }
        }
        self.shared.stop.store(true, Ordering::Relaxed);
        // The listener waits in accept: a connection of our own wakes it to see the stop.
        if let Err(error) = TcpStream::connect_timeout(&self.address, Duration::from_secs(1)) {
            tracing::debug!("remote control: waking the listener: {error}");
        }
        for (name, thread) in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("remote control's {name} thread had panicked");
            }
        }
    }
}

impl Drop for RemoteServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn(
    name: &'static str,
    work: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, RemoteError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map_err(|cause| RemoteError::Spawn { name, cause })
}

fn accept(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping() {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!("remote control: a connection failed: {error}");
                continue;
            }
        };
        let serving = shared.clone();
        if let Err(error) = std::thread::Builder::new()
            .name("remote-client".into())
            .spawn(move || session::serve(stream, serving))
        {
            tracing::error!("remote control: cannot serve a client (no thread): {error}");
        }
    }
}

fn broadcast(events: &Subscription, shared: &Shared) {
    let mut translator = events::Translator::default();
    while !shared.stopping() {
        let Some(received) = events.next_before(Instant::now() + Duration::from_millis(100)) else {
            continue;
        };
        let event = match received {
            crate::control::Received::Event(event) => event,
            crate::control::Received::Overrun => {
                tracing::warn!("remote control fell behind the show's events; some were lost");
                continue;
            }
        };
        for remote in translator.translate(&event) {
            let message = remote.message();
            let mut clients = crate::base::lock(&shared.clients);
            // A client that has gone leaves the list when an event it subscribed to finds its
            // connection closed; the others get the event if they subscribed to its class.
            clients.retain(|client| {
                let wants = client.identified.load(Ordering::Relaxed)
                    && client.subscriptions.load(Ordering::Relaxed) & remote.intent != 0;
                if !wants {
                    return true;
                }
                match client.outbox.try_send(message.clone()) {
                    Ok(()) => true,
                    // Meter readings come again a tenth of a second later.
                    Err(crossbeam_channel::TrySendError::Full(_))
                        if remote.intent == protocol::intent::INPUT_VOLUME_METERS =>
                    {
                        true
                    }
                    Err(crossbeam_channel::TrySendError::Full(_)) => {
                        client.fell_behind.store(true, Ordering::Relaxed);
                        false
                    }
                    Err(crossbeam_channel::TrySendError::Disconnected(_)) => false,
                }
            });
        }
    }
}
