//! A small load generator for Stockroom's benchmarks (not a test). It talks to a running
//! server over loopback, runs for a bounded time, and reports throughput and latency.
//!
//! ```sh
//! cargo run --release --example load -- --url http://127.0.0.1:8080 seed-items 100000 --login owner --password '…'
//! cargo run --release --example load -- --url http://127.0.0.1:8080 get /api/v1/items?limit=50 --login owner --password '…'
//! cargo run --release --example load -- --url http://127.0.0.1:8080 logins-and-me --login owner --password '…'
//! cargo run --release --example load -- --url http://127.0.0.1:8080 --login owner --password '…' \
//!     fanout --members 1000 --rate 50 --seconds 20 [--ws-url http://127.0.0.1:8081 …]
//! ```
//!
//! More subcommands: `write-storm`, `fulfilments` (customers create replenishment requests,
//! then staff fulfil them concurrently) and `idle-sockets --count N` (holds N event sockets
//! open, for the server's memory). With `--json`, each also prints one last line
//! `BENCH {json}` with its figures, which `scripts/bench` reads.
//!
//! `fanout` makes (or reuses) `members − 1` worker accounts named `<prefix>-<n>`, puts them
//! and the owner in a new group, opens one WebSocket per member (round-robin over the
//! `--ws-url`s, `--url` by default; raise `ulimit -n` for big groups), then the owner posts
//! `--rate` messages a second for `--seconds`, on a fixed schedule. Every socket measures
//! each `message.created` from the send to its arrival (and relative to the send's HTTP
//! answer); a socket the server closes comes back with `?since=`. The report counts
//! losses, duplicates, `seq` gaps and reconnections, and gives latency percentiles.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long)]
    login: String,
    #[arg(long)]
    password: String,
    /// Concurrent clients per scenario.
    #[arg(long, global = true, default_value_t = 16)]
    concurrency: usize,
    /// How long each measurement runs.
    #[arg(long, global = true, default_value_t = 10)]
    seconds: u64,
    /// Also print the figures as one final line `BENCH {json}` (for `scripts/bench`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create N items through CSV import (in chunks).
    SeedItems { count: usize },
    /// GET one path as fast as the clients can.
    Get { path: String },
    /// GET `<prefix><id>` once for every id from `first` to `last`, `--concurrency` at a
    /// time (a server's memory warmed as long running would warm it); not timed per request.
    ReadEach {
        prefix: String,
        first: i64,
        last: i64,
    },
    /// Logins at full concurrency, and at the same time GET /api/v1/me from one client.
    LoginsAndMe,
    /// Every client signs up, then `rounds` times logs in, restocks one shared item and
    /// consumes from it; with `--imports`, one more client imports 5,000-row CSV files
    /// meanwhile. Prints every status answered: writers must queue, never see 503.
    WriteStorm {
        #[arg(long, default_value_t = 200)]
        rounds: usize,
        #[arg(long)]
        imports: bool,
    },
    /// One group of `members` (the owner sends, everyone has a socket open): the owner
    /// posts `rate` messages a second and every socket times their arrival. `--concurrency`
    /// bounds the setup's parallel requests.
    Fanout {
        /// Members of the group, the sender included; one socket each.
        #[arg(long, default_value_t = 1000)]
        members: usize,
        /// Messages per second, sent on a fixed schedule.
        #[arg(long, default_value_t = 50)]
        rate: u32,
        /// Where the sockets connect, round-robin when repeated (default: `--url`).
        #[arg(long)]
        ws_url: Vec<String>,
        /// Threads running the sockets.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// How long to wait for late deliveries after the last send answered, in seconds.
        #[arg(long, default_value_t = 10)]
        drain: u64,
        /// Worker accounts are `<prefix>-<n>`; they are reused by later runs.
        #[arg(long, default_value = "fanout")]
        prefix: String,
    },
    /// Customers create `requests` replenishment requests (one client each), then
    /// `--concurrency` staff clients fulfil them all at once; every item is stocked for all
    /// its requests, so every fulfilment should succeed, and the stock left is checked.
    Fulfilments {
        /// Requests created, then fulfilled.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Customer accounts creating them, concurrently (at least one per 100 requests,
        /// the most one customer may have pending).
        #[arg(long, default_value_t = 16)]
        customers: usize,
        /// Items the requests are spread over (fewer: more contention on each).
        #[arg(long, default_value_t = 4)]
        items: usize,
    },
    /// Opens `count` event sockets (`/api/ws/chat`), `per-account` per account (new customer
    /// accounts), answers the server's pings, prints a line when all are open and holds them
    /// for `--seconds` (or until killed).
    IdleSockets {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Sockets per account: at most the server's `STOCKROOM_WS_MAX_PER_USER`.
        #[arg(long, default_value_t = 1000)]
        per_account: usize,
        /// Threads running the sockets.
        #[arg(long, default_value_t = 2)]
        threads: usize,
    },
}

/// GET `url` with the bearer token; whether it answered 2xx with its whole body read.
async fn get_ok(c: &awc::Client, url: &str, bearer: &str) -> bool {
    match c.get(url).bearer_auth(bearer).send().await {
        Ok(mut res) => res.body().limit(1 << 22).await.is_ok() && res.status().is_success(),
        Err(_) => false,
    }
}

/// Prints `BENCH {json}`, the line `scripts/bench` reads, when `--json` was given.
fn bench_line(enabled: bool, figures: &Value) {
    if enabled {
        println!("BENCH {figures}");
    }
}

