//! Live login sessions remembered in memory, so an authenticated request needs no trip to
//! the blocking pool of its own, while an ended session (logout, password change,
//! refresh-token reuse, role change, erasure) still stops working at once on every process:
//! a request that starts after the revoking request was answered is refused, whichever
//! process it reaches.
//!
//! Every remembered session is stamped with the *revocation epoch* read before it was
//! looked up; it is believed only while the epoch is unchanged. Anything that ends sessions
//! moves the epoch after its transaction commits, which forgets every remembered session
//! (revocations are rare, so forgetting all is cheaper than being clever, and obviously
//! correct):
//! - in this process, the service that ended them calls [`SessionCache::sessions_changed`];
//! - on SQLite, the epoch also lives in a small file beside the database, mapped into every
//!   process that opens it, so another process sees the change on its next request;
//! - on PostgreSQL, triggers on `sessions` and `users` send a `NOTIFY` when a session is
//!   revoked or a user's role or erasure changes (no code path can forget to), and each
//!   process's event listener moves its epoch when it hears one. Before believing memory a
//!   request waits for the listener's fence, as every memory kept current this way does
//!   (see `crate::coherence`): once it passes, every revocation committed before the request
//!   arrived has moved the epoch. While the listener is not connected, or a round trip is
//!   slow, requests ask the database, as they would with no cache at all.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::NaiveDateTime;

use super::policy::Role;
use crate::coherence::{ChangeFeed, Fence, Remembers, SharedCounter, Ticket};

/// Where the database's triggers announce that login sessions ended (see the migration
/// `session_notices`).
pub const SESSIONS_CHANNEL: &str = "stockroom_sessions";

/// Sessions remembered at most (about 64 bytes each); past it the least used are dropped.
const CAPACITY: usize = 100_000;

#[derive(Clone)]
struct Remembered {
    user_id: i64,
    role: Role,
    expires_at: NaiveDateTime,
    epoch: u64,
}

/// Where the epoch lives besides this process's own counter.
enum Shared {
    /// One process for the database (in-memory SQLite), or memory is disabled.
    Nothing,
    /// A counter in a file mapped by every process on the same SQLite database.
    File(SharedCounter),
    /// PostgreSQL: the event listener's notices, fenced by its round trips.
    Listener(Arc<Fence>),
}

pub struct SessionCache {
    entries: quick_cache::sync::Cache<i64, Remembered>,
    /// Moves whenever sessions end; see the module documentation.
    local_epoch: AtomicU64,
    shared: Shared,
    enabled: bool,
}

impl SessionCache {
    fn new(shared: Shared, enabled: bool) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(CAPACITY),
            local_epoch: AtomicU64::new(0),
            shared,
            enabled,
        }
    }

    /// A cache that remembers nothing: every request checks its session in the database.
    pub fn disabled() -> Self {
        Self::new(Shared::Nothing, false)
    }

    /// For a SQLite database at `path`: the epoch is shared through `<path>.revocations`.
    /// An in-memory database belongs to one process, so its epoch needs no file. When the
    /// file cannot be made, memory is not used (a process that could not share its epoch
    /// must not trust what it remembers).
    pub fn for_sqlite(path: &str) -> Self {
        match SharedCounter::beside(path, "revocations") {
            Ok(Some(counter)) => Self::new(Shared::File(counter), true),
            Ok(None) => Self::new(Shared::Nothing, true),
            Err(e) => {
                tracing::warn!(error = %e, "cannot share the revocation epoch beside the database; every request will check its session in the database");
                Self::disabled()
            }
        }
    }

    /// For PostgreSQL: believed only through the event listener's fence.
    pub fn for_postgres(feed: &ChangeFeed) -> Self {
        match feed.fence() {
            Some(fence) => Self::new(Shared::Listener(fence.clone()), true),
            None => Self::disabled(),
        }
    }

    fn epoch(&self) -> u64 {
        let shared = match &self.shared {
            Shared::File(counter) => counter.load(),
            Shared::Nothing | Shared::Listener(_) => 0,
        };
        // Both only grow, so the sum is unchanged only while neither changed.
        self.local_epoch.load(Ordering::SeqCst).wrapping_add(shared)
    }

    /// The role behind a live session this process remembers, or `None` (ask the database).
    /// `ticket` is the fence's, taken when the request arrived (PostgreSQL).
    pub async fn lookup(
        &self,
        session_id: i64,
        user_id: i64,
        now: NaiveDateTime,
        ticket: Option<Ticket>,
    ) -> Option<Role> {
        if !self.enabled {
            return None;
        }
        let remembered = self.entries.get(&session_id)?;
        if let Shared::Listener(fence) = &self.shared {
            if !fence.pass(ticket).await {
                return None;
            }
        }
        // Read after the fence: it is the epoch that counts every revocation so far.
        let epoch = self.epoch();
        let believed = remembered.epoch == epoch
            && remembered.user_id == user_id
            && remembered.expires_at > now;
        believed.then_some(remembered.role)
    }

    /// Read before looking a session up in the database; pass it to [`Self::remember`].
    pub fn stamp(&self) -> u64 {
        self.epoch()
    }

    /// Remembers a session the database showed live, stamped with the epoch read before
    /// that lookup: a revocation that committed meanwhile has moved the epoch, so what is
    /// remembered here is never believed.
    pub fn remember(
        &self,
        session_id: i64,
        user_id: i64,
        role: Role,
        expires_at: NaiveDateTime,
        stamp: u64,
    ) {
        if self.enabled {
            self.entries.insert(
                session_id,
                Remembered {
                    user_id,
                    role,
                    expires_at,
                    epoch: stamp,
                },
            );
        }
    }

    /// Sessions ended (called after the ending transaction commits): forget them all, here
    /// and in every process sharing the SQLite file.
    pub fn sessions_changed(&self) {
        if let Shared::File(counter) = &self.shared {
            counter.bump();
        }
        self.heard_sessions_changed();
    }

    /// The listener heard that sessions ended on some process.
    pub fn heard_sessions_changed(&self) {
        self.local_epoch.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
    }
}

