//! Every route, mounted in one place: the OpenAPI document is collected from the same
//! registrations, so what is served and what is documented cannot drift apart.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpResponse};
use utoipa::OpenApi;
use utoipa_actix_web::scope::scope;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::config::Settings;
use crate::error::ApiError;
use crate::openapi::{self, Access, ApiDoc, ApiDocument, Guard};
use crate::state::{AppState, StartError};
use crate::{auth, connections, extract, ops, response_headers, telemetry};

/// The prefixes `configure` puts behind `auth::middleware::require_auth`; the OpenAPI
/// document's `security`, 401 and 403 entries are derived from this list (and a test calls
/// every documented operation without credentials to keep it true).
pub const GUARDED: &[Guard] = &[
    Guard {
        prefix: "/api/user",
        access: Access::People {
            role_restricted: false,
        },
    },
    // The earlier service's login sits beside its guarded scope.
    Guard {
        prefix: "/api/user/login",
        access: Access::Public,
    },
    Guard {
        prefix: "/api/v1",
        access: Access::People {
            role_restricted: true,
        },
    },
    Guard {
        prefix: "/api/v1/auth",
        access: Access::Public,
    },
    // Logout carries its own guard inside the public `/api/v1/auth` scope.
    Guard {
        prefix: "/api/v1/auth/logout",
        access: Access::People {
            role_restricted: false,
        },
    },
    // Every role may upload; who may read or delete a file is decided per file.
    Guard {
        prefix: "/api/v1/files",
        access: Access::PeopleAndBots,
    },
    // Bots use the chats they are members of.
    Guard {
        prefix: "/api/v1/chats",
        access: Access::PeopleAndBots,
    },
    Guard {
        prefix: "/api/ws",
        access: Access::PeopleAndBots,
    },
];

/// Mounts every documented route.
pub fn configure(cfg: &mut ServiceConfig) {
    use crate::{
        bots, chat, compat, customer_inventory, dashboard, files, identity, inventory,
        notifications, people, realtime, replenishment, video,
    };
    cfg.service(ops::routes::healthz)
        .service(ops::routes::readyz)
        .service(ops::routes::metrics)
        .service(ops::routes::openapi_json)
        .service(compat::routes::register)
        .service(compat::routes::login)
        .service(
            scope("/api/user")
                .wrap(from_fn(auth::middleware::require_auth))
                .service(compat::routes::upload_files),
        )
        // Public, except logout which carries its own guard.
        .service(
            scope("/api/v1/auth")
                .service(identity::routes::register)
                .service(identity::routes::login)
                .service(identity::routes::refresh)
                .service(identity::routes::logout),
        )
        // Everything else under /api/v1 needs credentials.
        .service(
            scope("/api/v1")
                .wrap(from_fn(auth::middleware::require_auth))
                .service(identity::routes::me)
                .service(identity::routes::update_me)
                .service(identity::routes::change_password)
                .service(people::routes::list_customers)
                .service(people::routes::get_customer)
                .service(people::routes::delete_customer)
                .service(people::routes::list_users)
                .service(people::routes::set_role)
                // Fixed paths before `/items/{id}`, which would otherwise take them.
                .service(inventory::routes::list_items)
                .service(inventory::routes::create_item)
                .service(inventory::routes::expired_items)
                .service(inventory::routes::export_items)
                .service(inventory::routes::import_items)
                .service(inventory::routes::get_item)
                .service(inventory::routes::update_item)
                .service(inventory::routes::delete_item)
                .service(inventory::routes::add_batch)
                .service(inventory::routes::adjust_item)
                .service(inventory::routes::item_movements)
                .service(customer_inventory::routes::my_inventory)
                .service(customer_inventory::routes::update_holding)
                .service(customer_inventory::routes::delete_holding)
                .service(customer_inventory::routes::customer_inventory)
                .service(replenishment::routes::replenishment)
                .service(replenishment::routes::create_request)
                .service(replenishment::routes::list_requests)
                .service(replenishment::routes::get_request)
                .service(replenishment::routes::fulfil)
                .service(replenishment::routes::reject)
                .service(replenishment::routes::cancel)
                .service(dashboard::routes::dashboard)
                .service(files::routes::upload)
                .service(files::routes::download)
                .service(files::routes::thumbnail)
                .service(files::routes::delete_file)
                .service(chat::routes::create_chat)
                .service(chat::routes::list_chats)
                .service(chat::routes::get_chat)
                .service(chat::routes::update_chat)
                .service(chat::routes::delete_chat)
                .service(chat::routes::list_members)
                .service(chat::routes::add_member)
                .service(chat::routes::remove_member)
                .service(chat::routes::list_messages)
                .service(chat::routes::send_message)
                .service(chat::routes::edit_message)
                .service(chat::routes::delete_message)
                .service(chat::routes::mark_read)
                .service(notifications::routes::list_notifications)
                .service(notifications::routes::read_all_notifications)
                .service(notifications::routes::read_notification)
                .service(bots::routes::create_bot)
                .service(bots::routes::list_bots)
                .service(bots::routes::get_bot)
                .service(bots::routes::update_bot)
                .service(bots::routes::delete_bot)
                .service(bots::routes::rotate_token)
                .service(bots::routes::list_deliveries)
                .service(bots::routes::redeliver)
                .default_service(web::to(fallback)),
        )
        .service(
            scope("/api/ws")
                .wrap(from_fn(auth::middleware::require_auth))
                .service(realtime::routes::chat_socket)
                .service(video::routes::video_socket),
        );
}

