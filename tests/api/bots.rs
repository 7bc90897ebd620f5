//! Bots: accounts, tokens, chat access, and webhooks sent to a real receiver on loopback.
//! Webhook rounds run through `deliver_due` with the time the test means, so retries many
//! minutes apart take no waiting.

use std::time::Duration;

use actix_web::http::Method;
use base64::Engine;
use chrono::NaiveDateTime;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use stockroom::bots::delivery::{deliver_due, DeliveryRun};

use crate::common::receiver::{Receiver, Reply};
use crate::common::{Session, TestApp};

async fn app() -> TestApp {
    TestApp::builder()
        .env("STOCKROOM_WEBHOOK_ALLOW_PRIVATE", "true")
        .spawn()
        .await
}

/// A bot with the given webhook: `(bot, token, signing_secret)`.
async fn create_bot(app: &TestApp, owner: &Session, url: Option<&str>) -> (Value, String, String) {
    let mut body = json!({"name": "stockbot", "description": "answers /stock"});
    if let Some(url) = url {
        body["webhook_url"] = json!(url);
    }
    let created = app
        .post("/api/v1/bots", Some(&owner.token), body)
        .await
        .ok(201);
    (
        created["bot"].clone(),
        created["token"].as_str().unwrap().to_owned(),
        created["signing_secret"].as_str().unwrap().to_owned(),
    )
}

/// A group of `owner` with the bot in it; returns its id.
async fn group_with(app: &TestApp, owner: &Session, bot: &Value) -> i64 {
    app.post(
        "/api/v1/chats",
        Some(&owner.token),
        json!({"kind": "group", "title": "Desk", "member_ids": [bot["user_id"]]}),
    )
    .await
    .ok(201)["id"]
        .as_i64()
        .unwrap()
}

async fn say(app: &TestApp, who: &Session, chat: i64, text: &str) -> Value {
    app.post(
        &format!("/api/v1/chats/{chat}/messages"),
        Some(&who.token),
        json!({"kind": "text", "body": text}),
    )
    .await
    .ok(201)
}

async fn deliveries(app: &TestApp, owner: &Session, bot: &Value) -> Vec<Value> {
    app.all_pages(
        &format!("/api/v1/bots/{}/deliveries", bot["id"]),
        Some(&owner.token),
    )
    .await
}

async fn round(app: &TestApp, at: NaiveDateTime) -> DeliveryRun {
    deliver_due(&app.state, at).await.expect("a webhook round")
}

fn now() -> NaiveDateTime {
    stockroom::time::now()
}

fn later(secs: i64) -> NaiveDateTime {
    now() + chrono::Duration::seconds(secs)
}

#[actix_rt::test]
async fn the_owner_manages_bots_and_secrets_are_shown_once() {
    let app = app().await;
    let owner = app.owner("olivia").await;
    let worker = app.worker("walter").await;
    let customer = app.customer("carol").await;
    let body = json!({"name": "stockbot"});
    app.post("/api/v1/bots", Some(&worker.token), body.clone())
        .await
        .problem(403);
    app.post("/api/v1/bots", Some(&customer.token), body.clone())
        .await
        .problem(403);

    let created = app
        .post("/api/v1/bots", Some(&owner.token), body)
        .await
        .ok(201);
    let token = created["token"].as_str().unwrap();
    let secret = created["signing_secret"].as_str().unwrap();
    assert!(token.starts_with("stockroom_bot_"));
    let key = secret.strip_prefix("whsec_").expect("whsec_ secret");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap()
            .len(),
        32
    );
    let bot = &created["bot"];
    assert_eq!(bot["name"], "stockbot");
    assert_eq!(bot["webhook_status"], "none");
    assert!(bot["user_id"].as_i64().unwrap() > 0);

    let path = format!("/api/v1/bots/{}", bot["id"]);
    let fetched = app.get(&path, Some(&owner.token)).await.ok(200);
    let listed = app.all_pages("/api/v1/bots", Some(&owner.token)).await;
    for shown in [
        fetched.to_string(),
        Value::Array(listed.clone()).to_string(),
    ] {
        assert!(!shown.contains(token) && !shown.contains(secret), "{shown}");
        assert!(!shown.contains("token_hash"), "{shown}");
    }
    assert_eq!(listed.len(), 1);
    app.get(&path, Some(&worker.token)).await.problem(403);
    app.get("/api/v1/bots/999999", Some(&owner.token))
        .await
        .problem(404);

    let renamed = app
        .patch(&path, Some(&owner.token), json!({"name": "shelfbot"}))
        .await
        .ok(200);
    assert_eq!(renamed["name"], "shelfbot");
    app.patch(&path, Some(&owner.token), json!({"token_hash": "x"}))
        .await
        .problem(422);
}

