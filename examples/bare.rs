//! The benchmarks' reference (not a test): a bare actix-web 4 server with one handler,
//! `GET /items/{id}`, answering a JSON object about the size of an inventory item (no
//! database, no authentication, no middleware). `scripts/bench` measures it with the same
//! `wrk` settings as Stockroom's `GET /api/v1/items/{id}`, so every figure can also be read
//! as a share of what the framework itself does on the machine.
//!
//! ```sh
//! cargo run --release --example bare -- 127.0.0.1:8090 [workers]
//! ```
//!
//! Workers default to the number of cores, as Stockroom's do.

use actix_web::{get, web, App, HttpResponse, HttpServer};

/// The fields of an item as Stockroom answers them (batches left out).
#[derive(serde::Serialize)]
struct Item {
    id: i64,
    name: String,
    kind: &'static str,
    size: Option<&'static str>,
    unit: Option<&'static str>,
    sku: String,
    barcode: Option<&'static str>,
    description: Option<&'static str>,
    min_quantity: i64,
    target_quantity: Option<i64>,
    expiry_warning_days: Option<i64>,
    photo_file_id: Option<i64>,
    quantity: i64,
    available_quantity: i64,
    expired_quantity: i64,
    expiring_quantity: i64,
    expiry_date: Option<&'static str>,
    low_stock: bool,
    version: i64,
    created_at: &'static str,
    updated_at: &'static str,
}

#[get("/items/{id}")]
async fn item(id: web::Path<i64>) -> HttpResponse {
    let id = id.into_inner();
    let quantity = id % 50;
    HttpResponse::Ok().json(Item {
        id,
        name: format!("Bench item {id:07}"),
        kind: "non_perishable",
        size: Some("1"),
        unit: Some("pcs"),
        sku: format!("BENCH-{id:07}"),
        barcode: None,
        description: None,
        min_quantity: id % 10,
        target_quantity: Some(20 + id % 10),
        expiry_warning_days: None,
        photo_file_id: None,
        quantity,
        available_quantity: quantity,
        expired_quantity: 0,
        expiring_quantity: 0,
        expiry_date: None,
        low_stock: quantity <= id % 10,
        version: 1,
        created_at: "2026-12-03T10:00:00Z",
        updated_at: "2026-12-03T10:00:00Z",
    })
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let workers = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|e| std::io::Error::other(format!("workers {n:?}: {e}")))?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    println!("bare reference on {bind}, {workers} workers");
    HttpServer::new(|| App::new().service(item))
        .workers(workers)
        .bind(bind)?
        .run()
        .await
}
