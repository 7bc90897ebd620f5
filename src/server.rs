//! Starting and stopping the HTTP server.

use std::net::TcpListener;

use actix_web::{web, HttpServer};

use crate::config::{Backend, Settings};
use crate::router;
use crate::state::{AppState, StartError};
use crate::{connections, db, events};

/// Applies pending migrations, off the async workers.
pub async fn migrate(state: &AppState) -> Result<(), StartError> {
    let pool = state.db.pool().clone();
    web::block(move || {
        let mut conn = pool.get().map_err(|e| e.to_string())?;
        db::run_migrations(&mut conn)
    })
    .await
    .map_err(|e| StartError::Database(e.to_string()))?
    .map_err(StartError::Database)
}

/// How often events past the retention period are deleted.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The cross-process listener (PostgreSQL) and the hourly pruning of old events.
fn start_event_tasks(state: &web::Data<AppState>) -> Result<(), StartError> {
    if state.settings.backend == Backend::Postgres {
        events::listener::spawn(
            state.settings.database_url.clone(),
            state.db.clone(),
            std::sync::Arc::downgrade(state.events.hub()),
            state.events.instance().to_owned(),
            state.feed.clone(),
        )?;
    }
    repeat_every(
        state,
        PRUNE_EVERY,
        "pruning old events",
        |state| async move { state.events.prune(&state.db).await },
    );
    Ok(())
}

/// Runs `job` every `period` for as long as the server's state lives; a failure is logged
/// (as "`what` failed") and the next period tries again.
fn repeat_every<T, F, Fut>(
    state: &web::Data<AppState>,
    period: std::time::Duration,
    what: &'static str,
    job: F,
) where
    F: Fn(std::sync::Arc<AppState>) -> Fut + 'static,
    Fut: std::future::Future<Output = crate::error::ApiResult<T>> + 'static,
{
    let state = std::sync::Arc::downgrade(&state.clone().into_inner());
    actix_web::rt::spawn(async move {
        let mut every = tokio::time::interval(period);
        loop {
            every.tick().await;
            let Some(state) = state.upgrade() else { return };
            if let Err(e) = job(state).await {
                tracing::warn!(error = %e, "{what} failed");
            }
        }
    });
}

/// Drops idle keys from the in-process rate limiters, so their memory follows the clients
/// active in the last minute rather than every client ever seen.
fn start_throttle_sweep(state: &web::Data<AppState>) {
    repeat_every(
        state,
        crate::throttle::SWEEP_EVERY,
        "sweeping the rate limiters",
        |state| async move {
            state.throttles.sweep();
            Ok(())
        },
    );
}

/// What one expiry and low-stock scan checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertScan {
    pub items: usize,
    pub holdings: usize,
}

/// One expiry and low-stock scan as of `today`: reschedules the pending alerts first when
/// the default expiry window changed, then checks every item and holding whose alert day has
/// come. Safe to run from several processes at once: they split the due rows, and the
/// notifications' unique cause keys make a repeat a no-op.
pub async fn scan_alerts(
    state: &AppState,
    today: chrono::NaiveDate,
) -> crate::error::ApiResult<AlertScan> {
    use crate::{customer_inventory, inventory};
    if inventory::service::alert_window_changed(state).await? {
        customer_inventory::service::reschedule_alerts(state).await?;
        inventory::service::reschedule_alerts(state).await?;
    }
    Ok(AlertScan {
        items: inventory::service::scan_alerts(state, today).await?,
        holdings: customer_inventory::service::scan_alerts(state, today).await?,
    })
}

/// Scans at start, then every `alert_scan_interval` or sooner when woken.
fn start_alert_scan(state: &web::Data<AppState>) {
    let state = std::sync::Arc::downgrade(&state.clone().into_inner());
    actix_web::rt::spawn(async move {
        loop {
            let Some(strong) = state.upgrade() else {
                return;
            };
            match scan_alerts(&strong, crate::time::today()).await {
                Ok(scan) => tracing::debug!(?scan, "alert scan"),
                Err(e) => tracing::warn!(error = %e, "the expiry and low-stock scan failed"),
            }
            let wake = strong.alert_scan.clone();
            let interval = strong.settings.alert_scan_interval;
            drop(strong);
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = wake.notified() => {}
            }
        }
    });
}

/// How often stock deltas are folded into the totals (PostgreSQL): the dashboard adds at
/// most this long's worth of deltas to them.
const FOLD_STOCK_TOTALS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Folds the stock deltas into the totals now and then (see the `stock_totals` migration).
fn start_stock_totals_fold(state: &web::Data<AppState>) {
    if state.settings.backend != Backend::Postgres {
        return;
    }
    repeat_every(
        state,
        FOLD_STOCK_TOTALS_EVERY,
        "folding the stock totals",
        |state| async move { crate::inventory::service::fold_stock_totals(&state).await },
    );
}

/// Builds the state, migrates, and starts serving on `listener`. The returned server
/// future runs until stopped; SIGTERM/SIGINT drain in-flight requests first.
pub async fn start(
    mut settings: Settings,
    listener: TcpListener,
) -> Result<(actix_web::dev::Server, web::Data<AppState>), StartError> {
    // A separate metrics address is bound first so the state knows the real port.
    let metrics_listener = match settings.metrics_bind {
        Some(addr) => {
            let l = TcpListener::bind(addr)?;
            settings.metrics_bind = Some(l.local_addr()?);
            Some(l)
        }
        None => None,
    };
    let state = web::Data::new(router::state(settings)?);
    migrate(&state).await?;
    start_event_tasks(&state)?;
    start_alert_scan(&state);
    start_stock_totals_fold(&state);
    start_throttle_sweep(&state);
    if state.settings.webhook_delivery {
        let weak = std::sync::Arc::downgrade(&state.clone().into_inner());
        actix_web::rt::spawn(crate::bots::delivery::run_worker(weak));
    }
    let settings = &state.settings;
    let workers = settings.workers;
    let descriptors = connections::descriptor_limit();
    let max_connections =
        connections::max_connections_per_worker(descriptors, workers, settings.db_pool_size);
    tracing::debug!(
        descriptors,
        max_connections_per_worker = max_connections,
        "connection limits"
    );
    let per_address = connections::AddressSlots::new(
        settings.max_connections_per_address,
        &settings.trusted_proxies,
    );
    let app_state = state.clone();
    let mut server = HttpServer::new(move || router::app(app_state.clone()))
        .workers(workers)
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .max_connections(max_connections)
        // Headers only: bodies have their own deadline (`connections::bound_request`).
        .client_request_timeout(settings.header_timeout)
        .on_connect(move |conn, extensions| per_address.on_connect(conn, extensions))
        .listen(listener)?;
    if let Some(l) = metrics_listener {
        server = server.listen(l)?;
    }
    let server = server.run();
    Ok((server, state))
}