#[actix_rt::test]
async fn a_bot_uses_only_its_chats_and_its_token_can_be_rotated_and_revoked() {
    let app = app().await;
    let owner = app.owner("olivia").await;
    let (bot, token, _) = create_bot(&app, &owner, None).await;
    let chat = group_with(&app, &owner, &bot).await;
    let other = app
        .post(
            "/api/v1/chats",
            Some(&owner.token),
            json!({"kind": "group", "title": "Staff only", "member_ids": [app.worker("walter").await.id]}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .unwrap();
    say(&app, &owner, chat, "hello bot").await;

    // Its own chat: read and write.
    let messages = format!("/api/v1/chats/{chat}/messages");
    let history = app
        .as_bot(Method::GET, &messages, &token, None)
        .await
        .ok(200);
    assert_eq!(history["data"][0]["body"], "hello bot");
    let reply = app
        .as_bot(
            Method::POST,
            &messages,
            &token,
            Some(&json!({"kind": "text", "body": "hello human"})),
        )
        .await
        .ok(201);
    assert_eq!(reply["author"]["id"], bot["user_id"]);
    // It uploads a picture and shows it in its chat.
    let png = crate::files::image_bytes(8, 8, image::ImageFormat::Png);
    let (content_type, upload) = crate::files::multipart(&[("files", "shelf.png", &png)]);
    let req = app
        .request(Method::POST, "/api/v1/files")
        .insert_header(("Authorization", format!("Bot {token}")))
        .insert_header(("Content-Type", content_type));
    let stored = app.send_bytes(req, upload).await.ok(201);
    app.as_bot(
        Method::POST,
        &messages,
        &token,
        Some(&json!({"kind": "image", "file_id": stored[0]["id"]})),
    )
    .await
    .ok(201);
    let mine = app
        .as_bot(Method::GET, "/api/v1/chats", &token, None)
        .await
        .ok(200);
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);

    // Anywhere else: as if it did not exist, or not for bots at all.
    for path in [
        format!("/api/v1/chats/{other}"),
        format!("/api/v1/chats/{other}/messages"),
    ] {
        app.as_bot(Method::GET, &path, &token, None)
            .await
            .problem(404);
    }
    app.as_bot(
        Method::POST,
        &format!("/api/v1/chats/{other}/messages"),
        &token,
        Some(&json!({"kind": "text", "body": "let me in"})),
    )
    .await
    .problem(404);
    for path in [
        "/api/v1/me",
        "/api/v1/items",
        "/api/v1/dashboard",
        "/api/v1/bots",
    ] {
        app.as_bot(Method::GET, path, &token, None)
            .await
            .problem(403);
    }
    app.as_bot(
        Method::POST,
        "/api/v1/chats",
        &token,
        Some(&json!({"kind": "direct", "member_ids": [owner.id]})),
    )
    .await
    .problem(403);
    app.as_bot(Method::GET, "/api/v1/chats", "stockroom_bot_wrong", None)
        .await
        .problem(401);

    // Rotation: the old token stops at once, the new one works.
    let rotated = app
        .post(
            &format!("/api/v1/bots/{}/token", bot["id"]),
            Some(&owner.token),
            json!({}),
        )
        .await
        .ok(200);
    let fresh = rotated["token"].as_str().unwrap();
    app.as_bot(Method::GET, &messages, &token, None)
        .await
        .problem(401);
    app.as_bot(Method::GET, &messages, fresh, None)
        .await
        .ok(200);

    // Deletion: the token stops, the bot leaves, its messages stay.
    app.delete(&format!("/api/v1/bots/{}", bot["id"]), Some(&owner.token))
        .await
        .ok(204);
    app.as_bot(Method::GET, &messages, fresh, None)
        .await
        .problem(401);
    app.get(&format!("/api/v1/bots/{}", bot["id"]), Some(&owner.token))
        .await
        .problem(404);
    let history = app.get(&messages, Some(&owner.token)).await.ok(200);
    let kept = &history["data"][1];
    assert_eq!(kept["body"], "hello human");
    assert_eq!(kept["author"]["deleted"], true);
    let members = app
        .all_pages(&format!("/api/v1/chats/{chat}/members"), Some(&owner.token))
        .await;
    assert!(members.iter().all(|m| m["user"]["id"] != bot["user_id"]));
}

#[actix_rt::test]
async fn a_bot_without_a_webhook_reads_its_events_over_the_socket() {
    let app = app().await;
    let owner = app.owner("olivia").await;
    let (bot, token, _) = create_bot(&app, &owner, None).await;
    let chat = group_with(&app, &owner, &bot).await;
    let mut ws = app
        .try_socket(&format!("/api/ws/chat?access_token={token}"), None)
        .await
        .expect("a bot token opens the socket");
    say(&app, &owner, chat, "/stock oat milk").await;
    let created = ws.event("message.created").await;
    assert_eq!(created["data"]["body"], "/stock oat milk");
    let command = ws.event("command").await;
    assert_eq!(command["data"]["command"], "stock");
    assert_eq!(command["data"]["args"], "oat milk");
    assert_eq!(command["data"]["chat_id"], chat);
    assert!(command["seq"].as_i64().unwrap() > created["seq"].as_i64().unwrap());
}

#[actix_rt::test]
async fn webhook_urls_must_be_http_and_public_unless_allowed() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olivia").await;
    for url in [
        "ftp://example.com/hook",
        "http://127.0.0.1:9000/hook",
        "http://localhost/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "https://user:secret@example.com/hook",
        "example.com/hook",
    ] {
        let problem = app
            .post(
                "/api/v1/bots",
                Some(&owner.token),
                json!({"name": "b", "webhook_url": url}),
            )
            .await
            .problem(422);
        assert!(
            problem["errors"]["webhook_url"].is_array(),
            "{url}: {problem}"
        );
    }
    let ok = app
        .post(
            "/api/v1/bots",
            Some(&owner.token),
            json!({"name": "b", "webhook_url": "https://example.com/hook"}),
        )
        .await
        .ok(201);
    assert_eq!(ok["bot"]["webhook_status"], "active");
    let path = format!("/api/v1/bots/{}", ok["bot"]["id"]);
    app.patch(
        &path,
        Some(&owner.token),
        json!({"webhook_url": "http://192.168.1.1/"}),
    )
    .await
    .problem(422);
}

