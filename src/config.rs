//! Settings, read once from the environment (and `.env`), validated at start.
//!
//! A bad value stops the process with exit code 2 and one line naming the setting,
//! so an operator never has to guess which variable is wrong.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rand::RngCore;

/// Which database engine a `DATABASE_URL` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting that could not be used, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(name: &'static str, reason: impl Into<String>) -> Self {
        Self {
            name,
            reason: reason.into(),
        }
    }
}

#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub backend: Backend,
    pub bind: SocketAddr,
    pub jwt_secret: Vec<u8>,
    pub dev_mode: bool,
    pub owner_username: Option<String>,
    pub owner_email: Option<String>,
    pub owner_password: Option<String>,
    pub cors_origins: Vec<String>,
    pub max_json_bytes: usize,
    pub max_upload_bytes: usize,
    pub max_files_per_upload: usize,
    /// The bytes of files one user may keep stored (`STOCKROOM_UPLOAD_QUOTA_BYTES`).
    pub upload_quota_bytes: i64,
    pub max_image_pixels: u64,
    pub expiry_warning_days: i32,
    pub bcrypt_cost: u32,
    pub webhook_allow_private: bool,
    /// When SQLite makes a commit durable (`STOCKROOM_SQLITE_SYNCHRONOUS`).
    pub sqlite_synchronous: SqliteSynchronous,
    /// Reverse proxies whose `X-Forwarded-For` names the client for per-address limits
    /// (`STOCKROOM_TRUSTED_PROXIES`); nobody else's is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Whether Swagger UI keeps the bearer token it was given in the browser's
    /// localStorage across reloads (`STOCKROOM_DOCS_PERSIST_AUTHORIZATION`, default off).
    pub docs_persist_authorization: bool,
    pub log_format: LogFormat,
    pub db_pool_size: u32,
    pub db_timeout: Duration,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub login_failures_per_account: u32,
    pub login_failures_per_address: u32,
    pub registrations_per_address: u32,
    pub rate_limit_window: Duration,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body (extended for large bodies
    /// that keep arriving at a reasonable rate; see `connections::BodyDeadline`).
    pub body_timeout: Duration,
    /// Open connections one client address may hold; the ones over it are answered 429.
    pub max_connections_per_address: usize,
    /// When set, `/metrics` is served only on this address (keep it private).
    pub metrics_bind: Option<SocketAddr>,
    /// How long users' events are kept for `?since=` replay.
    pub event_retention: Duration,
    /// Events one socket may have waiting; past it the socket is closed (4008) and the
    /// client resumes with `since`.
    pub ws_queue_capacity: usize,
    /// Sockets one user may hold open on one process.
    pub ws_sockets_per_user: usize,
    /// Memory for items as last read, in MiB (0: every read asks the database).
    pub item_cache_mb: u64,
    /// PostgreSQL: the least time between the starts of two fence round trips when more
    /// than one request waited for the first (`STOCKROOM_FENCE_PACE_US`; see
    /// `crate::coherence::Fence`).
    pub fence_pace: Duration,
    /// SQLite's page caches, all the pool's connections together.
    pub sqlite_cache_mb: u64,
    /// How often the server pings a socket; one that stays silent for two intervals is closed.
    pub ws_ping_interval: Duration,
    /// The largest frame a client may send.
    pub ws_max_frame_bytes: usize,
    /// How often the expiry and low-stock scan runs (it also runs at start).
    pub alert_scan_interval: Duration,
    /// How long one webhook request may take, connecting and answering included.
    pub webhook_timeout: Duration,
    /// Whether this process sends webhooks (every process may; they take turns per bot).
    pub webhook_delivery: bool,
    /// The largest camera frame accepted, in bytes (decoded from base64 when sent so).
    pub video_max_frame_bytes: usize,
    /// The most pixels a camera frame may have (checked before decoding).
    pub video_max_pixels: u64,
    // In-process burst guards (see `throttle`): per process, answered 429 with `Retry-After`.
    /// Chat messages one user (or bot) may send a minute, over HTTP and the socket together.
    pub messages_per_minute: u32,
    /// Chat messages one user may send at once before the per-minute pace applies.
    pub message_burst: u32,
    /// Upload requests one user may make a minute (both upload routes together; also the
    /// burst).
    pub uploads_per_minute: u32,
    /// Upload requests one user may have in flight at once.
    pub concurrent_uploads_per_user: usize,
    /// Socket upgrades (`/api/ws/chat` and `/api/ws/video` together) one user may make a
    /// minute (also the burst).
    pub ws_connects_per_minute: u32,
    /// Socket upgrades one client address may make a minute (also the burst).
    pub ws_connects_per_address_per_minute: u32,
}

