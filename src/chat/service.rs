//! Who may talk with whom, messages and read state. Every change records its event in the
//! same transaction (so the event exists exactly when the change does) and publishes it to
//! live sockets after the commit.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use validator::Validate;

use super::dto::{
    Author, ChatKind, ChatOut, ChatPatch, Command, MemberOut, MemberRole, MembersChanged,
    MessageKind, MessageOut, MessagePatch, MessageQuery, NewChat, NewMember, NewMessage, ReadEvent,
    ReadState, TypingEvent, MAX_MEMBERS,
};
use super::repo::{self, ChatRow, MemberRow, MessageRow, NewMessageRow};
use crate::auth::{Action, Principal, Role};
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult};
use crate::events::Outbox;
use crate::files::service as files;
use crate::identity::service::{self as identity, UserRow};
use crate::notifications::dto::{Link, NotificationKind, SubjectType};
use crate::notifications::service::{self as notifications, Notice};
use crate::pagination::{Keyset, Page, PageParams};
use crate::state::AppState;

pub const MESSAGE_CREATED: &str = "message.created";
pub const MESSAGE_UPDATED: &str = "message.updated";
pub const MESSAGE_DELETED: &str = "message.deleted";
pub const MEMBER_ADDED: &str = "chat.member_added";
pub const MEMBER_REMOVED: &str = "chat.member_removed";
pub const READ: &str = "read";
/// A message starting with `/`, for the chat's bots (besides its `message.created`).
pub const COMMAND: &str = "command";
pub const TYPING: &str = "typing";

/// The events about one message (see `EventBus::rewrite`).
fn message_topic(id: i64) -> String {
    format!("message:{id}")
}

/// A send's outcome: `created` is false when the `client_id` named an earlier message.
pub struct Sent {
    pub message: MessageOut,
    pub created: bool,
}

fn chat_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("chat {id}"))
}

/// The caller's membership, or 404: a chat one is not in does not exist for them.
fn membership(conn: &mut DbConnection, chat_id: i64, user_id: i64) -> ApiResult<MemberRow> {
    repo::member(conn, chat_id, user_id)?.ok_or_else(|| chat_not_found(chat_id))
}

fn require_admin(member: &MemberRow) -> ApiResult<()> {
    if MemberRole::parse(&member.role) == MemberRole::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only a chat admin may do this".to_owned(),
        ))
    }
}

fn author_of(user: &UserRow) -> Author {
    if user.deleted_at.is_some() {
        return Author {
            id: user.id,
            deleted: true,
            username: None,
            name: None,
            role: None,
        };
    }
    Author {
        id: user.id,
        deleted: false,
        username: user.username.clone(),
        name: user.name.clone(),
        role: Some(user.role.clone()),
    }
}

fn authors(conn: &mut DbConnection, ids: &[i64]) -> ApiResult<HashMap<i64, Author>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    Ok(identity::users_by_id(conn, &ids)?
        .iter()
        .map(|u| (u.id, author_of(u)))
        .collect())
}

fn unknown_author(id: i64) -> Author {
    Author {
        id,
        deleted: true,
        username: None,
        name: None,
        role: None,
    }
}

fn message_outs(conn: &mut DbConnection, rows: Vec<MessageRow>) -> ApiResult<Vec<MessageOut>> {
    let author_ids: Vec<i64> = rows.iter().map(|m| m.author_id).collect();
    let authors = authors(conn, &author_ids)?;
    let file_ids: Vec<i64> = rows.iter().filter_map(|m| m.file_id).collect();
    let mut files: HashMap<i64, _> = if file_ids.is_empty() {
        HashMap::new()
    } else {
        files::files_by_id(conn, &file_ids)?
            .into_iter()
            .map(|f| (f.id, f))
            .collect()
    };
    Ok(rows
        .into_iter()
        .map(|m| MessageOut {
            author: authors
                .get(&m.author_id)
                .cloned()
                .unwrap_or_else(|| unknown_author(m.author_id)),
            file: m.file_id.and_then(|id| files.remove(&id)),
            id: m.id,
            chat_id: m.chat_id,
            kind: MessageKind::parse(&m.kind),
            body: m.body,
            client_id: m.client_id,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted: m.deleted_at.is_some(),
        })
        .collect())
}