fn hmac(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

#[actix_rt::test]
async fn webhooks_carry_both_signatures_in_order_and_never_the_bots_own_messages() {
    let app = app().await;
    let owner = app.owner("olivia").await;
    let receiver = Receiver::start(Vec::new()).await;
    let (bot, token, secret) = create_bot(&app, &owner, Some(&receiver.url)).await;
    let chat = group_with(&app, &owner, &bot).await;
    say(&app, &owner, chat, "good morning").await;
    say(&app, &owner, chat, "/stock milk").await;
    app.as_bot(
        Method::POST,
        &format!("/api/v1/chats/{chat}/messages"),
        &token,
        Some(&json!({"kind": "text", "body": "on it"})),
    )
    .await
    .ok(201);
    let run = round(&app, now()).await;
    // Joining the group, two messages and one command; not the bot's own reply.
    assert_eq!(run.attempts, 4, "{run:?}");
    let got = receiver.wait_for(4).await;
    let types: Vec<&str> = got.iter().map(|r| r.header("x-stockroom-event")).collect();
    assert_eq!(
        types,
        [
            "chat.member_added",
            "message.created",
            "message.created",
            "command"
        ]
    );
    let seqs: Vec<i64> = got
        .iter()
        .map(|r| r.json()["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let command = got[3].json();
    assert_eq!(command["type"], "command");
    assert_eq!(command["data"]["command"], "stock");
    assert_eq!(command["data"]["args"], "milk");
    assert_eq!(command["data"]["message"]["body"], "/stock milk");

    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    for r in &got {
        let id = r.header("webhook-id");
        let ts = r.header("webhook-timestamp");
        assert_eq!(id, r.header("x-stockroom-delivery"));
        assert_eq!(ts, r.header("x-stockroom-timestamp"));
        assert_eq!(r.header("content-type"), "application/json");
        let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
        assert!((0..300).contains(&age), "{age}");
        // Standard Webhooks, by the published algorithm and by the reference library.
        let expected = base64::engine::general_purpose::STANDARD
            .encode(hmac(&key, &format!("{id}.{ts}.{}", r.body)));
        assert!(
            r.header("webhook-signature")
                .split(' ')
                .any(|s| s == format!("v1,{expected}")),
            "{}",
            r.header("webhook-signature")
        );
        verifier
            .verify(r.body.as_bytes(), &r.header_map())
            .expect("verifies with the standardwebhooks library");
        // The contract's own header.
        let expected = hex::encode(hmac(secret.as_bytes(), &format!("{ts}.{}", r.body)));
        assert_eq!(
            r.header("x-stockroom-signature"),
            format!("sha256={expected}")
        );
    }
    // A tampered body does not verify.
    let mut forged = got[1].clone();
    forged.body = forged.body.replace("good morning", "give me everything");
    assert!(verifier
        .verify(forged.body.as_bytes(), &forged.header_map())
        .is_err());

    let log = deliveries(&app, &owner, &bot).await;
    assert_eq!(log.len(), 4);
    assert!(log
        .iter()
        .all(|d| d["status"] == "delivered" && d["attempts"] == 1 && d["last_status"] == 200));
}

#[actix_rt::test]
async fn a_failing_receiver_gets_the_same_delivery_until_it_succeeds() {
    let app = app().await;
    let owner = app.owner("olivia").await;
    let receiver = Receiver::start(vec![Reply::status(500), Reply::status(502)]).await;
    let (bot, _, _) = create_bot(&app, &owner, Some(&receiver.url)).await;
    // Joining the group is its one event.
    group_with(&app, &owner, &bot).await;
    assert_eq!(round(&app, now()).await.attempts, 1);
    let log = deliveries(&app, &owner, &bot).await;
    assert_eq!(log.len(), 1);
    let first = &log[0];
    assert_eq!(first["status"], "pending");
    assert_eq!(first["attempts"], 1);
    assert_eq!(first["last_status"], 500);
    assert!(first["last_error"].as_str().unwrap().contains("500"));
    let tried = parse_time(&first["last_attempt_at"]);
    let next = parse_time(&first["next_attempt_at"]);
    assert!(next > tried && next - tried <= chrono::Duration::seconds(5));

    // Not due yet: nothing is sent.
    assert_eq!(round(&app, now()).await.attempts, 0);
    assert_eq!(round(&app, later(6)).await.attempts, 1);
    assert_eq!(deliveries(&app, &owner, &bot).await[0]["last_status"], 502);
    assert_eq!(round(&app, later(6)).await.attempts, 0);
    assert_eq!(round(&app, later(3600)).await.attempts, 1);

    let log = deliveries(&app, &owner, &bot).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["next_attempt_at"], Value::Null);
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    let id = log[0]["id"].to_string();
    assert!(got.iter().all(|r| r.header("webhook-id") == id));
    // Delivered is final.
    assert_eq!(round(&app, later(90_000)).await.attempts, 0);
}

fn parse_time(v: &Value) -> NaiveDateTime {
    chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
        .expect("RFC 3339")
        .naive_utc()
}

#[actix_rt::test]
async fn retry_after_is_honoured_and_later_events_wait_their_turn() {
    let app = app().await;
    let owner = app.owner("olivia").await;
    let receiver = Receiver::start(vec![Reply::status(429).header("Retry-After", "120")]).await;
    let (bot, _, _) = create_bot(&app, &owner, Some(&receiver.url)).await;
    let chat = group_with(&app, &owner, &bot).await;
    assert_eq!(round(&app, now()).await.attempts, 1);
    let log = deliveries(&app, &owner, &bot).await;
    let wait = parse_time(&log[0]["next_attempt_at"]) - parse_time(&log[0]["last_attempt_at"]);
    assert!(wait >= chrono::Duration::seconds(120), "{wait}");

    // A newer event queues behind the one waiting: order per bot.
    say(&app, &owner, chat, "second").await;
    assert_eq!(round(&app, later(60)).await.attempts, 0);
    assert_eq!(round(&app, later(130)).await.attempts, 2);
    let got = receiver.received();
    let types: Vec<&str> = got.iter().map(|r| r.header("x-stockroom-event")).collect();
    assert_eq!(
        types,
        ["chat.member_added", "chat.member_added", "message.created"]
    );
}

#[actix_rt::test]
async fn gone_disables_the_webhook_until_its_url_is_set_again() {
    let app = app().await;
    let owner = app.owner("olivia").await;
    let receiver = Receiver::start(vec![Reply::status(410)]).await;
    let (bot, _, _) = create_bot(&app, &owner, Some(&receiver.url)).await;
    let path = format!("/api/v1/bots/{}", bot["id"]);
    let chat = group_with(&app, &owner, &bot).await;
    assert_eq!(round(&app, now()).await.attempts, 1);
    let shown = app.get(&path, Some(&owner.token)).await.ok(200);
    assert_eq!(shown["webhook_status"], "disabled");
    assert!(shown["webhook_disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    let log = deliveries(&app, &owner, &bot).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["last_status"], 410);

    // Nothing is sent while disabled; the events wait.
    say(&app, &owner, chat, "anyone there?").await;
    assert_eq!(round(&app, later(86_400)).await.attempts, 0);
    assert_eq!(receiver.received().len(), 1);

    let enabled = app
        .patch(
            &path,
            Some(&owner.token),
            json!({"webhook_url": receiver.url}),
        )
        .await
        .ok(200);
    assert_eq!(enabled["webhook_status"], "active");
    assert_eq!(round(&app, later(10)).await.attempts, 1);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].json()["data"]["body"], "anyone there?");
}

#[actix_rt::test]
async fn the_owner_redelivers_a_delivery_with_the_same_id() {
    let app = app().await;
    let owner = app.owner("olivia").await;
    let receiver = Receiver::start(Vec::new()).await;
    let (bot, _, _) = create_bot(&app, &owner, Some(&receiver.url)).await;
    group_with(&app, &owner, &bot).await;
    assert_eq!(round(&app, now()).await.attempts, 1);
    let delivery = deliveries(&app, &owner, &bot).await[0].clone();
    assert_eq!(delivery["status"], "delivered");
    let path = format!(
        "/api/v1/bots/{}/deliveries/{}/redeliver",
        bot["id"], delivery["id"]
    );
    let queued = app.post(&path, Some(&owner.token), json!({})).await.ok(202);
    assert_eq!(queued["status"], "pending");
    assert_eq!(queued["id"], delivery["id"]);
    assert_eq!(round(&app, later(1)).await.attempts, 1);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body);
    let after = deliveries(&app, &owner, &bot).await;
    assert_eq!(after[0]["attempts"], 2);
    assert_eq!(after[0]["status"], "delivered");

    let (other, _, _) = create_bot(&app, &owner, None).await;
    let foreign = format!(
        "/api/v1/bots/{}/deliveries/{}/redeliver",
        other["id"], delivery["id"]
    );
    app.post(&foreign, Some(&owner.token), json!({}))
        .await
        .problem(404);
    let worker = app.worker("walter").await;
    app.post(&path, Some(&worker.token), json!({}))
        .await
        .problem(403);
}

#[actix_rt::test]
async fn a_receiver_down_across_a_restart_gets_the_event_after() {
    let first = app().await;
    let owner = first.owner("olivia").await;
    // A port with nothing listening: connections are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/hook");
    let (bot, _, _) = create_bot(&first, &owner, Some(&url)).await;
    group_with(&first, &owner, &bot).await;
    assert_eq!(round(&first, now()).await.attempts, 1);
    let log = deliveries(&first, &owner, &bot).await;
    assert_eq!(log[0]["status"], "pending");
    assert_eq!(log[0]["last_status"], Value::Null);
    assert!(!log[0]["last_error"].as_str().unwrap().is_empty());
    first.stop_server().await;

    let second = TestApp::builder()
        .env("STOCKROOM_WEBHOOK_ALLOW_PRIVATE", "true")
        .same_database_as(&first)
        .spawn()
        .await;
    let receiver = Receiver::start_on(
        std::net::TcpListener::bind(addr).unwrap(),
        Vec::new(),
        Reply::status(200),
    );
    assert_eq!(round(&second, later(10)).await.attempts, 1);
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("webhook-id"), log[0]["id"].to_string());
    let log = deliveries(&second, &owner, &bot).await;
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"], 2);
}

