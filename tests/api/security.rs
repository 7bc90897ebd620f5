//! Safe defaults, and the faults found by attacking the running service (issue 9): each
//! test here failed on the code before its fix.

use std::time::Duration;

use actix_web::http::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::{is_postgres, TestApp, TestResponse, PASSWORD};

// ---------------------------------------------------------------------------------------
// Point 6: safe as shipped.

#[actix_web::test]
async fn the_sqlite_database_is_readable_by_its_owner_only() {
    if is_postgres() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    // Write something so that the WAL and its index exist too.
    app.register("ruth").await;
    let path = stockroom::config::sqlite_path(&app.database_url).to_owned();
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
}

// ---------------------------------------------------------------------------------------
// Point 7.1: the failed-login limit.

#[actix_web::test]
async fn concurrent_guesses_are_counted_before_any_is_checked() {
    let app = TestApp::spawn().await;
    app.register("gina").await;
    let guesses = (0..24).map(|n| {
        let app = &app;
        async move { app.login("gina", &format!("guess number {n}")).await }
    });
    let answers = futures::future::join_all(guesses).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    for refused in answers.iter().filter(|r| r.status != 401) {
        refused.problem(429);
        let wait: u64 = refused
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After seconds");
        assert!(wait >= 1);
    }
    // The budget is spent: even the right password waits.
    app.login("gina", PASSWORD).await.problem(429);
}

#[actix_web::test]
async fn username_and_email_share_one_budget_and_successes_keep_it() {
    let app = TestApp::spawn().await;
    app.register("hank").await;
    // Logging in counts as an attempt, and a successful one gives it back.
    for n in 0..7 {
        let login = if n % 2 == 0 {
            "hank"
        } else {
            "Hank@Example.com"
        };
        app.login(login, PASSWORD).await.ok(200);
    }
    for login in [
        "hank",
        "HANK",
        "hank@example.com",
        "Hank@Example.com",
        "hank",
    ] {
        app.login(login, "wrong password").await.problem(401);
    }
    app.login("hank@example.com", PASSWORD).await.problem(429);
    app.login("hank", PASSWORD).await.problem(429);
}

#[actix_web::test]
async fn hammering_one_account_does_not_lock_out_its_neighbours() {
    let app = TestApp::builder()
        .env("STOCKROOM_LOGIN_FAILURES_PER_ADDRESS", "10")
        .spawn()
        .await;
    app.register("ivan").await;
    app.register("jill").await;
    // 5 guesses are checked; the next 15 are refused for the account and must not spend
    // the address's budget of 10.
    for n in 0..20 {
        let res = app.login("ivan", "wrong password").await;
        assert_eq!(res.status, if n < 5 { 401 } else { 429 }, "attempt {n}");
    }
    app.login("jill", PASSWORD).await.ok(200);
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1, for what a client library hides: connections held open, bodies that never
// finish, the server closing the connection.

/// How long a raw-socket test waits for the server before it counts as no answer. Generous:
/// every answer expected here comes within about a second.
const NO_ANSWER: Duration = Duration::from_secs(20);

/// One response read off a raw connection.
struct RawResponse {
    status: u16,
    head: String,
    body: String,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}\r\n\r\n{}", self.head, self.body);
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let body: Value = serde_json::from_str(&self.body).expect("a JSON problem");
        assert_eq!(body["status"], status);
        body
    }
}

fn address_of(app: &TestApp) -> std::net::SocketAddr {
    app.base
        .trim_start_matches("http://")
        .parse()
        .expect("the test server's address")
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(address_of(app)).await.expect("connect")
}

/// A connection from another loopback address (Linux routes all of 127/8 to `lo`), which
/// the server counts as another client.
async fn connect_from(app: &TestApp, local: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{local}:0").parse().expect("address"))
        .expect("bind a second loopback address");
    socket.connect(address_of(app)).await.expect("connect")
}

/// Reads one response (head and a `Content-Length` body); `None` when the connection ends
/// first or nothing arrives within `NO_ANSWER`.
/// Appends what the server sends next; `None` when it closed the connection or said nothing
/// in time.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(NO_ANSWER, stream.read(&mut chunk))
        .await
        .ok()?
        .ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

