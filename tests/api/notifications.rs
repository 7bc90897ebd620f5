//! Notifications: raised by messages, requests, expiring and low stock; read, read-all,
//! pushed on the socket; each cause once, however often and from however many processes the
//! scan runs.

use chrono::{Duration, NaiveDate, Utc};
use serde_json::{json, Value};

use crate::chat::{direct, id, mute, say};
use crate::common::{Session, TestApp};

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn day(offset: i64) -> String {
    (today() + Duration::days(offset)).to_string()
}

/// Every notification of `who`, newest first (all pages).
async fn notifications(app: &TestApp, who: &Session) -> Vec<Value> {
    app.all_pages("/api/v1/notifications", Some(&who.token))
        .await
}

async fn unread(app: &TestApp, who: &Session) -> Vec<Value> {
    app.all_pages("/api/v1/notifications?unread=true", Some(&who.token))
        .await
}

/// `who`'s notifications of one type.
async fn of_type(app: &TestApp, who: &Session, kind: &str) -> Vec<Value> {
    notifications(app, who)
        .await
        .into_iter()
        .filter(|n| n["type"] == kind)
        .collect()
}

async fn new_item(app: &TestApp, who: &Session, body: Value) -> i64 {
    id(&app
        .post("/api/v1/items", Some(&who.token), body)
        .await
        .ok(201))
}

/// One scan as of `today + offset` days, in this process.
async fn scan(app: &TestApp, offset: i64) -> stockroom::server::AlertScan {
    stockroom::server::scan_alerts(&app.state, today() + Duration::days(offset))
        .await
        .expect("the scan runs")
}

#[actix_rt::test]
async fn a_chat_notifies_once_until_read_and_not_when_muted() {
    let app = TestApp::spawn().await;
    let worker = app.worker("wren").await;
    let customer = app.customer("cora").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    let first = say(&app, &worker, chat, "your order is ready").await;
    say(&app, &worker, chat, "shall I keep it?").await;
    let last = say(&app, &worker, chat, "until Friday").await;

    let mine = notifications(&app, &customer).await;
    assert_eq!(mine.len(), 1, "one per chat, not one per message: {mine:?}");
    let n = &mine[0];
    assert_eq!(n["type"], "message");
    assert_eq!(n["count"], 3);
    assert_eq!(n["read"], false);
    assert_eq!(n["link"]["type"], "chat");
    assert_eq!(n["link"]["id"], chat);
    assert_eq!(n["link"]["path"], format!("/api/v1/chats/{chat}/messages"));
    assert!(n["body"]
        .as_str()
        .is_some_and(|b| b.contains("until Friday")));
    assert!(
        notifications(&app, &worker)
            .await
            .iter()
            .all(|n| n["type"] != "message"),
        "the author is not notified of their own messages"
    );
    let dash = app
        .get("/api/v1/dashboard", Some(&customer.token))
        .await
        .ok(200);
    assert_eq!(dash["counts"]["unread_notifications"], 1);

    // Reading part of the chat leaves it unread; reading all of it reads the notification.
    let read = format!("/api/v1/chats/{chat}/read");
    app.post(
        &read,
        Some(&customer.token),
        json!({"up_to_message_id": id(&first)}),
    )
    .await
    .ok(200);
    assert_eq!(unread(&app, &customer).await.len(), 1);
    app.post(
        &read,
        Some(&customer.token),
        json!({"up_to_message_id": id(&last)}),
    )
    .await
    .ok(200);
    assert!(unread(&app, &customer).await.is_empty());

    // The next message opens a new one.
    say(&app, &worker, chat, "one more thing").await;
    let open = unread(&app, &customer).await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["count"], 1);
    assert_ne!(open[0]["id"], n["id"]);

    // Muted: nothing new, though the message still arrives on the socket.
    mute(&app, &customer, chat).await;
    let mut socket = app.socket(&customer.token, None).await;
    let before = notifications(&app, &customer).await;
    say(&app, &worker, chat, "muted?").await;
    assert_eq!(
        socket.event("message.created").await["data"]["body"],
        "muted?"
    );
    let after = notifications(&app, &customer).await;
    assert_eq!(after.len(), before.len());
    assert_eq!(
        after[0]["count"], 1,
        "a muted chat does not add to the open one"
    );
    socket.nothing_pending().await;

    // Unmuted, the open notification grows again.
    let unmuted = app
        .patch(
            &format!("/api/v1/chats/{chat}"),
            Some(&customer.token),
            json!({"muted": false}),
        )
        .await
        .ok(200);
    assert_eq!(unmuted["muted"], false);
    say(&app, &worker, chat, "unmuted").await;
    assert_eq!(unread(&app, &customer).await[0]["count"], 2);
}

