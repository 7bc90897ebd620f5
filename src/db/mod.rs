//! One connection type over SQLite and PostgreSQL, one pool, embedded migrations.
//!
//! The backend is chosen by the URL scheme (as vaultwarden's own r2d2 manager does): the
//! derive's `establish` would try each backend in turn and report only "Invalid connection
//! url" when PostgreSQL is down.

pub mod schema;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Integer, Nullable, Text};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::coherence::ChangeFeed;
use crate::config::{sqlite_path, Backend, Settings, SqliteSynchronous};
use crate::error::{ApiError, ApiResult};

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

impl DbConnection {
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgresql(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }
}

/// Runs `$body` with `$c` bound to the concrete connection of either backend. For the
/// statements the multi-connection enum cannot express (upserts): one piece of code,
/// type-checked and run against whichever backend is in use.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Postgresql($c) => $body,
        }
    };
}
pub(crate) use on_backend;

/// Process-wide set-up of both database drivers. Call first thing, before any connection
/// exists (later calls do nothing).
///
/// - OpenSSL (which the bundled libpq uses for TLS) is initialised without its exit handler:
///   that handler frees OpenSSL's state while pooled connections on other threads may still
///   use it, crashing the process as it exits (diesel-rs/diesel#3441).
/// - SQLite's memory statistics are turned off. They are on by default and make every
///   allocation SQLite does, on every connection, take one process-wide mutex; under load the
///   pooled connections' threads queued on it (futex waits were a tenth of the server's time
///   in a profile of `GET /items/{id}`), and Stockroom never reads those statistics.
pub fn init_drivers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        openssl_sys::init();
        // SAFETY: SQLite allows `sqlite3_config` only before it is initialised and while no
        // other thread uses it; `ONCE` runs this before the first connection of the process.
        // Should SQLite be initialised already, it refuses the call (SQLITE_MISUSE) and
        // keeps counting, which is only slower.
        unsafe {
            libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, 0);
        }
    });
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// `date + days`. PostgreSQL gets it from a migration; SQLite from Rust at connect time.
    /// It lets "expiring within the item's own window" stay one portable query.
    fn date_add_days(day: Date, days: Integer) -> Date;

    /// SQL `LOWER`. SQLite's own folds only ASCII, so connections override it with Rust's
    /// Unicode lower-casing, matching how search terms are folded.
    fn lower(value: Nullable<Text>) -> Nullable<Text>;

    /// `COALESCE(n, fallback)` for integers (an item's window, else the store's).
    #[sql_name = "COALESCE"]
    fn coalesce_int(value: Nullable<Integer>, fallback: Integer) -> Integer;

    /// What SQLite triggers call when a row that memory may hold changed (PostgreSQL's
    /// triggers `NOTIFY` instead); see `crate::coherence`.
    fn stockroom_changed(channel: Text, key: BigInt) -> Integer;
}

pub type Pool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Connection(#[from] diesel::ConnectionError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// r2d2 manager that establishes the variant the URL names, and prepares each new
/// SQLite connection (WAL, foreign keys, busy timeout, SQL functions).
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: String,
    backend: Backend,
    busy_timeout: Duration,
    synchronous: SqliteSynchronous,
    /// Each SQLite connection's page cache: its share of `STOCKROOM_SQLITE_CACHE_MB`.
    cache_kib: u64,
}

