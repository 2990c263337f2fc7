//! Pricing: a pure function of the lines and the coupon's terms.

use crate::coupon::Terms;
use crate::money::Won;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pricing {
    pub total: Won,
    pub discount: Won,
    pub paid: Won,
}

/// Why lines have no price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpriced {
    /// A coupon is given and the total is under its minimum order amount.
    UnderMinimum,
    /// The total does not fit in 64 bits. Prices and quantities are bounded far below that
    /// (≤ 10^9 × 10^3 × 10^2), but a sum of money is never formed unchecked.
    Overflow,
}

/// Prices lines of `(unit price, quantity)`. `paid = total - discount`, and the discount never
/// exceeds the total.
pub fn price(lines: &[(Won, i64)], coupon: Option<&Terms>) -> Result<Pricing, Unpriced> {
    let total = lines
        .iter()
        .try_fold(Won::ZERO, |sum, &(unit, quantity)| {
            sum.checked_add(unit.checked_mul(quantity)?)
        })
        .ok_or(Unpriced::Overflow)?;
    let discount = match coupon {
        Some(terms) => terms.discount_on(total).ok_or(Unpriced::UnderMinimum)?,
        None => Won::ZERO,
    };
    Ok(Pricing {
        total,
        discount,
        paid: total - discount,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coupon::DiscountType;
    use proptest::prelude::*;

    fn terms(discount_type: DiscountType, discount_value: i64, min: i64) -> Terms {
        Terms {
            discount_type,
            discount_value,
            min_order_amount: Won(min),
        }
    }

    #[test]
    fn without_a_coupon_the_total_is_paid() {
        let pricing = price(&[(Won(1000), 2), (Won(500), 3)], None).unwrap();
        assert_eq!(
            pricing,
            Pricing {
                total: Won(3500),
                discount: Won::ZERO,
                paid: Won(3500)
            }
        );
    }

    #[test]
    fn a_coupon_under_its_minimum_prices_nothing() {
        assert_eq!(
            price(
                &[(Won(1000), 1)],
                Some(&terms(DiscountType::Fixed, 100, 1001))
            ),
            Err(Unpriced::UnderMinimum)
        );
    }

    #[test]
    fn a_total_past_64_bits_is_refused_not_wrapped() {
        assert_eq!(
            price(
                &[(Won(i64::MAX / 2), 1), (Won(i64::MAX / 2), 1), (Won(2), 1)],
                None
            ),
            Err(Unpriced::Overflow)
        );
        assert_eq!(price(&[(Won(i64::MAX), 2)], None), Err(Unpriced::Overflow));
    }

    fn any_terms() -> impl Strategy<Value = Terms> {
        prop_oneof![
            (1i64..=2_000_000_000).prop_map(|v| terms(DiscountType::Fixed, v, 0)),
            (1i64..=100).prop_map(|v| terms(DiscountType::Rate, v, 0)),
        ]
    }

    fn any_lines() -> impl Strategy<Value = Vec<(Won, i64)>> {
        prop::collection::vec(((1i64..=1_000_000_000).prop_map(Won), 1i64..=1000), 1..=100)
    }

    proptest! {
        #[test]
        fn the_discount_never_exceeds_the_total(lines in any_lines(), terms in any_terms()) {
            let pricing = price(&lines, Some(&terms)).unwrap();
            prop_assert!(pricing.discount <= pricing.total);
            prop_assert!(pricing.discount >= Won::ZERO);
        }

        #[test]
        fn paid_is_total_minus_discount(lines in any_lines(), terms in any_terms()) {
            let pricing = price(&lines, Some(&terms)).unwrap();
            prop_assert_eq!(pricing.paid, pricing.total - pricing.discount);
            prop_assert!(pricing.paid >= Won::ZERO);
        }

        #[test]
        fn a_rate_rounds_down(lines in any_lines(), rate in 1i64..=100) {
            let pricing = price(&lines, Some(&terms(DiscountType::Rate, rate, 0))).unwrap();
            let exact = pricing.total.get() as i128 * rate as i128;
            prop_assert!(pricing.discount.get() as i128 * 100 <= exact);
            prop_assert!((pricing.discount.get() as i128 + 1) * 100 > exact);
        }
    }
}
