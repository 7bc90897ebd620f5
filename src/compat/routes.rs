use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::Role;
use crate::error::ApiResult;
use crate::extract;
use crate::identity::service::{self, ClientInfo, NewAccount};
use crate::identity::validate;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegacyCredentials {
    #[validate(custom(function = "validate::username"))]
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )]
    pub username: String,
    /// 8 to 72 characters.
    #[validate(custom(function = "validate::password"))]
    #[schema(min_length = 8, max_length = 72)]
    pub password: String,
}

/// The earlier service's login: `username` may also be an email.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegacyLogin {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyMessage {
    #[schema(example = "User registered successfully")]
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyLoginAnswer {
    #[schema(example = "Correct password")]
    pub message: &'static str,
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
}

/// Sign up with a username and password (earlier service); the account is a customer.
#[utoipa::path(
    operation_id = "legacy_register",
    tag = "compatibility",
    request_body = LegacyCredentials,
    responses(
        (status = 201, body = LegacyMessage),
        (status = 409, description = "Username taken"),
        (status = 422),
        (status = 429, description = "Too many sign-ups from this address", headers(("Retry-After" = u64))),
    )
)]
#[post("/register")]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: extract::Json<LegacyCredentials>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    body.validate()?;
    let client = ClientInfo::of(&req);
    service::register_account(
        &state,
        NewAccount {
            username: body.username,
            email: None,
            password: body.password,
            name: None,
            phone: None,
        },
        Role::Customer,
        &client,
    )
    .await?;
    Ok(HttpResponse::Created().json(LegacyMessage {
        message: "User registered successfully".to_owned(),
    }))
}

/// Log in with a username (or email) and password (earlier service).
#[utoipa::path(
    operation_id = "legacy_log_in",
    tag = "compatibility",
    request_body = LegacyLogin,
    responses(
        (status = 200, body = LegacyLoginAnswer),
        (status = 401, description = "Wrong username or password"),
        (status = 422),
        (status = 429, description = "Too many failed logins", headers(("Retry-After" = u64))),
    )
)]
#[post("/api/user/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: extract::Json<LegacyLogin>,
) -> ApiResult<web::Json<LegacyLoginAnswer>> {
    let LegacyLogin { username, password } = body.into_inner();
    let tokens = service::login(&state, &username, password, &ClientInfo::of(&req)).await?;
    Ok(web::Json(LegacyLoginAnswer {
        message: "Correct password",
        access_token: tokens.access_token,
        token_type: "bearer",
    }))
}

/// Upload files (earlier service): parts named `files`, same rules as `POST /api/v1/files`.
#[utoipa::path(
    operation_id = "legacy_upload_files",
    tag = "compatibility",
    request_body(content = crate::files::dto::UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = LegacyMessage),
        (status = 403, description = "Bots may not use this route"),
        (status = 413), (status = 415), (status = 422),
        (status = 429, description = "Too many uploads from this user in the last minute, or too many at once (shared with `POST /api/v1/files`)", headers(("Retry-After" = u64))),
    )
)]
#[post("/upload-files")]
pub async fn upload_files(
    state: web::Data<AppState>,
    principal: crate::auth::Principal,
    payload: crate::files::service::UploadBody,
) -> ApiResult<web::Json<LegacyMessage>> {
    // The earlier service had people only; its security schemes say so (bots have
    // `POST /api/v1/files`).
    principal.require(crate::auth::Action::UsePersonalApi)?;
    principal.require(crate::auth::Action::UploadFiles)?;
    // The same budget and places in flight as `POST /api/v1/files`.
    let _in_flight = state.throttles.upload(&principal)?;
    let stored = crate::files::service::upload_form(&state, &principal, payload).await?;
    Ok(web::Json(LegacyMessage {
        message: format!("{} file(s) uploaded successfully", stored.len()),
    }))
}
