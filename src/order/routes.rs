use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::request::OrderRequest;
use super::service::{self, Order};
use crate::app::AppState;
use crate::http::extract::PageParams;
use crate::http::{AuthUser, IdempotencyHeader, Json, PathId, Problem, ProblemBody};
use crate::ids::OrderId;
use crate::page::{Page, PageRequest};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(place_order))
        .routes(routes!(get_order))
        .routes(routes!(my_orders))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlaceOrderBody {
    /// 1..=100 lines; repeated products are merged.
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<LineBody>,
    /// One of the caller's AVAILABLE coupons.
    #[schema(minimum = 1)]
    user_coupon_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LineBody {
    #[schema(minimum = 1)]
    product_id: i64,
    /// 1..=1000.
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
}

/// Order and pay from the balance, optionally with a coupon. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/orders", tag = "orders", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1..=255 printable ASCII; a retry with the same key and body replays the first response")),
    request_body = PlaceOrderBody,
    responses(
        (status = 201, body = Order),
        (status = 400, description = "INVALID_ORDER or VALIDATION_FAILED", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "PRODUCT_NOT_FOUND", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "OUT_OF_STOCK, COUPON_NOT_USABLE or INSUFFICIENT_BALANCE", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "the database stayed busy; retry after Retry-After", body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn place_order(
    State(app): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    IdempotencyHeader(key): IdempotencyHeader,
    Json(body): Json<PlaceOrderBody>,
) -> Result<(StatusCode, Json<Order>), Problem> {
    let lines = body
        .items
        .into_iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    let request = OrderRequest::parse(lines, body.user_coupon_id)?;
    Ok((
        StatusCode::CREATED,
        Json(service::place(&app, user, request, key).await?),
    ))
}

/// One of the caller's orders (another user's order is not found).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses(
        (status = 200, body = Order),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "ORDER_NOT_FOUND", body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn get_order(
    State(app): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    PathId(id): PathId<OrderId>,
) -> Result<Json<Order>, Problem> {
    Ok(Json(service::get(&app.db, user, id).await?))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/me/orders", tag = "orders", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<Order>),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn my_orders(
    State(app): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    page: PageRequest,
) -> Result<Json<Page<Order>>, Problem> {
    Ok(Json(service::list_mine(&app.db, user, page).await?))
}
