use actix_web::{delete, get, patch, post, web, HttpResponse};
use validator::Validate;

use super::dto::{
    ChatOut, ChatPatch, MemberOut, MessageOut, MessagePatch, MessageQuery, NewChat, NewMember,
    NewMessage, ReadState, ReadUpTo,
};
use super::service;
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

/// Open a direct chat with one person (the existing one comes back with 200), or create a
/// group (staff). Customers may only talk with staff.
#[utoipa::path(
    operation_id = "create_chat",
    tag = "chats",
    request_body = NewChat,
    responses(
        (status = 201, body = ChatOut, description = "Created"),
        (status = 200, body = ChatOut, description = "The direct chat with that person, which existed already"),
        (status = 403, description = "A customer with another customer, or a group by a customer"),
        (status = 404, description = "A member id that names nobody"),
        (status = 422),
    )
)]
#[post("/chats")]
pub async fn create_chat(
    state: web::Data<AppState>,
    principal: Principal,
    body: extract::Json<NewChat>,
) -> ApiResult<HttpResponse> {
    let (chat, created) = service::create(&state, &principal, body.into_inner()).await?;
    Ok(if created {
        HttpResponse::Created().json(chat)
    } else {
        HttpResponse::Ok().json(chat)
    })
}

/// My chats, newest activity first, each with its last message and unread count.
#[utoipa::path(
    operation_id = "list_chats",
    tag = "chats",
    params(PageParams),
    responses((status = 200, body = Page<ChatOut>), (status = 400))
)]
#[get("/chats")]
pub async fn list_chats(
    state: web::Data<AppState>,
    principal: Principal,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<ChatOut>>> {
    service::list(&state, &principal, page.into_inner())
        .await
        .map(web::Json)
}

/// One of my chats.
#[utoipa::path(
    operation_id = "get_chat",
    tag = "chats",
    params(("id" = i64, Path)),
    responses((status = 200, body = ChatOut), (status = 404))
)]
#[get("/chats/{id}")]
pub async fn get_chat(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<web::Json<ChatOut>> {
    service::get(&state, &principal, id.into_inner())
        .await
        .map(web::Json)
}

/// Rename a group (a chat admin).
#[utoipa::path(
    operation_id = "update_chat",
    tag = "chats",
    params(("id" = i64, Path)),
    request_body = ChatPatch,
    responses(
        (status = 200, body = ChatOut),
        (status = 403, description = "Not a chat admin"),
        (status = 404),
        (status = 409, description = "A direct chat"),
        (status = 422),
    )
)]
#[patch("/chats/{id}")]
pub async fn update_chat(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: extract::Json<ChatPatch>,
) -> ApiResult<web::Json<ChatOut>> {
    service::update(&state, &principal, id.into_inner(), body.into_inner())
        .await
        .map(web::Json)
}

/// Delete a group with its messages (a chat admin).
#[utoipa::path(
    operation_id = "delete_chat",
    tag = "chats",
    params(("id" = i64, Path)),
    responses(
        (status = 204),
        (status = 403, description = "Not a chat admin"),
        (status = 404),
        (status = 409, description = "A direct chat"),
    )
)]
#[delete("/chats/{id}")]
pub async fn delete_chat(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    service::delete(&state, &principal, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The chat's members, by user id.
#[utoipa::path(
    operation_id = "list_chat_members",
    tag = "chats",
    params(("id" = i64, Path), PageParams),
    responses((status = 200, body = Page<MemberOut>), (status = 400), (status = 404))
)]
#[get("/chats/{id}/members")]
pub async fn list_members(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<MemberOut>>> {
    service::members(&state, &principal, id.into_inner(), page.into_inner())
        .await
        .map(web::Json)
}

/// Add a person or a bot to a group (a chat admin).
#[utoipa::path(
    operation_id = "add_chat_member",
    tag = "chats",
    params(("id" = i64, Path)),
    request_body = NewMember,
    responses(
        (status = 201, body = MemberOut),
        (status = 403, description = "Not a chat admin, or a second customer"),
        (status = 404, description = "No such chat (for the caller) or user"),
        (status = 409, description = "A member already, a direct chat, or the chat is full"),
        (status = 422),
    )
)]
#[post("/chats/{id}/members")]
pub async fn add_member(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: extract::Json<NewMember>,
) -> ApiResult<HttpResponse> {
    let member =
        service::add_member(&state, &principal, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(member))
}

