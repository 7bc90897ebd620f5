//! The webhook worker: turns bots' events into deliveries and sends them, in order per bot,
//! retrying until they are delivered.
//!
//! A bot's event stream is the outbox: every event reaches it in the transaction of the
//! change that caused it (see `crate::events`). The worker copies new stream entries into
//! `webhook_deliveries` (the unique `(bot_id, seq)` makes a second process's copy a no-op)
//! and sends each bot's oldest pending delivery once it is due. A process sends a bot's
//! deliveries only while it holds that bot's lease, taken with a conditional UPDATE, so two
//! processes never send the same delivery at once and each bot's deliveries leave in order;
//! a lease outlives the longest request, and a crashed holder's lease simply runs out.

use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use rand::Rng;

use super::repo::{self, AttemptResult, DeliveryRow, NewDeliveryRow};
use super::webhook::{Outcome, Request, Sender};
use crate::db::DbConnection;
use crate::error::{ApiResult, OrInternal};
use crate::events::EventBus;
use crate::state::AppState;

/// Waits between attempts, after the 1st, 2nd, … failure (each with jitter; the first is at
/// most 5 s). 9 attempts over more than 24 hours, as Standard Webhooks senders do.
const RETRY_SCHEDULE: [Duration; 8] = [
    Duration::from_secs(5),
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
pub const MAX_ATTEMPTS: i32 = RETRY_SCHEDULE.len() as i32 + 1;

/// Bots whose new events are copied per transaction, and events per bot.
const PUMP_BOTS: i64 = 50;
const PUMP_EVENTS: i64 = 200;
/// Bots leased per round, and deliveries sent per lease before giving others a turn.
const CLAIM_BOTS: i64 = 16;
const SENDS_PER_LEASE: usize = 50;
/// A lease covers one request and its bookkeeping, with room to spare.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryRun {
    /// New deliveries created from bots' streams.
    pub queued: usize,
    /// Requests sent.
    pub attempts: usize,
}

/// One round as of `now`: queues bots' new events, then sends every delivery due by then.
/// Safe to run from several processes at once.
pub async fn deliver_due(state: &AppState, now: NaiveDateTime) -> ApiResult<DeliveryRun> {
    round(
        state,
        &Sender::from_settings(&state.settings).or_internal()?,
        now,
    )
    .await
}

pub(super) async fn round(
    state: &AppState,
    sender: &Sender,
    now: NaiveDateTime,
) -> ApiResult<DeliveryRun> {
    let queued = queue_new_events(state, now).await?;
    let attempts = send_due(state, sender, now).await?;
    Ok(DeliveryRun { queued, attempts })
}

/// Copies the events of bots' streams that have no delivery yet.
async fn queue_new_events(state: &AppState, now: NaiveDateTime) -> ApiResult<usize> {
    let mut queued = 0;
    // Each step moves every lagging bot forward; a bounded number of steps per round keeps
    // one busy stream from holding the worker (the next round goes on).
    for _ in 0..20 {
        // A plain read first: an idle worker looks without taking SQLite's write lock.
        let behind = state
            .db
            .run(|conn| Ok(repo::behind(conn, PUMP_BOTS)?))
            .await?;
        if behind.is_empty() {
            break;
        }
        queued += state
            .db
            .transaction(move |conn| queue_step(conn, now))
            .await?;
    }
    Ok(queued)
}

/// Moves each lagging bot forward (read again under the write lock: another process may
/// have moved it); returns the deliveries created.
fn queue_step(conn: &mut DbConnection, now: NaiveDateTime) -> ApiResult<usize> {
    let at = crate::time::rfc3339(&now);
    let mut created = 0;
    for (bot_id, user_id, from) in repo::behind(conn, PUMP_BOTS)? {
        let events = EventBus::replay(conn, user_id, from, PUMP_EVENTS)?;
        let to = match events.last() {
            Some(last) => last.seq,
            // Everything it missed is past the retention period already.
            None => crate::events::head(conn, user_id)?,
        };
        let rows: Vec<NewDeliveryRow> = events
            .into_iter()
            .filter(|e| is_for_webhook(&e.kind, &e.data, user_id))
            .map(|e| NewDeliveryRow {
                bot_id,
                seq: e.seq,
                payload: format!(
                    r#"{{"type":"{}","seq":{},"timestamp":"{at}","data":{}}}"#,
                    e.kind, e.seq, e.data
                ),
                event_type: e.kind,
                status: repo::PENDING,
                next_attempt_at: Some(now),
                created_at: now,
            })
            .collect();
        if repo::advance_cursor(conn, bot_id, from, to)? == 0 {
            // Another process queued these meanwhile.
            continue;
        }
        if !rows.is_empty() {
            created += repo::insert_deliveries(conn, &rows)?;
            repo::mark_due(conn, bot_id, now)?;
        }
    }
    Ok(created)
}

