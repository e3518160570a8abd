//! What every media room and peer of this instance shares: the settings, the media
//! ports, source ids, and the counts of the SFU's tasks and peers (for metrics and leak
//! checks). It holds no room or peer state.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::engine::Ports;
use crate::config::MediaSettings;

/// What every media room and peer of this instance shares.
pub struct Shared {
    pub settings: MediaSettings,
    pub ports: Arc<Ports>,
    next_id: AtomicU64,
    /// The SFU's tasks now running (rooms, peers, sources, legs).
    pub(super) tasks: Arc<AtomicUsize>,
    pub(super) peers: Arc<AtomicUsize>,
}

impl Shared {
    pub fn new(settings: MediaSettings) -> Self {
        Shared {
            ports: Ports::new(&settings),
            settings,
            next_id: AtomicU64::new(1),
            tasks: Arc::default(),
            peers: Arc::default(),
        }
    }

    pub fn next_source_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Spawns one of the SFU's tasks, counted while it runs.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let running = Running::new(&self.tasks);
        tokio::spawn(async move {
            let _running = running;
            task.await
        })
    }
}

/// Counts something while it lives.
pub struct Running(Arc<AtomicUsize>);

impl Running {
    pub(super) fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