/// Remove a member (a chat admin), or leave (yourself).
#[utoipa::path(
    operation_id = "remove_chat_member",
    tag = "chats",
    params(("id" = i64, Path), ("user_id" = i64, Path)),
    responses(
        (status = 204),
        (status = 403, description = "Removing someone else without being a chat admin"),
        (status = 404),
        (status = 409, description = "A direct chat cannot be left"),
    )
)]
#[delete("/chats/{id}/members/{user_id}")]
pub async fn remove_member(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (id, user_id) = path.into_inner();
    service::remove_member(&state, &principal, id, user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The chat's messages, newest first. `before` and `after` (message ids) bound the page;
/// `next_cursor` continues towards older messages within the same bounds.
#[utoipa::path(
    operation_id = "list_messages",
    tag = "chats",
    params(("id" = i64, Path), MessageQuery, PageParams),
    responses((status = 200, body = Page<MessageOut>), (status = 400), (status = 404))
)]
#[get("/chats/{id}/messages")]
pub async fn list_messages(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    query: extract::Query<MessageQuery>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<MessageOut>>> {
    service::messages(
        &state,
        &principal,
        id.into_inner(),
        query.into_inner(),
        page.into_inner(),
    )
    .await
    .map(web::Json)
}

/// Send a message. The same `client_id` again returns the first message with 200.
#[utoipa::path(
    operation_id = "send_message",
    tag = "chats",
    params(("id" = i64, Path)),
    request_body = NewMessage,
    responses(
        (status = 201, body = MessageOut, description = "Stored"),
        (status = 200, body = MessageOut, description = "The message sent earlier with this `client_id`"),
        (status = 404, description = "No such chat (for the caller), or a file the sender may not see"),
        (status = 422),
        (status = 429, description = "Too many messages from this user (the socket's `message.send` counts too)", headers(("Retry-After" = u64))),
    )
)]
#[post("/chats/{id}/messages")]
pub async fn send_message(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: extract::Json<NewMessage>,
) -> ApiResult<HttpResponse> {
    let sent = service::send(&state, &principal, id.into_inner(), body.into_inner()).await?;
    Ok(if sent.created {
        HttpResponse::Created().json(sent.message)
    } else {
        HttpResponse::Ok().json(sent.message)
    })
}

/// Edit a message's body (its author).
#[utoipa::path(
    operation_id = "edit_message",
    tag = "chats",
    params(("id" = i64, Path), ("message_id" = i64, Path)),
    request_body = MessagePatch,
    responses(
        (status = 200, body = MessageOut),
        (status = 403, description = "Not its author"),
        (status = 404),
        (status = 409, description = "The message was deleted"),
        (status = 422),
    )
)]
#[patch("/chats/{id}/messages/{message_id}")]
pub async fn edit_message(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(i64, i64)>,
    body: extract::Json<MessagePatch>,
) -> ApiResult<web::Json<MessageOut>> {
    let (id, message_id) = path.into_inner();
    service::edit(&state, &principal, id, message_id, body.into_inner())
        .await
        .map(web::Json)
}

/// Delete a message (its author or a chat admin); a tombstone stays in the history.
#[utoipa::path(
    operation_id = "delete_message",
    tag = "chats",
    params(("id" = i64, Path), ("message_id" = i64, Path)),
    responses(
        (status = 204),
        (status = 403, description = "Neither its author nor a chat admin"),
        (status = 404),
    )
)]
#[delete("/chats/{id}/messages/{message_id}")]
pub async fn delete_message(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let (id, message_id) = path.into_inner();
    service::delete_message(&state, &principal, id, message_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Move my read marker forward to `up_to_message_id` (it never moves backwards).
#[utoipa::path(
    operation_id = "mark_chat_read",
    tag = "chats",
    params(("id" = i64, Path)),
    request_body = ReadUpTo,
    responses((status = 200, body = ReadState), (status = 404), (status = 422))
)]
#[post("/chats/{id}/read")]
pub async fn mark_read(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: extract::Json<ReadUpTo>,
) -> ApiResult<web::Json<ReadState>> {
    body.validate()?;
    service::mark_read(&state, &principal, id.into_inner(), body.up_to_message_id)
        .await
        .map(web::Json)
}