#[actix_rt::test]
async fn notifications_are_read_one_by_one_or_all_and_only_by_their_owner() {
    let app = TestApp::spawn().await;
    let worker = app.worker("wade").await;
    let ann = app.customer("ann").await;
    let bob = app.customer("bob").await;
    for who in [&ann, &bob] {
        let chat = id(&direct(&app, who, worker.id).await);
        say(&app, &worker, chat, "hello").await;
    }
    let mine = unread(&app, &ann).await;
    assert_eq!(mine.len(), 1);
    let nid = id(&mine[0]);
    let path = format!("/api/v1/notifications/{nid}/read");

    // Bob can neither read nor mark Ann's.
    app.post(&path, Some(&bob.token), json!({}))
        .await
        .problem(404);
    app.post(
        "/api/v1/notifications/read-all",
        Some(&bob.token),
        json!({}),
    )
    .await
    .ok(200);
    assert_eq!(
        unread(&app, &ann).await.len(),
        1,
        "Bob's read-all left Ann's alone"
    );
    assert!(notifications(&app, &bob)
        .await
        .iter()
        .all(|n| n["id"] != nid));
    app.post(
        "/api/v1/notifications/999999/read",
        Some(&ann.token),
        json!({}),
    )
    .await
    .problem(404);

    let read = app.post(&path, Some(&ann.token), json!({})).await.ok(200);
    assert_eq!(read["read"], true);
    let read_at = read["read_at"].as_str().expect("read_at").to_owned();
    let again = app.post(&path, Some(&ann.token), json!({})).await.ok(200);
    assert_eq!(
        again["read_at"],
        read_at.as_str(),
        "the first read time stays"
    );
    assert!(unread(&app, &ann).await.is_empty());
    assert_eq!(notifications(&app, &ann).await.len(), 1);

    // Worker: requests raise theirs; read-all clears every one and says how many.
    for n in 0..3 {
        let item = new_item(
            &app,
            &worker,
            json!({"name": format!("thing {n}"), "kind": "non_perishable", "quantity": 50}),
        )
        .await;
        app.post(
            "/api/v1/replenishment-requests",
            Some(&ann.token),
            json!({"item_id": item, "quantity": 1}),
        )
        .await
        .ok(201);
    }
    let open = unread(&app, &worker).await.len();
    assert_eq!(open, 3);
    let page = app
        .get(
            "/api/v1/notifications?unread=true&limit=2",
            Some(&worker.token),
        )
        .await
        .ok(200);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
    assert!(page["next_cursor"].is_string());
    let ids: Vec<i64> = page["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(id)
        .collect();
    assert!(ids[0] > ids[1], "newest first");
    let all = app
        .post(
            "/api/v1/notifications/read-all",
            Some(&worker.token),
            json!({}),
        )
        .await
        .ok(200);
    assert_eq!(all["marked_read"], open);
    assert!(unread(&app, &worker).await.is_empty());
    let dash = app
        .get("/api/v1/dashboard", Some(&worker.token))
        .await
        .ok(200);
    assert_eq!(dash["counts"]["unread_notifications"], 0);
}

#[actix_rt::test]
async fn requests_notify_staff_when_made_and_their_customer_when_settled() {
    let app = TestApp::spawn().await;
    let worker = app.worker("wynn").await;
    let customer = app.customer("cleo").await;
    let item = new_item(
        &app,
        &worker,
        json!({"name": "Rice", "kind": "non_perishable", "quantity": 40, "min_quantity": 2}),
    )
    .await;
    let ask = |quantity: i64| {
        app.post(
            "/api/v1/replenishment-requests",
            Some(&customer.token),
            json!({"item_id": item, "quantity": quantity}),
        )
    };
    let fulfilled = id(&ask(3).await.ok(201));
    let rejected = id(&ask(4).await.ok(201));
    let cancelled = id(&ask(5).await.ok(201));

    // Staff hear of each request.
    {
        let made = of_type(&app, &worker, "request_created").await;
        let ids: Vec<i64> = made
            .iter()
            .map(|n| n["link"]["id"].as_i64().unwrap_or(0))
            .collect();
        assert_eq!(ids, vec![cancelled, rejected, fulfilled]);
        assert_eq!(made[0]["link"]["type"], "request");
        assert_eq!(
            made[0]["link"]["path"],
            format!("/api/v1/replenishment-requests/{cancelled}")
        );
        assert!(made[2]["body"].as_str().is_some_and(|b| b.contains("Rice")));
    }
    assert!(of_type(&app, &customer, "request_created").await.is_empty());

    let decide = |id: i64, action: &str, who: &Session, body: Value| {
        let path = format!("/api/v1/replenishment-requests/{id}/{action}");
        let token = who.token.clone();
        let app = &app;
        async move { app.post(&path, Some(&token), body).await.ok(200) }
    };
    decide(fulfilled, "fulfil", &worker, json!({})).await;
    decide(
        rejected,
        "reject",
        &worker,
        json!({"reason": "out of season"}),
    )
    .await;
    decide(cancelled, "cancel", &customer, json!({})).await;
    let kinds: Vec<(String, i64)> = notifications(&app, &customer)
        .await
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap_or("").to_owned(),
                n["link"]["id"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("request_cancelled".to_owned(), cancelled),
            ("request_rejected".to_owned(), rejected),
            ("request_fulfilled".to_owned(), fulfilled),
        ]
    );
    let rejection = &of_type(&app, &customer, "request_rejected").await[0];
    assert!(rejection["body"]
        .as_str()
        .is_some_and(|b| b.contains("out of season")));
}

