use super::dto::{CustomerDetail, CustomerQuery, CustomerSort, InventorySummary};
use super::repo;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult, Context};
use crate::identity::dto::UserOut;
use crate::identity::repo as users;
use crate::inventory::service::ExpiryRules;
use crate::pagination::{Page, PageParams};
use crate::replenishment::dto::RequestStatus;
use crate::state::AppState;

pub async fn list_customers(
    state: &AppState,
    query: CustomerQuery,
    page: PageParams,
) -> ApiResult<Page<UserOut>> {
    let limit = page.limit()?;
    let sort = query.sort.unwrap_or(CustomerSort::CreatedAt);
    let after = page.cursor::<repo::UserCursor>()?;
    if query.q.as_ref().is_some_and(|q| q.len() > 200) {
        return Err(ApiError::BadRequest(
            "q must be at most 200 characters".to_owned(),
        ));
    }
    let rows = state
        .db
        .run(move |conn| {
            repo::list_customers(conn, query.q.as_deref(), sort, after, limit).map_err(
                |e| match e {
                    diesel::result::Error::NotFound => {
                        ApiError::BadRequest("the cursor is not valid".to_owned())
                    }
                    other => other.into(),
                },
            )
        })
        .await?;
    Ok(Page::from_rows(
        rows,
        limit,
        |r| repo::cursor_of(r, sort),
        UserOut::from,
    ))
}

/// A live customer, or 404 (staff and owners are not "customers").
pub async fn customer(state: &AppState, id: i64) -> ApiResult<CustomerDetail> {
    let row = state
        .db
        .run(move |conn| users::find_user(conn, id).or_not_found(format!("customer {id}")))
        .await?;
    if row.role() != Role::Customer {
        return Err(ApiError::not_found(format!("customer {id}")));
    }
    let rules = ExpiryRules::now(state);
    let (counts, open) = state
        .db
        .run(move |conn| {
            let counts = crate::dashboard::repo::customer_counts(conn, id, &rules)?;
            let open = crate::replenishment::repo::list_requests(
                conn,
                Some(id),
                Some(RequestStatus::Pending),
                None,
                49,
            )?;
            Ok((counts, open))
        })
        .await?;
    Ok(CustomerDetail {
        user: row.into(),
        inventory_summary: InventorySummary {
            holdings: counts.holdings,
            expired: counts.expired,
            expiring_soon: counts.expiring_soon,
            needs_replenishment: counts.needs_replenishment,
        },
        open_requests: open
            .into_iter()
            .map(crate::replenishment::service::request_out)
            .collect(),
    })
}

/// Erases a customer: sign-in stops at once, personal data goes, messages stay.
pub async fn delete_customer(state: &AppState, id: i64) -> ApiResult<()> {
    state
        .db
        .transaction(move |conn| {
            repo::lock_customer(conn, id).or_not_found(format!("customer {id}"))?;
            // Their own data goes; what others need (the ledger, chat messages) stays.
            crate::customer_inventory::repo::delete_holdings_of(conn, id)?;
            crate::replenishment::repo::cancel_pending_of(conn, id)?;
            repo::erase_user(conn, id)?;
            Ok(())
        })
        .await
}

pub async fn list_users(
    state: &AppState,
    role: Option<Role>,
    page: PageParams,
) -> ApiResult<Page<UserOut>> {
    let limit = page.limit()?;
    let after = page.cursor::<i64>()?;
    let rows = state
        .db
        .run(move |conn| Ok(repo::list_users(conn, role, after, limit)?))
        .await?;
    Ok(Page::from_rows(rows, limit, |r| r.id, UserOut::from))
}

/// Promotes or demotes an account. The last owner cannot be demoted (409).
pub async fn set_role(
    state: &AppState,
    _by: &Principal,
    id: i64,
    role: Role,
) -> ApiResult<UserOut> {
    if role == Role::Bot {
        return Err(ApiError::field("role", "must be owner, worker or customer"));
    }
    state
        .db
        .transaction(move |conn| {
            repo::lock_owners(conn)?;
            let target = users::find_user(conn, id).or_not_found(format!("user {id}"))?;
            if target.role() == Role::Bot {
                return Err(ApiError::Conflict(
                    "a bot's role cannot be changed".to_owned(),
                ));
            }
            if target.role() == Role::Owner
                && role != Role::Owner
                && repo::count_owners_except(conn, id)? == 0
            {
                return Err(ApiError::Conflict(
                    "this is the last owner; promote another owner first".to_owned(),
                ));
            }
            repo::set_role(conn, id, role)?;
            Ok(())
        })
        .await?;
    crate::identity::service::user(state, id).await
}
