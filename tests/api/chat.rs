//! Chats over REST: who may talk with whom, messages, history, idempotent sends, read state.

use futures::future::join_all;
use serde_json::{json, Value};

use crate::common::{Session, TestApp};

/// Opens (or finds) the direct chat of `from` with `to`.
pub async fn direct(app: &TestApp, from: &Session, to: i64) -> Value {
    app.post(
        "/api/v1/chats",
        Some(&from.token),
        json!({"kind": "direct", "member_ids": [to]}),
    )
    .await
    .json()
}

/// Uploads one file and returns its id.
async fn upload(app: &TestApp, who: &Session, name: &str, bytes: &[u8]) -> i64 {
    let stored = crate::files::upload(app, who, &[("files", name, bytes)])
        .await
        .ok(201);
    id(&stored[0])
}

/// A small valid PDF (files are PDFs only if they parse as one).
fn small_pdf() -> Vec<u8> {
    crate::uploads_streamed::minimal_pdf("order")
}

/// Sends a text message and returns it.
pub async fn say(app: &TestApp, who: &Session, chat: i64, body: &str) -> Value {
    app.post(
        &format!("/api/v1/chats/{chat}/messages"),
        Some(&who.token),
        json!({"kind": "text", "body": body}),
    )
    .await
    .ok(201)
}

/// Mutes a chat for `who`: no notifications from it.
pub async fn mute(app: &TestApp, who: &Session, chat: i64) {
    let muted = app
        .patch(
            &format!("/api/v1/chats/{chat}"),
            Some(&who.token),
            json!({"muted": true}),
        )
        .await
        .ok(200);
    assert_eq!(muted["muted"], true);
}

pub fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("an id in {v}"))
}

#[actix_rt::test]
async fn one_direct_chat_per_pair_even_when_requests_race() {
    let app = TestApp::spawn().await;
    let worker = app.worker("wanda").await;
    let customer = app.customer("carl").await;
    let attempts = join_all((0..12).map(|i| {
        let (from, to) = if i % 2 == 0 {
            (&customer, worker.id)
        } else {
            (&worker, customer.id)
        };
        app.post(
            "/api/v1/chats",
            Some(&from.token),
            json!({"kind": "direct", "member_ids": [to]}),
        )
    }))
    .await;
    let created = attempts.iter().filter(|r| r.status == 201).count();
    let existing = attempts.iter().filter(|r| r.status == 200).count();
    assert_eq!((created, existing), (1, 11));
    let ids: std::collections::BTreeSet<i64> = attempts.iter().map(|r| id(&r.json())).collect();
    assert_eq!(ids.len(), 1, "every answer names the same chat");
    let chat = attempts[0].json();
    assert_eq!(chat["kind"], "direct");
    assert_eq!(chat["member_count"], 2);
    assert!(chat["peer"]["username"].is_string());
}

#[actix_rt::test]
async fn customers_only_talk_with_staff() {
    let app = TestApp::spawn().await;
    let worker = app.worker("wes").await;
    let ann = app.customer("ann").await;
    let bob = app.customer("bob").await;
    app.post(
        "/api/v1/chats",
        Some(&ann.token),
        json!({"kind": "direct", "member_ids": [bob.id]}),
    )
    .await
    .problem(403);
    app.post(
        "/api/v1/chats",
        Some(&ann.token),
        json!({"kind": "group", "title": "friends", "member_ids": [worker.id]}),
    )
    .await
    .problem(403);
    app.post(
        "/api/v1/chats",
        Some(&worker.token),
        json!({"kind": "group", "title": "both", "member_ids": [ann.id, bob.id]}),
    )
    .await
    .problem(403);
    let group = app
        .post(
            "/api/v1/chats",
            Some(&worker.token),
            json!({"kind": "group", "title": "ann's order", "member_ids": [ann.id]}),
        )
        .await
        .ok(201);
    app.post(
        &format!("/api/v1/chats/{}/members", id(&group)),
        Some(&worker.token),
        json!({"user_id": bob.id}),
    )
    .await
    .problem(403);
    // Bad requests name the field.
    let body = app
        .post(
            "/api/v1/chats",
            Some(&ann.token),
            json!({"kind": "direct", "member_ids": [ann.id]}),
        )
        .await
        .problem(422);
    assert!(body["errors"]["member_ids"].is_array(), "{body}");
    app.post(
        "/api/v1/chats",
        Some(&ann.token),
        json!({"kind": "direct", "member_ids": [999_999]}),
    )
    .await
    .problem(404);
}

