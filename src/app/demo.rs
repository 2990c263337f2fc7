//! `commerce serve --demo`: demo products and coupons, and ready-made tokens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::state::AppState;
use crate::clock::Timestamp;
use crate::coupon::{self, DiscountType, NewCoupon};
use crate::ids::UserId;
use crate::page::PageRequest;
use crate::product::{self, NewProduct};

const DEMO_USER: i64 = 1;
const DEMO_ADMIN: i64 = 1000;

/// A fresh secret per demo run: tokens printed at start work until the process stops.
pub fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const PRODUCTS: &[(&str, i64, i64)] = &[
    ("Wireless earbuds", 89_000, 120),
    ("Mechanical keyboard", 129_000, 40),
    ("Stainless tumbler", 19_900, 500),
    ("Running shoes", 99_000, 80),
    ("Linen shirt", 45_000, 150),
    ("Drip coffee set (20)", 15_000, 1000),
    ("Limited sneakers (flash sale)", 159_000, 10),
];

/// The demo product whose sale window opens [`SALE_OPENS_AFTER`] after the catalogue is
/// loaded (at the server's start), at most [`SALE_LIMIT`] per customer.
const SALE_PRODUCT: &str = "Limited sneakers (flash sale)";
const SALE_OPENS_AFTER: chrono::Duration = chrono::Duration::minutes(1);
const SALE_LIMIT: i64 = 2;

/// Loads the demo catalogue into an empty shop, through the same services as the admin API;
/// restarting with `--demo` adds nothing twice.
pub async fn load(state: &Arc<AppState>) -> anyhow::Result<()> {
    let first = PageRequest {
        limit: 1,
        after: None,
    };
    if !product::list(&state.db, first).await?.items.is_empty() {
        return Ok(());
    }
    // Recorded in the audit log as the demo admin's writes.
    let admin = UserId::new(DEMO_ADMIN).expect("positive");
    let opens: Timestamp = (state.clock.now() + SALE_OPENS_AFTER)
        .to_rfc3339()
        .parse()
        .map_err(anyhow::Error::msg)?;
    for &(name, price, stock) in PRODUCTS {
        let new = NewProduct {
            name: name.to_owned(),
            price,
            stock,
            sale_starts_at: (name == SALE_PRODUCT).then_some(opens),
            sale_ends_at: None,
            max_per_user: (name == SALE_PRODUCT).then_some(SALE_LIMIT),
        };
        product::create(&state.db, state.clock.as_ref(), admin, new).await?;
    }
    for (name, discount_type, discount_value, total_quantity) in [
        ("Welcome 5,000 won off", DiscountType::Fixed, 5000, 1000),
        ("Flash sale 10% off", DiscountType::Rate, 10, 100),
    ] {
        let new = demo_coupon(name, discount_type, discount_value, total_quantity);
        coupon::create(&state.db, state.clock.as_ref(), admin, new).await?;
    }
    Ok(())
}

fn demo_coupon(
    name: &str,
    discount_type: DiscountType,
    discount_value: i64,
    total_quantity: i64,
) -> NewCoupon {
    NewCoupon {
        name: name.to_owned(),
        discount_type,
        discount_value,
        total_quantity,
        valid_days: 30,
        min_order_amount: 0,
        issue_starts_at: None,
        issue_ends_at: None,
    }
}

pub fn print_welcome(state: &Arc<AppState>, listen: SocketAddr) {
    let day = Duration::from_secs(24 * 3600);
    let user = state
        .jwt
        .mint(UserId::new(DEMO_USER).expect("positive"), false, day);
    let admin = state
        .jwt
        .mint(UserId::new(DEMO_ADMIN).expect("positive"), true, day);
    println!(
        "\ncommerce demo is ready (tokens valid for 24 h, for this run only)\n\
         \n  docs:        http://{listen}/docs\
         \n  user {DEMO_USER}:      export TOKEN={user}\
         \n  admin:       export ADMIN={admin}\
         \n\n  try:  curl -s http://{listen}/api/v1/products\
         \n        curl -s -H \"Authorization: Bearer $TOKEN\" http://{listen}/api/v1/me/balance\n"
    );
}
