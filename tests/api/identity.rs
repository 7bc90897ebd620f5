use actix_web::http::Method;
use base64::Engine;
use serde_json::{json, Value};

use crate::common::{TestApp, TestResponse, PASSWORD};

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

async fn set_role(app: &TestApp, token: &str, user_id: i64, role: &str) -> TestResponse {
    app.patch(
        &format!("/api/v1/users/{user_id}/role"),
        Some(token),
        json!({ "role": role }),
    )
    .await
}

const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

#[actix_web::test]
async fn register_validates_and_refuses_duplicates() {
    let app = TestApp::spawn().await;
    let user = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "Alice", "email": "Alice@Example.com", "password": PASSWORD,
                   "name": "Alice A", "phone": "+1 555 123 4567"}),
        )
        .await
        .ok(201);
    assert_eq!(user["role"], "customer");
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["phone"], "+1 555 123 4567");
    assert!(user.get("password_hash").is_none() && user.get("password").is_none());
    assert!(user["created_at"].as_str().unwrap_or("").ends_with('Z'));

    for (username, email) in [
        ("alice", "other@example.com"),
        ("other", "ALICE@example.COM"),
    ] {
        let res = app
            .post(
                "/api/v1/auth/register",
                None,
                json!({"username": username, "email": email, "password": PASSWORD}),
            )
            .await;
        res.problem(409);
    }
    let bad = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "bob", "email": "bob@example.com", "password": "x".repeat(73),
                   "phone": "call me"}),
        )
        .await
        .problem(422);
    assert!(bad["errors"]["password"].is_array());
    assert!(bad["errors"]["phone"].is_array());
}

#[actix_web::test]
async fn login_by_username_email_or_oauth2_form() {
    let app = TestApp::spawn().await;
    app.register("carol").await;
    for login in ["carol", "CAROL", "carol@example.com", "Carol@Example.COM"] {
        let body = app.login(login, PASSWORD).await.ok(200);
        assert_eq!(body["token_type"], "bearer");
        assert!(body["expires_in"].as_i64().unwrap_or(0) > 0);
        assert_eq!(body["user"]["username"], "carol");
        let token = body["access_token"].as_str().expect("token");
        let me = app.get("/api/v1/me", Some(token)).await.ok(200);
        assert_eq!(me["username"], "carol");
    }
    let form = app
        .request(Method::POST, "/api/v1/auth/login")
        .content_type("application/x-www-form-urlencoded");
    let res = app
        .send_bytes(
            form,
            format!(
                "grant_type=password&username=carol&password={}",
                PASSWORD.replace(' ', "+")
            )
            .into_bytes(),
        )
        .await
        .ok(200);
    assert!(res["access_token"].is_string());
}

#[actix_web::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let app = TestApp::spawn().await;
    app.register("dave").await;
    let wrong = app.login("dave", "not the password").await.problem(401);
    let unknown = app.login("nobody", "not the password").await.problem(401);
    assert_eq!(wrong["detail"], unknown["detail"]);
}

#[actix_web::test]
async fn repeated_failures_are_rate_limited() {
    let app = TestApp::spawn().await;
    app.register("erin").await;
    for _ in 0..5 {
        app.login("erin", "wrong password").await.problem(401);
    }
    let limited = app.login("erin", PASSWORD).await;
    limited.problem(429);
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!(retry >= 1);
    // Another account from the same address is not locked by erin's failures.
    app.register("frank").await;
    app.login("frank", PASSWORD).await.ok(200);
}

#[actix_web::test]
async fn refresh_rotates_and_reuse_revokes_the_session() {
    let app = TestApp::spawn().await;
    let s = app.customer("gina").await;
    let first = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": s.refresh_token}),
        )
        .await
        .ok(200);
    let new_access = first["access_token"].as_str().expect("access").to_owned();
    let new_refresh = first["refresh_token"].as_str().expect("refresh").to_owned();
    assert_ne!(new_refresh, s.refresh_token);
    app.get("/api/v1/me", Some(&new_access)).await.ok(200);

    // The spent token again: refused, and the whole session ends.
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": s.refresh_token}),
    )
    .await
    .problem(401);
    app.get("/api/v1/me", Some(&new_access)).await.problem(401);
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": new_refresh}),
    )
    .await
    .problem(401);
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": "garbage"}),
    )
    .await
    .problem(401);
}