impl Remembers for SessionCache {
    fn channel(&self) -> &'static str {
        SESSIONS_CHANNEL
    }

    fn heard(&self, _payload: &str) {
        self.heard_sessions_changed();
    }

    fn forget_all(&self) {
        self.heard_sessions_changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, d)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_change_in_another_process_is_seen_through_the_shared_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let path = path.to_str().unwrap();
        let here = SessionCache::for_sqlite(path);
        let there = SessionCache::for_sqlite(path);
        here.remember(7, 1, Role::Worker, day(20), here.stamp());
        assert_eq!(here.lookup(7, 1, day(3), None).await, Some(Role::Worker));
        assert_eq!(
            here.lookup(7, 2, day(3), None).await,
            None,
            "another user's token"
        );
        assert_eq!(
            here.lookup(7, 1, day(21), None).await,
            None,
            "an expired session"
        );
        there.sessions_changed();
        assert_eq!(here.lookup(7, 1, day(3), None).await, None);
    }

    #[tokio::test]
    async fn a_lookup_that_raced_a_revocation_is_never_believed() {
        let cache = SessionCache::for_sqlite(":memory:");
        let stamp = cache.stamp();
        cache.sessions_changed();
        cache.remember(7, 1, Role::Owner, day(20), stamp);
        assert_eq!(cache.lookup(7, 1, day(3), None).await, None);
    }

    #[tokio::test]
    async fn postgres_memory_is_believed_only_after_a_round_trip_that_began_later() {
        let feed = std::sync::Arc::new(ChangeFeed::listened(std::time::Duration::ZERO));
        let cache = std::sync::Arc::new(SessionCache::for_postgres(&feed));
        feed.join(cache.clone());
        cache.remember(7, 1, Role::Owner, day(20), cache.stamp());
        assert_eq!(
            cache.lookup(7, 1, day(3), None).await,
            None,
            "nobody listens"
        );
        feed.listening();
        cache.remember(7, 1, Role::Owner, day(20), cache.stamp());
        let rounds = crate::coherence::answer_rounds(feed.clone(), 2);
        assert_eq!(cache.lookup(7, 1, day(3), None).await, Some(Role::Owner));
        feed.heard(SESSIONS_CHANNEL, "");
        assert_eq!(cache.lookup(7, 1, day(3), None).await, None, "forgotten");
        cache.remember(7, 1, Role::Owner, day(20), cache.stamp());
        assert_eq!(cache.lookup(7, 1, day(3), None).await, Some(Role::Owner));
        assert_eq!(rounds.await.unwrap(), 2, "one round trip per lookup here");
        feed.not_listening();
        assert_eq!(cache.lookup(7, 1, day(3), None).await, None);
    }
}
