use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::auth::Role;
use crate::identity::dto::UserOut;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
pub enum CustomerSort {
    #[serde(rename = "username")]
    Username,
    #[serde(rename = "-username")]
    UsernameDesc,
    #[serde(rename = "created_at")]
    CreatedAt,
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
}

#[derive(Debug, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Case-insensitive search in username, email and name.
    #[validate(length(max = 200))]
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// `username`, `-username`, `created_at` (default) or `-created_at`.
    #[param(inline)]
    pub sort: Option<CustomerSort>,
}

#[derive(Debug, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// Only accounts with this role.
    #[param(inline)]
    pub role: Option<Role>,
}

/// The roles an owner can give a person; bots are made through `/bots`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignableRole {
    Owner,
    Worker,
    Customer,
}

impl From<AssignableRole> for Role {
    fn from(role: AssignableRole) -> Self {
        match role {
            AssignableRole::Owner => Role::Owner,
            AssignableRole::Worker => Role::Worker,
            AssignableRole::Customer => Role::Customer,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: AssignableRole,
}

/// A customer with what staff need at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDetail {
    #[serde(flatten)]
    pub user: UserOut,
    pub inventory_summary: InventorySummary,
    /// Pending requests, newest first (at most 50).
    pub open_requests: Vec<crate::replenishment::dto::RequestOut>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct InventorySummary {
    pub holdings: i64,
    pub expired: i64,
    pub expiring_soon: i64,
    pub needs_replenishment: i64,
}
