use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::{Validate, ValidationError};

use crate::pagination::double_option;
use crate::validation::plain_text;

pub const MAX_QUANTITY: i64 = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Perishable,
    NonPerishable,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Perishable => "perishable",
            Self::NonPerishable => "non_perishable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "perishable" => Some(Self::Perishable),
            "non_perishable" => Some(Self::NonPerishable),
            _ => None,
        }
    }
}

fn invalid(message: &'static str) -> ValidationError {
    let mut e = ValidationError::new("invalid");
    e.message = Some(message.into());
    e
}

/// 1–64 visible ASCII characters (EAN, UPC, Code 128, QR text…).
pub fn valid_barcode(value: &str) -> Result<(), ValidationError> {
    if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("must be 1 to 64 visible ASCII characters"));
    }
    Ok(())
}

/// 1–64 characters without control characters or surrounding spaces.
pub fn valid_sku(value: &str) -> Result<(), ValidationError> {
    if value.is_empty() || value.chars().count() > 64 || value.trim() != value {
        return Err(invalid(
            "must be 1 to 64 characters without surrounding spaces",
        ));
    }
    plain_text(value)
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    #[validate(length(min = 1, max = 200), custom(function = "plain_text"))]
    #[schema(
        example = "Whole milk",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    pub kind: ItemKind,
    #[validate(length(max = 50), custom(function = "plain_text"))]
    #[schema(
        example = "1",
        max_length = 50,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub size: Option<String>,
    #[validate(length(max = 30), custom(function = "plain_text"))]
    #[schema(
        example = "l",
        max_length = 30,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub unit: Option<String>,
    #[validate(custom(function = "valid_sku"))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\u0000-\u0008\u000B-\u001F\u007F-\u009F](?:[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u0008\u000B-\u001F\u007F-\u009F])?$"
    )]
    pub sku: Option<String>,
    #[validate(custom(function = "valid_barcode"))]
    #[schema(
        example = "4006381333931",
        min_length = 1,
        max_length = 64,
        pattern = r"^[!-~]{1,64}$"
    )]
    pub barcode: Option<String>,
    #[validate(length(max = 2000), custom(function = "plain_text"))]
    #[schema(
        max_length = 2000,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
    /// Reorder level: at or below this much available stock the item is "low".
    #[serde(default)]
    #[validate(range(min = 0, max = 1_000_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub min_quantity: i64,
    /// Order-up-to level; replenishment suggests reaching it (default 2 × min_quantity).
    #[validate(range(min = 0, max = 1_000_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub target_quantity: Option<i64>,
    /// This item's "expiring soon" window in days (else the store-wide setting).
    #[validate(range(min = 0, max = 3650))]
    #[schema(minimum = 0, maximum = 3650)]
    pub expiry_warning_days: Option<i32>,
    pub photo_file_id: Option<i64>,
    /// Creates the first batch.
    #[validate(range(min = 0, max = 1_000_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub quantity: Option<i64>,
    /// Expiry of the first batch (required for perishable items with a quantity).
    #[schema(value_type = Option<String>, format = Date, example = "2026-12-31")]
    pub expiry_date: Option<NaiveDate>,
    #[validate(length(min = 1, max = 64), custom(function = "plain_text"))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub lot_code: Option<String>,
}

/// Fields to change; an absent field is left alone, `null` clears an optional one.
#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemPatch {
    #[validate(length(min = 1, max = 200), custom(function = "plain_text"))]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    pub kind: Option<ItemKind>,
    #[serde(default, deserialize_with = "double_option")]
    #[validate(length(max = 50), custom(function = "plain_text"))]
    #[schema(value_type = Option<String>, max_length = 50, pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$")]
    pub size: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[validate(length(max = 30), custom(function = "plain_text"))]
    #[schema(value_type = Option<String>, max_length = 30, pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$")]
    pub unit: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[validate(custom(function = "valid_sku"))]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = r"^[^\s\u0000-\u0008\u000B-\u001F\u007F-\u009F](?:[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*[^\s\u0000-\u0008\u000B-\u001F\u007F-\u009F])?$")]
    pub sku: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[validate(custom(function = "valid_barcode"))]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 64, pattern = r"^[!-~]{1,64}$")]
    pub barcode: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[validate(length(max = 2000), custom(function = "plain_text"))]
    #[schema(value_type = Option<String>, max_length = 2000, pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$")]
    pub description: Option<Option<String>>,
    #[validate(range(min = 0, max = 1_000_000_000))]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub min_quantity: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    #[validate(range(min = 0, max = 1_000_000_000))]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 1_000_000_000)]
    pub target_quantity: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[validate(range(min = 0, max = 3650))]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 3650)]
    pub expiry_warning_days: Option<Option<i32>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub photo_file_id: Option<Option<i64>>,
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBatch {
    #[validate(range(min = 1, max = 1_000_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub quantity: i64,
    /// May be in the past (stock that already expired).
    #[schema(value_type = Option<String>, format = Date, example = "2026-12-31")]
    pub expiry_date: Option<NaiveDate>,
    #[validate(length(min = 1, max = 64), custom(function = "plain_text"))]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub lot_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdjustReason {
    Restock,
    Consume,
    Waste,
    Expired,
    Correction,
}

