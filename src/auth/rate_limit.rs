//! Counting attempts per key in a fixed window (logins per account-and-address and per
//! address, sign-ups per address). The counters live in the database, so every process
//! sharing it enforces one budget; keys are stored only as SHA-256 hashes.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Timestamp};
use sha2::{Digest, Sha256};

use crate::db::schema::rate_limits;
use crate::db::{on_backend, DbConnection};

#[derive(Debug, Clone, Copy)]
pub struct WindowLimiter {
    scope: &'static str,
    limit: u32,
    window: Duration,
}

impl WindowLimiter {
    pub fn new(scope: &'static str, limit: u32, window: Duration) -> Self {
        Self {
            scope,
            limit,
            window,
        }
    }

    fn key(&self, key: &str) -> String {
        hex::encode(Sha256::digest(format!("{}\n{key}", self.scope).as_bytes()))
    }

    fn window_start_cutoff(&self) -> NaiveDateTime {
        let window = chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX);
        crate::time::now() - window
    }

    /// Counts one attempt for `key` and answers whether it is over the limit:
    /// `Some(seconds until the window ends)`. Counting and reading are one statement (an
    /// upsert returning the new count), so concurrent attempts each get their own number and
    /// at most `limit` of them pass, however many arrive at once and whichever process
    /// serves them. Count before doing the work the limit protects, not after.
    pub fn hit(&self, conn: &mut DbConnection, key: &str) -> QueryResult<Option<u64>> {
        let cutoff = self.window_start_cutoff();
        // Expired windows are dead weight; sweeping them here keeps the table small.
        diesel::delete(rate_limits::table.filter(rate_limits::window_start.le(cutoff)))
            .execute(conn)?;
        let (hits, start) = upsert_hit(conn, &self.key(key), cutoff)?;
        if i64::from(hits) <= i64::from(self.limit) {
            return Ok(None);
        }
        let wait = (start - cutoff).num_seconds().max(1);
        Ok(Some(u64::try_from(wait).unwrap_or(1)))
    }

    /// Takes back one attempt counted by `hit` (one that turned out to be legitimate).
    pub fn undo(&self, conn: &mut DbConnection, key: &str) -> QueryResult<()> {
        diesel::update(
            rate_limits::table
                .filter(rate_limits::key.eq(self.key(key)))
                .filter(rate_limits::hits.gt(0)),
        )
        .set(rate_limits::hits.eq(rate_limits::hits - 1))
        .execute(conn)
        .map(|_| ())
    }

    /// Forgets every attempt of `key` in its window.
    pub fn reset(&self, conn: &mut DbConnection, key: &str) -> QueryResult<()> {
        diesel::delete(rate_limits::table.filter(rate_limits::key.eq(self.key(key))))
            .execute(conn)
            .map(|_| ())
    }
}

/// One more hit in the key's window (a new window when the stored one started before
/// `cutoff`), atomically even when processes race; returns the key's hits and window start
/// after it.
fn upsert_hit(
    conn: &mut DbConnection,
    key: &str,
    cutoff: NaiveDateTime,
) -> QueryResult<(i32, NaiveDateTime)> {
    let now = crate::time::now();
    let row = (
        rate_limits::key.eq(key),
        rate_limits::window_start.eq(now),
        rate_limits::hits.eq(1),
    );
    let hits = sql::<Integer>("CASE WHEN rate_limits.window_start <= ")
        .bind::<Timestamp, _>(cutoff)
        .sql(" THEN 1 ELSE rate_limits.hits + 1 END");
    let start = sql::<Timestamp>("CASE WHEN rate_limits.window_start <= ")
        .bind::<Timestamp, _>(cutoff)
        .sql(" THEN ")
        .bind::<Timestamp, _>(now)
        .sql(" ELSE rate_limits.window_start END");
    on_backend!(conn, |c| diesel::insert_into(rate_limits::table)
        .values(row)
        .on_conflict(rate_limits::key)
        .do_update()
        .set((
            rate_limits::hits.eq(hits),
            rate_limits::window_start.eq(start),
        ))
        .returning((rate_limits::hits, rate_limits::window_start))
        .get_result(c))
}
