//! PostgreSQL `LISTEN`: how one process hears of the events other processes committed.
//!
//! A notice carries only an event's id (payloads are capped at 8,000 bytes); the listener
//! reads the event and its recipients among this process's sockets back from the tables.
//! `NOTIFY` is not replayed to a listener that was disconnected, so after every
//! (re)connection each socket re-reads its own stream from the database: nothing committed
//! meanwhile is missed.
//!
//! The same connection hears the change notices that keep this process's memories true
//! (login sessions, items: sent by triggers, handed to the [`ChangeFeed`]), and runs the
//! round trips that let a request believe them (the feed's `Fence`; see `crate::coherence`).

use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::AsyncMessage;

use super::{repo, EventBody, Hub, Notice, CHANNEL};
use crate::coherence::ChangeFeed;
use crate::db::Db;

/// How often an idle listener checks that its connection is still alive.
const HEALTH_CHECK: Duration = Duration::from_secs(30);
/// Notices handled per database read.
const BATCH: usize = 500;

/// Starts the listener on a thread of its own (with its own small runtime). It runs until
/// the hub it feeds is gone (the server's state was dropped).
pub fn spawn(
    url: String,
    db: Db,
    hub: Weak<Hub>,
    instance: String,
    feed: Arc<ChangeFeed>,
) -> std::io::Result<()> {
    let config = match tokio_postgres::Config::from_str(&url) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(
                error = %e,
                "DATABASE_URL cannot be used to LISTEN: events from other processes arrive only when sockets reconnect"
            );
            return Ok(());
        }
    };
    std::thread::Builder::new()
        .name("event-listener".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!(error = %e, "the event listener cannot start");
                    return;
                }
            };
            runtime.block_on(listen_forever(config, db, hub, instance, feed));
        })
        .map(drop)
}

fn tls() -> Result<MakeTlsConnector, openssl::error::ErrorStack> {
    let mut builder = SslConnector::builder(SslMethod::tls())?;
    // As libpq's `sslmode=require`: encrypted, without verifying the server's certificate
    // (tokio-postgres knows no `verify-full`).
    builder.set_verify(SslVerifyMode::NONE);
    Ok(MakeTlsConnector::new(builder.build()))
}

