//! The SQL of the event streams: positions, payloads, recipients, replay and pruning.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::db::schema::{event_streams, events, user_events};
use crate::db::{on_backend, DbConnection};

/// Rows per statement when one event goes to many users (keeps every statement well under
/// the bound-parameter limits of both engines).
const CHUNK: usize = 1_000;

/// One event of a user's stream, as replayed.
#[derive(Debug, Clone, Queryable)]
pub struct StreamRow {
    pub seq: i64,
    pub kind: String,
    pub data: String,
}

/// `(event_id, user_id, seq)`: where an event sits in a user's stream.
pub type Position = (i64, i64, i64);

/// One stored event's payload, for the cross-process listener.
#[derive(Debug, Clone, Queryable)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub data: String,
}

pub fn insert_event(
    conn: &mut DbConnection,
    kind: &str,
    data: &str,
    topic: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(events::table)
        .values((
            events::kind.eq(kind),
            events::data.eq(data),
            events::topic.eq(topic),
            events::created_at.eq(at),
        ))
        .returning(events::id)
        .get_result(conn)
}

/// Creates the users' counters where missing.
pub fn open_streams(conn: &mut DbConnection, users: &[i64]) -> QueryResult<()> {
    for chunk in users.chunks(CHUNK) {
        let fresh: Vec<_> = chunk
            .iter()
            .map(|user| {
                (
                    event_streams::user_id.eq(*user),
                    event_streams::last_seq.eq(0_i64),
                )
            })
            .collect();
        on_backend!(conn, |c| diesel::insert_into(event_streams::table)
            .values(&fresh)
            .on_conflict_do_nothing()
            .execute(c))?;
    }
    Ok(())
}

/// Replaces the stored payload of every event about `topic`.
pub fn rewrite_topic(conn: &mut DbConnection, topic: &str, data: &str) -> QueryResult<usize> {
    diesel::update(events::table.filter(events::topic.eq(topic)))
        .set(events::data.eq(data))
        .execute(conn)
}

/// Takes the next position in each user's stream (`users` sorted, without repeats) and
/// returns `(user_id, seq)` pairs. Each user's counter stays locked until the transaction
/// ends, so a later position can never commit before an earlier one: a reader that has seen
/// position N has seen everything below it. Counters are locked in user-id order, so two
/// writers with overlapping recipients queue instead of deadlocking. (SQLite runs one writer
/// at a time, which gives the same guarantee.) Counters are created with their users; one
/// that is missing all the same is created here.
pub fn take_positions(conn: &mut DbConnection, users: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
    let mut positions = Vec::with_capacity(users.len());
    for chunk in users.chunks(CHUNK) {
        let bumped = bump(conn, chunk)?;
        if bumped.len() < chunk.len() {
            let missing: Vec<i64> = chunk
                .iter()
                .copied()
                .filter(|u| !bumped.iter().any(|(b, _)| b == u))
                .collect();
            open_streams(conn, &missing)?;
            positions.extend(bump(conn, &missing)?);
        }
        positions.extend(bumped);
    }
    Ok(positions)
}

/// Locks (in user-id order) and advances the existing counters of `users`: one statement.
fn bump(conn: &mut DbConnection, users: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
    use diesel::sql_types::{Array, BigInt};
    #[derive(QueryableByName)]
    struct Bumped {
        #[diesel(sql_type = BigInt)]
        user_id: i64,
        #[diesel(sql_type = BigInt)]
        last_seq: i64,
    }
    let rows: Vec<Bumped> = match conn {
        DbConnection::Postgresql(c) => diesel::sql_query(
            "UPDATE event_streams SET last_seq = last_seq + 1 WHERE user_id IN \
             (SELECT user_id FROM event_streams WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE) \
             RETURNING user_id, last_seq",
        )
        .bind::<Array<BigInt>, _>(users)
        .load(c)?,
        // The transaction holds SQLite's one write lock (`BEGIN IMMEDIATE`).
        DbConnection::Sqlite(c) => {
            diesel::update(event_streams::table.filter(event_streams::user_id.eq_any(users)))
                .set(event_streams::last_seq.eq(event_streams::last_seq + 1))
                .returning((event_streams::user_id, event_streams::last_seq))
                .get_results::<(i64, i64)>(c)?
                .into_iter()
                .map(|(user_id, last_seq)| Bumped { user_id, last_seq })
                .collect()
        }
    };
    Ok(rows.into_iter().map(|b| (b.user_id, b.last_seq)).collect())
}

