//! How copies of database rows kept in a process's memory stay true on every process.
//!
//! A memory ([`Remembers`]) listens on a channel that names the keys of changed rows. The
//! database itself announces every change, from triggers, so no code path (nor an operator's
//! manual `UPDATE`) can change a row without the memories hearing of it:
//! - on PostgreSQL the triggers `NOTIFY`, which PostgreSQL delivers when the transaction
//!   commits; each process's event listener hands the notices to its [`ChangeFeed`]. A notice
//!   travels on its own, so before believing memory a request waits for its [`Ticket`] to
//!   pass the [`Fence`]: a round trip on the listening connection that started after the
//!   request arrived. PostgreSQL delivers the notices committed before a query ahead of that
//!   query's answer, so once the round trip is back every change committed before the
//!   request arrived has been heard. One round trip serves every request that arrived while
//!   the previous one was out; under load, rounds are paced (`STOCKROOM_FENCE_PACE_US`, see
//!   [`Fence`]) so that each serves many. While the listener is not connected, or a round
//!   trip takes longer than [`FENCE_TIMEOUT`], requests ask the database.
//! - on SQLite the triggers call `stockroom_changed(channel, key)`, a function each
//!   connection registers, which notes the key on the calling thread. [`crate::db::Db::run`]
//!   hands the keys to the feed once the work on that connection is done (committed), before
//!   the request is answered. Other processes on the same database file hear of it through a
//!   counter in a file beside the database that every process maps ([`SharedCounter`]).

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// Where the triggers of the migration `item_notices` announce that an item or its batches
/// changed (payload: the item's id).
pub const ITEMS_CHANNEL: &str = "stockroom_items";

/// How long a request waits for the listener's round trip before asking the database.
pub const FENCE_TIMEOUT: Duration = Duration::from_millis(250);

/// A memory of database rows that the database's change notices keep current.
pub trait Remembers: Send + Sync {
    /// The channel its triggers announce changes on.
    fn channel(&self) -> &'static str;
    /// A change was committed (the payload names the key; empty for "anything").
    fn heard(&self, payload: &str);
    /// Changes may have been missed (the listener was away): forget everything.
    fn forget_all(&self);
}

/// Where a request stands in the fence's rounds, taken when the request arrived: memory is
/// believed for it once a round numbered `0` or later has come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(pub u64);

/// Round trips on the listening connection that requests wait for (see the module
/// documentation). Rounds are numbered; a request arriving when `started` is n needs round
/// n + 1 or later to have finished.
pub struct Fence {
    started: AtomicU64,
    finished: watch::Sender<u64>,
    wanted: Notify,
    connected: AtomicBool,
    /// The least time from one round's start to the next one's. Under load rounds would
    /// otherwise follow each other back to back, each a wake-up of the listener, of
    /// PostgreSQL's backend and of every waiting worker, for a handful of requests; paced,
    /// one round serves many. Measured on 2 cores, `GET /items/{id}` at 64 connections:
    /// 600 µs gave about an eighth more requests per second than none, with a lower p99.
    /// Only a round that more than one request waited for is followed by a pause: a lone
    /// client (one request after another) is not held up waiting for company; others
    /// wait at most this much longer.
    pace: Duration,
    /// Requests waiting for a round now.
    waiting: AtomicUsize,
}

impl Fence {
    pub fn new(pace: Duration) -> Self {
        Self {
            started: AtomicU64::new(0),
            finished: watch::Sender::new(0),
            wanted: Notify::new(),
            connected: AtomicBool::new(false),
            pace,
            waiting: AtomicUsize::new(0),
        }
    }

    /// How long the listener pauses after a round that started `started` ago, before the
    /// next may start: zero when at most one request was waiting for it (see `pace`).
    pub fn pause_after(&self, started: Duration, waited_for_it: usize) -> Duration {
        if waited_for_it > 1 {
            self.pace.saturating_sub(started)
        } else {
            Duration::ZERO
        }
    }

