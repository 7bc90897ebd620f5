//! What every handler can reach: settings, the database, metrics, the route table.

use std::sync::Arc;

use actix_web::web;

use crate::auth::middleware::Authenticator;
use crate::auth::passwords::PasswordHasher;
use crate::auth::rate_limit::WindowLimiter;
use crate::auth::session_cache::SessionCache;
use crate::auth::tokens::TokenKeys;
use crate::blobs::{BlobStore, DatabaseBlobs};
use crate::blocking::BoundedPool;
use crate::coherence::{ChangeFeed, KeyedMemory, ITEMS_CHANNEL};
use crate::config::{sqlite_path, Backend, Settings};
use crate::db::{self, Db};
use crate::events::EventBus;
use crate::metrics::Metrics;
use crate::openapi::{ApiDocument, RouteTable};
use crate::slots::{Slots, Turns};
use crate::throttle::Throttles;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub metrics: Metrics,
    pub http_metrics: actix_web_prom::PrometheusMetrics,
    pub routes: RouteTable,
    pub openapi_json: Arc<String>,
    pub tokens: Arc<TokenKeys>,
    /// The guard of protected routes (shares the token keys and the pool).
    pub authenticator: web::Data<Authenticator>,
    pub passwords: PasswordHasher,
    pub limits: Limits,
    /// Burst guards counted in this process's memory (messages, uploads, socket connects).
    pub throttles: Throttles,
    /// Image decoding and thumbnailing.
    pub images: BoundedPool,
    /// Camera frames: decoding and analysis, one frame per socket at a time.
    pub video: BoundedPool,
    /// Camera sockets per user on this process.
    pub video_sockets: Slots<i64>,
    /// Sends to one chat take turns in this process before taking a database connection
    /// (they would queue on the chat's lock anyway; see `chat::service::send`).
    pub chat_turns: Turns<i64>,
    pub blobs: Arc<dyn BlobStore>,
    /// Users' event streams and their live delivery.
    pub events: Arc<EventBus>,
    /// Wakes the expiry and low-stock scan before its interval (a bulk import marked many
    /// items to check).
    pub alert_scan: Arc<tokio::sync::Notify>,
    /// Wakes this process's webhook worker before its next poll (a redelivery was asked for).
    pub webhooks: Arc<tokio::sync::Notify>,
    /// How this process's memories hear of changes (see `crate::coherence`).
    pub feed: Arc<ChangeFeed>,
    /// Items and their stocked batches as last read (`inventory` keeps it; None when
    /// `STOCKROOM_ITEM_CACHE_MB` is 0).
    pub item_memory: Option<Arc<KeyedMemory>>,
}

/// Abuse limits, counted in the database (shared by every process).
pub struct Limits {
    pub login_account: WindowLimiter,
    pub login_address: WindowLimiter,
    pub registrations: WindowLimiter,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Metrics(String),
    #[error("database: {0}")]
    Database(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("openapi: {0}")]
    OpenApi(#[from] serde_json::Error),
}

/// Sends one process lets wait for one chat's turn; more are answered 503 at once.
const SENDS_WAITING_PER_CHAT: usize = 64;

impl AppState {
    /// Builds the state without touching the database (the pool connects lazily). The
    /// document describes the routes being served; the router builds it (`router::state`).
    pub fn new(settings: Settings, document: ApiDocument) -> Result<Self, StartError> {
        let metrics = Metrics::new().map_err(|e| StartError::Metrics(e.to_string()))?;
        let http_metrics = metrics.http_middleware().map_err(StartError::Metrics)?;
        let pool = db::build_pool(&settings);
        let passwords = PasswordHasher::new(settings.bcrypt_cost).map_err(StartError::Metrics)?;
        let window = settings.rate_limit_window;
        let limits = Limits {
            login_account: WindowLimiter::new(
                "login-account",
                settings.login_failures_per_account,
                window,
            ),
            login_address: WindowLimiter::new(
                "login-address",
                settings.login_failures_per_address,
                window,
            ),
            registrations: WindowLimiter::new(
                "registration",
                settings.registrations_per_address,
                window,
            ),
        };
        let tokens = Arc::new(TokenKeys::new(
            &settings.jwt_secret,
            settings.access_token_ttl,
        ));
        let (feed, sqlite_file) = match settings.backend {
            Backend::Sqlite => (
                ChangeFeed::local(),
                Some(sqlite_path(&settings.database_url)),
            ),
            Backend::Postgres => (ChangeFeed::listened(settings.fence_pace), None),
        };
        let feed = Arc::new(feed);
        let db = Db::new(pool, settings.backend, feed.clone());
        let sessions = Arc::new(match sqlite_file {
            Some(path) => SessionCache::for_sqlite(path),
            None => SessionCache::for_postgres(&feed),
        });
        feed.join(sessions.clone());
        let item_memory = KeyedMemory::new(
            ITEMS_CHANNEL,
            settings.item_cache_mb << 20,
            &feed,
            sqlite_file,
        );
        let authenticator = web::Data::new(Authenticator {
            tokens: tokens.clone(),
            db: db.clone(),
            sessions,
            feed: feed.clone(),
        });
        let events = Arc::new(EventBus::new(&settings));
        let video_sockets = Slots::new(settings.ws_sockets_per_user);
        let throttles = Throttles::new(&settings);
        Ok(Self {
            alert_scan: Arc::new(tokio::sync::Notify::new()),
            webhooks: Arc::new(tokio::sync::Notify::new()),
            db,
            authenticator,
            settings: Arc::new(settings),
            metrics,
            http_metrics,
            routes: document.routes,
            openapi_json: document.json,
            tokens,
            passwords,
            limits,
            throttles,
            images: BoundedPool::per_core("image"),
            video: BoundedPool::per_core("video"),
            video_sockets,
            chat_turns: Turns::new(SENDS_WAITING_PER_CHAT),
            blobs: Arc::new(DatabaseBlobs),
            events,
            feed,
            item_memory,
        })
    }
}

impl AppState {
    /// Call after a transaction that ended sessions, changed a role or erased a user has
    /// committed: every process stops believing the sessions it remembers.
    pub fn sessions_changed(&self) {
        self.authenticator.sessions.sessions_changed();
    }
}