/// Which of a bot's events its webhook hears: not `read` receipts, and not its own
/// messages coming back (a bot answering every message would otherwise answer itself).
fn is_for_webhook(kind: &str, data: &str, bot_user: i64) -> bool {
    if kind == "read" {
        return false;
    }
    if kind.starts_with("message.") {
        let author = serde_json::from_str::<serde_json::Value>(data)
            .ok()
            .and_then(|v| v["author"]["id"].as_i64());
        return author != Some(bot_user);
    }
    true
}

/// Sends what is due, bot by bot, the leased bots side by side.
async fn send_due(state: &AppState, sender: &Sender, now: NaiveDateTime) -> ApiResult<usize> {
    let started = Instant::now();
    let clock = move || now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    let lease = state.settings.webhook_timeout + LEASE_MARGIN;
    let lease = chrono::Duration::from_std(lease).or_internal()?;
    let owner = format!(
        "{}:{}",
        state.events.instance(),
        uuid::Uuid::new_v4().simple()
    );
    let mut total = 0;
    loop {
        let at = clock();
        let due = state
            .db
            .run(move |conn| Ok(repo::due_bots(conn, at, CLAIM_BOTS)?))
            .await?;
        if due.is_empty() {
            return Ok(total);
        }
        let owner_c = owner.clone();
        let leased = state
            .db
            .transaction(move |conn| Ok(repo::claim(conn, &due, at, &owner_c, at + lease)?))
            .await?;
        if leased.is_empty() {
            return Ok(total);
        }
        let runs = leased
            .into_iter()
            .map(|bot_id| serve_bot(state, sender, bot_id, &owner, &clock, lease));
        for sent in futures_util::future::join_all(runs).await {
            total += sent?;
        }
    }
}

/// Sends the bot's due deliveries in order while holding its lease; returns how many.
async fn serve_bot(
    state: &AppState,
    sender: &Sender,
    bot_id: i64,
    owner: &str,
    clock: &impl Fn() -> NaiveDateTime,
    lease: chrono::Duration,
) -> ApiResult<usize> {
    let mut sent = 0;
    loop {
        let at = clock();
        let (owner_c, renewed_until) = (owner.to_owned(), at + lease);
        let next = state
            .db
            .run(move |conn| {
                if !repo::renew_lease(conn, bot_id, &owner_c, renewed_until)? {
                    return Ok(Next::LeaseLost);
                }
                let Some(bot) = repo::find_bot(conn, bot_id)? else {
                    return Ok(Next::LeaseLost);
                };
                let url = match (&bot.webhook_url, bot.webhook_disabled_at) {
                    (Some(url), None) => url.clone(),
                    _ => return Ok(Next::Release(None)),
                };
                Ok(match repo::head(conn, bot_id)? {
                    None => Next::Release(None),
                    Some(d) if d.next_attempt_at.is_some_and(|due| due > at) => {
                        Next::Release(d.next_attempt_at)
                    }
                    Some(d) => Next::Send(Box::new((d, url, bot.signing_secret))),
                })
            })
            .await?;
        let (delivery, url, secret) = match next {
            Next::LeaseLost => return Ok(sent),
            Next::Release(due) => {
                release(state, bot_id, owner, due).await?;
                return Ok(sent);
            }
            Next::Send(_) if sent >= SENDS_PER_LEASE => {
                release(state, bot_id, owner, Some(at)).await?;
                return Ok(sent);
            }
            Next::Send(work) => *work,
        };
        let outcome = sender
            .send(&Request {
                url: &url,
                delivery_id: delivery.id,
                event_type: &delivery.event_type,
                payload: &delivery.payload,
                signing_secret: &secret,
            })
            .await;
        sent += 1;
        let gone = outcome == Outcome::Gone;
        let at = clock();
        state
            .db
            .transaction(move |conn| record(conn, &delivery, &outcome, at))
            .await?;
        if gone {
            release(state, bot_id, owner, None).await?;
            return Ok(sent);
        }
    }
}

enum Next {
    LeaseLost,
    Release(Option<NaiveDateTime>),
    Send(Box<(DeliveryRow, String, String)>),
}

async fn release(
    state: &AppState,
    bot_id: i64,
    owner: &str,
    next: Option<NaiveDateTime>,
) -> ApiResult<()> {
    let owner = owner.to_owned();
    state
        .db
        .run(move |conn| Ok(repo::release(conn, bot_id, &owner, next).map(drop)?))
        .await
}

