//! A ready Stockroom bot: it answers `/stock <name or barcode>` in a chat with that item's
//! stock, using only the public API, and accepts only webhooks whose Standard Webhooks
//! signature verifies (with the `standardwebhooks` library, not hand-written HMAC code).
//!
//! Against a local Stockroom, in two terminals:
//!
//! ```sh
//! STOCKROOM_WEBHOOK_ALLOW_PRIVATE=true cargo run --release -- serve --demo
//! cargo run --release --example stock_bot -- --login owner --password stockroom-demo
//! ```
//!
//! On start it signs in as the given owner, creates the bot with its webhook pointing here,
//! and opens a group "Ask stockbot" with it; post `/stock milk` there (or add the bot to any
//! group). Item lookups use the owner's session (bots may only use their chats); replies are
//! posted with the bot's token, with the delivery id as `client_id`, so a redelivered
//! webhook never answers twice.

use std::net::{SocketAddr, TcpListener};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};
use tokio::sync::Mutex;

/// Where the bot runs and whom it signs in as.
#[derive(Debug, Clone, clap::Parser)]
pub struct Config {
    /// The Stockroom server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// An owner's username or email (creates the bot, reads the inventory).
    #[arg(long)]
    pub login: String,
    #[arg(long)]
    pub password: String,
    /// Where the webhook receiver listens.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The URL Stockroom should call, when it is not `http://<listen>/webhook` (a tunnel).
    #[arg(long)]
    pub public_url: Option<String>,
}

/// A started bot.
pub struct StockBot {
    /// The bot as Stockroom returned it (`user_id` is its member id).
    pub bot: Value,
    /// The group opened for it.
    pub chat_id: i64,
    pub server: actix_web::dev::Server,
}

struct Shared {
    http: reqwest::Client,
    api: String,
    login: String,
    password: String,
    bot_token: String,
    verifier: standardwebhooks::Webhook,
    /// The owner's access token, renewed by signing in again when it expires.
    session: Mutex<String>,
}

/// Signs in, creates the bot and its group, and starts the webhook receiver.
pub async fn start(config: Config) -> Result<StockBot, String> {
    let http = reqwest::Client::new();
    let api = config.api.trim_end_matches('/').to_owned();
    let session = sign_in(&http, &api, &config.login, &config.password).await?;
    let listener = TcpListener::bind(config.listen).map_err(|e| format!("listen: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let webhook_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/webhook"));
    let created = call(
        &http,
        reqwest::Method::POST,
        &format!("{api}/api/v1/bots"),
        &format!("Bearer {session}"),
        Some(json!({
            "name": "stockbot",
            "description": "Answers /stock <name or barcode>",
            "webhook_url": webhook_url,
        })),
    )
    .await?;
    let bot = created["bot"].clone();
    let bot_token = created["token"].as_str().unwrap_or_default().to_owned();
    let secret = created["signing_secret"].as_str().unwrap_or_default();
    let verifier = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
    let chat = call(
        &http,
        reqwest::Method::POST,
        &format!("{api}/api/v1/chats"),
        &format!("Bearer {session}"),
        Some(json!({"kind": "group", "title": "Ask stockbot", "member_ids": [bot["user_id"]]})),
    )
    .await?;
    let chat_id = chat["id"].as_i64().ok_or("the chat has no id")?;
    let shared = web::Data::new(Shared {
        http,
        api,
        login: config.login,
        password: config.password,
        bot_token,
        verifier,
        session: Mutex::new(session),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .route("/webhook", web::post().to(webhook))
    })
    .workers(1)
    .listen(listener)
    .map_err(|e| e.to_string())?
    .run();
    Ok(StockBot {
        bot,
        chat_id,
        server,
    })
}

