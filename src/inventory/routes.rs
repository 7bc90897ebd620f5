use actix_web::http::header;
use actix_web::{delete, get, patch, post, web, HttpRequest, HttpResponse};

use super::dto::{
    Adjustment, AdjustmentOut, BatchOut, ExpiredBatchOut, ItemOut, ItemPatch, ItemQuery, ItemView,
    MovementOut, NewBatch, NewItem,
};
use super::service;
use crate::auth::{Action, Principal};
use crate::error::ApiResult;
use crate::extract;
use crate::pagination::{Page, PageParams};
use crate::state::AppState;

fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

fn item_response(status: actix_web::http::StatusCode, item: &ItemOut) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, etag(item.version)))
        .json(item)
}

/// Items. Staff see every item with stock figures; customers see only what is in stock
/// and not expired, without staff-only fields.
#[utoipa::path(
    tag = "inventory",
    params(ItemQuery, PageParams),
    responses((status = 200, body = Page<ItemView>), (status = 400))
)]
#[get("/items")]
pub async fn list_items(
    state: web::Data<AppState>,
    principal: Principal,
    query: extract::Query<ItemQuery>,
    page: extract::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::BrowseItems)?;
    let body =
        service::list_json(&state, &principal, query.into_inner(), page.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// Create an item; `quantity` creates its first batch (perishable items need `expiry_date`).
#[utoipa::path(
    tag = "inventory",
    request_body = NewItem,
    responses(
        (status = 201, body = ItemOut, headers(("ETag" = String))),
        (status = 404, description = "No visible file with `photo_file_id`"),
        (status = 409, description = "sku or barcode already used"),
        (status = 422),
    )
)]
#[post("/items")]
pub async fn create_item(
    state: web::Data<AppState>,
    principal: Principal,
    body: extract::Json<NewItem>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::ManageStock)?;
    let item = service::create(&state, &principal, body.into_inner()).await?;
    let mut res = item_response(actix_web::http::StatusCode::CREATED, &item);
    if let Ok(v) = header::HeaderValue::from_str(&format!("/api/v1/items/{}", item.id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

/// Batches holding expired stock: item, name, expiry date, quantity.
#[utoipa::path(
    operation_id = "list_expired_batches",
    tag = "inventory",
    params(PageParams),
    responses((status = 200, body = Page<ExpiredBatchOut>))
)]
#[get("/items/expired")]
pub async fn expired_items(
    state: web::Data<AppState>,
    principal: Principal,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<ExpiredBatchOut>>> {
    principal.require(Action::ManageStock)?;
    service::expired(&state, page.into_inner())
        .await
        .map(web::Json)
}

/// Every item with its stock as CSV: one row per batch (an item without stock has one
/// row with an empty quantity). Import takes the same columns.
#[utoipa::path(
    operation_id = "export_items_csv",
    tag = "inventory",
    responses(
        (status = 200, description = "CSV", content_type = "text/csv")
    )
)]
#[get("/items/export.csv")]
pub async fn export_items(
    state: web::Data<AppState>,
    principal: Principal,
) -> ApiResult<HttpResponse> {
    principal.require(Action::ManageStock)?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"items.csv\"",
        ))
        .streaming(super::csv::export_stream(state.into_inner())))
}

/// Create or update items by `sku` from CSV (the export's columns), at most 5,000 rows a file.
/// All rows or none: a bad file answers 422 with `errors` keyed `line N` (the header is line 1).
#[utoipa::path(
    operation_id = "import_items_csv",
    tag = "inventory",
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, body = super::csv::ImportSummary),
        (status = 413), (status = 415),
        (status = 422, description = "Failing rows, keyed `line N`"),
    )
)]
#[post("/items/import")]
pub async fn import_items(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    body: web::Payload,
) -> ApiResult<web::Json<super::csv::ImportSummary>> {
    principal.require(Action::ManageStock)?;
    super::csv::require_csv(&req)?;
    let body = crate::extract::read_limited(body, state.settings.max_upload_bytes).await?;
    super::csv::import(&state, &principal, &body)
        .await
        .map(web::Json)
}

/// One item; staff also get its batches. The `ETag` is what `PATCH` takes in `If-Match`.
#[utoipa::path(
    tag = "inventory",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = ItemView, headers(("ETag" = String))),
        (status = 404)
    )
)]
#[get("/items/{id}")]
pub async fn get_item(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::BrowseItems)?;
    Ok(
        match service::get(&state, &principal, id.into_inner()).await? {
            ItemView::Staff(item) => item_response(actix_web::http::StatusCode::OK, &item),
            customer => HttpResponse::Ok().json(customer),
        },
    )
}

/// Change an item's fields. Send `If-Match` with the `ETag` you read: a stale one is 412.
#[utoipa::path(
    tag = "inventory",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header, description = "ETag from GET")),
    request_body = ItemPatch,
    responses(
        (status = 200, body = ItemOut, headers(("ETag" = String))),
        (status = 404), (status = 409),
        (status = 412, description = "The item changed since it was read"),
        (status = 422),
    )
)]
#[patch("/items/{id}")]
pub async fn update_item(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    req: HttpRequest,
    body: extract::Json<ItemPatch>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::ManageStock)?;
    let if_match = service::parse_if_match(
        req.headers()
            .get(header::IF_MATCH)
            .and_then(|v| v.to_str().ok()),
    );
    let item = service::update(
        &state,
        &principal,
        id.into_inner(),
        body.into_inner(),
        if_match,
    )
    .await?;
    Ok(item_response(actix_web::http::StatusCode::OK, &item))
}

/// Delete an item with its batches and ledger.
#[utoipa::path(
    tag = "inventory",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404))
)]
#[delete("/items/{id}")]
pub async fn delete_item(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::DeleteItems)?;
    service::delete(&state, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Restock: a new batch with its own quantity and expiry date (which may be past).
#[utoipa::path(
    operation_id = "add_item_batch",
    tag = "inventory",
    params(("id" = i64, Path)),
    request_body = NewBatch,
    responses((status = 201, body = BatchOut), (status = 404), (status = 422))
)]
#[post("/items/{id}/batches")]
pub async fn add_batch(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: extract::Json<NewBatch>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::ManageStock)?;
    let batch = service::add_batch(&state, &principal, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(batch))
}

/// Add or remove stock. Removals take the earliest-expiring batch first, spanning batches;
/// one that would make stock negative is refused with 409 and changes nothing.
#[utoipa::path(
    operation_id = "adjust_item_stock",
    tag = "inventory",
    params(("id" = i64, Path)),
    request_body = Adjustment,
    responses(
        (status = 201, body = AdjustmentOut),
        (status = 404),
        (status = 409, description = "Not enough stock"),
        (status = 422),
    )
)]
#[post("/items/{id}/adjustments")]
pub async fn adjust_item(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    body: extract::Json<Adjustment>,
) -> ApiResult<HttpResponse> {
    principal.require(Action::ManageStock)?;
    let out = service::adjust(&state, &principal, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(out))
}

/// The stock ledger of an item, newest first.
#[utoipa::path(
    operation_id = "list_item_movements",
    tag = "inventory",
    params(("id" = i64, Path), PageParams),
    responses((status = 200, body = Page<MovementOut>), (status = 404))
)]
#[get("/items/{id}/movements")]
pub async fn item_movements(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<i64>,
    page: extract::Query<PageParams>,
) -> ApiResult<web::Json<Page<MovementOut>>> {
    principal.require(Action::ManageStock)?;
    service::movements(&state, id.into_inner(), page.into_inner())
        .await
        .map(web::Json)
}
