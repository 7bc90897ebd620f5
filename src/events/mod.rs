//! Every user's durable event stream, and its live delivery.
//!
//! A change that users must hear of records an event in the same transaction as the change
//! ([`EventBus::record`]): the payload once, and for each recipient the next position of
//! their own stream (per-recipient rows, as Zulip keeps them). Positions are taken under a
//! per-user lock inside the writing transaction, so they commit in order; a reader that
//! has seen position N can never later find N−1 appear. After the commit the event is
//! [`EventBus::publish`]ed to this process's sockets, and PostgreSQL's `NOTIFY` (carrying
//! only the event's id) wakes the other processes, which read it back from the tables. A
//! socket replays from the tables whatever it has not seen (`?since=`), so nothing depends
//! on a push arriving: pushes only make delivery fast.

pub mod hub;
pub mod listener;
pub mod repo;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::db::{Db, DbConnection};
use crate::error::{ApiResult, OrInternal};
pub use hub::{EventBody, Hub, Push, Subscription};

/// The `LISTEN`/`NOTIFY` channel shared by every process on one database.
pub const CHANNEL: &str = "stockroom_events";

/// PostgreSQL refuses `NOTIFY` payloads of 8,000 bytes or more; ephemeral frames are split
/// by recipients to stay below this.
const MAX_NOTIFY_PAYLOAD: usize = 7_000;

/// An event recorded in a transaction, to publish once that transaction has committed.
#[must_use = "publish it after the transaction commits"]
pub struct Recorded {
    positions: Vec<(i64, i64)>,
    body: Arc<EventBody>,
}

/// What travels in a `NOTIFY`: keys, never the event itself.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Notice {
    /// A stored event, read back from the tables.
    Stored {
        /// The process that sent it (it has delivered it already).
        from: String,
        event: i64,
    },
    /// An ephemeral frame (small: `typing`) for these users.
    Ephemeral {
        from: String,
        users: Vec<i64>,
        frame: String,
    },
}

pub struct EventBus {
    hub: Arc<Hub>,
    /// Names this process in its notices, so its listener skips its own.
    instance: String,
    retention: Duration,
}

/// What a transaction run by [`EventBus::transaction`] records; published once it commits,
/// dropped if it rolls back.
pub struct Outbox {
    bus: Arc<EventBus>,
    recorded: Vec<Recorded>,
}

impl Outbox {
    /// Records `kind` with `data` for `recipients` (see [`EventBus::record`]).
    pub fn record<T: Serialize>(
        &mut self,
        conn: &mut DbConnection,
        recipients: impl IntoIterator<Item = i64>,
        kind: &str,
        data: &T,
    ) -> ApiResult<()> {
        self.record_about(conn, recipients, kind, data, None)
    }

    /// Records an event about `topic` (see [`EventBus::record_about`]).
    pub fn record_about<T: Serialize>(
        &mut self,
        conn: &mut DbConnection,
        recipients: impl IntoIterator<Item = i64>,
        kind: &str,
        data: &T,
        topic: Option<&str>,
    ) -> ApiResult<()> {
        let recorded = self.bus.record_about(conn, recipients, kind, data, topic)?;
        self.recorded.push(recorded);
        Ok(())
    }

    /// Rewrites the stored events about `topic` (see [`EventBus::rewrite`]).
    pub fn rewrite<T: Serialize>(
        &self,
        conn: &mut DbConnection,
        topic: &str,
        data: &T,
    ) -> ApiResult<()> {
        self.bus.rewrite(conn, topic, data)
    }
}

/// Where a resuming socket starts.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    /// Replay everything after this position.
    From(i64),
    /// What was asked for is no longer kept (or never existed): the client must reload
    /// through REST; live events continue after this position.
    Resync(i64),
}

