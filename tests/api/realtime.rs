//! The event socket: refusal before the upgrade, every event type, commands and bad frames,
//! lossless resume, positions that commit in order, resync past retention, slow readers, and
//! two processes on one PostgreSQL database.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::chat::{id, say};
use crate::common::socket::Ended;
use crate::common::{is_postgres, Session, TestApp};

fn seq(v: &Value) -> i64 {
    v["seq"].as_i64().unwrap_or_else(|| panic!("a seq in {v}"))
}

/// The direct chat of two people, muted for both: these tests follow the message events
/// themselves, without the notifications they would raise (`notifications.rs` tests those).
async fn direct(app: &TestApp, from: &Session, to: &Session) -> i64 {
    let chat = id(&crate::chat::direct(app, from, to.id).await);
    for who in [from, to] {
        crate::chat::mute(app, who, chat).await;
    }
    chat
}

#[actix_rt::test]
async fn the_socket_is_refused_before_the_upgrade_without_valid_credentials() {
    let app = TestApp::spawn().await;
    let customer = app.customer("cat").await;
    assert_eq!(app.try_socket("/api/ws/chat", None).await.err(), Some(401));
    assert_eq!(
        app.try_socket("/api/ws/chat", Some("not-a-token"))
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        app.try_socket("/api/ws/chat?access_token=nope", None)
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        app.try_socket("/api/ws/chat?since=-1", Some(&customer.token))
            .await
            .err(),
        Some(400)
    );
    // Browsers give the token in the query string.
    let mut ws = app
        .try_socket(
            &format!("/api/ws/chat?access_token={}", customer.token),
            None,
        )
        .await
        .expect("accepted");
    ws.nothing_pending().await;
    // A plain GET is no upgrade.
    app.get("/api/ws/chat", Some(&customer.token))
        .await
        .problem(400);
}

#[actix_rt::test]
async fn every_event_type_reaches_the_members_in_order() {
    let app = TestApp::spawn().await;
    let worker = app.worker("wil").await;
    let helper = app.worker("hank").await;
    let customer = app.customer("cass").await;
    let mut staff = app.socket(&worker.token, None).await;
    let mut cust = app.socket(&customer.token, None).await;
    let group = app
        .post(
            "/api/v1/chats",
            Some(&worker.token),
            json!({"kind": "group", "title": "Orders", "member_ids": [customer.id]}),
        )
        .await
        .ok(201);
    let chat = id(&group);
    let mut seen = Vec::new();
    let added = cust.event("chat.member_added").await;
    assert_eq!(added["data"]["chat_id"], chat);
    seen.push(seq(&added));
    staff.event("chat.member_added").await;

    let sent = say(&app, &customer, chat, "hello").await;
    let created = cust.event("message.created").await;
    assert_eq!(created["data"]["id"], sent["id"]);
    assert_eq!(created["data"]["author"]["username"], "cass");
    seen.push(seq(&created));
    assert_eq!(
        staff.event("message.created").await["data"]["body"],
        "hello"
    );
    // The worker did not write it: it raises their notification, right after the message.
    let notified = staff.event("notification.created").await;
    assert_eq!(notified["data"]["type"], "message");
    assert_eq!(notified["data"]["link"]["id"], chat);

    let path = format!("/api/v1/chats/{chat}/messages/{}", id(&sent));
    app.patch(&path, Some(&customer.token), json!({"body": "hello!"}))
        .await
        .ok(200);
    let updated = cust.event("message.updated").await;
    assert_eq!(updated["data"]["body"], "hello!");
    seen.push(seq(&updated));
    staff.event("message.updated").await;

    app.post(
        &format!("/api/v1/chats/{chat}/read"),
        Some(&worker.token),
        json!({"up_to_message_id": id(&sent)}),
    )
    .await
    .ok(200);
    let read = cust.event("read").await;
    assert_eq!(
        read["data"],
        json!({"chat_id": chat, "user_id": worker.id, "up_to_message_id": id(&sent)})
    );
    seen.push(seq(&read));
    staff.event("read").await;

    app.delete(&path, Some(&worker.token)).await.ok(204);
    let deleted = cust.event("message.deleted").await;
    assert_eq!(deleted["data"]["deleted"], true);
    assert!(deleted["data"]["body"].is_null());
    seen.push(seq(&deleted));
    staff.event("message.deleted").await;

    // Typing reaches the others only, without a position.
    cust.send(json!({"type": "typing", "chat_id": chat})).await;
    let typing = staff.next().await;
    assert_eq!(typing["type"], "typing");
    assert_eq!(
        typing["data"],
        json!({"chat_id": chat, "user_id": customer.id})
    );
    assert!(typing.get("seq").is_none(), "{typing}");
    cust.nothing_pending().await;

    app.post(
        &format!("/api/v1/chats/{chat}/members"),
        Some(&worker.token),
        json!({"user_id": helper.id}),
    )
    .await
    .ok(201);
    let joined = cust.event("chat.member_added").await;
    assert_eq!(joined["data"]["user_ids"], json!([helper.id]));
    seen.push(seq(&joined));
    app.delete(
        &format!("/api/v1/chats/{chat}/members/{}", helper.id),
        Some(&worker.token),
    )
    .await
    .ok(204);
    let left = cust.event("chat.member_removed").await;
    assert_eq!(left["data"]["user_ids"], json!([helper.id]));
    seen.push(seq(&left));
    let first = seen[0];
    let expected: Vec<i64> = (first..first + 7).collect();
    assert_eq!(seen, expected, "positions grow by one, without gaps");
    cust.nothing_pending().await;
}

