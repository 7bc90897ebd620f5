//! The `stockroom` binary as an operator runs it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::PASSWORD;

const BIN: &str = env!("CARGO_BIN_EXE_stockroom");

fn command(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("cli.db").display()),
        )
        .env("STOCKROOM_BCRYPT_COST", "4");
    cmd
}

#[test]
fn a_bad_setting_stops_with_exit_2_and_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("dir");
    for (name, value) in [
        ("STOCKROOM_BCRYPT_COST", "99"),
        ("STOCKROOM_BIND", "not-an-address"),
        ("DATABASE_URL", "mysql://nope"),
        ("STOCKROOM_JWT_SECRET", "short"),
    ] {
        let out = command(dir.path()).env(name, value).output().expect("run");
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
    }
    let out = command(dir.path())
        .env("DATABASE_URL", "postgres://127.0.0.1:1/x")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("STOCKROOM_JWT_SECRET"));
}

#[test]
fn published_placeholders_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().expect("dir");
    // The values docker-compose.yml used to fall back to, and one of the obvious ones.
    for (name, value) in [
        (
            "STOCKROOM_JWT_SECRET",
            "change-me-to-a-long-random-secret-of-32-bytes",
        ),
        ("STOCKROOM_OWNER_PASSWORD", "change-me-please"),
        ("STOCKROOM_OWNER_PASSWORD", "Password1"),
    ] {
        let out = command(dir.path())
            .env(name, value)
            .arg("migrate")
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
        assert!(
            !stderr.contains(value),
            "the value is never echoed: {stderr}"
        );
    }
}

#[test]
fn migrate_and_create_owner() {
    let dir = tempfile::tempdir().expect("dir");
    let out = command(dir.path()).arg("migrate").output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = command(dir.path())
        .args([
            "create-owner",
            "--username",
            "boss",
            "--email",
            "boss@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("boss"));
    // The secret was generated once and kept beside the database, owner-only.
    let secret = dir.path().join("cli.db.jwt-secret");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&secret).expect("secret").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // A second owner with the same name is refused.
    let out = command(dir.path())
        .args([
            "create-owner",
            "--username",
            "boss",
            "--email",
            "b2@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn http_get(port: u16, path: &str, request_id: &str) -> Option<String> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nX-Request-Id: {request_id}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn serves_json_logs_with_request_ids_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let mut child = command(dir.path())
        .env("STOCKROOM_BIND", format!("127.0.0.1:{port}"))
        .env("STOCKROOM_LOG_FORMAT", "json")
        .env("STOCKROOM_OWNER_USERNAME", "owner")
        .env("STOCKROOM_OWNER_EMAIL", "owner@example.com")
        .env("STOCKROOM_OWNER_PASSWORD", PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Some(res) = http_get(port, "/readyz", "cli-ready") {
            if res.starts_with("HTTP/1.1 200") {
                break true;
            }
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::yield_now();
    };
    assert!(ready, "the server did not become ready");
    let res = http_get(port, "/healthz", "cli-test-42").expect("healthz");
    assert!(
        res.to_ascii_lowercase()
            .contains("x-request-id: cli-test-42"),
        "{res}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "exit status {:?}", out.status);
    let logs =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let line = BufReader::new(logs.as_bytes())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("cli-test-42"))
        .unwrap_or_else(|| panic!("no log line with the request id in:\n{logs}"));
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(json["request_id"], "cli-test-42");
    assert_eq!(json["status"], 200);
    assert!(logs.contains("created the owner"), "{logs}");
}
