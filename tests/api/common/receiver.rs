//! A webhook receiver on loopback: a real HTTP server that records what it is sent and
//! answers from a script, so tests see exactly what a bot's endpoint would.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

/// How long a test waits for a webhook before it fails: far longer than delivery takes.
const DEADLINE: Duration = Duration::from_secs(20);

/// One answer of the receiver.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// How long the receiver takes to answer (a slow endpoint).
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path and query it was sent to.
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a webhook body is JSON")
    }

    /// The headers as the `http` 1 map that webhook libraries take.
    pub fn header_map(&self) -> reqwest::header::HeaderMap {
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in &self.headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }
}

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    fallback: Reply,
    received: Mutex<Vec<Received>>,
    arrived: tokio::sync::Notify,
}

pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// Answers with `script` in order, then 200 to everything.
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::start_on(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            script,
            Reply::status(200),
        )
    }

    /// Answers `fallback` to everything once `script` is spent, on `listener`.
    pub fn start_on(listener: TcpListener, script: Vec<Reply>, fallback: Reply) -> Self {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            fallback,
            received: Mutex::new(Vec::new()),
            arrived: tokio::sync::Notify::new(),
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            url,
            shared,
            server: handle,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived, and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        tokio::time::timeout(DEADLINE, async {
            loop {
                let arrived = self.shared.arrived.notified();
                let got = self.received();
                if got.len() >= n {
                    return got;
                }
                arrived.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} webhooks did not arrive; got {:?}", self.received()))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let handle = self.server.clone();
        actix_web::rt::spawn(async move { handle.stop(false).await });
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let reply = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| shared.fallback.clone());
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    shared.received.lock().unwrap().push(Received {
        path: req.uri().to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    shared.arrived.notify_waiters();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.status).unwrap());
    for (name, value) in &reply.headers {
        res.insert_header((*name, value.as_str()));
    }
    res.body("receiver says so")
}