    /// Requests waiting for a round now (read as a round starts: those it serves).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// The round a request arriving now waits for.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.started.load(Ordering::SeqCst) + 1)
    }

    /// Whether every notice committed before `ticket` was taken (None: now) has been heard
    /// (false when the listener is away or slow).
    pub async fn pass(&self, ticket: Option<Ticket>) -> bool {
        if !self.connected.load(Ordering::SeqCst) {
            return false;
        }
        let ticket = ticket.unwrap_or_else(|| self.ticket());
        let mut finished = self.finished.subscribe();
        if *finished.borrow() >= ticket.0 {
            return true;
        }
        self.wanted.notify_one();
        let _counted = Waiting::count(&self.waiting);
        let passed =
            tokio::time::timeout(FENCE_TIMEOUT, finished.wait_for(|done| *done >= ticket.0)).await;
        matches!(passed, Ok(Ok(_)))
    }

    /// Waits until a request needs a round trip, and numbers it (for the listener).
    pub async fn next_round(&self) -> u64 {
        self.wanted.notified().await;
        self.started.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Round `round` came back: the notices committed before it started have been heard.
    pub fn finished(&self, round: u64) {
        self.finished.send_if_modified(|done| {
            let moved = round > *done;
            *done = (*done).max(round);
            moved
        });
    }

    fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::SeqCst);
    }
}

/// One request counted in [`Fence::waiting`] until it stops waiting, however that ends
/// (also when the request is dropped meanwhile).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The memories of one process, and how they hear of changes.
pub struct ChangeFeed {
    members: RwLock<Vec<Arc<dyn Remembers>>>,
    /// PostgreSQL only: the listener's round trips.
    fence: Option<Arc<Fence>>,
}

impl ChangeFeed {
    /// Changes heard from this process's own connections only (SQLite).
    pub fn local() -> Self {
        Self {
            members: RwLock::new(Vec::new()),
            fence: None,
        }
    }

    /// Changes heard through a listener, fenced by its round trips (PostgreSQL), paced by
    /// `pace` under load (see [`Fence`]).
    pub fn listened(pace: Duration) -> Self {
        Self {
            members: RwLock::new(Vec::new()),
            fence: Some(Arc::new(Fence::new(pace))),
        }
    }

    pub fn fence(&self) -> Option<&Arc<Fence>> {
        self.fence.as_ref()
    }

    /// The ticket of a request arriving now (None without a listener).
    pub fn ticket(&self) -> Option<Ticket> {
        self.fence.as_ref().map(|f| f.ticket())
    }

    pub fn join(&self, member: Arc<dyn Remembers>) {
        self.members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(member);
    }

    /// The channels the listener must `LISTEN` on.
    pub fn channels(&self) -> Vec<&'static str> {
        self.members().iter().map(|m| m.channel()).collect()
    }

    fn members(&self) -> Vec<Arc<dyn Remembers>> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A notice on `channel` arrived (from the listener, or from this process's own SQLite
    /// connections through [`Self::heard_here`]).
    pub fn heard(&self, channel: &str, payload: &str) {
        for member in self.members() {
            if member.channel() == channel {
                member.heard(payload);
            }
        }
    }

    /// Hands the changes the calling thread's SQLite connection noted to the memories.
    /// Call once the work on that connection has committed.
    pub fn heard_here(&self) {
        let changes = JOURNAL.with(|j| std::mem::take(&mut *j.borrow_mut()));
        for (channel, key) in changes {
            self.heard(&channel, &key.to_string());
        }
    }

    /// The listener listens (again): whatever changed while nobody listened is forgotten,
    /// then memory may be believed.
    pub fn listening(&self) {
        self.forget_all();
        if let Some(fence) = &self.fence {
            fence.set_connected(true);
        }
    }

    /// The listener lost its connection: believe nothing until it listens again.
    pub fn not_listening(&self) {
        if let Some(fence) = &self.fence {
            fence.set_connected(false);
        }
        self.forget_all();
    }

    fn forget_all(&self) {
        for member in self.members() {
            member.forget_all();
        }
    }
}

thread_local! {
    /// Changes this thread's SQLite connection made, noted by the triggers' function and
    /// handed on by [`ChangeFeed::heard_here`]. At most one transaction's worth: drained
    /// after every piece of database work.
    static JOURNAL: RefCell<Vec<(String, i64)>> = const { RefCell::new(Vec::new()) };
}

/// The body of the SQL function `stockroom_changed(channel, key)` on SQLite connections.
pub fn note_change(channel: String, key: i64) -> i32 {
    JOURNAL.with(|j| {
        let mut journal = j.borrow_mut();
        // A bulk change names many keys; past this many, "everything" says it in one.
        if journal.len() < MAX_NOTED {
            journal.push((channel, key));
        } else if !journal.iter().any(|(c, k)| *k == ANY_KEY && *c == channel) {
            journal.push((channel, ANY_KEY));
        }
    });
    0
}

