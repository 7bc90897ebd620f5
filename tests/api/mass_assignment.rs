//! Mass assignment: a body field the operation does not take (`id`, `role`, `owner_id`,
//! `user_id`, `author_id`, `quantity` on an item, `version`, `created_at`, …) is refused
//! with 422 naming it, and nothing of the request is applied. And no answer ever carries a
//! password hash or a token hash.

use actix_web::http::Method;
use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::common::{Session, TestApp, TestResponse, PASSWORD};

fn day(offset: i64) -> String {
    (Utc::now().date_naive() + Duration::days(offset)).to_string()
}

/// Asserts 422 whose `errors` name exactly `field`, and returns the problem.
#[track_caller]
fn refused(res: &TestResponse, field: &str) -> Value {
    let problem = res.problem(422);
    let keys: Vec<&str> = problem["errors"]
        .as_object()
        .unwrap_or_else(|| panic!("422 without errors: {problem}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, [field], "{problem}");
    let message = problem["errors"][field][0].as_str().unwrap_or_default();
    assert!(message.contains(field), "{problem}");
    problem
}

async fn new_item(app: &TestApp, s: &Session, body: Value) -> i64 {
    app.post("/api/v1/items", Some(&s.token), body)
        .await
        .ok(201)["id"]
        .as_i64()
        .expect("item id")
}

fn data(v: &Value) -> Vec<Value> {
    v["data"].as_array().cloned().expect("a page")
}

#[actix_web::test]
async fn sign_up_refuses_id_and_role() {
    let app = TestApp::spawn().await;
    let body = |extra: (&str, Value)| {
        let mut body =
            json!({"username": "mallory", "email": "mallory@example.com", "password": PASSWORD});
        body[extra.0] = extra.1;
        body
    };
    for (field, value) in [
        ("role", json!("owner")),
        ("id", json!(1)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("password_hash", json!("$2b$04$abcdefghijklmnopqrstuv")),
    ] {
        let res = app
            .post("/api/v1/auth/register", None, body((field, value)))
            .await;
        refused(&res, field);
    }
    // None of those created the account.
    app.login("mallory", PASSWORD).await.problem(401);

    // The earlier service's sign-up too.
    let res = app
        .post(
            "/register",
            None,
            json!({"username": "mallory", "password": PASSWORD, "role": "owner"}),
        )
        .await;
    refused(&res, "role");
    app.login("mallory", PASSWORD).await.problem(401);

    // Without them it works, and the account is a customer.
    let user = app.register("mallory").await;
    assert_eq!(user["role"], "customer");
}

#[actix_web::test]
async fn the_profile_refuses_role_and_id() {
    let app = TestApp::spawn().await;
    let c = app.customer("carol").await;
    let other = app.customer("oscar").await;
    for (field, value) in [
        ("role", json!("owner")),
        ("id", json!(other.id)),
        ("username", json!("root")),
        ("email", json!("root@example.com")),
        ("created_at", json!("2020-01-01T00:00:00Z")),
    ] {
        let mut body = json!({"name": "Carol"});
        body[field] = value;
        refused(&app.patch("/api/v1/me", Some(&c.token), body).await, field);
    }
    let me = app.get("/api/v1/me", Some(&c.token)).await.ok(200);
    assert_eq!(me["role"], "customer");
    assert_eq!(me["id"], c.id);
    assert_eq!(me["username"], "carol");
    assert_eq!(
        me["name"],
        Value::Null,
        "nothing of a refused patch applies"
    );

    // The password change takes no account id.
    let res = app
        .post(
            "/api/v1/me/password",
            Some(&c.token),
            json!({"current_password": PASSWORD, "new_password": "another good password", "user_id": other.id}),
        )
        .await;
    refused(&res, "user_id");
    app.login("carol", PASSWORD).await.ok(200);
    app.login("oscar", PASSWORD).await.ok(200);

    // An owner's role change names the account in the path only.
    let owner = app.owner("olga").await;
    let res = app
        .patch(
            &format!("/api/v1/users/{}/role", other.id),
            Some(&owner.token),
            json!({"role": "worker", "id": c.id}),
        )
        .await;
    refused(&res, "id");
    for s in [&c, &other] {
        let me = app.get("/api/v1/me", Some(&s.token)).await.ok(200);
        assert_eq!(me["role"], "customer");
    }
}

#[actix_web::test]
async fn items_change_stock_only_through_adjustments() {
    let app = TestApp::spawn().await;
    let w = app.worker("wendy").await;
    let id = new_item(
        &app,
        &w,
        json!({"name": "Rice", "kind": "non_perishable", "quantity": 5}),
    )
    .await;
    let path = format!("/api/v1/items/{id}");
    let before = app.get(&path, Some(&w.token)).await;
    let etag = before.header("etag").expect("ETag");

    let app = &app;
    let patch = |body: Value| {
        let req = app
            .request(Method::PATCH, &path)
            .bearer_auth(&w.token)
            .insert_header(("If-Match", etag.clone()));
        async move { app.send(req, Some(&body)).await }
    };
    refused(&patch(json!({"quantity": 999})).await, "quantity");
    refused(
        &patch(json!({"name": "Gold", "quantity": 999})).await,
        "quantity",
    );
    for (field, value) in [
        ("version", json!(99)),
        ("id", json!(id + 1)),
        ("available_quantity", json!(999)),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("batches", json!([{"quantity": 999}])),
    ] {
        let mut body = json!({"name": "Gold"});
        body[field] = value;
        refused(&patch(body).await, field);
    }

    let after = app.get(&path, Some(&w.token)).await;
    assert_eq!(after.header("etag"), Some(etag.clone()), "nothing changed");
    let item = after.ok(200);
    assert_eq!(item["quantity"], 5);
    assert_eq!(item["name"], "Rice");
    assert_eq!(app.ledger_sum(&w.token, id).await, 5);

    // Creating takes no id or version either, and the other stock bodies are as strict.
    for (field, value) in [("id", json!(424242)), ("version", json!(7))] {
        let mut body = json!({"name": "Beans", "kind": "non_perishable"});
        body[field] = value;
        refused(
            &app.post("/api/v1/items", Some(&w.token), body).await,
            field,
        );
    }
    let res = app
        .post(
            &format!("{path}/batches"),
            Some(&w.token),
            json!({"quantity": 3, "item_id": id + 1}),
        )
        .await;
    refused(&res, "item_id");
    let res = app
        .post(
            &format!("{path}/adjustments"),
            Some(&w.token),
            json!({"delta": 3, "reason": "restock", "user_id": 1}),
        )
        .await;
    refused(&res, "user_id");
    let listed = app.get("/api/v1/items", Some(&w.token)).await.ok(200);
    assert_eq!(data(&listed).len(), 1, "no item was created: {listed}");
    assert_eq!(app.ledger_sum(&w.token, id).await, 5);

    // The sanctioned way still works.
    app.post(
        &format!("{path}/adjustments"),
        Some(&w.token),
        json!({"delta": 3, "reason": "restock"}),
    )
    .await
    .ok(201);
    assert_eq!(app.get(&path, Some(&w.token)).await.ok(200)["quantity"], 8);
}

#[actix_web::test]
async fn holdings_and_requests_refuse_whose_they_are() {
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

    // A request is the caller's own: no owner, customer or user id, no status.
    for (field, value) in [
        ("owner_id", json!(other.id)),
        ("user_id", json!(other.id)),
        ("customer_id", json!(other.id)),
        ("status", json!("fulfilled")),
        ("id", json!(1)),
    ] {
        let mut body = json!({"item_id": soap, "quantity": 2});
        body[field] = value;
        let res = app
            .post("/api/v1/replenishment-requests", Some(&c.token), body)
            .await;
        refused(&res, field);
    }
    for s in [&c, &other] {
        let mine = app
            .get("/api/v1/replenishment-requests", Some(&s.token))
            .await
            .ok(200);
        assert!(data(&mine).is_empty(), "no request was stored: {mine}");
    }

    // Rejecting takes a reason, not who decided.
    let pending = app
        .post(
            "/api/v1/replenishment-requests",
            Some(&c.token),
            json!({"item_id": soap, "quantity": 2}),
        )
        .await
        .ok(201);
    let pending = pending["id"].as_i64().expect("id");
    let res = app
        .post(
            &format!("/api/v1/replenishment-requests/{pending}/reject"),
            Some(&w.token),
            json!({"reason": "no", "decided_by": other.id}),
        )
        .await;
    refused(&res, "decided_by");
    let still = app
        .get(
            &format!("/api/v1/replenishment-requests/{pending}"),
            Some(&c.token),
        )
        .await
        .ok(200);
    assert_eq!(still["status"], "pending");

    // A holding (what fulfilment hands over) cannot be given to someone else.
    app.post(
        &format!("/api/v1/replenishment-requests/{pending}/fulfil"),
        Some(&w.token),
        json!({}),
    )
    .await
    .ok(200);
    let holdings = app
        .get("/api/v1/me/inventory", Some(&c.token))
        .await
        .ok(200);
    let holding = data(&holdings)[0].clone();
    let path = format!("/api/v1/me/inventory/{}", holding["id"]);
    for (field, value) in [
        ("owner_id", json!(other.id)),
        ("user_id", json!(other.id)),
        ("customer_id", json!(other.id)),
        ("item_id", json!(soap + 1)),
        ("expiry_date", json!(day(100))),
    ] {
        let mut body = json!({"quantity": 1});
        body[field] = value;
        refused(&app.patch(&path, Some(&c.token), body).await, field);
    }
    let holdings = app
        .get("/api/v1/me/inventory", Some(&c.token))
        .await
        .ok(200);
    assert_eq!(data(&holdings)[0]["quantity"], 2, "nothing applied");
    assert_eq!(data(&holdings)[0]["customer_id"], c.id);
    let theirs = app
        .get("/api/v1/me/inventory", Some(&other.token))
        .await
        .ok(200);
    assert!(data(&theirs).is_empty());
}

#[actix_web::test]
async fn messages_are_written_by_the_caller_only() {
    let app = TestApp::spawn().await;
    let w = app.worker("walt").await;
    let c = app.customer("cleo").await;

    // Creating a chat takes no creator.
    let res = app
        .post(
            "/api/v1/chats",
            Some(&c.token),
            json!({"kind": "direct", "member_ids": [w.id], "created_by": w.id}),
        )
        .await;
    refused(&res, "created_by");
    let chat = app
        .post(
            "/api/v1/chats",
            Some(&c.token),
            json!({"kind": "direct", "member_ids": [w.id]}),
        )
        .await
        .ok(201);
    let chat = chat["id"].as_i64().expect("chat id");
    let messages = format!("/api/v1/chats/{chat}/messages");

    for (field, value) in [
        ("author_id", json!(w.id)),
        ("author", json!({"id": w.id})),
        ("created_at", json!("2020-01-01T00:00:00Z")),
        ("id", json!(1)),
    ] {
        let mut body = json!({"body": "signed by someone else"});
        body[field] = value;
        refused(&app.post(&messages, Some(&c.token), body).await, field);
    }
    let history = app.get(&messages, Some(&c.token)).await.ok(200);
    assert!(data(&history).is_empty(), "nothing was sent: {history}");

    // The same over the event socket: an error frame naming the field, nothing stored.
    let mut ws = app.socket(&c.token, None).await;
    ws.send(json!({"type": "message.send", "chat_id": chat, "body": "hi", "author_id": w.id}))
        .await;
    let frame = ws.next().await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["status"], 422, "{frame}");
    let keys: Vec<&String> = frame["errors"]
        .as_object()
        .expect("errors")
        .keys()
        .collect();
    assert_eq!(keys, ["author_id"], "{frame}");
    // Even a ping takes no fields besides its type.
    ws.send(json!({"type": "ping", "user_id": w.id})).await;
    let frame = ws.next().await;
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["status"], 422, "{frame}");
    assert!(frame["errors"]["user_id"].is_array(), "{frame}");
    ws.nothing_pending().await;
    let history = app.get(&messages, Some(&c.token)).await.ok(200);
    assert!(data(&history).is_empty(), "nothing was sent: {history}");

    // A message sent properly is the caller's, and an edit cannot change that.
    let sent = app
        .post(&messages, Some(&c.token), json!({"body": "hello"}))
        .await
        .ok(201);
    assert_eq!(sent["author"]["id"], c.id);
    let res = app
        .patch(
            &format!("{messages}/{}", sent["id"]),
            Some(&c.token),
            json!({"body": "edited", "author_id": w.id}),
        )
        .await;
    refused(&res, "author_id");

    // Adding a member names a person and a role, nothing more.
    let group = app
        .post(
            "/api/v1/chats",
            Some(&w.token),
            json!({"kind": "group", "title": "team", "member_ids": [c.id]}),
        )
        .await
        .ok(201);
    let third = app.customer("cody").await;
    let res = app
        .post(
            &format!("/api/v1/chats/{}/members", group["id"]),
            Some(&w.token),
            json!({"user_id": third.id, "chat_id": chat}),
        )
        .await;
    refused(&res, "chat_id");
}

#[actix_web::test]
async fn nested_values_and_csv_columns_are_keyed_by_their_place() {
    let app = TestApp::spawn().await;
    let w = app.worker("nina").await;

    // No body takes nested objects; a list element is keyed by its index.
    let res = app
        .post(
            "/api/v1/chats",
            Some(&w.token),
            json!({"kind": "group", "title": "t", "member_ids": [w.id, {"id": 1}]}),
        )
        .await;
    let problem = res.problem(422);
    let keys: Vec<&String> = problem["errors"]
        .as_object()
        .expect("errors")
        .keys()
        .collect();
    assert_eq!(keys, ["member_ids[1]"], "{problem}");

    // A nested object where a plain value belongs is refused the same way, not read.
    let res = app
        .post(
            "/api/v1/items",
            Some(&w.token),
            json!({"name": "Tea", "kind": "non_perishable", "size": {"owner_id": 1}}),
        )
        .await;
    let problem = res.problem(422);
    assert!(problem["errors"]["size"].is_array(), "{problem}");

    // A CSV import's lines: a column the import does not take (an id, an owner) is refused
    // on line 1, the header, and nothing is imported.
    for column in ["id", "owner_id", "version"] {
        let csv = format!("name,kind,quantity,{column}\nTea,non_perishable,5,7\n");
        let req = app
            .request(Method::POST, "/api/v1/items/import")
            .bearer_auth(&w.token)
            .content_type("text/csv");
        let problem = app.send_bytes(req, csv.into_bytes()).await.problem(422);
        let messages = problem["errors"]["line 1"].to_string();
        assert!(messages.contains(column), "{problem}");
    }
    let listed = app.get("/api/v1/items", Some(&w.token)).await.ok(200);
    assert!(data(&listed).is_empty(), "{listed}");
}

#[actix_web::test]
async fn log_in_forms_keep_their_oauth2_fields_and_nothing_else() {
    let app = TestApp::spawn().await;
    app.register("fred").await;

    let form = |body: &str| {
        let req = app
            .request(Method::POST, "/api/v1/auth/login")
            .content_type("application/x-www-form-urlencoded");
        app.send_bytes(req, body.as_bytes().to_vec())
    };
    let password = PASSWORD.replace(' ', "+");
    // What Swagger UI's password flow (and OAuth2 clients) send.
    let ok = form(&format!(
        "grant_type=password&username=fred&password={password}&scope=&client_id=swagger&client_secret=s3cret"
    ))
    .await
    .ok(200);
    assert!(ok["access_token"].is_string());
    form(&format!(
        "username=fred&password={password}&scope=read+write"
    ))
    .await
    .ok(200);
    refused(
        &form(&format!("username=fred&password={password}&role=owner")).await,
        "role",
    );

    // JSON logins (current and earlier service) take the credentials only.
    let res = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"login": "fred", "password": PASSWORD, "role": "owner"}),
        )
        .await;
    refused(&res, "role");
    let res = app
        .post(
            "/api/user/login",
            None,
            json!({"username": "fred", "password": PASSWORD, "user_id": 1}),
        )
        .await;
    refused(&res, "user_id");

    // Refreshing takes the token only, and a refused refresh does not spend it.
    let session = app.login("fred", PASSWORD).await.ok(200);
    let refresh = session["refresh_token"].as_str().expect("refresh");
    let res = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh, "user_id": 1}),
        )
        .await;
    refused(&res, "user_id");
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await
    .ok(200);
}