async fn listen_forever(
    config: tokio_postgres::Config,
    db: Db,
    hub: Weak<Hub>,
    instance: String,
    feed: Arc<ChangeFeed>,
) {
    let mut backoff = Duration::from_millis(100);
    while hub.strong_count() > 0 {
        let outcome = listen_once(&config, &db, &hub, &instance, &feed).await;
        // Notices may be missed until the next connection listens again.
        feed.not_listening();
        match outcome {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "event listener lost its connection");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Listens until the connection fails.
async fn listen_once(
    config: &tokio_postgres::Config,
    db: &Db,
    hub: &Weak<Hub>,
    instance: &str,
    feed: &Arc<ChangeFeed>,
) -> Result<(), BoxError> {
    let (client, mut connection) = config.connect(tls()?).await?;
    // Bounded: while dispatch lags, the driver stops reading and PostgreSQL holds the rest.
    let (notices, mut received) = tokio::sync::mpsc::channel(4 * BATCH);
    let heard = feed.clone();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                // Change notices are acted on here, in the order the connection delivers
                // them: a fence round answered after a notice proves it was heard.
                Ok(AsyncMessage::Notification(n)) if n.channel() != CHANNEL => {
                    heard.heard(n.channel(), n.payload());
                }
                Ok(AsyncMessage::Notification(n)) => {
                    if notices.send(Ok(n.payload().to_owned())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = notices.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    let client = Arc::new(client);
    let mut listen = format!("LISTEN {CHANNEL};");
    for channel in feed.channels() {
        listen.push_str(&format!(" LISTEN {channel};"));
    }
    client.batch_execute(&listen).await?;
    // Rows may have changed while nobody listened: forget what was remembered, then
    // believe memory again. Whatever events committed meanwhile are read from the tables.
    feed.listening();
    let fence = tokio::spawn(run_fence(client.clone(), feed.clone()));
    match hub.upgrade() {
        Some(hub) => hub.catch_up_all(),
        None => return Ok(()),
    }
    let mut health = tokio::time::interval(HEALTH_CHECK);
    health.tick().await;
    let result = loop {
        tokio::select! {
            first = received.recv() => {
                let Some(first) = first else { break Err("the listening connection closed".into()) };
                let mut batch = vec![first];
                while batch.len() < BATCH {
                    match received.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let mut payloads = Vec::with_capacity(batch.len());
                let mut failed = None;
                for item in batch {
                    match item {
                        Ok(payload) => payloads.push(payload),
                        Err(e) => failed = Some(e),
                    }
                }
                let Some(hub) = hub.upgrade() else { break Ok(()) };
                dispatch(db, &hub, instance, payloads).await;
                if let Some(e) = failed {
                    break Err(e.into());
                }
            }
            _ = health.tick() => {
                if hub.strong_count() == 0 {
                    break Ok(());
                }
                if let Err(e) = client.batch_execute("SELECT 1").await {
                    break Err(e.into());
                }
            }
        }
    };
    driver.abort();
    fence.abort();
    result
}

/// Answers requests waiting to believe memory: one round trip on the listening
/// connection at a time, each serving every request that arrived before it started. The
/// driver acts on a change notice as it reads it, before it reads the answer of a query
/// sent after the notice was committed, so a finished round proves those notices heard.
async fn run_fence(client: Arc<tokio_postgres::Client>, feed: Arc<ChangeFeed>) {
    let Some(fence) = feed.fence() else {
        return;
    };
    loop {
        let round = fence.next_round().await;
        let started = std::time::Instant::now();
        let waited_for_it = fence.waiting();
        if client.batch_execute("").await.is_err() {
            // The listener sees the failure too, and reconnects.
            return;
        }
        fence.finished(round);
        // This thread is the listener's own, so a blocking pause holds up only its
        // notices, which the next round waits for anyway; the runtime's timers tick in
        // milliseconds, too coarse for a pause shorter than one.
        let pause = fence.pause_after(started.elapsed(), waited_for_it);
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

/// Delivers what the notices name to this process's sockets.
async fn dispatch(db: &Db, hub: &Arc<Hub>, instance: &str, payloads: Vec<String>) {
    let mut stored = Vec::new();
    for payload in payloads {
        match serde_json::from_str::<Notice>(&payload) {
            Ok(Notice::Stored { from, .. }) | Ok(Notice::Ephemeral { from, .. })
                if from == instance => {}
            Ok(Notice::Stored { event, .. }) => stored.push(event),
            Ok(Notice::Ephemeral { users, frame, .. }) => {
                hub.deliver_ephemeral(&users, &Arc::from(frame));
            }
            Err(e) => tracing::warn!(error = %e, "an event notice that is not ours"),
        }
    }
    let users = hub.users();
    if stored.is_empty() || users.is_empty() {
        return;
    }
    let (bodies, positions) = match db
        .run(move |conn| Ok(repo::deliveries(conn, &stored, &users)?))
        .await
    {
        Ok(found) => found,
        Err(e) => {
            // The sockets read their streams from the tables instead.
            tracing::warn!(error = %e, "reading notified events failed");
            hub.catch_up_all();
            return;
        }
    };
    let bodies: std::collections::HashMap<i64, Arc<EventBody>> = bodies
        .into_iter()
        .map(|e| {
            (
                e.id,
                Arc::new(EventBody {
                    kind: e.kind,
                    data: e.data,
                }),
            )
        })
        .collect();
    for (event_id, user_id, seq) in positions {
        if let Some(body) = bodies.get(&event_id) {
            hub.deliver(&[(user_id, seq)], body);
        }
    }
}
