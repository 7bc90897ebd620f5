//! Bots: accounts the owner creates, with a token kept only as a hash, a signing secret, and
//! an optional webhook whose deliveries the owner can read and resend.

use super::dto::{
    BotOut, BotPatch, CreatedBot, DeliveryOut, DeliveryStatus, NewBot, TokenOut, WebhookStatus,
};
use super::repo::{self, BotChanges, BotRow, DeliveryRow, NewBotRow};
use super::webhook;
use crate::auth::tokens::{hash_secret, random_secret};
use crate::auth::{bots::TOKEN_PREFIX, Action, Principal};
use crate::chat::service as chat;
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult};
use crate::identity::service as identity;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;
use validator::Validate;

fn out(row: BotRow) -> BotOut {
    let webhook_status = match (&row.webhook_url, row.webhook_disabled_at) {
        (None, _) => WebhookStatus::None,
        (Some(_), None) => WebhookStatus::Active,
        (Some(_), Some(_)) => WebhookStatus::Disabled,
    };
    BotOut {
        id: row.id,
        user_id: row.user_id,
        name: row.name,
        description: row.description,
        webhook_url: row.webhook_url,
        webhook_status,
        webhook_disabled_reason: row.webhook_disabled_reason,
        webhook_disabled_at: row.webhook_disabled_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

fn delivery_out(row: DeliveryRow) -> DeliveryOut {
    DeliveryOut {
        id: row.id,
        event_type: row.event_type,
        seq: row.seq,
        status: DeliveryStatus::parse(&row.status),
        attempts: row.attempts,
        last_status: row.last_status,
        last_error: row.last_error,
        last_attempt_at: row.last_attempt_at,
        next_attempt_at: row.next_attempt_at,
        delivered_at: row.delivered_at,
        created_at: row.created_at,
    }
}

/// A webhook URL as given, checked (422 naming `webhook_url` when refused).
fn checked_url(state: &AppState, url: &str) -> ApiResult<String> {
    webhook::check_url(url.trim(), state.settings.webhook_allow_private)
        .map(|u| u.to_string())
        .map_err(|e| ApiError::field("webhook_url", e))
}

/// `whsec_` and 32 random bytes in standard base64, as Standard Webhooks libraries read it.
fn new_signing_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn find(conn: &mut DbConnection, id: i64) -> ApiResult<BotRow> {
    repo::find_bot(conn, id)?.ok_or_else(|| ApiError::not_found(format!("bot {id}")))
}

pub async fn create(state: &AppState, principal: &Principal, new: NewBot) -> ApiResult<CreatedBot> {
    principal.require(Action::ManageBots)?;
    new.validate()?;
    let url = new
        .webhook_url
        .as_deref()
        .map(|u| checked_url(state, u))
        .transpose()?;
    let token = random_secret(TOKEN_PREFIX);
    let token_hash = hash_secret(&token);
    let signing_secret = new_signing_secret();
    let secret = signing_secret.clone();
    let created_by = principal.user_id;
    let row = state
        .db
        .transaction(move |conn| {
            let name = new.name.trim();
            let user_id = identity::create_bot_account(conn, name)?;
            let now = crate::time::now();
            Ok(repo::insert_bot(
                conn,
                &NewBotRow {
                    user_id,
                    name,
                    description: new.description.as_deref(),
                    token_hash: &token_hash,
                    signing_secret: &secret,
                    webhook_url: url.as_deref(),
                    created_by,
                    created_at: now,
                    updated_at: now,
                },
            )?)
        })
        .await?;
    Ok(CreatedBot {
        bot: out(row),
        token,
        signing_secret,
    })
}

/// Bots in the order they were made.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    page: PageParams,
) -> ApiResult<Page<BotOut>> {
    principal.require(Action::ManageBots)?;
    let limit = page.limit()?;
    let after: Option<i64> = page.cursor()?;
    state
        .db
        .run(move |conn| {
            let rows = repo::list_bots(conn, after, limit)?;
            Ok(Page::from_rows(rows, limit, |b| b.id, out))
        })
        .await
}

pub async fn get(state: &AppState, principal: &Principal, id: i64) -> ApiResult<BotOut> {
    principal.require(Action::ManageBots)?;
    state.db.run(move |conn| find(conn, id).map(out)).await
}

pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: i64,
    patch: BotPatch,
) -> ApiResult<BotOut> {
    principal.require(Action::ManageBots)?;
    patch.validate()?;
    let url = match &patch.webhook_url {
        Some(Some(u)) => Some(Some(checked_url(state, u)?)),
        Some(None) => Some(None),
        None => None,
    };
    let row = state
        .db
        .transaction(move |conn| {
            let bot = find(conn, id)?;
            let now = crate::time::now();
            let name = patch.name.as_deref().map(str::trim);
            let mut changes = BotChanges {
                name,
                description: patch.description.as_ref().map(Option::as_deref),
                updated_at: Some(now),
                ..BotChanges::default()
            };
            if let Some(url) = &url {
                changes.webhook_url = Some(url.as_deref());
                changes.webhook_disabled_at = Some(None);
                changes.webhook_disabled_reason = Some(None);
                // A webhook starts with the events after it was set; one re-enabled after a
                // 410 also gets what waited meanwhile.
                if bot.webhook_url.is_none() {
                    changes.delivered_seq = Some(crate::events::head(conn, bot.user_id)?);
                }
            }
            repo::update_bot(conn, id, &changes)?;
            if let Some(name) = name {
                identity::rename_bot_account(conn, bot.user_id, name)?;
            }
            if url.is_some() {
                repo::mark_due(conn, id, now)?;
            }
            find(conn, id)
        })
        .await?;
    state.webhooks.notify_one();
    Ok(out(row))
}

