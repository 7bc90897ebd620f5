use actix_web::http::Method;
use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::common::{Session, TestApp};

fn day(offset: i64) -> String {
    (Utc::now().date_naive() + Duration::days(offset)).to_string()
}

async fn item(app: &TestApp, s: &Session, body: Value) -> Value {
    app.post("/api/v1/items", Some(&s.token), body)
        .await
        .ok(201)
}

#[actix_web::test]
async fn items_have_batches_and_a_ledger() {
    let app = TestApp::spawn().await;
    let w = app.worker("wendy").await;
    let milk = item(
        &app,
        &w,
        json!({"name": "Milk", "kind": "perishable", "size": "1", "unit": "l", "sku": "MILK-1",
               "barcode": "4006381333931", "min_quantity": 5, "target_quantity": 20,
               "quantity": 12, "expiry_date": day(10)}),
    )
    .await;
    let id = milk["id"].as_i64().expect("id");
    assert_eq!(milk["quantity"], 12);
    assert_eq!(milk["available_quantity"], 12);
    assert_eq!(milk["batches"].as_array().map(Vec::len), Some(1));
    assert_eq!(milk["expiry_date"], day(10));

    // A perishable batch needs an expiry date; a past one is allowed.
    app.post(
        &format!("/api/v1/items/{id}/batches"),
        Some(&w.token),
        json!({"quantity": 3}),
    )
    .await
    .problem(422);
    let old = app
        .post(
            &format!("/api/v1/items/{id}/batches"),
            Some(&w.token),
            json!({"quantity": 3, "expiry_date": day(-2), "lot_code": "L-OLD"}),
        )
        .await
        .ok(201);
    assert_eq!(old["expired"], true);
    let got = app
        .get(&format!("/api/v1/items/{id}"), Some(&w.token))
        .await
        .ok(200);
    assert_eq!(got["quantity"], 15);
    assert_eq!(got["available_quantity"], 12);
    assert_eq!(got["expired_quantity"], 3);
    assert_eq!(got["expiry_date"], day(-2));
    assert_eq!(app.ledger_sum(&w.token, id).await, 15);

    let expired = app
        .get("/api/v1/items/expired", Some(&w.token))
        .await
        .ok(200);
    let rows = expired["data"].as_array().expect("data");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "Milk");
    assert_eq!(rows[0]["quantity"], 3);
    assert_eq!(rows[0]["expiry_date"], day(-2));

    // Duplicates and bad values.
    item(&app, &w, json!({"name": "Other", "kind": "non_perishable"})).await;
    app.post(
        "/api/v1/items",
        Some(&w.token),
        json!({"name": "Dup", "kind": "non_perishable", "barcode": "4006381333931"}),
    )
    .await
    .problem(409);
    app.post(
        "/api/v1/items",
        Some(&w.token),
        json!({"name": "Dup", "kind": "non_perishable", "sku": "MILK-1"}),
    )
    .await
    .problem(409);
    let bad = app
        .post(
            "/api/v1/items",
            Some(&w.token),
            json!({"name": "", "kind": "perishable", "min_quantity": -1, "quantity": 5}),
        )
        .await
        .problem(422);
    assert!(
        bad["errors"]["name"].is_array() && bad["errors"]["min_quantity"].is_array(),
        "{bad}"
    );
    app.post(
        "/api/v1/items",
        Some(&w.token),
        json!({"name": "X", "kind": "gas"}),
    )
    .await
    .problem(422);
}

