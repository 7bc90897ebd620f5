//! The test harness: every test gets its own server on a free port and its own database —
//! a temporary SQLite file, or (with `TEST_DATABASE_URL=postgres://…`) a fresh PostgreSQL
//! database with a unique name, dropped afterwards — and talks to it over real HTTP.

#![allow(dead_code)]

pub mod receiver;
pub mod socket;

use std::collections::HashMap;
use std::net::TcpListener;

use actix_web::http::header::HeaderMap;
use actix_web::http::Method;
use actix_web::web;
use diesel::{Connection, RunQueryDsl};
use serde_json::{json, Value};
use stockroom::config::Settings;
use stockroom::state::AppState;

pub const PASSWORD: &str = "correct horse battery";

enum TestDb {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    fn create() -> (Self, String) {
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) if admin_url.starts_with("postgres") => {
                let name = format!("stockroom_test_{}", uuid_like());
                let mut admin = diesel::PgConnection::establish(&admin_url)
                    .expect("TEST_DATABASE_URL must reach PostgreSQL");
                diesel::sql_query(format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .expect("create test database");
                let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                (Self::Postgres { admin_url, name }, url.to_string())
            }
            _ => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                (Self::Sqlite(dir), url)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres { admin_url, name } = self {
            if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin);
            }
        }
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn is_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"))
}

pub struct TestApp {
    pub base: String,
    pub state: web::Data<AppState>,
    client: awc::Client,
    server: actix_web::dev::ServerHandle,
    pub database_url: String,
    _db: TestDb,
}

#[derive(Default)]
pub struct TestAppBuilder {
    env: HashMap<String, String>,
    database_url: Option<String>,
    skip_migrations: bool,
}

impl TestAppBuilder {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Serve against this database URL instead of a fresh one (and do not migrate it).
    pub fn unreachable_database(mut self) -> Self {
        let url = if is_postgres() {
            "postgres://stockroom@127.0.0.1:1/nowhere".to_owned()
        } else {
            "sqlite:///nonexistent-dir/for/stockroom/test.db".to_owned()
        };
        self.database_url = Some(url);
        self.skip_migrations = true;
        self
    }

    /// A second process on another app's database (as two servers share PostgreSQL).
    pub fn same_database_as(mut self, other: &TestApp) -> Self {
        self.database_url = Some(other.database_url.clone());
        self
    }

    pub async fn spawn(self) -> TestApp {
        stockroom::db::init_drivers();
        let (db, fresh_url) = TestDb::create();
        let database_url = self.database_url.clone().unwrap_or(fresh_url);
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", database_url.as_str()),
            (
                "STOCKROOM_JWT_SECRET",
                "test-secret-that-is-at-least-32-bytes-long",
            ),
            ("STOCKROOM_BCRYPT_COST", "4"),
            ("STOCKROOM_WORKERS", "2"),
            ("STOCKROOM_DB_POOL_SIZE", "8"),
            ("STOCKROOM_SHUTDOWN_TIMEOUT_SECS", "1"),
            // Every test client is 127.0.0.1 and some open 100 connections at once; the
            // per-address cap has its own tests (`limits.rs`), which set it low.
            ("STOCKROOM_MAX_CONNECTIONS_PER_ADDRESS", "10000"),
            // Tests send webhooks by calling `bots::delivery::deliver_due` with the time they
            // mean; the ones that need the background worker turn it on.
            ("STOCKROOM_WEBHOOK_DELIVERY", "false"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.extend(self.env);
        let settings = Settings::from_source(&env).expect("test settings are valid");
        // Server logs go through the test writer, so each test shows only its own.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .try_init();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local addr").port();
        let (server, state) = if self.skip_migrations {
            let state = web::Data::new(stockroom::router::state(settings).expect("state"));
            let app_state = state.clone();
            let server =
                actix_web::HttpServer::new(move || stockroom::router::app(app_state.clone()))
                    .workers(1)
                    .listen(listener)
                    .expect("listen")
                    .run();
            (server, state)
        } else {
            stockroom::server::start(settings, listener)
                .await
                .expect("server starts")
        };
        let handle = server.handle();
        actix_web::rt::spawn(server);
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            state,
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                .disable_redirects()
                .finish(),
            server: handle,
            database_url,
            _db: db,
        }
    }
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts an RFC 9457 problem with this status, and returns its body.
    #[track_caller]
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "body: {}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["status"], status);
        assert!(
            body["title"].is_string() && body["detail"].is_string() && body["type"].is_string()
        );
        body
    }

    #[track_caller]
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text());
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }
}

