use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldingOut {
    pub id: i64,
    pub customer_id: i64,
    /// `null` once the store deleted the item.
    pub item_id: Option<i64>,
    pub name: String,
    pub quantity: i64,
    /// Expiry of the batch it came from.
    #[schema(value_type = Option<String>, format = Date)]
    pub expiry_date: Option<NaiveDate>,
    /// The customer's own reorder level.
    pub min_quantity: i64,
    pub expired: bool,
    pub expiring: bool,
    pub needs_replenishment: bool,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Default, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct HoldingQuery {
    /// Only expired holdings (`false`: only unexpired).
    pub expired: Option<bool>,
    /// Only holdings expiring within this many days (not yet expired).
    #[validate(range(min = 0, max = 3650))]
    #[param(minimum = 0, maximum = 3650)]
    pub expiring_within_days: Option<i32>,
    /// Only holdings that are low, expired or expiring.
    pub needs_replenishment: Option<bool>,
}

/// Consume (lower `quantity`) or set the own reorder level.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldingPatch {
    /// The quantity left after consuming: at most the current quantity (raising it is
    /// refused with 422; stock arrives through replenishment requests).
    #[validate(range(min = 0, max = 1_000_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub quantity: Option<i64>,
    #[validate(range(min = 0, max = 1_000_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub min_quantity: Option<i64>,
}