/// Keys noted one by one per piece of work, before "everything" is noted instead.
const MAX_NOTED: usize = 10_000;
/// The key that means "every key of the channel" (no row has a negative id).
pub const ANY_KEY: i64 = -1;

/// Values remembered by integer key, with what keeps them true (see the module
/// documentation). Values are stored type-erased so that plumbing knows no area's types.
pub struct KeyedMemory {
    channel: &'static str,
    entries: quick_cache::sync::Cache<i64, Stamped, Weigh>,
    /// Values derived from many keys (a rendered page of a list), by a hash of what they
    /// answer: forgotten whenever any key changes.
    views: quick_cache::sync::Cache<u64, Stamped, Weigh>,
    /// Moves with every forgetting: a value read from the database while it moved may be
    /// older than the change that moved it, and is not kept.
    generation: AtomicU64,
    /// SQLite file databases: moved by every process that changes a key.
    shared: Option<SharedCounter>,
    /// The value of `shared` that this memory accounts for: every change counted up to it
    /// has been forgotten here. A move of the counter past it by another process makes this
    /// memory forget everything; a move by this process's own change, which it forgets
    /// key by key, advances it.
    accounted: AtomicU64,
    fence: Option<Arc<Fence>>,
}

#[derive(Clone)]
struct Stamped {
    value: Arc<dyn Any + Send + Sync>,
    weight: u64,
}

#[derive(Clone)]
struct Weigh;

impl<K> quick_cache::Weighter<K, Stamped> for Weigh {
    fn weight(&self, _key: &K, value: &Stamped) -> u64 {
        value.weight
    }
}

/// Read before loading a value from the database; hand it to [`KeyedMemory::remember`].
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    generation: u64,
}

impl KeyedMemory {
    /// A memory of at most `budget_bytes` of entries and an eighth of that of views (by the
    /// weights values are remembered with), heard on `channel`. On SQLite, `sqlite_path`
    /// names the database file whose processes share a counter (`<path>.<channel>`); when
    /// that file cannot be made, nothing is remembered.
    pub fn new(
        channel: &'static str,
        budget_bytes: u64,
        feed: &ChangeFeed,
        sqlite_path: Option<&str>,
    ) -> Option<Arc<Self>> {
        if budget_bytes == 0 {
            return None;
        }
        let shared = match sqlite_path.map(|path| SharedCounter::beside(path, channel)) {
            Some(Ok(counter)) => counter,
            Some(Err(e)) => {
                tracing::warn!(error = %e, channel, "cannot share the change counter beside the database; nothing will be remembered");
                return None;
            }
            None => None,
        };
        // Views get an eighth more than the budget, so that lists never crowd out the
        // entries the budget is sized for. Estimated: entries a quarter kilobyte each,
        // views (pages) eight kilobytes.
        let views_budget = budget_bytes / 8;
        let estimated =
            |bytes: u64, each: u64| usize::try_from(bytes / each).unwrap_or(usize::MAX).max(16);
        let memory = Arc::new(Self {
            channel,
            entries: quick_cache::sync::Cache::with_weighter(
                estimated(budget_bytes, 256),
                budget_bytes,
                Weigh,
            ),
            views: quick_cache::sync::Cache::with_weighter(
                estimated(views_budget, 8192),
                views_budget,
                Weigh,
            ),
            generation: AtomicU64::new(0),
            accounted: AtomicU64::new(shared.as_ref().map_or(0, SharedCounter::load)),
            shared,
            fence: feed.fence().cloned(),
        });
        feed.join(memory.clone());
        Some(memory)
    }

    /// Forgets everything when another process changed a key since this memory last
    /// accounted for the shared counter. Any load that was under way then fails its stamp.
    fn catch_up(&self) {
        let Some(counter) = &self.shared else { return };
        let now = counter.load();
        if now != self.accounted.load(Ordering::SeqCst) {
            self.forget_all();
            // Everything counted up to `now` was committed before it was counted, and has
            // just been forgotten.
            self.accounted.fetch_max(now, Ordering::SeqCst);
        }
    }

