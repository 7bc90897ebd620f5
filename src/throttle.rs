//! Burst guards kept in this process's memory: chat messages and uploads per user (bots are
//! users of their own), uploads in flight per user, and socket upgrades per user and per
//! client address. Each refusal is a 429 with `Retry-After` (an `error` frame with
//! `retry_after` on the socket).
//!
//! Why these live in memory, in `governor`'s keyed GCRA limiters, while the login and sign-up
//! counters live in the database (`auth::rate_limit`): these guard frequent, cheap actions —
//! a message, an upload, an upgrade — against one client flooding a process, and a database
//! round trip for every message would cost more than what it guards. A burst guard does not
//! need one budget across processes: each process keeps its own (N processes allow N times
//! the rate). Budgets that must hold however many processes there are — guessing passwords,
//! signing up — stay in the database. `governor` is a maintained, lock-free GCRA
//! implementation with a concurrent keyed store and a sweep of idle keys, so nothing here is
//! hand-rolled timing code.
//!
//! Memory stays bounded: every limiter is swept every `SWEEP_EVERY` (`retain_recent` drops the
//! keys whose budget has refilled completely, which are indistinguishable from absent ones),
//! and one that still holds `MAX_KEYS` keys after an immediate sweep refuses everyone until
//! keys age out, rather than growing.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::auth::Principal;
use crate::config::Settings;
use crate::connections::{client_address, client_key};
use crate::error::{ApiError, ApiResult};
use crate::slots::{Slot, Slots};

/// How often idle keys are dropped from every limiter (`server` runs it).
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// The most keys one limiter holds. A flood of that many distinct users or addresses within
/// a refill period is refused as a whole rather than remembered (about 5 MB a limiter).
pub const MAX_KEYS: usize = 100_000;
/// How often a limiter at `MAX_KEYS` may sweep between the periodic sweeps.
const URGENT_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One budget per key: `burst` actions at once, refilled at `per_minute` a minute.
pub struct Throttle<K: Hash + Eq + Clone> {
    /// What is counted and per what, for the 429's detail ("chat messages per user").
    what: &'static str,
    per_minute: u32,
    burst: u32,
    limiter: DefaultKeyedRateLimiter<K>,
    last_urgent_sweep: Mutex<Option<Instant>>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(what: &'static str, per_minute: u32, burst: u32) -> Self {
        let per_minute = per_minute.max(1);
        let burst = burst.max(1);
        // `max(1)` above: both are non-zero.
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN));
        Self {
            what,
            per_minute,
            burst,
            limiter: DefaultKeyedRateLimiter::dashmap(quota),
            last_urgent_sweep: Mutex::new(None),
        }
    }

    /// Counts one action of `key`, or refuses it with 429 and the seconds until it would pass.
    pub fn hit(&self, key: &K) -> ApiResult<()> {
        if self.limiter.len() >= MAX_KEYS && !self.urgent_sweep() {
            return Err(ApiError::TooManyRequests {
                detail: format!(
                    "too many {} at once on this server; retry in 1 s",
                    self.what
                ),
                retry_after_secs: 1,
            });
        }
        self.limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            self.refusal(whole_seconds(wait))
        })
    }

    /// Drops the keys whose budget has refilled (they count as absent).
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// The keys held now.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }

    /// Sweeps now unless that was done less than `URGENT_SWEEP_EVERY` ago; says whether the
    /// limiter then has room for more keys.
    fn urgent_sweep(&self) -> bool {
        {
            let mut last = self
                .last_urgent_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < URGENT_SWEEP_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        self.sweep();
        let room = self.limiter.len() < MAX_KEYS;
        if !room {
            tracing::warn!(
                limit = self.what,
                keys = MAX_KEYS,
                "a rate limiter is full: refusing everyone until keys age out"
            );
        }
        room
    }

    fn refusal(&self, retry_after_secs: u64) -> ApiError {
        let bursts = if self.burst == self.per_minute {
            String::new()
        } else {
            format!(", in bursts of at most {}", self.burst)
        };
        ApiError::TooManyRequests {
            detail: format!(
                "too many {}: at most {} a minute{bursts}; retry in {retry_after_secs} s",
                self.what, self.per_minute
            ),
            retry_after_secs,
        }
    }
}

