use super::dto::{CustomerDetail, CustomerQuery, CustomerSort, InventorySummary};
use super::repo;
use crate::auth::{Principal, Role};
use crate::customer_inventory::service as holdings;
use crate::db::DbConnection;
use crate::error::{ApiError, ApiResult, Context};
use crate::identity::dto::UserOut;
use crate::identity::service as identity;
use crate::pagination::{matches_nothing, Page, PageParams};
use crate::replenishment::service as replenishment;
use crate::state::AppState;
use crate::stock_rules::ExpiryRules;

pub async fn list_customers(
    state: &AppState,
    query: CustomerQuery,
    page: PageParams,
) -> ApiResult<Page<UserOut>> {
    let limit = page.limit()?;
    let sort = query.sort.unwrap_or(CustomerSort::CreatedAt);
    let order = match sort {
        CustomerSort::Username | CustomerSort::UsernameDesc => {
            repo::CustomerOrder::Username(page.cursor()?)
        }
        CustomerSort::CreatedAt | CustomerSort::CreatedAtDesc => {
            repo::CustomerOrder::CreatedAt(page.cursor()?)
        }
    };
    if matches_nothing(query.q.as_deref()) {
        return Ok(Page::empty());
    }
    let desc = matches!(
        sort,
        CustomerSort::UsernameDesc | CustomerSort::CreatedAtDesc
    );
    if query.q.as_ref().is_some_and(|q| q.len() > 200) {
        return Err(ApiError::BadRequest(
            "q must be at most 200 characters".to_owned(),
        ));
    }
    let rows = state
        .db
        .run(move |conn| {
            Ok(repo::list_customers(
                conn,
                query.q.as_deref(),
                order,
                desc,
                limit,
            )?)
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
    let row = identity::live_customer(state, id).await?;
    let rules = ExpiryRules::now(state);
    let (counts, open_requests) = state
        .db
        .run(move |conn| {
            let counts = holdings::counts(conn, id, &rules)?;
            let open = replenishment::pending_of(conn, id, 49)?;
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
        open_requests,
    })
}

/// Erases a customer: sign-in stops at once, personal data goes, messages stay.
pub async fn delete_customer(state: &AppState, id: i64) -> ApiResult<()> {
    state
        .db
        .transaction(move |conn| {
            repo::lock_customer(conn, id).or_not_found(format!("customer {id}"))?;
            // Their own data goes; what others need (the ledger, chat messages) stays.
            holdings::delete_all_of(conn, id)?;
            replenishment::cancel_pending_of(conn, id)?;
            repo::erase_user(conn, id)?;
            Ok(())
        })
        .await?;
    state.sessions_changed();
    Ok(())
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
            let target = identity::find_user(conn, id)?;
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
    state.sessions_changed();
    identity::user(state, id).await
}

/// Live customer accounts, for the staff dashboard.
pub fn count_customers(conn: &mut DbConnection) -> ApiResult<i64> {
    Ok(repo::count_customers(conn)?)
}
