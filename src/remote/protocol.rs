//! The obs-websocket v5 wire protocol: its op codes, close codes, request status codes and
//! event subscription bits (as the spec, obsproject/obs-websocket docs/generated/protocol.md,
//! numbers them), the two encodings (JSON in text frames, MessagePack in binary frames), and the
//! salted SHA-256 authentication.

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The protocol's RPC version Tally speaks.
pub const RPC_VERSION: u64 = 1;
/// The obs-websocket version whose protocol Tally follows (clients read it as a feature level).
pub const OBS_WEBSOCKET_VERSION: &str = "5.5.2";

pub mod op {
    pub const HELLO: u64 = 0;
    pub const IDENTIFY: u64 = 1;
    pub const IDENTIFIED: u64 = 2;
    pub const REIDENTIFY: u64 = 3;
    pub const EVENT: u64 = 5;
    pub const REQUEST: u64 = 6;
    pub const REQUEST_RESPONSE: u64 = 7;
    pub const REQUEST_BATCH: u64 = 8;
    pub const REQUEST_BATCH_RESPONSE: u64 = 9;
}

/// Why the server closes a connection (WebSocketCloseCode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// WebSocket's own "going away": the server is stopping, or the connection broke.
    GoingAway = 1001,
    /// WebSocket's own "policy violation": more messages than a client may send.
    PolicyViolation = 1008,
    /// WebSocket's own "try again later": as many clients as the server takes are connected.
    TryAgainLater = 1013,
    MessageDecodeError = 4002,
    MissingDataField = 4003,
    InvalidDataFieldType = 4004,
    UnknownOpCode = 4006,
    NotIdentified = 4007,
    AlreadyIdentified = 4008,
    AuthenticationFailed = 4009,
    UnsupportedRpcVersion = 4010,
}

/// A request's outcome (RequestStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success = 100,
    MissingRequestType = 203,
    UnknownRequestType = 204,
    GenericError = 205,
    UnsupportedRequestBatchExecutionType = 206,
    NotReady = 207,
    MissingRequestField = 300,
    InvalidRequestField = 400,
    InvalidRequestFieldType = 401,
    RequestFieldOutOfRange = 402,
    TooManyRequestFields = 404,
    OutputRunning = 500,
    OutputNotRunning = 501,
    OutputDisabled = 504,
    StudioModeActive = 505,
    StudioModeNotActive = 506,
    ResourceNotFound = 600,
    ResourceAlreadyExists = 601,
    InvalidResourceType = 602,
    InvalidResourceState = 604,
    ResourceActionFailed = 701,
    RequestProcessingFailed = 702,
}

/// Event subscription bits (EventSubscription).
pub mod intent {
    pub const GENERAL: u32 = 1 << 0;
    pub const CONFIG: u32 = 1 << 1;
    pub const SCENES: u32 = 1 << 2;
    pub const INPUTS: u32 = 1 << 3;
    pub const TRANSITIONS: u32 = 1 << 4;
    pub const OUTPUTS: u32 = 1 << 6;
    pub const SCENE_ITEMS: u32 = 1 << 7;
    pub const MEDIA_INPUTS: u32 = 1 << 8;
    pub const VENDORS: u32 = 1 << 9;
    pub const UI: u32 = 1 << 10;
    /// Every low-volume category, bits 0 to 11 (the default when a client names none).
    pub const ALL: u32 = (1 << 12) - 1;
    /// High-volume: only when asked for by name.
    pub const INPUT_VOLUME_METERS: u32 = 1 << 16;
    pub const SCENE_ITEM_TRANSFORM_CHANGED: u32 = 1 << 19;
}

/// How a connection's messages are framed, chosen by its WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `obswebsocket.json` (and the default): JSON in text frames.
    Json,
    /// `obswebsocket.msgpack`: MessagePack in binary frames.
    MsgPack,
}

impl Encoding {
    pub const JSON_PROTOCOL: &'static str = "obswebsocket.json";
    pub const MSGPACK_PROTOCOL: &'static str = "obswebsocket.msgpack";

    /// The encoding for a client's offered subprotocols (comma-separated, in its order of
    /// preference); JSON when it offers neither.
    pub fn choose(offered: Option<&str>) -> Self {
        offered
            .into_iter()
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .find_map(|name| match name {
                Self::JSON_PROTOCOL => Some(Encoding::Json),
                Self::MSGPACK_PROTOCOL => Some(Encoding::MsgPack),
                _ => None,
            })
            .unwrap_or(Encoding::Json)
    }

    pub fn protocol_name(self) -> &'static str {
        match self {
            Encoding::Json => Self::JSON_PROTOCOL,
            Encoding::MsgPack => Self::MSGPACK_PROTOCOL,
        }
    }
}

/// A WebSocket frame's payload, as received.
pub enum Frame<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