#[actix_rt::test]
async fn two_processes_never_send_one_delivery_twice_and_keep_each_bots_order() {
    // The owner sends 30 messages in a burst (more than the default message burst).
    let first = TestApp::builder()
        .env("STOCKROOM_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("STOCKROOM_MESSAGE_BURST", "1000")
        .spawn()
        .await;
    let second = TestApp::builder()
        .env("STOCKROOM_WEBHOOK_ALLOW_PRIVATE", "true")
        .same_database_as(&first)
        .spawn()
        .await;
    let owner = first.owner("olivia").await;
    // A slow receiver widens the window in which both processes look for work.
    let receiver = Receiver::start_on(
        std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        Vec::new(),
        Reply::status(200).delay(Duration::from_millis(5)),
    );
    let mut bots = Vec::new();
    for i in 0..3 {
        let url = format!("{}/{i}", receiver.url);
        let (bot, _, _) = create_bot(&first, &owner, Some(&url)).await;
        let chat = group_with(&first, &owner, &bot).await;
        bots.push((bot, chat));
    }
    for n in 0..10 {
        for (_, chat) in &bots {
            say(&first, &owner, *chat, &format!("message {n}")).await;
        }
    }
    let at = now();
    let (a, b) = tokio::join!(
        deliver_due(&first.state, at),
        deliver_due(&second.state, at)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    // 3 bots × (joined + 10 messages).
    assert_eq!(a.attempts + b.attempts, 33, "{a:?} {b:?}");
    let got = receiver.received();
    assert_eq!(got.len(), 33);
    let mut ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 33, "a delivery was sent twice");
    // Each bot's deliveries arrived in the order of its stream.
    for i in 0..bots.len() {
        let path = format!("/hook/{i}");
        let seqs: Vec<i64> = got
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.json()["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs.len(), 11);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }
    for (bot, _) in &bots {
        let log = deliveries(&first, &owner, bot).await;
        assert_eq!(log.len(), 11);
        assert!(log
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1));
    }
}

#[allow(dead_code)]
#[path = "../../examples/stock_bot.rs"]
mod stock_bot;

#[actix_rt::test]
async fn the_example_bot_answers_stock_in_its_chat() {
    let app = TestApp::builder()
        .env("STOCKROOM_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("STOCKROOM_WEBHOOK_DELIVERY", "true")
        .spawn()
        .await;
    let owner = app.owner("olivia").await;
    let item = app
        .post(
            "/api/v1/items",
            Some(&owner.token),
            json!({"name": "Oat milk", "kind": "perishable", "unit": "l", "barcode": "4006381333931", "min_quantity": 2}),
        )
        .await
        .ok(201);
    let expiry = (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string();
    app.post(
        &format!("/api/v1/items/{}/batches", item["id"]),
        Some(&owner.token),
        json!({"quantity": 12, "expiry_date": expiry}),
    )
    .await
    .ok(201);

    let bot = stock_bot::start(stock_bot::Config {
        api: app.base.clone(),
        login: "olivia".to_owned(),
        password: crate::common::PASSWORD.to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
    })
    .await
    .expect("the example bot starts");
    actix_web::rt::spawn(bot.server);
    let bot_user = bot.bot["user_id"].as_i64().unwrap();
    let mut ws = app.socket(&owner.token, None).await;
    for (question, answer) in [
        ("/stock oat", "Oat milk: 12 l available"),
        ("/stock 4006381333931", "Oat milk: 12 l available"),
        ("/stock unicorn", "No item matches \u{201c}unicorn\u{201d}."),
    ] {
        say(&app, &owner, bot.chat_id, question).await;
        // Its own message comes back, then the bot's answer (with a notification of it).
        let reply = loop {
            let event = ws.next().await;
            if event["type"] == "message.created" && event["data"]["author"]["id"] == bot_user {
                break event;
            }
        };
        assert_eq!(reply["data"]["body"], answer, "{question}");
    }
}
