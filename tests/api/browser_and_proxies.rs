//! What browsers, caches and reverse proxies between Stockroom and its users rely on:
//! answers that carry tokens are never stored, `/docs/` is framed by nobody and runs only its
//! own code, and per-address limits see the client behind a trusted proxy and nobody's
//! forged header.

use actix_web::http::Method;
use serde_json::json;

use crate::common::{TestApp, TestResponse, PASSWORD};

fn assert_not_stored(res: &TestResponse, what: &str) {
    assert_eq!(
        res.header("cache-control").as_deref(),
        Some("no-store"),
        "{what} may be cached"
    );
    assert_eq!(
        res.header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
}

#[actix_web::test]
async fn answers_that_carry_tokens_are_never_stored() {
    let app = TestApp::spawn().await;
    let registered = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "nadia", "email": "nadia@example.com", "password": PASSWORD}),
        )
        .await;
    registered.ok(201);
    assert_not_stored(&registered, "registration");
    let login = app.login("nadia", PASSWORD).await;
    let tokens = login.ok(200);
    assert_not_stored(&login, "login");
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({"refresh_token": tokens["refresh_token"]}),
        )
        .await;
    refresh.ok(200);
    assert_not_stored(&refresh, "refresh");
    let access = tokens["access_token"].as_str().expect("access token");
    let me = app.get("/api/v1/me", Some(access)).await;
    me.ok(200);
    assert_not_stored(&me, "GET /me");
    let owner = app.owner("olga").await;
    let bot = app
        .post(
            "/api/v1/bots",
            Some(&owner.token),
            json!({"name": "Shelf bot"}),
        )
        .await;
    bot.ok(201);
    assert_not_stored(&bot, "a new bot's token");
    assert_not_stored(&app.get("/api/v1/me", None).await, "an error");
}

#[actix_web::test]
async fn swagger_ui_has_a_content_policy_cannot_be_framed_and_forgets_tokens() {
    let app = TestApp::spawn().await;
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let policy = page
        .header("content-security-policy")
        .expect("a CSP on /docs/");
    for directive in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(
            policy.contains(directive),
            "{directive} missing from {policy}"
        );
    }
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    let init = app.get("/docs/swagger-initializer.js", None).await;
    assert_eq!(init.status, 200);
    assert!(
        compact(&init.text()).contains("\"persistAuthorization\":false"),
        "Swagger UI keeps tokens in localStorage by default:\n{}",
        init.text()
    );

    let asked = TestApp::builder()
        .env("STOCKROOM_DOCS_PERSIST_AUTHORIZATION", "true")
        .spawn()
        .await;
    let init = asked.get("/docs/swagger-initializer.js", None).await;
    assert!(compact(&init.text()).contains("\"persistAuthorization\":true"));
}

/// The script without spaces, so that its configuration reads the same however it is laid out.
fn compact(script: &str) -> String {
    script.split_whitespace().collect()
}

/// Signs `name` up, as a request whose `X-Forwarded-For` is `forwarded`.
async fn sign_up(app: &TestApp, name: &str, forwarded: &str) -> TestResponse {
    let req = app
        .request(Method::POST, "/api/v1/auth/register")
        .insert_header(("X-Forwarded-For", forwarded));
    let body =
        json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
    app.send(req, Some(&body)).await
}

#[actix_web::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    // Nobody trusted: the header is the client's own word, and every sign-up from this
    // connection's address shares one budget whatever it claims.
    let app = TestApp::builder()
        .env("STOCKROOM_REGISTRATIONS_PER_ADDRESS", "2")
        .spawn()
        .await;
    sign_up(&app, "ann1", "203.0.113.1").await.ok(201);
    sign_up(&app, "ann2", "203.0.113.2").await.ok(201);
    let refused = sign_up(&app, "ann3", "203.0.113.3").await;
    refused.problem(429);
    assert!(refused.header("retry-after").is_some());

    // The test client connects from loopback: trusted, the proxy's header names the client.
    let proxied = TestApp::builder()
        .env("STOCKROOM_REGISTRATIONS_PER_ADDRESS", "2")
        .env("STOCKROOM_TRUSTED_PROXIES", "127.0.0.0/8, ::1, 10.0.0.0/8")
        .spawn()
        .await;
    sign_up(&proxied, "bea1", "203.0.113.1").await.ok(201);
    // A client that writes its own header: the proxy appends the real address, and the
    // forged entry on the left is never read.
    sign_up(&proxied, "bea2", "198.51.100.7, 203.0.113.1")
        .await
        .ok(201);
    sign_up(&proxied, "bea3", "198.51.100.7, 203.0.113.1")
        .await
        .problem(429);
    // Another client behind the same proxy has a budget of its own, also through a chain
    // of trusted proxies.
    sign_up(&proxied, "cat1", "203.0.113.2, 10.1.2.3")
        .await
        .ok(201);
    sign_up(&proxied, "cat2", "203.0.113.2").await.ok(201);
    sign_up(&proxied, "cat3", "203.0.113.2").await.problem(429);
    // A malformed entry is not a client: the limit falls on the proxy itself.
    sign_up(&proxied, "dan1", "not-an-address").await.ok(201);
    sign_up(&proxied, "dan2", "203.0.113.9, garbage")
        .await
        .ok(201);
    sign_up(&proxied, "dan3", "garbage").await.problem(429);
}