impl ConnectionManager {
    pub fn new(settings: &Settings) -> Self {
        Self {
            url: settings.database_url.clone(),
            backend: settings.backend,
            busy_timeout: settings.db_timeout,
            synchronous: settings.sqlite_synchronous,
            cache_kib: (settings.sqlite_cache_mb << 10) / u64::from(settings.db_pool_size.max(1)),
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConnection, ConnectError> {
        match self.backend {
            Backend::Postgres => {
                let mut conn = diesel::PgConnection::establish(&self.url)?;
                // Our queries are short OLTP ones; JIT compilation (hundreds of ms when the
                // planner's estimate crosses jit_above_cost) costs far more than it saves.
                conn.batch_execute("SET jit = off")?;
                Ok(DbConnection::Postgresql(conn))
            }
            Backend::Sqlite => {
                let path = sqlite_path(&self.url);
                create_private_sqlite_file(path).map_err(|e| {
                    diesel::ConnectionError::BadConnection(format!("creating {path}: {e}"))
                })?;
                let mut conn = diesel::SqliteConnection::establish(path)?;
                // WAL lets readers run beside the writer; `synchronous` is the operator's
                // durability choice (see `SqliteSynchronous`); the busy timeout makes
                // concurrent writers queue instead of failing; foreign keys are off by
                // default in SQLite.
                // A message to a large group writes a page per recipient: a 32 MB WAL before
                // each checkpoint (not 4 MB) keeps that from checkpointing on every commit;
                // the WAL file is cut back to 64 MB after. The page caches share one budget
                // (the operating system caches the file as well; this memory is the
                // process's own, per connection).
                conn.batch_execute(&format!(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
                     PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; \
                     PRAGMA wal_autocheckpoint = 8000; PRAGMA journal_size_limit = 67108864; \
                     PRAGMA cache_size = -{};",
                    self.synchronous.pragma_value(),
                    self.busy_timeout.as_millis(),
                    self.cache_kib.max(256),
                ))?;
                date_add_days_utils::register_impl(
                    &mut conn,
                    |day: chrono::NaiveDate, days: i32| {
                        day.checked_add_signed(chrono::Duration::days(i64::from(days)))
                            .unwrap_or(day)
                    },
                )?;
                lower_utils::register_impl(&mut conn, |value: Option<String>| {
                    value.map(|v| v.to_lowercase())
                })?;
                stockroom_changed_utils::register_impl(&mut conn, crate::coherence::note_change)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1").map_err(Into::into)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Creates the SQLite database file owner-only (0600) when it does not exist yet. SQLite
/// would create it with the process umask (typically 0644, readable by everyone) and gives
/// its `-wal` and `-shm` files the main file's mode; the file holds password hashes, so it
/// is kept like the `<db>.jwt-secret` file. An existing file is left as it is, and a missing
/// directory is left for SQLite to report.
fn create_private_sqlite_file(path: &str) -> std::io::Result<()> {
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Builds the pool without connecting: the process starts (and `/readyz` answers 503)
/// even while the database is down.
pub fn build_pool(settings: &Settings) -> Pool {
    let manager = ConnectionManager::new(settings);
    r2d2::Pool::builder()
        .max_size(settings.db_pool_size)
        .min_idle(Some(0))
        .connection_timeout(settings.db_timeout)
        .test_on_check_out(false)
        .idle_timeout(Some(Duration::from_secs(300)))
        .build_unchecked(manager)
}

pub fn run_migrations(conn: &mut DbConnection) -> Result<(), String> {
    let result = match conn {
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| e.to_string())
}

pub fn has_pending_migrations(conn: &mut DbConnection) -> Result<bool, String> {
    let result = match conn {
        DbConnection::Postgresql(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    };
    result.map_err(|e| e.to_string())
}

/// The pool plus the way to use it from async code: every query runs on the blocking pool,
/// never on an async worker.
///
/// Work waits for a connection *before* it takes a blocking thread, in a first-come,
/// first-served queue (a fair semaphore with one permit per pooled connection). Without it,
/// every request parks a blocking thread inside r2d2's `get`, where whoever the condition
/// variable wakes first wins: the threads spin on the pool's lock, and under load some
/// requests wait far longer than others.
///
/// On SQLite, write transactions also queue for the one writer's turn. SQLite admits one
/// writer at a time and makes the others poll for its lock with growing sleeps, not in a
/// queue: a writer can keep losing to a stream of others (a scan working through a large
/// import, say) for longer than the busy timeout, and then fails with "database is busy".
/// Queued here first, in arrival order, this process's writers never poll against each
/// other.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    backend: Backend,
    turns: Arc<Semaphore>,
    sqlite_writer: Arc<Semaphore>,
    /// Told of the changes SQLite's triggers noted, once each piece of work is done.
    feed: Arc<ChangeFeed>,
}

impl Db {
    pub fn new(pool: Pool, backend: Backend, feed: Arc<ChangeFeed>) -> Self {
        let turns = Arc::new(Semaphore::new(pool.max_size() as usize));
        Self {
            pool,
            backend,
            turns,
            sqlite_writer: Arc::new(Semaphore::new(1)),
            feed,
        }
    }

    /// Waits (first come, first served) for one of `queue`'s permits, at most the pool's
    /// connection timeout (then 503, as when the pool has no connection to give).
    async fn wait_turn(&self, queue: &Arc<Semaphore>) -> ApiResult<OwnedSemaphorePermit> {
        match tokio::time::timeout(
            self.pool.connection_timeout(),
            queue.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(turn)) => Ok(turn),
            _ => {
                tracing::warn!("no database connection became free in time");
                Err(ApiError::Unavailable(
                    "the database is unavailable".to_owned(),
                ))
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs `f` with a pooled connection on the blocking thread pool. What it changed is
    /// forgotten by this process's memories before this returns (see `crate::coherence`).
    pub async fn run<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut DbConnection) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let turn = self.wait_turn(&self.turns).await?;
        let pool = self.pool.clone();
        let feed = self.feed.clone();
        web::block(move || {
            let mut conn = pool.get().map_err(ApiError::from)?;
            let out = f(&mut conn);
            drop(conn);
            drop(turn);
            // Committed (or rolled back) by now: forgetting what did not change is harmless.
            feed.heard_here();
            out
        })
        .await?
    }

    /// Runs `f` inside one write transaction (see [`write_transaction`]).
    pub async fn transaction<T, F>(&self, f: F) -> ApiResult<T>
    where
        F: FnOnce(&mut DbConnection) -> ApiResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let writer = match self.backend {
            Backend::Sqlite => Some(self.wait_turn(&self.sqlite_writer).await?),
            Backend::Postgres => None,
        };
        self.run(move |conn| {
            let out = write_transaction(conn, f);
            drop(writer);
            out
        })
        .await
    }
}

/// Runs `f` in a transaction meant to write. On SQLite it begins `IMMEDIATE`: the write lock
/// is taken (waiting up to the busy timeout) before anything is read. A deferred transaction
/// that reads first holds a snapshot it cannot upgrade once another writer has committed, and
/// SQLite refuses that upgrade at once (`SQLITE_BUSY`) without consulting the busy timeout, so
/// "read, then write" under concurrency would fail instead of queueing. On PostgreSQL it is a
/// plain `BEGIN` (row locks do the queueing). Plain reads need no transaction: use [`Db::run`].
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    type Manager = <DbConnection as Connection>::TransactionManager;
    match conn {
        DbConnection::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?
        }
        DbConnection::Postgresql(c) => AnsiTransactionManager::begin_transaction(c)?,
    }
    match f(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => match Manager::rollback_transaction(conn) {
            // The caller's error explains more than a failed rollback after it.
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}
