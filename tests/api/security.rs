//! Safe defaults, and the faults found by attacking the running service (issue 9): each
//! test here failed on the code before its fix.

use serde_json::json;

use crate::common::{is_postgres, TestApp, PASSWORD};

// ---------------------------------------------------------------------------------------
// Point 6: safe as shipped.

#[actix_web::test]
async fn the_sqlite_database_is_readable_by_its_owner_only() {
    if is_postgres() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn().await;
    // Write something so that the WAL and its index exist too.
    app.register("ruth").await;
    let path = stockroom::config::sqlite_path(&app.database_url).to_owned();
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let mode = std::fs::metadata(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} has mode {:o}", mode & 0o777);
    }
}

// ---------------------------------------------------------------------------------------
// Point 7.1: the failed-login limit.

#[actix_web::test]
async fn concurrent_guesses_are_counted_before_any_is_checked() {
    let app = TestApp::spawn().await;
    app.register("gina").await;
    let guesses = (0..24).map(|n| {
        let app = &app;
        async move { app.login("gina", &format!("guess number {n}")).await }
    });
    let answers = futures::future::join_all(guesses).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    let checked = statuses.iter().filter(|&&s| s == 401).count();
    assert!(checked <= 5, "{checked} guesses were checked: {statuses:?}");
    for refused in answers.iter().filter(|r| r.status != 401) {
        refused.problem(429);
        let wait: u64 = refused
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After seconds");
        assert!(wait >= 1);
    }
    // The budget is spent: even the right password waits.
    app.login("gina", PASSWORD).await.problem(429);
}

#[actix_web::test]
async fn username_and_email_share_one_budget_and_successes_keep_it() {
    let app = TestApp::spawn().await;
    app.register("hank").await;
    // Logging in counts as an attempt, and a successful one gives it back.
    for n in 0..7 {
        let login = if n % 2 == 0 {
            "hank"
        } else {
            "Hank@Example.com"
        };
        app.login(login, PASSWORD).await.ok(200);
    }
    for login in [
        "hank",
        "HANK",
        "hank@example.com",
        "Hank@Example.com",
        "hank",
    ] {
        app.login(login, "wrong password").await.problem(401);
    }
    app.login("hank@example.com", PASSWORD).await.problem(429);
    app.login("hank", PASSWORD).await.problem(429);
}

// ---------------------------------------------------------------------------------------
// Point 7.5: failed sign-ups count too.

#[actix_web::test]
async fn every_sign_up_attempt_counts_toward_the_address_limit() {
    let app = TestApp::builder()
        .env("STOCKROOM_REGISTRATIONS_PER_ADDRESS", "4")
        .spawn()
        .await;
    app.register("jade").await;
    let taken_email =
        json!({"username": "jade2", "email": "jade@example.com", "password": PASSWORD});
    app.post("/api/v1/auth/register", None, taken_email)
        .await
        .problem(409);
    let taken_name = json!({"username": "jade", "password": PASSWORD});
    app.post("/register", None, taken_name).await.problem(409);
    app.post(
        "/register",
        None,
        json!({"username": "kurt", "password": PASSWORD}),
    )
    .await
    .ok(201);
    let limited = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"username": "lena", "email": "lena@example.com", "password": PASSWORD}),
        )
        .await;
    limited.problem(429);
    assert!(limited.header("retry-after").is_some());
    app.post(
        "/register",
        None,
        json!({"username": "lena", "password": PASSWORD}),
    )
    .await
    .problem(429);
}
