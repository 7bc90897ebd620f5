//! The rules of identity: who may sign up, log in, refresh, and change what.

use chrono::Duration as ChronoDuration;
use validator::Validate;

use super::dto::{PasswordChange, ProfilePatch, RegisterRequest, TokenResponse, UserOut};
pub use super::repo::UserRow;
use super::repo::{self, NewUser, ProfileChanges};
use super::validate::login_key;
use crate::auth::tokens::{hash_secret, random_secret};
use crate::auth::{Principal, Role};
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult, Context, OrInternal};
use crate::state::AppState;

/// Where a request came from, for rate limits and the session list.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The caller's address (the TCP peer, or the client a trusted proxy names: see
    /// `connections::client_address`) and user agent.
    pub fn of(req: &actix_web::HttpRequest) -> Self {
        Self {
            address: crate::connections::client_address(req).map(|ip| ip.to_string()),
            user_agent: req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect()),
        }
    }
}

/// What a new account is made of, once validated.
pub struct NewAccount {
    pub username: String,
    pub email: Option<String>,
    pub password: String,
    pub name: Option<String>,
    pub phone: Option<String>,
}

impl RegisterRequest {
    pub fn into_account(self) -> ApiResult<NewAccount> {
        self.validate()?;
        Ok(NewAccount {
            username: self.username,
            email: Some(self.email),
            password: self.password,
            name: self.name,
            phone: self.phone,
        })
    }
}

/// Creates an account of `role` (shared by sign-up, the compatibility route and owner
/// creation); 409 when the username or email is taken, whatever its letter case.
pub async fn create_account(state: &AppState, req: NewAccount, role: Role) -> ApiResult<UserOut> {
    let username_key = login_key(&req.username);
    let email_key = req.email.as_deref().map(login_key);
    // Cheap duplicate check before paying for bcrypt; the unique indexes decide races.
    let (name_taken, mail_taken) = {
        let (u, e) = (username_key.clone(), email_key.clone());
        state
            .db
            .run(move |conn| {
                let email_taken = match &e {
                    Some(e) => repo::email_taken(conn, e)?,
                    None => false,
                };
                Ok((repo::username_taken(conn, &u)?, email_taken))
            })
            .await?
    };
    if name_taken {
        return Err(ApiError::taken("username"));
    }
    if mail_taken {
        return Err(ApiError::taken("email"));
    }
    let hash = state.passwords.hash(req.password.clone()).await?;
    let id = state
        .db
        .run(move |conn| {
            let now = crate::time::now();
            let new = NewUser {
                username: req.username.trim(),
                username_key: &username_key,
                email: req.email.as_deref().map(str::trim),
                email_key: email_key.as_deref(),
                password_hash: &hash,
                role: role.as_str(),
                name: req.name.as_deref(),
                phone: req.phone.as_deref(),
                created_at: now,
                updated_at: now,
            };
            // A race lost to another sign-up is a unique violation, answered naming the field.
            let id = repo::insert_user(conn, &new).map_err(ApiError::from)?;
            crate::events::open_stream(conn, id)?;
            Ok(id)
        })
        .await?;
    user(state, id).await
}

/// Creates a bot's account (role `bot`, named `name`) with its event stream, inside the
/// caller's transaction; returns its user id.
pub fn create_bot_account(conn: &mut DbConnection, name: &str) -> ApiResult<i64> {
    let now = crate::time::now();
    let id = repo::insert_bot_user(
        conn,
        &repo::NewBotUser {
            role: Role::Bot.as_str(),
            name,
            created_at: now,
            updated_at: now,
        },
    )?;
    crate::events::open_stream(conn, id)?;
    Ok(id)
}

/// Renames a bot's account (the author name its messages show).
pub fn rename_bot_account(conn: &mut DbConnection, id: i64, name: &str) -> ApiResult<()> {
    repo::rename_user(conn, id, name)?;
    Ok(())
}

/// Closes a bot's account: its token stops at once; its messages stay.
pub fn close_bot_account(conn: &mut DbConnection, id: i64) -> ApiResult<()> {
    repo::close_account(conn, id)?;
    Ok(())
}

pub async fn register(
    state: &AppState,
    req: RegisterRequest,
    client: &ClientInfo,
) -> ApiResult<UserOut> {
    register_account(state, req.into_account()?, Role::Customer, client).await
}

/// Sign-up with the per-address limit applied. Every attempt counts, including the ones
/// refused because the username or email is taken (which would otherwise let anybody test
/// thousands of addresses for an account).
pub async fn register_account(
    state: &AppState,
    account: NewAccount,
    role: Role,
    client: &ClientInfo,
) -> ApiResult<UserOut> {
    let address = client.address.clone().unwrap_or_default();
    let limiter = state.limits.registrations;
    let over = state
        .db
        .transaction(move |conn| Ok(limiter.hit(conn, &address)?))
        .await?;
    if let Some(wait) = over {
        return Err(ApiError::TooManyRequests {
            detail: "too many sign-ups from this address; retry later".to_owned(),
            retry_after_secs: wait,
        });
    }
    create_account(state, account, role).await
}