#[actix_rt::test]
async fn chat_admins_manage_groups_and_members_leave() {
    let app = TestApp::spawn().await;
    let admin = app.worker("ada").await;
    let other = app.worker("otto").await;
    let customer = app.customer("cora").await;
    let outsider = app.customer("olga").await;
    let group = app
        .post(
            "/api/v1/chats",
            Some(&admin.token),
            json!({"kind": "group", "title": "Deliveries", "member_ids": [other.id, customer.id]}),
        )
        .await
        .ok(201);
    let chat = id(&group);
    assert_eq!(group["my_role"], "admin");
    assert_eq!(group["member_count"], 3);
    let path = format!("/api/v1/chats/{chat}");
    // Not a member: the chat does not exist for them.
    app.get(&path, Some(&outsider.token)).await.problem(404);
    // Members may not rename, add or remove others.
    app.patch(&path, Some(&other.token), json!({"title": "Mine"}))
        .await
        .problem(403);
    app.post(
        &format!("{path}/members"),
        Some(&customer.token),
        json!({"user_id": outsider.id}),
    )
    .await
    .problem(403);
    app.delete(
        &format!("{path}/members/{}", other.id),
        Some(&customer.token),
    )
    .await
    .problem(403);
    let renamed = app
        .patch(
            &path,
            Some(&admin.token),
            json!({"title": "Morning deliveries"}),
        )
        .await
        .ok(200);
    assert_eq!(renamed["title"], "Morning deliveries");
    app.post(
        &format!("{path}/members"),
        Some(&admin.token),
        json!({"user_id": other.id}),
    )
    .await
    .problem(409);
    // The admin leaves: the longest-standing member becomes admin.
    app.delete(&format!("{path}/members/{}", admin.id), Some(&admin.token))
        .await
        .ok(204);
    app.get(&path, Some(&admin.token)).await.problem(404);
    let members = app
        .all_pages(&format!("{path}/members"), Some(&other.token))
        .await;
    assert_eq!(members.len(), 2);
    assert!(members.iter().any(|m| m["role"] == "admin"), "{members:?}");
    // A customer leaves on their own.
    app.delete(
        &format!("{path}/members/{}", customer.id),
        Some(&customer.token),
    )
    .await
    .ok(204);
    app.get(&path, Some(&customer.token)).await.problem(404);
    // The remaining admin deletes the group.
    app.delete(&path, Some(&other.token)).await.ok(204);
    app.get(&path, Some(&other.token)).await.problem(404);
    // A direct chat has no title, and cannot be left or deleted.
    let dm = id(&direct(&app, &customer, admin.id).await);
    let dm_path = format!("/api/v1/chats/{dm}");
    app.patch(&dm_path, Some(&admin.token), json!({"title": "x"}))
        .await
        .problem(409);
    app.delete(
        &format!("{dm_path}/members/{}", customer.id),
        Some(&customer.token),
    )
    .await
    .problem(409);
}