#[actix_web::test]
async fn logout_ends_access_and_refresh_at_once() {
    let app = TestApp::spawn().await;
    let s = app.customer("hank").await;
    let other = app.login("hank", PASSWORD).await.ok(200);
    app.post("/api/v1/auth/logout", Some(&s.token), json!({}))
        .await
        .ok(204);
    let res = app.get("/api/v1/me", Some(&s.token)).await;
    res.problem(401);
    assert_eq!(res.header("www-authenticate").as_deref(), Some("Bearer"));
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": s.refresh_token}),
    )
    .await
    .problem(401);
    // Other sessions of the same person are untouched.
    let other_token = other["access_token"].as_str().expect("token");
    app.get("/api/v1/me", Some(other_token)).await.ok(200);
    app.post("/api/v1/auth/logout", None, json!({}))
        .await
        .problem(401);
}

#[actix_web::test]
async fn password_change_checks_the_current_one_and_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let s = app.customer("ivy").await;
    let other = app.login("ivy", PASSWORD).await.ok(200);
    app.post(
        "/api/v1/me/password",
        Some(&s.token),
        json!({"current_password": "wrong wrong", "new_password": "a new password"}),
    )
    .await
    .problem(403);
    app.post(
        "/api/v1/me/password",
        Some(&s.token),
        json!({"current_password": PASSWORD, "new_password": "short"}),
    )
    .await
    .problem(422);
    app.post(
        "/api/v1/me/password",
        Some(&s.token),
        json!({"current_password": PASSWORD, "new_password": "a new password"}),
    )
    .await
    .ok(204);
    app.get("/api/v1/me", Some(&s.token)).await.ok(200);
    let other_token = other["access_token"].as_str().expect("token");
    app.get("/api/v1/me", Some(other_token)).await.problem(401);
    app.login("ivy", PASSWORD).await.problem(401);
    app.login("ivy", "a new password").await.ok(200);
}

#[actix_web::test]
async fn bad_tokens_are_401_with_www_authenticate() {
    let app = TestApp::spawn().await;
    let s = app.customer("jack").await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: Value, sid: i64| json!({"sub": s.id.to_string(), "role": "owner", "sid": sid, "iat": now, "exp": exp});
    // The real session id is in the real token.
    let real: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.token.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("claims");
    let sid = real["sid"].as_i64().expect("sid");
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(json!(now + 600), sid))
    );
    let cases = [
        ("garbage", "not-a-token".to_owned()),
        (
            "other secret",
            sign(
                &claims(json!(now + 600), sid),
                "another-secret-that-is-32-bytes-long!!",
            ),
        ),
        ("alg none", none),
        ("expired", sign(&claims(json!(now - 10), sid), SECRET)),
        (
            "exp wrong type",
            sign(&claims(json!("tomorrow"), sid), SECRET),
        ),
        (
            "exp missing",
            sign(
                &json!({"sub": s.id.to_string(), "role": "customer", "sid": sid, "iat": now}),
                SECRET,
            ),
        ),
        (
            "unknown session",
            sign(&claims(json!(now + 600), 987_654), SECRET),
        ),
    ];
    for (name, token) in cases {
        let res = app.get("/api/v1/me", Some(&token)).await;
        assert_eq!(res.status, 401, "{name}: {}", res.text());
        assert_eq!(
            res.header("www-authenticate").as_deref(),
            Some("Bearer"),
            "{name}"
        );
        res.problem(401);
    }
    // A token with the right secret and a live session works even if it claims another
    // role: the role comes from the database, not the token.
    let forged_role = sign(&claims(json!(now + 600), sid), SECRET);
    app.get("/api/v1/me", Some(&forged_role)).await.ok(200);
    app.get("/api/v1/users", Some(&forged_role))
        .await
        .problem(403);
    app.get("/api/v1/me", None).await.problem(401);
    let bot = app
        .request(Method::GET, "/api/v1/me")
        .insert_header(("Authorization", "Bot nonsense"));
    app.send(bot, None).await.problem(401);
}