impl std::fmt::Debug for Settings {
    // Hand-written so that secrets can never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("backend", &self.backend)
            .field("bind", &self.bind)
            .field("jwt_secret", &"<redacted>")
            .field("cors_origins", &self.cors_origins)
            .field("db_pool_size", &self.db_pool_size)
            .finish_non_exhaustive()
    }
}

/// Where settings come from: the process environment, or a fixed map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl<S: std::hash::BuildHasher> Source for std::collections::HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        self.get(name).cloned().filter(|v| !v.trim().is_empty())
    }
}

fn parse<T: FromStr>(src: &dyn Source, name: &'static str, default: T) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match src.get(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| ConfigError::new(name, format!("{raw:?}: {e}"))),
    }
}

fn parse_in_range<T>(
    src: &dyn Source,
    name: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let value = parse(src, name, default)?;
    if !range.contains(&value) {
        return Err(ConfigError::new(
            name,
            format!("{value} is outside {}..={}", range.start(), range.end()),
        ));
    }
    Ok(value)
}

fn parse_bool(src: &dyn Source, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match src.get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
        Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
        Some(v) => Err(ConfigError::new(name, format!("{v:?} is not a boolean"))),
    }
}

/// SQLite's `synchronous` setting in WAL mode: when a commit reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// A commit is in the WAL file when it is answered, and the WAL is synced at checkpoints:
    /// a process crash loses nothing, a power loss or OS crash may lose the last commits
    /// (never corrupting the database). SQLite's recommendation for WAL; the default.
    Normal,
    /// Every commit is synced to disk before it is answered: survives power loss too, at
    /// the cost of one fsync per write transaction.
    Full,
}

impl SqliteSynchronous {
    pub fn pragma_value(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

impl FromStr for SqliteSynchronous {
    type Err = &'static str;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.to_ascii_lowercase().as_str() {
            "normal" => Ok(Self::Normal),
            "full" => Ok(Self::Full),
            _ => Err("want `normal` or `full`"),
        }
    }
}

/// `STOCKROOM_TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges
/// (`10.0.0.5, 192.168.0.0/16`).
fn trusted_proxies(src: &dyn Source) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    const NAME: &str = "STOCKROOM_TRUSTED_PROXIES";
    let Some(raw) = src.get(NAME) else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        NAME,
                        format!("{part:?} is not an IP address or CIDR range (e.g. 10.0.0.0/8)"),
                    )
                })
        })
        .collect()
}

/// The backend a database URL selects, by its scheme.
pub fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else {
        None
    }
}