#[actix_rt::test]
async fn stock_notifies_staff_once_per_cause_and_again_after_a_restock() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olga").await;
    let customer = app.customer("carmen").await;
    let milk = new_item(
        &app,
        &owner,
        json!({"name": "Milk", "kind": "perishable", "quantity": 10, "expiry_date": day(3), "min_quantity": 5, "unit": "l"}),
    )
    .await;
    // Within the 7-day window at once, not expired, not low.
    let expiring = of_type(&app, &owner, "batch_expiring").await;
    assert_eq!(expiring.len(), 1);
    assert_eq!(expiring[0]["link"]["type"], "batch");
    assert_eq!(expiring[0]["link"]["path"], format!("/api/v1/items/{milk}"));
    assert!(of_type(&app, &owner, "low_stock").await.is_empty());
    assert!(
        of_type(&app, &customer, "batch_expiring").await.is_empty(),
        "staff only"
    );

    // A batch recorded already expired notifies "expired" only.
    app.post(
        &format!("/api/v1/items/{milk}/batches"),
        Some(&owner.token),
        json!({"quantity": 2, "expiry_date": day(-1), "lot_code": "OLD"}),
    )
    .await
    .ok(201);
    let expired = of_type(&app, &owner, "batch_expired").await;
    assert_eq!(expired.len(), 1);
    assert!(expired[0]["body"]
        .as_str()
        .is_some_and(|b| b.contains("OLD")));
    assert_eq!(of_type(&app, &owner, "batch_expiring").await.len(), 1);

    // Falling to the reorder level notifies once; falling further does not.
    let adjust = |delta: i64, reason: &'static str| {
        let token = owner.token.clone();
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/items/{milk}/adjustments"),
                Some(&token),
                json!({"delta": delta, "reason": reason}),
            )
            .await
            .ok(201);
        }
    };
    adjust(-7, "waste").await; // takes the 2 expired first, then 5: 5 left
    let low = of_type(&app, &owner, "low_stock").await;
    assert_eq!(low.len(), 1);
    assert_eq!(low[0]["link"]["type"], "item");
    assert_eq!(low[0]["link"]["id"], milk);
    adjust(-1, "consume").await;

    // Three scans, today: nothing new.
    let before = notifications(&app, &owner).await.len();
    for _ in 0..3 {
        scan(&app, 0).await;
    }
    assert_eq!(notifications(&app, &owner).await.len(), before);
    assert_eq!(of_type(&app, &owner, "low_stock").await.len(), 1);

    // Restocked above the level, then low again: a new notification.
    let batch = app
        .post(
            &format!("/api/v1/items/{milk}/batches"),
            Some(&owner.token),
            json!({"quantity": 20, "expiry_date": day(30)}),
        )
        .await
        .ok(201);
    assert_eq!(of_type(&app, &owner, "low_stock").await.len(), 1);
    app.post(
        &format!("/api/v1/items/{milk}/adjustments"),
        Some(&owner.token),
        json!({"delta": -20, "reason": "consume", "batch_id": id(&batch)}),
    )
    .await
    .ok(201);
    assert_eq!(of_type(&app, &owner, "low_stock").await.len(), 2);

    // The calendar moves: four days on, the first batch has expired (once, however often
    // the scan runs).
    for _ in 0..3 {
        scan(&app, 4).await;
    }
    let expired = of_type(&app, &owner, "batch_expired").await;
    assert_eq!(expired.len(), 2, "{expired:?}");
    assert_eq!(of_type(&app, &owner, "batch_expiring").await.len(), 1);
}