async fn read_response(stream: &mut TcpStream) -> Option<RawResponse> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        read_more(stream, &mut buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut response = RawResponse {
        status,
        head,
        body: String::new(),
    };
    let length: usize = response
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        read_more(stream, &mut body).await?;
    }
    response.body = String::from_utf8_lossy(&body).into_owned();
    Some(response)
}

async fn get_on(stream: &mut TcpStream, path: &str) -> Option<RawResponse> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: stockroom\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    read_response(stream).await
}

/// Whether the server closed the connection (end of stream or reset) within `NO_ANSWER`.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(NO_ANSWER, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

// ---------------------------------------------------------------------------------------
// Point 7.2: slow bodies, slow headers, and many connections.

#[actix_web::test]
async fn a_body_slower_than_its_deadline_is_answered_408_while_still_open() {
    let app = TestApp::builder()
        .env("STOCKROOM_BODY_TIMEOUT_SECS", "1")
        .spawn()
        .await;
    let mut stream = connect(&app).await;
    // Headers promise 64 bytes; the client sends a few and then holds the connection open.
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: stockroom\r\n\
              Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"login\":\"",
        )
        .await
        .expect("write");
    let answer = read_response(&mut stream)
        .await
        .expect("the server answers before the body is complete");
    answer.problem(408);
    assert_eq!(answer.header("connection").as_deref(), Some("close"));
    assert!(closed_by_server(&mut stream).await);
    // Bodies that arrive in time are served as ever.
    app.register("iris").await;
    app.login("iris", PASSWORD).await.ok(200);
}

#[actix_web::test]
async fn headers_slower_than_their_deadline_are_cut_off() {
    let app = TestApp::builder()
        .env("STOCKROOM_HEADER_TIMEOUT_SECS", "1")
        .spawn()
        .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: stockroom\r\nX-Slow: ")
        .await
        .expect("write");
    let answer = read_response(&mut stream).await.expect("an answer");
    assert_eq!(answer.status, 408, "{}", answer.head);
    assert!(closed_by_server(&mut stream).await);
}

#[actix_web::test]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let app = TestApp::builder()
        .env("STOCKROOM_MAX_CONNECTIONS_PER_ADDRESS", "3")
        .spawn()
        .await;
    // Three connections, each proven counted by an answer, kept open (keep-alive).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(&app).await;
        let ok = get_on(&mut stream, "/healthz").await.expect("an answer");
        assert_eq!(ok.status, 200);
        held.push(stream);
    }
    // A fourth from the same address is refused and closed.
    let mut extra = connect(&app).await;
    let refused = get_on(&mut extra, "/healthz").await.expect("an answer");
    refused.problem(429);
    assert!(refused
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().is_ok()));
    assert_eq!(refused.header("connection").as_deref(), Some("close"));
    assert!(closed_by_server(&mut extra).await);
    // Another client is served meanwhile, and the held connections still work.
    let mut neighbour = connect_from(&app, "127.0.0.2").await;
    assert_eq!(
        get_on(&mut neighbour, "/healthz").await.map(|r| r.status),
        Some(200)
    );
    for stream in &mut held {
        assert_eq!(
            get_on(stream, "/healthz").await.map(|r| r.status),
            Some(200)
        );
    }
    // Closing one frees its slot (as soon as the server has seen the close: each refused
    // attempt closes again, so this converges without waiting on a clock).
    drop(held.pop());
    let mut served = false;
    for _ in 0..200 {
        let mut stream = connect(&app).await;
        if get_on(&mut stream, "/healthz").await.map(|r| r.status) == Some(200) {
            served = true;
            break;
        }
    }
    assert!(served, "a closed connection's slot was never freed");
}

// ---------------------------------------------------------------------------------------
// Point 7.3: CSV export never hands a spreadsheet a formula.

