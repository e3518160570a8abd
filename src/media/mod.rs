//! The SFU, and the only module that touches `webrtc` types: per live session a
//! `MediaRoom` ([`room`]), per participant a [`peer`] connection, the two talking only
//! through `messages`; per published track a source forwarded to subscriber legs
//! ([`forward`]), built by [`engine`]; `sessions` and `shared` hold what the SFU's
//! tasks share. The live channel carries the signalling (frames in `crate::signal`;
//! nothing here imports `live`) and tells the SFU the meeting's rules as a [`Policy`].

pub mod engine;
pub mod forward;
pub mod messages;
pub mod peer;
pub mod room;
pub mod sessions;
pub mod shared;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::config::MediaSettings;
use crate::domain::UserId;
use crate::signal::{MediaRefusal, Outbound, RtcIn};
use messages::MediaRoomMsg;
use peer::PeerSpec;
use room::MediaRoom;
use sessions::{SessionMedia, Sessions};
use shared::{Running, Shared};

/// The live meeting's rules for its media, published by the live room.
pub use crate::domain::live::MediaPolicy as Policy;

/// What the SFU holds now: for operators (metrics) and leak checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MediaStats {
    pub rooms: usize,
    pub peers: usize,
    pub tasks: usize,
}

/// A browser's ICE server entry.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The SFU of this instance.
pub struct Sfu {
    shared: Arc<Shared>,
    sessions: Arc<Sessions>,
    next_peer: AtomicU64,
}

/// How many messages wait for a media room or peer.
const INBOX: usize = 256;

/// A participant's link to their peer task: signalling goes in here, and dropping it
/// (the WebSocket closed) closes the peer connection.
pub struct PeerHandle {
    tx: mpsc::Sender<RtcIn>,
}

impl PeerHandle {
    /// Passes the client's signalling on; false when the peer has gone.
    pub async fn signal(&self, message: RtcIn) -> bool {
        self.tx.send(message).await.is_ok()
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl Sfu {
    pub fn new(settings: MediaSettings) -> Arc<Self> {
        Arc::new(Sfu {
            shared: Arc::new(Shared::new(settings)),
            sessions: Arc::default(),
            next_peer: AtomicU64::new(1),
        })
    }

    /// The live room's rules for a session's media; applied at once to its room.
    pub fn set_policy(&self, session: Uuid, policy: Policy) {
        let mut sessions = self.sessions.lock();
        match sessions.get_mut(&session) {
            Some(media) => {
                let retire = !policy.open && media.room.is_none();
                media.policy.send_if_modified(|p| {
                    let changed = *p != policy;
                    *p = policy;
                    changed
                });
                if retire {
                    sessions.remove(&session);
                }
            }
            None if policy.open => {
                sessions
                    .insert(session, SessionMedia { policy: watch::channel(policy).0, room: None });
            }
            None => {}
        }
    }

    /// Starts a participant's peer in the session's media room. `signal` is their live
    /// connection's outgoing queue. Refused with `meeting_not_open` when the meeting has
    /// no media, or `media_unavailable` when its room is overwhelmed.
    pub fn connect(
        &self, session: Uuid, user: UserId, role: crate::domain::Role,
        signal: mpsc::Sender<Outbound>,
    ) -> Result<PeerHandle, MediaRefusal> {
        let mut sessions = self.sessions.lock();
        let media = sessions.get_mut(&session).ok_or(MediaRefusal::MeetingNotOpen)?;
        if !media.policy.borrow().open {
            return Err(MediaRefusal::MeetingNotOpen);
        }
        let room = match &media.room {
            Some(room) if !room.is_closed() => room.clone(),
            _ => {
                let (tx, rx) = mpsc::channel(INBOX);
                let room = MediaRoom::new(session, self.sessions.clone(), media.policy.subscribe());
                self.shared.spawn(room.run(rx));
                media.room = Some(tx.clone());
                tx
            }
        };
        let id = self.next_peer.fetch_add(1, Ordering::Relaxed);
        let (tx, signals) = mpsc::channel(INBOX);
        // The room's messages are never dropped: a lost `Unforward` would leak a leg.
        let (control_tx, control) = mpsc::unbounded_channel();
        room.try_send(MediaRoomMsg::Join { peer: id, user, tx: control_tx })
            .map_err(|_| MediaRefusal::Unavailable)?;
        let spec = PeerSpec { id, user, role, signal };
        let peer = Running::new(&self.shared.peers);
        let run =
            peer::run(spec, self.shared.clone(), room, media.policy.subscribe(), signals, control);
        self.shared.spawn(async move {
            let _peer = peer;
            run.await
        });
        Ok(PeerHandle { tx })
    }

    pub fn stats(&self) -> MediaStats {
        MediaStats {
            rooms: self.sessions.lock().values().filter(|m| m.room.is_some()).count(),
            peers: self.shared.peers.load(Ordering::Acquire),
            tasks: self.shared.tasks.load(Ordering::Acquire),
        }
    }

    /// The ICE servers for a participant's browser: the configured STUN/TURN URLs, with
    /// a TURN username and credential valid for `turn_credential_seconds` when a shared
    /// secret is configured (the TURN REST API scheme: HMAC-SHA1 of `expiry:user`).
    pub fn ice_servers(&self, user: UserId) -> Vec<IceServer> {
        let settings = &self.shared.settings;
        if settings.ice_servers.is_empty() {
            return Vec::new();
        }
        let (stun, turn): (Vec<String>, Vec<String>) = settings
            .ice_servers
            .iter()
            .cloned()
            .partition(|url| url.starts_with("stun:") || url.starts_with("stuns:"));
        let mut servers = Vec::new();
        if !stun.is_empty() {
            servers.push(IceServer { urls: stun, username: None, credential: None });
        }
        let secret = settings.turn_secret.expose_secret();
        if !turn.is_empty() {
            let (username, credential) = if secret.is_empty() {
                (None, None)
            } else {
                let expires = chrono::Utc::now().timestamp()
                    + i64::try_from(settings.turn_credential_seconds).unwrap_or(3600);
                let username = format!("{expires}:{user}");
                let credential = turn_credential(secret.as_bytes(), &username);
                (Some(username), Some(credential))
            };
            servers.push(IceServer { urls: turn, username, credential });
        }
        servers
    }
}

/// base64(HMAC-SHA1(secret, username)), as TURN servers with a shared secret expect.
fn turn_credential(secret: &[u8], username: &str) -> String {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_follow_the_rest_api_scheme() {
        // RFC 2202 test case 2.
        assert_eq!(
            turn_credential(b"Jefe", "what do ya want for nothing?"),
            base64::engine::general_purpose::STANDARD
                .encode(hex::decode("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79").unwrap())
        );
        let mut settings = crate::config::Settings::defaults().unwrap().media;
        settings.ice_servers =
            vec!["stun:stun.example.org:3478".into(), "turn:turn.example.org:3478".into()];
        settings.turn_secret = secrecy::SecretString::from("s3cret");
        let sfu = Sfu::new(settings);
        let user = UserId(Uuid::new_v4());
        let servers = sfu.ice_servers(user);
        assert_eq!(servers.len(), 2);
        assert!(servers[0].username.is_none());
        let username = servers[1].username.clone().unwrap();
        let (expiry, who) = username.split_once(':').unwrap();
        assert_eq!(who, user.to_string());
        assert!(expiry.parse::<i64>().unwrap() > chrono::Utc::now().timestamp() + 3000);
        assert_eq!(
            servers[1].credential.as_deref(),
            Some(turn_credential(b"s3cret", &username).as_str())
        );
    }
}