/// The file path inside a `sqlite://` URL (`sqlite://stockroom.db`, `sqlite:///abs/x.db`).
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is an operator error worth stopping for.
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::new("(.env file)", e.to_string())),
        }
        Self::from_source(&ProcessEnv)
    }

    pub fn from_source(src: &dyn Source) -> Result<Self, ConfigError> {
        let database_url = src
            .get("DATABASE_URL")
            .unwrap_or_else(|| "sqlite://stockroom.db".to_owned());
        let backend = backend_of(&database_url).ok_or_else(|| {
            ConfigError::new(
                "DATABASE_URL",
                "must start with sqlite:// or postgres:// (or postgresql://)",
            )
        })?;
        if backend == Backend::Sqlite && sqlite_path(&database_url).is_empty() {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "sqlite:// needs a file path",
            ));
        }
        let dev_mode = match src.get("STOCKROOM_ENV").as_deref() {
            None | Some("prod") | Some("production") => false,
            Some("dev") | Some("development") | Some("test") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "STOCKROOM_ENV",
                    format!("{other:?} is not one of dev, prod"),
                ))
            }
        };
        let jwt_secret = match src.get("STOCKROOM_JWT_SECRET") {
            Some(s) if is_placeholder(&s) => {
                return Err(ConfigError::new(
                    "STOCKROOM_JWT_SECRET",
                    "is a published placeholder; generate one with `openssl rand -hex 32`",
                ))
            }
            Some(s) if s.len() >= 32 => s.into_bytes(),
            Some(_) => {
                return Err(ConfigError::new(
                    "STOCKROOM_JWT_SECRET",
                    "must be at least 32 bytes",
                ))
            }
            None if backend == Backend::Sqlite || dev_mode => {
                persisted_dev_secret(&database_url, backend)?
            }
            None => {
                return Err(ConfigError::new(
                    "STOCKROOM_JWT_SECRET",
                    "is required on PostgreSQL (every process must share it)",
                ))
            }
        };
        let bind_raw = src
            .get("STOCKROOM_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let bind = bind_raw.parse().map_err(|e| {
            ConfigError::new(
                "STOCKROOM_BIND",
                format!("{bind_raw:?}: {e} (want host:port)"),
            )
        })?;
        let cors_origins = src
            .get("STOCKROOM_CORS_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for origin in &cors_origins {
            if origin != "*" && url::Url::parse(origin).is_err() {
                return Err(ConfigError::new(
                    "STOCKROOM_CORS_ORIGINS",
                    format!("{origin:?} is not an origin like https://shop.example"),
                ));
            }
        }
        let log_format = match src.get("STOCKROOM_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "STOCKROOM_LOG_FORMAT",
                    format!("{other:?} is not one of text, json"),
                ))
            }
        };
        let owner_password = src.get("STOCKROOM_OWNER_PASSWORD");
        if owner_password.as_deref().is_some_and(is_placeholder) {
            return Err(ConfigError::new(
                "STOCKROOM_OWNER_PASSWORD",
                "is a published placeholder; choose the owner's own password",
            ));
        }
        let default_pool = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            database_url,
            backend,
            bind,
            jwt_secret,
            dev_mode,
            owner_username: src.get("STOCKROOM_OWNER_USERNAME"),
            owner_email: src.get("STOCKROOM_OWNER_EMAIL"),
            owner_password,
            cors_origins,
            max_json_bytes: parse_in_range(
                src,
                "STOCKROOM_MAX_JSON_BYTES",
                1 << 20,
                1024..=(64 << 20),
            )?,
            max_upload_bytes: parse_in_range(
                src,
                "STOCKROOM_MAX_UPLOAD_BYTES",
                10 << 20,
                1024..=(512 << 20),
            )?,
            max_files_per_upload: 10,
            upload_quota_bytes: parse_in_range(
                src,
                "STOCKROOM_UPLOAD_QUOTA_BYTES",
                256 << 20,
                1024..=(1 << 40),
            )?,
            max_image_pixels: parse_in_range(
                src,
                "STOCKROOM_MAX_IMAGE_PIXELS",
                40_000_000,
                1..=1_000_000_000,
            )?,
            expiry_warning_days: parse_in_range(src, "STOCKROOM_EXPIRY_WARNING_DAYS", 7, 0..=3650)?,
            bcrypt_cost: parse_in_range(src, "STOCKROOM_BCRYPT_COST", 12, 4..=31)?,
            webhook_allow_private: parse_bool(src, "STOCKROOM_WEBHOOK_ALLOW_PRIVATE", false)?,
            sqlite_synchronous: parse(
                src,
                "STOCKROOM_SQLITE_SYNCHRONOUS",
                SqliteSynchronous::Normal,
            )?,
            trusted_proxies: trusted_proxies(src)?,
            docs_persist_authorization: parse_bool(
                src,
                "STOCKROOM_DOCS_PERSIST_AUTHORIZATION",
                false,
            )?,
            log_format,
            db_pool_size: parse_in_range(src, "STOCKROOM_DB_POOL_SIZE", default_pool, 1..=512)?,
            db_timeout: Duration::from_millis(parse_in_range(
                src,
                "STOCKROOM_DB_TIMEOUT_MS",
                5_000,
                100..=120_000,
            )?),
            access_token_ttl: Duration::from_secs(parse_in_range(
                src,
                "STOCKROOM_ACCESS_TOKEN_TTL_SECS",
                900,
                10..=86_400,
            )?),
            refresh_token_ttl: Duration::from_secs(
                86_400 * parse_in_range(src, "STOCKROOM_REFRESH_TOKEN_TTL_DAYS", 30u64, 1..=365)?,
            ),
            login_failures_per_account: parse_in_range(
                src,
                "STOCKROOM_LOGIN_FAILURES_PER_ACCOUNT",
                5,
                1..=1_000_000,
            )?,
            login_failures_per_address: parse_in_range(
                src,
                "STOCKROOM_LOGIN_FAILURES_PER_ADDRESS",
                100,
                1..=1_000_000,
            )?,
            registrations_per_address: parse_in_range(
                src,
                "STOCKROOM_REGISTRATIONS_PER_ADDRESS",
                200,
                1..=1_000_000,
            )?,
            rate_limit_window: Duration::from_secs(parse_in_range(
                src,
                "STOCKROOM_RATE_LIMIT_WINDOW_SECS",
                900,
                1..=86_400,
            )?),
            workers: parse_in_range(src, "STOCKROOM_WORKERS", cores, 1..=256)?,
            shutdown_timeout: Duration::from_secs(parse_in_range(
                src,
                "STOCKROOM_SHUTDOWN_TIMEOUT_SECS",
                30,
                0..=3600,
            )?),
            header_timeout: Duration::from_secs(parse_in_range(
                src,
                "STOCKROOM_HEADER_TIMEOUT_SECS",
                10,
                1..=300,
            )?),
            body_timeout: Duration::from_secs(parse_in_range(
                src,
                "STOCKROOM_BODY_TIMEOUT_SECS",
                15,
                1..=3600,
            )?),
            max_connections_per_address: parse_in_range(
                src,
                "STOCKROOM_MAX_CONNECTIONS_PER_ADDRESS",
                64,
                1..=100_000,
            )?,
            metrics_bind: match src.get("STOCKROOM_METRICS_BIND") {
                None => None,
                Some(raw) => Some(raw.parse().map_err(|e| {
                    ConfigError::new(
                        "STOCKROOM_METRICS_BIND",
                        format!("{raw:?}: {e} (want host:port)"),
                    )
                })?),
            },
            event_retention: Duration::from_secs(
                86_400 * parse_in_range(src, "STOCKROOM_EVENT_RETENTION_DAYS", 30u64, 1..=3650)?,
            ),
            ws_queue_capacity: parse_in_range(src, "STOCKROOM_WS_QUEUE", 256, 8..=65_536)?,
            ws_sockets_per_user: parse_in_range(src, "STOCKROOM_WS_MAX_PER_USER", 8, 1..=1_000)?,
            item_cache_mb: parse_in_range(src, "STOCKROOM_ITEM_CACHE_MB", 64, 0..=65_536)?,
            fence_pace: Duration::from_micros(parse_in_range(
                src,
                "STOCKROOM_FENCE_PACE_US",
                600,
                0..=10_000,
            )?),
            sqlite_cache_mb: parse_in_range(src, "STOCKROOM_SQLITE_CACHE_MB", 16, 1..=65_536)?,
            ws_ping_interval: Duration::from_secs(parse_in_range(
                src,
                "STOCKROOM_WS_PING_SECS",
                20,
                1..=600,
            )?),
            alert_scan_interval: Duration::from_secs(parse_in_range(
                src,
                "STOCKROOM_ALERT_SCAN_SECS",
                900,
                1..=86_400,
            )?),
            ws_max_frame_bytes: parse_in_range(
                src,
                "STOCKROOM_WS_MAX_FRAME_BYTES",
                64 << 10,
                1024..=(1 << 20),
            )?,
            webhook_timeout: Duration::from_secs(parse_in_range(
                src,
                "STOCKROOM_WEBHOOK_TIMEOUT_SECS",
                10,
                1..=60,
            )?),
            webhook_delivery: parse_bool(src, "STOCKROOM_WEBHOOK_DELIVERY", true)?,
            video_max_frame_bytes: parse_in_range(
                src,
                "STOCKROOM_VIDEO_MAX_FRAME_BYTES",
                2 << 20,
                1024..=(32 << 20),
            )?,
            video_max_pixels: parse_in_range(
                src,
                "STOCKROOM_VIDEO_MAX_PIXELS",
                8_294_400,
                1..=100_000_000,
            )?,
            messages_per_minute: parse_in_range(
                src,
                "STOCKROOM_MESSAGES_PER_MINUTE",
                120,
                1..=1_000_000,
            )?,
            message_burst: parse_in_range(src, "STOCKROOM_MESSAGE_BURST", 20, 1..=1_000_000)?,
            uploads_per_minute: parse_in_range(
                src,
                "STOCKROOM_UPLOADS_PER_MINUTE",
                30,
                1..=1_000_000,
            )?,
            concurrent_uploads_per_user: parse_in_range(
                src,
                "STOCKROOM_CONCURRENT_UPLOADS_PER_USER",
                2,
                1..=1_000,
            )?,
            ws_connects_per_minute: parse_in_range(
                src,
                "STOCKROOM_WS_CONNECTS_PER_MINUTE",
                60,
                1..=1_000_000,
            )?,
            ws_connects_per_address_per_minute: parse_in_range(
                src,
                "STOCKROOM_WS_CONNECTS_PER_ADDRESS_PER_MINUTE",
                240,
                1..=1_000_000,
            )?,
        })
    }
}

