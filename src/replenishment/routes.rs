use actix_web::{get, post, web, HttpResponse};

use super::dto::{NewRequest, Rejection, ReplenishmentEntry, RequestOut, RequestQuery};
use super::service;
use crate::auth::{Action, Principal};
use crate::error::ApiResult;
use crate::extract;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

/// What needs replenishing. Staff: items low, expired or expiring, with reasons and a
/// suggested order quantity. Customers: their own holdings that need it.
#[utoipa::path(
    operation_id = "list_replenishment_needs",
    tag = "replenishment",
    params(PageParams),
    responses((status = 200, body = Page<ReplenishmentEntry>))
)]
#[get("/replenishment")]
pub async fn replenishment(
    state: web::Data<AppState>,
    principal: Principal,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<ReplenishmentEntry>>> {
    principal.require(Action::UsePersonalApi)?;
    service::list(&state, &principal, page.into_inner())
        .await
        .map(web::Json)
}

/// Ask the store for an item (customers).
#[utoipa::path(
    operation_id = "create_replenishment_request",
    tag = "replenishment",
    request_body = NewRequest,
    responses(
        (status = 201, body = RequestOut),
        (status = 404, description = "No item with `item_id`"),
        (status = 409, description = "Too many pending requests"),
        (status = 422),
    )
)]
#[post("/replenishment-requests")]
pub async fn create_request(
    state: web::Data<AppState>,
    principal: Principal,
    body: extract::Json<NewRequest>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::HoldInventory)?;
    let out = service::create(&state, &principal, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(out))
}

/// Requests: staff see all, customers their own; newest first.
#[utoipa::path(
    operation_id = "list_replenishment_requests",
    tag = "replenishment",
    params(RequestQuery, PageParams),
    responses((status = 200, body = Page<RequestOut>), (status = 400))
)]
#[get("/replenishment-requests")]
pub async fn list_requests(
    state: web::Data<AppState>,
    principal: Principal,
    query: extract::Query<RequestQuery>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<RequestOut>>> {
    principal.require(Action::UsePersonalApi)?;
    service::list_requests(&state, &principal, query.into_inner(), page.into_inner())
        .await
        .map(web::Json)
}

/// One request (its customer or staff).
#[utoipa::path(
    operation_id = "get_replenishment_request",
    tag = "replenishment",
    params(("id" = i64, Path)),
    responses((status = 200, body = RequestOut), (status = 404))
)]
#[get("/replenishment-requests/{id}")]
pub async fn get_request(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<RequestOut>> {
    principal.require(Action::UsePersonalApi)?;
    service::get(&state, &principal, id.into_inner())
        .await
        .map(web::Json)
}

/// Fulfil: atomically move the stock (earliest expiry first, never expired) into the
/// customer's holdings. 409 when stock is short or the request is not pending.
#[utoipa::path(
    operation_id = "fulfil_replenishment_request",
    tag = "replenishment",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = RequestOut),
        (status = 404),
        (status = 409, description = "Stock is short, or the request is not pending"),
    )
)]
#[post("/replenishment-requests/{id}/fulfil")]
pub async fn fulfil(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<RequestOut>> {
    principal.require(Action::DecideRequests)?;
    service::fulfil(&state, &principal, id.into_inner())
        .await
        .map(web::Json)
}

/// Reject a pending request, optionally saying why.
#[utoipa::path(
    operation_id = "reject_replenishment_request",
    tag = "replenishment",
    params(("id" = i64, Path)),
    request_body(content = Option<Rejection>, content_type = "application/json"),
    responses(
        (status = 200, body = RequestOut),
        (status = 404),
        (status = 409, description = "The request is not pending"),
    )
)]
#[post("/replenishment-requests/{id}/reject")]
pub async fn reject(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: web::Bytes,
) -> ApiResult<web::Json<RequestOut>> {
    principal.require(Action::DecideRequests)?;
    let body: Rejection = crate::extract::optional_json(&body)?;
    service::reject(&state, &principal, id.into_inner(), body)
        .await
        .map(web::Json)
}

/// The requesting customer withdraws a pending request.
#[utoipa::path(
    operation_id = "cancel_replenishment_request",
    tag = "replenishment",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = RequestOut),
        (status = 404),
        (status = 409, description = "The request is not pending"),
    )
)]
#[post("/replenishment-requests/{id}/cancel")]
pub async fn cancel(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<RequestOut>> {
    principal.require(Action::HoldInventory)?;
    service::cancel(&state, &principal, id.into_inner())
        .await
        .map(web::Json)
}