#[actix_web::test]
async fn csv_export_neutralises_formulas_and_import_restores_them() {
    let source = TestApp::spawn().await;
    let w = source.worker("wade").await;
    let formula = r#"=HYPERLINK("http://x","y")"#;
    source
        .post(
            "/api/v1/items",
            Some(&w.token),
            json!({"name": formula, "kind": "non_perishable", "sku": "-7", "unit": "@box",
                   "description": "+1 dozen", "min_quantity": 2, "quantity": 5}),
        )
        .await
        .ok(201);
    let export = source.get("/api/v1/items/export.csv", Some(&w.token)).await;
    assert_eq!(export.status, 200);
    let mut reader = csv::Reader::from_reader(export.body.as_slice());
    let headers = reader.headers().expect("header").clone();
    let row = reader
        .records()
        .next()
        .expect("one row")
        .expect("a readable row");
    let cell = |name: &str| {
        let i = headers.iter().position(|h| h == name).expect(name);
        row.get(i).expect(name).to_owned()
    };
    assert_eq!(cell("name"), format!("'{formula}"));
    assert_eq!(cell("sku"), "'-7");
    assert_eq!(cell("unit"), "'@box");
    assert_eq!(cell("description"), "'+1 dozen");
    // Numbers stay plain numbers.
    assert_eq!(cell("min_quantity"), "2");
    assert_eq!(cell("quantity"), "5");

    let target = TestApp::spawn().await;
    let tw = target.worker("tess").await;
    let import = target
        .request(Method::POST, "/api/v1/items/import")
        .bearer_auth(&tw.token)
        .content_type("text/csv");
    target.send_bytes(import, export.body.clone()).await.ok(200);
    let items = target.all_pages("/api/v1/items", Some(&tw.token)).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], formula);
    assert_eq!(items[0]["sku"], "-7");
    assert_eq!(items[0]["unit"], "@box");
    assert_eq!(items[0]["description"], "+1 dozen");
    assert_eq!(items[0]["quantity"], 5);
}

// ---------------------------------------------------------------------------------------
// Point 7.4: a customer's holding only goes down through their own hands.

#[actix_web::test]
async fn a_customer_cannot_raise_their_own_holding() {
    let app = TestApp::spawn().await;
    let w = app.worker("will").await;
    let c = app.customer("cara").await;
    let item = app
        .post(
            "/api/v1/items",
            Some(&w.token),
            json!({"name": "Rice", "kind": "non_perishable", "quantity": 10}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .expect("id");
    let request = app
        .post(
            "/api/v1/replenishment-requests",
            Some(&c.token),
            json!({"item_id": item, "quantity": 3}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .expect("id");
    app.post(
        &format!("/api/v1/replenishment-requests/{request}/fulfil"),
        Some(&w.token),
        json!({}),
    )
    .await
    .ok(200);
    let mine = app
        .get("/api/v1/me/inventory", Some(&c.token))
        .await
        .ok(200);
    let id = mine["data"][0]["id"].as_i64().expect("holding id");
    let path = format!("/api/v1/me/inventory/{id}");

    let raised = app
        .patch(
            &path,
            Some(&c.token),
            json!({"quantity": 1_000_000, "min_quantity": 1}),
        )
        .await
        .problem(422);
    assert!(raised["errors"]["quantity"].is_array(), "{raised}");
    let unchanged = app
        .get("/api/v1/me/inventory", Some(&c.token))
        .await
        .ok(200);
    assert_eq!(unchanged["data"][0]["quantity"], 3);
    assert_eq!(unchanged["data"][0]["min_quantity"], 0);

    let same = app
        .patch(&path, Some(&c.token), json!({"quantity": 3}))
        .await
        .ok(200);
    assert_eq!(same["quantity"], 3);
    let consumed = app
        .patch(&path, Some(&c.token), json!({"quantity": 1}))
        .await
        .ok(200);
    assert_eq!(consumed["quantity"], 1);
    app.patch(&path, Some(&c.token), json!({"quantity": 2}))
        .await
        .problem(422);
    let level = app
        .patch(&path, Some(&c.token), json!({"min_quantity": 5}))
        .await
        .ok(200);
    assert_eq!(
        (level["quantity"].as_i64(), level["min_quantity"].as_i64()),
        (Some(1), Some(5))
    );
}

// ---------------------------------------------------------------------------------------
// Point 7.5: failed sign-ups count too.

#[actix_web::test]
async fn every_sign_up_attempt_counts_toward_the_address_limit() {
    let app = TestApp::builder()
        .env("STOCKROOM_REGISTRATIONS_PER_ADDRESS", "4")
        .spawn()
        .await;
    app.register("jade").await;
    let taken_email =
        json!({"username": "jade2", "email": "jade@example.com", "password": PASSWORD});
    app.post("/api/v1/auth/register", None, taken_email)
        .await
        .problem(409);
    let taken_name = json!({"username": "jade", "password": PASSWORD});
    app.post("/register", None, taken_name).await.problem(409);
    app.post(
        "/register",
        None,
        json!({"username": "kurt", "password": PASSWORD}),
    )
    .await
    .ok(201);
    let limited = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "lena", "email": "lena@example.com", "password": PASSWORD}),
        )
        .await;
    limited.problem(429);
    assert!(limited.header("retry-after").is_some());
    app.post(
        "/register",
        None,
        json!({"username": "lena", "password": PASSWORD}),
    )
    .await
    .problem(429);
}

// ---------------------------------------------------------------------------------------
// Point 7.6: duplicates name the field, never the database's constraint.

fn assert_taken(res: &TestResponse, field: &str) {
    let problem = res.problem(409);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(field) && !detail.contains("_key") && !detail.contains("UNIQUE"),
        "{problem}"
    );
    assert!(problem["errors"][field].is_array(), "{problem}");
}