pub fn insert_recipients(
    conn: &mut DbConnection,
    event_id: i64,
    positions: &[(i64, i64)],
) -> QueryResult<()> {
    for chunk in positions.chunks(CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|(user, seq)| {
                (
                    user_events::user_id.eq(*user),
                    user_events::seq.eq(*seq),
                    user_events::event_id.eq(event_id),
                )
            })
            .collect();
        on_backend!(conn, |c| diesel::insert_into(user_events::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}

/// Wakes the other processes' listeners when the transaction commits (PostgreSQL delivers
/// a `NOTIFY` only then, and never one of a transaction that rolled back).
pub fn notify(conn: &mut DbConnection, channel: &str, payload: &str) -> QueryResult<()> {
    if let DbConnection::Postgresql(c) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(channel)
            .bind::<Text, _>(payload)
            .execute(c)?;
    }
    Ok(())
}

/// The user's latest position (0 before their first event).
pub fn head(conn: &mut DbConnection, user_id: i64) -> QueryResult<i64> {
    event_streams::table
        .find(user_id)
        .select(event_streams::last_seq)
        .first(conn)
        .optional()
        .map(Option::unwrap_or_default)
}

/// Whether the event at `seq` is still kept.
pub fn is_kept(conn: &mut DbConnection, user_id: i64, seq: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(user_events::table.find((user_id, seq)))).get_result(conn)
}

/// Up to `limit` of the user's events after `after`, in order.
pub fn after(
    conn: &mut DbConnection,
    user_id: i64,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<StreamRow>> {
    user_events::table
        .inner_join(events::table)
        .filter(user_events::user_id.eq(user_id))
        .filter(user_events::seq.gt(after))
        .order(user_events::seq.asc())
        .limit(limit)
        .select((user_events::seq, events::kind, events::data))
        .load(conn)
}

/// The payloads of `event_ids`, and their positions for `users` (the users with a socket
/// on this process): `(event_id, user_id, seq)`.
pub fn deliveries(
    conn: &mut DbConnection,
    event_ids: &[i64],
    users: &[i64],
) -> QueryResult<(Vec<EventRow>, Vec<Position>)> {
    let bodies = events::table
        .filter(events::id.eq_any(event_ids))
        .select((events::id, events::kind, events::data))
        .load::<EventRow>(conn)?;
    let mut positions = Vec::new();
    for users in users.chunks(CHUNK) {
        positions.extend(
            user_events::table
                .filter(user_events::event_id.eq_any(event_ids))
                .filter(user_events::user_id.eq_any(users))
                .select((
                    user_events::event_id,
                    user_events::user_id,
                    user_events::seq,
                ))
                .load::<(i64, i64, i64)>(conn)?,
        );
    }
    Ok((bodies, positions))
}

/// Deletes up to `batch` events older than `before` (their recipients go with them).
/// Returns how many went; call again until it returns less than `batch`.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
    let old: Vec<i64> = events::table
        .filter(events::created_at.lt(before))
        .order(events::id)
        .limit(batch)
        .select(events::id)
        .load(conn)?;
    if old.is_empty() {
        return Ok(0);
    }
    diesel::delete(user_events::table.filter(user_events::event_id.eq_any(&old))).execute(conn)?;
    diesel::delete(events::table.filter(events::id.eq_any(&old))).execute(conn)
}
