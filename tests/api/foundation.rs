use actix_web::http::Method;
use serde_json::{json, Value};

use crate::common::TestApp;

#[actix_web::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.ok(200)["status"], "ok");
    assert_eq!(app.get("/readyz", None).await.ok(200)["status"], "ready");
}

#[actix_web::test]
async fn readiness_is_503_when_the_database_is_unreachable() {
    let app = TestApp::builder()
        .unreachable_database()
        .env("STOCKROOM_DB_TIMEOUT_MS", "300")
        .spawn()
        .await;
    let res = app.get("/readyz", None).await;
    res.problem(503);
    assert!(res.header("retry-after").is_some());
    // Liveness does not depend on the database.
    app.get("/healthz", None).await.ok(200);
    // Nor does an API call hang or leak internals: it is a clean 503 too.
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"login": "x", "password": "y"}),
        )
        .await;
    let body = login.problem(503);
    assert!(!body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("nonexistent"));
}

#[actix_web::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = TestApp::spawn().await;
    app.get("/nope", None).await.problem(404);
    app.get("/api/v1/auth/nope", None).await.problem(404);

    let res = app.delete("/healthz", None).await;
    res.problem(405);
    assert_eq!(res.header("allow").as_deref(), Some("GET"));

    let res = app.get("/api/v1/auth/login", None).await;
    res.problem(405);
    assert_eq!(res.header("allow").as_deref(), Some("POST"));
}

#[actix_web::test]
async fn malformed_and_mistyped_bodies_are_4xx_problems() {
    let app = TestApp::builder()
        .env("STOCKROOM_MAX_JSON_BYTES", "2048")
        .spawn()
        .await;
    let url = "/api/v1/auth/register";

    let malformed = app
        .request(Method::POST, url)
        .content_type("application/json");
    app.send_bytes(malformed, b"{\"username\": ".to_vec())
        .await
        .problem(400);

    let wrong_type = app.request(Method::POST, url).content_type("text/plain");
    app.send_bytes(wrong_type, b"hello".to_vec())
        .await
        .problem(415);

    let huge = json!({"username": "x".repeat(4096), "email": "a@b.c", "password": "p"});
    app.post(url, None, huge).await.problem(413);

    let missing = app.post(url, None, json!({"username": "alice"})).await;
    let body = missing.problem(422);
    assert!(body["errors"].is_object(), "{body}");

    let invalid = app
        .post(
            url,
            None,
            json!({"username": "a", "email": "not-an-email", "password": "short"}),
        )
        .await;
    let body = invalid.problem(422);
    for field in ["username", "email", "password"] {
        assert!(
            body["errors"][field].is_array(),
            "{field} missing in {body}"
        );
    }
}

#[actix_web::test]
async fn bad_query_and_path_values() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olivia").await;
    app.get("/api/v1/customers?limit=abc", Some(&owner.token))
        .await
        .problem(400);
    app.get("/api/v1/customers?cursor=%%%", Some(&owner.token))
        .await
        .problem(400);
    app.get("/api/v1/customers/abc", Some(&owner.token))
        .await
        .problem(404);
}

#[actix_web::test]
async fn request_ids_are_kept_or_made() {
    let app = TestApp::spawn().await;
    let res = app.get("/healthz", None).await;
    let made = res.header("x-request-id").expect("a request id");
    assert!(made.len() >= 16);

    let req = app
        .request(Method::GET, "/nope")
        .insert_header(("X-Request-Id", "abc-123"));
    let res = app.send(req, None).await;
    assert_eq!(res.header("x-request-id").as_deref(), Some("abc-123"));
    res.problem(404);
}

#[actix_web::test]
async fn cors_follows_the_configured_origins() {
    let app = TestApp::builder()
        .env("STOCKROOM_CORS_ORIGINS", "https://shop.example")
        .spawn()
        .await;
    let preflight = |origin: &'static str| {
        app.request(Method::OPTIONS, "/api/v1/me")
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "GET"))
            .insert_header(("Access-Control-Request-Headers", "authorization"))
    };
    let ok = app.send(preflight("https://shop.example"), None).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        ok.header("access-control-allow-origin").as_deref(),
        Some("https://shop.example")
    );
    let refused = app.send(preflight("https://evil.example"), None).await;
    assert!(refused.header("access-control-allow-origin").is_none());
    assert!(refused.status >= 400);
}

#[actix_web::test]
async fn openapi_document_describes_security_and_errors() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json", None).await.ok(200);
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3.1"));
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bot"]["type"], "apiKey");
    assert!(schemes["password"]["flows"]["password"]["tokenUrl"].is_string());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/api/v1/auth/login",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let default = &op["responses"]["default"]["content"]["application/problem+json"];
            assert!(
                default.is_object(),
                "{method} {path} lacks the problem response"
            );
        }
    }
}

#[actix_web::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let redirect = app.get("/docs", None).await;
    assert!(matches!(redirect.status, 301 | 302 | 307 | 308));
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("swagger-ui"), "{}", page.text());
    let init = app.get("/docs/swagger-initializer.js", None).await;
    assert_eq!(init.status, 200);
    assert!(init.text().contains("/openapi.json"));
    let css = app.get("/docs/swagger-ui.css", None).await;
    assert_eq!(css.status, 200);
    assert!(css.body.len() > 1000);
}

#[actix_web::test]
async fn metrics_count_requests_by_route_template() {
    let app = TestApp::spawn().await;
    app.get("/healthz", None).await.ok(200);
    let owner = app.owner("olivia").await;
    app.get("/api/v1/customers/12345", Some(&owner.token))
        .await
        .problem(404);
    let text = app.get("/metrics", None).await;
    assert_eq!(text.status, 200);
    let text = text.text();
    assert!(text.contains("stockroom_http_requests_total"), "{text}");
    assert!(text.contains(r#"endpoint="/healthz""#), "{text}");
    assert!(
        text.contains(r#"endpoint="/api/v1/customers/{id}""#),
        "{text}"
    );
    assert!(!text.contains("/api/v1/customers/12345"));
    assert!(text.contains("stockroom_http_requests_duration_seconds_bucket"));
    assert!(text.contains("stockroom_db_pool_connections"));
    assert!(text.contains("stockroom_websockets_open"));
}

#[actix_web::test]
async fn metrics_can_be_kept_to_their_own_address() {
    let app = TestApp::builder()
        .env("STOCKROOM_METRICS_BIND", "127.0.0.1:0")
        .spawn()
        .await;
    app.get("/metrics", None).await.problem(404);
    let addr = app.state.settings.metrics_bind.expect("bound");
    let mut res = app
        .client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics address answers");
    assert_eq!(res.status(), 200);
    let body = res.body().await.expect("body");
    assert!(String::from_utf8_lossy(&body).contains("stockroom_db_pool_connections"));
}

/// The committed document must match what the code generates.
#[test]
fn committed_openapi_matches_the_code() {
    let generated: Value = serde_json::to_value(stockroom::router::openapi()).expect("doc");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json exists");
    let committed: Value = serde_json::from_str(&committed).expect("committed doc is JSON");
    assert!(
        generated == committed,
        "openapi/openapi.json is stale; regenerate it with:\n    cargo run -- openapi > openapi/openapi.json"
    );
}