#[actix_rt::test]
async fn messages_follow_the_content_rules_and_files_follow_the_chat() {
    let app = TestApp::spawn().await;
    let worker = app.worker("wim").await;
    let customer = app.customer("cleo").await;
    let outsider = app.customer("ozzy").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    let path = format!("/api/v1/chats/{chat}/messages");
    for (body, field) in [
        (json!({"kind": "text"}), "body"),
        (json!({"kind": "text", "body": "   "}), "body"),
        (json!({"kind": "text", "body": "x".repeat(4001)}), "body"),
        (json!({"kind": "image", "body": "look"}), "file_id"),
        (
            json!({"kind": "text", "body": "hi", "file_id": 1}),
            "file_id",
        ),
        (
            json!({"kind": "text", "body": "hi", "client_id": ""}),
            "client_id",
        ),
    ] {
        let problem = app
            .post(&path, Some(&customer.token), body)
            .await
            .problem(422);
        assert!(problem["errors"][field].is_array(), "{problem}");
    }
    // An outsider cannot post, or even learn the chat exists.
    app.post(&path, Some(&outsider.token), json!({"body": "hi"}))
        .await
        .problem(404);
    // A PDF is no image; as a file it is fine.
    let pdf = upload(&app, &customer, "order.pdf", &small_pdf()).await;
    let png_bytes = crate::files::image_bytes(4, 4, image::ImageFormat::Png);
    let png = upload(&app, &customer, "shelf.png", &png_bytes).await;
    let problem = app
        .post(
            &path,
            Some(&customer.token),
            json!({"kind": "image", "file_id": pdf}),
        )
        .await
        .problem(422);
    assert!(problem["errors"]["file_id"].is_array(), "{problem}");
    let sent = app
        .post(
            &path,
            Some(&customer.token),
            json!({"kind": "image", "file_id": png, "body": "the shelf"}),
        )
        .await
        .ok(201);
    assert_eq!(sent["file"]["id"], png);
    assert_eq!(sent["file"]["content_type"], "image/png");
    // Members of the chat may read it; nobody else.
    let download = app
        .get(&format!("/api/v1/files/{png}"), Some(&worker.token))
        .await;
    assert_eq!(download.status, 200);
    app.get(&format!("/api/v1/files/{png}"), Some(&outsider.token))
        .await
        .problem(404);
    // Someone else's file cannot be posted.
    let secret = upload(&app, &outsider, "mine.pdf", &small_pdf()).await;
    app.post(
        &path,
        Some(&customer.token),
        json!({"kind": "file", "file_id": secret}),
    )
    .await
    .problem(404);
}

#[actix_rt::test]
async fn authors_edit_and_admins_delete_leaving_tombstones() {
    let app = TestApp::spawn().await;
    let admin = app.worker("abe").await;
    let customer = app.customer("cyd").await;
    let group = app
        .post(
            "/api/v1/chats",
            Some(&admin.token),
            json!({"kind": "group", "title": "Support", "member_ids": [customer.id]}),
        )
        .await
        .ok(201);
    let chat = id(&group);
    let mine = say(&app, &customer, chat, "helo").await;
    let path = format!("/api/v1/chats/{chat}/messages/{}", id(&mine));
    app.patch(&path, Some(&admin.token), json!({"body": "hello"}))
        .await
        .problem(403);
    let edited = app
        .patch(&path, Some(&customer.token), json!({"body": "hello"}))
        .await
        .ok(200);
    assert_eq!(edited["body"], "hello");
    assert!(edited["edited_at"].is_string());
    // A chat admin deletes the customer's message; the customer cannot delete the admin's.
    let theirs = say(&app, &admin, chat, "welcome").await;
    app.delete(
        &format!("/api/v1/chats/{chat}/messages/{}", id(&theirs)),
        Some(&customer.token),
    )
    .await
    .problem(403);
    app.delete(&path, Some(&admin.token)).await.ok(204);
    app.delete(&path, Some(&admin.token)).await.ok(204);
    app.patch(&path, Some(&customer.token), json!({"body": "again"}))
        .await
        .problem(409);
    let history = app
        .all_pages(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&customer.token),
        )
        .await;
    let tombstone = history
        .iter()
        .find(|m| m["id"] == mine["id"])
        .expect("kept");
    assert_eq!(tombstone["deleted"], true);
    assert!(tombstone["body"].is_null() && tombstone["file"].is_null());
}