/// Decodes a message in `encoding`; a frame of the other kind is a decode error, as the spec
/// says.
pub fn decode(encoding: Encoding, frame: Frame<'_>) -> Result<Value, String> {
    match (encoding, frame) {
        (Encoding::Json, Frame::Text(text)) => {
            serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))
        }
        (Encoding::MsgPack, Frame::Binary(bytes)) => {
            rmp_serde::from_slice(bytes).map_err(|error| format!("not MessagePack: {error}"))
        }
        (Encoding::Json, Frame::Binary(_)) => {
            Err("a binary frame on a JSON (obswebsocket.json) connection".into())
        }
        (Encoding::MsgPack, Frame::Text(_)) => {
            Err("a text frame on a MessagePack (obswebsocket.msgpack) connection".into())
        }
    }
}

/// What to send for `message`: a text frame's JSON or a binary frame's MessagePack.
pub enum Encoded {
    Text(String),
    Binary(Vec<u8>),
}

pub fn encode(encoding: Encoding, message: &Value) -> Encoded {
    match encoding {
        Encoding::Json => Encoded::Text(message.to_string()),
        // Maps keep their keys as strings (MessagePack maps with named fields), as the
        // protocol's MessagePack clients expect. A `Value` always serialises.
        Encoding::MsgPack => {
            Encoded::Binary(rmp_serde::to_vec_named(message).unwrap_or_else(|error| {
                tracing::error!("a message did not encode as MessagePack: {error}");
                Vec::new()
            }))
        }
    }
}

/// The salt and challenge a server sends in `Hello` when a password is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub salt: String,
    pub challenge: String,
}

impl Challenge {
    /// A fresh random salt and challenge (32 bytes each, base64), one per connection.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes)?;
        let encode = |part: &[u8]| base64::engine::general_purpose::STANDARD.encode(part);
        Ok(Self {
            salt: encode(&bytes[..32]),
            challenge: encode(&bytes[32..]),
        })
    }

    /// The authentication string a client with `password` answers: base64(sha256(
    /// base64(sha256(password + salt)) + challenge)).
    pub fn expected_answer(&self, password: &str) -> String {
        let base64 = base64::engine::general_purpose::STANDARD;
        let secret = base64.encode(Sha256::digest(format!("{password}{}", self.salt)));
        base64.encode(Sha256::digest(format!("{secret}{}", self.challenge)))
    }
}

/// A stable UUID-shaped identifier for a named thing (OBS gives scenes and inputs UUIDs; Tally
/// names them, so the UUID is derived from the kind and the name).
pub fn uuid_for(kind: &str, name: &str) -> String {
    let hash = Sha256::digest(format!("tally {kind}: {name}"));
    let hex: String = hash[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authentication_string_is_computed_as_the_spec_says() {
        // The spec's own example password, salt and challenge; the answer worked out with
        // openssl: `printf %s PASSWORDSALT | openssl dgst -sha256 -binary | base64`, then the
        // same over that secret followed by the challenge.
        let challenge = Challenge {
            salt: "lM1GncleQOaCu9lT1yeUZhFYnqhsLLP1G5lAGo3ixaI=".into(),
            challenge: "+IxH4CnCiqpX1rM9scsNynZzbOe4KhDeYcTNS3PDaeY=".into(),
        };
        assert_eq!(
            challenge.expected_answer("supersecretpassword"),
            "1Ct943GAT+6YQUUX47Ia/ncufilbe6+oD6lY+5kaCu4="
        );
        assert_ne!(
            challenge.expected_answer("wrong"),
            "1Ct943GAT+6YQUUX47Ia/ncufilbe6+oD6lY+5kaCu4="
        );
        let fresh = Challenge::random().unwrap();
        assert_ne!(fresh.salt, fresh.challenge);
        assert_eq!(fresh.salt.len(), 44);
    }

    #[test]
    fn the_subprotocol_picks_the_encoding_and_frames_must_match_it() {
        assert_eq!(Encoding::choose(None), Encoding::Json);
        assert_eq!(
            Encoding::choose(Some("obswebsocket.msgpack, obswebsocket.json")),
            Encoding::MsgPack
        );
        assert_eq!(Encoding::choose(Some("chat")), Encoding::Json);
        let message = serde_json::json!({"op": 6, "d": {"requestType": "GetVersion"}});
        let Encoded::Binary(bytes) = encode(Encoding::MsgPack, &message) else {
            panic!("MessagePack goes in binary frames");
        };
        assert_eq!(
            decode(Encoding::MsgPack, Frame::Binary(&bytes)).unwrap(),
            message
        );
        assert!(decode(Encoding::MsgPack, Frame::Text("{}")).is_err());
        assert!(decode(Encoding::Json, Frame::Binary(&bytes)).is_err());
        assert_eq!(
            uuid_for("scene", "Main"),
            uuid_for("scene", "Main"),
            "stable"
        );
        assert_ne!(uuid_for("scene", "Main"), uuid_for("input", "Main"));
    }
}
