use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileOut {
    pub id: i64,
    pub filename: String,
    /// Decided from the bytes, not the name.
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    pub uploader_id: Option<i64>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
    #[schema(example = "/api/v1/files/1")]
    pub url: String,
}

#[derive(Debug, Deserialize, IntoParams, Validate)]
#[into_params(parameter_in = Query)]
pub struct ThumbnailQuery {
    /// Longest side in pixels, 16–512 (default 256).
    #[validate(range(min = super::service::THUMBNAIL_MIN, max = super::service::THUMBNAIL_MAX))]
    #[param(minimum = 16, maximum = 512)]
    pub size: Option<u32>,
}

/// A file's bytes, as `GET /files/{id}` answers them.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct FileBytes(Vec<u8>);

/// The multipart upload form: one or more parts named `files`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1, max_items = 10)]
    pub files: Vec<Vec<u8>>,
}
