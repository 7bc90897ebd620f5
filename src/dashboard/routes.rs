use std::collections::BTreeMap;

use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::service;
use crate::auth::{Action, Principal, Role};
use crate::error::ApiResult;
use crate::state::AppState;
use crate::stock_rules::ExpiryRules;

/// Counts for the caller's role; `links` maps each count to the list behind it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    pub role: Role,
    pub counts: BTreeMap<String, i64>,
    pub links: BTreeMap<String, String>,
}

impl Dashboard {
    fn new(role: Role, entries: Vec<(&str, i64, String)>) -> Self {
        let mut counts = BTreeMap::new();
        let mut links = BTreeMap::new();
        for (name, count, link) in entries {
            counts.insert(name.to_owned(), count);
            links.insert(name.to_owned(), link);
        }
        Self {
            role,
            counts,
            links,
        }
    }
}

/// What needs attention: staff see stock, requests and customers; customers their own
/// holdings and requests; everyone unread notifications and messages.
#[utoipa::path(
    operation_id = "get_dashboard",
    tag = "dashboard",
    responses((status = 200, body = Dashboard))
)]
#[get("/dashboard")]
pub async fn dashboard(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<web::Json<Dashboard>> {
    principal.require(Action::UsePersonalApi)?;
    let rules = ExpiryRules::now(&state);
    let window = rules.default_window;
    let me = principal.user_id;
    let (unread_messages, unread_notifications) =
        state.db.run(move |conn| service::unread(conn, me)).await?;
    let unread = [
        (
            "unread_notifications",
            unread_notifications,
            "/api/v1/notifications?unread=true".to_owned(),
        ),
        (
            "unread_messages",
            unread_messages,
            "/api/v1/chats".to_owned(),
        ),
    ];
    let role = principal.role;
    let mut entries = if principal.is_staff() {
        let c = state
            .db
            .run(move |conn| service::staff_counts(conn, &rules))
            .await?;
        vec![
            ("items", c.stock.items, "/api/v1/items".to_owned()),
            (
                "units",
                c.stock.units,
                "/api/v1/items?sort=-quantity".to_owned(),
            ),
            (
                "expired_batches",
                c.stock.expired_batches,
                "/api/v1/items/expired".to_owned(),
            ),
            (
                "expiring_soon",
                c.stock.expiring_soon,
                format!("/api/v1/items?expiring_within_days={window}"),
            ),
            (
                "low_stock",
                c.stock.low_stock,
                "/api/v1/items?low_stock=true".to_owned(),
            ),
            (
                "pending_requests",
                c.pending_requests,
                "/api/v1/replenishment-requests?status=pending".to_owned(),
            ),
            ("customers", c.customers, "/api/v1/customers".to_owned()),
        ]
    } else {
        let customer = principal.user_id;
        let c = state
            .db
            .run(move |conn| service::customer_counts(conn, customer, &rules))
            .await?;
        vec![
            (
                "holdings",
                c.holdings.holdings,
                "/api/v1/me/inventory".to_owned(),
            ),
            (
                "expired",
                c.holdings.expired,
                "/api/v1/me/inventory?expired=true".to_owned(),
            ),
            (
                "expiring_soon",
                c.holdings.expiring_soon,
                format!("/api/v1/me/inventory?expiring_within_days={window}"),
            ),
            (
                "needs_replenishment",
                c.holdings.needs_replenishment,
                "/api/v1/me/inventory?needs_replenishment=true".to_owned(),
            ),
            (
                "open_requests",
                c.open_requests,
                "/api/v1/replenishment-requests?status=pending".to_owned(),
            ),
        ]
    };
    entries.extend(unread);
    Ok(web::Json(Dashboard::new(role, entries)))
}