#[actix_rt::test]
async fn socket_commands_follow_the_rest_rules_and_bad_frames_keep_it_open() {
    let app = TestApp::spawn().await;
    let worker = app.worker("sam").await;
    let customer = app.customer("sue").await;
    let stranger = app.customer("stan").await;
    let chat = direct(&app, &customer, &worker).await;
    let theirs = direct(&app, &stranger, &worker).await;
    let mut ws = app.socket(&customer.token, None).await;
    let send = json!({"type": "message.send", "chat_id": chat, "body": "over the socket", "client_id": "c-1"});
    ws.send(send.clone()).await;
    let created = ws.event("message.created").await;
    assert_eq!(created["data"]["client_id"], "c-1");
    // A retry with the same client_id stores nothing new.
    ws.send(send).await;
    ws.nothing_pending().await;
    let history = app
        .all_pages(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&worker.token),
        )
        .await;
    assert_eq!(history.len(), 1);

    ws.send(json!({"type": "message.send", "chat_id": theirs, "body": "hi", "client_id": "c-2"}))
        .await;
    let error = ws.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["status"], 404);
    assert_eq!(error["client_id"], "c-2");

    ws.send(json!({"type": "message.send", "chat_id": chat, "body": ""}))
        .await;
    let error = ws.next().await;
    assert_eq!(error["status"], 422);
    assert!(error["errors"]["body"].is_array(), "{error}");

    for bad in [
        "not json",
        "{\"type\":\"dance\"}",
        "{\"type\":\"typing\"}",
        "[1,2]",
    ] {
        ws.send_text(bad.to_owned()).await;
        let error = ws.next().await;
        assert_eq!(error["type"], "error", "{bad}: {error}");
        assert!(error["detail"].is_string());
    }
    ws.send_binary(vec![1, 2, 3]).await;
    assert_eq!(ws.next().await["type"], "error");
    ws.nothing_pending().await;
}

#[actix_rt::test]
async fn a_resumed_socket_gets_every_missed_event_in_order_then_live_ones() {
    let app = TestApp::spawn().await;
    let worker = app.worker("ren").await;
    let customer = app.customer("rita").await;
    let chat = direct(&app, &customer, &worker).await;
    let mut ws = app.socket(&customer.token, None).await;
    say(&app, &worker, chat, "before").await;
    let last = seq(&ws.event("message.created").await);
    ws.close().await;
    let mut missed = Vec::new();
    for i in 0..5 {
        missed.push(id(
            &say(&app, &worker, chat, &format!("while away {i}")).await
        ));
    }
    app.patch(
        &format!("/api/v1/chats/{chat}/messages/{}", missed[0]),
        Some(&worker.token),
        json!({"body": "edited while away"}),
    )
    .await
    .ok(200);
    let mut ws = app.socket(&customer.token, Some(last)).await;
    let replayed = ws.take(6).await;
    let seqs: Vec<i64> = replayed.iter().map(seq).collect();
    assert_eq!(seqs, (last + 1..=last + 6).collect::<Vec<_>>());
    let ids: Vec<i64> = replayed[..5].iter().map(|e| id(&e["data"])).collect();
    assert_eq!(ids, missed);
    assert_eq!(replayed[5]["type"], "message.updated");
    say(&app, &worker, chat, "live").await;
    let live = ws.event("message.created").await;
    assert_eq!(seq(&live), last + 7);
    ws.nothing_pending().await;
    // Resuming from where it stands replays nothing.
    let mut again = app.socket(&customer.token, Some(last + 7)).await;
    again.nothing_pending().await;
}