fn message_out(conn: &mut DbConnection, row: MessageRow) -> ApiResult<MessageOut> {
    message_outs(conn, vec![row])?
        .pop()
        .ok_or_else(|| ApiError::internal("a message vanished while being shown"))
}

/// Each chat as `user_id` sees it: role, unread count, last message, the other person.
fn chat_outs(conn: &mut DbConnection, rows: Vec<ChatRow>, user_id: i64) -> ApiResult<Vec<ChatOut>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let counts: HashMap<i64, i64> = repo::count_members(conn, &ids)?.into_iter().collect();
    let mine: HashMap<i64, MemberRow> = repo::memberships(conn, user_id, &ids)?
        .into_iter()
        .map(|m| (m.chat_id, m))
        .collect();
    let unread: HashMap<i64, i64> = repo::unread_counts(conn, user_id, Some(&ids))?
        .into_iter()
        .collect();
    let peers: HashMap<i64, i64> = repo::peers(conn, &ids, user_id)?.into_iter().collect();
    let peer_ids: Vec<i64> = peers.values().copied().collect();
    let peer_authors = authors(conn, &peer_ids)?;
    let last_ids: Vec<i64> = rows.iter().filter_map(|c| c.last_message_id).collect();
    let last_rows = repo::messages_by_id(conn, &last_ids)?;
    let mut last: HashMap<i64, MessageOut> = message_outs(conn, last_rows)?
        .into_iter()
        .map(|m| (m.chat_id, m))
        .collect();
    Ok(rows
        .into_iter()
        .map(|c| {
            let member = mine.get(&c.id);
            ChatOut {
                kind: ChatKind::parse(&c.kind),
                title: c.title,
                created_by: c.created_by,
                created_at: c.created_at,
                last_activity_at: c.last_activity_at,
                member_count: counts.get(&c.id).copied().unwrap_or(0),
                my_role: member.map_or(MemberRole::Member, |m| MemberRole::parse(&m.role)),
                peer: peers.get(&c.id).map(|p| {
                    peer_authors
                        .get(p)
                        .cloned()
                        .unwrap_or_else(|| unknown_author(*p))
                }),
                last_message: last.remove(&c.id),
                unread_count: unread.get(&c.id).copied().unwrap_or(0),
                last_read_message_id: member.map_or(0, |m| m.last_read_message_id),
                muted: member.is_some_and(|m| m.muted),
                id: c.id,
            }
        })
        .collect())
}

fn chat_out(conn: &mut DbConnection, id: i64, user_id: i64) -> ApiResult<ChatOut> {
    let row = repo::find_chat(conn, id)?;
    chat_outs(conn, vec![row], user_id)?
        .pop()
        .ok_or_else(|| chat_not_found(id))
}

/// Customers may only talk with staff (and bots): never two customers in one chat.
fn refuse_two_customers(roles: impl IntoIterator<Item = Role>) -> ApiResult<()> {
    if roles.into_iter().filter(|r| *r == Role::Customer).count() > 1 {
        return Err(ApiError::Forbidden(
            "customers may only talk with staff".to_owned(),
        ));
    }
    Ok(())
}