#[actix_web::test]
async fn removals_take_the_earliest_expiry_first_across_batches() {
    let app = TestApp::spawn().await;
    let w = app.worker("wally").await;
    let it = item(
        &app,
        &w,
        json!({"name": "Yogurt", "kind": "perishable", "quantity": 4, "expiry_date": day(9)}),
    )
    .await;
    let id = it["id"].as_i64().expect("id");
    let early = app
        .post(
            &format!("/api/v1/items/{id}/batches"),
            Some(&w.token),
            json!({"quantity": 3, "expiry_date": day(2)}),
        )
        .await
        .ok(201);
    let mid = app
        .post(
            &format!("/api/v1/items/{id}/batches"),
            Some(&w.token),
            json!({"quantity": 5, "expiry_date": day(5)}),
        )
        .await
        .ok(201);

    let out = app
        .post(
            &format!("/api/v1/items/{id}/adjustments"),
            Some(&w.token),
            json!({"delta": -6, "reason": "consume", "note": "breakfast"}),
        )
        .await
        .ok(201);
    let moves = out["movements"].as_array().expect("movements");
    assert_eq!(moves.len(), 2);
    assert_eq!(moves[0]["batch_id"], early["id"]);
    assert_eq!(moves[0]["delta"], -3);
    assert_eq!(moves[1]["batch_id"], mid["id"]);
    assert_eq!(moves[1]["delta"], -3);
    assert_eq!(moves[1]["quantity_after"], 6);
    let batches = out["item"]["batches"].as_array().expect("batches");
    let quantities: Vec<_> = batches
        .iter()
        .map(|b| b["quantity"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(quantities, [2, 4]);

    // Too much: 409, nothing changes.
    app.post(
        &format!("/api/v1/items/{id}/adjustments"),
        Some(&w.token),
        json!({"delta": -7, "reason": "waste"}),
    )
    .await
    .problem(409);
    let after = app
        .get(&format!("/api/v1/items/{id}"), Some(&w.token))
        .await
        .ok(200);
    assert_eq!(after["quantity"], 6);
    assert_eq!(app.ledger_sum(&w.token, id).await, 6);

    // Reasons must fit the sign; a named batch is used as named.
    app.post(
        &format!("/api/v1/items/{id}/adjustments"),
        Some(&w.token),
        json!({"delta": 2, "reason": "consume"}),
    )
    .await
    .problem(422);
    app.post(
        &format!("/api/v1/items/{id}/adjustments"),
        Some(&w.token),
        json!({"delta": 0, "reason": "correction"}),
    )
    .await
    .problem(422);
    let named = app
        .post(
            &format!("/api/v1/items/{id}/adjustments"),
            Some(&w.token),
            json!({"delta": 1, "reason": "correction", "batch_id": mid["id"]}),
        )
        .await
        .ok(201);
    assert_eq!(named["item"]["quantity"], 7);
    app.post(
        "/api/v1/items/9999/adjustments",
        Some(&w.token),
        json!({"delta": -1, "reason": "consume"}),
    )
    .await
    .problem(404);
}

#[actix_web::test]
async fn concurrent_removals_never_lose_an_update_or_go_negative() {
    let app = TestApp::spawn().await;
    let w = app.worker("wilma").await;
    let it = item(
        &app,
        &w,
        json!({"name": "Bolts", "kind": "non_perishable", "quantity": 30}),
    )
    .await;
    let id = it["id"].as_i64().expect("id");
    let path = format!("/api/v1/items/{id}/adjustments");
    let calls = (0..50).map(|_| {
        app.post(
            &path,
            Some(&w.token),
            json!({"delta": -1, "reason": "consume"}),
        )
    });
    let results = futures::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.status == 201).count();
    let conflict = results.iter().filter(|r| r.status == 409).count();
    assert_eq!(
        (ok, conflict),
        (30, 20),
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let after = app
        .get(&format!("/api/v1/items/{id}"), Some(&w.token))
        .await
        .ok(200);
    assert_eq!(after["quantity"], 0);
    assert_eq!(app.ledger_sum(&w.token, id).await, 0);
}

#[actix_web::test]
async fn list_filters_sorts_and_hides_staff_fields_from_customers() {
    let app = TestApp::spawn().await;
    let w = app.worker("will").await;
    let c = app.customer("cora").await;
    item(&app, &w, json!({"name": "Apples", "kind": "perishable", "quantity": 10, "expiry_date": day(3), "min_quantity": 2})).await;
    item(&app, &w, json!({"name": "bread", "kind": "perishable", "quantity": 2, "expiry_date": day(-1), "min_quantity": 1})).await;
    item(&app, &w, json!({"name": "Candles", "kind": "non_perishable", "quantity": 1, "min_quantity": 4, "barcode": "123456"})).await;
    item(
        &app,
        &w,
        json!({"name": "Dates", "kind": "perishable", "quantity": 8, "expiry_date": day(30)}),
    )
    .await;
    item(
        &app,
        &w,
        json!({"name": "Empty shelf", "kind": "non_perishable"}),
    )
    .await;

    let names = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|i| i["name"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let t = Some(w.token.as_str());
    assert_eq!(
        names(&app.get("/api/v1/items", t).await.ok(200)),
        ["Apples", "bread", "Candles", "Dates", "Empty shelf"]
    );
    assert_eq!(
        names(&app.get("/api/v1/items?sort=-quantity", t).await.ok(200))[0],
        "Apples"
    );
    assert_eq!(
        names(&app.get("/api/v1/items?sort=expiry_date", t).await.ok(200)),
        ["bread", "Apples", "Dates", "Candles", "Empty shelf"]
    );
    assert_eq!(
        names(&app.get("/api/v1/items?expired=true", t).await.ok(200)),
        ["bread"]
    );
    assert_eq!(
        names(
            &app.get("/api/v1/items?expiring_within_days=7", t)
                .await
                .ok(200)
        ),
        ["Apples"]
    );
    // bread: 2 on hand but expired, so 0 available ≤ 1; Candles 1 ≤ 4; Empty 0 ≤ 0.
    assert_eq!(
        names(&app.get("/api/v1/items?low_stock=true", t).await.ok(200)),
        ["bread", "Candles", "Empty shelf"]
    );
    assert_eq!(
        names(
            &app.get("/api/v1/items?kind=non_perishable", t)
                .await
                .ok(200)
        ),
        ["Candles", "Empty shelf"]
    );
    assert_eq!(
        names(&app.get("/api/v1/items?barcode=123456", t).await.ok(200)),
        ["Candles"]
    );
    assert_eq!(
        names(&app.get("/api/v1/items?q=APP", t).await.ok(200)),
        ["Apples"]
    );
    app.get("/api/v1/items?sort=colour", t).await.problem(400);
    app.get("/api/v1/items?expiring_within_days=x", t)
        .await
        .problem(400);

    let seen = app.get("/api/v1/items", Some(&c.token)).await.ok(200);
    assert_eq!(names(&seen), ["Apples", "Candles", "Dates"]);
    for i in seen["data"].as_array().expect("data") {
        for hidden in [
            "min_quantity",
            "target_quantity",
            "sku",
            "batches",
            "expired_quantity",
        ] {
            assert!(i.get(hidden).is_none(), "{hidden} shown to a customer: {i}");
        }
    }
    let bread_id = app.get("/api/v1/items?q=bread", t).await.ok(200)["data"][0]["id"]
        .as_i64()
        .expect("id");
    app.get(&format!("/api/v1/items/{bread_id}"), Some(&c.token))
        .await
        .problem(404);
    app.post(
        "/api/v1/items",
        Some(&c.token),
        json!({"name": "Mine", "kind": "non_perishable"}),
    )
    .await
    .problem(403);
    app.get("/api/v1/items/expired", Some(&c.token))
        .await
        .problem(403);
    app.get(
        &format!("/api/v1/items/{bread_id}/movements"),
        Some(&c.token),
    )
    .await
    .problem(403);
}

#[actix_web::test]
async fn pagination_is_stable_while_items_are_added() {
    let app = TestApp::spawn().await;
    let w = app.worker("wade").await;
    for i in 0..9 {
        item(
            &app,
            &w,
            json!({"name": format!("item {i:02}"), "kind": "non_perishable"}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut added = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/items?limit=4&cursor={c}"),
            None => "/api/v1/items?limit=4".to_owned(),
        };
        let page = app.get(&path, Some(&w.token)).await.ok(200);
        for i in page["data"].as_array().expect("data") {
            seen.push(i["name"].as_str().unwrap_or("").to_owned());
        }
        // Insert between pages, before and after the cursor.
        item(
            &app,
            &w,
            json!({"name": format!("a new {added}"), "kind": "non_perishable"}),
        )
        .await;
        item(
            &app,
            &w,
            json!({"name": format!("z new {added}"), "kind": "non_perishable"}),
        )
        .await;
        added += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let originals: Vec<_> = seen
        .iter()
        .filter(|n| n.starts_with("item"))
        .cloned()
        .collect();
    let expected: Vec<_> = (0..9).map(|i| format!("item {i:02}")).collect();
    assert_eq!(originals, expected, "every item once, in order: {seen:?}");
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), seen.len());
}

#[actix_web::test]
async fn if_match_guards_concurrent_edits() {
    let app = TestApp::spawn().await;
    let w = app.worker("wren").await;
    let it = item(&app, &w, json!({"name": "Tea", "kind": "non_perishable"})).await;
    let id = it["id"].as_i64().expect("id");
    let res = app
        .get(&format!("/api/v1/items/{id}"), Some(&w.token))
        .await;
    let etag = res.header("etag").expect("ETag");
    let app = &app;
    let patch = |tag: &str, body: Value| {
        let req = app
            .request(Method::PATCH, &format!("/api/v1/items/{id}"))
            .bearer_auth(&w.token)
            .insert_header(("If-Match", tag.to_owned()));
        async move { app.send(req, Some(&body)).await }
    };
    let first = patch(&etag, json!({"name": "Green tea"}));
    let first = first.await;
    first.ok(200);
    let new_tag = first.header("etag").expect("new ETag");
    assert_ne!(new_tag, etag);
    // The second editor still holds the old tag.
    patch(&etag, json!({"name": "Black tea"}))
        .await
        .problem(412);
    let now = app
        .get(&format!("/api/v1/items/{id}"), Some(&w.token))
        .await
        .ok(200);
    assert_eq!(now["name"], "Green tea");
    patch(&new_tag, json!({"description": "loose leaf", "size": null}))
        .await
        .ok(200);
    app.patch(
        &format!("/api/v1/items/{id}"),
        Some(&w.token),
        json!({"min_quantity": 3}),
    )
    .await
    .ok(200);
    app.patch(
        &format!("/api/v1/items/{id}"),
        Some(&w.token),
        json!({"min_quantity": 5, "target_quantity": 4}),
    )
    .await
    .problem(422);
}

#[actix_web::test]
async fn csv_round_trip_and_all_or_nothing_import() {
    let source = TestApp::spawn().await;
    let w = source.worker("wanda").await;
    item(&source, &w, json!({"name": "Milk, whole", "kind": "perishable", "sku": "M1", "quantity": 5, "expiry_date": day(4), "min_quantity": 2, "target_quantity": 9, "barcode": "111"})).await;
    let m1 = source
        .get("/api/v1/items?q=milk", Some(&w.token))
        .await
        .ok(200)["data"][0]["id"]
        .as_i64()
        .expect("id");
    source
        .post(
            &format!("/api/v1/items/{m1}/batches"),
            Some(&w.token),
            json!({"quantity": 2, "expiry_date": day(8), "lot_code": "B"}),
        )
        .await
        .ok(201);
    item(&source, &w, json!({"name": "Soap \"lavender\"", "kind": "non_perishable", "sku": "S1", "quantity": 7, "description": "line one\nline two"})).await;
    item(&source, &w, json!({"name": "Nothing yet", "kind": "non_perishable", "sku": "N1", "expiry_warning_days": 3})).await;
    let export = source.get("/api/v1/items/export.csv", Some(&w.token)).await;
    assert_eq!(export.status, 200);
    assert!(export
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/csv"));
    let csv = export.body.clone();

    let target = TestApp::spawn().await;
    let tw = target.worker("wilbur").await;
    let import = |body: Vec<u8>| {
        let req = target
            .request(Method::POST, "/api/v1/items/import")
            .bearer_auth(&tw.token)
            .content_type("text/csv");
        target.send_bytes(req, body)
    };
    let summary = import(csv.clone()).await.ok(200);
    assert_eq!(summary["created"], 3);
    let strip = |v: Value| -> Vec<Value> {
        let mut rows: Vec<Value> = v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|i| {
                json!([
                    i["sku"],
                    i["name"],
                    i["kind"],
                    i["barcode"],
                    i["description"],
                    i["min_quantity"],
                    i["target_quantity"],
                    i["expiry_warning_days"],
                    i["quantity"],
                    i["expiry_date"]
                ])
            })
            .collect();
        rows.sort_by_key(|r| r[0].to_string());
        rows
    };
    let before = strip(source.get("/api/v1/items", Some(&w.token)).await.ok(200));
    let after = strip(target.get("/api/v1/items", Some(&tw.token)).await.ok(200));
    assert_eq!(before, after);
    // Batches came across one by one.
    let again = target
        .get("/api/v1/items/export.csv", Some(&tw.token))
        .await;
    assert_eq!(
        String::from_utf8_lossy(&again.body),
        String::from_utf8_lossy(&csv)
    );
    // Importing the same file twice changes nothing.
    let twice = import(csv.clone()).await.ok(200);
    assert_eq!(twice["created"], 0);
    assert_eq!(twice["batches"], 0);

    // One bad row: 422 naming its line, and nothing from the file is applied.
    let bad = "sku,name,kind,quantity,expiry_date\nNEW1,Fresh thing,perishable,3,2030-01-01\nNEW2,Broken,perishable,2,\nNEW3,Other,liquid,1,\n";
    let res = import(bad.as_bytes().to_vec()).await.problem(422);
    assert!(res["errors"]["line 3"].is_array(), "{res}");
    assert!(res["errors"]["line 4"].is_array(), "{res}");
    assert!(res["errors"].get("line 2").is_none(), "{res}");
    let none = target
        .get("/api/v1/items?q=fresh", Some(&tw.token))
        .await
        .ok(200);
    assert_eq!(none["data"].as_array().map(Vec::len), Some(0));
    let unknown = import(b"sku,name,kind,colour\nA,B,perishable,red\n".to_vec())
        .await
        .problem(422);
    assert!(unknown["errors"]["line 1"].is_array());
    let req = target
        .request(Method::POST, "/api/v1/items/import")
        .bearer_auth(&tw.token)
        .content_type("application/json");
    target.send_bytes(req, b"{}".to_vec()).await.problem(415);
}

#[actix_web::test]
async fn only_the_owner_deletes_items() {
    let app = TestApp::spawn().await;
    let o = app.owner("oona").await;
    let w = app.worker("walid").await;
    let it = item(
        &app,
        &w,
        json!({"name": "Gone", "kind": "non_perishable", "quantity": 2}),
    )
    .await;
    let id = it["id"].as_i64().expect("id");
    app.delete(&format!("/api/v1/items/{id}"), Some(&w.token))
        .await
        .problem(403);
    app.delete(&format!("/api/v1/items/{id}"), Some(&o.token))
        .await
        .ok(204);
    app.get(&format!("/api/v1/items/{id}"), Some(&o.token))
        .await
        .problem(404);
    app.delete(&format!("/api/v1/items/{id}"), Some(&o.token))
        .await
        .problem(404);
}

#[actix_web::test]
async fn every_sort_pages_through_every_item_once_in_order() {
    let app = TestApp::spawn().await;
    let w = app.worker("paige").await;
    let t = Some(w.token.as_str());
    // Ties in every key (quantities and dates repeat), so the id must break them.
    for i in 0..7 {
        item(
            &app,
            &w,
            json!({"name": format!("Thing {}", i % 3), "kind": "perishable",
                   "quantity": i % 2 + 1, "expiry_date": day(i % 2 + 5)}),
        )
        .await;
    }
    let ids = |list: &[Value]| -> Vec<i64> {
        list.iter().map(|i| i["id"].as_i64().expect("id")).collect()
    };
    for sort in [
        "name",
        "-name",
        "quantity",
        "-quantity",
        "expiry_date",
        "-expiry_date",
        "created_at",
        "-created_at",
    ] {
        let whole = app
            .get(&format!("/api/v1/items?sort={sort}&limit=200"), t)
            .await
            .ok(200);
        let whole = ids(whole["data"].as_array().expect("data"));
        let paged = ids(&app
            .all_pages(&format!("/api/v1/items?sort={sort}&limit=2"), t)
            .await);
        assert_eq!(paged, whole, "sort={sort}");
        assert_eq!(whole.len(), 7, "sort={sort}");
    }
    // A cursor carries its sort's key type: one of another sort is malformed, not misread.
    let page = app
        .get("/api/v1/items?sort=quantity&limit=2", t)
        .await
        .ok(200);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    app.get(&format!("/api/v1/items?sort=created_at&cursor={cursor}"), t)
        .await
        .problem(400);
}

#[actix_web::test]
async fn an_import_is_bounded_so_it_never_holds_the_write_lock_for_long() {
    let app = TestApp::spawn().await;
    let w = app.worker("ike").await;
    let mut csv = String::from("sku,name,kind\n");
    for i in 0..5_001 {
        csv.push_str(&format!("CAP-{i},Item {i},non_perishable\n"));
    }
    let req = app
        .request(Method::POST, "/api/v1/items/import")
        .bearer_auth(&w.token)
        .insert_header(("Content-Type", "text/csv"));
    let refused = app.send_bytes(req, csv.into_bytes()).await.problem(422);
    // The header is line 1, so the 5,001st row is line 5002.
    assert!(refused["errors"]["line 5002"].is_array(), "{refused}");
    let page = app
        .get("/api/v1/items?limit=1", Some(&w.token))
        .await
        .ok(200);
    assert_eq!(
        page["data"].as_array().map(Vec::len),
        Some(0),
        "nothing imported"
    );
}

/// What the item views say the dashboard should count: items, units, low-stock items.
async fn counted_by_the_views(app: &TestApp, s: &Session) -> (i64, i64, i64) {
    let items = app
        .all_pages("/api/v1/items?limit=100", Some(&s.token))
        .await;
    let units = items.iter().filter_map(|i| i["quantity"].as_i64()).sum();
    let low = app
        .all_pages("/api/v1/items?low_stock=true&limit=100", Some(&s.token))
        .await;
    (items.len() as i64, units, low.len() as i64)
}

async fn counted_by_the_dashboard(app: &TestApp, s: &Session) -> (i64, i64, i64) {
    let board = app.get("/api/v1/dashboard", Some(&s.token)).await.ok(200);
    let count = |key: &str| board["counts"][key].as_i64().expect("a count");
    (count("items"), count("units"), count("low_stock"))
}

/// The dashboard's figures are kept with every stock change instead of being counted over
/// the items table; after each kind of change they equal what the item views count.
#[actix_web::test]
async fn dashboard_counts_equal_the_item_views_after_every_kind_of_change() {
    let app = TestApp::spawn().await;
    let o = app.owner("odile").await;
    let check = |expected: (i64, i64, i64), what: &'static str| {
        let (app, o) = (&app, &o);
        async move {
            let views = counted_by_the_views(app, o).await;
            assert_eq!(views, expected, "the views, after {what}");
            assert_eq!(
                counted_by_the_dashboard(app, o).await,
                views,
                "after {what}"
            );
        }
    };
    check((0, 0, 0), "nothing").await;
    let a = item(&app, &o, json!({"name": "A", "kind": "perishable", "quantity": 10, "expiry_date": day(3), "min_quantity": 4})).await;
    let b = item(
        &app,
        &o,
        json!({"name": "B", "kind": "non_perishable", "quantity": 2, "min_quantity": 5}),
    )
    .await;
    // Low because most of its stock has expired.
    let c = item(&app, &o, json!({"name": "C", "kind": "perishable", "quantity": 6, "expiry_date": day(-2), "min_quantity": 4})).await;
    app.post(
        &format!("/api/v1/items/{}/batches", c["id"]),
        Some(&o.token),
        json!({"quantity": 3, "expiry_date": day(10)}),
    )
    .await
    .ok(201);
    check((3, 21, 2), "creating items and adding a batch").await;

    let adjust = |id: &Value, delta: i64| {
        let (app, o, path) = (&app, &o, format!("/api/v1/items/{id}/adjustments"));
        async move {
            app.post(
                &path,
                Some(&o.token),
                json!({"delta": delta, "reason": if delta < 0 { "consume" } else { "restock" }}),
            )
            .await
        }
    };
    adjust(&a["id"], -7).await.ok(201);
    check((3, 14, 3), "consuming").await;
    adjust(&b["id"], 10).await.ok(201);
    check((3, 24, 2), "restocking").await;
    app.patch(
        &format!("/api/v1/items/{}", a["id"]),
        Some(&o.token),
        json!({"min_quantity": 1}),
    )
    .await
    .ok(200);
    check((3, 24, 1), "lowering a reorder level").await;

    let req = app
        .request(Method::POST, "/api/v1/items/import")
        .bearer_auth(&o.token)
        .content_type("text/csv");
    app.send_bytes(
        req,
        b"sku,name,kind,min_quantity\nI-1,Imported 1,non_perishable,0\nI-2,Imported 2,non_perishable,2\n"
            .to_vec(),
    )
    .await
    .ok(200);
    check((5, 24, 3), "an import").await;

    app.delete(&format!("/api/v1/items/{}", b["id"]), Some(&o.token))
        .await
        .ok(204);
    check((4, 12, 3), "deleting an item").await;
    // PostgreSQL folds the deltas now and then; the figures do not move when it does.
    stockroom::inventory::service::fold_stock_totals(&app.state)
        .await
        .expect("fold");
    check((4, 12, 3), "folding").await;
}

/// `GET /items/{id}` as `who` sees it.
async fn shown(app: &TestApp, who: &Session, id: i64) -> crate::common::TestResponse {
    app.get(&format!("/api/v1/items/{id}"), Some(&who.token))
        .await
}

/// Asserts that every process shows `want`'s fields for item `id`, alone and in the list,
/// twice each (the second read is the one a process may answer from memory).
async fn both_show(apps: &[&TestApp], who: &Session, id: i64, want: Value) {
    for app in apps {
        for _ in 0..2 {
            let alone = shown(app, who, id).await.ok(200);
            let page = app
                .get("/api/v1/items?limit=50", Some(&who.token))
                .await
                .ok(200);
            let listed = page["data"]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["id"] == id))
                .unwrap_or_else(|| panic!("item {id} listed on {}: {page}", app.base));
            for got in [&alone, listed] {
                for (field, value) in want.as_object().expect("fields") {
                    assert_eq!(&got[field], value, "{field} on {}: {got}", app.base);
                }
            }
        }
    }
}

