//! What the live channel and the SFU both put on the wire, owned here so neither reaches
//! into the other: the client's media signalling (`{"type":"rtc",…}`, `RtcIn`), the
//! server's signalling and error frames, and `Outbound`, what a live connection's
//! writer sends. The JSON names and shapes are a contract (`docs/live-protocol.md`);
//! nothing here decides anything.

use actix_http::ws::CloseCode;
use actix_web::web::Bytes;
use bytestring::ByteString;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// Signalling from a client: `{"type":"rtc","kind":"offer"|"answer","sdp":…}` or
/// `{"type":"rtc","kind":"candidate","candidate":{…}}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RtcIn {
    Offer { sdp: String },
    Answer { sdp: String },
    Candidate { candidate: CandidateIn },
}

/// A trickled ICE candidate as browsers write it (`RTCIceCandidateInit`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateIn {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u16>,
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// `{"type":"rtc","kind":"offer"|"answer","sdp":…}` from the server.
pub fn rtc_description(kind: &str, sdp: &str) -> ByteString {
    json!({ "type": "rtc", "kind": kind, "sdp": sdp }).to_string().into()
}

/// `{"type":"error","id":…,"code":…,"message":…}`
pub fn error(id: Option<&str>, code: &str, message: &str) -> ByteString {
    json!({ "type": "error", "id": id, "code": code, "message": message }).to_string().into()
}

/// What goes out to one connection, in order.
pub enum Outbound {
    Text(ByteString),
    /// A broadcast already framed for the wire: encoded once, the same bytes for every
    /// connection it goes to.
    Frame(Bytes),
    /// Media signalling: kept when a lagging connection's backlog is dropped.
    Signal(ByteString),
    /// A snapshot showing identified cases: the writer audits the read of each case
    /// before sending it. Boxed: a rare item, and every slot of every queue is the size
    /// of the largest.
    Snapshot(Box<SnapshotOut>),
    /// The server's heartbeat.
    Ping,
    /// The answer to the client's ping, with its payload.
    Pong(Bytes),
    /// Close the connection, saying why when there is a reason the client should know.
    Close(Option<(CloseCode, &'static str)>),
}

/// A snapshot's text, and the cases it shows identified (audited as read before it goes).
pub struct SnapshotOut {
    pub text: ByteString,
    pub cases: Vec<Uuid>,
}

impl Outbound {
    /// Kept when a lagging connection's backlog is dropped: what the snapshot it is sent
    /// instead does not carry.
    pub fn survives_lag(&self) -> bool {
        matches!(
            self,
            Outbound::Signal(_) | Outbound::Ping | Outbound::Pong(_) | Outbound::Close(_)
        )
    }
}

/// Why media signalling was refused: the `code` the client receives and what it is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaRefusal {
    /// The meeting has no media (not open yet, or closed).
    MeetingNotOpen,
    /// The SFU cannot take the peer now (no port, room overwhelmed).
    Unavailable,
    /// Trainees never send video.
    Forbidden,
    /// Only the presenter granted by the chair shares their screen.
    NotPresenter,
}

impl MediaRefusal {
    pub fn code(self) -> &'static str {
        match self {
            MediaRefusal::MeetingNotOpen => "meeting_not_open",
            MediaRefusal::Unavailable => "media_unavailable",
            MediaRefusal::Forbidden => "forbidden",
            MediaRefusal::NotPresenter => "not_presenter",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            MediaRefusal::MeetingNotOpen => "media starts when the meeting is open",
            MediaRefusal::Unavailable => "media is unavailable; try again",
            MediaRefusal::Forbidden => "trainees may not share their screen",
            MediaRefusal::NotPresenter => {
                "only the presenter granted by the chair may share their screen"
            }
        }
    }

    /// The error frame that tells the client.
    pub fn frame(self) -> ByteString {
        error(None, self.code(), self.message())
    }
}
