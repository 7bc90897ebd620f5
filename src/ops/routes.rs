use actix_web::{get, web, HttpRequest, HttpResponse};
use diesel::connection::SimpleConnection;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db;
use crate::error::{ApiError, ApiResult, OrInternal};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(operation_id = "check_health", tag = "operations", responses((status = 200, body = Status)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Status> {
    web::Json(Status { status: "ok" })
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(
    operation_id = "check_readiness",
    tag = "operations",
    responses(
        (status = 200, body = Status),
        (status = 503, description = "Database unreachable or migrations pending")
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<web::Json<Status>> {
    let pending = state
        .db
        .run(|conn| {
            conn.batch_execute("SELECT 1")?;
            db::has_pending_migrations(conn).map_err(ApiError::Unavailable)
        })
        .await?;
    if pending {
        return Err(ApiError::Unavailable("migrations are pending".to_owned()));
    }
    Ok(web::Json(Status { status: "ready" }))
}

/// Prometheus metrics in the text exposition format. With `STOCKROOM_METRICS_BIND` set they
/// are served only on that address.
#[utoipa::path(
    operation_id = "get_metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain"),
        (status = 404, description = "Metrics are served on another address"),
    )
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    if let Some(addr) = state.settings.metrics_bind {
        if req.app_config().local_addr() != addr {
            return Err(ApiError::NotFound("no route for /metrics".to_owned()));
        }
    }
    let text = state.metrics.render(state.db.pool()).or_internal()?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// This OpenAPI 3.1 document.
#[utoipa::path(
    operation_id = "get_openapi_document",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
#[get("/openapi.json")]
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.as_ref().clone())
}