/// Statuses as a JSON object (`"0"`: no answer).
fn statuses_json(counts: &std::collections::BTreeMap<u16, usize>) -> Value {
    counts
        .iter()
        .map(|(status, n)| (status.to_string(), json!(n)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// How many answers of each status a scenario got.
#[derive(Default)]
struct StatusCounts(std::collections::BTreeMap<u16, usize>);

impl StatusCounts {
    async fn record(
        &mut self,
        sent: Result<
            awc::ClientResponse<
                impl futures::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>
                    + Unpin,
            >,
            awc::error::SendRequestError,
        >,
    ) -> Option<Value> {
        match sent {
            Ok(mut res) => {
                *self.0.entry(res.status().as_u16()).or_default() += 1;
                let body = res.body().limit(1 << 22).await.ok()?;
                serde_json::from_slice(&body).ok()
            }
            Err(_) => {
                // 0: the request never got an answer.
                *self.0.entry(0).or_default() += 1;
                None
            }
        }
    }

    fn merge(&mut self, other: StatusCounts) {
        for (status, n) in other.0 {
            *self.0.entry(status).or_default() += n;
        }
    }
}

/// One client of the write storm.
async fn storm_client(
    url: String,
    bearer: String,
    item: i64,
    n: usize,
    rounds: usize,
) -> StatusCounts {
    let c = client();
    let mut counts = StatusCounts::default();
    let username = format!("storm{}-{n}", std::process::id());
    let password = "storm password 123";
    counts
        .record(
            c.post(format!("{url}/api/v1/auth/register"))
                .send_json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
                .await,
        )
        .await;
    for _ in 0..rounds {
        counts
            .record(
                c.post(format!("{url}/api/v1/auth/login"))
                    .send_json(&json!({"login": username, "password": password}))
                    .await,
            )
            .await;
        for (delta, reason) in [(5, "restock"), (-3, "consume")] {
            counts
                .record(
                    c.post(format!("{url}/api/v1/items/{item}/adjustments"))
                        .bearer_auth(&bearer)
                        .send_json(&json!({"delta": delta, "reason": reason}))
                        .await,
                )
                .await;
        }
    }
    counts
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    errors: usize,
}

impl Stats {
    /// Prints the figures and returns them as JSON (latencies in ms).
    fn report(&mut self, name: &str, elapsed: Duration) -> Value {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let pct = |p: f64| {
            if n == 0 {
                0.0
            } else {
                self.latencies_us[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0
            }
        };
        println!(
            "{name}: {n} ok, {} errors in {:.1}s = {:.0} req/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}",
            self.errors,
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.90),
            pct(0.99),
            pct(1.0)
        );
        json!({
            "name": name,
            "ok": n,
            "errors": self.errors,
            "seconds": elapsed.as_secs_f64(),
            "rps": n as f64 / elapsed.as_secs_f64(),
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
        })
    }
}

async fn token(client: &awc::Client, url: &str, login: &str, password: &str) -> String {
    let mut res = client
        .post(format!("{url}/api/v1/auth/login"))
        .send_json(&json!({"login": login, "password": password}))
        .await
        .expect("login request");
    let body: Value = res.json().await.expect("login body");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// Runs `clients` loops of `call` until `deadline`, collecting latencies.
async fn hammer<F, Fut>(clients: usize, deadline: Instant, call: F) -> Stats
where
    F: Fn(awc::Client) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = bool> + 'static,
{
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let call = call.clone();
            actix_rt::spawn(async move {
                // One client (and so one kept-alive connection) per simulated user.
                let http = client();
                let mut stats = Stats::default();
                // Bounded by time and by count.
                for _ in 0..10_000_000u64 {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let start = Instant::now();
                    if call(http.clone()).await {
                        stats.latencies_us.push(start.elapsed().as_micros() as u64);
                    } else {
                        stats.errors += 1;
                    }
                }
                stats
            })
        })
        .collect();
    let mut all = Stats::default();
    for t in tasks {
        if let Ok(s) = t.await {
            all.latencies_us.extend(s.latencies_us);
            all.errors += s.errors;
        }
    }
    all
}

/// The fan-out scenario's settings.
struct Fanout {
    url: String,
    bearer: String,
    members: usize,
    rate: u32,
    seconds: u64,
    ws_urls: Vec<String>,
    threads: usize,
    drain: Duration,
    prefix: String,
    concurrency: usize,
}

/// What the socket clients share with the main thread.
struct Shared {
    /// The time every `sent`/`received` nanosecond count is measured from.
    t0: Instant,
    /// Tags this run's `client_id`s: `<run>:<message>:<sent nanos>`.
    run: String,
    messages: usize,
    opened: AtomicUsize,
    refused: AtomicUsize,
    /// First deliveries of this run's messages, over all sockets.
    delivered: AtomicU64,
}

/// One socket's record.
#[derive(Default)]
struct SocketResult {
    /// Per message: its latency in µs + 1 at this socket's first delivery (0: never).
    first: Vec<u32>,
    duplicates: u64,
    /// Frames whose `seq` was not the previous one + 1.
    seq_gaps: u64,
    /// The last arrival of one of this run's messages, in ns since `t0`.
    last_ns: u64,
    /// Why the socket ended before the run did: `None` while it stayed open.
    ended: Option<String>,
    /// Why it was closed or broke, each time it then reconnected.
    drops: Vec<String>,
    /// `resync` frames: the events after `since` were no longer kept.
    resyncs: u64,
    open: bool,
}

/// The parts of a server frame the fan-out reads.
#[derive(serde::Deserialize)]
struct WsFrame<'a> {
    seq: Option<i64>,
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    data: Option<WsData<'a>>,
}

#[derive(serde::Deserialize)]
struct WsData<'a> {
    #[serde(borrow)]
    client_id: Option<&'a str>,
}

/// The process's CPU time (user + system), from /proc (Linux); `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Percentiles of sorted values, scaled by `unit` (µs → ms: 1000).
fn pct(sorted: &[u64], p: f64, unit: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / unit
}

