//! What must hold of stored state whatever happened, each defined once, as SQL that runs on
//! either backend's schema (`migrations/{sqlite,postgres}`):
//!
//! - a balance is its history: charges - payments + refunds, per user;
//! - a product's stock plus its units in paid (not cancelled) orders is what it started with;
//! - a campaign's issued quantity is the coupons users hold, and never above its total;
//! - one `order.paid` event per order and one `order.cancelled` per cancelled order;
//! - what a user holds of a product with a purchase limit is their units of it in paid orders.
//!
//! Each returns a [`Check`] (for a report) and has an `assert_` twin (for a test).

use crate::database::Raw;

/// One invariant and whether it held.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub ok: bool,
    pub what: String,
}

impl Check {
    pub fn new(ok: bool, what: impl Into<String>) -> Check {
        Check {
            ok,
            what: what.into(),
        }
    }

    /// Panics with what broke.
    #[track_caller]
    pub fn assert(self) {
        assert!(self.ok, "invariant broken: {}", self.what);
    }
}

type Result<T> = std::result::Result<T, sqlx::Error>;

/// Every user's balance equals their history: charges - payments + refunds. A history row of
/// a kind the sum does not name would hide its amount, so it breaks the invariant too.
pub async fn balances(raw: &Raw) -> Result<Check> {
    let mismatched = raw
        .try_scalar(
            "SELECT COUNT(*) FROM balances b WHERE b.balance <> (
                 SELECT CAST(COALESCE(SUM(CASE h.kind
                     WHEN 'CHARGE' THEN h.amount
                     WHEN 'PAYMENT' THEN -h.amount
                     WHEN 'REFUND' THEN h.amount END), 0) AS BIGINT)
                 FROM balance_history h WHERE h.user_id = b.user_id)",
        )
        .await?;
    let unknown = raw
        .try_scalar(
            "SELECT COUNT(*) FROM balance_history
             WHERE kind NOT IN ('CHARGE', 'PAYMENT', 'REFUND')",
        )
        .await?;
    Ok(Check::new(
        mismatched == 0 && unknown == 0,
        format!(
            "balance = charges - payments + refunds: {mismatched} balances differ, \
             {unknown} history rows of an unknown kind"
        ),
    ))
}

/// For each `(product, initial stock)`: stock + units in PAID orders = initial (a cancelled
/// order gave its units back), and the stock is not negative.
pub async fn stock(raw: &Raw, initial: &[(i64, i64)]) -> Result<Check> {
    let mut broken = Vec::new();
    for &(product, initial) in initial {
        let stock = raw
            .try_scalar(&format!("SELECT stock FROM products WHERE id = {product}"))
            .await?;
        let sold = raw
            .try_scalar(&format!(
                "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT) FROM order_items i
                 JOIN orders o ON o.id = i.order_id
                 WHERE i.product_id = {product} AND o.status = 'PAID'"
            ))
            .await?;
        if stock < 0 || stock + sold != initial {
            broken.push(format!(
                "product {product}: stock {stock} + {sold} units in paid orders, started with {initial}"
            ));
        }
    }
    Ok(Check::new(
        broken.is_empty(),
        format!(
            "{} products: stock + units in paid orders = initial stock, none below 0{}{}",
            initial.len(),
            if broken.is_empty() { "" } else { "; " },
            broken.join("; ")
        ),
    ))
}

/// Every campaign's issued quantity equals the coupons users hold of it, and is not above its
/// total.
pub async fn coupons(raw: &Raw) -> Result<Check> {
    let off = raw
        .try_scalar(
            "SELECT COUNT(*) FROM coupons c WHERE c.issued_quantity > c.total_quantity
                 OR c.issued_quantity <> (SELECT COUNT(*) FROM user_coupons u WHERE u.coupon_id = c.id)",
        )
        .await?;
    Ok(Check::new(
        off == 0,
        format!("coupons issued = coupons held, within the total: {off} campaigns differ"),
    ))
}

/// One `order.paid` event per order and one `order.cancelled` per cancelled order (while no
/// delivered event has been pruned: the server prunes them days after delivery).
pub async fn events(raw: &Raw) -> Result<Check> {
    let orders = raw.try_scalar("SELECT COUNT(*) FROM orders").await?;
    let cancelled = raw
        .try_scalar("SELECT COUNT(*) FROM orders WHERE status = 'CANCELLED'")
        .await?;
    let paid_events = raw
        .try_scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'order.paid'")
        .await?;
    let cancelled_events = raw
        .try_scalar("SELECT COUNT(*) FROM outbox WHERE topic = 'order.cancelled'")
        .await?;
    Ok(Check::new(
        paid_events == orders && cancelled_events == cancelled,
        format!(
            "one event per order: {paid_events} order.paid for {orders} orders, \
             {cancelled_events} order.cancelled for {cancelled} cancelled"
        ),
    ))
}

/// The units a user holds of each product with a purchase limit (`purchase_holdings`, which the
/// limit is checked against) are their units of it in paid orders: no stored holding differs,
/// and none is missing for a user who bought a limited product.
pub async fn holdings(raw: &Raw) -> Result<Check> {
    let paid = "SELECT CAST(COALESCE(SUM(i.quantity), 0) AS BIGINT)
                FROM order_items i JOIN orders o ON o.id = i.order_id
                WHERE o.status = 'PAID' AND o.user_id = h.user_id AND i.product_id = h.product_id";
    let differ = raw
        .try_scalar(&format!(
            "SELECT COUNT(*) FROM purchase_holdings h WHERE h.quantity <> ({paid})"
        ))
        .await?;
    let missing = raw
        .try_scalar(
            "SELECT COUNT(*) FROM (SELECT DISTINCT o.user_id, i.product_id
                 FROM order_items i JOIN orders o ON o.id = i.order_id
                 JOIN products p ON p.id = i.product_id
                 WHERE o.status = 'PAID' AND p.max_per_user IS NOT NULL) bought
             WHERE NOT EXISTS (SELECT 1 FROM purchase_holdings h
                 WHERE h.user_id = bought.user_id AND h.product_id = bought.product_id)",
        )
        .await?;
    Ok(Check::new(
        differ == 0 && missing == 0,
        format!(
            "holdings of limited products = units in paid orders: {differ} differ, \
             {missing} missing"
        ),
    ))
}

/// Every invariant that needs no knowledge of the run: balances, coupons, events, holdings.
pub async fn all(raw: &Raw) -> Result<Vec<Check>> {
    Ok(vec![
        balances(raw).await?,
        coupons(raw).await?,
        events(raw).await?,
        holdings(raw).await?,
    ])
}

#[track_caller]
fn held(check: Result<Check>) {
    check.expect("the invariant's query").assert()
}

pub async fn assert_balances_match_history(raw: &Raw) {
    held(balances(raw).await)
}

pub async fn assert_stock_adds_up(raw: &Raw, initial: &[(i64, i64)]) {
    held(stock(raw, initial).await)
}

pub async fn assert_coupons_issued_are_held(raw: &Raw) {
    held(coupons(raw).await)
}

pub async fn assert_one_event_per_order(raw: &Raw) {
    held(events(raw).await)
}

pub async fn assert_holdings_are_paid_units(raw: &Raw) {
    held(holdings(raw).await)
}
