//! Many clients writing at once: the database queues writers, it never answers "busy".
//! On SQLite this is the case that failed before write transactions began `IMMEDIATE`: a
//! transaction that read first could not take the write lock once another writer had
//! committed, and SQLite refused at once instead of waiting out the busy timeout.

use futures::future::join_all;
use serde_json::json;

use crate::common::{TestApp, TestResponse};
use crate::files::{image_bytes, upload};

const CLIENTS: usize = 16;
const ROUNDS: usize = 12;

/// Fails on any 5xx, naming what answered it.
#[track_caller]
fn no_server_error(what: &str, res: &TestResponse) {
    assert!(
        res.status < 500,
        "{what} answered {}: {}",
        res.status,
        res.text()
    );
}

#[actix_web::test]
async fn concurrent_writers_are_queued_never_refused() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olga").await;
    let staff = owner.token.clone();
    let item = app
        .post(
            "/api/v1/items",
            Some(&staff),
            json!({"name": "Flour", "kind": "non_perishable", "min_quantity": 0, "quantity": 10_000}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .expect("id");
    let png = image_bytes(8, 8, image::ImageFormat::Png);

    let clients = (0..CLIENTS).map(|n| {
        let app = &app;
        let staff = staff.clone();
        let png = png.clone();
        async move {
            let mut answered = 0usize;
            // Sign-up and login: both read (is the name taken? the user) before writing.
            let username = format!("client{n}");
            let res = app
                .post(
                    "/api/v1/auth/register",
                    None,
                    json!({"username": username, "email": format!("{username}@example.com"),
                           "password": crate::common::PASSWORD}),
                )
                .await;
            no_server_error("register", &res);
            assert_eq!(res.status, 201, "{}", res.text());
            let mut token = String::new();
            for _ in 0..ROUNDS {
                let res = app.login(&username, crate::common::PASSWORD).await;
                no_server_error("login", &res);
                assert_eq!(res.status, 200, "{}", res.text());
                token = res.json()["access_token"]
                    .as_str()
                    .expect("token")
                    .to_owned();
                // Restocks and removals of one item from every client at once.
                for delta in [5, -3] {
                    let reason = if delta > 0 { "restock" } else { "consume" };
                    let res = app
                        .post(
                            &format!("/api/v1/items/{item}/adjustments"),
                            Some(&staff),
                            json!({"delta": delta, "reason": reason}),
                        )
                        .await;
                    no_server_error("adjustment", &res);
                    assert_eq!(res.status, 201, "{}", res.text());
                }
                answered += 3;
            }
            // A request, fulfilled by staff while everyone else writes.
            let res = app
                .post(
                    "/api/v1/replenishment-requests",
                    Some(&token),
                    json!({"item_id": item, "quantity": 2}),
                )
                .await;
            no_server_error("request", &res);
            assert_eq!(res.status, 201, "{}", res.text());
            let request = res.json()["id"].as_i64().expect("request id");
            let res = app
                .post(
                    &format!("/api/v1/replenishment-requests/{request}/fulfil"),
                    Some(&staff),
                    json!({}),
                )
                .await;
            no_server_error("fulfilment", &res);
            assert_eq!(res.status, 200, "{}", res.text());
            // An upload (the blob and the file row are written together).
            let session = crate::common::Session {
                id: 0,
                username: username.clone(),
                token: token.clone(),
                refresh_token: String::new(),
            };
            let res = upload(app, &session, &[("files", "dot.png", &png)]).await;
            no_server_error("upload", &res);
            assert_eq!(res.status, 201, "{}", res.text());
            answered + 3
        }
    });
    let answered: usize = join_all(clients).await.into_iter().sum();
    assert_eq!(answered, CLIENTS * (ROUNDS * 3 + 3));

    // Every acknowledged change is there, and the ledger still sums to the stock.
    let stock = app
        .get(&format!("/api/v1/items/{item}"), Some(&staff))
        .await
        .ok(200)["quantity"]
        .as_i64()
        .expect("quantity");
    let expected = 10_000 + (CLIENTS * ROUNDS) as i64 * (5 - 3) - CLIENTS as i64 * 2;
    assert_eq!(stock, expected);
    assert_eq!(app.ledger_sum(&staff, item).await, expected);
}
