use std::collections::HashMap;

use validator::Validate;

use super::dto::{
    CustomerEntry, NewRequest, Reason, Rejection, ReplenishmentEntry, RequestOut, RequestQuery,
    RequestStatus, StaffEntry,
};
use super::repo::{self, RequestRow};
use crate::auth::{Action, Principal};
use crate::customer_inventory::dto::HoldingOut;
use crate::customer_inventory::dto::HoldingQuery;
use crate::customer_inventory::service as holdings;
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult, Context};
use crate::events::Outbox;
use crate::identity::service as identity;
use crate::inventory::service as items;
use crate::notifications::dto::{Link, NotificationKind, SubjectType};
use crate::notifications::service::{self as notifications, Notice};
use crate::pagination::{Keyset, Page, PageParams};
use crate::state::AppState;
use crate::stock_rules::ExpiryRules;

/// At most this many pending requests per customer.
pub const MAX_PENDING_PER_CUSTOMER: i64 = 100;

pub fn request_out(r: RequestRow) -> RequestOut {
    RequestOut {
        status: RequestStatus::parse(&r.status),
        id: r.id,
        customer_id: r.customer_id,
        item_id: r.item_id,
        item_name: r.item_name,
        quantity: r.quantity,
        note: r.note,
        reason: r.decision_reason,
        decided_by: r.decided_by,
        decided_at: r.decided_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// `target − (available − promised)`, never negative; the target is `target_quantity`, or
/// twice the reorder level when unset.
pub fn suggestion(target: Option<i64>, min: i64, available: i64, promised: i64) -> i64 {
    let target = target.unwrap_or(2 * min);
    (target - (available - promised)).max(0)
}

pub async fn list(
    state: &AppState,
    principal: &Principal,
    page: PageParams,
) -> ApiResult<Page<ReplenishmentEntry>> {
    if !principal.is_staff() {
        principal.require(Action::HoldInventory)?;
        let filter = HoldingQuery {
            needs_replenishment: Some(true),
            ..Default::default()
        };
        let holdings = holdings::list(state, principal.user_id, filter, page).await?;
        return Ok(Page {
            data: holdings.data.into_iter().map(customer_entry).collect(),
            next_cursor: holdings.next_cursor,
        });
    }
    let limit = page.limit()?;
    let after = page.cursor::<Keyset<String>>()?;
    let rules = ExpiryRules::now(state);
    let (candidates, promised) = state
        .db
        .run(move |conn| {
            let candidates = items::restock_candidates(conn, &rules, after, limit)?;
            let ids: Vec<i64> = candidates.iter().map(|c| c.item.id).collect();
            let promised: HashMap<i64, i64> = repo::promised(conn, &ids)?.into_iter().collect();
            Ok((candidates, promised))
        })
        .await?;
    Ok(Page::from_rows(
        candidates,
        limit,
        |c| c.cursor.clone(),
        |c| {
            let f = c.figures;
            let item = c.item;
            let promised = promised.get(&item.id).copied().unwrap_or(0);
            let mut reasons = Vec::new();
            if f.available <= item.min_quantity {
                reasons.push(Reason::LowStock);
            }
            if f.expired > 0 {
                reasons.push(Reason::Expired);
            }
            if f.expiring > 0 {
                reasons.push(Reason::Expiring);
            }
            let suggested = suggestion(
                item.target_quantity,
                item.min_quantity,
                f.available,
                promised,
            );
            ReplenishmentEntry::Staff(Box::new(StaffEntry {
                item,
                reasons,
                suggested_quantity: suggested,
                promised_quantity: promised,
            }))
        },
    ))
}

/// A customer's holding that needs replenishing: why, and how much would restore it.
fn customer_entry(holding: HoldingOut) -> ReplenishmentEntry {
    let mut reasons = Vec::new();
    if holding.quantity <= holding.min_quantity {
        reasons.push(Reason::LowStock);
    }
    if holding.expired {
        reasons.push(Reason::Expired);
    }
    if holding.expiring {
        reasons.push(Reason::Expiring);
    }
    ReplenishmentEntry::Customer(CustomerEntry {
        suggested_quantity: (2 * holding.min_quantity - holding.quantity).max(0),
        holding,
        reasons,
    })
}

pub async fn create(
    state: &AppState,
    principal: &Principal,
    new: NewRequest,
) -> ApiResult<RequestOut> {
    new.validate()?;
    let customer = principal.user_id;
    let id = state
        .events
        .transaction(&state.db, move |conn, outbox| {
            let Some(item_name) = items::item_name(conn, new.item_id)? else {
                return Err(ApiError::not_found(format!(
                    "item {} (item_id)",
                    new.item_id
                )));
            };
            if repo::count_pending(conn, Some(customer))? >= MAX_PENDING_PER_CUSTOMER {
                return Err(ApiError::Conflict(format!(
                    "at most {MAX_PENDING_PER_CUSTOMER} requests may be pending at once"
                )));
            }
            let id = repo::insert_request(
                conn,
                customer,
                new.item_id,
                &item_name,
                new.quantity,
                new.note.as_deref(),
            )?;
            let who = identity::find_user(conn, customer)?;
            let who = who
                .name
                .or(who.username)
                .unwrap_or_else(|| format!("customer {customer}"));
            let notice = Notice {
                kind: NotificationKind::RequestCreated,
                cause: format!("request:{id}:created"),
                title: format!("New request: {item_name}"),
                body: format!("{who} asks for {} × {item_name}.", new.quantity),
                link: request_link(id),
            };
            notifications::notify_staff(conn, outbox, &notice)?;
            Ok(id)
        })
        .await?;
    get(state, principal, id).await
}

/// A request its customer or staff may see; anyone else gets 404.
pub async fn get(state: &AppState, principal: &Principal, id: i64) -> ApiResult<RequestOut> {
    let row = state
        .db
        .run(move |conn| repo::find_request(conn, id).or_not_found(format!("request {id}")))
        .await?;
    if !principal.is_staff() && row.customer_id != principal.user_id {
        return Err(ApiError::not_found(format!("request {id}")));
    }
    Ok(request_out(row))
}

pub async fn list_requests(
    state: &AppState,
    principal: &Principal,
    query: RequestQuery,
    page: PageParams,
) -> ApiResult<Page<RequestOut>> {
    let limit = page.limit()?;
    let before = page.cursor::<i64>()?;
    let customer = (!principal.is_staff()).then_some(principal.user_id);
    let rows = state
        .db
        .run(move |conn| {
            Ok(repo::list_requests(
                conn,
                customer,
                query.status,
                before,
                limit,
            )?)
        })
        .await?;
    Ok(Page::from_rows(rows, limit, |r| r.id, request_out))
}

/// 404 when there is no such request, else 409: it is no longer pending.
fn not_pending(conn: &mut crate::db::DbConnection, id: i64, customer: Option<i64>) -> ApiError {
    match repo::find_request(conn, id) {
        Ok(r) if customer.is_none_or(|c| c == r.customer_id) => {
            ApiError::Conflict(format!("request {id} is {}, not pending", r.status))
        }
        Ok(_) | Err(diesel::result::Error::NotFound) => {
            ApiError::not_found(format!("request {id}"))
        }
        Err(e) => e.into(),
    }
}

/// Hands the requested stock over, earliest expiry first and never expired stock, in one
/// transaction: the request, the batches, the ledger and the holdings change together or
/// not at all. Short stock is 409 and leaves the request pending.
pub async fn fulfil(state: &AppState, principal: &Principal, id: i64) -> ApiResult<RequestOut> {
    let by = principal.user_id;
    let rules = ExpiryRules::now(state);
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            if !repo::decide(conn, id, RequestStatus::Fulfilled, by, None, None)? {
                return Err(not_pending(conn, id, None));
            }
            let request = repo::find_request(conn, id)?;
            let Some(item_id) = request.item_id else {
                return Err(ApiError::Conflict(
                    "the requested item no longer exists; reject the request".to_owned(),
                ));
            };
            let note = format!("request {id}");
            let handed_out =
                items::hand_out(conn, outbox, &rules, item_id, request.quantity, by, &note)?;
            for part in handed_out {
                holdings::receive(
                    conn,
                    outbox,
                    &rules,
                    &holdings::Delivery {
                        customer_id: request.customer_id,
                        item_id,
                        item_name: &request.item_name,
                        quantity: part.amount,
                        expiry_date: part.expiry_date,
                    },
                )?;
            }
            notify_decision(conn, outbox, &request, RequestStatus::Fulfilled)?;
            Ok(())
        })
        .await?;
    get(state, principal, id).await
}