/// A live customer, or 404 (staff, bots and erased accounts are not customers).
pub async fn live_customer(state: &AppState, id: i64) -> ApiResult<UserRow> {
    let row = state
        .db
        .run(move |conn| repo::find_user(conn, id).or_not_found(format!("customer {id}")))
        .await?;
    if row.role() != Role::Customer || row.deleted_at.is_some() {
        return Err(ApiError::not_found(format!("customer {id}")));
    }
    Ok(row)
}

/// Users by id, erased ones included; inside the caller's transaction.
pub fn users_by_id(conn: &mut DbConnection, ids: &[i64]) -> ApiResult<Vec<UserRow>> {
    Ok(repo::users_by_id(conn, ids)?)
}

/// Every live owner and worker (who hear of stock and requests); inside the caller's
/// transaction.
pub fn staff_ids(conn: &mut DbConnection) -> ApiResult<Vec<i64>> {
    Ok(repo::staff_ids(conn)?)
}

/// A user by id, inside the caller's transaction.
pub fn find_user(conn: &mut DbConnection, id: i64) -> ApiResult<UserRow> {
    repo::find_user(conn, id).or_not_found(format!("user {id}"))
}

pub async fn user(state: &AppState, id: i64) -> ApiResult<UserOut> {
    state
        .db
        .run(move |conn| repo::find_user(conn, id).or_not_found(format!("user {id}")))
        .await
        .map(UserOut::from)
}

/// Checks a login and password; the same 401 for an unknown user and a wrong password, in
/// the same time (a dummy hash is verified when there is no user).
///
/// The attempt is counted before the password is verified, so concurrent guesses cannot all
/// be checked before the first failure is recorded. It is counted per account (whether it
/// was named by username or email) and address, and per address; a successful login gives
/// its attempt back.
pub async fn login(
    state: &AppState,
    login: &str,
    password: String,
    client: &ClientInfo,
) -> ApiResult<TokenResponse> {
    let key = login_key(login);
    let address = client.address.clone().unwrap_or_default();
    let limits = (state.limits.login_account, state.limits.login_address);
    let (found, account_key, over) = state
        .db
        .run(move |conn| {
            // No account's login is empty, longer than an email may be, or holds a NUL (which
            // PostgreSQL cannot even compare).
            let found = if key.is_empty() || key.len() > 254 || key.contains('\0') {
                None
            } else {
                repo::find_user_by_login(conn, &key)?
            };
            // An unknown login is limited like an account, so that 429s reveal nothing.
            let account = match &found {
                Some(user) => format!("user {}", user.id),
                None => format!("login {key}"),
            };
            let account_key = format!("{account}|{address}");
            // An attempt refused for one account does not spend the address's budget (or
            // hammering one account would lock every account out from that address), and
            // one refused for the address gives the account its attempt back.
            if let Some(wait) = limits.0.hit(conn, &account_key)? {
                return Ok((found, account_key, Some(wait)));
            }
            let over_address = limits.1.hit(conn, &address)?;
            if over_address.is_some() {
                limits.0.undo(conn, &account_key)?;
            }
            Ok((found, account_key, over_address))
        })
        .await?;
    if let Some(wait) = over {
        return Err(ApiError::TooManyRequests {
            detail: "too many failed logins; retry later".to_owned(),
            retry_after_secs: wait,
        });
    }
    // Bots have no password and cannot log in.
    let hash = found
        .as_ref()
        .filter(|u| u.role() != Role::Bot)
        .and_then(|u| u.password_hash.clone());
    let ok = if password.chars().count() > crate::auth::passwords::MAX_PASSWORD_CHARS {
        false
    } else {
        state.passwords.verify(password, hash).await?
    };
    let Some(user) = found.filter(|_| ok) else {
        return Err(ApiError::Unauthorized(
            "the login or password is wrong".to_owned(),
        ));
    };
    let address = client.address.clone().unwrap_or_default();
    state
        .db
        .transaction(move |conn| {
            limits.0.reset(conn, &account_key)?;
            limits.1.undo(conn, &address)?;
            Ok(())
        })
        .await?;
    start_session(state, user.id, client).await
}

async fn start_session(
    state: &AppState,
    user_id: i64,
    client: &ClientInfo,
) -> ApiResult<TokenResponse> {
    let refresh = random_secret("");
    let refresh_hash = hash_secret(&refresh);
    let ttl = ChronoDuration::from_std(state.settings.refresh_token_ttl).or_internal()?;
    let client = client.clone();
    let (session_id, row) = state
        .db
        .transaction(move |conn| {
            let row = repo::find_user(conn, user_id).or_not_found("the user")?;
            let expires = crate::time::now() + ttl;
            let session_id = repo::create_session(
                conn,
                user_id,
                expires,
                client.user_agent.as_deref(),
                client.address.as_deref(),
            )?;
            repo::insert_refresh_token(conn, session_id, &refresh_hash)?;
            Ok((session_id, row))
        })
        .await?;
    let access = state.tokens.issue(user_id, row.role(), session_id)?;
    Ok(TokenResponse {
        access_token: access,
        token_type: "bearer",
        expires_in: state.tokens.ttl_secs(),
        refresh_token: refresh,
        user: row.into(),
    })
}