/// What people put where a secret belongs: every placeholder this project ever shipped or
/// documented (`change-me-to-a-long-random-secret-of-32-bytes` as the compose file's JWT
/// secret, `change-me-please` as its owner password) and the obvious ones. Compared on
/// lower-cased letters and digits only, so `Change_Me!` and `CHANGEME-123` count too. A
/// process started with one of them is one anybody can log in to, or sign tokens for.
const PLACEHOLDER_PREFIXES: [&str; 10] = [
    "changeme",
    "replaceme",
    "yoursecret",
    "secret",
    "password",
    "placeholder",
    "example",
    "admin",
    "letmein",
    "123456",
];

/// Whether `value` is a known placeholder (see `PLACEHOLDER_PREFIXES`), or one character
/// repeated.
pub fn is_placeholder(value: &str) -> bool {
    let folded: String = value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let mut chars = folded.chars();
    let repeated = chars.next().is_some_and(|first| chars.all(|c| c == first));
    repeated
        || PLACEHOLDER_PREFIXES
            .iter()
            .any(|prefix| folded.starts_with(prefix))
}

/// On SQLite (or in dev mode) a plain `cargo run` must work and tokens must survive restarts:
/// generate a secret once and keep it beside the database, readable by its owner only.
fn persisted_dev_secret(database_url: &str, backend: Backend) -> Result<Vec<u8>, ConfigError> {
    const NAME: &str = "STOCKROOM_JWT_SECRET";
    let path = match backend {
        Backend::Sqlite => {
            let mut p = PathBuf::from(sqlite_path(database_url));
            let file = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "stockroom".to_owned());
            p.set_file_name(format!("{file}.jwt-secret"));
            p
        }
        Backend::Postgres => PathBuf::from(".stockroom-jwt-secret"),
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim();
        if existing.len() >= 32 {
            return Ok(existing.as_bytes().to_vec());
        }
    }
    let mut raw = [0u8; 48];
    rand::rng().fill_bytes(&mut raw);
    let secret = hex::encode(raw);
    write_private_file(&path, secret.as_bytes()).map_err(|e| {
        ConfigError::new(
            NAME,
            format!(
                "unset, and the generated one could not be kept in {}: {e}",
                path.display()
            ),
        )
    })?;
    Ok(secret.into_bytes())
}

fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_source(&map)
    }

    #[test]
    fn postgres_requires_a_shared_secret() {
        let err = settings(&[("DATABASE_URL", "postgres://localhost/x")]).err();
        assert_eq!(err.map(|e| e.name), Some("STOCKROOM_JWT_SECRET"));
    }

    #[test]
    fn durability_and_proxies_are_read_as_written() {
        let secret = ("STOCKROOM_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let default = settings(&[secret]).expect("defaults");
        assert_eq!(default.sqlite_synchronous, SqliteSynchronous::Normal);
        assert!(default.trusted_proxies.is_empty());
        assert!(!default.docs_persist_authorization);
        let set = settings(&[
            secret,
            ("STOCKROOM_SQLITE_SYNCHRONOUS", "FULL"),
            (
                "STOCKROOM_TRUSTED_PROXIES",
                " 10.0.0.5 , 192.168.0.0/16,::1",
            ),
        ])
        .expect("valid settings");
        assert_eq!(set.sqlite_synchronous.pragma_value(), "FULL");
        let proxies: Vec<String> = set
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(proxies, ["10.0.0.5/32", "192.168.0.0/16", "::1/128"]);
    }

    #[test]
    fn bad_values_name_their_setting() {
        let secret = ("STOCKROOM_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        for (name, value) in [
            ("STOCKROOM_BCRYPT_COST", "3"),
            ("STOCKROOM_BIND", "nowhere"),
            ("DATABASE_URL", "mysql://x"),
            ("STOCKROOM_MAX_JSON_BYTES", "lots"),
            ("STOCKROOM_LOG_FORMAT", "xml"),
            ("STOCKROOM_SQLITE_SYNCHRONOUS", "off"),
            ("STOCKROOM_TRUSTED_PROXIES", "10.0.0.1, proxy.local"),
            ("STOCKROOM_TRUSTED_PROXIES", "10.0.0.0/33"),
        ] {
            let err = settings(&[secret, (name, value)]).err();
            assert_eq!(err.map(|e| e.name), Some(name), "{name}={value}");
        }
    }

    #[test]
    fn published_placeholders_are_refused() {
        let secret = ("STOCKROOM_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        for value in [
            "change-me-to-a-long-random-secret-of-32-bytes",
            "CHANGEME_changeme_changeme_changeme",
            "secret-secret-secret-secret-secret!",
            "your-secret-key-of-at-least-32-bytes",
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            let err = settings(&[("STOCKROOM_JWT_SECRET", value)]).err();
            assert_eq!(err.map(|e| e.name), Some("STOCKROOM_JWT_SECRET"), "{value}");
        }
        for value in ["change-me-please", "Password123", "changeme", "admin"] {
            let err = settings(&[secret, ("STOCKROOM_OWNER_PASSWORD", value)]).err();
            assert_eq!(
                err.map(|e| e.name),
                Some("STOCKROOM_OWNER_PASSWORD"),
                "{value}"
            );
        }
        let chosen = settings(&[
            secret,
            ("STOCKROOM_OWNER_PASSWORD", "correct horse battery"),
        ]);
        assert!(chosen.is_ok());
    }
}
