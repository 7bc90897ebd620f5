//! What clients and generated clients rely on beyond single routes: errors keyed by the
//! field's path, and an OpenAPI document that says what the server enforces.

use std::collections::HashSet;

use actix_web::http::Method;
use serde_json::{json, Value};

use crate::common::TestApp;

/// The keys of a problem's `errors`.
#[track_caller]
fn error_keys(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_object()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .keys()
        .cloned()
        .collect()
}

#[actix_web::test]
async fn body_errors_are_keyed_by_the_fields_path() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olivia").await;
    let token = Some(owner.token.as_str());

    // An unknown enum value.
    let res = app
        .post(
            "/api/v1/items",
            token,
            json!({"name": "Gizmo", "kind": "gadget"}),
        )
        .await;
    let problem = res.problem(422);
    assert_eq!(error_keys(&problem), ["kind"], "{problem}");
    assert!(problem["errors"]["kind"][0]
        .as_str()
        .is_some_and(|m| m.contains("gadget") && m.contains("perishable")));

    // A wrong type.
    let res = app
        .post(
            "/api/v1/items",
            token,
            json!({"name": "Gizmo", "kind": "non_perishable", "min_quantity": "lots"}),
        )
        .await;
    assert_eq!(error_keys(&res.problem(422)), ["min_quantity"]);

    // A missing field.
    let res = app
        .post("/api/v1/items", token, json!({"kind": "non_perishable"}))
        .await;
    assert_eq!(error_keys(&res.problem(422)), ["name"]);

    let item = app
        .post(
            "/api/v1/items",
            token,
            json!({"name": "Gizmo", "kind": "non_perishable", "quantity": 3}),
        )
        .await
        .ok(201);
    let id = item["id"].as_i64().expect("id");
    let res = app
        .post(
            &format!("/api/v1/items/{id}/adjustments"),
            token,
            json!({"delta": -1, "reason": "stolen"}),
        )
        .await;
    assert_eq!(error_keys(&res.problem(422)), ["reason"]);

    let customer = app.register("carl").await;
    let carl = customer["id"].as_i64().expect("id");
    for role in ["emperor", "bot"] {
        let res = app
            .patch(
                &format!("/api/v1/users/{carl}/role"),
                token,
                json!({"role": role}),
            )
            .await;
        assert_eq!(error_keys(&res.problem(422)), ["role"], "role {role}");
    }

    // Login names the field too, as JSON and as a form.
    let res = app
        .post("/api/v1/auth/login", None, json!({"login": "olivia"}))
        .await;
    assert_eq!(error_keys(&res.problem(422)), ["password"]);
    let form = app
        .request(Method::POST, "/api/v1/auth/login")
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    let res = app.send_bytes(form, b"username=olivia".to_vec()).await;
    assert_eq!(error_keys(&res.problem(422)), ["password"]);
}