/// A transaction holding a position for the customer stays open while a message for them is
/// sent: the message cannot commit its later position first, so the socket gets both, in
/// order. (Positions drawn from a plain sequence would let the second commit first, and a
/// reader that saw it would skip the first forever.)
#[actix_rt::test]
async fn positions_commit_in_order_even_when_a_transaction_holds_one_open() {
    let app = TestApp::spawn().await;
    let worker = app.worker("olaf").await;
    let customer = app.customer("orla").await;
    let chat = direct(&app, &customer, &worker).await;
    let mut ws = app.socket(&customer.token, None).await;
    say(&app, &worker, chat, "first").await;
    let start = seq(&ws.event("message.created").await);

    let (recorded_tx, recorded_rx) = std::sync::mpsc::channel();
    let (commit_tx, commit_rx) = std::sync::mpsc::channel::<()>();
    let state = app.state.clone();
    let customer_id = customer.id;
    let held = std::thread::spawn(move || {
        let mut conn = state.db.pool().get().expect("a connection");
        stockroom::db::write_transaction(&mut conn, |conn| {
            let recorded = state.events.record(
                conn,
                [customer_id],
                "read",
                &json!({"chat_id": chat, "user_id": 0, "up_to_message_id": 0}),
            )?;
            recorded_tx.send(()).expect("signal");
            commit_rx.recv().expect("told to commit");
            Ok::<_, stockroom::error::ApiError>(recorded)
        })
        .expect("the held transaction commits")
    });
    recorded_rx.recv().expect("the position is taken");
    let sender = {
        let url = app.url(&format!("/api/v1/chats/{chat}/messages"));
        let token = worker.token.clone();
        let client = app.client().clone();
        actix_rt::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .send_json(&json!({"body": "second"}))
                .await
                .map(|r| r.status().as_u16())
        })
    };
    if is_postgres() {
        wait_for_lock_waiter(&app).await;
    }
    commit_tx.send(()).expect("commit");
    let recorded = held.join().expect("the holder finishes");
    app.state.events.publish([recorded]);
    assert_eq!(sender.await.expect("sent").expect("answered"), 201);
    let held_event = ws.next().await;
    let message = ws.next().await;
    assert_eq!(
        (held_event["type"].as_str(), seq(&held_event)),
        (Some("read"), start + 1)
    );
    assert_eq!(
        (message["type"].as_str(), seq(&message)),
        (Some("message.created"), start + 2)
    );
    ws.nothing_pending().await;
}