/// Opens a direct chat (or returns the existing one, `created` false) or creates a group.
pub async fn create(
    state: &AppState,
    principal: &Principal,
    new: NewChat,
) -> ApiResult<(ChatOut, bool)> {
    principal.require(Action::StartChats)?;
    new.validate()?;
    let me = principal.user_id;
    let mut others: Vec<i64> = new
        .member_ids
        .iter()
        .copied()
        .filter(|id| *id != me)
        .collect();
    others.sort_unstable();
    others.dedup();
    match new.kind {
        ChatKind::Direct => {
            if new.title.is_some() {
                return Err(ApiError::field("title", "a direct chat has no title"));
            }
            if new.member_ids.len() != 1 || others.len() != 1 {
                return Err(ApiError::field(
                    "member_ids",
                    "a direct chat names exactly one other person",
                ));
            }
        }
        ChatKind::Group => {
            if !principal.is_staff() {
                return Err(ApiError::Forbidden(
                    "only staff create group chats".to_owned(),
                ));
            }
            if new.title.is_none() {
                return Err(ApiError::field("title", "a group needs a title"));
            }
        }
    }
    let my_role = principal.role;
    let title = new.title.map(|t| t.trim().to_owned());
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let users = identity::users_by_id(conn, &others)?;
            for id in &others {
                if !users.iter().any(|u| u.id == *id && u.deleted_at.is_none()) {
                    return Err(ApiError::not_found(format!("user {id}")));
                }
            }
            refuse_two_customers(users.iter().map(UserRow::role).chain([my_role]))?;
            let now = crate::time::now();
            let direct_key = (new.kind == ChatKind::Direct)
                .then(|| format!("{}:{}", me.min(others[0]), me.max(others[0])));
            if let Some(key) = &direct_key {
                if let Some(id) = repo::find_direct(conn, key)? {
                    return Ok((chat_out(conn, id, me)?, false));
                }
            }
            let Some(id) = repo::insert_chat(
                conn,
                new.kind.as_str(),
                title.as_deref(),
                direct_key.as_deref(),
                me,
                now,
            )?
            else {
                // Another request created this pair's chat a moment ago.
                let key = direct_key.as_deref().unwrap_or_default();
                let id = repo::find_direct(conn, key)?.ok_or_else(|| chat_not_found(0))?;
                return Ok((chat_out(conn, id, me)?, false));
            };
            let creator_role = match new.kind {
                ChatKind::Direct => MemberRole::Member,
                ChatKind::Group => MemberRole::Admin,
            };
            let mut members = vec![(me, creator_role.as_str())];
            members.extend(others.iter().map(|id| (*id, MemberRole::Member.as_str())));
            repo::insert_members(conn, id, &members, now)?;
            let everyone: Vec<i64> = members.iter().map(|(id, _)| *id).collect();
            outbox.record(
                conn,
                everyone.iter().copied(),
                MEMBER_ADDED,
                &MembersChanged {
                    chat_id: id,
                    user_ids: everyone.clone(),
                    by: me,
                    chat_deleted: false,
                },
            )?;
            Ok((chat_out(conn, id, me)?, true))
        })
        .await
}

/// A `GET /chats` cursor: the last chat's activity time and id.
type ChatCursor = Keyset<chrono::NaiveDateTime>;

pub async fn list(
    state: &AppState,
    principal: &Principal,
    page: PageParams,
) -> ApiResult<Page<ChatOut>> {
    principal.require(Action::UseChats)?;
    let limit = page.limit()?;
    let after: Option<ChatCursor> = page.cursor()?;
    let me = principal.user_id;
    state
        .db
        .run(move |conn| {
            let rows = repo::chats_of(conn, me, after, limit + 1)?;
            let chats = chat_outs(conn, rows, me)?;
            Ok(Page::from_rows(
                chats,
                limit,
                |c| ChatCursor {
                    key: c.last_activity_at,
                    id: c.id,
                },
                |c| c,
            ))
        })
        .await
}

pub async fn get(state: &AppState, principal: &Principal, id: i64) -> ApiResult<ChatOut> {
    principal.require(Action::UseChats)?;
    let me = principal.user_id;
    state
        .db
        .run(move |conn| {
            membership(conn, id, me)?;
            chat_out(conn, id, me)
        })
        .await
}

fn require_group(chat: &ChatRow) -> ApiResult<()> {
    if ChatKind::parse(&chat.kind) == ChatKind::Group {
        Ok(())
    } else {
        Err(ApiError::Conflict(
            "a direct chat has no title, no admins and exactly its two members".to_owned(),
        ))
    }
}

/// Renames a group (a chat admin) and mutes or unmutes the chat for the caller (any member).
pub async fn update(
    state: &AppState,
    principal: &Principal,
    id: i64,
    patch: ChatPatch,
) -> ApiResult<ChatOut> {
    principal.require(Action::UseChats)?;
    patch.validate()?;
    let me = principal.user_id;
    state
        .db
        .transaction(move |conn| {
            let member = membership(conn, id, me)?;
            if let Some(title) = &patch.title {
                require_group(&repo::find_chat(conn, id)?)?;
                require_admin(&member)?;
                repo::set_title(conn, id, title.trim())?;
            }
            if let Some(muted) = patch.muted {
                repo::set_muted(conn, id, me, muted)?;
            }
            chat_out(conn, id, me)
        })
        .await
}

