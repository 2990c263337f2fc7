//! `commerce serve --demo`: demo products and coupons, and ready-made tokens.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::ids::UserId;

/// A fresh secret per demo run: tokens printed at start work until the process stops.
pub fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn load(_state: &Arc<AppState>) -> anyhow::Result<()> {
    Ok(())
}

pub fn print_welcome(state: &Arc<AppState>, listen: SocketAddr) {
    let day = Duration::from_secs(24 * 3600);
    let user = state
        .jwt
        .mint(UserId::new(1).expect("1 is an id"), false, day);
    let admin = state
        .jwt
        .mint(UserId::new(1000).expect("1000 is an id"), true, day);
    println!("\ncommerce demo is ready\n  docs:        http://{listen}/docs\n  user token:  {user}\n  admin token: {admin}\n");
}