/// Waits (with a deadline) until some PostgreSQL backend waits on a lock.
async fn wait_for_lock_waiter(app: &TestApp) {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut conn = connect(&app.database_url);
    loop {
        let waiting: Waiting =
            diesel::sql_query("SELECT count(*) AS n FROM pg_locks WHERE NOT granted")
                .get_result(&mut conn)
                .expect("pg_locks");
        if waiting.n > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sender never waited"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn connect(url: &str) -> diesel::PgConnection {
    <diesel::PgConnection as diesel::Connection>::establish(url)
        .expect("connect to the test database")
}

#[actix_rt::test]
async fn a_since_older_than_what_is_kept_gets_one_resync_then_live_events() {
    let app = TestApp::spawn().await;
    let worker = app.worker("tom").await;
    let customer = app.customer("tess").await;
    let chat = direct(&app, &customer, &worker).await;
    let mut ws = app.socket(&customer.token, None).await;
    for i in 0..3 {
        say(&app, &worker, chat, &format!("m{i}")).await;
    }
    let head = seq(&ws.take(3).await[2]);
    ws.close().await;
    // Everything recorded so far is older than the retention period.
    {
        use diesel::prelude::*;
        use stockroom::db::schema::events;
        let mut conn = app.state.db.pool().get().expect("a connection");
        let long_ago = chrono::Utc::now().naive_utc() - chrono::Duration::days(40);
        diesel::update(events::table)
            .set(events::created_at.eq(long_ago))
            .execute(&mut conn)
            .expect("age the events");
    }
    let pruned = app.state.events.prune(&app.state.db).await.expect("prune");
    assert!(pruned >= 3, "pruned {pruned}");
    let mut ws = app.socket(&customer.token, Some(1)).await;
    let resync = ws.next().await;
    assert_eq!(
        resync,
        json!({"type": "resync", "data": {"last_seq": head}})
    );
    say(&app, &worker, chat, "after").await;
    assert_eq!(seq(&ws.event("message.created").await), head + 1);
    ws.nothing_pending().await;
    // A position the server never gave also resyncs.
    let mut future = app.socket(&customer.token, Some(head + 100)).await;
    assert_eq!(future.next().await["type"], "resync");
    // The current position does not.
    let mut current = app.socket(&customer.token, Some(head + 1)).await;
    current.nothing_pending().await;
}

/// Connects without ever reading: after the handshake, frames pile up in the server.
async fn stalled_socket(app: &TestApp, token: &str) -> tokio::net::TcpStream {
    let address: std::net::SocketAddr = app
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let mut stream = socket.connect(address).await.expect("connect");
    let request = format!(
        "GET /api/ws/chat HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("handshake");
    // Read the 101 answer byte by byte, so no frame is read with it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("101 answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// Reads server frames until a close frame or the end: (text frames, close code).
async fn drain_frames(stream: &mut tokio::net::TcpStream) -> (Vec<Value>, Option<u16>) {
    let mut frames = Vec::new();
    loop {
        let mut header = [0u8; 2];
        let read =
            tokio::time::timeout(Duration::from_secs(60), stream.read_exact(&mut header)).await;
        if !matches!(read, Ok(Ok(_))) {
            return (frames, None);
        }
        let opcode = header[0] & 0x0f;
        let mut len = u64::from(header[1] & 0x7f);
        if len == 126 {
            let mut ext = [0u8; 2];
            stream.read_exact(&mut ext).await.expect("length");
            len = u64::from(u16::from_be_bytes(ext));
        } else if len == 127 {
            let mut ext = [0u8; 8];
            stream.read_exact(&mut ext).await.expect("length");
            len = u64::from_be_bytes(ext);
        }
        let mut payload = vec![0u8; usize::try_from(len).expect("size")];
        stream.read_exact(&mut payload).await.expect("payload");
        match opcode {
            1 => frames.push(serde_json::from_slice(&payload).expect("JSON")),
            8 => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                return (frames, code);
            }
            _ => {}
        }
    }
}

#[actix_rt::test]
async fn a_slow_reader_is_disconnected_while_a_fast_one_keeps_receiving() {
    // 600 messages as fast as they go: far past the default message budget.
    let app = TestApp::builder()
        .env("STOCKROOM_WS_QUEUE", "64")
        .env("STOCKROOM_MESSAGE_BURST", "100000")
        .spawn()
        .await;
    let worker = app.worker("fay").await;
    let customer = app.customer("sly").await;
    let chat = direct(&app, &customer, &worker).await;
    let mut stalled = stalled_socket(&app, &customer.token).await;
    let mut fast = app.socket(&worker.token, None).await;
    // 4,000 four-byte characters: 16 KB an event, far more in all than the buffers between
    // the server and a reader that never reads.
    let body = "\u{1F4E6}".repeat(4000);
    const MESSAGES: usize = 600;
    let reader = actix_rt::spawn(async move {
        let mut last = 0;
        for _ in 0..MESSAGES {
            let event = fast.event("message.created").await;
            let position = seq(&event);
            assert!(
                last == 0 || position == last + 1,
                "no gaps for the fast reader"
            );
            last = position;
        }
        fast.nothing_pending().await;
    });
    for _ in 0..MESSAGES {
        say(&app, &worker, chat, &body).await;
    }
    reader.await.expect("the fast reader got every message");
    let (frames, code) = drain_frames(&mut stalled).await;
    assert_eq!(
        code,
        Some(4008),
        "closed as too slow after {} frames",
        frames.len()
    );
    assert!(frames.len() < MESSAGES, "it was cut off");
    let last = frames
        .iter()
        .filter_map(|f| f["seq"].as_i64())
        .max()
        .unwrap_or(0);
    // It resumes and loses nothing.
    let mut resumed = app.socket(&customer.token, Some(last)).await;
    let missed = i64::try_from(MESSAGES - frames.len()).expect("a count");
    for expected in last + 1..=last + missed {
        let event = resumed.event("message.created").await;
        assert_eq!(seq(&event), expected);
    }
    resumed.nothing_pending().await;
}

/// Two server processes on one PostgreSQL database: a burst sent on one arrives at a socket
/// on the other, complete and in order — also across the listener losing its connection.
#[actix_rt::test]
async fn two_processes_deliver_each_others_events() {
    if !is_postgres() {
        return;
    }
    // 1,000 messages in waves of 50: far past the default message budget.
    let first = TestApp::builder()
        .env("STOCKROOM_MESSAGE_BURST", "100000")
        .spawn()
        .await;
    let second = TestApp::builder().same_database_as(&first).spawn().await;
    let worker = first.worker("pat").await;
    let customer = first.customer("pia").await;
    let chat = direct(&first, &customer, &worker).await;
    let mut ws = second.socket(&customer.token, None).await;
    const BURST: usize = 1000;
    let reader = actix_rt::spawn(async move {
        let mut seqs = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        while ids.len() < BURST {
            let event = ws.event("message.created").await;
            seqs.push(seq(&event));
            assert!(ids.insert(id(&event["data"])), "a message arrived twice");
        }
        ws.nothing_pending().await;
        seqs
    });
    for wave in 0..(BURST / 50) {
        if wave == 10 {
            // The second process's listener loses its connection mid-burst.
            use diesel::RunQueryDsl;
            let mut conn = connect(&first.database_url);
            diesel::sql_query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE query LIKE 'LISTEN%' AND datname = current_database()",
            )
            .execute(&mut conn)
            .expect("terminate listeners");
        }
        let path = format!("/api/v1/chats/{chat}/messages");
        let sends = (0..50).map(|i| {
            first.post(
                &path,
                Some(&worker.token),
                json!({"body": format!("burst {wave}-{i}"), "client_id": format!("{wave}-{i}")}),
            )
        });
        for answer in join_all(sends).await {
            answer.ok(201);
        }
    }
    let seqs = reader.await.expect("every message arrived once");
    let start = seqs[0];
    assert_eq!(seqs, (start..start + BURST as i64).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn ended_sessions_and_silent_clients_lose_their_sockets() {
    let app = TestApp::builder()
        .env("STOCKROOM_WS_PING_SECS", "1")
        .spawn()
        .await;
    let customer = app.customer("lou").await;
    let mut ws = app.socket(&customer.token, None).await;
    // A second session of the same person, on a client that never answers pings.
    let other = app.login("lou", crate::common::PASSWORD).await.ok(200);
    let other_token = other["access_token"].as_str().expect("token").to_owned();
    let mut silent = stalled_socket(&app, &other_token).await;
    app.post("/api/v1/auth/logout", Some(&customer.token), json!({}))
        .await
        .ok(204);
    let (end, _) = ws.until_end().await;
    assert_eq!(
        end,
        Ended::Closed(Some(1008)),
        "the logged-out session's socket"
    );
    let (_, code) = drain_frames(&mut silent).await;
    assert_eq!(code, Some(1001), "the silent client's socket");
}

#[actix_rt::test]
async fn sockets_per_user_and_frame_sizes_are_capped() {
    let app = TestApp::builder()
        .env("STOCKROOM_WS_MAX_PER_USER", "2")
        .env("STOCKROOM_WS_MAX_FRAME_BYTES", "2048")
        .spawn()
        .await;
    let customer = app.customer("max").await;
    let mut first = app.socket(&customer.token, None).await;
    let _second = app.socket(&customer.token, None).await;
    assert_eq!(
        app.try_socket("/api/ws/chat", Some(&customer.token))
            .await
            .err(),
        Some(429)
    );
    // A frame over the limit ends that socket with 1009; a new one may take its place.
    first.send_text("x".repeat(4096)).await;
    let (end, _) = first.until_end().await;
    assert_eq!(end, Ended::Closed(Some(1009)));
    let mut third = app.socket(&customer.token, None).await;
    third.nothing_pending().await;
}

#[actix_rt::test]
async fn a_replay_never_brings_a_deleted_message_back() {
    let app = TestApp::spawn().await;
    let worker = app.worker("del").await;
    let customer = app.customer("dora").await;
    let chat = direct(&app, &customer, &worker).await;
    let secret = say(&app, &worker, chat, "the door code is 4711").await;
    let path = format!("/api/v1/chats/{chat}/messages/{}", id(&secret));
    app.patch(&path, Some(&worker.token), json!({"body": "still 4711"}))
        .await
        .ok(200);
    app.delete(&path, Some(&worker.token)).await.ok(204);
    // The customer was offline throughout and replays everything.
    let mut ws = app.socket(&customer.token, Some(0)).await;
    let frames = ws.take(4).await;
    let kinds: Vec<&str> = frames.iter().filter_map(|f| f["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "chat.member_added",
            "message.created",
            "message.updated",
            "message.deleted"
        ]
    );
    for frame in &frames[1..] {
        assert_eq!(frame["data"]["deleted"], true, "{frame}");
        assert!(frame["data"]["body"].is_null(), "{frame}");
    }
    assert!(!frames.iter().any(|f| f.to_string().contains("4711")));
    ws.nothing_pending().await;
}
