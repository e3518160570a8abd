//! What every live room of this instance shares (the store, the settings, this
//! instance's id, its SFU) and whether other instances' events are being heard. It holds
//! no room state.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use uuid::Uuid;

use crate::config::LiveSettings;
use crate::media::Sfu;
use crate::store::DynStore;

/// What every room of this instance shares.
pub struct Shared {
    pub store: DynStore,
    pub settings: LiveSettings,
    /// This process's id, stamped on the presence it holds.
    pub instance: Uuid,
    /// Whether other instances may write events (PostgreSQL).
    pub cross_instance: bool,
    /// This instance's SFU, told each room's media rules.
    pub media: Arc<Sfu>,
    /// Issues the letters of the outcomes the chair confirms (listed cases).
    pub letters: Arc<crate::letters::issue::Issuer>,
    listening: AtomicBool,
}

impl Shared {
    /// A new instance id; not listening until the store says so.
    pub fn new(
        store: DynStore, settings: LiveSettings, cross_instance: bool, media: Arc<Sfu>,
        letters: Arc<crate::letters::issue::Issuer>,
    ) -> Self {
        Shared {
            store,
            settings,
            instance: Uuid::new_v4(),
            cross_instance,
            media,
            letters,
            listening: AtomicBool::new(false),
        }
    }

    /// Records whether other instances' events are being heard; returns what it was.
    pub fn set_listening(&self, up: bool) -> bool {
        self.listening.swap(up, Ordering::AcqRel)
    }

    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Instances that have sent a heartbeat within three intervals (always this one);
    /// `None` when that cannot be read (then nobody's presence is cleared).
    pub async fn alive_instances(&self) -> Option<HashSet<Uuid>> {
        let mut alive = HashSet::from([self.instance]);
        if self.cross_instance {
            let window = self.settings.instance_heartbeat_seconds.saturating_mul(3);
            match self.store.live_instances_alive(window).await {
                Ok(ids) => alive.extend(ids),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read instance heartbeats");
                    return None;
                }
            }
        }
        Some(alive)
    }
}