/// Deletes a group with its messages (a chat admin); every member hears
/// `chat.member_removed` with `chat_deleted`.
pub async fn delete(state: &AppState, principal: &Principal, id: i64) -> ApiResult<()> {
    principal.require(Action::UseChats)?;
    let me = principal.user_id;
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let member = membership(conn, id, me)?;
            require_group(&repo::find_chat(conn, id)?)?;
            require_admin(&member)?;
            repo::lock_chat(conn, id)?;
            let everyone = repo::member_ids(conn, id)?;
            outbox.record(
                conn,
                everyone.iter().copied(),
                MEMBER_REMOVED,
                &MembersChanged {
                    chat_id: id,
                    user_ids: everyone.clone(),
                    by: me,
                    chat_deleted: true,
                },
            )?;
            repo::delete_chat(conn, id)?;
            notifications::chat_deleted(conn, id)?;
            Ok(())
        })
        .await
}

#[derive(Serialize, Deserialize)]
struct MemberCursor {
    after: i64,
}

pub async fn members(
    state: &AppState,
    principal: &Principal,
    id: i64,
    page: PageParams,
) -> ApiResult<Page<MemberOut>> {
    principal.require(Action::UseChats)?;
    let limit = page.limit()?;
    let after: Option<MemberCursor> = page.cursor()?;
    let me = principal.user_id;
    state
        .db
        .run(move |conn| {
            membership(conn, id, me)?;
            let rows = repo::members_page(conn, id, after.map(|c| c.after), limit + 1)?;
            let ids: Vec<i64> = rows.iter().map(|m| m.user_id).collect();
            let authors = authors(conn, &ids)?;
            Ok(Page::from_rows(
                rows,
                limit,
                |m| MemberCursor { after: m.user_id },
                |m| member_out(&authors, m),
            ))
        })
        .await
}

fn member_out(authors: &HashMap<i64, Author>, m: MemberRow) -> MemberOut {
    MemberOut {
        user: authors
            .get(&m.user_id)
            .cloned()
            .unwrap_or_else(|| unknown_author(m.user_id)),
        role: MemberRole::parse(&m.role),
        joined_at: m.joined_at,
        last_read_message_id: m.last_read_message_id,
    }
}

/// Adds a person or bot to a group (a chat admin).
pub async fn add_member(
    state: &AppState,
    principal: &Principal,
    id: i64,
    new: NewMember,
) -> ApiResult<MemberOut> {
    principal.require(Action::UseChats)?;
    new.validate()?;
    let me = principal.user_id;
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let mine = membership(conn, id, me)?;
            require_group(&repo::find_chat(conn, id)?)?;
            require_admin(&mine)?;
            repo::lock_chat(conn, id)?;
            let user = identity::find_user(conn, new.user_id)?;
            if repo::member(conn, id, new.user_id)?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "user {} is a member already",
                    new.user_id
                )));
            }
            let present = repo::member_roles(conn, id)?;
            if i64::try_from(present.len()).unwrap_or(i64::MAX) >= MAX_MEMBERS {
                return Err(ApiError::Conflict(format!(
                    "a chat has at most {MAX_MEMBERS} members"
                )));
            }
            refuse_two_customers(
                present
                    .iter()
                    .map(|(_, role)| role.parse().unwrap_or(Role::Customer))
                    .chain([user.role()]),
            )?;
            let role = new.role.unwrap_or(MemberRole::Member);
            let now = crate::time::now();
            repo::insert_members(conn, id, &[(user.id, role.as_str())], now)?;
            let recipients = present.iter().map(|(id, _)| *id).chain([user.id]);
            outbox.record(
                conn,
                recipients,
                MEMBER_ADDED,
                &MembersChanged {
                    chat_id: id,
                    user_ids: vec![user.id],
                    by: me,
                    chat_deleted: false,
                },
            )?;
            Ok(MemberOut {
                user: author_of(&user),
                role,
                joined_at: now,
                last_read_message_id: 0,
            })
        })
        .await
}

/// Removes a member (a chat admin), or leaves (anyone, for themselves). A group whose last
/// admin leaves gets its longest-standing member as admin; one left empty is deleted.
pub async fn remove_member(
    state: &AppState,
    principal: &Principal,
    id: i64,
    user_id: i64,
) -> ApiResult<()> {
    principal.require(Action::UseChats)?;
    let me = principal.user_id;
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let mine = membership(conn, id, me)?;
            require_group(&repo::find_chat(conn, id)?)?;
            if user_id != me {
                require_admin(&mine)?;
            }
            repo::lock_chat(conn, id)?;
            if repo::member(conn, id, user_id)?.is_none() {
                return Err(ApiError::not_found(format!("user {user_id} in chat {id}")));
            }
            remove_locked(conn, outbox, id, user_id, me)
        })
        .await
}