/// Writes what an attempt came to; a 410 also disables the bot's webhook.
fn record(
    conn: &mut DbConnection,
    delivery: &DeliveryRow,
    outcome: &Outcome,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let attempts = delivery.attempts + 1;
    let result = match outcome {
        Outcome::Delivered { status } => AttemptResult {
            status: repo::DELIVERED,
            attempts,
            last_status: Some(i32::from(*status)),
            last_error: None,
            last_attempt_at: Some(at),
            next_attempt_at: None,
            delivered_at: Some(at),
        },
        Outcome::Gone => {
            repo::disable_webhook(conn, delivery.bot_id, "the receiver answered 410 Gone", at)?;
            AttemptResult {
                status: repo::FAILED,
                attempts,
                last_status: Some(410),
                last_error: Some("410 Gone: the webhook is disabled"),
                last_attempt_at: Some(at),
                next_attempt_at: None,
                delivered_at: None,
            }
        }
        Outcome::Failed {
            status,
            error,
            retry_after,
        } => {
            let next = (attempts < MAX_ATTEMPTS).then(|| {
                let wait = retry_delay(attempts, *retry_after);
                at + chrono::Duration::from_std(wait).unwrap_or_default()
            });
            AttemptResult {
                status: if next.is_some() {
                    repo::PENDING
                } else {
                    repo::FAILED
                },
                attempts,
                last_status: status.map(i32::from),
                last_error: Some(error),
                last_attempt_at: Some(at),
                next_attempt_at: next,
                delivered_at: None,
            }
        }
    };
    repo::record_attempt(conn, delivery.id, &result)?;
    Ok(())
}

/// The wait after the `failures`-th failed attempt: the schedule's step with jitter (so
/// receivers coming back up are not hit by every sender at once), and never sooner than the
/// receiver's `Retry-After`.
pub fn retry_delay(failures: i32, retry_after: Option<Duration>) -> Duration {
    let step = usize::try_from(failures - 1)
        .unwrap_or_default()
        .min(RETRY_SCHEDULE.len() - 1);
    // The first retry comes within 5 s; later ones spread ±10 %.
    let spread = if step == 0 { 0.5..=1.0 } else { 0.9..=1.1 };
    let wait = RETRY_SCHEDULE[step].mul_f64(rand::rng().random_range(spread));
    retry_after.map_or(wait, |asked| wait.max(asked))
}

/// Deletes finished deliveries older than the event retention, a batch per transaction.
pub async fn prune(state: &AppState) -> ApiResult<usize> {
    const BATCH: i64 = 500;
    let retention = chrono::Duration::from_std(state.settings.event_retention).or_internal()?;
    let before = crate::time::now() - retention;
    state
        .events
        .drain(&state.db, move |conn, _| {
            Ok(repo::prune(conn, before, BATCH)?)
        })
        .await
}

/// How often an idle worker looks for new events (a redelivery wakes it at once).
const POLL: Duration = Duration::from_secs(1);
/// How often finished deliveries past the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Runs rounds until the state is dropped: every second, or at once when woken.
pub async fn run_worker(state: std::sync::Weak<AppState>) {
    let sender = {
        let Some(strong) = state.upgrade() else {
            return;
        };
        match Sender::from_settings(&strong.settings) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "webhooks cannot be sent");
                return;
            }
        }
    };
    let mut pruned = Instant::now();
    loop {
        let Some(strong) = state.upgrade() else {
            return;
        };
        match round(&strong, &sender, crate::time::now()).await {
            Ok(run) if run != DeliveryRun::default() => tracing::debug!(?run, "webhooks"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the webhook round failed"),
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            if let Err(e) = prune(&strong).await {
                tracing::warn!(error = %e, "pruning old webhook deliveries failed");
            }
        }
        let wake = strong.webhooks.clone();
        drop(strong);
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_five_seconds_and_last_over_a_day() {
        for _ in 0..100 {
            let first = retry_delay(1, None);
            assert!(first <= Duration::from_secs(5) && first >= Duration::from_millis(2500));
            let total: Duration = (1..MAX_ATTEMPTS).map(|n| retry_delay(n, None)).sum();
            assert!(total >= Duration::from_secs(24 * 3600), "{total:?}");
        }
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn a_bot_does_not_hear_its_own_messages_or_read_receipts() {
        let mine = r#"{"id":1,"author":{"id":7}}"#;
        let theirs = r#"{"id":2,"author":{"id":8}}"#;
        assert!(!is_for_webhook("message.created", mine, 7));
        assert!(is_for_webhook("message.created", theirs, 7));
        assert!(!is_for_webhook("read", theirs, 7));
        assert!(is_for_webhook("command", theirs, 7));
        assert!(is_for_webhook("chat.member_added", "{}", 7));
    }
}
