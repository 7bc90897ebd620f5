//! Counting events per key in a fixed window (login failures per account-and-address and
//! per address, sign-ups per address). The counters live in the database, so every process
//! sharing it enforces one budget; keys are stored only as SHA-256 hashes.

use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Timestamp};
use sha2::{Digest, Sha256};

use crate::db::schema::rate_limits;
use crate::db::{on_backend, Db, DbConnection};
use crate::error::ApiResult;

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

    /// `Some(seconds to wait)` when `key` has used up its window.
    pub async fn blocked(&self, db: &Db, key: &str) -> ApiResult<Option<u64>> {
        let hashed = self.key(key);
        let row: Option<(NaiveDateTime, i32)> = db
            .run(move |conn| {
                Ok(rate_limits::table
                    .filter(rate_limits::key.eq(hashed))
                    .select((rate_limits::window_start, rate_limits::hits))
                    .first(conn)
                    .optional()?)
            })
            .await?;
        let Some((start, hits)) = row else {
            return Ok(None);
        };
        let cutoff = self.window_start_cutoff();
        if start <= cutoff || i64::from(hits) < i64::from(self.limit) {
            return Ok(None);
        }
        let wait = (start - cutoff).num_seconds().max(1);
        Ok(Some(u64::try_from(wait).unwrap_or(1)))
    }

    /// Counts one event for `key`, starting a new window when the old one is over.
    pub async fn record(&self, db: &Db, key: &str) -> ApiResult<()> {
        let hashed = self.key(key);
        let cutoff = self.window_start_cutoff();
        db.run(move |conn| {
            // Expired windows are dead weight; sweeping them here keeps the table small.
            diesel::delete(rate_limits::table.filter(rate_limits::window_start.le(cutoff)))
                .execute(conn)?;
            upsert_hit(conn, &hashed, cutoff)?;
            Ok(())
        })
        .await
    }

    pub async fn reset(&self, db: &Db, key: &str) -> ApiResult<()> {
        let hashed = self.key(key);
        db.run(move |conn| {
            diesel::delete(rate_limits::table.filter(rate_limits::key.eq(hashed))).execute(conn)?;
            Ok(())
        })
        .await
    }
}

/// One more hit in the key's window (a new window when the stored one started before
/// `cutoff`), atomically even when processes race.
fn upsert_hit(conn: &mut DbConnection, key: &str, cutoff: NaiveDateTime) -> QueryResult<usize> {
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
        .execute(c))
}
