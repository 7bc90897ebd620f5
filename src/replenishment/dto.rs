use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::customer_inventory::dto::HoldingOut;
use crate::inventory::dto::ItemOut;
use crate::validation::plain_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    LowStock,
    Expired,
    Expiring,
}

/// An item staff should restock.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffEntry {
    pub item: ItemOut,
    pub reasons: Vec<Reason>,
    /// Units to order to reach `target_quantity` (else 2 × `min_quantity`), counting stock
    /// already promised to pending requests; never negative.
    pub suggested_quantity: i64,
    /// Units promised to pending requests.
    pub promised_quantity: i64,
}

/// A holding the customer should ask for again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerEntry {
    pub holding: HoldingOut,
    pub reasons: Vec<Reason>,
    /// `2 × min_quantity − quantity`, never negative.
    pub suggested_quantity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ReplenishmentEntry {
    Staff(Box<StaffEntry>),
    Customer(CustomerEntry),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Pending,
    Fulfilled,
    Rejected,
    Cancelled,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Fulfilled => "fulfilled",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "fulfilled" => Self::Fulfilled,
            "rejected" => Self::Rejected,
            "cancelled" => Self::Cancelled,
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    pub item_id: i64,
    #[validate(range(min = 1, max = 1_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
    #[validate(length(max = 500), custom(function = "plain_text"))]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub note: Option<String>,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    #[validate(length(max = 500), custom(function = "plain_text"))]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestOut {
    pub id: i64,
    pub customer_id: i64,
    /// `null` once the store deleted the item.
    pub item_id: Option<i64>,
    pub item_name: String,
    pub quantity: i64,
    pub note: Option<String>,
    pub status: RequestStatus,
    /// Why it was rejected, when it was.
    pub reason: Option<String>,
    pub decided_by: Option<i64>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<NaiveDateTime>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Default, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    #[param(inline)]
    pub status: Option<RequestStatus>,
}
