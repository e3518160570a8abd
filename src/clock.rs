//! The app's clock: "now" for the rules that depend on it (signing times, recorded
//! prints, the communication clocks' due list and report). It reads the system clock
//! plus an offset that only code holding the `AppState` can move (the tests); no route
//! sets it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// The system clock shifted by an offset in milliseconds (zero in production).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The current instant as the app sees it.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves the app's clock so that it reads `at` now (tests only: no route calls it).
    pub fn set(&self, at: DateTime<Utc>) {
        let offset = (at - Utc::now()).num_milliseconds();
        self.offset_ms.store(offset, Ordering::Relaxed);
    }
}
