//! The sessions with media on this instance: each one's policy (as the live room last
//! published it) and its media room's inbox while anyone is connected. Rooms retire
//! through here, under the same lock joins are sent under.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::messages::MediaRoomMsg;
use crate::domain::live::MediaPolicy as Policy;

/// A session's media: its policy, and its room while anyone is connected.
pub(super) struct SessionMedia {
    pub(super) policy: watch::Sender<Policy>,
    pub(super) room: Option<mpsc::Sender<MediaRoomMsg>>,
}

/// The sessions with media on this instance.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<Uuid, SessionMedia>>);

impl Sessions {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, SessionMedia>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Called by an empty room: it may stop if nobody is on the way in (a join is sent
    /// under the same lock).
    pub(super) fn retire_room(&self, session: Uuid, inbox: &mpsc::Receiver<MediaRoomMsg>) -> bool {
        let mut sessions = self.lock();
        if !inbox.is_empty() {
            return false;
        }
        if let Some(media) = sessions.get_mut(&session) {
            media.room = None;
            if !media.policy.borrow().open {
                sessions.remove(&session);
            }
        }
        true
    }
}