    /// This process changed `key`: tells the other processes, and forgets only `key` unless
    /// another process's change was counted meanwhile.
    fn changed_here(&self, key: Option<i64>) {
        let Some(counter) = &self.shared else {
            match key {
                Some(key) => self.forget(key),
                None => self.forget_all(),
            }
            return;
        };
        let before = counter.bump();
        let alone = self
            .accounted
            .compare_exchange(before, before + 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        match key {
            Some(key) if alone => self.forget(key),
            _ => {
                self.forget_all();
                self.accounted.fetch_max(before + 1, Ordering::SeqCst);
            }
        }
    }

    /// The value remembered for `key`, when it may be believed for a request holding
    /// `ticket` (taken when it arrived; None takes one now).
    pub async fn recall<T: Any + Send + Sync>(
        self: &Arc<Self>,
        key: i64,
        ticket: Option<Ticket>,
    ) -> Option<Arc<T>> {
        // Nothing remembered: no need to wait for the fence.
        self.entries.get(&key)?;
        self.believable(ticket).await?.recall(key)
    }

    /// The view remembered under `key` (see [`Self::remember_view`]), when it may be
    /// believed for a request holding `ticket`.
    pub async fn recall_view<T: Any + Send + Sync>(
        self: &Arc<Self>,
        key: u64,
        ticket: Option<Ticket>,
    ) -> Option<Arc<T>> {
        self.views.get(&key)?;
        self.believable(ticket).await?.recall_view(key)
    }

    /// Memory as it may be believed for a request holding `ticket` (None: not now, ask the
    /// database), for reading many keys, also on a blocking thread.
    pub async fn believable(self: &Arc<Self>, ticket: Option<Ticket>) -> Option<Believed> {
        if let Some(fence) = &self.fence {
            if !fence.pass(ticket).await {
                return None;
            }
        }
        // Once per request, not per key: what another process changed before the request
        // arrived is forgotten now; what it changes later may be, or not, for this request.
        self.catch_up();
        Some(Believed {
            memory: self.clone(),
        })
    }

    /// Read before loading what [`Self::remember`] will keep.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            generation: self.generation.load(Ordering::SeqCst),
        }
    }

    /// Keeps `value` (about `weight` bytes) for `key`, as the database showed it after
    /// `stamp` was read, unless something was forgotten meanwhile (the value may predate it).
    pub fn remember<T: Any + Send + Sync>(
        &self,
        key: i64,
        value: Arc<T>,
        weight: u64,
        stamp: Stamp,
    ) {
        self.keep(&self.entries, key, Stamped { value, weight }, stamp);
    }

    /// Keeps `value`, derived from any number of keys as the database showed them after
    /// `stamp` was read, under `key` (a hash of the question it answers; keep the question
    /// itself in the value, to check). A change to any key forgets it.
    pub fn remember_view<T: Any + Send + Sync>(
        &self,
        key: u64,
        value: Arc<T>,
        weight: u64,
        stamp: Stamp,
    ) {
        self.keep(&self.views, key, Stamped { value, weight }, stamp);
    }

    fn keep<K: Eq + std::hash::Hash + Clone>(
        &self,
        cache: &quick_cache::sync::Cache<K, Stamped, Weigh>,
        key: K,
        value: Stamped,
        stamp: Stamp,
    ) {
        if self.generation.load(Ordering::SeqCst) != stamp.generation {
            return;
        }
        cache.insert(key.clone(), value);
        // A forgetting between the check above and the insert would otherwise be undone.
        if self.generation.load(Ordering::SeqCst) != stamp.generation {
            cache.remove(&key);
        }
    }

    fn forget(&self, key: i64) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.remove(&key);
        self.views.clear();
    }
}

impl Remembers for KeyedMemory {
    fn channel(&self) -> &'static str {
        self.channel
    }

    fn heard(&self, payload: &str) {
        // Other processes on the same SQLite file learn of it through the counter.
        match payload.parse::<i64>() {
            Ok(key) if key != ANY_KEY => self.changed_here(Some(key)),
            _ => self.changed_here(None),
        }
    }

    fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.clear();
        self.views.clear();
    }
}

/// A [`KeyedMemory`] whose fence a request has passed (on SQLite: whose shared counter it
/// has caught up with): what it holds now is no older than the request.
pub struct Believed {
    memory: Arc<KeyedMemory>,
}