fn request_link(id: i64) -> Link {
    Link::new(
        SubjectType::Request,
        id,
        format!("/api/v1/replenishment-requests/{id}"),
    )
}

/// Tells a request's customer that it was fulfilled, rejected or cancelled.
fn notify_decision(
    conn: &mut DbConnection,
    outbox: &mut Outbox,
    request: &RequestRow,
    to: RequestStatus,
) -> ApiResult<()> {
    let (kind, word) = match to {
        RequestStatus::Fulfilled => (NotificationKind::RequestFulfilled, "fulfilled"),
        RequestStatus::Rejected => (NotificationKind::RequestRejected, "rejected"),
        RequestStatus::Cancelled => (NotificationKind::RequestCancelled, "cancelled"),
        RequestStatus::Pending => return Ok(()),
    };
    let reason = request
        .decision_reason
        .as_ref()
        .map(|r| format!(" Reason: {r}"))
        .unwrap_or_default();
    let notice = Notice {
        kind,
        cause: format!("request:{}:{word}", request.id),
        title: format!("Request {word}: {}", request.item_name),
        body: format!(
            "Your request for {} × {} was {word}.{reason}",
            request.quantity, request.item_name
        ),
        link: request_link(request.id),
    };
    notifications::notify(conn, outbox, &[request.customer_id], &notice)?;
    Ok(())
}

