//! The in-process burst guards (`stockroom::throttle`): chat messages (HTTP and the socket
//! together), uploads (both routes together, and how many at once) and socket connects (per
//! user and per address). Each app sets small budgets through the environment; the ones that
//! must stay refused for the whole test refill slowly (one a minute or so), so no test
//! depends on how fast it runs.

use std::time::Duration;

use actix_web::http::Method;
use futures::SinkExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::chat::{direct, id};
use crate::common::socket::Ws;
use crate::common::{Session, TestApp, TestResponse};
use crate::files::{multipart, upload, upload_to};

const PNG_SIDE: u32 = 4;

fn png() -> Vec<u8> {
    crate::files::image_bytes(PNG_SIDE, PNG_SIDE, image::ImageFormat::Png)
}

/// A 429 problem with a whole number of seconds in `Retry-After`; returns them.
#[track_caller]
fn refused(res: &TestResponse) -> u64 {
    res.problem(429);
    let wait: u64 = res
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After seconds: {:?}", res.header("retry-after")));
    assert!(wait >= 1, "Retry-After {wait}");
    wait
}

async fn send_message(app: &TestApp, who: &Session, chat: i64, body: &str) -> TestResponse {
    app.post(
        &format!("/api/v1/chats/{chat}/messages"),
        Some(&who.token),
        json!({"kind": "text", "body": body}),
    )
    .await
}