/// A new token; the old one stops at once, on every process (each request looks it up).
pub async fn rotate_token(state: &AppState, principal: &Principal, id: i64) -> ApiResult<TokenOut> {
    principal.require(Action::ManageBots)?;
    let token = random_secret(TOKEN_PREFIX);
    let hash = hash_secret(&token);
    state
        .db
        .transaction(move |conn| {
            find(conn, id)?;
            repo::set_token_hash(conn, id, &hash)?;
            Ok(())
        })
        .await?;
    Ok(TokenOut { token })
}

/// Deletes a bot: its token stops, it leaves its chats (members are told), its pending
/// deliveries go; its messages stay, shown as a deleted account's.
pub async fn delete(state: &AppState, principal: &Principal, id: i64) -> ApiResult<()> {
    principal.require(Action::ManageBots)?;
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let bot = find(conn, id)?;
            chat::leave_all(conn, outbox, bot.user_id)?;
            repo::delete_bot(conn, id)?;
            identity::close_bot_account(conn, bot.user_id)?;
            Ok(())
        })
        .await
}

/// The bot's webhook deliveries, newest first.
pub async fn deliveries(
    state: &AppState,
    principal: &Principal,
    id: i64,
    page: PageParams,
) -> ApiResult<Page<DeliveryOut>> {
    principal.require(Action::ManageBots)?;
    let limit = page.limit()?;
    let before: Option<i64> = page.cursor()?;
    state
        .db
        .run(move |conn| {
            find(conn, id)?;
            let rows = repo::deliveries(conn, id, before, limit)?;
            Ok(Page::from_rows(rows, limit, |d| d.id, delivery_out))
        })
        .await
}

/// Queues a delivery to be sent again now, whatever became of it (same id, so a receiver
/// that saw it already can tell).
pub async fn redeliver(
    state: &AppState,
    principal: &Principal,
    id: i64,
    delivery_id: i64,
) -> ApiResult<DeliveryOut> {
    principal.require(Action::ManageBots)?;
    let row = state
        .db
        .transaction(move |conn| {
            find(conn, id)?;
            repo::find_delivery(conn, id, delivery_id)?.ok_or_else(|| {
                ApiError::not_found(format!("delivery {delivery_id} of bot {id}"))
            })?;
            let now = crate::time::now();
            let row = repo::requeue(conn, delivery_id, now)?;
            repo::mark_due(conn, id, now)?;
            Ok(row)
        })
        .await?;
    state.webhooks.notify_one();
    Ok(delivery_out(row))
}
