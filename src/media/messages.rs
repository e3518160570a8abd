//! The messages a media room and its peer tasks send each other, in a module of their
//! own so the room and the peer import it rather than each other. Nothing here acts.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::forward::{Source, SourceId};
use crate::domain::UserId;

pub type PeerId = u64;

/// What a media room is told.
pub enum MediaRoomMsg {
    Join { peer: PeerId, user: UserId, tx: mpsc::UnboundedSender<PeerMsg> },
    Leave { peer: PeerId },
    Publish { peer: PeerId, source: Arc<Source> },
    Unpublish { peer: PeerId, source: SourceId },
}

/// What the media room tells a peer task.
pub enum PeerMsg {
    /// Start forwarding a source to this participant.
    Forward(Arc<Source>),
    /// Stop forwarding a source.
    Unforward(SourceId),
    /// The room no longer takes this participant's source: a revoked presenter's
    /// screen (no code), or video from someone who may not present (the code to send).
    Refused { source: SourceId, code: Option<crate::signal::MediaRefusal> },
    /// The meeting closed.
    Close,
}