/// A wait in whole seconds, rounded up, at least 1 (what `Retry-After` can say).
fn whole_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// Every in-process rate limit, on `AppState::throttles`.
pub struct Throttles {
    /// Chat messages per user: `POST /api/v1/chats/{id}/messages` and the socket's
    /// `message.send` together.
    pub messages: Throttle<i64>,
    /// Upload requests per user: `POST /api/v1/files` and `POST /api/user/upload-files`.
    pub uploads: Throttle<i64>,
    /// Upload requests in flight per user.
    pub uploads_in_flight: Slots<i64>,
    /// Socket upgrades per user: `/api/ws/chat` and `/api/ws/video` together.
    pub connects_per_user: Throttle<i64>,
    /// Socket upgrades per client address (`connections::client_address`: behind a trusted
    /// proxy, the client it names), counted per `connections::client_key`.
    pub connects_per_address: Throttle<IpAddr>,
    concurrent_uploads: usize,
}

impl Throttles {
    pub fn new(settings: &Settings) -> Self {
        Self {
            messages: Throttle::new(
                "chat messages per user",
                settings.messages_per_minute,
                settings.message_burst,
            ),
            uploads: Throttle::new(
                "uploads per user",
                settings.uploads_per_minute,
                settings.uploads_per_minute,
            ),
            uploads_in_flight: Slots::new(settings.concurrent_uploads_per_user),
            connects_per_user: Throttle::new(
                "socket connects per user",
                settings.ws_connects_per_minute,
                settings.ws_connects_per_minute,
            ),
            connects_per_address: Throttle::new(
                "socket connects per address",
                settings.ws_connects_per_address_per_minute,
                settings.ws_connects_per_address_per_minute,
            ),
            concurrent_uploads: settings.concurrent_uploads_per_user,
        }
    }

    /// Drops idle keys from every limiter (run every `SWEEP_EVERY`).
    pub fn sweep(&self) {
        self.messages.sweep();
        self.uploads.sweep();
        self.connects_per_user.sweep();
        self.connects_per_address.sweep();
    }

    /// Counts one chat message of `principal`.
    pub fn message(&self, principal: &Principal) -> ApiResult<()> {
        self.messages.hit(&principal.user_id)
    }

    /// Admits one upload of `principal`: a place among its uploads in flight (held until the
    /// returned slot is dropped), then one from its per-minute budget. Refused at once, with
    /// nothing counted, when all its places are taken.
    pub fn upload(&self, principal: &Principal) -> ApiResult<Slot<i64>> {
        let slot = self
            .uploads_in_flight
            .take(principal.user_id)
            .ok_or_else(|| ApiError::TooManyRequests {
                detail: format!(
                    "at most {} uploads in flight per user; wait for one to finish",
                    self.concurrent_uploads
                ),
                retry_after_secs: 1,
            })?;
        self.uploads.hit(&principal.user_id)?;
        Ok(slot)
    }

    /// Counts one socket upgrade of `principal` from the client of `req`: its address's
    /// budget first, then the user's.
    pub fn connect(&self, req: &HttpRequest, principal: &Principal) -> ApiResult<()> {
        if let Some(ip) = client_address(req) {
            self.connects_per_address.hit(&client_key(ip))?;
        }
        self.connects_per_user.hit(&principal.user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_next_is_told_when_to_retry() {
        let throttle = Throttle::new("tests", 60, 3);
        for _ in 0..3 {
            assert!(throttle.hit(&1_i64).is_ok());
        }
        match throttle.hit(&1) {
            Err(ApiError::TooManyRequests {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(throttle.hit(&2).is_ok(), "another key has its own budget");
    }

    #[test]
    fn sweeping_forgets_only_refilled_keys() {
        let throttle = Throttle::new("tests", 1, 1);
        assert!(throttle.hit(&1_i64).is_ok());
        throttle.sweep();
        assert_eq!(
            throttle.len(),
            1,
            "a key still waiting for its refill is kept"
        );
        assert!(throttle.hit(&1).is_err());
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
    }
}