#[actix_web::test]
async fn a_duplicate_names_the_field_that_is_taken() {
    let app = TestApp::spawn().await;
    let w = app.worker("xena").await;
    let item =
        json!({"name": "Tea", "kind": "non_perishable", "sku": "ABC", "barcode": "4006381333931"});
    app.post("/api/v1/items", Some(&w.token), item.clone())
        .await
        .ok(201);
    let again = app.post("/api/v1/items", Some(&w.token), item).await;
    assert_taken(&again, "sku");
    let barcode = json!({"name": "Tea 2", "kind": "non_perishable", "barcode": "4006381333931"});
    assert_taken(
        &app.post("/api/v1/items", Some(&w.token), barcode).await,
        "barcode",
    );

    app.register("yuri").await;
    let name = json!({"username": "YURI", "email": "other@example.com", "password": PASSWORD});
    assert_taken(
        &app.post("/api/v1/auth/register", None, name).await,
        "username",
    );
    let email = json!({"username": "yuri2", "email": "Yuri@Example.com", "password": PASSWORD});
    assert_taken(
        &app.post("/api/v1/auth/register", None, email).await,
        "email",
    );
}

#[actix_web::test]
async fn concurrent_duplicates_lose_with_the_same_answer() {
    let app = TestApp::spawn().await;
    // Sign-ups check for a duplicate, hash the password, then insert: racing ones pass the
    // check together and the unique index decides, on either backend.
    let sign_ups = (0..12).map(|n| {
        let app = &app;
        let body = json!({"username": "zoe", "email": format!("zoe{n}@example.com"), "password": PASSWORD});
        async move { app.post("/api/v1/auth/register", None, body).await }
    });
    let answers = futures::future::join_all(sign_ups).await;
    assert_eq!(answers.iter().filter(|r| r.status == 201).count(), 1);
    for lost in answers.iter().filter(|r| r.status != 201) {
        assert_taken(lost, "username");
    }
    if !is_postgres() {
        // Concurrent item writes on SQLite are the subject of issue 9 point 1.
        return;
    }
    let w = app.worker("zack").await;
    let creates = (0..12).map(|n| {
        let (app, token) = (&app, &w.token);
        let body = json!({"name": format!("Jam {n}"), "kind": "non_perishable", "sku": "JAM"});
        async move { app.post("/api/v1/items", Some(token), body).await }
    });
    let answers = futures::future::join_all(creates).await;
    assert_eq!(answers.iter().filter(|r| r.status == 201).count(), 1);
    for lost in answers.iter().filter(|r| r.status != 201) {
        assert_taken(lost, "sku");
    }
}