#[actix_rt::test]
async fn history_pages_have_no_gaps_or_repeats_while_messages_arrive() {
    // Some 30 messages in a burst: more than the default message burst.
    let app = TestApp::builder()
        .env("STOCKROOM_MESSAGE_BURST", "1000")
        .spawn()
        .await;
    let worker = app.worker("hal").await;
    let customer = app.customer("hope").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    for i in 0..20 {
        say(&app, &worker, chat, &format!("old {i}")).await;
    }
    let base = format!("/api/v1/chats/{chat}/messages");
    let first = app
        .get(&format!("{base}?limit=6"), Some(&customer.token))
        .await
        .ok(200);
    let newest = id(&first["data"][0]);
    let mut seen: Vec<i64> = first["data"].as_array().unwrap().iter().map(id).collect();
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    let mut arrived = Vec::new();
    while let Some(c) = cursor {
        // Messages keep arriving while the client pages back.
        for _ in 0..2 {
            arrived.push(id(&say(&app, &worker, chat, "new").await));
        }
        let page = app
            .get(&format!("{base}?limit=6&cursor={c}"), Some(&customer.token))
            .await
            .ok(200);
        seen.extend(page["data"].as_array().unwrap().iter().map(id));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first");
    sorted.dedup();
    assert_eq!(sorted.len(), 20, "every old message once: {seen:?}");
    // Forward from the newest seen: exactly what arrived meanwhile.
    let later = app
        .all_pages(
            &format!("{base}?after={newest}&limit=4"),
            Some(&customer.token),
        )
        .await;
    let mut later: Vec<i64> = later.iter().map(id).collect();
    later.sort_unstable();
    assert_eq!(later, arrived);
}

#[actix_rt::test]
async fn a_client_id_stores_one_message_however_often_it_is_sent() {
    let app = TestApp::spawn().await;
    let worker = app.worker("ivy").await;
    let customer = app.customer("ike").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    let path = format!("/api/v1/chats/{chat}/messages");
    let answers = join_all((0..16).map(|_| {
        app.post(
            &path,
            Some(&customer.token),
            json!({"body": "two boxes please", "client_id": "order-7f3a"}),
        )
    }))
    .await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let replayed = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!((created, replayed), (1, 15));
    let ids: std::collections::BTreeSet<i64> = answers.iter().map(|a| id(&a.json())).collect();
    assert_eq!(ids.len(), 1);
    let history = app.all_pages(&path, Some(&worker.token)).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["client_id"], "order-7f3a");
    // The same client_id from someone else is their own message.
    app.post(
        &path,
        Some(&worker.token),
        json!({"body": "sure", "client_id": "order-7f3a"}),
    )
    .await
    .ok(201);
}

#[actix_rt::test]
async fn unread_counts_follow_the_read_marker_which_never_moves_back() {
    let app = TestApp::spawn().await;
    let worker = app.worker("uma").await;
    let customer = app.customer("ugo").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    let group = app
        .post(
            "/api/v1/chats",
            Some(&worker.token),
            json!({"kind": "group", "title": "News", "member_ids": [customer.id]}),
        )
        .await
        .ok(201);
    let m1 = say(&app, &worker, chat, "one").await;
    let m2 = say(&app, &worker, chat, "two").await;
    say(&app, &worker, id(&group), "group news").await;
    let m3 = say(&app, &worker, chat, "three").await;
    let chats = app
        .get("/api/v1/chats", Some(&customer.token))
        .await
        .ok(200);
    let list = chats["data"].as_array().unwrap();
    assert_eq!(id(&list[0]), chat, "newest activity first");
    assert_eq!(list[0]["unread_count"], 3);
    assert_eq!(list[0]["last_message"]["body"], "three");
    assert_eq!(list[1]["unread_count"], 1);
    // The worker's own messages are not unread to them.
    let theirs = app.get("/api/v1/chats", Some(&worker.token)).await.ok(200);
    assert_eq!(theirs["data"][0]["unread_count"], 0);
    let dashboard = app
        .get("/api/v1/dashboard", Some(&customer.token))
        .await
        .ok(200);
    assert_eq!(dashboard["counts"]["unread_messages"], 4);
    let read = format!("/api/v1/chats/{chat}/read");
    let state = app
        .post(
            &read,
            Some(&customer.token),
            json!({"up_to_message_id": id(&m2)}),
        )
        .await
        .ok(200);
    assert_eq!(state["unread_count"], 1);
    assert_eq!(state["last_read_message_id"], m2["id"]);
    let state = app
        .post(
            &read,
            Some(&customer.token),
            json!({"up_to_message_id": id(&m1)}),
        )
        .await
        .ok(200);
    assert_eq!(state["last_read_message_id"], m2["id"], "never backwards");
    let state = app
        .post(
            &read,
            Some(&customer.token),
            json!({"up_to_message_id": 1_000_000_000}),
        )
        .await
        .ok(200);
    assert_eq!(state["unread_count"], 0);
    assert_eq!(
        state["last_read_message_id"], m3["id"],
        "clamped to the newest"
    );
    let dashboard = app
        .get("/api/v1/dashboard", Some(&customer.token))
        .await
        .ok(200);
    assert_eq!(dashboard["counts"]["unread_messages"], 1);
    app.post(
        &read,
        Some(&customer.token),
        json!({"up_to_message_id": -1}),
    )
    .await
    .problem(422);
}