impl Believed {
    pub fn recall<T: Any + Send + Sync>(&self, key: i64) -> Option<Arc<T>> {
        self.memory.entries.get(&key)?.value.downcast::<T>().ok()
    }

    pub fn recall_view<T: Any + Send + Sync>(&self, key: u64) -> Option<Arc<T>> {
        self.memory.views.get(&key)?.value.downcast::<T>().ok()
    }
}

/// A 64-bit counter in a file that every process on the same SQLite database maps, read
/// and moved with atomic operations (as SQLite shares its own `-shm` index between
/// processes).
pub struct SharedCounter {
    map: memmap2::MmapMut,
}

impl SharedCounter {
    /// The counter that every process on the SQLite database at `path` shares, in
    /// `<path>.<name>`; None for a database no other process can open (in memory).
    pub fn beside(path: &str, name: &str) -> std::io::Result<Option<Self>> {
        if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
            return Ok(None);
        }
        Self::open(&format!("{path}.{name}")).map(Some)
    }

    fn open(path: &str) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path)?;
        // Growing a new file to 8 zero bytes is the same whichever process does it first.
        if file.metadata()?.len() < 8 {
            file.set_len(8)?;
        }
        // SAFETY: the mapping is only ever read and written through the one `AtomicU64`
        // below. Other processes change it concurrently, which is exactly what atomics on
        // shared memory are for; nobody truncates the file while it is mapped.
        let map = unsafe { memmap2::MmapOptions::new().len(8).map_mut(&file)? };
        Ok(Self { map })
    }

    fn counter(&self) -> &AtomicU64 {
        let ptr = self.map.as_ptr();
        debug_assert_eq!(ptr.align_offset(std::mem::align_of::<AtomicU64>()), 0);
        // SAFETY: the mapping is page-aligned, 8 bytes long and lives as long as `self`.
        unsafe { &*ptr.cast::<AtomicU64>() }
    }

    pub fn load(&self) -> u64 {
        self.counter().load(Ordering::SeqCst)
    }

    /// Counts a change; returns the value before it.
    pub fn bump(&self) -> u64 {
        self.counter().fetch_add(1, Ordering::SeqCst)
    }
}

