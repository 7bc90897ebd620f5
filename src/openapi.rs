//! The OpenAPI document: paths come from the handlers' annotations as they are mounted
//! (utoipa-actix-web), so routes and docs have one source. This module adds what is common
//! to every operation: security schemes and the problem+json error schema.

use std::sync::Arc;

use actix_web::http::Method;
use regex::Regex;
use utoipa::openapi::header::Header;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes,
    SecurityScheme,
};
use utoipa::openapi::{
    Content, ObjectBuilder, OpenApi as OpenApiDoc, PathItem, Ref, RefOr, Response, Type,
};
use utoipa::{Modify, OpenApi};

use crate::error::{Problem, PROBLEM_JSON};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stockroom",
        description = "Inventory with batches and expiry, customers and their holdings, \
            replenishment, files, chat and bots. Every error is `application/problem+json` (RFC 9457).\n\n\
            Authorize with a bearer access token from `POST /api/v1/auth/login`, or with a username \
            and password through the OAuth2 password flow.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(Problem)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "operations", description = "Health, readiness, metrics and docs"),
        (name = "identity", description = "Sign-up, login, sessions and the own profile"),
        (name = "people", description = "Customers and staff roles"),
        (name = "inventory", description = "Items, batches and the stock ledger"),
        (name = "customer-inventory", description = "What the store gave a customer"),
        (name = "replenishment", description = "What needs restocking, and customers' requests"),
        (name = "dashboard", description = "Counts for each role"),
        (name = "files", description = "Uploads, downloads and thumbnails"),
        (name = "chats", description = "Direct and group chats: members, messages, read state"),
        (name = "notifications", description = "What a person should look at: new messages, requests, expiring and low stock"),
        (name = "bots", description = "Bot accounts, their tokens, and their signed webhooks' delivery log"),
        (name = "realtime", description = "The WebSocket carrying each user's event stream"),
        (name = "compatibility", description = "Routes kept for clients of the earlier FastAPI service"),
    )
)]
pub struct ApiDoc;

