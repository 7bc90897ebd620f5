//! Benchmark of the expiry and low-stock scan (not a test): the time and the number of SQL
//! statements of one scan over 100,000 batches, on a database of its own.
//!
//! ```sh
//! cargo run --release --example alert_scan                      # SQLite, in a temporary directory
//! cargo run --release --example alert_scan -- postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! It stores 10,000 items of 10 batches each (expiry dates spread over 400 days, 30 of them
//! past), then runs the scan as the server does, on successive days: the first scan checks
//! everything (as after the upgrade that adds notifications); later ones read only the rows
//! whose state changed since the previous scan, through the partial indexes on the alert
//! day. Every statement is counted through diesel's instrumentation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{Duration, Utc};
use diesel::connection::{set_default_instrumentation, InstrumentationEvent};
use diesel::RunQueryDsl;
use stockroom::config::Settings;
use stockroom::db::DbConnection;

const ITEMS: i64 = 10_000;
const BATCHES_PER_ITEM: i64 = 10;

static STATEMENTS: AtomicUsize = AtomicUsize::new(0);

fn count_statements(event: InstrumentationEvent<'_>) {
    if matches!(event, InstrumentationEvent::StartQuery { .. }) {
        STATEMENTS.fetch_add(1, Ordering::Relaxed);
    }
}

fn seed_sql(postgres: bool) -> [String; 2] {
    let batches = ITEMS * BATCHES_PER_ITEM;
    let per_item = 10 * BATCHES_PER_ITEM;
    if postgres {
        [
            format!(
                "INSERT INTO items (name, name_key, kind, min_quantity, quantity, version, \
                 created_at, updated_at, expiry_sort) \
                 SELECT 'item ' || i, 'item ' || i, 'perishable', 5, {per_item}, 1, now(), now(), \
                 DATE '9999-12-31' FROM generate_series(1, {ITEMS}) AS i"
            ),
            format!(
                "INSERT INTO batches (item_id, quantity, expiry_date, received_at) \
                 SELECT (SELECT MIN(id) FROM items) + (i % {ITEMS}), 10, \
                 CURRENT_DATE + (((i / {ITEMS}) * 37 + i) % 400 - 30), now() FROM generate_series(1, {batches}) AS i"
            ),
        ]
    } else {
        [
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ITEMS}) \
                 INSERT INTO items (name, name_key, kind, min_quantity, quantity, version, \
                 created_at, updated_at, expiry_sort) \
                 SELECT 'item ' || i, 'item ' || i, 'perishable', 5, {per_item}, 1, \
                 datetime('now'), datetime('now'), '9999-12-31' FROM n"
            ),
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {batches}) \
                 INSERT INTO batches (item_id, quantity, expiry_date, received_at) \
                 SELECT (SELECT MIN(id) FROM items) + (i % {ITEMS}), 10, \
                 date('now', (((i / {ITEMS}) * 37 + i) % 400 - 30) || ' days'), datetime('now') FROM n"
            ),
        ]
    }
}

#[actix_rt::main]
async fn main() {
    stockroom::db::init_drivers();
    set_default_instrumentation(|| Some(Box::new(count_statements))).expect("instrumentation");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("scan.db").display()));
    let postgres = url.starts_with("postgres");
    let env: HashMap<String, String> = [
        ("DATABASE_URL", url.as_str()),
        (
            "STOCKROOM_JWT_SECRET",
            "benchmark-secret-that-is-at-least-32-bytes",
        ),
        ("STOCKROOM_BCRYPT_COST", "4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let settings = Settings::from_source(&env).expect("settings");
    let state = stockroom::router::state(settings).expect("state");
    stockroom::server::migrate(&state)
        .await
        .expect("migrations");
    state
        .db
        .run(|conn| {
            diesel::sql_query("DELETE FROM batches").execute(conn)?;
            diesel::sql_query("DELETE FROM items").execute(conn)?;
            Ok(())
        })
        .await
        .expect("an empty store");
    for who in ["scan-owner", "scan-owner-2"] {
        // Two staff members, so each alert notifies two people.
        let _ = stockroom::bootstrap::create_owner(
            &state,
            who.to_owned(),
            format!("{who}@example.com"),
            "a benchmark password".to_owned(),
        )
        .await;
    }
    let seeded = Instant::now();
    state
        .db
        .transaction(move |conn: &mut DbConnection| {
            for sql in seed_sql(postgres) {
                diesel::sql_query(sql).execute(conn)?;
            }
            Ok(())
        })
        .await
        .expect("seeding");
    println!(
        "{} on {}: {ITEMS} items, {} batches stored in {:.1} s",
        if postgres { "PostgreSQL" } else { "SQLite" },
        std::env::consts::ARCH,
        ITEMS * BATCHES_PER_ITEM,
        seeded.elapsed().as_secs_f64()
    );
    println!("| scan | items checked | holdings checked | SQL statements | time |");
    println!("|---|---:|---:|---:|---:|");
    let today = Utc::now().date_naive();
    for (label, offset) in [
        ("first (everything due)", 0),
        ("again the same day", 0),
        ("next day", 1),
        ("a day later", 2),
        ("a week later", 9),
    ] {
        STATEMENTS.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let scan = stockroom::server::scan_alerts(&state, today + Duration::days(offset))
            .await
            .expect("the scan runs");
        let took = started.elapsed();
        println!(
            "| {label} | {} | {} | {} | {:.1} ms |",
            scan.items,
            scan.holdings,
            STATEMENTS.load(Ordering::Relaxed),
            took.as_secs_f64() * 1e3
        );
    }
}
