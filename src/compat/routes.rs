use actix_web::{post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::Role;
use crate::error::ApiResult;
use crate::identity::service::{self, ClientInfo, NewAccount};
use crate::identity::validate;
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
pub struct LegacyCredentials {
    #[validate(custom(function = "validate::username"))]
    pub username: String,
    #[validate(custom(function = "validate::password"))]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyMessage {
    #[schema(example = "User registered successfully")]
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LegacyLogin {
    #[schema(example = "Correct password")]
    pub message: &'static str,
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
}

/// Sign up with a username and password (earlier service); the account is a customer.
#[utoipa::path(
    tag = "compatibility",
    request_body = LegacyCredentials,
    responses(
        (status = 201, body = LegacyMessage),
        (status = 409, description = "Username taken"),
        (status = 422),
    )
)]
#[post("/register")]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LegacyCredentials>,
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
    tag = "compatibility",
    request_body = LegacyCredentials,
    responses((status = 200, body = LegacyLogin), (status = 401), (status = 429))
)]
#[post("/api/user/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<serde_json::Value>,
) -> ApiResult<web::Json<LegacyLogin>> {
    let field = |name: &str| {
        body.get(name)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| crate::error::ApiError::field(name, "is required"))
    };
    let (username, password) = (field("username")?, field("password")?);
    let tokens = service::login(&state, &username, password, &ClientInfo::of(&req)).await?;
    Ok(web::Json(LegacyLogin {
        message: "Correct password",
        access_token: tokens.access_token,
        token_type: "bearer",
    }))
}

/// Upload files (earlier service): parts named `files`, same rules as `POST /api/v1/files`.
#[utoipa::path(
    tag = "compatibility",
    security(("bearer" = []), ("password" = [])),
    request_body(content = crate::files::dto::UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = LegacyMessage),
        (status = 401), (status = 413), (status = 415), (status = 422),
    )
)]
#[post("/upload-files")]
pub async fn upload_files(
    state: web::Data<AppState>,
    principal: crate::auth::Principal,
    payload: actix_multipart::Multipart,
) -> ApiResult<web::Json<LegacyMessage>> {
    principal.require(crate::auth::Action::UploadFiles)?;
    let stored = crate::files::service::upload_form(&state, &principal, payload).await?;
    Ok(web::Json(LegacyMessage {
        message: format!("{} file(s) uploaded successfully", stored.len()),
    }))
}
