use actix_web::{delete, get, patch, web, HttpResponse};

use super::dto::{HoldingOut, HoldingPatch, HoldingQuery};
use super::service;
use crate::auth::{Action, Principal};
use crate::error::ApiResult;
use crate::extract;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

/// The signed-in customer's holdings.
#[utoipa::path(
    operation_id = "list_my_holdings",
    tag = "customer-inventory",
    params(HoldingQuery, PageParams),
    responses((status = 200, body = Page<HoldingOut>), (status = 400))
)]
#[get("/me/inventory")]
pub async fn my_inventory(
    state: web::Data<AppState>,
    principal: Principal,
    query: extract::Query<HoldingQuery>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<HoldingOut>>> {
    principal.require(Action::HoldInventory)?;
    service::list(
        &state,
        principal.user_id,
        query.into_inner(),
        page.into_inner(),
    )
    .await
    .map(web::Json)
}

/// Consume from a holding (lower `quantity`) or set its own reorder level.
#[utoipa::path(
    operation_id = "update_my_holding",
    tag = "customer-inventory",
    params(("id" = i64, Path)),
    request_body = HoldingPatch,
    responses((status = 200, body = HoldingOut), (status = 404), (status = 422))
)]
#[patch("/me/inventory/{id}")]
pub async fn update_holding(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: extract::Json<HoldingPatch>,
) -> ApiResult<web::Json<HoldingOut>> {
    principal.require(Action::HoldInventory)?;
    service::update(
        &state,
        principal.user_id,
        id.into_inner(),
        body.into_inner(),
    )
    .await
    .map(web::Json)
}

/// Remove a holding the customer no longer needs.
#[utoipa::path(
    operation_id = "delete_my_holding",
    tag = "customer-inventory",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404))
)]
#[delete("/me/inventory/{id}")]
pub async fn delete_holding(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::HoldInventory)?;
    service::delete(&state, principal.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A customer's holdings, for staff.
#[utoipa::path(
    operation_id = "list_customer_holdings",
    tag = "customer-inventory",
    params(("id" = i64, Path), HoldingQuery, PageParams),
    responses((status = 200, body = Page<HoldingOut>), (status = 404))
)]
#[get("/customers/{id}/inventory")]
pub async fn customer_inventory(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    query: extract::Query<HoldingQuery>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<HoldingOut>>> {
    principal.require(Action::ViewCustomers)?;
    service::list_for_staff(
        &state,
        id.into_inner(),
        query.into_inner(),
        page.into_inner(),
    )
    .await
    .map(web::Json)
}