impl EventBus {
    pub fn new(settings: &Settings) -> Self {
        Self {
            hub: Arc::new(Hub::new(
                settings.ws_queue_capacity,
                settings.ws_sockets_per_user,
            )),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            retention: settings.event_retention,
        }
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Records `kind` with `data` for `recipients`, inside the caller's transaction. Publish
    /// the result after the commit.
    pub fn record<T: Serialize>(
        &self,
        conn: &mut DbConnection,
        recipients: impl IntoIterator<Item = i64>,
        kind: &str,
        data: &T,
    ) -> ApiResult<Recorded> {
        self.record_about(conn, recipients, kind, data, None)
    }

    /// As [`EventBus::record`], for an event about `topic` (see [`EventBus::rewrite`]).
    pub fn record_about<T: Serialize>(
        &self,
        conn: &mut DbConnection,
        recipients: impl IntoIterator<Item = i64>,
        kind: &str,
        data: &T,
        topic: Option<&str>,
    ) -> ApiResult<Recorded> {
        let mut users: Vec<i64> = recipients.into_iter().collect();
        users.sort_unstable();
        users.dedup();
        let data = serde_json::to_string(data).or_internal()?;
        let event_id = repo::insert_event(conn, kind, &data, topic, crate::time::now())?;
        let positions = repo::take_positions(conn, &users)?;
        repo::insert_recipients(conn, event_id, &positions)?;
        let notice = Notice::Stored {
            from: self.instance.clone(),
            event: event_id,
        };
        repo::notify(
            conn,
            CHANNEL,
            &serde_json::to_string(&notice).or_internal()?,
        )?;
        Ok(Recorded {
            positions,
            body: Arc::new(EventBody {
                kind: kind.to_owned(),
                data,
            }),
        })
    }

    /// Replaces the stored payload of every event about `topic` with `data`, so that a
    /// replay no longer shows what was there (a deleted message's body). What sockets were
    /// sent already cannot be taken back.
    pub fn rewrite<T: Serialize>(
        &self,
        conn: &mut DbConnection,
        topic: &str,
        data: &T,
    ) -> ApiResult<()> {
        let data = serde_json::to_string(data).or_internal()?;
        repo::rewrite_topic(conn, topic, &data)?;
        Ok(())
    }

    /// Hands committed events to this process's sockets.
    pub fn publish(&self, recorded: impl IntoIterator<Item = Recorded>) {
        for r in recorded {
            self.hub.deliver(&r.positions, &r.body);
        }
    }

    /// Sends a frame that is never stored (`typing`) to `users`, here and on every other
    /// process.
    pub async fn publish_ephemeral<T: Serialize>(
        &self,
        db: &Db,
        users: Vec<i64>,
        kind: &str,
        data: &T,
    ) -> ApiResult<()> {
        let frame = serde_json::to_string(&serde_json::json!({"type": kind, "data": data}))
            .or_internal()?;
        let frame: Arc<str> = Arc::from(frame);
        self.hub.deliver_ephemeral(&users, &frame);
        if db.backend() != crate::config::Backend::Postgres {
            return Ok(());
        }
        let mut notices = Vec::new();
        let per_notice = MAX_NOTIFY_PAYLOAD.saturating_sub(frame.len()) / 21 + 1;
        for chunk in users.chunks(per_notice) {
            let notice = Notice::Ephemeral {
                from: self.instance.clone(),
                users: chunk.to_vec(),
                frame: frame.to_string(),
            };
            notices.push(serde_json::to_string(&notice).or_internal()?);
        }
        db.run(move |conn| {
            for notice in &notices {
                repo::notify(conn, CHANNEL, notice)?;
            }
            Ok(())
        })
        .await
    }

    /// Runs `f` in one write transaction (`Db::transaction`) and publishes what it recorded
    /// in its [`Outbox`] after the commit: a change and its events exist together or not at
    /// all, and no caller can forget to publish.
    pub async fn transaction<T, F>(self: &Arc<Self>, db: &Db, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut DbConnection, &mut Outbox) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let bus = self.clone();
        let (value, recorded) = db
            .transaction(move |conn| {
                let mut outbox = Outbox {
                    bus,
                    recorded: Vec::new(),
                };
                let value = f(conn, &mut outbox)?;
                Ok((value, outbox.recorded))
            })
            .await?;
        self.publish(recorded);
        Ok(value)
    }

    /// Runs `step` in transactions of its own (as [`EventBus::transaction`]) until one
    /// reports that it did nothing, and returns the sum of what they did: a long job done in
    /// short transactions, so writers waiting behind it wait little.
    pub async fn drain<F>(self: &Arc<Self>, db: &Db, step: F) -> ApiResult<usize>
    where
        F: Fn(&mut DbConnection, &mut Outbox) -> ApiResult<usize> + Clone + Send + 'static,
    {
        let mut total = 0;
        loop {
            let done = self.transaction(db, step.clone()).await?;
            if done == 0 {
                return Ok(total);
            }
            total += done;
        }
    }

    /// Registers a socket of `user_id`; `None` past the per-user limit.
    pub fn subscribe(&self, user_id: i64) -> Option<Subscription> {
        self.hub.subscribe(user_id)
    }

    /// Where a socket asking for the events after `since` starts.
    pub fn resume(conn: &mut DbConnection, user_id: i64, since: Option<i64>) -> ApiResult<Resume> {
        let head = repo::head(conn, user_id)?;
        Ok(match since {
            None => Resume::From(head),
            Some(n) if n == head => Resume::From(n),
            Some(n) if n > head || n < 0 => Resume::Resync(head),
            Some(n) if repo::is_kept(conn, user_id, n + 1)? => Resume::From(n),
            Some(_) => Resume::Resync(head),
        })
    }

    /// Up to `limit` events of the user's stream after `after`.
    pub fn replay(
        conn: &mut DbConnection,
        user_id: i64,
        after: i64,
        limit: i64,
    ) -> ApiResult<Vec<repo::StreamRow>> {
        Ok(repo::after(conn, user_id, after, limit)?)
    }

    /// Deletes the events older than the retention period, a batch per transaction.
    pub async fn prune(self: &Arc<Self>, db: &Db) -> ApiResult<usize> {
        const BATCH: i64 = 500;
        let retention = chrono::Duration::from_std(self.retention).or_internal()?;
        let before = crate::time::now() - retention;
        self.drain(db, move |conn, _| Ok(repo::prune(conn, before, BATCH)?))
            .await
    }
}

/// Creates a new user's (empty) stream, in the transaction that creates the user: positions
/// are then taken by locking rows that already exist, never by inserting them.
pub fn open_stream(conn: &mut DbConnection, user_id: i64) -> ApiResult<()> {
    Ok(repo::open_streams(conn, &[user_id])?)
}

/// The user's latest stream position (0 before their first event).
pub fn head(conn: &mut DbConnection, user_id: i64) -> ApiResult<i64> {
    Ok(repo::head(conn, user_id)?)
}

/// The text of a stored event's frame.
pub fn event_frame(seq: i64, kind: &str, data: &str) -> String {
    // `kind` is one of our own names and `data` is JSON we wrote: no escaping needed.
    format!(r#"{{"seq":{seq},"type":"{kind}","data":{data}}}"#)
}
