use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{get, patch, post, web, HttpRequest, HttpResponse};
use validator::Validate;

use super::dto::{
    LoginForm, LoginRequest, PasswordChange, ProfilePatch, RefreshRequest, RegisterRequest,
    TokenResponse, UserOut,
};
use super::service::{self, ClientInfo};
use crate::auth::{Action, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract;
use crate::state::AppState;

/// The caller's address and user agent.
pub fn client_info(req: &HttpRequest) -> ClientInfo {
    ClientInfo::of(req)
}

/// Sign up as a customer.
#[utoipa::path(
    operation_id = "register_customer",
    tag = "identity",
    request_body = RegisterRequest,
    responses(
        (status = 201, body = UserOut),
        (status = 409, description = "Username or email already registered"),
        (status = 422, description = "Invalid fields"),
        (status = 429, description = "Too many sign-ups from this address"),
    )
)]
#[post("/register")]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: extract::Json<RegisterRequest>,
) -> ApiResult<HttpResponse> {
    let user = service::register(&state, body.into_inner(), &client_info(&req)).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, "/api/v1/me"))
        .json(user))
}

/// Parses a login as JSON `{login,password}` or as an OAuth2 password form.
fn parse_login(req: &HttpRequest, body: &[u8]) -> ApiResult<(String, String)> {
    let content_type = extract::content_type(req);
    if content_type.starts_with("application/json") {
        let creds: LoginRequest = extract::parse_json(body)?;
        Ok((creds.login, creds.password))
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let form: LoginForm = extract::parse_form(body)?;
        if form.grant_type.as_deref().is_some_and(|g| g != "password") {
            return Err(ApiError::field("grant_type", "must be \"password\""));
        }
        Ok((form.username, form.password))
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send application/json or application/x-www-form-urlencoded".to_owned(),
        ))
    }
}

/// Log in with a username or email, as JSON or as an OAuth2 password form.
#[utoipa::path(
    operation_id = "log_in",
    tag = "identity",
    request_body(content(
        (LoginRequest = "application/json"),
        (LoginForm = "application/x-www-form-urlencoded")
    )),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Wrong login or password"),
        (status = 429, description = "Too many failed logins", headers(("Retry-After" = u64))),
    )
)]
#[post("/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<web::Json<TokenResponse>> {
    let (login, password) = parse_login(&req, &body)?;
    service::login(&state, &login, password, &client_info(&req))
        .await
        .map(web::Json)
}

/// Trade a refresh token for a new pair; the old one is spent.
#[utoipa::path(
    operation_id = "refresh_tokens",
    tag = "identity",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Unknown, expired or already used refresh token"),
    )
)]
#[post("/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: extract::Json<RefreshRequest>,
) -> ApiResult<web::Json<TokenResponse>> {
    service::refresh(&state, &body.refresh_token)
        .await
        .map(web::Json)
}

/// End this session: its access and refresh tokens stop working at once.
#[utoipa::path(
    operation_id = "log_out",
    tag = "identity",
    responses((status = 204))
)]
#[post("/logout", wrap = "from_fn(crate::auth::middleware::require_auth)")]
pub async fn logout(state: web::Data<AppState>, principal: Principal) -> ApiResult<HttpResponse> {
    service::logout(&state, &principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in person, with profile.
#[utoipa::path(
    operation_id = "get_me",
    tag = "identity",
    responses((status = 200, body = UserOut))
)]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, principal: Principal) -> ApiResult<web::Json<UserOut>> {
    principal.require(Action::UsePersonalApi)?;
    service::user(&state, principal.user_id)
        .await
        .map(web::Json)
}

/// Change the own profile: `name`, `phone`, `bio`, `avatar_file_id` (`null` clears).
#[utoipa::path(
    operation_id = "update_me",
    tag = "identity",
    request_body = ProfilePatch,
    responses(
        (status = 200, body = UserOut),
        (status = 404, description = "No visible file with `avatar_file_id`"),
        (status = 422),
    )
)]
#[patch("/me")]
pub async fn update_me(
    state: web::Data<AppState>,
    principal: Principal,
    body: extract::Json<ProfilePatch>,
) -> ApiResult<web::Json<UserOut>> {
    principal.require(Action::UsePersonalApi)?;
    service::update_profile(&state, &principal, body.into_inner())
        .await
        .map(web::Json)
}

/// Change the password; every other session of the account ends.
#[utoipa::path(
    operation_id = "change_my_password",
    tag = "identity",
    request_body = PasswordChange,
    responses(
        (status = 204),
        (status = 403, description = "The current password is wrong"),
        (status = 422),
    )
)]
#[post("/me/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    principal: Principal,
    body: extract::Json<PasswordChange>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::UsePersonalApi)?;
    let body = body.into_inner();
    body.validate()?;
    service::change_password(&state, &principal, body).await?;
    Ok(HttpResponse::NoContent().finish())
}
