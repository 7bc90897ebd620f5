//! What happens once at start: the first owner, and the demo store.

use crate::auth::Role;
use crate::error::{ApiError, ApiResult};
use crate::identity::repo;
use crate::identity::service::{create_account, NewAccount};
use crate::identity::validate;
use crate::state::AppState;

/// Creates an owner account after validating its fields like a sign-up.
pub async fn create_owner(
    state: &AppState,
    username: String,
    email: String,
    password: String,
) -> ApiResult<(String, i64)> {
    let mut errors = crate::error::FieldErrors::new();
    let mut check = |field: &str, result: Result<(), validator::ValidationError>| {
        if let Err(e) = result {
            errors
                .entry(field.to_owned())
                .or_default()
                .push(e.message.map(|m| m.to_string()).unwrap_or_default());
        }
    };
    check("username", validate::username(&username));
    check("password", validate::password(&password));
    if !validator::ValidateEmail::validate_email(&email) {
        check("email", Err(validator::ValidationError::new("email")));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let user = create_account(
        state,
        NewAccount {
            username,
            email: Some(email),
            password,
            name: None,
            phone: None,
        },
        Role::Owner,
    )
    .await?;
    Ok((user.username, user.id))
}

/// Creates the owner named by `STOCKROOM_OWNER_*` when there is none yet, and otherwise
/// tells the operator how to make one.
pub async fn on_start(state: &AppState, demo: bool) -> ApiResult<()> {
    let has_owner = state.db.run(|conn| Ok(repo::any_owner(conn)?)).await?;
    let settings = state.settings.clone();
    if !has_owner {
        if let (Some(username), Some(email), Some(password)) = (
            settings.owner_username.clone(),
            settings.owner_email.clone(),
            settings.owner_password.clone(),
        ) {
            let (name, id) = create_owner(state, username, email, password).await?;
            tracing::info!(owner = %name, id, "created the owner from STOCKROOM_OWNER_* settings");
        } else if !demo {
            tracing::warn!(
                "there is no owner yet: run `stockroom create-owner --username U --email E \
                 --password-stdin`, or set STOCKROOM_OWNER_USERNAME, STOCKROOM_OWNER_EMAIL and \
                 STOCKROOM_OWNER_PASSWORD"
            );
        }
    }
    if demo {
        crate::demo::seed(state).await?;
    }
    Ok(())
}