#[actix_rt::test]
async fn a_holding_notifies_its_customer_when_it_starts_expiring_and_when_it_expires() {
    let app = TestApp::spawn().await;
    let worker = app.worker("will").await;
    let customer = app.customer("cyra").await;
    let other = app.customer("cid").await;
    let yogurt = new_item(
        &app,
        &worker,
        json!({"name": "Yogurt", "kind": "perishable", "quantity": 10, "expiry_date": day(10)}),
    )
    .await;
    let request = id(&app
        .post(
            "/api/v1/replenishment-requests",
            Some(&customer.token),
            json!({"item_id": yogurt, "quantity": 2}),
        )
        .await
        .ok(201));
    app.post(
        &format!("/api/v1/replenishment-requests/{request}/fulfil"),
        Some(&worker.token),
        json!({}),
    )
    .await
    .ok(200);
    assert!(
        of_type(&app, &customer, "holding_expiring")
            .await
            .is_empty(),
        "10 days out"
    );

    scan(&app, 4).await;
    let expiring = of_type(&app, &customer, "holding_expiring").await;
    assert_eq!(expiring.len(), 1);
    assert_eq!(expiring[0]["link"]["type"], "holding");
    assert_eq!(expiring[0]["link"]["path"], "/api/v1/me/inventory");
    scan(&app, 5).await;
    assert_eq!(of_type(&app, &customer, "holding_expiring").await.len(), 1);
    assert!(of_type(&app, &customer, "holding_expired").await.is_empty());

    scan(&app, 11).await;
    scan(&app, 12).await;
    assert_eq!(of_type(&app, &customer, "holding_expired").await.len(), 1);
    assert_eq!(of_type(&app, &customer, "holding_expiring").await.len(), 1);
    assert!(
        notifications(&app, &other).await.is_empty(),
        "only its own customer"
    );
}

