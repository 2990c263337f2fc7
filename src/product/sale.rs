//! The sale window: the product's rule of when it can be ordered, decided against a product
//! row and the clock of the decision (an order batch's `now`).

use chrono::{DateTime, Utc};

use crate::store::product::ProductRow;

/// Outside its sale window at the instant of the decision: the window, for the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOnSale {
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl NotOnSale {
    /// The window as `[starts, ends)`, for a problem's detail.
    pub fn window(&self) -> String {
        let side = |at: Option<DateTime<Utc>>, open: &str| {
            at.map(|at| at.to_rfc3339())
                .unwrap_or_else(|| open.to_owned())
        };
        format!(
            "[{}, {})",
            side(self.starts_at, "open"),
            side(self.ends_at, "open")
        )
    }
}

/// Whether `product` can be ordered at `now`: from `sale_starts_at` (inclusive) until
/// `sale_ends_at` (exclusive); an unset side is open.
pub fn on_sale(product: &ProductRow, now: DateTime<Utc>) -> Result<(), NotOnSale> {
    let opened = product.sale_starts_at.is_none_or(|starts| starts <= now);
    let closed = product.sale_ends_at.is_some_and(|ends| ends <= now);
    if opened && !closed {
        return Ok(());
    }
    Err(NotOnSale {
        starts_at: product.sale_starts_at,
        ends_at: product.sale_ends_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn a_product_is_on_sale_from_its_start_until_before_its_end() {
        let opens = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
        let closes = opens + Duration::hours(1);
        let mut lamp = super::super::lamp();
        assert_eq!(on_sale(&lamp, opens), Ok(()));
        lamp.sale_starts_at = Some(opens);
        lamp.sale_ends_at = Some(closes);
        let closed = NotOnSale {
            starts_at: Some(opens),
            ends_at: Some(closes),
        };
        let refused = Err(closed);
        assert_eq!(on_sale(&lamp, opens - Duration::microseconds(1)), refused);
        assert_eq!(on_sale(&lamp, opens), Ok(()));
        assert_eq!(on_sale(&lamp, closes - Duration::microseconds(1)), Ok(()));
        assert_eq!(on_sale(&lamp, closes), refused);
        lamp.sale_starts_at = None;
        assert_eq!(on_sale(&lamp, opens - Duration::days(365)), Ok(()));
        assert_eq!(
            closed.window(),
            "[2026-11-24T00:00:00+00:00, 2026-11-24T01:00:00+00:00)"
        );
    }
}