/// Signs a member up (or finds it from an earlier run), makes it a worker, and logs it in:
/// its user id and access token.
async fn fanout_member(
    c: &awc::Client,
    url: &str,
    bearer: &str,
    username: &str,
) -> Result<(i64, String), String> {
    let password = "fanout bench password";
    let res = c
        .post(format!("{url}/api/v1/auth/register"))
        .send_json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
        .await
        .map_err(|e| format!("register {username}: {e}"))?;
    if !(res.status().is_success() || res.status().as_u16() == 409) {
        return Err(format!("register {username}: {}", res.status()));
    }
    let login = || async {
        let mut res = c
            .post(format!("{url}/api/v1/auth/login"))
            .send_json(&json!({"login": username, "password": password}))
            .await
            .map_err(|e| format!("login {username}: {e}"))?;
        let body: Value = res
            .json()
            .await
            .map_err(|e| format!("login {username}: {e}"))?;
        match (body["access_token"].as_str(), body["user"]["id"].as_i64()) {
            (Some(token), Some(id)) => Ok((
                id,
                token.to_owned(),
                body["user"]["role"].as_str() == Some("worker"),
            )),
            _ => Err(format!("login {username}: {} {body}", res.status())),
        }
    };
    let (id, token, worker) = login().await?;
    if !worker {
        let res = c
            .patch(format!("{url}/api/v1/users/{id}/role"))
            .bearer_auth(bearer)
            .send_json(&json!({"role": "worker"}))
            .await
            .map_err(|e| format!("promote {username}: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("promote {username}: {}", res.status()));
        }
    }
    Ok((id, token))
}

/// One member's socket: opens, then records every frame until `stop`. A socket the server
/// closes (or that breaks) comes back with `?since=` its last `seq`, as a real client does.
async fn fanout_socket(
    c: awc::Client,
    url: String,
    token: String,
    shared: Arc<Shared>,
    gate: Rc<tokio::sync::Semaphore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> SocketResult {
    use awc::ws::{Frame, Message};
    use futures::{SinkExt, StreamExt};

    /// Drops and refused reconnections a socket bears before it gives up.
    const RECONNECTS: usize = 50;
    let mut out = SocketResult {
        first: vec![0; shared.messages],
        ..SocketResult::default()
    };
    let mut last_seq: Option<i64> = None;
    loop {
        let path = match last_seq {
            Some(seq) => format!("{url}/api/ws/chat?since={seq}"),
            None => format!("{url}/api/ws/chat"),
        };
        let connected = {
            let _permit = gate.acquire().await;
            c.ws(path)
                .bearer_auth(&token)
                .max_frame_size(1 << 20)
                .connect()
                .await
        };
        let mut framed = match connected {
            Ok((_, framed)) => framed,
            Err(e) if !out.open => {
                shared.refused.fetch_add(1, Ordering::Relaxed);
                out.ended = Some(format!("not opened: {e:?}"));
                return out;
            }
            Err(e) => {
                let why = format!("reconnect refused: {e:?}");
                if out.drops.len() >= RECONNECTS || *stop.borrow() {
                    out.ended = Some(why);
                    return out;
                }
                out.drops.push(why);
                actix_rt::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        if !out.open {
            out.open = true;
            shared.opened.fetch_add(1, Ordering::Relaxed);
        }
        let dropped = loop {
            let frame = tokio::select! {
                _ = stop.changed() => {
                    let _ = framed.send(Message::Close(None)).await;
                    return out;
                }
                frame = framed.next() => frame,
            };
            let at = shared.t0.elapsed().as_nanos() as u64;
            let bytes = match frame {
                Some(Ok(Frame::Text(bytes))) => bytes,
                Some(Ok(Frame::Ping(bytes))) => {
                    let _ = framed.send(Message::Pong(bytes)).await;
                    continue;
                }
                Some(Ok(Frame::Close(reason))) => {
                    break match reason {
                        Some(r) => {
                            format!("closed {:?}: {}", r.code, r.description.unwrap_or_default())
                        }
                        None => "closed".to_owned(),
                    };
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => break format!("protocol error: {e}"),
                None => break "connection ended".to_owned(),
            };
            let Ok(frame) = serde_json::from_slice::<WsFrame>(&bytes) else {
                continue;
            };
            if let Some(seq) = frame.seq {
                if last_seq.is_some_and(|last| seq != last + 1) {
                    out.seq_gaps += 1;
                }
                last_seq = Some(seq);
            }
            if frame.kind == "resync" {
                out.resyncs += 1;
            }
            if frame.kind != "message.created" {
                continue;
            }
            let Some(mut parts) = frame
                .data
                .and_then(|d| d.client_id)
                .and_then(|id| id.strip_prefix(shared.run.as_str()))
                .and_then(|rest| rest.strip_prefix(':'))
                .map(|rest| rest.split(':'))
            else {
                continue;
            };
            let (Some(Ok(k)), Some(Ok(sent))) = (
                parts.next().map(str::parse::<usize>),
                parts.next().map(str::parse::<u64>),
            ) else {
                continue;
            };
            let Some(slot) = out.first.get_mut(k) else {
                continue;
            };
            if *slot != 0 {
                out.duplicates += 1;
                continue;
            }
            let micros = at.saturating_sub(sent) / 1000;
            *slot = u32::try_from(micros).unwrap_or(u32::MAX - 1) + 1;
            out.last_ns = out.last_ns.max(at);
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        };
        if out.drops.len() >= RECONNECTS || *stop.borrow() {
            out.ended = Some(dropped);
            return out;
        }
        out.drops.push(dropped);
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A thread of socket clients on its own runtime (so the sockets' parsing is not on the
/// thread that drives the scenario): `open` runs once per job, with a client without a pool
/// limit (every socket holds its connection for the whole run) and a gate that lets a few
/// handshakes through at a time, so the listen backlog never overflows. Gives each job's
/// result back (`None` for a task that panicked).
fn socket_thread<J, R, F, Fut>(jobs: Vec<J>, open: F) -> std::thread::JoinHandle<Vec<Option<R>>>
where
    J: Send + 'static,
    R: 'static + Send,
    F: Fn(awc::Client, J, Rc<tokio::sync::Semaphore>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = R> + 'static,
{
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let c = awc::Client::builder()
                .connector(awc::Connector::new().limit(0))
                .timeout(Duration::from_secs(30))
                .finish();
            let gate = Rc::new(tokio::sync::Semaphore::new(32));
            let tasks: Vec<_> = jobs
                .into_iter()
                .map(|job| actix_rt::spawn(open(c.clone(), job, gate.clone())))
                .collect();
            let mut results = Vec::with_capacity(tasks.len());
            for t in tasks {
                results.push(t.await.ok());
            }
            results
        })
    })
}

async fn fanout(f: Fanout) -> Value {
    let c = client();
    let setup = Instant::now();
    let mut res = c
        .get(format!("{}/api/v1/me", f.url))
        .bearer_auth(&f.bearer)
        .send()
        .await
        .expect("GET /me");
    let me: Value = res.json().await.expect("/me body");
    let owner_id = me["id"].as_i64().expect("the owner's id");

    // The members: the owner first, then the workers.
    let workers = f.members.saturating_sub(1);
    let per_task = f.concurrency.max(1);
    let tasks: Vec<_> = (0..per_task)
        .map(|j| {
            let (url, bearer, prefix) = (f.url.clone(), f.bearer.clone(), f.prefix.clone());
            actix_rt::spawn(async move {
                let c = client();
                let mut got = Vec::new();
                for n in (j..workers).step_by(per_task) {
                    let username = format!("{prefix}-{n}");
                    got.push((n, fanout_member(&c, &url, &bearer, &username).await));
                }
                got
            })
        })
        .collect();
    let mut members: Vec<(usize, (i64, String))> = Vec::with_capacity(f.members);
    for t in tasks {
        for (n, r) in t.await.expect("a setup task") {
            members.push((n, r.unwrap_or_else(|e| panic!("setting up a member: {e}"))));
        }
    }
    members.sort_by_key(|(n, _)| *n);
    let mut members: Vec<(i64, String)> = members.into_iter().map(|(_, m)| m).collect();
    members.insert(0, (owner_id, f.bearer.clone()));
    let accounts = setup.elapsed();

    let run = format!("fo{}x{}", std::process::id(), rand_suffix());
    let mut res = c
        .post(format!("{}/api/v1/chats", f.url))
        .bearer_auth(&f.bearer)
        .timeout(Duration::from_secs(120))
        .send_json(&json!({
            "kind": "group",
            "title": format!("fanout {run}"),
            "member_ids": members.iter().skip(1).map(|(id, _)| *id).collect::<Vec<_>>(),
        }))
        .await
        .expect("create the group");
    let chat: Value = res.json().limit(1 << 22).await.expect("the group");
    let chat_id = chat["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no group: {} {chat}", res.status()));

    let messages = (u64::from(f.rate) * f.seconds) as usize;
    let shared = Arc::new(Shared {
        t0: Instant::now(),
        run: run.clone(),
        messages,
        opened: AtomicUsize::new(0),
        refused: AtomicUsize::new(0),
        delivered: AtomicU64::new(0),
    });
    let ws_urls = if f.ws_urls.is_empty() {
        vec![f.url.clone()]
    } else {
        f.ws_urls.clone()
    };
    let threads = f.threads.max(1);
    let mut jobs: Vec<Vec<(String, String)>> = vec![Vec::new(); threads];
    for (i, (_, token)) in members.iter().enumerate() {
        jobs[i % threads].push((ws_urls[i % ws_urls.len()].clone(), token.clone()));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|jobs| {
            let (shared, stop) = (shared.clone(), stop_rx.clone());
            socket_thread(jobs, move |c, (url, token), gate| {
                fanout_socket(c, url, token, shared.clone(), gate, stop.clone())
            })
        })
        .collect();
    let opening = Instant::now();
    while shared.opened.load(Ordering::Relaxed) + shared.refused.load(Ordering::Relaxed)
        < members.len()
        && opening.elapsed() < Duration::from_secs(300)
    {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let opened = shared.opened.load(Ordering::Relaxed);
    println!(
        "setup: {} members ready in {:.1}s, group {chat_id} created, {opened} sockets open ({} refused) in {:.1}s",
        members.len(),
        accounts.as_secs_f64(),
        shared.refused.load(Ordering::Relaxed),
        opening.elapsed().as_secs_f64()
    );
    // Let the member_added events and the handshakes settle before measuring.
    actix_rt::time::sleep(Duration::from_secs(2)).await;

    // The sender: a fixed schedule, each send on its own task so a slow answer delays
    // no later send.
    let cpu_before = cpu_time();
    let start = Instant::now();
    let period = Duration::from_secs(1) / f.rate.max(1);
    let sender = client();
    let mut sends = Vec::with_capacity(messages);
    let mut lag_max = Duration::ZERO;
    for k in 0..messages {
        let due = start + period * u32::try_from(k).unwrap_or(u32::MAX);
        actix_rt::time::sleep_until(due.into()).await;
        lag_max = lag_max.max(due.elapsed());
        let (c, url, bearer, shared) = (
            sender.clone(),
            f.url.clone(),
            f.bearer.clone(),
            shared.clone(),
        );
        sends.push(actix_rt::spawn(async move {
            let sent = shared.t0.elapsed().as_nanos() as u64;
            let body = json!({
                "kind": "text",
                "body": format!("fanout message {k}, sent at {sent} ns"),
                "client_id": format!("{}:{k}:{sent}", shared.run),
            });
            let at = Instant::now();
            let status = match c
                .post(format!("{url}/api/v1/chats/{chat_id}/messages"))
                .bearer_auth(&bearer)
                .send_json(&body)
                .await
            {
                Ok(mut res) => {
                    let _ = res.body().await;
                    res.status().as_u16()
                }
                Err(_) => 0,
            };
            (status, at.elapsed().as_micros() as u64)
        }));
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut send_us = Vec::with_capacity(messages);
    let mut ok = vec![false; messages];
    for (k, s) in sends.into_iter().enumerate() {
        let (status, us) = s.await.unwrap_or((0, 0));
        *statuses.entry(status).or_default() += 1;
        send_us.push(us);
        ok[k] = status == 201;
    }
    let sent_ok = ok.iter().filter(|o| **o).count();
    let sending = start.elapsed();
    let expected = (sent_ok * members.len()) as u64;
    // Late deliveries: wait until all arrived and a second passed without more (a send
    // that failed at the client may still have been stored and delivered), or `drain`.
    let drain_from = Instant::now();
    let (mut seen, mut quiet_since) = (0, Instant::now());
    while drain_from.elapsed() < f.drain {
        let now = shared.delivered.load(Ordering::Relaxed);
        if now != seen {
            (seen, quiet_since) = (now, Instant::now());
        } else if now >= (sent_ok * opened) as u64 && quiet_since.elapsed() > Duration::from_secs(1)
        {
            break;
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = cpu_before.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    let _ = stop_tx.send(true);
    let results: Vec<SocketResult> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .map(Option::unwrap_or_default)
        .collect();

    // Every first delivery; per message, the time its last member got it.
    let mut latencies = Vec::with_capacity(expected as usize);
    // Arrival relative to the send's answer (negative: the socket was first).
    let mut after_answer: Vec<i64> = Vec::with_capacity(expected as usize);
    let mut everyone = vec![0u64; messages];
    let mut reached = vec![0usize; messages];
    let (mut duplicates, mut gaps, mut stray, mut last_ns, mut resyncs) = (0, 0, 0, 0, 0);
    let mut ended = std::collections::BTreeMap::<String, usize>::new();
    let mut drops = std::collections::BTreeMap::<String, usize>::new();
    for r in &results {
        duplicates += r.duplicates;
        gaps += r.seq_gaps;
        resyncs += r.resyncs;
        for why in &r.drops {
            *drops.entry(why.clone()).or_default() += 1;
        }
        last_ns = last_ns.max(r.last_ns);
        if let Some(why) = &r.ended {
            *ended.entry(why.clone()).or_default() += 1;
        }
        for (k, v) in r.first.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            if !ok[k] {
                stray += 1;
                continue;
            }
            let us = u64::from(*v - 1);
            latencies.push(us);
            after_answer.push(us as i64 - send_us[k] as i64);
            everyone[k] = everyone[k].max(us);
            reached[k] += 1;
        }
    }
    latencies.sort_unstable();
    send_us.sort_unstable();
    after_answer.sort_unstable();
    let mut complete: Vec<u64> = (0..messages)
        .filter(|k| ok[*k] && reached[*k] == members.len())
        .map(|k| everyone[k])
        .collect();
    complete.sort_unstable();
    let received = latencies.len() as u64;
    let window = Duration::from_nanos(last_ns)
        .saturating_sub(start.duration_since(shared.t0))
        .as_secs_f64();
    let ms = |v: &[u64], p| pct(v, p, 1000.0);
    println!(
        "fanout: {} members, {} msg/s for {}s, sent to {}, {opened} sockets on {} ({} threads)",
        members.len(),
        f.rate,
        f.seconds,
        f.url,
        ws_urls.join(" + "),
        threads
    );
    println!("  {:<26}{}", "messages sent", messages);
    println!("  {:<26}{statuses:?}", "send statuses");
    println!("  {:<26}{expected} (201s x members)", "deliveries expected");
    println!("  {:<26}{received}", "deliveries received");
    println!("  {:<26}{}", "lost", expected.saturating_sub(received));
    println!("  {:<26}{duplicates}", "duplicates");
    println!("  {:<26}{gaps}", "seq gaps");
    if stray > 0 {
        println!("  {:<26}{stray}", "deliveries, failed sends");
    }
    println!("  {:<26}{drops:?}", "reconnects (with since)");
    println!("  {:<26}{ended:?}", "sockets ended early");
    if resyncs > 0 {
        println!("  {:<26}{resyncs}", "resync frames");
    }
    println!(
        "  {:<26}p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        "delivery latency ms",
        ms(&latencies, 0.50),
        ms(&latencies, 0.90),
        ms(&latencies, 0.99),
        ms(&latencies, 1.0)
    );
    let signed = |p: f64| {
        let i = ((after_answer.len() as f64 * p).ceil() as usize)
            .clamp(1, after_answer.len().max(1))
            - 1;
        after_answer.get(i).map_or(f64::NAN, |v| *v as f64 / 1000.0)
    };
    println!(
        "  {:<26}p50 {:.1}  p99 {:.1}  max {:.1}",
        "  after the send's answer",
        signed(0.50),
        signed(0.99),
        signed(1.0)
    );
    println!(
        "  {:<26}p50 {:.1}  p99 {:.1}  max {:.1}  ({} of {sent_ok} reached everyone)",
        "last member's latency ms",
        ms(&complete, 0.50),
        ms(&complete, 0.99),
        ms(&complete, 1.0),
        complete.len()
    );
    println!(
        "  {:<26}{:.0} (first send to last delivery: {window:.1}s)",
        "deliveries/s",
        received as f64 / window
    );
    println!(
        "  {:<26}p50 {:.1}  p99 {:.1}  max {:.1}",
        "send (REST) latency ms",
        ms(&send_us, 0.50),
        ms(&send_us, 0.99),
        ms(&send_us, 1.0)
    );
    println!(
        "  {:<26}sending {:.1}s, sender lag max {:.1} ms, load generator CPU {}",
        "client side",
        sending.as_secs_f64(),
        lag_max.as_secs_f64() * 1000.0,
        cpu.map_or("?".to_owned(), |d| format!("{:.1}s", d.as_secs_f64()))
    );
    // NaN (no value) is not JSON: null instead.
    let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
    json!({
        "members": members.len(),
        "rate": f.rate,
        "seconds": f.seconds,
        "sockets_opened": opened,
        "sockets_refused": shared.refused.load(Ordering::Relaxed),
        "messages": messages,
        "send_statuses": statuses_json(&statuses),
        "expected": expected,
        "received": received,
        "lost": expected.saturating_sub(received),
        "duplicates": duplicates,
        "seq_gaps": gaps,
        "stray": stray,
        "reconnects": drops.values().sum::<usize>(),
        "ended_early": ended.values().sum::<usize>(),
        "resyncs": resyncs,
        "p50_ms": num(ms(&latencies, 0.50)),
        "p90_ms": num(ms(&latencies, 0.90)),
        "p99_ms": num(ms(&latencies, 0.99)),
        "max_ms": num(ms(&latencies, 1.0)),
        "last_member_p50_ms": num(ms(&complete, 0.50)),
        "last_member_p99_ms": num(ms(&complete, 0.99)),
        "reached_everyone": complete.len(),
        "sent_ok": sent_ok,
        "deliveries_per_s": num(received as f64 / window),
        "send_p50_ms": num(ms(&send_us, 0.50)),
        "send_p99_ms": num(ms(&send_us, 0.99)),
        "setup_seconds": accounts.as_secs_f64(),
    })
}

/// Percentile figures of unsorted µs latencies, in ms, with the throughput over `elapsed`.
fn latency_json(mut us: Vec<u64>, elapsed: Duration) -> Value {
    us.sort_unstable();
    let ms = |p| {
        let v = pct(&us, p, 1000.0);
        if v.is_finite() {
            json!(v)
        } else {
            Value::Null
        }
    };
    json!({
        "count": us.len(),
        "seconds": elapsed.as_secs_f64(),
        "rps": us.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": ms(0.50),
        "p90_ms": ms(0.90),
        "p99_ms": ms(0.99),
        "max_ms": ms(1.0),
    })
}

/// Registers a customer account and logs it in: its access token, and how many answers
/// were 429, 503 or none at all (each retried after a pause, up to 10 times a step).
async fn customer_account(
    c: &awc::Client,
    url: &str,
    username: &str,
) -> Result<(String, usize), String> {
    let password = "bench customer password";
    let mut retries = 0;
    let retry = |status: u16| matches!(status, 0 | 429 | 503);
    loop {
        let status = match c
            .post(format!("{url}/api/v1/auth/register"))
            .send_json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
            .await
        {
            Ok(mut res) => {
                let _ = res.body().await;
                res.status().as_u16()
            }
            Err(_) => 0,
        };
        if (200..300).contains(&status) || status == 409 {
            break;
        }
        if !retry(status) || retries >= 10 {
            return Err(format!("register {username}: {status}"));
        }
        retries += 1;
        actix_rt::time::sleep(Duration::from_millis(500 * retries as u64)).await;
    }
    loop {
        let (status, body) = match c
            .post(format!("{url}/api/v1/auth/login"))
            .send_json(&json!({"login": username, "password": password}))
            .await
        {
            Ok(mut res) => (
                res.status().as_u16(),
                res.json::<Value>().await.unwrap_or_default(),
            ),
            Err(_) => (0, Value::Null),
        };
        if let Some(token) = body["access_token"].as_str() {
            return Ok((token.to_owned(), retries));
        }
        if !retry(status) || retries >= 20 {
            return Err(format!("login {username}: {status} {body}"));
        }
        retries += 1;
        actix_rt::time::sleep(Duration::from_millis(500 * retries as u64)).await;
    }
}

/// Registers and logs in `n` customers named `<prefix>-<k>`, `concurrency` at a time: their
/// tokens, and the answers that had to be retried (429, 503 or none).
async fn customer_accounts(
    url: &str,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> (Vec<String>, usize) {
    let lanes = concurrency.clamp(1, n.max(1));
    let tasks: Vec<_> = (0..lanes)
        .map(|lane| {
            let (url, prefix) = (url.to_owned(), prefix.to_owned());
            actix_rt::spawn(async move {
                let c = client();
                let mut got = Vec::new();
                for k in (lane..n).step_by(lanes) {
                    let account = customer_account(&c, &url, &format!("{prefix}-{k}")).await;
                    got.push((
                        k,
                        account.unwrap_or_else(|e| panic!("a customer account: {e}")),
                    ));
                }
                got
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("an account task"));
    }
    all.sort_by_key(|(k, _)| *k);
    let retries = all.iter().map(|(_, (_, r))| r).sum();
    if retries > 0 {
        println!(
            "  setting up {n} accounts: {retries} answers were 429, 503 or missing, and retried"
        );
    }
    (
        all.into_iter().map(|(_, (token, _))| token).collect(),
        retries,
    )
}

/// The fulfilment scenario's settings.
struct Fulfilments {
    url: String,
    bearer: String,
    requests: usize,
    customers: usize,
    items: usize,
    concurrency: usize,
}

async fn fulfilments(f: Fulfilments) -> Value {
    use std::cell::{Cell, RefCell};
    let c = client();
    let run = format!("ful{}x{}", std::process::id(), rand_suffix());
    let items = f.items.max(1);
    // A customer may have at most 100 requests pending (409 beyond): enough customers.
    let customers = f.customers.max(f.requests.div_ceil(100)).max(1);
    // Quantities 1..=3: enough stock for every request, and some to spare.
    let stock = (f.requests / items + 1) as i64 * 3 + 100;
    let mut item_ids = Vec::with_capacity(items);
    for k in 0..items {
        let mut res = c
            .post(format!("{}/api/v1/items", f.url))
            .bearer_auth(&f.bearer)
            .send_json(&json!({
                "name": format!("Fulfilment item {run} {k}"),
                "sku": format!("{run}-{k}"),
                "kind": "non_perishable",
                "min_quantity": 0,
                "quantity": stock,
            }))
            .await
            .expect("create an item");
        let body: Value = res.json().await.expect("the item");
        item_ids.push(
            body["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("no item: {} {body}", res.status())),
        );
    }
    let (tokens, setup_retries) = customer_accounts(&f.url, &run, customers, f.concurrency).await;

    // Customers create the requests, each its share one after the other.
    let started = Instant::now();
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(n, token)| {
            let (url, token, item_ids) = (f.url.clone(), token.clone(), item_ids.clone());
            let requests = f.requests;
            actix_rt::spawn(async move {
                let c = client();
                let mut made = Vec::new();
                let mut latencies = Vec::new();
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                for j in (n..requests).step_by(customers) {
                    let item = j % item_ids.len();
                    let quantity = 1 + (j % 3) as i64;
                    let at = Instant::now();
                    let (status, body) = match c
                        .post(format!("{url}/api/v1/replenishment-requests"))
                        .bearer_auth(&token)
                        .send_json(&json!({"item_id": item_ids[item], "quantity": quantity}))
                        .await
                    {
                        Ok(mut res) => {
                            let body: Option<Value> = res.json().await.ok();
                            (res.status().as_u16(), body)
                        }
                        Err(_) => (0, None),
                    };
                    latencies.push(at.elapsed().as_micros() as u64);
                    *statuses.entry(status).or_default() += 1;
                    if let Some(id) = body.and_then(|b| b["id"].as_i64()) {
                        made.push((id, item, quantity));
                    }
                }
                (made, latencies, statuses)
            })
        })
        .collect();
    let (mut made, mut create_us, mut create_statuses) =
        (Vec::new(), Vec::new(), std::collections::BTreeMap::new());
    for t in tasks {
        let (m, l, s) = t.await.expect("a customer task");
        made.extend(m);
        create_us.extend(l);
        for (status, n) in s {
            *create_statuses.entry(status).or_default() += n;
        }
    }
    let creating = started.elapsed();

    // Staff fulfil them all, `concurrency` at a time, each client taking the next one.
    let queue = Rc::new(made);
    let next = Rc::new(Cell::new(0usize));
    let taken = Rc::new(RefCell::new(vec![0i64; items]));
    let started = Instant::now();
    let tasks: Vec<_> = (0..f.concurrency.max(1))
        .map(|_| {
            let (queue, next, taken) = (queue.clone(), next.clone(), taken.clone());
            let (url, bearer) = (f.url.clone(), f.bearer.clone());
            actix_rt::spawn(async move {
                let c = client();
                let mut latencies = Vec::new();
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                loop {
                    let k = next.get();
                    let Some(&(id, item, quantity)) = queue.get(k) else {
                        break;
                    };
                    next.set(k + 1);
                    let at = Instant::now();
                    let status = match c
                        .post(format!("{url}/api/v1/replenishment-requests/{id}/fulfil"))
                        .bearer_auth(&bearer)
                        .send()
                        .await
                    {
                        Ok(mut res) => {
                            let _ = res.body().limit(1 << 22).await;
                            res.status().as_u16()
                        }
                        Err(_) => 0,
                    };
                    latencies.push(at.elapsed().as_micros() as u64);
                    *statuses.entry(status).or_default() += 1;
                    if status == 200 {
                        taken.borrow_mut()[item] += quantity;
                    }
                }
                (latencies, statuses)
            })
        })
        .collect();
    let (mut fulfil_us, mut fulfil_statuses) = (Vec::new(), std::collections::BTreeMap::new());
    for t in tasks {
        let (l, s) = t.await.expect("a staff task");
        fulfil_us.extend(l);
        for (status, n) in s {
            *fulfil_statuses.entry(status).or_default() += n;
        }
    }
    let fulfilling = started.elapsed();

    // What is left must be what was stocked minus what the 200s handed out.
    let mut mismatches = Vec::new();
    for (k, id) in item_ids.iter().enumerate() {
        let left = match c
            .get(format!("{}/api/v1/items/{id}", f.url))
            .bearer_auth(&f.bearer)
            .send()
            .await
        {
            Ok(mut res) => res
                .json::<Value>()
                .limit(1 << 22)
                .await
                .ok()
                .and_then(|v| v["quantity"].as_i64()),
            Err(_) => None,
        };
        let expected = stock - taken.borrow()[k];
        if left != Some(expected) {
            mismatches.push(json!({"item": id, "expected": expected, "found": left}));
        }
    }
    let create = latency_json(create_us, creating);
    let fulfil = latency_json(fulfil_us, fulfilling);
    println!(
        "fulfilments: {} requests on {items} items by {customers} customers: created at {:.0}/s (p50 {} p99 {} ms), statuses {create_statuses:?}",
        f.requests, create["rps"].as_f64().unwrap_or_default(), create["p50_ms"], create["p99_ms"]
    );
    println!(
        "  fulfilled by {} staff clients at {:.0}/s, latency ms p50 {} p90 {} p99 {} max {}, statuses {fulfil_statuses:?}",
        f.concurrency,
        fulfil["rps"].as_f64().unwrap_or_default(),
        fulfil["p50_ms"],
        fulfil["p90_ms"],
        fulfil["p99_ms"],
        fulfil["max_ms"]
    );
    println!(
        "  stock left {}",
        if mismatches.is_empty() {
            "as expected".to_owned()
        } else {
            format!("WRONG: {mismatches:?}")
        }
    );
    json!({
        "requests": f.requests,
        "items": items,
        "customers": customers,
        "concurrency": f.concurrency,
        "create": create,
        "create_statuses": statuses_json(&create_statuses),
        "fulfil": fulfil,
        "fulfil_statuses": statuses_json(&fulfil_statuses),
        "setup_retries": setup_retries,
        "stock_consistent": mismatches.is_empty(),
        "stock_mismatches": mismatches,
    })
}

/// What the idle sockets share with the main thread.
#[derive(Default)]
struct IdleShared {
    opened: AtomicUsize,
    refused: AtomicUsize,
    /// Sockets the server closed (or that broke) while held.
    ended: AtomicUsize,
    pongs: AtomicUsize,
}

/// One idle socket: opens, answers pings until `stop`; why it ended early, if it did.
async fn idle_socket(
    c: awc::Client,
    url: String,
    token: String,
    shared: Arc<IdleShared>,
    gate: Rc<tokio::sync::Semaphore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<String> {
    use awc::ws::{Frame, Message};
    use futures::{SinkExt, StreamExt};
    let connected = {
        let _permit = gate.acquire().await;
        c.ws(format!("{url}/api/ws/chat"))
            .bearer_auth(&token)
            .connect()
            .await
    };
    let mut framed = match connected {
        Ok((_, framed)) => framed,
        Err(e) => {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            // Only the kind of error, so that equal ones count together.
            let e = format!("{e:?}");
            return Some(format!(
                "not opened: {}",
                e.split(['(', ' ', '{']).next().unwrap_or_default()
            ));
        }
    };
    shared.opened.fetch_add(1, Ordering::Relaxed);
    let why = loop {
        let frame = tokio::select! {
            _ = stop.changed() => {
                let _ = framed.send(Message::Close(None)).await;
                return None;
            }
            frame = framed.next() => frame,
        };
        match frame {
            Some(Ok(Frame::Ping(bytes))) => {
                shared.pongs.fetch_add(1, Ordering::Relaxed);
                let _ = framed.send(Message::Pong(bytes)).await;
            }
            Some(Ok(Frame::Close(reason))) => {
                break match reason {
                    Some(r) => format!("closed {:?}", r.code),
                    None => "closed".to_owned(),
                };
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("protocol error: {e}"),
            None => break "connection ended".to_owned(),
        }
    };
    shared.ended.fetch_add(1, Ordering::Relaxed);
    Some(why)
}

/// The idle-socket scenario: see [`Cmd::IdleSockets`].
async fn idle_sockets(
    url: &str,
    count: usize,
    per_account: usize,
    threads: usize,
    concurrency: usize,
    seconds: u64,
    json_lines: bool,
) -> Value {
    let accounts = count.div_ceil(per_account.max(1));
    let run = format!("idle{}x{}", std::process::id(), rand_suffix());
    let setup = Instant::now();
    let (tokens, setup_retries) = customer_accounts(url, &run, accounts, concurrency).await;
    let accounts_took = setup.elapsed();
    let shared = Arc::new(IdleShared::default());
    let threads = threads.max(1);
    let mut jobs: Vec<Vec<String>> = vec![Vec::new(); threads];
    for i in 0..count {
        jobs[i % threads].push(tokens[i / per_account.max(1)].clone());
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opening = Instant::now();
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|jobs| {
            let (url, shared, stop) = (url.to_owned(), shared.clone(), stop_rx.clone());
            socket_thread(jobs, move |c, token, gate| {
                idle_socket(c, url.clone(), token, shared.clone(), gate, stop.clone())
            })
        })
        .collect();
    while shared.opened.load(Ordering::Relaxed) + shared.refused.load(Ordering::Relaxed) < count
        && opening.elapsed() < Duration::from_secs(600)
    {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let open_took = opening.elapsed();
    let opened = shared.opened.load(Ordering::Relaxed);
    let refused = shared.refused.load(Ordering::Relaxed);
    println!(
        "idle sockets: {opened} of {count} open ({refused} refused) on {accounts} accounts (made in {:.1}s) in {:.1}s; holding them {seconds}s",
        accounts_took.as_secs_f64(),
        open_took.as_secs_f64()
    );
    bench_line(
        json_lines,
        &json!({"event": "open", "count": count, "opened": opened, "refused": refused, "open_seconds": open_took.as_secs_f64()}),
    );
    actix_rt::time::sleep(Duration::from_secs(seconds)).await;
    let _ = stop_tx.send(true);
    let mut ended = std::collections::BTreeMap::<String, usize>::new();
    for why in handles
        .into_iter()
        .flat_map(|h| h.join().unwrap_or_default())
        .flatten()
        .flatten()
    {
        *ended.entry(why).or_default() += 1;
    }
    let closed = shared.ended.load(Ordering::Relaxed);
    println!(
        "  {closed} closed by the server while held, pings answered {}; ended early: {ended:?}",
        shared.pongs.load(Ordering::Relaxed)
    );
    json!({
        "event": "done",
        "count": count,
        "accounts": accounts,
        "opened": opened,
        "refused": refused,
        "open_seconds": open_took.as_secs_f64(),
        "closed_by_server": closed,
        "pongs": shared.pongs.load(Ordering::Relaxed),
        "ended": ended,
        "setup_retries": setup_retries,
    })
}

/// A few random characters to tell runs apart.
fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{:x}", nanos % 0xFFFF_FFFF)
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

#[actix_rt::main]
async fn main() {
    let args = Args::parse();
    let c = client();
    let bearer = token(&c, &args.url, &args.login, &args.password).await;
    match args.command {
        Cmd::Fanout {
            members,
            rate,
            ws_url,
            threads,
            drain,
            prefix,
        } => {
            let figures = fanout(Fanout {
                url: args.url.clone(),
                bearer,
                members,
                rate,
                seconds: args.seconds,
                ws_urls: ws_url,
                threads,
                drain: Duration::from_secs(drain),
                prefix,
                concurrency: args.concurrency,
            })
            .await;
            bench_line(args.json, &figures);
        }
        Cmd::Fulfilments {
            requests,
            customers,
            items,
        } => {
            let figures = fulfilments(Fulfilments {
                url: args.url.clone(),
                bearer,
                requests,
                customers,
                items,
                concurrency: args.concurrency,
            })
            .await;
            bench_line(args.json, &figures);
        }
        Cmd::IdleSockets {
            count,
            per_account,
            threads,
        } => {
            let figures = idle_sockets(
                &args.url,
                count,
                per_account,
                threads,
                args.concurrency,
                args.seconds,
                args.json,
            )
            .await;
            bench_line(args.json, &figures);
        }
        Cmd::WriteStorm { rounds, imports } => {
            let started = Instant::now();
            let mut setup = StatusCounts::default();
            let item = setup
                .record(
                    c.post(format!("{}/api/v1/items", args.url))
                        .bearer_auth(&bearer)
                        .send_json(&json!({"name": format!("storm {}", std::process::id()), "kind": "non_perishable", "quantity": 1_000_000}))
                        .await,
                )
                .await
                .and_then(|v| v["id"].as_i64())
                .expect("created the storm item");
            let clients: Vec<_> = (0..args.concurrency)
                .map(|n| {
                    actix_rt::spawn(storm_client(
                        args.url.clone(),
                        bearer.clone(),
                        item,
                        n,
                        rounds,
                    ))
                })
                .collect();
            let importer = imports.then(|| {
                let (url, bearer) = (args.url.clone(), bearer.clone());
                actix_rt::spawn(async move {
                    let c = client();
                    let mut counts = StatusCounts::default();
                    let mut times = Vec::new();
                    for file in 0..3 {
                        let mut csv = String::from("sku,name,kind,min_quantity,quantity\n");
                        for i in 0..5_000 {
                            csv.push_str(&format!(
                                "STORM-{}-{file}-{i},Storm {i},non_perishable,1,5\n",
                                std::process::id()
                            ));
                        }
                        let at = Instant::now();
                        counts
                            .record(
                                c.post(format!("{url}/api/v1/items/import"))
                                    .bearer_auth(&bearer)
                                    .insert_header(("Content-Type", "text/csv"))
                                    .timeout(Duration::from_secs(120))
                                    .send_body(csv)
                                    .await,
                            )
                            .await;
                        times.push(at.elapsed().as_millis());
                    }
                    (counts, times)
                })
            });
            let mut all = StatusCounts::default();
            for task in clients {
                if let Ok(counts) = task.await {
                    all.merge(counts);
                }
            }
            let mut figures = json!({
                "clients": args.concurrency,
                "rounds": rounds,
                "seconds": started.elapsed().as_secs_f64(),
                "statuses": statuses_json(&all.0),
            });
            println!(
                "write storm: {} clients x {rounds} rounds (login, restock, consume) in {:.1}s; statuses {:?}",
                args.concurrency,
                started.elapsed().as_secs_f64(),
                all.0
            );
            if let Some(importer) = importer {
                if let Ok((counts, times)) = importer.await {
                    println!(
                        "imports of 5,000 rows meanwhile: statuses {:?}, each took ms {times:?}",
                        counts.0
                    );
                    figures["import_statuses"] = statuses_json(&counts.0);
                    figures["import_ms"] = json!(times);
                }
            }
            bench_line(args.json, &figures);
        }
        Cmd::SeedItems { count } => {
            let started = Instant::now();
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            let chunk = 5_000; // the server's per-import cap
            for start in (0..count).step_by(chunk) {
                let mut csv = String::from(
                    "sku,name,kind,min_quantity,target_quantity,quantity,expiry_date\n",
                );
                for i in start..(start + chunk).min(count) {
                    let (kind, expiry) = if i % 3 == 0 {
                        (
                            "perishable",
                            format!("2027-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
                        )
                    } else {
                        ("non_perishable", String::new())
                    };
                    csv.push_str(&format!(
                        "BENCH-{i:07},Bench item {i:07},{kind},{},{},{},{expiry}\n",
                        i % 10,
                        20 + i % 10,
                        i % 50
                    ));
                }
                let mut res = c
                    .post(format!("{}/api/v1/items/import", args.url))
                    .bearer_auth(&bearer)
                    .insert_header(("Content-Type", "text/csv"))
                    .timeout(Duration::from_secs(600))
                    .send_body(csv)
                    .await
                    .expect("import");
                let body = res.body().limit(1 << 20).await.unwrap_or_default();
                *statuses.entry(res.status().as_u16()).or_default() += 1;
                println!(
                    "import {start}..: {} {}",
                    res.status(),
                    String::from_utf8_lossy(&body)
                );
            }
            println!(
                "seeded {count} items in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            bench_line(
                args.json,
                &json!({"count": count, "seconds": started.elapsed().as_secs_f64(), "statuses": statuses_json(&statuses)}),
            );
        }
        Cmd::Get { path } => {
            let url = format!("{}{}", args.url, path);
            let deadline = Instant::now() + Duration::from_secs(args.seconds);
            let started = Instant::now();
            let mut stats = hammer(args.concurrency, deadline, move |c| {
                let (url, bearer) = (url.clone(), bearer.clone());
                async move { get_ok(&c, &url, &bearer).await }
            })
            .await;
            let figures = stats.report(
                &format!("GET {path} x{}", args.concurrency),
                started.elapsed(),
            );
            bench_line(args.json, &figures);
        }
        Cmd::ReadEach {
            prefix,
            first,
            last,
        } => {
            let started = Instant::now();
            let next = Rc::new(std::cell::Cell::new(first));
            let tasks: Vec<_> = (0..args.concurrency)
                .map(|_| {
                    let (next, bearer) = (next.clone(), bearer.clone());
                    let prefix = format!("{}{prefix}", args.url);
                    actix_rt::spawn(async move {
                        let http = client();
                        let mut failed = 0u64;
                        loop {
                            let id = next.get();
                            if id > last {
                                return failed;
                            }
                            next.set(id + 1);
                            let ok = get_ok(&http, &format!("{prefix}{id}"), &bearer).await;
                            failed += u64::from(!ok);
                        }
                    })
                })
                .collect();
            let mut failed = 0;
            for task in tasks {
                failed += task.await.unwrap_or(1);
            }
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "read {} ids in {seconds:.1}s, {failed} failed",
                last - first + 1
            );
            bench_line(
                args.json,
                &json!({"count": last - first + 1, "failed": failed, "seconds": seconds}),
            );
        }
        Cmd::LoginsAndMe => {
            let deadline = Instant::now() + Duration::from_secs(args.seconds);
            let started = Instant::now();
            let (url, login, password) =
                (args.url.clone(), args.login.clone(), args.password.clone());
            let logins = hammer(args.concurrency, deadline, move |c| {
                let url = url.clone();
                let body = json!({"login": login, "password": password});
                async move {
                    match c
                        .post(format!("{url}/api/v1/auth/login"))
                        .send_json(&body)
                        .await
                    {
                        Ok(mut res) => res.body().await.is_ok() && res.status().is_success(),
                        Err(_) => false,
                    }
                }
            });
            let me_url = format!("{}/api/v1/me", args.url);
            let me = hammer(1, deadline, move |c| {
                let (url, bearer) = (me_url.clone(), bearer.clone());
                async move {
                    match c.get(&url).bearer_auth(&bearer).send().await {
                        Ok(mut res) => res.body().await.is_ok() && res.status().is_success(),
                        Err(_) => false,
                    }
                }
            });
            let (mut logins, mut me) = futures::join!(logins, me);
            let logins = logins.report(
                &format!("POST /auth/login x{}", args.concurrency),
                started.elapsed(),
            );
            let me = me.report("GET /me x1 during logins", started.elapsed());
            bench_line(args.json, &json!({"logins": logins, "me": me}));
        }
    }
}