/// The application state, with the route table and document of everything `configure`
/// mounts (built once here, so the state itself knows nothing of the areas).
pub fn state(settings: Settings) -> Result<AppState, StartError> {
    AppState::new(settings, ApiDocument::new(&openapi())?)
}

/// The OpenAPI document of everything `configure` mounts.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure)
        .split_for_parts();
    let mut doc = openapi::finish(doc);
    openapi::mark_guarded(&mut doc, GUARDED);
    // The socket's frames are no response body; name them so the document describes them.
    if let Some(components) = doc.components.as_mut() {
        use crate::realtime::dto::{ClientFrame, ErrorFrame};
        use crate::video::dto::{Op, VideoClientFrame, VideoError};
        use utoipa::{PartialSchema, ToSchema};
        components
            .schemas
            .insert(ClientFrame::name().into_owned(), ClientFrame::schema());
        components
            .schemas
            .insert(ErrorFrame::name().into_owned(), ErrorFrame::schema());
        for (name, schema) in [
            (VideoClientFrame::name(), VideoClientFrame::schema()),
            (Op::name(), Op::schema()),
            (VideoError::name(), VideoError::schema()),
        ] {
            components.schemas.insert(name.into_owned(), schema);
        }
    }
    doc
}

/// The whole application for one worker.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, _) = App::new()
        .into_utoipa_app()
        .configure(configure)
        .split_for_parts();
    let settings = &state.settings;
    app.app_data(extract::json_config(settings.max_json_bytes))
        .app_data(extract::path_config())
        .app_data(web::PayloadConfig::new(settings.max_json_bytes))
        .app_data(state.authenticator.clone())
        // The settings on their own, for the plumbing (connection limits) that must not
        // know `AppState` (it would close an import circle through `throttle`).
        .app_data(web::Data::from(std::sync::Arc::clone(&state.settings)))
        .app_data(state.clone())
        .service(
            SwaggerUi::new("/docs/{_:.*}").config(
                SwaggerConfig::new(["/openapi.json"])
                    // Off by default: a token kept in localStorage outlives the tab and is
                    // readable by any script that ever runs on this origin.
                    .persist_authorization(settings.docs_persist_authorization)
                    .try_it_out_enabled(true),
            ),
        )
        .service(web::redirect("/docs", "/docs/"))
        .default_service(web::to(fallback))
        // Innermost: a multipart boundary actix-multipart 0.7 cannot read is refused before
        // any handler gives it the body (see `extract::MIN_MULTIPART_BOUNDARY`).
        .wrap(from_fn(extract::refuse_short_multipart_boundaries))
        .wrap(from_fn(connections::bound_request))
        .wrap(cors(settings))
        .wrap(state.http_metrics.clone())
        .wrap(from_fn(response_headers::add))
        .wrap(from_fn(telemetry::request_context))
}

fn cors(settings: &Settings) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
        .allow_any_header()
        .expose_headers([
            "ETag",
            "Location",
            "Retry-After",
            "X-Request-Id",
            "WWW-Authenticate",
        ])
        .max_age(3600);
    for origin in &settings.cors_origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

async fn fallback(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Err(match state.routes.allowed(req.path()) {
        Some(methods) if !methods.contains(req.method()) => ApiError::MethodNotAllowed(
            format!("{} is not allowed on {}", req.method(), req.path()),
            methods.iter().map(ToString::to_string).collect(),
        ),
        _ => ApiError::NotFound(format!("no route for {}", req.path())),
    })
}