/// A signed-in person.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: i64,
    pub username: String,
    pub token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::builder().spawn().await
    }

    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn client(&self) -> &awc::Client {
        &self.client
    }

    /// A request builder for anything the helpers below do not cover.
    pub fn request(&self, method: Method, path: &str) -> awc::ClientRequest {
        self.client.request(method, self.url(path))
    }

    pub async fn send(&self, req: awc::ClientRequest, body: Option<&Value>) -> TestResponse {
        let result = match body {
            Some(b) => req.send_json(b).await,
            None => req.send().await,
        };
        collect(result).await
    }

    pub async fn send_bytes(&self, req: awc::ClientRequest, body: Vec<u8>) -> TestResponse {
        collect(req.send_body(body).await).await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> TestResponse {
        let mut req = self.request(method, path);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req, body).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> TestResponse {
        self.call(Method::POST, path, token, Some(&body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> TestResponse {
        self.call(Method::PATCH, path, token, Some(&body)).await
    }

    /// A request with a bot's credentials (`Authorization: Bot <token>`).
    pub async fn as_bot(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> TestResponse {
        let req = self
            .request(method, path)
            .insert_header(("Authorization", format!("Bot {token}")));
        self.send(req, body).await
    }

    /// Stops serving (as a process that ends), leaving the database for another process.
    pub async fn stop_server(&self) {
        self.server.stop(true).await;
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.call(Method::DELETE, path, token, None).await
    }

    /// Every element of a paginated list, following `next_cursor` page by page.
    pub async fn all_pages(&self, path: &str, token: Option<&str>) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let url = match &cursor {
                Some(c) => format!("{path}{sep}cursor={c}"),
                None => path.to_owned(),
            };
            let page = self.get(&url, token).await.ok(200);
            all.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
        panic!("{path}: more than 10,000 pages");
    }

    /// The sum of an item's stock ledger.
    pub async fn ledger_sum(&self, token: &str, item_id: i64) -> i64 {
        self.all_pages(
            &format!("/api/v1/items/{item_id}/movements?limit=200"),
            Some(token),
        )
        .await
        .iter()
        .map(|m| m["delta"].as_i64().expect("delta"))
        .sum()
    }

    pub async fn register(&self, username: &str) -> Value {
        self.post(
            "/api/v1/auth/register",
            None,
            json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD}),
        )
        .await
        .ok(201)
    }

    pub async fn login(&self, login: &str, password: &str) -> TestResponse {
        self.post(
            "/api/v1/auth/login",
            None,
            json!({"login": login, "password": password}),
        )
        .await
    }

    async fn session_for(&self, username: &str) -> Session {
        let body = self.login(username, PASSWORD).await.ok(200);
        Session {
            id: body["user"]["id"].as_i64().expect("user id"),
            username: username.to_owned(),
            token: body["access_token"].as_str().expect("token").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }

    /// A customer signed up through the API and logged in.
    pub async fn customer(&self, username: &str) -> Session {
        self.register(username).await;
        self.session_for(username).await
    }

    /// An owner (created as `stockroom create-owner` does) logged in.
    pub async fn owner(&self, username: &str) -> Session {
        stockroom::bootstrap::create_owner(
            &self.state,
            username.to_owned(),
            format!("{username}@example.com"),
            PASSWORD.to_owned(),
        )
        .await
        .expect("create owner");
        self.session_for(username).await
    }

    /// A worker: signed up, then promoted by a fresh owner.
    pub async fn worker(&self, username: &str) -> Session {
        let owner = self.owner(&format!("{username}-boss")).await;
        let user = self.register(username).await;
        let id = user["id"].as_i64().expect("id");
        self.patch(
            &format!("/api/v1/users/{id}/role"),
            Some(&owner.token),
            json!({"role": "worker"}),
        )
        .await
        .ok(200);
        self.session_for(username).await
    }
}

async fn collect(
    result: Result<
        awc::ClientResponse<
            impl futures::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
        >,
        awc::error::SendRequestError,
    >,
) -> TestResponse {
    let mut res = result.expect("request reaches the server");
    let body = res.body().limit(256 << 20).await.expect("read body");
    TestResponse {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: body.to_vec(),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting and let the database be dropped.
        let handle = self.server.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}
