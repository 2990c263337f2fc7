//! The purchase limit: the product's rule of how many units one customer may hold in paid
//! orders, decided against a product row and what the customer holds now (an order batch's
//! state: the stored holdings plus the batch's earlier orders).

use crate::store::product::ProductRow;

/// The largest `max_per_user`.
pub const MAX_PER_USER: i64 = 1000;

/// The line would take the customer past the limit: the limit and what is left of the
/// allowance, for the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub limit: i64,
    pub left: i64,
}

/// Whether the product has a limit (only then are its holdings kept).
pub fn applies(product: &ProductRow) -> bool {
    product.max_per_user.is_some()
}

/// Whether a customer holding `held` units of `product` may buy `quantity` more.
pub fn check(product: &ProductRow, held: i64, quantity: i64) -> Result<(), OverLimit> {
    match product.max_per_user {
        Some(limit) if held + quantity > limit => Err(OverLimit {
            limit,
            // A limit lowered under what someone holds leaves them nothing, not a negative.
            left: (limit - held).max(0),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::product::lamp;

    #[test]
    fn a_customer_buys_up_to_the_limit_and_no_further() {
        let mut lamp = lamp();
        assert!(!applies(&lamp));
        assert_eq!(check(&lamp, 1_000_000, 1000), Ok(()));
        lamp.max_per_user = Some(2);
        assert!(applies(&lamp));
        assert_eq!(check(&lamp, 0, 2), Ok(()));
        assert_eq!(check(&lamp, 1, 1), Ok(()));
        assert_eq!(check(&lamp, 0, 3), Err(OverLimit { limit: 2, left: 2 }));
        assert_eq!(check(&lamp, 1, 2), Err(OverLimit { limit: 2, left: 1 }));
        assert_eq!(check(&lamp, 2, 1), Err(OverLimit { limit: 2, left: 0 }));
    }

    #[test]
    fn a_limit_lowered_under_the_holding_leaves_nothing() {
        let mut lamp = lamp();
        lamp.max_per_user = Some(1);
        assert_eq!(check(&lamp, 3, 1), Err(OverLimit { limit: 1, left: 0 }));
    }
}
