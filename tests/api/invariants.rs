//! What must hold of stored state whatever happened, defined once for every test that checks it:
//! a balance is its history, a product's stock plus its units in paid orders is what it started
//! with, and every write answered 2xx is stored.

use crate::harness::Raw;

/// Every balance equals its history: charges - payments + refunds.
pub async fn assert_balances_match_history(raw: &Raw) {
    let mismatched = raw
        .scalar(
            "SELECT COUNT(*) FROM balances b WHERE b.balance <> (
                 SELECT CAST(COALESCE(SUM(CASE h.kind
                     WHEN 'CHARGE' THEN h.amount
                     WHEN 'PAYMENT' THEN -h.amount
                     WHEN 'REFUND' THEN h.amount END), 0) AS BIGINT)
                 FROM balance_history h WHERE h.user_id = b.user_id)",
        )
        .await;
    assert_eq!(
        mismatched, 0,
        "balances that differ from charges - payments + refunds"
    );
    // The sum above skips a kind it does not name, which would hide its amounts.
    let unknown = raw
        .scalar(
            "SELECT COUNT(*) FROM balance_history
             WHERE kind NOT IN ('CHARGE', 'PAYMENT', 'REFUND')",
        )
        .await;
    assert_eq!(
        unknown, 0,
        "history rows of a kind the invariant does not know"
    );
}

/// For each `(product, initial stock)`: stock + units in PAID orders = initial (a cancelled
/// order gave its units back), and the stock is not negative.
pub async fn assert_stock_adds_up(raw: &Raw, initial: &[(i64, i64)]) {
    for &(product, initial) in initial {
        let (stock, sold) = (
            raw.scalar(&format!("SELECT stock FROM products WHERE id = {product}"))
                .await,
            raw.scalar(&format!(
                "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) FROM order_items i
                 JOIN orders o ON o.id = i.order_id
                 WHERE i.product_id = {product} AND o.status = 'PAID'"
            ))
            .await,
        );
        assert!(stock >= 0, "product {product}: stock {stock}");
        assert_eq!(
            stock + sold,
            initial,
            "product {product}: stock {stock} + {sold} units in paid orders"
        );
    }
}

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
