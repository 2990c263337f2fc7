//! The orders' errors and their problem documents.

use thiserror::Error;

use crate::http::problem::{error_codes, problem_by_value};
use crate::http::{ErrorCode, Problem};
use crate::idempotency::IdempotencyError;
use crate::store::StoreError;

error_codes! {
    InvalidOrder "INVALID_ORDER" BAD_REQUEST: "no items, more than 100 lines, or a quantity out of 1..=1000 (also per product once lines are merged)";
    OutOfStock "OUT_OF_STOCK" CONFLICT: "a line exceeds the stock; the detail names the product";
    PurchaseLimitExceeded "PURCHASE_LIMIT_EXCEEDED" CONFLICT: "a line would take the units of a product the customer holds in paid orders past its max_per_user; the detail names the product, the limit and what is left";
    CouponNotUsable "COUPON_NOT_USABLE" CONFLICT: "the coupon is not the user's, already used, expired, or the order is under its minimum amount";
    InsufficientBalance "INSUFFICIENT_BALANCE" CONFLICT: "the balance is less than the amount to pay";
    OrderNotFound "ORDER_NOT_FOUND" NOT_FOUND: "no such order (also another user's order)";
    OrderNotCancellable "ORDER_NOT_CANCELLABLE" CONFLICT: "already cancelled, or placed longer ago than the cancellation window";
}

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
    #[error("product {product_id}: at most {limit} per customer, {left} left")]
    PurchaseLimitExceeded {
        product_id: i64,
        limit: i64,
        left: i64,
    },
    #[error("product {product_id} is not on sale: its sale window is {window}")]
    NotOnSale { product_id: i64, window: String },
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
            OrderError::NotOnSale { .. } => ErrorCode::ProductNotOnSale,
            OrderError::OutOfStock { .. } => ErrorCode::OutOfStock,
            OrderError::PurchaseLimitExceeded { .. } => ErrorCode::PurchaseLimitExceeded,
            OrderError::CouponNotUsable(..) => ErrorCode::CouponNotUsable,
            OrderError::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            OrderError::NotFound(_) => ErrorCode::OrderNotFound,
            OrderError::NotCancellable(..) => ErrorCode::OrderNotCancellable,
            OrderError::Idempotency(IdempotencyError::KeyReused) => ErrorCode::IdempotencyKeyReused,
            OrderError::Db(fault) => return Err(fault),
        })
    }
}

crate::store::store_fault!(OrderError);

impl From<&OrderError> for Problem {
    fn from(error: &OrderError) -> Self {
        match error.code() {
            Ok(code) => Problem::new(code, error.to_string()),
            Err(fault) => fault.into(),
        }
    }
}

problem_by_value!(OrderError);