/// Test support: answers `rounds` of `feed`'s fence as the listener would, returning the
/// last round's number.
#[cfg(test)]
pub fn answer_rounds(feed: Arc<ChangeFeed>, rounds: usize) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let fence = feed.fence().expect("a listened feed");
        let mut round = 0;
        for _ in 0..rounds {
            round = fence.next_round().await;
            fence.finished(round);
        }
        round
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rounds pause only after serving more than one request, and never past the pace.
    #[test]
    fn a_lone_request_is_never_held_up_by_the_pace() {
        let fence = Fence::new(Duration::from_micros(600));
        let started = Duration::from_micros(100);
        assert_eq!(fence.pause_after(started, 0), Duration::ZERO);
        assert_eq!(fence.pause_after(started, 1), Duration::ZERO);
        assert_eq!(fence.pause_after(started, 5), Duration::from_micros(500));
        assert_eq!(
            fence.pause_after(Duration::from_micros(700), 5),
            Duration::ZERO
        );
    }

    /// The count the pace is decided by goes back down however a wait ends, also when the
    /// waiting request is dropped.
    #[tokio::test]
    async fn waiting_requests_are_counted_until_they_stop_waiting() {
        let fence = Fence::new(Duration::ZERO);
        fence.set_connected(true);
        let mut dropped = Box::pin(fence.pass(None));
        assert!(futures_util::poll!(&mut dropped).is_pending());
        let mut answered = Box::pin(fence.pass(None));
        assert!(futures_util::poll!(&mut answered).is_pending());
        assert_eq!(fence.waiting(), 2);
        drop(dropped);
        assert_eq!(fence.waiting(), 1);
        let round = fence.next_round().await;
        fence.finished(round);
        assert!(answered.await);
        assert_eq!(fence.waiting(), 0);
    }

    #[tokio::test]
    async fn a_change_in_another_process_is_seen_through_the_shared_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let path = path.to_str().unwrap();
        let (here_feed, there_feed) = (ChangeFeed::local(), ChangeFeed::local());
        let here = KeyedMemory::new("things", 1 << 20, &here_feed, Some(path)).unwrap();
        let _there = KeyedMemory::new("things", 1 << 20, &there_feed, Some(path)).unwrap();
        here.remember(7, Arc::new("seven"), 10, here.stamp());
        assert_eq!(
            here.recall::<&str>(7, None).await.as_deref(),
            Some(&"seven")
        );
        here.remember(9, Arc::new("nine"), 10, here.stamp());
        // A change made by this process forgets only what it changed.
        note_change("things".to_owned(), 9);
        here_feed.heard_here();
        assert_eq!(here.recall::<&str>(9, None).await, None);
        assert_eq!(
            here.recall::<&str>(7, None).await.as_deref(),
            Some(&"seven")
        );
        // One made by another process, which does not say what it changed here, forgets all.
        note_change("things".to_owned(), 8);
        there_feed.heard_here();
        assert_eq!(here.recall::<&str>(7, None).await, None);
        here.remember(7, Arc::new("seven"), 10, here.stamp());
        assert_eq!(
            here.recall::<&str>(7, None).await.as_deref(),
            Some(&"seven"),
            "remembered again once the other change is accounted for"
        );
    }

    #[tokio::test]
    async fn a_load_that_raced_a_change_is_never_kept() {
        let feed = ChangeFeed::local();
        let memory = KeyedMemory::new("things", 1 << 20, &feed, None).unwrap();
        let stamp = memory.stamp();
        feed.heard("things", "7");
        memory.remember(7, Arc::new(1_u8), 1, stamp);
        assert_eq!(memory.recall::<u8>(7, None).await, None);
        memory.remember(7, Arc::new(2_u8), 1, memory.stamp());
        feed.heard("other", "7");
        assert_eq!(memory.recall::<u8>(7, None).await.as_deref(), Some(&2));
        feed.heard("things", "8");
        assert_eq!(
            memory.recall::<u8>(7, None).await.as_deref(),
            Some(&2),
            "per key"
        );
        feed.heard("things", "");
        assert_eq!(memory.recall::<u8>(7, None).await, None, "everything");
    }

    #[tokio::test]
    async fn a_view_is_forgotten_when_any_key_changes() {
        let feed = ChangeFeed::local();
        let memory = KeyedMemory::new("things", 1 << 20, &feed, None).unwrap();
        let stamp = memory.stamp();
        feed.heard("things", "3");
        memory.remember_view(1, Arc::new("page"), 4, stamp);
        assert_eq!(memory.recall_view::<&str>(1, None).await, None, "raced");
        memory.remember_view(1, Arc::new("page"), 4, memory.stamp());
        assert_eq!(
            memory.recall_view::<&str>(1, None).await.as_deref(),
            Some(&"page")
        );
        feed.heard("other", "3");
        assert!(memory.recall_view::<&str>(1, None).await.is_some());
        feed.heard("things", "3");
        assert_eq!(memory.recall_view::<&str>(1, None).await, None);
    }

    #[tokio::test]
    async fn postgres_memory_is_believed_only_after_a_round_trip_that_began_later() {
        let feed = Arc::new(ChangeFeed::listened(Duration::ZERO));
        let memory = KeyedMemory::new("things", 1 << 20, &feed, None).unwrap();
        memory.remember(7, Arc::new(1_u8), 1, memory.stamp());
        assert_eq!(memory.recall::<u8>(7, None).await, None, "nobody listens");
        feed.listening();
        memory.remember(7, Arc::new(1_u8), 1, memory.stamp());
        let rounds = answer_rounds(feed.clone(), 2);
        let ticket = feed.ticket();
        assert_eq!(memory.recall::<u8>(7, ticket).await.as_deref(), Some(&1));
        assert_eq!(
            memory.recall::<u8>(7, ticket).await.as_deref(),
            Some(&1),
            "the same request needs no second round"
        );
        feed.heard("things", "7");
        assert_eq!(memory.recall::<u8>(7, None).await, None, "forgotten");
        memory.remember(7, Arc::new(1_u8), 1, memory.stamp());
        assert_eq!(memory.recall::<u8>(7, None).await.as_deref(), Some(&1));
        assert_eq!(rounds.await.unwrap(), 2, "one round trip per request here");
        feed.not_listening();
        assert_eq!(memory.recall::<u8>(7, None).await, None);
    }
}
