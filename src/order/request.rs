use serde::Serialize;
use std::collections::BTreeMap;

use super::errors::OrderError;
use crate::ids::{ProductId, UserCouponId};

pub const MAX_LINES: usize = 100;
pub const MAX_QUANTITY: i64 = 1000;

/// A validated order: 1..=100 lines, each product once (repeated lines merged) in ascending
/// product id — the order in which stock rows are locked, so concurrent orders never deadlock.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrderRequest {
    lines: Vec<(ProductId, i64)>,
    user_coupon_id: Option<UserCouponId>,
}

impl OrderRequest {
    /// Parses `(product_id, quantity)` lines and an optional user coupon id.
    pub fn parse(
        items: Vec<(i64, i64)>,
        user_coupon_id: Option<i64>,
    ) -> Result<OrderRequest, OrderError> {
        let invalid = |m: String| OrderError::Invalid(m);
        if items.is_empty() {
            return Err(invalid("an order needs at least one item".into()));
        }
        if items.len() > MAX_LINES {
            return Err(invalid(format!(
                "an order has at most {MAX_LINES} lines, got {}",
                items.len()
            )));
        }
        let mut merged: BTreeMap<ProductId, i64> = BTreeMap::new();
        for (product_id, quantity) in items {
            let product = ProductId::new(product_id).ok_or_else(|| {
                invalid(format!(
                    "product_id must be a positive integer, got {product_id}"
                ))
            })?;
            if !(1..=MAX_QUANTITY).contains(&quantity) {
                return Err(invalid(format!(
                    "quantity must be between 1 and {MAX_QUANTITY}, got {quantity}"
                )));
            }
            *merged.entry(product).or_default() += quantity;
        }
        if let Some((product, total)) = merged.iter().find(|(_, q)| **q > MAX_QUANTITY) {
            return Err(invalid(format!(
                "product {product} totals {total} across its lines; at most {MAX_QUANTITY} per product"
            )));
        }
        let user_coupon_id = user_coupon_id
            .map(|id| {
                UserCouponId::new(id)
                    .ok_or_else(|| invalid(format!("user_coupon_id must be positive, got {id}")))
            })
            .transpose()?;
        Ok(OrderRequest {
            lines: merged.into_iter().collect(),
            user_coupon_id,
        })
    }

    pub fn lines(&self) -> &[(ProductId, i64)] {
        &self.lines
    }

    pub fn user_coupon_id(&self) -> Option<UserCouponId> {
        self.user_coupon_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_lines_are_merged_and_sorted_by_product() {
        let request = OrderRequest::parse(vec![(3, 1), (1, 2), (3, 4)], None).unwrap();
        let lines: Vec<_> = request.lines().iter().map(|(p, q)| (p.get(), *q)).collect();
        assert_eq!(lines, vec![(1, 2), (3, 5)]);
    }

    #[test]
    fn bad_orders_are_refused() {
        assert!(OrderRequest::parse(vec![], None).is_err());
        assert!(OrderRequest::parse(vec![(1, 0)], None).is_err());
        assert!(OrderRequest::parse(vec![(1, 1001)], None).is_err());
        assert!(OrderRequest::parse(vec![(1, 600), (1, 600)], None).is_err());
        assert!(OrderRequest::parse(vec![(0, 1)], None).is_err());
        assert!(OrderRequest::parse((1..=101).map(|p| (p, 1)).collect(), None).is_err());
        assert!(OrderRequest::parse((1..=100).map(|p| (p, 1)).collect(), None).is_ok());
        assert!(OrderRequest::parse(vec![(1, 1)], Some(0)).is_err());
    }
}
