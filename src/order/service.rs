use chrono::{DateTime, Utc};
use serde::Serialize;
use thiserror::Error;
use utoipa::ToSchema;

use super::placing::Placing;
use super::pricing::Pricing;
use super::request::OrderRequest;
use crate::app::AppState;
use crate::events::SoldItem;
use crate::http::ErrorCode;
use crate::idempotency::{Attempt, IdempotencyError, IdempotencyKey, Outcome};
use crate::ids::{OrderId, ProductId, UserCouponId, UserId};
use crate::page::{Page, PageRequest};
use crate::store::order::{OrderLineRow, OrderRow, OrderStatus};
use crate::store::{Conn, Db, StoreError, StoreFault};

#[derive(Debug, Error)]
pub enum OrderError {
    #[error("{0}")]
    Invalid(String),
    #[error("product {0} does not exist")]
    ProductNotFound(i64),
    #[error("product {product_id} is out of stock: {requested} requested, {available} available")]
    OutOfStock {
        product_id: i64,
        requested: i64,
        available: i64,
    },
    #[error("coupon {0} cannot be used: {1}")]
    CouponNotUsable(i64, String),
    #[error("the balance of {balance} won is less than the {required} won to pay")]
    InsufficientBalance { balance: i64, required: i64 },
    #[error("order {0} does not exist")]
    NotFound(i64),
    #[error("order {0} cannot be cancelled: {1}")]
    NotCancellable(i64, String),
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Db(#[from] StoreError),
}

impl OrderError {
    /// The contract's error code, or the storage fault that decides the answer instead; also
    /// the `reason` label of failed-order metrics.
    pub fn code(&self) -> Result<ErrorCode, &StoreError> {
        Ok(match self {
            OrderError::Invalid(_) => ErrorCode::InvalidOrder,
            OrderError::ProductNotFound(_) => ErrorCode::ProductNotFound,
            OrderError::OutOfStock { .. } => ErrorCode::OutOfStock,
            OrderError::CouponNotUsable(..) => ErrorCode::CouponNotUsable,
            OrderError::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            OrderError::NotFound(_) => ErrorCode::OrderNotFound,
            OrderError::NotCancellable(..) => ErrorCode::OrderNotCancellable,
            OrderError::Idempotency(IdempotencyError::KeyReused) => ErrorCode::IdempotencyKeyReused,
            OrderError::Db(fault) => return Err(fault),
        })
    }
}

impl StoreFault for OrderError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            OrderError::Db(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderLine {
    pub product_id: i64,
    /// The product's name when ordered.
    pub name: String,
    /// The product's price when ordered.
    pub unit_price: i64,
    pub quantity: i64,
    /// unit_price × quantity.
    pub amount: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    pub total_amount: i64,
    pub discount_amount: i64,
    /// total_amount - discount_amount, debited from the balance.
    pub paid_amount: i64,
    /// The coupon used; null for none.
    #[schema(required = true)]
    pub user_coupon_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// When the order was cancelled; null while it is paid.
    #[schema(required = true)]
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl From<OrderLineRow> for OrderLine {
    fn from(row: OrderLineRow) -> Self {
        OrderLine {
            product_id: row.product_id,
            name: row.name,
            unit_price: row.unit_price,
            quantity: row.quantity,
            amount: row.amount,
        }
    }
}

impl From<OrderRow> for Order {
    fn from(row: OrderRow) -> Self {
        Order {
            id: row.id.get(),
            user_id: row.user_id,
            status: row.status,
            items: row.items.into_iter().map(OrderLine::from).collect(),
            total_amount: row.total_amount,
            discount_amount: row.discount_amount,
            paid_amount: row.paid_amount,
            user_coupon_id: row.user_coupon_id,
            created_at: row.created_at,
            cancelled_at: row.cancelled_at,
        }
    }
}

/// Places an order: decided and stored together with the orders waiting at the same moment,
/// in one transaction (see `placing`). Honours an idempotency key.
pub async fn place(
    state: &AppState,
    user: UserId,
    request: OrderRequest,
    key: Option<IdempotencyKey>,
) -> Outcome<Order, OrderError> {
    let attempt = key.map(|key| Attempt::new(user, key, "POST /orders", &request));
    let placing = Placing {
        user,
        request,
        attempt,
        now: state.clock.now(),
        traceparent: crate::telemetry::traceparent(&tracing::Span::current()),
    };
    let outcome = state.db.write_shared(placing).await;
    settle(
        state,
        &outcome,
        "orders_placed_total",
        "orders_failed_total",
    );
    outcome
}

/// After a committed order write (placed or cancelled): the products it changed are read
/// afresh, the outbox relay is woken, and the outcome is counted, failures by reason.
pub(super) fn settle(
    state: &AppState,
    outcome: &Outcome<Order, OrderError>,
    done: &'static str,
    failed: &'static str,
) {
    match outcome {
        Outcome::Fresh(Ok(order)) => {
            state.products.forget(
                order
                    .items
                    .iter()
                    .filter_map(|l| ProductId::new(l.product_id)),
            );
            state.outbox.notify();
            metrics::counter!(done).increment(1);
        }
        Outcome::Fresh(Err(error)) => {
            metrics::counter!(failed, "reason" => error.code().map_or("STORAGE", ErrorCode::as_str))
                .increment(1)
        }
        Outcome::Replayed(_) => {}
    }
}

pub(super) fn not_usable(id: UserCouponId, why: String) -> OrderError {
    OrderError::CouponNotUsable(id.get(), why)
}

pub(super) fn view(
    id: OrderId,
    user: UserId,
    items: Vec<OrderLine>,
    pricing: Pricing,
    coupon: Option<UserCouponId>,
    at: DateTime<Utc>,
) -> Order {
    Order {
        id: id.get(),
        user_id: user.get(),
        status: OrderStatus::Paid,
        items,
        total_amount: pricing.total.get(),
        discount_amount: pricing.discount.get(),
        paid_amount: pricing.paid.get(),
        user_coupon_id: coupon.map(UserCouponId::get),
        created_at: at,
        cancelled_at: None,
    }
}

/// One of the caller's orders; another user's order is not found.
pub async fn get(db: &Db, user: UserId, id: OrderId) -> Result<Order, OrderError> {
    db.read()
        .await?
        .order(id)
        .await?
        .filter(|order| order.user_id == user.get())
        .map(Order::from)
        .ok_or(OrderError::NotFound(id.get()))
}

/// The caller's orders, newest first.
pub async fn list_mine(
    db: &Db,
    user: UserId,
    page: PageRequest,
) -> Result<Page<Order>, OrderError> {
    let rows = db.read().await?.orders_of(user, page).await?;
    let orders = rows.into_iter().map(Order::from).collect();
    Ok(Page::from_rows(orders, page, |o| o.id))
}

/// Per-product quantity and amount of the paid orders created in `[from, to)`, by product
/// id: the order side of the daily sales job.
pub async fn sales_between(
    conn: &mut dyn Conn,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<SoldItem>, StoreError> {
    conn.sales_between(from, to).await
}