#[actix_web::test]
async fn body_statuses_follow_the_contract() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olivia").await;

    let raw = |body: &'static str, content_type: &'static str| {
        app.request(Method::POST, "/api/v1/items")
            .bearer_auth(&owner.token)
            .insert_header(("Content-Type", content_type))
            .send_body(body)
    };
    // Malformed JSON: 400 (and trailing garbage is malformed too).
    let res = collect(raw(r#"{"name": "#, "application/json").await).await;
    assert_eq!(res.0, 400, "{}", res.1);
    let res = collect(raw(r#"{"name":"a","kind":"perishable"} x"#, "application/json").await).await;
    assert_eq!(res.0, 400, "{}", res.1);
    // Wrong media type: 415.
    let res = collect(raw(r#"{"name":"a"}"#, "text/plain").await).await;
    assert_eq!(res.0, 415, "{}", res.1);

    // A body that is JSON but not an object is refused, not read field by field.
    for body in [
        json!([]),
        json!("bio"),
        json!(null),
        json!([null, null, null, null]),
    ] {
        let res = app
            .patch("/api/v1/me", Some(&owner.token), body.clone())
            .await;
        let problem = res.problem(422);
        assert_eq!(error_keys(&problem), ["body"], "{body}");
    }
}

async fn collect(
    res: Result<
        awc::ClientResponse<
            impl futures::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
        >,
        awc::error::SendRequestError,
    >,
) -> (u16, String) {
    let mut res = res.expect("request reaches the server");
    let body = res.body().await.expect("body");
    (
        res.status().as_u16(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[actix_web::test]
async fn query_errors_are_400_keyed_by_the_parameter() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olivia").await;
    let token = Some(owner.token.as_str());
    for (path, key) in [
        ("/api/v1/customers?limit=abc", "limit"),
        ("/api/v1/customers?limit=0", "limit"),
        ("/api/v1/customers?limit=201", "limit"),
        ("/api/v1/customers?sort=height", "sort"),
        ("/api/v1/items?kind=gadget", "kind"),
        (
            "/api/v1/items?expiring_within_days=-1",
            "expiring_within_days",
        ),
        ("/api/v1/items?low_stock=maybe", "low_stock"),
        ("/api/v1/users?role=king", "role"),
        ("/api/v1/replenishment-requests?status=lost", "status"),
        ("/api/v1/files/1/thumbnail?size=9000", "size"),
    ] {
        let problem = app.get(path, token).await.problem(400);
        assert_eq!(error_keys(&problem), [key], "{path}: {problem}");
    }
    // The documented bounds themselves are accepted.
    for path in ["/api/v1/customers?limit=1", "/api/v1/customers?limit=200"] {
        app.get(path, token).await.ok(200);
    }
}

#[actix_web::test]
async fn a_fixed_path_answers_405_for_another_method() {
    let app = TestApp::spawn().await;
    let owner = app.owner("olivia").await;
    let res = app
        .call(
            Method::PATCH,
            "/api/v1/items/export.csv",
            Some(&owner.token),
            Some(&json!({})),
        )
        .await;
    res.problem(405);
    assert_eq!(res.header("allow").as_deref(), Some("GET"));
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

#[actix_web::test]
async fn operation_ids_are_unique() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json", None).await.ok(200);
    let mut seen = HashSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().expect("operationId").to_owned();
        assert!(seen.insert(id.clone()), "{method} {path} repeats {id}");
    }
}

/// Every `$ref` names a schema the document has (schemas added by hand, like the sockets'
/// frames, bring what they point at).
#[actix_web::test]
async fn every_schema_reference_resolves() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json", None).await.ok(200);
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    let text = doc.to_string();
    let prefix = "\"#/components/schemas/";
    let missing: HashSet<&str> = text
        .match_indices(prefix)
        .filter_map(|(at, _)| text[at + prefix.len()..].split('"').next())
        .filter(|name| !schemas.contains_key(*name))
        .collect();
    assert!(missing.is_empty(), "dangling references: {missing:?}");
}

/// The document's `security` comes from the router's list of guarded scopes; this calls
/// every operation without credentials to check that list against what is enforced.
#[actix_web::test]
async fn documented_security_is_what_the_server_enforces() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json", None).await.ok(200);
    for (method, path, op) in operations(&doc) {
        let url = path.replace("{id}", "1");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let res = app.call(method.clone(), &url, None, None).await;
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        if secured {
            assert_eq!(res.status, 401, "{method} {path}: {}", res.text());
            assert_eq!(
                op["responses"]["401"]["$ref"], "#/components/responses/Unauthorized",
                "{method} {path}"
            );
        } else {
            assert_ne!(
                res.status, 401,
                "{method} {path} is guarded but documented open"
            );
        }
    }
}

#[actix_web::test]
async fn the_document_states_the_limits_it_enforces() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json", None).await.ok(200);
    let list = &doc["paths"]["/api/v1/customers"]["get"]["parameters"];
    let limit = list
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .expect("limit parameter");
    assert_eq!(limit["schema"]["minimum"], 1);
    assert_eq!(limit["schema"]["maximum"], 200);

    let register = &doc["components"]["schemas"]["RegisterRequest"]["properties"];
    assert_eq!(register["name"]["minLength"], 1);
    assert_eq!(register["username"]["maxLength"], 32);
    let batch = &doc["components"]["schemas"]["NewBatch"]["properties"];
    assert_eq!(batch["quantity"]["minimum"], 1);

    let download = &doc["paths"]["/api/v1/files/{id}"]["get"]["responses"]["200"]["content"];
    for media in ["image/jpeg", "image/png", "image/webp", "application/pdf"] {
        assert!(download[media].is_object(), "{media} missing: {download}");
    }
    let role = &doc["components"]["schemas"]["AssignableRole"]["enum"];
    assert_eq!(*role, json!(["owner", "worker", "customer"]));
}

#[actix_web::test]
async fn a_nul_character_never_reaches_the_database() {
    let app = TestApp::spawn().await;
    let owner = app.owner("nora").await;
    let t = Some(owner.token.as_str());
    // PostgreSQL cannot compare text holding U+0000 (it answered 500); no stored text holds
    // it, so a search for it finds nothing, and the database is not asked.
    for path in [
        "/api/v1/items?q=milk%00",
        "/api/v1/items?barcode=%00",
        "/api/v1/customers?q=a%00",
    ] {
        let page = app.get(path, t).await.ok(200);
        assert_eq!(page["data"], json!([]), "{path}");
    }
    let res = app
        .post(
            "/api/v1/items",
            t,
            serde_json::json!({"name": "Milk\u{0}", "kind": "perishable"}),
        )
        .await
        .problem(422);
    assert!(res["errors"]["name"].is_array(), "{res}");
    let res = app
        .patch("/api/v1/me", t, serde_json::json!({"bio": "a\u{0}b"}))
        .await
        .problem(422);
    assert!(res["errors"]["bio"].is_array(), "{res}");
    // A login holding NUL names no account: the usual 401.
    app.login("nora\u{0}", crate::common::PASSWORD)
        .await
        .problem(401);
}
