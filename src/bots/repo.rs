//! The SQL of bots and their webhook deliveries.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{bots, event_streams, webhook_deliveries};
use crate::db::{on_backend, DbConnection};

pub const PENDING: &str = "pending";
pub const DELIVERED: &str = "delivered";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = bots)]
pub struct BotRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub signing_secret: String,
    pub webhook_url: Option<String>,
    pub webhook_disabled_at: Option<NaiveDateTime>,
    pub webhook_disabled_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = bots)]
pub struct NewBotRow<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub token_hash: &'a str,
    pub signing_secret: &'a str,
    pub webhook_url: Option<&'a str>,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Default, AsChangeset)]
#[diesel(table_name = bots)]
pub struct BotChanges<'a> {
    pub name: Option<&'a str>,
    pub description: Option<Option<&'a str>>,
    pub webhook_url: Option<Option<&'a str>>,
    pub webhook_disabled_at: Option<Option<NaiveDateTime>>,
    pub webhook_disabled_reason: Option<Option<&'a str>>,
    pub delivered_seq: Option<i64>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct DeliveryRow {
    pub id: i64,
    pub bot_id: i64,
    pub seq: i64,
    pub event_type: String,
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<NaiveDateTime>,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub delivered_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct NewDeliveryRow {
    pub bot_id: i64,
    pub seq: i64,
    pub event_type: String,
    pub payload: String,
    pub status: &'static str,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// What one attempt changed about a delivery.
#[derive(AsChangeset)]
#[diesel(table_name = webhook_deliveries, treat_none_as_null = true)]
pub struct AttemptResult<'a> {
    pub status: &'a str,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<&'a str>,
    pub last_attempt_at: Option<NaiveDateTime>,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub delivered_at: Option<NaiveDateTime>,
}

pub fn insert_bot(conn: &mut DbConnection, bot: &NewBotRow<'_>) -> QueryResult<BotRow> {
    on_backend!(conn, |c| diesel::insert_into(bots::table)
        .values(bot)
        .returning(BotRow::as_returning())
        .get_result(c))
}

pub fn find_bot(conn: &mut DbConnection, id: i64) -> QueryResult<Option<BotRow>> {
    bots::table
        .find(id)
        .select(BotRow::as_select())
        .first(conn)
        .optional()
}

/// Bots in id order, after `after`.
pub fn list_bots(
    conn: &mut DbConnection,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<BotRow>> {
    let mut q = bots::table
        .select(BotRow::as_select())
        .order(bots::id)
        .limit(limit + 1)
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(bots::id.gt(after));
    }
    q.load(conn)
}

pub fn update_bot(
    conn: &mut DbConnection,
    id: i64,
    changes: &BotChanges<'_>,
) -> QueryResult<usize> {
    diesel::update(bots::table.find(id))
        .set(changes)
        .execute(conn)
}

pub fn set_token_hash(conn: &mut DbConnection, id: i64, hash: &str) -> QueryResult<usize> {
    diesel::update(bots::table.find(id))
        .set((
            bots::token_hash.eq(hash),
            bots::updated_at.eq(crate::time::now()),
        ))
        .execute(conn)
}

pub fn delete_bot(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(bots::table.find(id)).execute(conn)
}

/// `(bot_id, user_id, delivered_seq)` of the bots with a working webhook whose stream holds
/// events that have no delivery yet.
pub fn behind(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<(i64, i64, i64)>> {
    bots::table
        .inner_join(event_streams::table.on(event_streams::user_id.eq(bots::user_id)))
        .filter(bots::webhook_url.is_not_null())
        .filter(bots::webhook_disabled_at.is_null())
        .filter(event_streams::last_seq.gt(bots::delivered_seq))
        .select((bots::id, bots::user_id, bots::delivered_seq))
        .order(bots::id)
        .limit(limit)
        .load(conn)
}

/// Moves the bot's cursor from `from` to `to`; 0 when another process moved it first.
pub fn advance_cursor(
    conn: &mut DbConnection,
    bot_id: i64,
    from: i64,
    to: i64,
) -> QueryResult<usize> {
    diesel::update(
        bots::table
            .filter(bots::id.eq(bot_id))
            .filter(bots::delivered_seq.eq(from)),
    )
    .set(bots::delivered_seq.eq(to))
    .execute(conn)
}

/// Inserts the deliveries not made yet (by another process) and says how many were new.
pub fn insert_deliveries(conn: &mut DbConnection, rows: &[NewDeliveryRow]) -> QueryResult<usize> {
    let ids: Vec<i64> = on_backend!(conn, |c| diesel::insert_into(webhook_deliveries::table)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(webhook_deliveries::id)
        .get_results(c))?;
    Ok(ids.len())
}

/// Says the bot has work due at `at`, unless it has earlier work already.
pub fn mark_due(conn: &mut DbConnection, bot_id: i64, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        bots::table.filter(bots::id.eq(bot_id)).filter(
            bots::next_attempt_at
                .is_null()
                .or(bots::next_attempt_at.gt(at)),
        ),
    )
    .set(bots::next_attempt_at.eq(at))
    .execute(conn)
}

/// Up to `limit` bots with work due by `now` and no live lease (a plain read: an idle
/// worker looks without taking SQLite's write lock).
pub fn due_bots(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<i64>> {
    bots::table
        .filter(bots::next_attempt_at.le(now))
        .filter(bots::webhook_url.is_not_null())
        .filter(bots::webhook_disabled_at.is_null())
        .filter(bots::lease_until.is_null().or(bots::lease_until.lt(now)))
        .select(bots::id)
        .order(bots::next_attempt_at)
        .limit(limit)
        .load(conn)
}

/// Takes the lease of those of `bots` that still have none. On PostgreSQL a concurrent
/// claim that committed first is seen here (the row lock makes the UPDATE re-read the row),
/// so one process wins each bot.
pub fn claim(
    conn: &mut DbConnection,
    bots: &[i64],
    now: NaiveDateTime,
    owner: &str,
    until: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    let free = bots::lease_until.is_null().or(bots::lease_until.lt(now));
    diesel::update(bots::table.filter(bots::id.eq_any(bots)).filter(free))
        .set((bots::lease_owner.eq(owner), bots::lease_until.eq(until)))
        .returning(bots::id)
        .get_results(conn)
}

/// Whether `owner` still holds the bot's lease, extending it to `until` if so.
pub fn renew_lease(
    conn: &mut DbConnection,
    bot_id: i64,
    owner: &str,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        bots::table
            .filter(bots::id.eq(bot_id))
            .filter(bots::lease_owner.eq(owner)),
    )
    .set(bots::lease_until.eq(until))
    .execute(conn)?;
    Ok(n == 1)
}

/// Gives the lease back, saying when the bot's next work is due.
pub fn release(
    conn: &mut DbConnection,
    bot_id: i64,
    owner: &str,
    next: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    diesel::update(
        bots::table
            .filter(bots::id.eq(bot_id))
            .filter(bots::lease_owner.eq(owner)),
    )
    .set((
        bots::lease_owner.eq(None::<String>),
        bots::lease_until.eq(None::<NaiveDateTime>),
        bots::next_attempt_at.eq(next),
    ))
    .execute(conn)
}

pub fn disable_webhook(
    conn: &mut DbConnection,
    bot_id: i64,
    reason: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(bots::table.find(bot_id))
        .set((
            bots::webhook_disabled_at.eq(at),
            bots::webhook_disabled_reason.eq(reason),
            bots::updated_at.eq(at),
        ))
        .execute(conn)
}

/// The bot's oldest pending delivery: the only one that may go out next.
pub fn head(conn: &mut DbConnection, bot_id: i64) -> QueryResult<Option<DeliveryRow>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::bot_id.eq(bot_id))
        .filter(webhook_deliveries::status.eq(PENDING))
        .order(webhook_deliveries::seq)
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()
}

