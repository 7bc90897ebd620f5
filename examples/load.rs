//! A small load generator for Stockroom's benchmarks (not a test). It talks to a running
//! server over loopback, runs for a bounded time, and reports throughput and latency.
//!
//! ```sh
//! cargo run --release --example load -- --url http://127.0.0.1:8080 seed-items 100000 --login owner --password '…'
//! cargo run --release --example load -- --url http://127.0.0.1:8080 get /api/v1/items?limit=50 --login owner --password '…'
//! cargo run --release --example load -- --url http://127.0.0.1:8080 logins-and-me --login owner --password '…'
//! ```

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
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long each measurement runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create N items through CSV import (in chunks).
    SeedItems { count: usize },
    /// GET one path as fast as the clients can.
    Get { path: String },
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
    fn report(&mut self, name: &str, elapsed: Duration) {
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
                }
            }
        }
        Cmd::SeedItems { count } => {
            let started = Instant::now();
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
        }
        Cmd::Get { path } => {
            let url = format!("{}{}", args.url, path);
            let deadline = Instant::now() + Duration::from_secs(args.seconds);
            let started = Instant::now();
            let mut stats = hammer(args.concurrency, deadline, move |c| {
                let (url, bearer) = (url.clone(), bearer.clone());
                async move {
                    match c.get(&url).bearer_auth(&bearer).send().await {
                        Ok(mut res) => {
                            res.body().limit(1 << 22).await.is_ok() && res.status().is_success()
                        }
                        Err(_) => false,
                    }
                }
            })
            .await;
            stats.report(
                &format!("GET {path} x{}", args.concurrency),
                started.elapsed(),
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
            logins.report(
                &format!("POST /auth/login x{}", args.concurrency),
                started.elapsed(),
            );
            me.report("GET /me x1 during logins", started.elapsed());
        }
    }
}