/// Polls `attempt` until it answers `status`, for at most `deadline`; returns that answer.
async fn eventually<F, Fut>(deadline: Duration, status: u16, mut attempt: F) -> TestResponse
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = TestResponse>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let res = attempt().await;
        if res.status == status || tokio::time::Instant::now() >= until {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every field of `frame` is a property of the served document's schema `name`, of the type
/// it says: clients generate their frame types from it, so an undocumented field (like a
/// socket error's `retry_after` once was) is one they never read.
async fn assert_documented(app: &TestApp, name: &str, frame: &serde_json::Value) {
    let doc = app.get("/openapi.json", None).await.ok(200);
    let schema = &doc["components"]["schemas"][name];
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    for (field, value) in frame.as_object().expect("a JSON object frame") {
        let property = &schema["properties"][field];
        assert!(
            property.is_object(),
            "{name} does not document `{field}`: {schema}"
        );
        let kind = match value {
            serde_json::Value::Null => "null",
            serde_json::Value::Bool(_) => "boolean",
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            serde_json::Value::Number(_) => "number",
            serde_json::Value::String(_) => "string",
            serde_json::Value::Array(_) => "array",
            serde_json::Value::Object(_) => "object",
        };
        let types = match &property["type"] {
            serde_json::Value::Array(types) => types.clone(),
            one => vec![one.clone()],
        };
        assert!(
            types.iter().any(|t| t == kind),
            "{name}.{field} is documented as {property}, sent as {value}"
        );
    }
    for field in required {
        let field = field.as_str().expect("a field name");
        assert!(
            frame.get(field).is_some(),
            "{name} requires `{field}`, missing from {frame}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// (a) Chat messages: one budget per user for HTTP and the socket.

#[actix_rt::test]
async fn messages_past_the_budget_are_refused_over_http_and_the_socket_alike() {
    // Three at once, then one a minute: the fourth within the test is refused whatever its
    // pace.
    let app = TestApp::builder()
        .env("STOCKROOM_MESSAGES_PER_MINUTE", "1")
        .env("STOCKROOM_MESSAGE_BURST", "3")
        .spawn()
        .await;
    let worker = app.worker("wes").await;
    let customer = app.customer("cal").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    for n in 0..3 {
        send_message(&app, &customer, chat, &format!("hello {n}"))
            .await
            .ok(201);
    }
    let over = send_message(&app, &customer, chat, "one too many").await;
    let wait = refused(&over);
    assert!(
        wait <= 60,
        "one message a minute refills within 60 s, not {wait}"
    );
    assert!(
        over.json()["detail"]
            .as_str()
            .is_some_and(|d| d.contains("messages")),
        "{}",
        over.text()
    );
    // Nothing was stored for it.
    let history = app
        .get(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&customer.token),
        )
        .await
        .ok(200);
    assert_eq!(history["data"].as_array().map(Vec::len), Some(3));

    // The other member's budget is their own.
    send_message(&app, &worker, chat, "answer").await.ok(201);

    // The socket's `message.send` draws on the same budget: refused with an `error` frame
    // that says when to retry, and the socket stays open.
    let mut ws = app.socket(&customer.token, None).await;
    ws.send(json!({"type": "message.send", "chat_id": chat, "body": "again", "client_id": "c-1"}))
        .await;
    let frame = ws.next().await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["status"], 429, "{frame}");
    assert_eq!(frame["client_id"], "c-1", "{frame}");
    let hint = frame["retry_after"].as_u64().expect("retry_after seconds");
    assert!((1..=60).contains(&hint), "{frame}");
    ws.nothing_pending().await;
    assert_documented(&app, "ErrorFrame", &frame).await;

    // And the other way round: sends over the socket spend what HTTP may send.
    let mut staff = app.socket(&worker.token, None).await;
    for n in 0..2 {
        let client_id = format!("w-{n}");
        staff
            .send(json!({"type": "message.send", "chat_id": chat, "body": "via socket", "client_id": client_id}))
            .await;
        let created = staff.event("message.created").await;
        assert_eq!(created["data"]["client_id"], client_id, "{created}");
    }
    refused(&send_message(&app, &worker, chat, "via http").await);
    staff.nothing_pending().await;
}

#[actix_rt::test]
async fn a_bot_has_a_message_budget_of_its_own() {
    let app = TestApp::builder()
        .env("STOCKROOM_MESSAGES_PER_MINUTE", "1")
        .env("STOCKROOM_MESSAGE_BURST", "1")
        .spawn()
        .await;
    let owner = app.owner("ola").await;
    let created = app
        .post(
            "/api/v1/bots",
            Some(&owner.token),
            json!({"name": "counter"}),
        )
        .await
        .ok(201);
    let bot_user = created["bot"]["user_id"]
        .as_i64()
        .expect("the bot's user id");
    let token = created["token"]
        .as_str()
        .expect("the bot's token")
        .to_owned();
    let group = app
        .post(
            "/api/v1/chats",
            Some(&owner.token),
            json!({"kind": "group", "title": "Stock", "member_ids": [bot_user]}),
        )
        .await
        .ok(201);
    let chat = id(&group);
    let path = format!("/api/v1/chats/{chat}/messages");
    send_message(&app, &owner, chat, "mine").await.ok(201);
    refused(&send_message(&app, &owner, chat, "mine again").await);
    // The owner created the bot, yet the bot sends on a budget of its own.
    let body = json!({"kind": "text", "body": "beep"});
    app.as_bot(Method::POST, &path, &token, Some(&body))
        .await
        .ok(201);
    refused(&app.as_bot(Method::POST, &path, &token, Some(&body)).await);
}

#[actix_rt::test]
async fn a_refilled_message_budget_sends_again() {
    // One at once, one a second: a send right after the first is refused (unless the machine
    // took a whole second for it, in which case the loop sends until one is), and the next
    // one passes within about a second.
    let app = TestApp::builder()
        .env("STOCKROOM_MESSAGES_PER_MINUTE", "60")
        .env("STOCKROOM_MESSAGE_BURST", "1")
        .spawn()
        .await;
    let worker = app.worker("rae").await;
    let customer = app.customer("rob").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    let mut over = None;
    for n in 0..20 {
        let res = send_message(&app, &customer, chat, &format!("quick {n}")).await;
        if res.status == 429 {
            over = Some(res);
            break;
        }
        res.ok(201);
    }
    let over = over.expect("a send right after another is refused");
    assert_eq!(refused(&over), 1, "one a second refills within a second");
    let again = eventually(Duration::from_secs(10), 201, || {
        send_message(&app, &customer, chat, "after the wait")
    })
    .await;
    again.ok(201);
}

// ---------------------------------------------------------------------------------------
// (b) Uploads: one budget for both routes, and at most so many at once.

#[actix_rt::test]
async fn uploads_past_the_budget_are_refused_on_both_routes() {
    // Two at once, then one every 30 s.
    let app = TestApp::builder()
        .env("STOCKROOM_UPLOADS_PER_MINUTE", "2")
        .spawn()
        .await;
    let first = app.customer("una").await;
    let second = app.customer("uma").await;
    let image = png();
    let parts: &[(&str, &str, &[u8])] = &[("files", "a.png", &image)];
    upload(&app, &first, parts).await.ok(201);
    upload_to(&app, "/api/user/upload-files", &first, parts)
        .await
        .ok(200);
    for path in ["/api/v1/files", "/api/user/upload-files"] {
        let over = upload_to(&app, path, &first, parts).await;
        let wait = refused(&over);
        assert!(
            wait <= 30,
            "{path}: two a minute refill within 30 s, not {wait}"
        );
    }
    // Another user uploads as before.
    upload(&app, &second, parts).await.ok(201);
}

/// An upload held open over a plain TCP connection: its head and the first half of its body
/// are sent now, the rest when `release` is called (an HTTP client library would buffer
/// them until the body ends).
struct HeldUpload {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl HeldUpload {
    async fn start(app: &TestApp, who: &Session) -> Self {
        let image = png();
        let (content_type, body) = multipart(&[("files", "held.png", &image)]);
        let host = app.base.trim_start_matches("http://").to_owned();
        let mut stream = TcpStream::connect(&host).await.expect("connect");
        let head = format!(
            "POST /api/v1/files HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            who.token,
            body.len()
        );
        let half = body.len() / 2;
        stream
            .write_all(head.as_bytes())
            .await
            .expect("send the head");
        stream.write_all(&body[..half]).await.expect("send half");
        Self {
            stream,
            rest: body[half..].to_vec(),
        }
    }

    /// Sends the rest of the body; returns the answer's status.
    async fn release(mut self) -> u16 {
        self.stream
            .write_all(&self.rest)
            .await
            .expect("send the rest");
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut buf))
                .await
                .expect("answered in time")
                .expect("read the answer");
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
        let status_line = String::from_utf8_lossy(&answer);
        status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("a status line: {status_line}"))
    }
}

