use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::repo::UserRow;
use super::validate;
use crate::auth::Role;
use crate::pagination::double_option;

/// A person as every endpoint shows them. Never carries a password or token hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub role: Role,
    pub bio: Option<String>,
    pub avatar_file_id: Option<i64>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-21T10:00:00Z")]
    pub created_at: NaiveDateTime,
}

impl From<UserRow> for UserOut {
    fn from(u: UserRow) -> Self {
        let role = u.role();
        Self {
            id: u.id,
            username: u.username.unwrap_or_default(),
            email: u.email,
            name: u.name,
            phone: u.phone,
            role,
            bio: u.bio,
            avatar_file_id: u.avatar_file_id,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[validate(custom(function = "validate::username"))]
    #[schema(
        example = "alice",
        min_length = 3,
        max_length = 32,
        pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )]
    pub username: String,
    #[validate(email, length(max = 254))]
    #[schema(example = "alice@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 72 characters.
    #[validate(custom(function = "validate::password"))]
    #[schema(example = "correct horse battery", min_length = 8, max_length = 72)]
    pub password: String,
    #[validate(length(min = 1, max = 100), custom(function = "validate::plain_text"))]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    #[validate(custom(function = "validate::phone"))]
    #[schema(
        example = "+15551234567",
        max_length = 32,
        pattern = r"^[+]?[ ().-]*(?:[0-9][ ().-]*){7,15}$"
    )]
    pub phone: Option<String>,
}

/// JSON login: `login` is a username or an email.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[serde(alias = "username", alias = "email")]
    #[schema(example = "alice")]
    pub login: String,
    pub password: String,
}

/// OAuth2 password-grant form (what Swagger UI's Authorize sends). Besides `username` and
/// `password`, the standard OAuth2 fields a form client may add are accepted: `grant_type`
/// (must be `password`), and `scope`, `client_id` and `client_secret` (read and ignored:
/// scopes come from the account's role, and there are no registered clients). Any other
/// field is refused with 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    pub user: UserOut,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Fields to change; an absent field is left alone, `null` clears it.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default, deserialize_with = "double_option")]
    #[validate(length(min = 1, max = 100), custom(function = "validate::plain_text"))]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[validate(custom(function = "validate::phone"))]
    #[schema(value_type = Option<String>, example = "+15551234567", max_length = 32, pattern = r"^[+]?[ ().-]*(?:[0-9][ ().-]*){7,15}$")]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[validate(length(max = 2000), custom(function = "validate::plain_text"))]
    #[schema(value_type = Option<String>, max_length = 2000, pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$")]
    pub bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub avatar_file_id: Option<Option<i64>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// 8 to 72 characters.
    #[validate(custom(function = "validate::password"))]
    #[schema(min_length = 8, max_length = 72)]
    pub new_password: String,
}
