use actix_web::{get, post, web};

use super::dto::{NotificationOut, NotificationQuery, ReadAllOut};
use super::service;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

/// My notifications, newest first; `?unread=true` for the unread ones only.
#[utoipa::path(
    operation_id = "list_notifications",
    tag = "notifications",
    params(NotificationQuery, PageParams),
    responses((status = 200, body = Page<NotificationOut>), (status = 400))
)]
#[get("/notifications")]
pub async fn list_notifications(
    state: web::Data<AppState>,
    principal: Principal,
    query: extract::Query<NotificationQuery>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<NotificationOut>>> {
    service::list(&state, &principal, query.into_inner(), page.into_inner())
        .await
        .map(web::Json)
}

/// Mark one of my notifications read (again is harmless: the first read time stays).
#[utoipa::path(
    operation_id = "read_notification",
    tag = "notifications",
    params(("id" = i64, Path)),
    responses((status = 200, body = NotificationOut), (status = 404))
)]
#[post("/notifications/{id}/read")]
pub async fn read_notification(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<NotificationOut>> {
    service::mark_read(&state, &principal, id.into_inner())
        .await
        .map(web::Json)
}

/// Mark all my notifications read.
#[utoipa::path(
    operation_id = "read_all_notifications",
    tag = "notifications",
    responses((status = 200, body = ReadAllOut))
)]
#[post("/notifications/read-all")]
pub async fn read_all_notifications(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<ReadAllOut>> {
    service::mark_all_read(&state, &principal)
        .await
        .map(web::Json)
}
