//! What must hold of stored state whatever happened: the kit's invariants (a balance is its
//! history, a product's stock plus its units in paid orders is what it started with, coupons
//! issued are coupons held, one event per order, holdings are paid units), and what only these tests know: every write
//! answered 2xx is stored.

use crate::harness::Raw;
pub use commerce_test_support::invariants::{
    assert_balances_match_history, assert_coupons_issued_are_held, assert_holdings_are_paid_units,
    assert_one_event_per_order, assert_stock_adds_up,
};

/// Every id a 2xx answer gave is found by `query`, a `SELECT COUNT(*)` that ends in `id IN`:
/// nothing was confirmed that is not stored.
pub async fn assert_all_stored(raw: &Raw, what: &str, query: &str, ids: &[i64]) {
    let mut ids = ids.to_vec();
    // An id confirmed twice (an idempotent replay) is one row.
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return;
    }
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let stored = raw.scalar(&format!("{query} ({})", list.join(", "))).await;
    assert_eq!(
        stored,
        ids.len() as i64,
        "{what}: {} answered 2xx, {stored} of them stored",
        ids.len()
    );
}