pub const BEARER: &str = "bearer";
pub const BOT: &str = "bot";
pub const PASSWORD: &str = "password";

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            PASSWORD,
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::Password(Password::new(
                    "/api/v1/auth/login",
                    Scopes::new(),
                ))],
                "Username (or email) and password; Swagger UI then sends the bearer token",
            )),
        );
        components.add_security_scheme(
            BOT,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Bot <token>`, the token shown once when the bot was created",
            ))),
        );
    }
}

/// Who may call the routes under a prefix, as the router mounts them. The router lists its
/// scopes once (`router::GUARDED`) and the document takes every operation's `security`, 401
/// and role 403 from that list, so what is enforced and what is documented have one source.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    /// Paths equal to this or below it; the longest matching prefix wins.
    pub prefix: &'static str,
    pub access: Access,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed.
    Public,
    /// A person's bearer token (`require_auth`). With `role_restricted` the role table
    /// refuses some callers (403): bots everywhere, customers or workers on many routes.
    People { role_restricted: bool },
    /// A person's or a bot's token; every role passes the role table.
    PeopleAndBots,
}

impl Guard {
    fn covers(&self, path: &str) -> bool {
        path.strip_prefix(self.prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// Who may call `path`: the access of the longest guard prefix covering it.
pub fn access_of(guards: &[Guard], path: &str) -> Access {
    guards
        .iter()
        .filter(|g| g.covers(path))
        .max_by_key(|g| g.prefix.len())
        .map_or(Access::Public, |g| g.access)
}

pub const UNAUTHORIZED: &str = "Unauthorized";
pub const FORBIDDEN: &str = "Forbidden";

/// Marks every operation under a guarded prefix with its security requirement, the 401
/// answer and, where the role table restricts, the 403 answer. An operation may still
/// document a 403 of its own (e.g. "only the uploader"); that one is kept.
pub fn mark_guarded(doc: &mut OpenApiDoc, guards: &[Guard]) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.responses.insert(
        UNAUTHORIZED.to_owned(),
        RefOr::T(problem_response(
            "Missing, malformed, expired or revoked credentials",
            Some((
                "WWW-Authenticate",
                "The scheme to authenticate with: `Bearer`",
            )),
        )),
    );
    components.responses.insert(
        FORBIDDEN.to_owned(),
        RefOr::T(problem_response(
            "Authenticated, but the caller's role may not do this",
            None,
        )),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let (bots, role_restricted) = match access_of(guards, path) {
            Access::Public => continue,
            Access::People { role_restricted } => (false, role_restricted),
            Access::PeopleAndBots => (true, false),
        };
        let mut schemes = vec![
            SecurityRequirement::new(BEARER, Vec::<String>::new()),
            SecurityRequirement::new(PASSWORD, Vec::<String>::new()),
        ];
        if bots {
            schemes.push(SecurityRequirement::new(BOT, Vec::<String>::new()));
        }
        for operation in operations_mut(item) {
            operation.security = Some(schemes.clone());
            let responses = &mut operation.responses.responses;
            responses.insert(
                "401".to_owned(),
                RefOr::Ref(Ref::from_response_name(UNAUTHORIZED)),
            );
            if role_restricted {
                responses
                    .entry("403".to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name(FORBIDDEN)));
            }
        }
    }
}

fn problem_response(description: &str, header: Option<(&str, &str)>) -> Response {
    let mut response = Response::new(description);
    response.content.insert(
        PROBLEM_JSON.to_owned(),
        Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem")))),
    );
    if let Some((name, about)) = header {
        let mut header = Header::new(ObjectBuilder::new().schema_type(Type::String));
        header.description = Some(about.to_owned());
        response.headers.insert(name.to_owned(), header);
    }
    response
}

/// Gives every 4xx/5xx response without a body the problem+json schema, and every operation
/// a `default` problem response, so clients can rely on one error shape everywhere.
pub fn finish(mut doc: OpenApiDoc) -> OpenApiDoc {
    let problem_content = || {
        Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
            "Problem",
        ))))
    };
    for item in doc.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            for (status, response) in operation.responses.responses.iter_mut() {
                let is_error = status.starts_with('4') || status.starts_with('5');
                if let RefOr::T(response) = response {
                    if is_error && response.content.is_empty() {
                        response
                            .content
                            .insert(PROBLEM_JSON.to_owned(), problem_content());
                    }
                }
            }
            operation
                .responses
                .responses
                .entry("default".to_owned())
                .or_insert_with(|| {
                    let mut response = Response::new("An error, as RFC 9457 problem details");
                    response
                        .content
                        .insert(PROBLEM_JSON.to_owned(), problem_content());
                    RefOr::T(response)
                });
        }
    }
    doc
}

fn operations_mut(
    item: &mut PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The methods a documented path answers, for `405` with `Allow`.
pub fn methods_of(item: &PathItem) -> Vec<Method> {
    let mut methods = Vec::new();
    for (present, method) in [
        (item.get.is_some(), Method::GET),
        (item.post.is_some(), Method::POST),
        (item.put.is_some(), Method::PUT),
        (item.patch.is_some(), Method::PATCH),
        (item.delete.is_some(), Method::DELETE),
    ] {
        if present {
            methods.push(method);
        }
    }
    methods
}

/// The served document and the route table derived from it, built once at start by the
/// router and handed to the state.
pub struct ApiDocument {
    pub routes: RouteTable,
    /// The document as served at `/openapi.json`.
    pub json: Arc<String>,
}

impl ApiDocument {
    pub fn new(doc: &OpenApiDoc) -> Result<Self, serde_json::Error> {
        Ok(Self {
            routes: RouteTable::from_openapi(doc),
            json: Arc::new(serde_json::to_string_pretty(doc)?),
        })
    }
}

/// Path templates of the documented routes, to tell "no such path" (404) from
/// "no such method here" (405 with `Allow`).
pub struct RouteTable {
    routes: Vec<(Regex, Vec<Method>)>,
}

impl RouteTable {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        // `regex::escape` turns `{id}` into `\{id\}`; each such placeholder is one segment.
        let placeholder = Regex::new(r"\\\{[^}]*\\\}").expect("static regex");
        let routes = doc
            .paths
            .paths
            .iter()
            .filter_map(|(template, item)| {
                let escaped = regex::escape(template);
                let pattern = placeholder.replace_all(&escaped, "[^/]+");
                let regex = Regex::new(&format!("^{pattern}/?$")).ok()?;
                Some((regex, methods_of(item)))
            })
            .collect();
        Self { routes }
    }

    /// The methods allowed on `path`, or `None` when no route has that path. A fixed path
    /// (`/items/export.csv`) shadows a template that also matches it (`/items/{id}`).
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let fixed = self
            .routes
            .iter()
            .any(|(regex, _)| !regex.as_str().contains("[^/]+") && regex.is_match(path));
        let mut found: Option<Vec<Method>> = None;
        for (regex, methods) in &self.routes {
            if regex.is_match(path) && (!fixed || !regex.as_str().contains("[^/]+")) {
                let list = found.get_or_insert_with(Vec::new);
                for m in methods {
                    if !list.contains(m) {
                        list.push(m.clone());
                    }
                }
            }
        }
        found
    }
}
