//! Login attempt limits, per account and per client address (GCRA via `governor`).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::AuthSettings;
use crate::error::ApiError;

/// Keys kept before stale ones are swept.
const SWEEP_ABOVE: usize = 10_000;

pub struct LoginLimiter {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl LoginLimiter {
    pub fn new(settings: &AuthSettings) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            per_account: RateLimiter::keyed(quota(settings.login_attempts_per_account_per_minute)),
            per_address: RateLimiter::keyed(quota(settings.login_attempts_per_address_per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one attempt against the address and the account; `429` with the wait if
    /// either is exhausted.
    pub fn check(&self, account: &str, addr: Option<IpAddr>) -> Result<(), ApiError> {
        if self.per_account.len() > SWEEP_ABOVE {
            self.per_account.retain_recent();
        }
        if self.per_address.len() > SWEEP_ABOVE {
            self.per_address.retain_recent();
        }
        let refused = |wait: std::time::Duration| ApiError::RateLimited {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        };
        if let Some(ip) = addr {
            self.per_address
                .check_key(&ip)
                .map_err(|n| refused(n.wait_time_from(self.clock.now())))?;
        }
        self.per_account
            .check_key(&account.to_lowercase())
            .map_err(|n| refused(n.wait_time_from(self.clock.now())))
    }
}
