use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cancel::{self, Canceller};
use super::model::Order;
use super::request::{OrderRequest, MAX_LINES, MAX_QUANTITY};
use super::service::{self, OrderState};
use crate::bounds;
use crate::http::answer::respond;
use crate::http::extract::{IdParam, IdempotencyKeyParam, PageParams, Paging};
use crate::http::responses::{problems, BodyFaults, BAD_ID, BAD_PAGE};
use crate::http::{
    Admin, AuthUser, IdempotencyHeader, Json, JwtKeys, PathId, Problem, WriteLimiter, WriteUser,
};
use crate::idempotency::IdempotencyKey;
use crate::ids::OrderId;
use crate::page::Page;

#[derive(utoipa::OpenApi)]
#[openapi(components(schemas(LineBody)))]
struct OrderSchemas;

pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    OrderState: FromRef<S>,
    JwtKeys: FromRef<S>,
    WriteLimiter: FromRef<S>,
{
    OpenApiRouter::with_openapi(<OrderSchemas as utoipa::OpenApi>::openapi())
        .routes(routes!(place_order))
        .routes(routes!(get_order))
        .routes(routes!(my_orders))
        .routes(routes!(cancel_order))
        .routes(routes!(admin_cancel_order))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlaceOrderBody {
    /// 1..=100 lines; repeated products are merged.
    #[schema(schema_with = order_lines)]
    items: Vec<LineBody>,
    /// One of the caller's AVAILABLE coupons.
    #[schema(schema_with = user_coupon_id)]
    user_coupon_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewOrderLine)]
struct LineBody {
    #[schema(schema_with = bounds::int::<1, { i64::MAX }>)]
    product_id: i64,
    /// 1..=1000.
    #[schema(schema_with = bounds::int::<1, MAX_QUANTITY>)]
    quantity: i64,
}

/// The lines refer to `NewOrderLine` (registered by `routes`, as utoipa cannot follow a
/// `schema_with`), so a generated client has one line type.
fn order_lines() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(utoipa::openapi::Ref::from_schema_name(LineBody::name()))
        .min_items(Some(1))
        .max_items(Some(MAX_LINES))
        .description(Some(format!(
            "1..={MAX_LINES} lines; lines of one product are merged, and the merged quantity is at most {MAX_QUANTITY} too."
        )))
        .build()
}

fn user_coupon_id() -> utoipa::openapi::Object {
    bounds::described(
        bounds::int_or_null::<1, { i64::MAX }>(),
        "One of the caller's AVAILABLE coupons (null or absent: none).",
    )
}

problems!(PlaceOrderProblems for KEYED_WRITE {
    InvalidOrder,
    ValidationFailed: "a malformed body or header",
    ProductNotFound,
    ProductNotOnSale,
    PurchaseLimitExceeded,
    OutOfStock,
    CouponNotUsable,
    InsufficientBalance,
});

/// Order and pay from the balance, optionally with a coupon. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/orders", tag = "orders", security(("bearer" = [])),
    params(IdempotencyKeyParam),
    request_body = PlaceOrderBody,
    responses(
        (status = 201, body = Order),
        PlaceOrderProblems,
        BodyFaults,
    ))]
async fn place_order(
    State(app): State<OrderState>,
    WriteUser(user): WriteUser,
    IdempotencyHeader(key): IdempotencyHeader,
    Json(body): Json<PlaceOrderBody>,
) -> Response {
    let lines = body
        .items
        .into_iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    let request = match OrderRequest::parse(lines, body.user_coupon_id) {
        Ok(request) => request,
        Err(error) => return Problem::from(error).into_response(),
    };
    let outcome = service::place(&app, user, request, key).await;
    respond(StatusCode::CREATED, outcome)
}

problems!(GetOrderProblems for SIGNED_IN {
    ValidationFailed: BAD_ID,
    OrderNotFound,
});

/// One of the caller's orders (another user's order is not found).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(IdParam),
    responses(
        (status = 200, body = Order),
        GetOrderProblems,
    ))]
async fn get_order(
    State(app): State<OrderState>,
    AuthUser(user): AuthUser,
    PathId(id): PathId<OrderId>,
) -> Result<Json<Order>, Problem> {
    Ok(Json(service::get(&app.db, user, id).await?))
}

problems!(MyOrdersProblems for SIGNED_IN {
    ValidationFailed: BAD_PAGE,
});

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/me/orders", tag = "orders", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<Order>),
        MyOrdersProblems,
    ))]
async fn my_orders(
    State(app): State<OrderState>,
    AuthUser(user): AuthUser,
    Paging(page): Paging,
) -> Result<Json<Page<Order>>, Problem> {
    Ok(Json(service::list_mine(&app.db, user, page).await?))
}

problems!(CancelOrderProblems for KEYED_WRITE {
    ValidationFailed: "the id is not a positive 64-bit integer, or a malformed header",
    OrderNotFound,
    OrderNotCancellable,
});

/// Cancel one of the caller's orders within the cancellation window: stock, coupon and
/// balance come back, and the sales leave the statistics. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(IdParam, IdempotencyKeyParam),
    responses(
        (status = 200, description = "The order, now CANCELLED", body = Order),
        CancelOrderProblems,
    ))]
async fn cancel_order(
    State(app): State<OrderState>,
    WriteUser(user): WriteUser,
    IdempotencyHeader(key): IdempotencyHeader,
    PathId(id): PathId<OrderId>,
) -> Response {
    cancel_as(&app, Canceller::Owner(user), id, key).await
}

problems!(AdminCancelOrderProblems for ADMIN_KEYED_WRITE {
    ValidationFailed: "the id is not a positive 64-bit integer, or a malformed header",
    OrderNotFound: "no such order",
    OrderNotCancellable: "already cancelled",
});

/// Cancel any user's order, whenever it was placed (admin). Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/admin/orders/{id}/cancel", tag = "admin", security(("bearer" = [])),
    params(IdParam, IdempotencyKeyParam),
    responses(
        (status = 200, description = "The order, now CANCELLED", body = Order),
        AdminCancelOrderProblems,
    ))]
async fn admin_cancel_order(
    State(app): State<OrderState>,
    Admin(admin): Admin,
    IdempotencyHeader(key): IdempotencyHeader,
    PathId(id): PathId<OrderId>,
) -> Response {
    cancel_as(&app, Canceller::Admin(admin), id, key).await
}

async fn cancel_as(
    app: &OrderState,
    by: Canceller,
    id: OrderId,
    key: Option<IdempotencyKey>,
) -> Response {
    let outcome = cancel::cancel(app, by, id, key).await;
    respond(StatusCode::OK, outcome)
}
