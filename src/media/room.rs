//! A media room: the one task that owns who is connected to a session's media and which
//! sources are published, and decides what is forwarded to whom. It applies the live
//! meeting's rules (the presenter, who is muted, whether the meeting is open) as the
//! live room publishes them.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::forward::{Kind, Source, SourceId};
use super::messages::{MediaRoomMsg, PeerId, PeerMsg};
use super::sessions::Sessions;
use crate::domain::live::MediaPolicy as Policy;
use crate::domain::UserId;

struct Member {
    user: UserId,
    tx: mpsc::UnboundedSender<PeerMsg>,
}

impl Member {
    fn tell(&self, msg: PeerMsg) {
        // Fails only when the peer has ended; its `Leave` is on the way.
        let _ = self.tx.send(msg);
    }
}

pub struct MediaRoom {
    session: Uuid,
    sessions: Arc<Sessions>,
    policy: watch::Receiver<Policy>,
    members: HashMap<PeerId, Member>,
    /// Each source with the peer that publishes it.
    sources: HashMap<SourceId, (PeerId, Arc<Source>)>,
}

impl MediaRoom {
    pub fn new(session: Uuid, sessions: Arc<Sessions>, policy: watch::Receiver<Policy>) -> Self {
        MediaRoom { session, sessions, policy, members: HashMap::new(), sources: HashMap::new() }
    }

    /// Serves until the last peer has gone.
    pub async fn run(mut self, mut inbox: mpsc::Receiver<MediaRoomMsg>) {
        let mut watching = true;
        loop {
            tokio::select! {
                msg = inbox.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => break,
                },
                changed = self.policy.changed(), if watching => match changed {
                    Ok(()) => self.apply_policy(),
                    Err(_) => watching = false,
                },
            }
            if self.members.is_empty() && self.sessions.retire_room(self.session, &inbox) {
                break;
            }
        }
    }

    fn handle(&mut self, msg: MediaRoomMsg) {
        match msg {
            MediaRoomMsg::Join { peer, user, tx } => {
                let member = Member { user, tx };
                for (_, source) in self.sources.values() {
                    if source.publisher != user {
                        member.tell(PeerMsg::Forward(source.clone()));
                    }
                }
                self.members.insert(peer, member);
                if !self.policy.borrow().open {
                    self.members[&peer].tell(PeerMsg::Close);
                }
            }
            MediaRoomMsg::Leave { peer } => {
                self.members.remove(&peer);
                let theirs: Vec<SourceId> = self
                    .sources
                    .iter()
                    .filter(|(_, (owner, _))| *owner == peer)
                    .map(|(id, _)| *id)
                    .collect();
                for id in theirs {
                    self.withdraw(id);
                }
            }
            MediaRoomMsg::Publish { peer, source } => {
                let Some(member) = self.members.get(&peer) else {
                    return;
                };
                if !self.allowed(&source) && source.kind == Kind::Screen {
                    member.tell(PeerMsg::Refused {
                        source: source.id,
                        code: Some(crate::signal::MediaRefusal::NotPresenter),
                    });
                    return;
                }
                let allowed = self.allowed(&source);
                source.set_open(allowed);
                if allowed && source.kind == Kind::Screen {
                    // What came before the source was open was not kept: start the
                    // keyframe cache now, for subscribers joining later.
                    source.request_keyframe();
                }
                for m in self.members.values() {
                    if m.user != source.publisher {
                        m.tell(PeerMsg::Forward(source.clone()));
                    }
                }
                self.sources.insert(source.id, (peer, source));
            }
            MediaRoomMsg::Unpublish { peer, source } => {
                if self.sources.get(&source).is_some_and(|(p, _)| *p == peer) {
                    self.withdraw(source);
                }
            }
        }
    }

    /// Whether a source's packets may go on now.
    fn allowed(&self, source: &Source) -> bool {
        let policy = self.policy.borrow();
        policy.open
            && match source.kind {
                Kind::Screen => policy.presenter == Some(source.publisher),
                Kind::Audio => policy.unmuted.contains(&source.publisher),
            }
    }

    /// Stops forwarding a source to everyone.
    fn withdraw(&mut self, id: SourceId) {
        let Some((_, source)) = self.sources.remove(&id) else {
            return;
        };
        source.set_open(false);
        for m in self.members.values() {
            m.tell(PeerMsg::Unforward(id));
        }
    }

    fn apply_policy(&mut self) {
        if !self.policy.borrow_and_update().open {
            for m in self.members.values() {
                m.tell(PeerMsg::Close);
            }
        }
        let mut revoked = Vec::new();
        for (id, (peer, source)) in &self.sources {
            let allowed = self.allowed(source);
            source.set_open(allowed);
            if source.kind == Kind::Screen && !allowed {
                revoked.push((*id, *peer));
            }
        }
        for (id, peer) in revoked {
            self.withdraw(id);
            if let Some(m) = self.members.get(&peer) {
                m.tell(PeerMsg::Refused { source: id, code: None });
            }
        }
    }
}