/// Every object key (at any depth) of `value`, with its path.
fn keys(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let here = format!("{path}.{k}");
                out.push(here.clone());
                keys(v, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                keys(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Every string (at any depth) of `value`.
fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// What a leaked secret would look like in `body`: a key naming a password or a hash, a
/// bcrypt hash, or the stored form (SHA-256) of one of `secrets`.
fn leaks(body: &Value, secrets: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut all_keys = Vec::new();
    keys(body, "", &mut all_keys);
    for key in all_keys {
        let name = key
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if name.contains("password") || name.contains("hash") {
            found.push(format!("key {key}"));
        }
    }
    let hashes: Vec<String> = secrets
        .iter()
        .map(|s| stockroom::auth::tokens::hash_secret(s))
        .collect();
    let mut all_strings = Vec::new();
    strings(body, &mut all_strings);
    for s in all_strings {
        if ["$2a$", "$2b$", "$2y$", "$argon2"]
            .iter()
            .any(|p| s.starts_with(p))
        {
            found.push(format!("a password hash {s:?}"));
        }
        if hashes.iter().any(|h| s.contains(h.as_str())) {
            found.push(format!("a token hash {s:?}"));
        }
    }
    found
}

#[test]
fn the_leak_check_finds_what_it_looks_for() {
    let secret = "tok_abc".to_owned();
    let hash = stockroom::auth::tokens::hash_secret(&secret);
    assert_eq!(
        leaks(&json!({"user": {"password_hash": "x"}}), &[]).len(),
        1
    );
    assert_eq!(leaks(&json!({"data": [{"token_hash": "x"}]}), &[]).len(), 1);
    assert_eq!(leaks(&json!({"data": [{"p": "$2b$04$abc"}]}), &[]).len(), 1);
    assert_eq!(
        leaks(&json!({"t": hash}), std::slice::from_ref(&secret)).len(),
        1
    );
    assert!(leaks(
        &json!({"file": {"sha256": "00ff"}, "token": secret}),
        &[secret]
    )
    .is_empty());
}

#[actix_web::test]
async fn no_answer_carries_a_password_or_token_hash() {
    let app = TestApp::spawn().await;
    let mut answers: Vec<(String, Value)> = Vec::new();
    let mut secrets: Vec<String> = Vec::new();
    let mut keep = |what: &str, body: Value, secrets: &mut Vec<String>| {
        for key in ["access_token", "refresh_token", "token", "signing_secret"] {
            let mut stack = vec![&body];
            while let Some(v) = stack.pop() {
                if let Some(s) = v.get(key).and_then(Value::as_str) {
                    secrets.push(s.to_owned());
                }
                match v {
                    Value::Object(m) => stack.extend(m.values()),
                    Value::Array(a) => stack.extend(a.iter()),
                    _ => {}
                }
            }
        }
        answers.push((what.to_owned(), body));
    };

    let owner = app.owner("olive").await;
    let registered = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "cara", "email": "cara@example.com", "password": PASSWORD, "name": "Cara"}),
        )
        .await
        .ok(201);
    let cara = registered["id"].as_i64().expect("id");
    keep("register", registered, &mut secrets);
    let login = app.login("cara", PASSWORD).await.ok(200);
    let token = login["access_token"].as_str().expect("token").to_owned();
    let refresh = login["refresh_token"].as_str().expect("refresh").to_owned();
    keep("login", login, &mut secrets);
    let req = app
        .request(Method::POST, "/api/v1/auth/login")
        .content_type("application/x-www-form-urlencoded");
    let form = app
        .send_bytes(
            req,
            format!(
                "grant_type=password&username=cara&password={}",
                PASSWORD.replace(' ', "+")
            )
            .into_bytes(),
        )
        .await
        .ok(200);
    keep("form login", form, &mut secrets);
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await
        .ok(200);
    keep("refresh", refreshed, &mut secrets);
    let legacy = app
        .post(
            "/api/user/login",
            None,
            json!({"username": "cara", "password": PASSWORD}),
        )
        .await
        .ok(200);
    keep("legacy login", legacy, &mut secrets);
    let legacy_signup = app
        .post(
            "/register",
            None,
            json!({"username": "lena", "password": PASSWORD}),
        )
        .await
        .ok(201);
    keep("legacy register", legacy_signup, &mut secrets);
    keep(
        "me",
        app.get("/api/v1/me", Some(&token)).await.ok(200),
        &mut secrets,
    );
    keep(
        "patch me",
        app.patch("/api/v1/me", Some(&token), json!({"bio": "hi"}))
            .await
            .ok(200),
        &mut secrets,
    );
    let t = Some(owner.token.as_str());
    for path in [
        "/api/v1/customers".to_owned(),
        format!("/api/v1/customers/{cara}"),
        "/api/v1/users".to_owned(),
        "/api/v1/users?role=owner".to_owned(),
        "/api/v1/dashboard".to_owned(),
    ] {
        keep(&path, app.get(&path, t).await.ok(200), &mut secrets);
    }
    keep(
        "role change",
        app.patch(
            &format!("/api/v1/users/{cara}/role"),
            t,
            json!({"role": "customer"}),
        )
        .await
        .ok(200),
        &mut secrets,
    );
    let bot = app
        .post("/api/v1/bots", t, json!({"name": "Helper"}))
        .await
        .ok(201);
    let bot_id = bot["bot"]["id"].as_i64().expect("bot id");
    keep("bot create", bot, &mut secrets);
    for path in ["/api/v1/bots".to_owned(), format!("/api/v1/bots/{bot_id}")] {
        keep(&path, app.get(&path, t).await.ok(200), &mut secrets);
    }
    keep(
        "bot rotate",
        app.post(&format!("/api/v1/bots/{bot_id}/token"), t, json!({}))
            .await
            .ok(200),
        &mut secrets,
    );
    keep(
        "bot patch",
        app.patch(
            &format!("/api/v1/bots/{bot_id}"),
            t,
            json!({"description": "helps"}),
        )
        .await
        .ok(200),
        &mut secrets,
    );
    let chat = app
        .post(
            "/api/v1/chats",
            Some(&token),
            json!({"kind": "direct", "member_ids": [owner.id]}),
        )
        .await
        .ok(201);
    let chat_id = chat["id"].as_i64().expect("chat id");
    keep("chat", chat, &mut secrets);
    app.post(
        &format!("/api/v1/chats/{chat_id}/messages"),
        Some(&token),
        json!({"body": "hello"}),
    )
    .await
    .ok(201);
    for path in [
        "/api/v1/chats".to_owned(),
        format!("/api/v1/chats/{chat_id}/members"),
        format!("/api/v1/chats/{chat_id}/messages"),
    ] {
        keep(&path, app.get(&path, t).await.ok(200), &mut secrets);
    }
    keep(
        "notifications",
        app.get("/api/v1/notifications", t).await.ok(200),
        &mut secrets,
    );
    // Errors about credentials say nothing of them either.
    keep(
        "wrong password",
        app.login("cara", "wrong password!").await.problem(401),
        &mut secrets,
    );

    assert!(secrets.len() >= 8, "the walk saw the secrets it checks");
    for (what, body) in &answers {
        let found = leaks(body, &secrets);
        assert!(found.is_empty(), "{what}: {found:?} in {body}");
    }
}