impl AdjustReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restock => "restock",
            Self::Consume => "consume",
            Self::Waste => "waste",
            Self::Expired => "expired",
            Self::Correction => "correction",
        }
    }
}

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Adjustment {
    /// Units to add (positive) or remove (negative); removals take the earliest-expiring
    /// batch first unless `batch_id` names one.
    #[validate(range(min = -1_000_000_000, max = 1_000_000_000))]
    #[schema(minimum = -1_000_000_000, maximum = 1_000_000_000)]
    pub delta: i64,
    pub reason: AdjustReason,
    pub batch_id: Option<i64>,
    #[validate(length(max = 500), custom(function = "plain_text"))]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$"
    )]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchOut {
    pub id: i64,
    pub item_id: i64,
    pub quantity: i64,
    #[schema(value_type = Option<String>, format = Date)]
    pub expiry_date: Option<NaiveDate>,
    pub lot_code: Option<String>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: NaiveDateTime,
    pub expired: bool,
    pub expiring: bool,
}

/// An item as staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemOut {
    pub id: i64,
    pub name: String,
    pub kind: ItemKind,
    pub size: Option<String>,
    pub unit: Option<String>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    pub description: Option<String>,
    pub min_quantity: i64,
    pub target_quantity: Option<i64>,
    pub expiry_warning_days: Option<i32>,
    pub photo_file_id: Option<i64>,
    /// The sum of the item's batches.
    pub quantity: i64,
    /// Stock that has not expired: what can be handed out.
    pub available_quantity: i64,
    pub expired_quantity: i64,
    /// Units in batches expiring within the item's window (not yet expired).
    pub expiring_quantity: i64,
    /// The earliest expiry date among batches holding stock.
    #[schema(value_type = Option<String>, format = Date)]
    pub expiry_date: Option<NaiveDate>,
    pub low_stock: bool,
    /// Changes with every edit of the item's fields; sent as the `ETag`.
    pub version: i64,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
    /// Batches holding stock, earliest expiry first (single-item answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<Vec<BatchOut>>,
}

/// An item as customers see it: what is in stock and not expired. Closed to other
/// properties in the document, so a staff answer (`ItemOut`) never also matches it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerItemOut {
    pub id: i64,
    pub name: String,
    pub kind: ItemKind,
    pub size: Option<String>,
    pub unit: Option<String>,
    pub barcode: Option<String>,
    pub description: Option<String>,
    pub photo_file_id: Option<i64>,
    /// Available (unexpired) units.
    pub quantity: i64,
    /// The earliest expiry among the available batches.
    #[schema(value_type = Option<String>, format = Date)]
    pub expiry_date: Option<NaiveDate>,
}

/// `GET /items` answers staff with `ItemOut` and customers with `CustomerItemOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ItemView {
    Staff(Box<ItemOut>),
    Customer(CustomerItemOut),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MovementOut {
    pub id: i64,
    pub item_id: i64,
    pub batch_id: Option<i64>,
    pub delta: i64,
    pub reason: String,
    /// The item's stock right after this movement.
    pub quantity_after: i64,
    pub actor_id: Option<i64>,
    pub note: Option<String>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpiredBatchOut {
    pub batch_id: i64,
    pub item_id: i64,
    pub name: String,
    #[schema(value_type = String, format = Date)]
    pub expiry_date: NaiveDate,
    pub quantity: i64,
    pub lot_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AdjustmentOut {
    pub item: ItemOut,
    /// The ledger rows this adjustment wrote (one per batch touched).
    pub movements: Vec<MovementOut>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, ToSchema)]
pub enum ItemSort {
    #[serde(rename = "name")]
    Name,
    #[serde(rename = "-name")]
    NameDesc,
    #[serde(rename = "quantity")]
    Quantity,
    #[serde(rename = "-quantity")]
    QuantityDesc,
    #[serde(rename = "expiry_date")]
    ExpiryDate,
    #[serde(rename = "-expiry_date")]
    ExpiryDateDesc,
    #[serde(rename = "created_at")]
    CreatedAt,
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
}

impl ItemSort {
    pub fn is_desc(self) -> bool {
        matches!(
            self,
            Self::NameDesc | Self::QuantityDesc | Self::ExpiryDateDesc | Self::CreatedAtDesc
        )
    }
}

#[derive(Debug, Default, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct ItemQuery {
    /// Case-insensitive search in name, sku, barcode and description.
    #[validate(length(max = 200))]
    #[param(max_length = 200)]
    pub q: Option<String>,
    #[param(inline)]
    pub kind: Option<ItemKind>,
    /// Only items holding expired stock (`false`: only items without).
    pub expired: Option<bool>,
    /// Only items with stock expiring within this many days (today included).
    #[validate(range(min = 0, max = 3650))]
    #[param(minimum = 0, maximum = 3650)]
    pub expiring_within_days: Option<i32>,
    /// Only items whose available stock is at or below `min_quantity`.
    pub low_stock: Option<bool>,
    /// Exact barcode.
    #[validate(length(max = 64))]
    #[param(max_length = 64)]
    pub barcode: Option<String>,
    /// `name` (default), `quantity`, `expiry_date`, `created_at`; `-` for descending.
    #[param(inline)]
    pub sort: Option<ItemSort>,
}