#[actix_web::test]
async fn role_rules_for_people_routes() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olga").await;
    let worker = app.worker("walt").await;
    let customer = app.customer("kim").await;
    let kim = customer.id;

    let staff_routes = [
        "/api/v1/customers".to_owned(),
        format!("/api/v1/customers/{kim}"),
    ];
    for path in &staff_routes {
        app.get(path, Some(&owner.token)).await.ok(200);
        app.get(path, Some(&worker.token)).await.ok(200);
        app.get(path, Some(&customer.token)).await.problem(403);
        app.get(path, None).await.problem(401);
    }
    app.get("/api/v1/users", Some(&owner.token)).await.ok(200);
    app.get("/api/v1/users", Some(&worker.token))
        .await
        .problem(403);
    app.patch(
        &format!("/api/v1/users/{kim}/role"),
        Some(&worker.token),
        json!({"role": "worker"}),
    )
    .await
    .problem(403);
    app.delete(&format!("/api/v1/customers/{kim}"), Some(&worker.token))
        .await
        .problem(403);
    app.delete(&format!("/api/v1/customers/{kim}"), Some(&customer.token))
        .await
        .problem(403);
}

#[actix_web::test]
async fn roles_change_at_once_and_the_last_owner_stays() {
    let app = TestApp::spawn().await;
    let owner = app.owner("otto").await;
    let s = app.customer("lena").await;
    app.get("/api/v1/customers", Some(&s.token))
        .await
        .problem(403);
    let promoted = app
        .patch(
            &format!("/api/v1/users/{}/role", s.id),
            Some(&owner.token),
            json!({"role": "worker"}),
        )
        .await
        .ok(200);
    assert_eq!(promoted["role"], "worker");
    // The same token now carries the new role.
    app.get("/api/v1/customers", Some(&s.token)).await.ok(200);
    set_role(&app, &owner.token, s.id, "king")
        .await
        .problem(422);

    // The only owner cannot step down; with a second owner, one can.
    set_role(&app, &owner.token, owner.id, "worker")
        .await
        .problem(409);
    set_role(&app, &owner.token, s.id, "owner").await.ok(200);
    set_role(&app, &owner.token, owner.id, "worker")
        .await
        .ok(200);
    set_role(&app, &s.token, s.id, "customer")
        .await
        .problem(409);
    let owners = app
        .get("/api/v1/users?role=owner", Some(&s.token))
        .await
        .ok(200);
    assert_eq!(owners["data"].as_array().map(Vec::len), Some(1));
    app.patch(
        "/api/v1/users/99999/role",
        Some(&s.token),
        json!({"role": "worker"}),
    )
    .await
    .problem(404);
}

#[actix_web::test]
async fn concurrent_demotions_never_remove_every_owner() {
    let app = TestApp::spawn().await;
    let a = app.owner("owner-a").await;
    let b = app.owner("owner-b").await;
    let (path_b, path_a) = (
        format!("/api/v1/users/{}/role", b.id),
        format!("/api/v1/users/{}/role", a.id),
    );
    let demote_b = app.patch(&path_b, Some(&a.token), json!({"role": "worker"}));
    let demote_a = app.patch(&path_a, Some(&b.token), json!({"role": "worker"}));
    let (r1, r2) = futures::join!(demote_b, demote_a);
    // One wins; the other is refused: 409 when both got past authorization at once (the
    // last-owner check), or 403 when the loser had already been demoted.
    let statuses = [r1.status, r2.status];
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&409) || statuses.contains(&403),
        "{statuses:?}"
    );
    let users = app
        .get(
            "/api/v1/users?role=owner",
            Some(if r1.status == 200 { &a.token } else { &b.token }),
        )
        .await
        .ok(200);
    assert_eq!(users["data"].as_array().map(Vec::len), Some(1));
}

#[actix_web::test]
async fn profile_is_flat_and_patchable() {
    let app = TestApp::spawn().await;
    let s = app.customer("mia").await;
    let me = app.get("/api/v1/me", Some(&s.token)).await.ok(200);
    for key in [
        "id",
        "username",
        "email",
        "name",
        "phone",
        "role",
        "bio",
        "avatar_file_id",
        "created_at",
    ] {
        assert!(me.get(key).is_some(), "missing {key} in {me}");
    }
    let updated = app
        .patch(
            "/api/v1/me",
            Some(&s.token),
            json!({"name": "Mia M", "bio": "hi", "phone": "+4915112345678"}),
        )
        .await
        .ok(200);
    assert_eq!(updated["name"], "Mia M");
    assert_eq!(updated["bio"], "hi");
    let cleared = app
        .patch("/api/v1/me", Some(&s.token), json!({"bio": null}))
        .await
        .ok(200);
    assert_eq!(cleared["bio"], Value::Null);
    assert_eq!(cleared["name"], "Mia M");
    app.patch("/api/v1/me", Some(&s.token), json!({"phone": "nope"}))
        .await
        .problem(422);
    app.patch(
        "/api/v1/me",
        Some(&s.token),
        json!({"avatar_file_id": 424242}),
    )
    .await
    .problem(404);
}

