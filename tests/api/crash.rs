//! Crash safety: the real server binary is killed with SIGKILL in the middle of a write load
//! (stock adjustments, replenishment fulfilments and chat messages, each with its events and
//! webhook deliveries), and
//! what it answered must all be there afterwards, with nothing half-applied. Runs on
//! whichever backend the suite runs on (`TEST_DATABASE_URL`).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stockroom::bots::delivery::deliver_due;

use crate::common::receiver::Receiver;
use crate::common::{Session, TestApp};

/// Acknowledged writes to wait for before the kill: enough that many are in flight at once.
const ACKED_BEFORE_KILL: usize = 150;
const WRITERS: usize = 8;
/// Pending replenishment requests the writers fulfil: the most a customer may have pending
/// (after them, writers adjust instead).
const REQUESTS: usize = 100;

/// The server binary on `database_url`, as an operator runs it (its own process, so SIGKILL
/// stops it between any two instructions).
struct Process {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Process {
    async fn start(database_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("a working directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_stockroom"))
            // No `.env` of the checkout is read.
            .current_dir(dir.path())
            .env("DATABASE_URL", database_url)
            .env("STOCKROOM_BIND", format!("127.0.0.1:{port}"))
            // The test app's secret, so tokens it issued work here too.
            .env(
                "STOCKROOM_JWT_SECRET",
                "test-secret-that-is-at-least-32-bytes-long",
            )
            .env("STOCKROOM_BCRYPT_COST", "4")
            .env("STOCKROOM_MAX_CONNECTIONS_PER_ADDRESS", "10000")
            .env("STOCKROOM_MESSAGES_PER_MINUTE", "1000000")
            .env("STOCKROOM_MESSAGE_BURST", "1000000")
            // Webhooks are sent afterwards, by the test app, so that every one is counted.
            .env("STOCKROOM_WEBHOOK_DELIVERY", "false")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server binary starts");
        let process = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&self) {
        let client = awc::Client::default();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(res) = client.get(format!("{}/readyz", self.base)).send().await {
                if res.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the server was not ready in time"
            );
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        // `Child::kill` is SIGKILL on Unix: no shutdown code runs.
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("the killed server is reaped");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the killed server answered 2xx: movement ids, message ids and fulfilled requests.
#[derive(Default)]
struct Acked {
    movements: Vec<i64>,
    messages: Vec<i64>,
    fulfilled: Vec<i64>,
}

impl Acked {
    fn len(&self) -> usize {
        self.movements.len() + self.messages.len() + self.fulfilled.len()
    }
}

/// One write of the rotation each writer goes through.
enum Write {
    Adjustment,
    Message,
    Fulfilment(i64),
}

/// Where the writers work: the item, the chat, and the pending requests left to fulfil.
#[derive(Clone)]
struct Targets {
    item: i64,
    chat: i64,
    pending: Arc<Mutex<Vec<i64>>>,
}

async fn write_until_killed(
    base: String,
    token: String,
    targets: Targets,
    writer: usize,
    acked: Arc<Mutex<Acked>>,
    killed: Arc<AtomicBool>,
) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    for round in 0usize.. {
        if killed.load(Ordering::SeqCst) {
            return;
        }
        let (item, chat) = (targets.item, targets.chat);
        let write = match round % 3 {
            0 => Write::Adjustment,
            1 => Write::Message,
            _ => match targets.pending.lock().expect("pending").pop() {
                Some(request) => Write::Fulfilment(request),
                None => Write::Adjustment,
            },
        };
        let (path, body) = match write {
            Write::Adjustment => {
                let delta = if (round / 3 + writer) % 2 == 0 { 1 } else { -1 };
                let reason = if delta > 0 { "restock" } else { "consume" };
                (
                    format!("/api/v1/items/{item}/adjustments"),
                    json!({"delta": delta, "reason": reason}),
                )
            }
            Write::Message => (
                format!("/api/v1/chats/{chat}/messages"),
                json!({"kind": "text", "body": format!("writer {writer}, round {round}")}),
            ),
            Write::Fulfilment(request) => (
                format!("/api/v1/replenishment-requests/{request}/fulfil"),
                json!({}),
            ),
        };
        let sent = client
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .send_json(&body)
            .await;
        let Ok(mut res) = sent else {
            // The connection died with the server: this write's outcome is unknown.
            continue;
        };
        if !res.status().is_success() {
            continue;
        }
        let Ok(answer) = res.json::<Value>().limit(1 << 20).await else {
            continue;
        };
        let mut acked = acked.lock().expect("acked");
        match write {
            Write::Adjustment => {
                for movement in answer["movements"].as_array().expect("movements") {
                    acked
                        .movements
                        .push(movement["id"].as_i64().expect("movement id"));
                }
            }
            Write::Message => acked
                .messages
                .push(answer["id"].as_i64().expect("message id")),
            Write::Fulfilment(request) => acked.fulfilled.push(request),
        }
    }
}

/// Every event of `who`'s stream from the start (stored events replay before the answer to
/// a ping).
async fn whole_stream(app: &TestApp, who: &Session) -> Vec<Value> {
    let mut ws = app.socket(&who.token, Some(0)).await;
    ws.send(json!({"type": "ping"})).await;
    let mut events = Vec::new();
    loop {
        let frame = ws.next().await;
        if frame["type"] == "pong" {
            return events;
        }
        events.push(frame);
    }
}

#[actix_rt::test]
async fn a_sigkill_mid_write_loses_nothing_answered_and_half_applies_nothing() {
    // The test app holds the database (and checks it afterwards, as a second process would).
    let app = TestApp::builder()
        .env("STOCKROOM_WEBHOOK_ALLOW_PRIVATE", "true")
        // The whole stream is read back at once.
        .env("STOCKROOM_WS_QUEUE", "65536")
        .spawn()
        .await;
    let owner = app.owner("olga").await;
    let worker = app.worker("walt").await;
    let receiver = Receiver::start(Vec::new()).await;
    let bot = app
        .post(
            "/api/v1/bots",
            Some(&owner.token),
            json!({"name": "ledger bot", "webhook_url": receiver.url}),
        )
        .await
        .ok(201)["bot"]
        .clone();
    let chat = app
        .post(
            "/api/v1/chats",
            Some(&owner.token),
            json!({"kind": "group", "title": "Night shift", "member_ids": [worker.id, bot["user_id"]]}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .expect("chat id");
    let item = app
        .post(
            "/api/v1/items",
            Some(&owner.token),
            json!({"name": "Flour", "kind": "non_perishable", "quantity": 1000}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .expect("item id");
    // A customer's pending requests, one unit each, for the writers to fulfil.
    let customer = app.customer("cora").await;
    let mut pending = Vec::new();
    for _ in 0..REQUESTS {
        pending.push(
            app.post(
                "/api/v1/replenishment-requests",
                Some(&customer.token),
                json!({"item_id": item, "quantity": 1}),
            )
            .await
            .ok(201)["id"]
                .as_i64()
                .expect("request id"),
        );
    }
    let targets = Targets {
        item,
        chat,
        pending: Arc::new(Mutex::new(pending)),
    };

    let mut server = Process::start(&app.database_url).await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let killed = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            actix_rt::spawn(write_until_killed(
                server.base.clone(),
                owner.token.clone(),
                targets.clone(),
                writer,
                acked.clone(),
                killed.clone(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().expect("acked").len() < ACKED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "the load made no progress");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    killed.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("a writer ends");
    }
    let acked = std::mem::take(&mut *acked.lock().expect("acked"));
    assert!(
        !acked.fulfilled.is_empty() && !acked.messages.is_empty(),
        "every kind of write was answered before the kill"
    );

    // Started again on the same database, it serves, and everything answered is there.
    let restarted = Process::start(&app.database_url).await;
    drop(restarted);

    let ledger = app
        .all_pages(
            &format!("/api/v1/items/{item}/movements?limit=200"),
            Some(&owner.token),
        )
        .await;
    let ledger_ids: std::collections::HashSet<i64> =
        ledger.iter().filter_map(|m| m["id"].as_i64()).collect();
    let lost: Vec<_> = acked
        .movements
        .iter()
        .filter(|id| !ledger_ids.contains(id))
        .collect();
    assert!(lost.is_empty(), "answered movements lost: {lost:?}");
    // No adjustment is half-applied: the stock is exactly what its ledger says.
    let stock = app
        .get(&format!("/api/v1/items/{item}"), Some(&owner.token))
        .await
        .ok(200)["quantity"]
        .as_i64()
        .expect("quantity");
    let ledger_sum: i64 = ledger.iter().filter_map(|m| m["delta"].as_i64()).sum();
    assert_eq!(
        stock, ledger_sum,
        "stock and ledger disagree after the crash"
    );

    // Every fulfilment answered is fulfilled, and none is half-applied: the customer holds
    // exactly one unit per fulfilled request (the stock side is in the ledger above), and
    // every request is still there, fulfilled or pending.
    let requests = app
        .all_pages(
            "/api/v1/replenishment-requests?limit=200",
            Some(&owner.token),
        )
        .await;
    assert_eq!(requests.len(), REQUESTS, "requests lost");
    let fulfilled: std::collections::HashSet<i64> = requests
        .iter()
        .filter(|r| r["status"] == "fulfilled")
        .filter_map(|r| r["id"].as_i64())
        .collect();
    let lost: Vec<_> = acked
        .fulfilled
        .iter()
        .filter(|id| !fulfilled.contains(id))
        .collect();
    assert!(lost.is_empty(), "answered fulfilments lost: {lost:?}");
    assert!(
        requests
            .iter()
            .all(|r| r["status"] == "fulfilled" || r["status"] == "pending"),
        "a request in another state"
    );
    let held: i64 = app
        .all_pages(
            &format!("/api/v1/customers/{}/inventory?limit=200", customer.id),
            Some(&owner.token),
        )
        .await
        .iter()
        .filter_map(|h| h["quantity"].as_i64())
        .sum();
    assert_eq!(
        held,
        i64::try_from(fulfilled.len()).expect("a count"),
        "holdings and fulfilled requests disagree after the crash"
    );

    let messages = app
        .all_pages(
            &format!("/api/v1/chats/{chat}/messages?limit=200"),
            Some(&owner.token),
        )
        .await;
    let message_ids: std::collections::HashSet<i64> =
        messages.iter().filter_map(|m| m["id"].as_i64()).collect();
    let lost: Vec<_> = acked
        .messages
        .iter()
        .filter(|id| !message_ids.contains(id))
        .collect();
    assert!(lost.is_empty(), "answered messages lost: {lost:?}");

    // Every stored message, answered or not, reached the worker's event stream and the
    // bot's webhook: a message is never stored without its events.
    let events = whole_stream(&app, &worker).await;
    let streamed: std::collections::HashSet<i64> = events
        .iter()
        .filter(|e| e["type"] == "message.created")
        .filter_map(|e| e["data"]["id"].as_i64())
        .collect();
    let missing: Vec<_> = message_ids.difference(&streamed).collect();
    assert!(
        missing.is_empty(),
        "messages without their event: {missing:?}"
    );
    for _ in 0..1_000 {
        let round = deliver_due(&app.state, stockroom::time::now())
            .await
            .expect("a webhook round");
        if round.queued == 0 && round.attempts == 0 {
            break;
        }
    }
    let hooked: Vec<i64> = receiver
        .received()
        .iter()
        .map(|r| r.json())
        .filter(|payload| payload["type"] == "message.created")
        .filter_map(|payload| payload["data"]["id"].as_i64())
        .collect();
    let once: std::collections::HashSet<i64> = hooked.iter().copied().collect();
    assert_eq!(
        once, message_ids,
        "the bot's webhook got a different set of messages"
    );
    assert_eq!(
        hooked.len(),
        once.len(),
        "a message's webhook was sent twice"
    );
}
