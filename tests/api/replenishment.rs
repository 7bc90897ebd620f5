use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::common::{is_postgres, Session, TestApp};

fn day(offset: i64) -> String {
    (Utc::now().date_naive() + Duration::days(offset)).to_string()
}

async fn new_item(app: &TestApp, s: &Session, body: Value) -> i64 {
    app.post("/api/v1/items", Some(&s.token), body)
        .await
        .ok(201)["id"]
        .as_i64()
        .expect("id")
}

async fn request(app: &TestApp, c: &Session, item: i64, quantity: i64) -> i64 {
    let r = app
        .post(
            "/api/v1/replenishment-requests",
            Some(&c.token),
            json!({"item_id": item, "quantity": quantity}),
        )
        .await
        .ok(201);
    assert_eq!(r["status"], "pending");
    r["id"].as_i64().expect("id")
}

fn data(v: &Value) -> &Vec<Value> {
    v["data"].as_array().expect("data")
}

#[actix_web::test]
async fn fulfilment_moves_unexpired_stock_into_holdings() {
    let app = TestApp::spawn().await;
    let w = app.worker("wes").await;
    let c = app.customer("cleo").await;
    let other = app.customer("olaf").await;
    let milk = new_item(
        &app,
        &w,
        json!({"name": "Milk", "kind": "perishable", "quantity": 3, "expiry_date": day(-1)}),
    )
    .await;
    app.post(
        &format!("/api/v1/items/{milk}/batches"),
        Some(&w.token),
        json!({"quantity": 2, "expiry_date": day(3)}),
    )
    .await
    .ok(201);
    app.post(
        &format!("/api/v1/items/{milk}/batches"),
        Some(&w.token),
        json!({"quantity": 4, "expiry_date": day(20)}),
    )
    .await
    .ok(201);

    let r = request(&app, &c, milk, 5).await;
    // Another customer cannot see, cancel or fulfil it.
    app.get(
        &format!("/api/v1/replenishment-requests/{r}"),
        Some(&other.token),
    )
    .await
    .problem(404);
    app.post(
        &format!("/api/v1/replenishment-requests/{r}/cancel"),
        Some(&other.token),
        json!({}),
    )
    .await
    .problem(404);
    app.post(
        &format!("/api/v1/replenishment-requests/{r}/fulfil"),
        Some(&c.token),
        json!({}),
    )
    .await
    .problem(403);
    app.post(
        &format!("/api/v1/replenishment-requests/{r}/cancel"),
        Some(&w.token),
        json!({}),
    )
    .await
    .problem(403);

    // 6 unexpired units, the expired 3 are never handed out.
    let too_much = request(&app, &c, milk, 7).await;
    app.post(
        &format!("/api/v1/replenishment-requests/{too_much}/fulfil"),
        Some(&w.token),
        json!({}),
    )
    .await
    .problem(409);
    let still = app
        .get(
            &format!("/api/v1/replenishment-requests/{too_much}"),
            Some(&c.token),
        )
        .await
        .ok(200);
    assert_eq!(still["status"], "pending");

    let done = app
        .post(
            &format!("/api/v1/replenishment-requests/{r}/fulfil"),
            Some(&w.token),
            json!({}),
        )
        .await
        .ok(200);
    assert_eq!(done["status"], "fulfilled");
    assert_eq!(done["decided_by"], w.id);
    app.post(
        &format!("/api/v1/replenishment-requests/{r}/fulfil"),
        Some(&w.token),
        json!({}),
    )
    .await
    .problem(409);
    app.post(
        &format!("/api/v1/replenishment-requests/{r}/reject"),
        Some(&w.token),
        json!({}),
    )
    .await
    .problem(409);
    app.post(
        &format!("/api/v1/replenishment-requests/{r}/cancel"),
        Some(&c.token),
        json!({}),
    )
    .await
    .problem(409);

    let item = app
        .get(&format!("/api/v1/items/{milk}"), Some(&w.token))
        .await
        .ok(200);
    assert_eq!(item["quantity"], 4); // 3 expired + 1 left of the day-20 batch
    assert_eq!(item["available_quantity"], 1);
    let ledger = app
        .get(&format!("/api/v1/items/{milk}/movements"), Some(&w.token))
        .await
        .ok(200);
    let fulfilment: Vec<_> = data(&ledger)
        .iter()
        .filter(|m| m["reason"] == "fulfilment")
        .collect();
    assert_eq!(fulfilment.len(), 2);
    let sum: i64 = data(&ledger)
        .iter()
        .map(|m| m["delta"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(sum, 4);

    let mine = app
        .get("/api/v1/me/inventory", Some(&c.token))
        .await
        .ok(200);
    let holdings = data(&mine);
    assert_eq!(holdings.len(), 2);
    assert_eq!(
        (
            holdings[0]["quantity"].as_i64(),
            holdings[0]["expiry_date"].as_str()
        ),
        (Some(2), Some(day(3).as_str()))
    );
    assert_eq!(
        (
            holdings[1]["quantity"].as_i64(),
            holdings[1]["expiry_date"].as_str()
        ),
        (Some(3), Some(day(20).as_str()))
    );
    assert_eq!(holdings[0]["name"], "Milk");
    assert_eq!(holdings[0]["expiring"], true);
    assert_eq!(
        data(
            &app.get("/api/v1/me/inventory", Some(&other.token))
                .await
                .ok(200)
        )
        .len(),
        0
    );

    // Staff read it; the customer cannot read another's.
    let staff_view = app
        .get(
            &format!("/api/v1/customers/{}/inventory", c.id),
            Some(&w.token),
        )
        .await
        .ok(200);
    assert_eq!(data(&staff_view).len(), 2);
    app.get(
        &format!("/api/v1/customers/{}/inventory", c.id),
        Some(&other.token),
    )
    .await
    .problem(403);
    app.get(
        &format!("/api/v1/customers/{}/inventory", w.id),
        Some(&w.token),
    )
    .await
    .problem(404);

    let detail = app
        .get(&format!("/api/v1/customers/{}", c.id), Some(&w.token))
        .await
        .ok(200);
    assert_eq!(detail["inventory_summary"]["holdings"], 2);
    assert_eq!(detail["open_requests"].as_array().map(Vec::len), Some(1));
    assert_eq!(detail["username"], "cleo");
}

#[actix_web::test]
async fn customers_keep_their_own_inventory() {
    let app = TestApp::spawn().await;
    let w = app.worker("wyn").await;
    let c = app.customer("cass").await;
    let other = app.customer("oona").await;
    let soap = new_item(
        &app,
        &w,
        json!({"name": "Soap", "kind": "non_perishable", "quantity": 10}),
    )
    .await;
    let r = request(&app, &c, soap, 4).await;
    app.post(
        &format!("/api/v1/replenishment-requests/{r}/fulfil"),
        Some(&w.token),
        json!({}),
    )
    .await
    .ok(200);
    let holding = data(
        &app.get("/api/v1/me/inventory", Some(&c.token))
            .await
            .ok(200),
    )[0]
    .clone();
    let id = holding["id"].as_i64().expect("id");
    assert_eq!(holding["needs_replenishment"], false);

    let patched = app
        .patch(
            &format!("/api/v1/me/inventory/{id}"),
            Some(&c.token),
            json!({"quantity": 1, "min_quantity": 2}),
        )
        .await
        .ok(200);
    assert_eq!(patched["quantity"], 1);
    assert_eq!(patched["needs_replenishment"], true);
    app.patch(
        &format!("/api/v1/me/inventory/{id}"),
        Some(&c.token),
        json!({"quantity": -1}),
    )
    .await
    .problem(422);
    app.patch(
        &format!("/api/v1/me/inventory/{id}"),
        Some(&other.token),
        json!({"quantity": 0}),
    )
    .await
    .problem(404);
    app.delete(&format!("/api/v1/me/inventory/{id}"), Some(&other.token))
        .await
        .problem(404);

    let low = app
        .get(
            "/api/v1/me/inventory?needs_replenishment=true",
            Some(&c.token),
        )
        .await
        .ok(200);
    assert_eq!(data(&low).len(), 1);
    let fine = app
        .get(
            "/api/v1/me/inventory?needs_replenishment=false",
            Some(&c.token),
        )
        .await
        .ok(200);
    assert_eq!(data(&fine).len(), 0);

    let replenish = app
        .get("/api/v1/replenishment", Some(&c.token))
        .await
        .ok(200);
    let entry = &data(&replenish)[0];
    assert_eq!(entry["holding"]["id"], id);
    assert_eq!(entry["reasons"], json!(["low_stock"]));
    assert_eq!(entry["suggested_quantity"], 3);

    app.delete(&format!("/api/v1/me/inventory/{id}"), Some(&c.token))
        .await
        .ok(204);
    assert_eq!(
        data(
            &app.get("/api/v1/me/inventory", Some(&c.token))
                .await
                .ok(200)
        )
        .len(),
        0
    );
    app.get("/api/v1/me/inventory", Some(&w.token))
        .await
        .problem(403);
}

#[actix_web::test]
async fn staff_replenishment_suggests_up_to_target_counting_promises() {
    let app = TestApp::spawn().await;
    let w = app.worker("wim").await;
    let c = app.customer("cyd").await;
    let flour = new_item(&app, &w, json!({"name": "Flour", "kind": "non_perishable", "quantity": 3, "min_quantity": 5, "target_quantity": 20})).await;
    new_item(
        &app,
        &w,
        json!({"name": "Plenty", "kind": "non_perishable", "quantity": 50, "min_quantity": 5}),
    )
    .await;
    let eggs = new_item(&app, &w, json!({"name": "Eggs", "kind": "perishable", "quantity": 30, "min_quantity": 5, "expiry_date": day(2)})).await;
    let old = new_item(&app, &w, json!({"name": "Old cheese", "kind": "perishable", "quantity": 30, "min_quantity": 2, "expiry_date": day(-5), "expiry_warning_days": 1})).await;
    app.post(
        &format!("/api/v1/items/{old}/batches"),
        Some(&w.token),
        json!({"quantity": 10, "expiry_date": day(30)}),
    )
    .await
    .ok(201);

    let list = app
        .get("/api/v1/replenishment", Some(&w.token))
        .await
        .ok(200);
    let by_name = |list: &Value, name: &str| -> Value {
        data(list)
            .iter()
            .find(|e| e["item"]["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(data(&list).len(), 3, "{list}");
    let f = by_name(&list, "Flour");
    assert_eq!(f["reasons"], json!(["low_stock"]));
    assert_eq!(f["suggested_quantity"], 17);
    assert_eq!(by_name(&list, "Eggs")["reasons"], json!(["expiring"]));
    let cheese = by_name(&list, "Old cheese");
    assert_eq!(cheese["reasons"], json!(["expired"]));
    assert_eq!(cheese["suggested_quantity"], 0);
    assert_eq!(cheese["item"]["id"], old);

    request(&app, &c, flour, 4).await;
    let list = app
        .get("/api/v1/replenishment", Some(&w.token))
        .await
        .ok(200);
    assert_eq!(by_name(&list, "Flour")["suggested_quantity"], 21);
    assert!(by_name(&list, "Plenty").is_null());
    let _ = eggs;
}

#[actix_web::test]
async fn requests_are_listed_rejected_and_cancelled() {
    let app = TestApp::spawn().await;
    let w = app.worker("wolf").await;
    let c = app.customer("cara").await;
    let d = app.customer("dora").await;
    let tea = new_item(&app, &w, json!({"name": "Tea", "kind": "non_perishable"})).await;
    let r1 = request(&app, &c, tea, 1).await;
    let r2 = request(&app, &c, tea, 2).await;
    let r3 = request(&app, &d, tea, 3).await;
    app.post(
        "/api/v1/replenishment-requests",
        Some(&c.token),
        json!({"item_id": 99999, "quantity": 1}),
    )
    .await
    .problem(404);
    app.post(
        "/api/v1/replenishment-requests",
        Some(&c.token),
        json!({"item_id": tea, "quantity": 0}),
    )
    .await
    .problem(422);
    app.post(
        "/api/v1/replenishment-requests",
        Some(&w.token),
        json!({"item_id": tea, "quantity": 1}),
    )
    .await
    .problem(403);

    let rejected = app
        .post(
            &format!("/api/v1/replenishment-requests/{r1}/reject"),
            Some(&w.token),
            json!({"reason": "discontinued"}),
        )
        .await
        .ok(200);
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["reason"], "discontinued");
    let req = app
        .request(
            actix_web::http::Method::POST,
            &format!("/api/v1/replenishment-requests/{r2}/reject"),
        )
        .bearer_auth(&w.token);
    app.send(req, None).await.ok(200);
    let cancelled = app
        .post(
            &format!("/api/v1/replenishment-requests/{r3}/cancel"),
            Some(&d.token),
            json!({}),
        )
        .await
        .ok(200);
    assert_eq!(cancelled["status"], "cancelled");
    app.post(
        "/api/v1/replenishment-requests/424242/fulfil",
        Some(&w.token),
        json!({}),
    )
    .await
    .problem(404);

    let all = app
        .get("/api/v1/replenishment-requests", Some(&w.token))
        .await
        .ok(200);
    assert_eq!(data(&all).len(), 3);
    assert_eq!(data(&all)[0]["id"], r3, "newest first");
    let mine = app
        .get("/api/v1/replenishment-requests", Some(&c.token))
        .await
        .ok(200);
    assert_eq!(data(&mine).len(), 2);
    let rej = app
        .get(
            "/api/v1/replenishment-requests?status=rejected",
            Some(&w.token),
        )
        .await
        .ok(200);
    assert_eq!(data(&rej).len(), 2);
    app.get("/api/v1/replenishment-requests?status=lost", Some(&w.token))
        .await
        .problem(400);
}

/// 100 pending requests for 1 unit each against 50 units, fulfilled at once by several
/// staff clients: exactly 50 succeed.
async fn oversell(apps: &[&TestApp]) {
    let first = apps[0];
    let owner = first.owner("boss").await;
    let workers = [
        first.worker("wk1").await,
        first.worker("wk2").await,
        first.worker("wk3").await,
    ];
    let item = new_item(
        first,
        &workers[0],
        json!({"name": "Scarce", "kind": "perishable", "quantity": 30, "expiry_date": day(5)}),
    )
    .await;
    first
        .post(
            &format!("/api/v1/items/{item}/batches"),
            Some(&workers[0].token),
            json!({"quantity": 20, "expiry_date": day(9)}),
        )
        .await
        .ok(201);
    let mut customers = Vec::new();
    let mut ids = Vec::new();
    for k in 0..4 {
        let c = first.customer(&format!("buyer{k}")).await;
        for _ in 0..25 {
            ids.push(request(first, &c, item, 1).await);
        }
        customers.push(c);
    }
    let calls = ids.iter().enumerate().map(|(n, id)| {
        let app = apps[n % apps.len()];
        let w = &workers[n % workers.len()];
        let path = format!("/api/v1/replenishment-requests/{id}/fulfil");
        async move { app.post(&path, Some(&w.token), json!({})).await }
    });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let conflict = results.iter().filter(|r| r.status == 409).count();
    assert_eq!(
        (ok, conflict),
        (50, 50),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );

    let it = first
        .get(&format!("/api/v1/items/{item}"), Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(it["quantity"], 0);
    let ledger = first.ledger_sum(&owner.token, item).await;
    assert_eq!(ledger, 0);
    let mut held = 0;
    for c in &customers {
        let inv = first
            .get("/api/v1/me/inventory", Some(&c.token))
            .await
            .ok(200);
        held += data(&inv)
            .iter()
            .map(|h| h["quantity"].as_i64().unwrap_or(0))
            .sum::<i64>();
    }
    assert_eq!(held, 50);
    let fulfilled = first
        .get(
            "/api/v1/replenishment-requests?status=fulfilled&limit=200",
            Some(&owner.token),
        )
        .await
        .ok(200);
    assert_eq!(data(&fulfilled).len(), 50);
    let pending = first
        .get(
            "/api/v1/replenishment-requests?status=pending&limit=200",
            Some(&owner.token),
        )
        .await
        .ok(200);
    assert_eq!(data(&pending).len(), 50);
}

#[actix_web::test]
async fn concurrent_fulfilment_never_oversells() {
    let app = TestApp::spawn().await;
    oversell(&[&app]).await;
}

#[actix_web::test]
async fn two_processes_on_one_database_never_oversell() {
    if !is_postgres() {
        // Several processes share PostgreSQL; SQLite is the single-process embedded mode.
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::builder().same_database_as(&a).spawn().await;
    oversell(&[&a, &b]).await;
}

#[actix_web::test]
async fn dashboards_count_what_needs_attention() {
    let app = TestApp::spawn().await;
    let w = app.worker("wuu").await;
    let c = app.customer("cat").await;
    let a = new_item(&app, &w, json!({"name": "A", "kind": "perishable", "quantity": 4, "expiry_date": day(-1), "min_quantity": 1})).await;
    app.post(
        &format!("/api/v1/items/{a}/batches"),
        Some(&w.token),
        json!({"quantity": 6, "expiry_date": day(2)}),
    )
    .await
    .ok(201);
    new_item(
        &app,
        &w,
        json!({"name": "B", "kind": "non_perishable", "quantity": 1, "min_quantity": 3}),
    )
    .await;
    let r = request(&app, &c, a, 2).await;
    app.post(
        &format!("/api/v1/replenishment-requests/{r}/fulfil"),
        Some(&w.token),
        json!({}),
    )
    .await
    .ok(200);
    request(&app, &c, a, 1).await;

    let staff = app.get("/api/v1/dashboard", Some(&w.token)).await.ok(200);
    assert_eq!(staff["role"], "worker");
    let counts = &staff["counts"];
    assert_eq!(counts["items"], 2);
    assert_eq!(counts["units"], 9);
    assert_eq!(counts["expired_batches"], 1);
    assert_eq!(counts["expiring_soon"], 1);
    assert_eq!(counts["low_stock"], 1);
    assert_eq!(counts["pending_requests"], 1);
    assert_eq!(counts["customers"], 1);
    // A's expired batch, A's expiring batch, A low while it held only expired stock, B low,
    // and the two requests.
    assert_eq!(counts["unread_notifications"], 6);
    assert_eq!(counts["unread_messages"], 0);
    for key in counts.as_object().expect("counts").keys() {
        let link = staff["links"][key]
            .as_str()
            .unwrap_or_else(|| panic!("no link for {key}"));
        if link.starts_with("/api/v1/items")
            || link.starts_with("/api/v1/replenishment")
            || link.starts_with("/api/v1/customers")
        {
            app.get(link, Some(&w.token)).await.ok(200);
        }
    }

    let mine = app.get("/api/v1/dashboard", Some(&c.token)).await.ok(200);
    assert_eq!(mine["role"], "customer");
    let counts = &mine["counts"];
    assert_eq!(counts["holdings"], 1);
    assert_eq!(counts["expired"], 0);
    assert_eq!(counts["expiring_soon"], 1);
    assert_eq!(counts["needs_replenishment"], 1);
    assert_eq!(counts["open_requests"], 1);
    // The fulfilment, and the holding it made, which expires within the window.
    assert_eq!(counts["unread_notifications"], 2);
    for key in counts.as_object().expect("counts").keys() {
        let link = mine["links"][key]
            .as_str()
            .unwrap_or_else(|| panic!("no link for {key}"));
        if link.starts_with("/api/v1/me") || link.starts_with("/api/v1/replenishment") {
            app.get(link, Some(&c.token)).await.ok(200);
        }
    }
}

#[actix_web::test]
async fn deleting_a_customer_drops_holdings_and_cancels_requests_but_keeps_the_ledger() {
    let app = TestApp::spawn().await;
    let o = app.owner("olive").await;
    let c = app.customer("gone").await;
    let item = new_item(
        &app,
        &o,
        json!({"name": "Jam", "kind": "non_perishable", "quantity": 5}),
    )
    .await;
    let r = request(&app, &c, item, 2).await;
    app.post(
        &format!("/api/v1/replenishment-requests/{r}/fulfil"),
        Some(&o.token),
        json!({}),
    )
    .await
    .ok(200);
    let pending = request(&app, &c, item, 1).await;
    app.delete(&format!("/api/v1/customers/{}", c.id), Some(&o.token))
        .await
        .ok(204);
    let req = app
        .get(
            &format!("/api/v1/replenishment-requests/{pending}"),
            Some(&o.token),
        )
        .await
        .ok(200);
    assert_eq!(req["status"], "cancelled");
    let ledger = app
        .get(&format!("/api/v1/items/{item}/movements"), Some(&o.token))
        .await
        .ok(200);
    assert_eq!(data(&ledger).len(), 2);
    assert_eq!(
        app.get("/api/v1/dashboard", Some(&o.token)).await.ok(200)["counts"]["customers"],
        0
    );
}