#[actix_web::test]
async fn customers_are_searchable_sortable_and_paginated() {
    let app = TestApp::spawn().await;
    let owner = app.owner("oscar").await;
    for name in ["zoe", "adam", "Nora", "mike", "bella"] {
        app.register(name).await;
    }
    let list = app
        .get("/api/v1/customers?sort=username", Some(&owner.token))
        .await
        .ok(200);
    let names: Vec<_> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|u| u["username"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(names, ["adam", "bella", "mike", "Nora", "zoe"]);
    assert_eq!(list["next_cursor"], Value::Null);

    let desc = app
        .get("/api/v1/customers?sort=-created_at", Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(desc["data"][0]["username"], "bella");

    let found = app
        .get("/api/v1/customers?q=NOR", Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(found["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["data"][0]["username"], "Nora");
    let none = app
        .get("/api/v1/customers?q=%25", Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(none["data"].as_array().map(Vec::len), Some(0));

    // Two at a time, every customer exactly once.
    let seen: Vec<_> = app
        .all_pages(
            "/api/v1/customers?sort=username&limit=2",
            Some(&owner.token),
        )
        .await
        .iter()
        .map(|u| u["username"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(seen, ["adam", "bella", "mike", "Nora", "zoe"]);
    app.get("/api/v1/customers?sort=price", Some(&owner.token))
        .await
        .problem(400);
}

#[actix_web::test]
async fn deleting_a_customer_erases_them_and_nobody_else() {
    let app = TestApp::spawn().await;
    let owner = app.owner("ola").await;
    let worker = app.worker("wes").await;
    let gone = app.customer("nina").await;
    let stays = app.customer("omar").await;
    app.delete(
        &format!("/api/v1/customers/{}", gone.id),
        Some(&owner.token),
    )
    .await
    .ok(204);
    app.get("/api/v1/me", Some(&gone.token)).await.problem(401);
    app.login("nina", PASSWORD).await.problem(401);
    app.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": gone.refresh_token}),
    )
    .await
    .problem(401);
    app.get(
        &format!("/api/v1/customers/{}", gone.id),
        Some(&owner.token),
    )
    .await
    .problem(404);
    app.delete(
        &format!("/api/v1/customers/{}", gone.id),
        Some(&owner.token),
    )
    .await
    .problem(404);
    // Staff are not customers: 404, and nothing changes.
    app.delete(
        &format!("/api/v1/customers/{}", worker.id),
        Some(&owner.token),
    )
    .await
    .problem(404);
    app.get("/api/v1/me", Some(&worker.token)).await.ok(200);
    app.get("/api/v1/me", Some(&stays.token)).await.ok(200);
    let list = app
        .get("/api/v1/customers", Some(&owner.token))
        .await
        .ok(200);
    let names: Vec<_> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|u| u["username"].clone())
        .collect();
    assert_eq!(names, [json!("omar")]);
    // The username is free again.
    app.register("nina").await;
}

#[actix_web::test]
async fn compatibility_routes_answer_like_the_earlier_service() {
    let app = TestApp::spawn().await;
    let res = app
        .post(
            "/register",
            None,
            json!({"username": "legacy", "password": PASSWORD}),
        )
        .await
        .ok(201);
    assert_eq!(res, json!({"message": "User registered successfully"}));
    app.post(
        "/register",
        None,
        json!({"username": "legacy", "password": PASSWORD}),
    )
    .await
    .problem(409);
    let login = app
        .post(
            "/api/user/login",
            None,
            json!({"username": "legacy", "password": PASSWORD}),
        )
        .await
        .ok(200);
    assert_eq!(login["message"], "Correct password");
    assert_eq!(login["token_type"], "bearer");
    let token = login["access_token"].as_str().expect("token");
    let me = app.get("/api/v1/me", Some(token)).await.ok(200);
    assert_eq!(me["username"], "legacy");
    app.post(
        "/api/user/login",
        None,
        json!({"username": "legacy", "password": "wrong one"}),
    )
    .await
    .problem(401);
}

/// Each process remembers live sessions (so a request costs no database trip to check its
/// token); ending one on a process must still refuse the very next request on another.
#[actix_web::test]
async fn ended_sessions_are_refused_at_once_by_another_process() {
    let a = TestApp::spawn().await;
    let b = TestApp::builder().same_database_as(&a).spawn().await;
    let owner = a.owner("olga").await;
    let s = a.customer("paula").await;
    let w = a.worker("wanda").await;
    let c = a.customer("cleo").await;
    // Each is remembered by b.
    for session in [&s, &w, &c] {
        b.get("/api/v1/me", Some(&session.token)).await.ok(200);
        b.get("/api/v1/me", Some(&session.token)).await.ok(200);
    }
    b.get("/api/v1/customers", Some(&w.token)).await.ok(200);

    a.post("/api/v1/auth/logout", Some(&s.token), json!({}))
        .await
        .ok(204);
    b.get("/api/v1/me", Some(&s.token)).await.problem(401);
    b.post(
        "/api/v1/auth/refresh",
        None,
        json!({"refresh_token": s.refresh_token}),
    )
    .await
    .problem(401);

    // A demoted worker loses staff routes at once, on the other process too.
    set_role(&a, &owner.token, w.id, "customer").await.ok(200);
    b.get("/api/v1/customers", Some(&w.token))
        .await
        .problem(403);

    // A password change ends the other sessions; an erased customer is signed out.
    let second = a.login("cleo", PASSWORD).await.ok(200);
    let second = second["access_token"].as_str().expect("token").to_owned();
    b.get("/api/v1/me", Some(&second)).await.ok(200);
    a.post(
        "/api/v1/me/password",
        Some(&c.token),
        json!({"current_password": PASSWORD, "new_password": "another long password 1"}),
    )
    .await
    .ok(204);
    b.get("/api/v1/me", Some(&second)).await.problem(401);
    b.get("/api/v1/me", Some(&c.token)).await.ok(200);
    a.delete(&format!("/api/v1/customers/{}", c.id), Some(&owner.token))
        .await
        .ok(204);
    b.get("/api/v1/me", Some(&c.token)).await.problem(401);
}

#[actix_web::test]
async fn login_failures_count_across_processes() {
    if !crate::common::is_postgres() {
        // Several processes share PostgreSQL; SQLite is the single-process embedded mode.
        return;
    }
    let a = TestApp::spawn().await;
    let b = TestApp::builder().same_database_as(&a).spawn().await;
    a.register("quinn").await;
    for n in 0..5 {
        let app = if n % 2 == 0 { &a } else { &b };
        app.login("quinn", "wrong password").await.problem(401);
    }
    a.login("quinn", PASSWORD).await.problem(429);
    b.login("quinn", PASSWORD).await.problem(429);
}

#[actix_web::test]
async fn passwords_are_counted_in_characters_and_every_one_counts() {
    let app = TestApp::spawn().await;
    // 72 characters of two bytes each: more than bcrypt's 72 bytes, and still a valid password.
    let long = "é".repeat(72);
    app.post(
        "/api/v1/auth/register",
        None,
        json!({"username": "elodie", "email": "elodie@example.com", "password": long}),
    )
    .await
    .ok(201);
    app.login("elodie", &long).await.ok(200);
    // Differing only past the 72nd byte is a different password.
    let near = format!("{}e", "é".repeat(71));
    app.login("elodie", &near).await.problem(401);
    let too_long = "é".repeat(73);
    let refused = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "eloise", "email": "eloise@example.com", "password": too_long}),
        )
        .await
        .problem(422);
    assert!(refused["errors"]["password"].is_array(), "{refused}");
    // Seven characters are too few, however many bytes they take.
    app.post(
        "/api/v1/auth/register",
        None,
        json!({"username": "eliane", "email": "eliane@example.com", "password": "ééééééé"}),
    )
    .await
    .problem(422);
}

#[actix_web::test]
async fn an_empty_cursor_is_the_first_page() {
    let app = TestApp::spawn().await;
    let owner = app.owner("oona").await;
    let first = app
        .get("/api/v1/users?limit=1", Some(&owner.token))
        .await
        .ok(200);
    let empty = app
        .get("/api/v1/users?limit=1&cursor=", Some(&owner.token))
        .await
        .ok(200);
    assert_eq!(first["data"], empty["data"]);
}