/// Each process remembers the items it has read, so that `GET /items/{id}` needs no query;
/// every change, by any route on any process (or by hand in the database), must still show
/// on the very next read. Each step reads first on both processes, so each is remembered.
async fn every_change_shows_on_the_next_read_on_every_process(cache_mb: &str) {
    let a = TestApp::builder()
        .env("STOCKROOM_ITEM_CACHE_MB", cache_mb)
        .spawn()
        .await;
    let b = TestApp::builder()
        .env("STOCKROOM_ITEM_CACHE_MB", cache_mb)
        .same_database_as(&a)
        .spawn()
        .await;
    let owner = a.owner("olga").await;
    let w = a.worker("wes").await;
    let c = a.customer("cora").await;
    let id = item(
        &a,
        &w,
        json!({"name": "Oats", "kind": "perishable", "quantity": 5, "expiry_date": day(30)}),
    )
    .await["id"]
        .as_i64()
        .expect("id");
    both_show(&[&a, &b], &w, id, json!({"name": "Oats", "quantity": 5})).await;
    assert_eq!(shown(&b, &c, id).await.ok(200)["quantity"], 5);

    // A new item without stock (no batch) joins the list pages both processes remember.
    let bare = item(&a, &w, json!({"name": "Bran", "kind": "non_perishable"})).await["id"]
        .as_i64()
        .expect("id");
    both_show(&[&a, &b], &w, bare, json!({"name": "Bran", "quantity": 0})).await;

    a.patch(
        &format!("/api/v1/items/{id}"),
        Some(&w.token),
        json!({"name": "Rolled oats", "min_quantity": 2}),
    )
    .await
    .ok(200);
    both_show(
        &[&a, &b],
        &w,
        id,
        json!({"name": "Rolled oats", "min_quantity": 2}),
    )
    .await;

    a.post(
        &format!("/api/v1/items/{id}/batches"),
        Some(&w.token),
        json!({"quantity": 5, "expiry_date": day(60), "lot_code": "L2"}),
    )
    .await
    .ok(201);
    both_show(&[&a, &b], &w, id, json!({"quantity": 10})).await;
    let batches = shown(&b, &w, id).await.ok(200)["batches"].clone();
    assert_eq!(batches.as_array().map(Vec::len), Some(2), "{batches}");
    a.post(
        &format!("/api/v1/items/{id}/adjustments"),
        Some(&w.token),
        json!({"delta": -1, "reason": "consume"}),
    )
    .await
    .ok(201);
    both_show(&[&a, &b], &w, id, json!({"quantity": 9})).await;

    let request = a
        .post(
            "/api/v1/replenishment-requests",
            Some(&c.token),
            json!({"item_id": id, "quantity": 3}),
        )
        .await
        .ok(201)["id"]
        .as_i64()
        .expect("id");
    b.post(
        &format!("/api/v1/replenishment-requests/{request}/fulfil"),
        Some(&w.token),
        json!({}),
    )
    .await
    .ok(200);
    both_show(&[&a, &b], &w, id, json!({"quantity": 6})).await;

    // A foreign key's ON DELETE SET NULL changes the item too.
    let jpeg = crate::files::image_bytes(8, 8, image::ImageFormat::Jpeg);
    let photo = crate::files::upload(&a, &w, &[("files", "oats.jpg", &jpeg)])
        .await
        .ok(201)[0]["id"]
        .clone();
    a.patch(
        &format!("/api/v1/items/{id}"),
        Some(&w.token),
        json!({"photo_file_id": photo}),
    )
    .await
    .ok(200);
    both_show(&[&a, &b], &w, id, json!({"photo_file_id": photo})).await;
    a.delete(&format!("/api/v1/files/{photo}"), Some(&owner.token))
        .await
        .ok(204);
    both_show(&[&a, &b], &w, id, json!({"photo_file_id": null})).await;

    if crate::common::is_postgres() {
        // An operator's manual change is announced by the database itself.
        use diesel::{Connection, RunQueryDsl};
        let mut conn = diesel::PgConnection::establish(&a.database_url).expect("connect");
        diesel::sql_query(format!(
            "UPDATE items SET name = 'Oats by hand' WHERE id = {id}"
        ))
        .execute(&mut conn)
        .expect("update");
        both_show(&[&a, &b], &w, id, json!({"name": "Oats by hand"})).await;
    }

    // Out of stock: customers no longer see it, on either process.
    a.post(
        &format!("/api/v1/items/{id}/adjustments"),
        Some(&w.token),
        json!({"delta": -6, "reason": "waste"}),
    )
    .await
    .ok(201);
    both_show(&[&a, &b], &w, id, json!({"quantity": 0})).await;
    shown(&a, &c, id).await.problem(404);
    shown(&b, &c, id).await.problem(404);

    a.delete(&format!("/api/v1/items/{id}"), Some(&owner.token))
        .await
        .ok(204);
    shown(&a, &w, id).await.problem(404);
    shown(&b, &w, id).await.problem(404);
}

#[actix_web::test]
async fn every_change_shows_on_the_next_read_on_every_process_with_items_remembered() {
    every_change_shows_on_the_next_read_on_every_process("64").await;
}

#[actix_web::test]
async fn every_change_shows_on_the_next_read_on_every_process_with_nothing_remembered() {
    every_change_shows_on_the_next_read_on_every_process("0").await;
}
