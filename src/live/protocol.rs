//! The live channel's wire format (DESIGN §6; every message is shown in
//! `docs/live-protocol.md`): parsing what clients send, and writing what the server sends.
//! Parsing never panics; a message that does not parse is answered with an error. The
//! frames the SFU shares (media signalling, errors) are in `crate::signal`.

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::domain::live::{Command, EventBody, LiveEvent, LobbyEntry, Participant, Quorum, View};
use crate::domain::schedule::SessionView;
use crate::domain::{CaseView, Role, UserId};
use crate::signal::RtcIn;

/// The longest command id a client may use.
const MAX_COMMAND_ID: usize = 64;

/// What a client may send.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Command {
        id: String,
        #[serde(default)]
        expected_seq: Option<u64>,
        command: Command,
    },
    Resume {
        last_seq: u64,
    },
    /// Media signalling, passed to the SFU.
    Rtc(RtcIn),
}

/// A client message that could not be understood.
#[derive(Debug)]
pub struct BadMessage {
    pub id: Option<String>,
    pub message: String,
}

/// Parses one text frame. The command id, when one can be read, is kept so the error
/// can name it.
pub fn parse(text: &str) -> Result<ClientMessage, BadMessage> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| BadMessage { id: None, message: "not a JSON object".into() })?;
    let id = value
        .get("id")
        .and_then(|v| v.as_str())
        .filter(|s| s.len() <= MAX_COMMAND_ID)
        .map(str::to_owned);
    let bad = |message: String| BadMessage { id: id.clone(), message };
    let message: ClientMessage =
        serde_json::from_value(value.clone()).map_err(|e| bad(e.to_string()))?;
    if let ClientMessage::Command { id, .. } = &message {
        if id.is_empty() || id.len() > MAX_COMMAND_ID {
            return Err(bad(format!("a command id is 1 to {MAX_COMMAND_ID} characters")));
        }
    }
    Ok(message)
}

#[derive(Serialize)]
struct EventOut<'a> {
    #[serde(flatten)]
    body: &'a EventBody,
    at: DateTime<Utc>,
    actor: Option<UserId>,
}

/// `{"type":"event","seq":N,"event":{"kind":…,…,"at":…,"actor":…}}`
pub fn event(e: &LiveEvent) -> ByteString {
    json!({
        "type": "event",
        "seq": e.seq,
        "event": EventOut { body: &e.body, at: e.at, actor: e.actor },
    })
    .to_string()
    .into()
}

/// `{"type":"ack","id":…,"seq":N}`: the command is applied and `seq` is its last event.
pub fn ack(id: &str, seq: u64) -> ByteString {
    json!({ "type": "ack", "id": id, "seq": seq }).to_string().into()
}

/// `{"type":"service","state":"unavailable"|"available","message":…}`: whether the
/// meeting's changes can be saved (the database can be reached) just now.
pub fn service(available: bool) -> ByteString {
    let (state, message) = if available {
        ("available", "changes are saved again")
    } else {
        ("unavailable", "changes cannot be saved just now; send commands again shortly")
    };
    json!({ "type": "service", "state": state, "message": message }).to_string().into()
}

/// `{"type":"lobby","session_id":…,"message":…}`: sent instead of a snapshot to a guest
/// waiting for the chair; nothing about the agenda or the people in the meeting.
pub fn lobby(session_id: Uuid) -> ByteString {
    let message = "you are in the lobby; the chair will let you in";
    json!({ "type": "lobby", "session_id": session_id, "message": message }).to_string().into()
}

/// Who the snapshot is for.
#[derive(Serialize)]
pub struct You {
    pub user_id: UserId,
    pub role: Role,
    /// Whether this participant may send the chair's commands.
    pub chair: bool,
}

/// The whole live state of a session as one participant may see it.
#[derive(Serialize)]
pub struct Snapshot<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub seq: u64,
    pub session: SessionView,
    /// In agenda order; de-identified for trainees.
    pub agenda: Vec<CaseView>,
    pub current_case: Option<Uuid>,
    /// When the current case's discussion started, if this room saw it start.
    pub current_case_since: Option<chrono::DateTime<chrono::Utc>>,
    pub participants: Vec<&'a Participant>,
    pub presenter: Option<UserId>,
    pub hands: &'a [UserId],
    pub present_requests: &'a [UserId],
    /// Guests waiting for the chair to let them in (names, roles, organisations only).
    pub lobby: Vec<&'a LobbyEntry>,
    /// What the shared viewer shows, when it is open (issue 18).
    pub view: Option<&'a View>,
    pub quorum: Quorum,
    pub you: You,
}

impl Snapshot<'_> {
    pub fn text(&self) -> ByteString {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_resumes_parse() {
        let m = parse(r#"{"type":"command","id":"c1","command":{"kind":"next_case"}}"#).unwrap();
        assert!(matches!(
            m,
            ClientMessage::Command { command: Command::NextCase, expected_seq: None, .. }
        ));
        let m = parse(r#"{"type":"resume","last_seq":7}"#).unwrap();
        assert!(matches!(m, ClientMessage::Resume { last_seq: 7 }));
        let m = parse(r#"{"type":"rtc","kind":"offer","sdp":"v=0"}"#).unwrap();
        assert!(matches!(m, ClientMessage::Rtc(RtcIn::Offer { .. })));
        let m = parse(
            r#"{"type":"rtc","kind":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
        )
        .unwrap();
        let ClientMessage::Rtc(RtcIn::Candidate { candidate }) = m else {
            panic!("a candidate");
        };
        assert_eq!(candidate.sdp_mid.as_deref(), Some("0"));
        assert_eq!(candidate.sdp_mline_index, Some(0));
        assert!(parse(r#"{"type":"rtc","kind":"offer"}"#).is_err());
    }

    #[test]
    fn bad_messages_keep_the_id_when_they_can() {
        let e = parse(r#"{"type":"command","id":"c9","command":{"kind":"fly"}}"#).unwrap_err();
        assert_eq!(e.id.as_deref(), Some("c9"));
        assert!(parse("not json").unwrap_err().id.is_none());
        let long = format!(
            r#"{{"type":"command","id":"{}","command":{{"kind":"raise_hand"}}}}"#,
            "x".repeat(65)
        );
        assert!(parse(&long).is_err());
    }
}