/// Removes `user_id` from chat `id`, whose row the caller locked, telling its members (and
/// the one removed). A group whose last admin goes gets its longest-standing member as
/// admin; one left empty is deleted.
fn remove_locked(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    id: i64,
    user_id: i64,
    by: i64,
) -> ApiResult<()> {
    let recipients = repo::member_ids(conn, id)?;
    repo::remove_member(conn, id, user_id)?;
    notifications::chat_left(conn, user_id, id)?;
    outbox.record(
        conn,
        recipients.iter().copied().chain([user_id]),
        MEMBER_REMOVED,
        &MembersChanged {
            chat_id: id,
            user_ids: vec![user_id],
            by,
            chat_deleted: false,
        },
    )?;
    if recipients.iter().all(|r| *r == user_id) {
        repo::delete_chat(conn, id)?;
        notifications::chat_deleted(conn, id)?;
    } else if repo::count_admins(conn, id)? == 0 {
        repo::promote_eldest(conn, id)?;
    }
    Ok(())
}

/// Takes `user_id` out of every chat (a bot being deleted), inside the caller's transaction.
pub fn leave_all(conn: &mut DbConnection, outbox: &mut Outbox, user_id: i64) -> ApiResult<()> {
    for chat_id in repo::chats_with_member(conn, user_id)? {
        repo::lock_chat(conn, chat_id)?;
        remove_locked(conn, outbox, chat_id, user_id, user_id)?;
    }
    Ok(())
}

/// Where a history page continues: strictly between the two ids.
#[derive(Serialize, Deserialize)]
struct HistoryCursor {
    before: i64,
    after: Option<i64>,
}

/// The history, newest first; `before`/`after` bound it by message id. Message ids grow in
/// commit order within a chat (see `repo::lock_chat`), so paging back with `before` and
/// forward with `after` has no gaps and no repeats while messages arrive.
pub async fn messages(
    state: &AppState,
    principal: &Principal,
    id: i64,
    query: MessageQuery,
    page: PageParams,
) -> ApiResult<Page<MessageOut>> {
    principal.require(Action::UseChats)?;
    let limit = page.limit()?;
    let cursor: Option<HistoryCursor> = page.cursor()?;
    let (before, after) = match cursor {
        Some(c) => (Some(c.before), c.after),
        None => (query.before, query.after),
    };
    let me = principal.user_id;
    state
        .db
        .run(move |conn| {
            membership(conn, id, me)?;
            let rows = repo::history(conn, id, before, after, limit + 1)?;
            let messages = message_outs(conn, rows)?;
            Ok(Page::from_rows(
                messages,
                limit,
                |m| HistoryCursor {
                    before: m.id,
                    after,
                },
                |m| m,
            ))
        })
        .await
}

/// The content rules every send obeys, whichever way it arrives.
fn check_content(new: &NewMessage) -> ApiResult<()> {
    new.validate()?;
    match new.kind {
        MessageKind::Text if new.body.is_none() => {
            Err(ApiError::field("body", "a text message needs a body"))
        }
        MessageKind::Text if new.file_id.is_some() => Err(ApiError::field(
            "file_id",
            "only image and file messages carry a file",
        )),
        MessageKind::Image | MessageKind::File if new.file_id.is_none() => Err(ApiError::field(
            "file_id",
            "image and file messages need a file_id",
        )),
        _ => Ok(()),
    }
}