/// Moves a pending request to `to` in a transaction of its own; 404/409 explain a miss.
/// `customer` restricts it to the requesting customer.
async fn settle(
    state: &AppState,
    id: i64,
    to: RequestStatus,
    by: i64,
    reason: Option<String>,
    customer: Option<i64>,
) -> ApiResult<()> {
    state
        .events
        .transaction(&state.db, move |conn, outbox| {
            if !repo::decide(conn, id, to, by, reason.as_deref(), customer)? {
                return Err(not_pending(conn, id, customer));
            }
            let request = repo::find_request(conn, id)?;
            notify_decision(conn, outbox, &request, to)
        })
        .await
}

pub async fn reject(
    state: &AppState,
    principal: &Principal,
    id: i64,
    rejection: Rejection,
) -> ApiResult<RequestOut> {
    rejection.validate()?;
    let by = principal.user_id;
    settle(
        state,
        id,
        RequestStatus::Rejected,
        by,
        rejection.reason,
        None,
    )
    .await?;
    get(state, principal, id).await
}

/// The requesting customer withdraws a pending request; anyone else's is 404.
pub async fn cancel(state: &AppState, principal: &Principal, id: i64) -> ApiResult<RequestOut> {
    let me = principal.user_id;
    settle(state, id, RequestStatus::Cancelled, me, None, Some(me)).await?;
    get(state, principal, id).await
}

// Request work other areas compose into their own transactions or summaries.

/// Pending requests, all of them or one customer's.
pub fn count_pending(conn: &mut DbConnection, customer_id: Option<i64>) -> ApiResult<i64> {
    Ok(repo::count_pending(conn, customer_id)?)
}

/// A customer's pending requests, newest first, at most `limit`.
pub fn pending_of(
    conn: &mut DbConnection,
    customer_id: i64,
    limit: i64,
) -> ApiResult<Vec<RequestOut>> {
    let rows = repo::list_requests(
        conn,
        Some(customer_id),
        Some(RequestStatus::Pending),
        None,
        limit,
    )?;
    Ok(rows.into_iter().map(request_out).collect())
}

/// Cancels every pending request of a customer whose account is being erased.
pub fn cancel_pending_of(conn: &mut DbConnection, customer_id: i64) -> ApiResult<()> {
    repo::cancel_pending_of(conn, customer_id)?;
    Ok(())
}