#[actix_rt::test]
async fn notifications_are_pushed_on_the_socket_and_replayed_after_since() {
    let app = TestApp::spawn().await;
    let worker = app.worker("wolf").await;
    let customer = app.customer("cato").await;
    let chat = id(&direct(&app, &customer, worker.id).await);
    let mut socket = app.socket(&customer.token, None).await;
    say(&app, &worker, chat, "ping").await;
    let message = socket.event("message.created").await;
    let pushed = socket.event("notification.created").await;
    assert_eq!(
        pushed["seq"].as_i64(),
        message["seq"].as_i64().map(|s| s + 1)
    );
    assert_eq!(pushed["data"]["type"], "message");
    assert_eq!(pushed["data"]["link"]["id"], chat);
    let stored = &notifications(&app, &customer).await[0];
    assert_eq!(pushed["data"]["id"], stored["id"]);
    // A second message adds to the open notification: no new notification event.
    say(&app, &worker, chat, "pong").await;
    socket.event("message.created").await;
    socket.nothing_pending().await;
    socket.close().await;

    // Reconnecting from before the first message replays the notification in its place.
    let since = message["seq"].as_i64().expect("seq") - 1;
    let mut again = app.socket(&customer.token, Some(since)).await;
    let replayed = again.take(3).await;
    let kinds: Vec<&str> = replayed
        .iter()
        .map(|f| f["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["message.created", "notification.created", "message.created"]
    );
    assert_eq!(replayed[1]["data"]["id"], stored["id"]);
}

#[actix_rt::test]
async fn two_processes_scanning_at_once_notify_each_cause_once() {
    let first = TestApp::spawn().await;
    let second = TestApp::builder().same_database_as(&first).spawn().await;
    let owner = first.owner("oona").await;
    // Forty items whose batches enter their window twenty days from now, and whose single
    // batch expires at thirty: both processes scan those days at the same moment.
    for n in 0..40 {
        new_item(
            &first,
            &owner,
            json!({"name": format!("jar {n}"), "kind": "perishable", "quantity": 3, "expiry_date": day(25)}),
        )
        .await;
    }
    assert!(of_type(&first, &owner, "batch_expiring").await.is_empty());
    for offset in [20, 20, 26, 26] {
        let (a, b) = tokio::join!(scan(&first, offset), scan(&second, offset));
        assert!(
            a.items + b.items <= 40 + 40,
            "each due item is taken by few scans"
        );
    }
    assert_eq!(of_type(&first, &owner, "batch_expiring").await.len(), 40);
    assert_eq!(of_type(&second, &owner, "batch_expired").await.len(), 40);
    // With its only batch expired, each item has nothing available: low stock.
    assert_eq!(of_type(&second, &owner, "low_stock").await.len(), 40);
    // Each notification is in the owner's stream once as well.
    let mut socket = first.socket(&owner.token, Some(0)).await;
    let frames = socket.take(120).await;
    let mut ids: Vec<i64> = frames
        .iter()
        .filter(|f| f["type"] == "notification.created")
        .map(|f| id(&f["data"]))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 120);
    socket.nothing_pending().await;
}

#[actix_rt::test]
async fn an_import_is_checked_by_the_scan_it_wakes() {
    let app = TestApp::spawn().await;
    let owner = app.owner("otto").await;
    let csv = format!(
        "name,kind,quantity,expiry_date,min_quantity\nCream,perishable,4,{},0\n",
        day(2)
    );
    let req = app
        .request(actix_web::http::Method::POST, "/api/v1/items/import")
        .insert_header(("Authorization", format!("Bearer {}", owner.token)))
        .insert_header(("Content-Type", "text/csv"));
    app.send_bytes(req, csv.into_bytes()).await.ok(200);
    // The scan runs in the background, woken by the import: wait for its event.
    let mut socket = app.socket(&owner.token, Some(0)).await;
    let pushed = socket.event("notification.created").await;
    assert_eq!(pushed["data"]["type"], "batch_expiring");
    assert_eq!(of_type(&app, &owner, "batch_expiring").await.len(), 1);
}