/// One webhook: verified first (401 otherwise), then answered if it is `/stock`.
async fn webhook(req: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    // The library reads `http` 1 headers (reqwest's); actix-web has its own type.
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in req.headers() {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_str().as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    if shared.verifier.verify(&body, &headers).is_err() {
        return HttpResponse::Unauthorized().finish();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return HttpResponse::BadRequest().finish();
    };
    if event["type"] == "command" && event["data"]["command"] == "stock" {
        let delivery = req
            .headers()
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let data = &event["data"];
        let chat_id = data["chat_id"].as_i64().unwrap_or_default();
        let args = data["args"].as_str().unwrap_or_default();
        if let Err(e) = answer(&shared, chat_id, args, &delivery).await {
            // A 5xx makes Stockroom retry later.
            eprintln!("stock_bot: {e}");
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
    HttpResponse::NoContent().finish()
}

async fn answer(shared: &Shared, chat_id: i64, query: &str, delivery: &str) -> Result<(), String> {
    let text = if query.is_empty() {
        "Usage: /stock <name or barcode>".to_owned()
    } else {
        let items = find_items(shared, query).await?;
        if items.is_empty() {
            format!("No item matches \u{201c}{query}\u{201d}.")
        } else {
            items.iter().map(describe).collect::<Vec<_>>().join("\n")
        }
    };
    call(
        &shared.http,
        reqwest::Method::POST,
        &format!("{}/api/v1/chats/{chat_id}/messages", shared.api),
        &format!("Bot {}", shared.bot_token),
        Some(json!({"kind": "text", "body": text, "client_id": format!("stock-{delivery}")})),
    )
    .await
    .map(drop)
}

/// An exact barcode first, then a search in names, SKUs and barcodes.
async fn find_items(shared: &Shared, query: &str) -> Result<Vec<Value>, String> {
    let encoded: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
    for filter in [format!("barcode={encoded}"), format!("q={encoded}")] {
        let path = format!("/api/v1/items?limit=5&{filter}");
        let page = as_owner(shared, &path).await?;
        let items = page["data"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() {
            return Ok(items);
        }
    }
    Ok(Vec::new())
}

fn describe(item: &Value) -> String {
    let unit = item["unit"]
        .as_str()
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    let mut line = format!(
        "{}: {}{unit} available",
        item["name"].as_str().unwrap_or("?"),
        item["available_quantity"]
    );
    if item["expired_quantity"].as_i64().unwrap_or_default() > 0 {
        line.push_str(&format!(" ({} expired)", item["expired_quantity"]));
    }
    if item["low_stock"] == true {
        line.push_str(", low stock");
    }
    line
}

/// GET with the owner's session, signing in again once if it expired.
async fn as_owner(shared: &Shared, path: &str) -> Result<Value, String> {
    let url = format!("{}{path}", shared.api);
    let token = shared.session.lock().await.clone();
    match call(
        &shared.http,
        reqwest::Method::GET,
        &url,
        &format!("Bearer {token}"),
        None,
    )
    .await
    {
        Err(e) if e.starts_with("401") => {
            let fresh = sign_in(&shared.http, &shared.api, &shared.login, &shared.password).await?;
            *shared.session.lock().await = fresh.clone();
            call(
                &shared.http,
                reqwest::Method::GET,
                &url,
                &format!("Bearer {fresh}"),
                None,
            )
            .await
        }
        other => other,
    }
}

async fn sign_in(
    http: &reqwest::Client,
    api: &str,
    login: &str,
    password: &str,
) -> Result<String, String> {
    let body = call(
        http,
        reqwest::Method::POST,
        &format!("{api}/api/v1/auth/login"),
        "",
        Some(json!({"login": login, "password": password})),
    )
    .await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the login answer has no access_token".to_owned())
}

/// One JSON call; an error carries the status first (`"401 …"`).
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    authorization: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = http.request(method, url);
    if !authorization.is_empty() {
        req = req.header("authorization", authorization);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let res = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = res.status();
    let text = res.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{} {url}: {text}", status.as_u16()));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[actix_web::main]
async fn main() -> Result<(), String> {
    let config = <Config as clap::Parser>::parse();
    let listen = config.listen;
    let started = start(config).await?;
    println!(
        "stockbot (user id {}) listens on {listen}; ask in chat {} (\"Ask stockbot\"): /stock milk",
        started.bot["user_id"], started.chat_id
    );
    started.server.await.map_err(|e| e.to_string())
}