#[actix_rt::test]
async fn a_third_upload_at_once_is_refused_at_once() {
    let app = TestApp::builder()
        .env("STOCKROOM_CONCURRENT_UPLOADS_PER_USER", "2")
        .spawn()
        .await;
    let busy = app.customer("bea").await;
    let other = app.customer("ben").await;
    // Two uploads whose bodies have not ended: the server holds both, waiting.
    let held = [
        HeldUpload::start(&app, &busy).await,
        HeldUpload::start(&app, &busy).await,
    ];
    let in_flight = &app.state.throttles.uploads_in_flight;
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while in_flight.held(&busy.id) < 2 {
        assert!(
            tokio::time::Instant::now() < until,
            "the two uploads never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let image = png();
    let parts: &[(&str, &str, &[u8])] = &[("files", "third.png", &image)];
    for path in ["/api/v1/files", "/api/user/upload-files"] {
        let third = upload_to(&app, path, &busy, parts).await;
        refused(&third);
        assert!(third.text().contains("in flight"), "{}", third.text());
    }
    // Someone else's uploads are not held up.
    upload(&app, &other, parts).await.ok(201);
    // The held ones finish normally once their bodies end, and free their places.
    for upload in held {
        assert_eq!(upload.release().await, 201);
    }
    assert_eq!(in_flight.held(&busy.id), 0);
    upload(&app, &busy, parts).await.ok(201);
}

// ---------------------------------------------------------------------------------------
// (c) Socket connects: per user, and per client address.

/// A WebSocket upgrade request on `path` that the server refuses before the upgrade; returns
/// its answer (whose headers and body a WebSocket client does not show).
async fn refused_upgrade(app: &TestApp, path: &str, token: &str) -> TestResponse {
    let req = app
        .request(Method::GET, path)
        .bearer_auth(token)
        .insert_header(("Upgrade", "websocket"))
        .insert_header(("Connection", "Upgrade"))
        .insert_header(("Sec-WebSocket-Version", "13"))
        .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="));
    app.send(req, None).await
}

async fn open(app: &TestApp, path: &str, token: &str) -> Ws {
    app.try_socket(path, Some(token))
        .await
        .unwrap_or_else(|status| panic!("{path} refused with {status}"))
}

#[actix_rt::test]
async fn connects_past_the_budget_of_a_user_are_refused_before_the_upgrade() {
    // Two at once, then one every 30 s; the address's budget stays out of the way.
    let app = TestApp::builder()
        .env("STOCKROOM_WS_CONNECTS_PER_MINUTE", "2")
        .env("STOCKROOM_WS_CONNECTS_PER_ADDRESS_PER_MINUTE", "1000")
        .spawn()
        .await;
    let customer = app.customer("cora").await;
    let worker = app.worker("walt").await;
    // The event socket and the camera socket share the budget.
    let chat = open(&app, "/api/ws/chat", &customer.token).await;
    let camera = open(&app, "/api/ws/video", &customer.token).await;
    for path in ["/api/ws/chat", "/api/ws/video"] {
        assert_eq!(
            app.try_socket(path, Some(&customer.token)).await.err(),
            Some(429),
            "{path}"
        );
        let over = refused_upgrade(&app, path, &customer.token).await;
        let wait = refused(&over);
        assert!(
            wait <= 30,
            "{path}: two a minute refill within 30 s, not {wait}"
        );
        assert!(over.text().contains("connects"), "{}", over.text());
    }
    // Closing sockets gives no connects back: this is a rate, not the cap on open sockets.
    chat.close().await;
    camera.close().await;
    assert_eq!(
        app.try_socket("/api/ws/chat", Some(&customer.token))
            .await
            .err(),
        Some(429)
    );
    // Another user from the same address connects as before.
    open(&app, "/api/ws/chat", &worker.token)
        .await
        .close()
        .await;
    open(&app, "/api/ws/video", &worker.token)
        .await
        .close()
        .await;
}

/// Opens `path` from another loopback address (the whole of 127.0.0.0/8 reaches the server)
/// and closes it again; returns the status that refused it, if one did.
async fn connect_from(
    app: &TestApp,
    local: std::net::IpAddr,
    path: &str,
    token: &str,
) -> Result<(), u16> {
    connect_forwarded(app, local, None, path, token).await
}

/// `connect_from`, with an `X-Forwarded-For` header if `forwarded` names one.
async fn connect_forwarded(
    app: &TestApp,
    local: std::net::IpAddr,
    forwarded: Option<&str>,
    path: &str,
    token: &str,
) -> Result<(), u16> {
    let client = awc::Client::builder().local_address(local).finish();
    let mut req = client.ws(app.url(path)).bearer_auth(token);
    if let Some(forwarded) = forwarded {
        req = req.set_header("X-Forwarded-For", forwarded);
    }
    match req.connect().await {
        Ok((_, mut framed)) => {
            let _ = framed.send(awc::ws::Message::Close(None)).await;
            Ok(())
        }
        Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
        Err(e) => panic!("socket handshake failed: {e}"),
    }
}

#[actix_rt::test]
async fn connects_past_the_budget_of_an_address_are_refused_for_all_its_users() {
    let app = TestApp::builder()
        .env("STOCKROOM_WS_CONNECTS_PER_MINUTE", "1000")
        .env("STOCKROOM_WS_CONNECTS_PER_ADDRESS_PER_MINUTE", "2")
        .spawn()
        .await;
    let ann = app.customer("ann").await;
    let bob = app.customer("bob").await;
    open(&app, "/api/ws/chat", &ann.token).await.close().await;
    open(&app, "/api/ws/video", &ann.token).await.close().await;
    // Bob has connected nowhere, but his address has spent its budget.
    let over = refused_upgrade(&app, "/api/ws/chat", &bob.token).await;
    let wait = refused(&over);
    assert!(wait <= 30, "two a minute refill within 30 s, not {wait}");
    assert!(over.text().contains("address"), "{}", over.text());
    assert_eq!(
        app.try_socket("/api/ws/video", Some(&bob.token))
            .await
            .err(),
        Some(429)
    );
    // From another address, Bob (and Ann) connect as before.
    let elsewhere: std::net::IpAddr = "127.0.0.2".parse().expect("an address");
    for who in [&bob, &ann] {
        assert_eq!(
            connect_from(&app, elsewhere, "/api/ws/chat", &who.token).await,
            Ok(()),
            "from 127.0.0.2"
        );
    }
    assert_eq!(
        connect_from(&app, elsewhere, "/api/ws/chat", &bob.token)
            .await
            .err(),
        Some(429),
        "the other address has a budget of its own, now spent too"
    );
}

#[actix_rt::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_connect_budget() {
    // 127.0.0.1 is the proxy; 127.0.0.2 is a client that reaches the server directly.
    let app = TestApp::builder()
        .env("STOCKROOM_WS_CONNECTS_PER_MINUTE", "1000")
        .env("STOCKROOM_WS_CONNECTS_PER_ADDRESS_PER_MINUTE", "2")
        .env("STOCKROOM_TRUSTED_PROXIES", "127.0.0.1")
        .spawn()
        .await;
    let ann = app.customer("ann").await;
    let bob = app.customer("bob").await;
    let proxy: std::net::IpAddr = "127.0.0.1".parse().expect("an address");
    let direct: std::net::IpAddr = "127.0.0.2".parse().expect("an address");
    let via_proxy = |forwarded: &'static str, who: &'static str| {
        let token = if who == "ann" { &ann.token } else { &bob.token };
        connect_forwarded(&app, proxy, Some(forwarded), "/api/ws/chat", token)
    };
    // Ann's client spends its budget through the proxy...
    assert_eq!(via_proxy("203.0.113.1", "ann").await, Ok(()));
    assert_eq!(via_proxy("203.0.113.1", "ann").await, Ok(()));
    assert_eq!(
        via_proxy("203.0.113.1", "bob").await,
        Err(429),
        "a third connect from 203.0.113.1, whoever's"
    );
    // ...and Bob's, behind the same proxy, has a budget of its own (before, every client
    // of a proxy shared the proxy's one budget).
    assert_eq!(via_proxy("203.0.113.2", "bob").await, Ok(()));
    assert_eq!(via_proxy("203.0.113.2", "bob").await, Ok(()));
    assert_eq!(via_proxy("203.0.113.2", "bob").await, Err(429));

    // A client that is no proxy gets nothing from naming other addresses: its header is its
    // own word, and all its connects count against its own address.
    for forwarded in ["198.51.100.1", "198.51.100.2"] {
        assert_eq!(
            connect_forwarded(&app, direct, Some(forwarded), "/api/ws/chat", &ann.token).await,
            Ok(())
        );
    }
    assert_eq!(
        connect_forwarded(
            &app,
            direct,
            Some("198.51.100.3"),
            "/api/ws/chat",
            &ann.token
        )
        .await,
        Err(429),
        "a forged X-Forwarded-For gave an untrusted client a fresh budget"
    );
}

#[actix_rt::test]
async fn the_memory_of_idle_clients_is_swept() {
    let app = TestApp::builder()
        .env("STOCKROOM_MESSAGES_PER_MINUTE", "600000")
        .env("STOCKROOM_MESSAGE_BURST", "1")
        .spawn()
        .await;
    let worker = app.worker("sam").await;
    let customer = app.customer("sue").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    for who in [&worker, &customer] {
        send_message(&app, who, chat, "hi").await.ok(201);
    }
    let messages = &app.state.throttles.messages;
    assert_eq!(messages.len(), 2);
    // One a ten-thousandth of a second: both budgets refill within a millisecond, after which
    // a sweep forgets them.
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        messages.sweep();
        if messages.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < until, "never swept");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    send_message(&app, &customer, chat, "hi again")
        .await
        .ok(201);
}