#[actix_rt::test]
async fn an_erased_customer_is_shown_as_deleted_in_the_history() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olive").await;
    let customer = app.customer("gone").await;
    let chat = id(&direct(&app, &customer, owner.id).await);
    say(&app, &customer, chat, "please delete my account").await;
    app.delete(
        &format!("/api/v1/customers/{}", customer.id),
        Some(&owner.token),
    )
    .await
    .ok(204);
    let history = app
        .all_pages(
            &format!("/api/v1/chats/{chat}/messages"),
            Some(&owner.token),
        )
        .await;
    let author = &history[0]["author"];
    assert_eq!(author, &json!({"id": customer.id, "deleted": true}));
}

/// On PostgreSQL a send waits for its chat's row lock. Sends piling up on one chat wait for
/// their turn in the process, holding no pooled connection, so the rest of the store keeps
/// working (before, they took every connection and other requests got 503).
#[actix_rt::test]
async fn sends_queued_on_a_busy_chat_leave_the_pool_to_everyone_else() {
    if !crate::common::is_postgres() {
        return; // SQLite has one writer and no row locks to wait on.
    }
    use diesel::{Connection, RunQueryDsl};
    let app = TestApp::builder()
        .env("STOCKROOM_DB_POOL_SIZE", "3")
        .env("STOCKROOM_DB_TIMEOUT_MS", "10000")
        .spawn()
        .await;
    let worker = app.worker("wim").await;
    let customer = app.customer("cleo").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    // Someone else (an operator, another process's long transaction) holds the chat's lock.
    let mut holder = diesel::PgConnection::establish(&app.database_url).expect("connect");
    diesel::sql_query("BEGIN").execute(&mut holder).unwrap();
    diesel::sql_query(format!("SELECT id FROM chats WHERE id = {chat} FOR UPDATE"))
        .execute(&mut holder)
        .unwrap();
    let sends = 6;
    let path = format!("/api/v1/chats/{chat}/messages");
    let sent = join_all((0..sends).map(|n| {
        app.post(
            &path,
            Some(&customer.token),
            json!({"kind": "text", "body": format!("message {n}")}),
        )
    }));
    let meanwhile = async {
        // Every send has reached the server and holds or waits for the chat's turn.
        let queued = async {
            while app.state.chat_turns.entered(&chat) < sends {
                actix_rt::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        actix_rt::time::timeout(std::time::Duration::from_secs(30), queued)
            .await
            .expect("every send queues for the chat's turn");
        // A request that needs a connection is served at once, not after the pool's timeout.
        let chats = app.get("/api/v1/chats", Some(&worker.token)).await;
        diesel::sql_query("COMMIT").execute(&mut holder).unwrap();
        chats
    };
    let (sent, chats) = futures::join!(sent, meanwhile);
    chats.ok(200);
    for response in sent {
        response.ok(201);
    }
    let history = app.get(&path, Some(&worker.token)).await.ok(200);
    assert_eq!(history["data"].as_array().unwrap().len(), sends);
}