pub fn record_attempt(
    conn: &mut DbConnection,
    delivery_id: i64,
    result: &AttemptResult<'_>,
) -> QueryResult<usize> {
    diesel::update(webhook_deliveries::table.find(delivery_id))
        .set(result)
        .execute(conn)
}

/// A page of the bot's deliveries, newest first, before id `before`.
pub fn deliveries(
    conn: &mut DbConnection,
    bot_id: i64,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut q = webhook_deliveries::table
        .filter(webhook_deliveries::bot_id.eq(bot_id))
        .select(DeliveryRow::as_select())
        .order(webhook_deliveries::id.desc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(before) = before {
        q = q.filter(webhook_deliveries::id.lt(before));
    }
    q.load(conn)
}

pub fn find_delivery(
    conn: &mut DbConnection,
    bot_id: i64,
    id: i64,
) -> QueryResult<Option<DeliveryRow>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::bot_id.eq(bot_id))
        .filter(webhook_deliveries::id.eq(id))
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()
}

/// Queues a delivery again, due at `at`.
pub fn requeue(conn: &mut DbConnection, id: i64, at: NaiveDateTime) -> QueryResult<DeliveryRow> {
    on_backend!(conn, |c| diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::status.eq(PENDING),
            webhook_deliveries::next_attempt_at.eq(at),
        ))
        .returning(DeliveryRow::as_returning())
        .get_result(c))
}

/// Deletes up to `batch` finished deliveries created before `before`.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime, batch: i64) -> QueryResult<usize> {
    let old: Vec<i64> = webhook_deliveries::table
        .filter(webhook_deliveries::created_at.lt(before))
        .filter(webhook_deliveries::status.ne(PENDING))
        .order(webhook_deliveries::id)
        .limit(batch)
        .select(webhook_deliveries::id)
        .load(conn)?;
    diesel::delete(webhook_deliveries::table.filter(webhook_deliveries::id.eq_any(old)))
        .execute(conn)
}