enum RefreshOutcome {
    Rotated(i64, Box<super::repo::UserRow>),
    Reused,
    Invalid,
}

/// Rotates a refresh token. A spent token used again means it leaked: the whole session
/// is revoked.
pub async fn refresh(state: &AppState, token: &str) -> ApiResult<TokenResponse> {
    if token.is_empty() || token.len() > 256 {
        return Err(ApiError::Unauthorized(
            "the refresh token is not valid".to_owned(),
        ));
    }
    let hash = hash_secret(token);
    let next = random_secret("");
    let next_hash = hash_secret(&next);
    let outcome = state
        .db
        .transaction(move |conn| {
            let Some(found) = repo::find_refresh_token(conn, &hash)? else {
                return Ok(RefreshOutcome::Invalid);
            };
            if found.spent || !repo::spend_refresh_token(conn, found.token_id)? {
                repo::revoke_session(conn, found.session_id)?;
                return Ok(RefreshOutcome::Reused);
            }
            if !found.session_live {
                return Ok(RefreshOutcome::Invalid);
            }
            let Ok(user) = repo::find_user(conn, found.user_id) else {
                return Ok(RefreshOutcome::Invalid);
            };
            repo::insert_refresh_token(conn, found.session_id, &next_hash)?;
            Ok(RefreshOutcome::Rotated(found.session_id, Box::new(user)))
        })
        .await?;
    if matches!(outcome, RefreshOutcome::Reused) {
        state.sessions_changed();
    }
    match outcome {
        RefreshOutcome::Rotated(session_id, user) => Ok(TokenResponse {
            access_token: state.tokens.issue(user.id, user.role(), session_id)?,
            token_type: "bearer",
            expires_in: state.tokens.ttl_secs(),
            refresh_token: next,
            user: (*user).into(),
        }),
        RefreshOutcome::Reused => Err(ApiError::Unauthorized(
            "this refresh token was already used; the session has been revoked".to_owned(),
        )),
        RefreshOutcome::Invalid => Err(ApiError::Unauthorized(
            "the refresh token is not valid".to_owned(),
        )),
    }
}

pub async fn logout(state: &AppState, principal: &Principal) -> ApiResult<()> {
    let Some(session_id) = principal.session_id else {
        return Err(ApiError::Forbidden(
            "bots have no session to end".to_owned(),
        ));
    };
    state
        .db
        .run(move |conn| {
            repo::revoke_session(conn, session_id)
                .map(|_| ())
                .map_err(Into::into)
        })
        .await?;
    state.sessions_changed();
    Ok(())
}

pub async fn update_profile(
    state: &AppState,
    principal: &Principal,
    patch: ProfilePatch,
) -> ApiResult<UserOut> {
    patch.validate()?;
    let user_id = principal.user_id;
    if let Some(Some(file_id)) = patch.avatar_file_id {
        crate::files::service::require_visible_image(state, principal, file_id, "avatar_file_id")
            .await?;
    }
    let changes = ProfileChanges {
        name: patch.name.map(|v| v.map(|s| s.trim().to_owned())),
        phone: patch.phone,
        bio: patch.bio,
        avatar_file_id: patch.avatar_file_id,
        updated_at: Some(crate::time::now()),
    };
    state
        .db
        .run(move |conn| repo::update_profile(conn, user_id, &changes).map_err(Into::into))
        .await?;
    user(state, user_id).await
}

/// Changes the password after checking the current one (403 when wrong), and ends every
/// other session of the user.
pub async fn change_password(
    state: &AppState,
    principal: &Principal,
    req: PasswordChange,
) -> ApiResult<()> {
    req.validate()?;
    let user_id = principal.user_id;
    let row = state
        .db
        .run(move |conn| repo::find_user(conn, user_id).or_not_found("the user"))
        .await?;
    if !state
        .passwords
        .verify(req.current_password, row.password_hash)
        .await?
    {
        return Err(ApiError::Forbidden(
            "the current password is wrong".to_owned(),
        ));
    }
    let hash = state.passwords.hash(req.new_password).await?;
    let keep = principal.session_id;
    state
        .db
        .transaction(move |conn| {
            repo::set_password_hash(conn, user_id, &hash)?;
            repo::revoke_sessions_of(conn, user_id, keep)?;
            Ok(())
        })
        .await?;
    state.sessions_changed();
    Ok(())
}
