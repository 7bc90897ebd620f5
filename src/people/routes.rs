use actix_web::{delete, get, patch, web, HttpResponse};

use super::dto::{CustomerDetail, CustomerQuery, RoleChange, UserQuery};
use super::service;
use crate::auth::{Action, Principal};
use crate::error::ApiResult;
use crate::extract;
use crate::identity::dto::UserOut;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

/// Customers, searchable and sortable.
#[utoipa::path(
    tag = "people",
    params(CustomerQuery, PageParams),
    responses((status = 200, body = Page<UserOut>), (status = 400))
)]
#[get("/customers")]
pub async fn list_customers(
    state: web::Data<AppState>,
    principal: Principal,
    query: extract::Query<CustomerQuery>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<UserOut>>> {
    principal.require(Action::ViewCustomers)?;
    service::list_customers(&state, query.into_inner(), page.into_inner())
        .await
        .map(web::Json)
}

/// One customer, with an inventory summary and open requests.
#[utoipa::path(
    tag = "people",
    params(("id" = i64, Path)),
    responses((status = 200, body = CustomerDetail), (status = 404))
)]
#[get("/customers/{id}")]
pub async fn get_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<CustomerDetail>> {
    principal.require(Action::ViewCustomers)?;
    service::customer(&state, id.into_inner())
        .await
        .map(web::Json)
}

/// Erase a customer: sign-in stops at once, personal data is erased, their chat messages
/// stay with the author shown as deleted.
#[utoipa::path(
    tag = "people",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404))
)]
#[delete("/customers/{id}")]
pub async fn delete_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::DeleteCustomers)?;
    service::delete_customer(&state, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every account, optionally of one role.
#[utoipa::path(
    tag = "people",
    params(UserQuery, PageParams),
    responses((status = 200, body = Page<UserOut>))
)]
#[get("/users")]
pub async fn list_users(
    state: web::Data<AppState>,
    principal: Principal,
    query: extract::Query<UserQuery>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<UserOut>>> {
    principal.require(Action::ManageRoles)?;
    service::list_users(&state, query.role, page.into_inner())
        .await
        .map(web::Json)
}

/// Promote or demote an account; the last owner cannot be demoted.
#[utoipa::path(
    operation_id = "set_user_role",
    tag = "people",
    params(("id" = i64, Path)),
    request_body = RoleChange,
    responses(
        (status = 200, body = UserOut),
        (status = 404),
        (status = 409, description = "That would leave no owner"),
    )
)]
#[patch("/users/{id}/role")]
pub async fn set_role(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: extract::Json<RoleChange>,
) -> ApiResult<web::Json<UserOut>> {
    principal.require(Action::ManageRoles)?;
    service::set_role(&state, &principal, id.into_inner(), body.role.into())
        .await
        .map(web::Json)
}