/// Sends a message (REST or WebSocket). With a `client_id` already used by this author in
/// this chat, returns that message instead (`created` false); concurrent retries queue on
/// the chat's lock, so exactly one is stored. Every valid attempt counts against the
/// sender's message budget (`throttle`; 429 past it), retries included.
pub async fn send(
    state: &AppState,
    principal: &Principal,
    chat_id: i64,
    new: NewMessage,
) -> ApiResult<Sent> {
    principal.require(Action::UseChats)?;
    check_content(&new)?;
    // One budget for both ways of sending (HTTP and the socket's `message.send`).
    state.throttles.message(principal)?;
    // Sends to one chat queue on its lock (`repo::lock_chat`); they queue here instead, each
    // taking a pooled connection only when its turn comes, so a busy chat cannot hold every
    // connection of the process while the rest of the store waits.
    let _turn = state
        .chat_turns
        .take(chat_id, state.settings.db_timeout)
        .await
        .map_err(|_| {
            ApiError::Unavailable(
                "too many messages are waiting for this chat; retry shortly".to_owned(),
            )
        })?;
    let who = principal.clone();
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let me = who.user_id;
            membership(conn, chat_id, me)?;
            if let Some(file_id) = new.file_id {
                let file = files::visible_file(conn, &who, file_id)?;
                if new.kind == MessageKind::Image && !file.content_type.starts_with("image/") {
                    return Err(ApiError::field("file_id", "must be an image"));
                }
            }
            repo::lock_chat(conn, chat_id)?;
            if let Some(client_id) = &new.client_id {
                if let Some(first) = repo::find_by_client_id(conn, chat_id, me, client_id)? {
                    let message = message_out(conn, first)?;
                    return Ok(Sent {
                        message,
                        created: false,
                    });
                }
            }
            let now = crate::time::now();
            let row = repo::insert_message(
                conn,
                &NewMessageRow {
                    chat_id,
                    author_id: me,
                    kind: new.kind.as_str(),
                    body: new.body.as_deref(),
                    file_id: new.file_id,
                    client_id: new.client_id.as_deref(),
                    at: now,
                },
            )?;
            repo::touch_chat(conn, chat_id, row.id, now)?;
            // One's own messages are read.
            repo::advance_read(conn, chat_id, me, row.id)?;
            notifications::chat_read(conn, me, chat_id, row.id)?;
            let message = message_out(conn, row)?;
            let members = repo::listeners(conn, chat_id)?;
            let topic = message_topic(message.id);
            let recipients = members.iter().map(|m| m.user_id);
            outbox.record_about(conn, recipients, MESSAGE_CREATED, &message, Some(&topic))?;
            if let Some(command) = Command::parse(&message) {
                let bots = members.iter().filter(|m| m.bot && m.user_id != me);
                let bots: Vec<i64> = bots.map(|m| m.user_id).collect();
                if !bots.is_empty() {
                    outbox.record_about(conn, bots, COMMAND, &command, Some(&topic))?;
                }
            }
            let notifiable: Vec<i64> = members
                .iter()
                .filter(|m| m.notified && m.user_id != me)
                .map(|m| m.user_id)
                .collect();
            let chat = repo::find_chat(conn, chat_id)?;
            notifications::message_posted(
                conn,
                outbox,
                &notifiable,
                message.id,
                &message_notice(&chat, &message),
            )?;
            Ok(Sent {
                message,
                created: true,
            })
        })
        .await
}

/// The notification a message raises for the chat's other members.
fn message_notice(chat: &ChatRow, message: &MessageOut) -> Notice {
    let author = &message.author;
    let who = author
        .name
        .clone()
        .or_else(|| author.username.clone())
        .unwrap_or_else(|| format!("user {}", author.id));
    let title = match (ChatKind::parse(&chat.kind), &chat.title) {
        (ChatKind::Group, Some(title)) => title.clone(),
        _ => who.clone(),
    };
    let what = match message.kind {
        MessageKind::Text => message.body.clone().unwrap_or_default(),
        MessageKind::Image => "sent an image".to_owned(),
        MessageKind::File => "sent a file".to_owned(),
    };
    Notice {
        kind: NotificationKind::Message,
        cause: format!("chat:{}:message:{}", chat.id, message.id),
        title,
        body: format!("{who}: {what}"),
        link: Link::new(
            SubjectType::Chat,
            chat.id,
            format!("/api/v1/chats/{}/messages", chat.id),
        ),
    }
}

fn require_message(
    conn: &mut DbConnection,
    chat_id: i64,
    message_id: i64,
) -> ApiResult<MessageRow> {
    repo::find_message(conn, chat_id, message_id)?
        .ok_or_else(|| ApiError::not_found(format!("message {message_id} in chat {chat_id}")))
}

