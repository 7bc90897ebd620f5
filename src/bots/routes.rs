use actix_web::{delete, get, patch, post, web, HttpResponse};

use super::dto::{BotOut, BotPatch, CreatedBot, DeliveryOut, NewBot, TokenOut};
use super::service;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

/// Create a bot (the owner). Its token and signing secret are in this answer only.
#[utoipa::path(
    operation_id = "create_bot",
    tag = "bots",
    request_body = NewBot,
    responses(
        (status = 201, body = CreatedBot, description = "Created; keep `token` and `signing_secret`, they are not shown again"),
        (status = 403, description = "Not the owner"),
        (status = 422, description = "Invalid fields; a `webhook_url` that is not http(s) or points at a loopback or private address"),
    )
)]
#[post("/bots")]
pub async fn create_bot(
    state: web::Data<AppState>,
    principal: Principal,
    body: extract::Json<NewBot>,
) -> ApiResult<HttpResponse> {
    let created = service::create(&state, &principal, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(created))
}

/// The bots, oldest first (the owner).
#[utoipa::path(
    operation_id = "list_bots",
    tag = "bots",
    params(PageParams),
    responses((status = 200, body = Page<BotOut>), (status = 400), (status = 403))
)]
#[get("/bots")]
pub async fn list_bots(
    state: web::Data<AppState>,
    principal: Principal,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<BotOut>>> {
    service::list(&state, &principal, page.into_inner())
        .await
        .map(web::Json)
}

/// One bot (the owner).
#[utoipa::path(
    operation_id = "get_bot",
    tag = "bots",
    params(("id" = i64, Path)),
    responses((status = 200, body = BotOut), (status = 403), (status = 404))
)]
#[get("/bots/{id}")]
pub async fn get_bot(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<BotOut>> {
    service::get(&state, &principal, id.into_inner())
        .await
        .map(web::Json)
}

/// Rename a bot, describe it, or set, change or remove its webhook (the owner). Setting the
/// URL re-enables a webhook that a 410 Gone disabled.
#[utoipa::path(
    operation_id = "update_bot",
    tag = "bots",
    params(("id" = i64, Path)),
    request_body = BotPatch,
    responses(
        (status = 200, body = BotOut),
        (status = 403),
        (status = 404),
        (status = 422, description = "Invalid fields; a refused `webhook_url`"),
    )
)]
#[patch("/bots/{id}")]
pub async fn update_bot(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: extract::Json<BotPatch>,
) -> ApiResult<web::Json<BotOut>> {
    service::update(&state, &principal, id.into_inner(), body.into_inner())
        .await
        .map(web::Json)
}

/// Delete a bot (the owner): its token stops, it leaves its chats, its messages stay.
#[utoipa::path(
    operation_id = "delete_bot",
    tag = "bots",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404))
)]
#[delete("/bots/{id}")]
pub async fn delete_bot(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    service::delete(&state, &principal, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a bot's token (the owner): the old token stops working at once.
#[utoipa::path(
    operation_id = "rotate_bot_token",
    tag = "bots",
    params(("id" = i64, Path)),
    responses((status = 200, body = TokenOut), (status = 403), (status = 404))
)]
#[post("/bots/{id}/token")]
pub async fn rotate_token(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<TokenOut>> {
    service::rotate_token(&state, &principal, id.into_inner())
        .await
        .map(web::Json)
}

/// The bot's webhook deliveries, newest first: event, attempts, last status and error, next
/// attempt (the owner).
#[utoipa::path(
    operation_id = "list_bot_deliveries",
    tag = "bots",
    params(("id" = i64, Path), PageParams),
    responses(
        (status = 200, body = Page<DeliveryOut>),
        (status = 400),
        (status = 403),
        (status = 404)
    )
)]
#[get("/bots/{id}/deliveries")]
pub async fn list_deliveries(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<DeliveryOut>>> {
    service::deliveries(&state, &principal, id.into_inner(), page.into_inner())
        .await
        .map(web::Json)
}

/// Send a delivery again, now, with the same id (the owner). It is queued; the answer shows
/// it pending.
#[utoipa::path(
    operation_id = "redeliver",
    tag = "bots",
    params(("id" = i64, Path), ("delivery_id" = i64, Path)),
    responses(
        (status = 202, body = DeliveryOut, description = "Queued"),
        (status = 403),
        (status = 404)
    )
)]
#[post("/bots/{id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (id, delivery_id) = path.into_inner();
    let delivery = service::redeliver(&state, &principal, id, delivery_id).await?;
    Ok(HttpResponse::Accepted().json(delivery))
}
