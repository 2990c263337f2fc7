//! Taking stock: the product's rule, decided against product rows the caller has locked.

use crate::store::product::ProductRow;

/// Not enough stock: how many units there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    pub available: i64,
}

/// Whether `product` has `quantity` units to take.
pub fn check(product: &ProductRow, quantity: i64) -> Result<(), Short> {
    if product.stock < quantity {
        return Err(Short {
            available: product.stock,
        });
    }
    Ok(())
}

/// Takes `quantity` units, once [`check`] said they are there (the caller decides every line
/// before taking any, so a refused order takes nothing).
pub fn take(product: &mut ProductRow, quantity: i64) {
    debug_assert!(product.stock >= quantity, "stock taken without a check");
    product.stock -= quantity;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_is_taken_only_when_there() {
        let mut lamp = super::super::lamp();
        assert_eq!(check(&lamp, 4), Err(Short { available: 3 }));
        assert_eq!(check(&lamp, 3), Ok(()));
        take(&mut lamp, 3);
        assert_eq!(check(&lamp, 1), Err(Short { available: 0 }));
    }
}