/// Edits a message's body (its author).
pub async fn edit(
    state: &AppState,
    principal: &Principal,
    chat_id: i64,
    message_id: i64,
    patch: MessagePatch,
) -> ApiResult<MessageOut> {
    principal.require(Action::UseChats)?;
    patch.validate()?;
    let me = principal.user_id;
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            membership(conn, chat_id, me)?;
            let row = require_message(conn, chat_id, message_id)?;
            if row.author_id != me {
                return Err(ApiError::Forbidden(
                    "only its author may edit a message".to_owned(),
                ));
            }
            if row.deleted_at.is_some() {
                return Err(ApiError::Conflict(
                    "a deleted message cannot be edited".to_owned(),
                ));
            }
            let row = repo::edit_message(conn, message_id, &patch.body, crate::time::now())?;
            let message = message_out(conn, row)?;
            let recipients = repo::member_ids(conn, chat_id)?;
            let topic = message_topic(message.id);
            outbox.record_about(conn, recipients, MESSAGE_UPDATED, &message, Some(&topic))?;
            Ok(message)
        })
        .await
}

/// Deletes a message (its author or a chat admin), keeping a tombstone in the history.
/// Deleting a deleted message changes nothing.
pub async fn delete_message(
    state: &AppState,
    principal: &Principal,
    chat_id: i64,
    message_id: i64,
) -> ApiResult<()> {
    principal.require(Action::UseChats)?;
    let me = principal.user_id;
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let member = membership(conn, chat_id, me)?;
            let row = require_message(conn, chat_id, message_id)?;
            if row.author_id != me {
                require_admin(&member).map_err(|_| {
                    ApiError::Forbidden(
                        "only its author or a chat admin may delete a message".to_owned(),
                    )
                })?;
            }
            if row.deleted_at.is_some() {
                return Ok(());
            }
            let row = repo::tombstone(conn, message_id, crate::time::now())?;
            let message = message_out(conn, row)?;
            // A replay of the earlier events shows the tombstone, never the deleted body.
            let topic = message_topic(message.id);
            outbox.rewrite(conn, &topic, &message)?;
            let recipients = repo::member_ids(conn, chat_id)?;
            outbox.record_about(conn, recipients, MESSAGE_DELETED, &message, Some(&topic))
        })
        .await
}

/// Moves the caller's read marker forward (never backwards, never past the newest message);
/// every member hears `read` when it moved.
pub async fn mark_read(
    state: &AppState,
    principal: &Principal,
    chat_id: i64,
    up_to: i64,
) -> ApiResult<ReadState> {
    principal.require(Action::UseChats)?;
    let me = principal.user_id;
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let member = membership(conn, chat_id, me)?;
            let newest = repo::find_chat(conn, chat_id)?.last_message_id.unwrap_or(0);
            let target = up_to.min(newest);
            let moved = repo::advance_read(conn, chat_id, me, target)? > 0;
            if moved {
                // An open notification always stands for messages past the old marker.
                notifications::chat_read(conn, me, chat_id, target)?;
                let recipients = repo::member_ids(conn, chat_id)?;
                outbox.record(
                    conn,
                    recipients,
                    READ,
                    &ReadEvent {
                        chat_id,
                        user_id: me,
                        up_to_message_id: target,
                    },
                )?;
            }
            let unread = repo::unread_counts(conn, me, Some(&[chat_id]))?
                .first()
                .map_or(0, |(_, n)| *n);
            Ok(ReadState {
                chat_id,
                last_read_message_id: member.last_read_message_id.max(target),
                unread_count: unread,
            })
        })
        .await
}

/// Tells the chat's other members that the caller is typing (never stored).
pub async fn typing(state: &AppState, principal: &Principal, chat_id: i64) -> ApiResult<()> {
    principal.require(Action::UseChats)?;
    let me = principal.user_id;
    let recipients = state
        .db
        .run(move |conn| {
            membership(conn, chat_id, me)?;
            Ok(repo::member_ids(conn, chat_id)?)
        })
        .await?;
    let others: Vec<i64> = recipients.into_iter().filter(|id| *id != me).collect();
    state
        .events
        .publish_ephemeral(
            &state.db,
            others,
            TYPING,
            &TypingEvent {
                chat_id,
                user_id: me,
            },
        )
        .await
}

/// Messages by others that `user_id` has not read, over all their chats (the dashboard).
pub fn unread_total(conn: &mut DbConnection, user_id: i64) -> ApiResult<i64> {
    Ok(repo::unread_counts(conn, user_id, None)?
        .iter()
        .map(|(_, n)| n)
        .sum())
}
