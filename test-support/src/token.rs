//! Tokens the server accepts, minted as its own `commerce token` command mints them.

use commerce::ids::UserId;
use std::time::Duration;

/// Long enough for any test or bench run.
pub const TTL: Duration = Duration::from_secs(6 * 3600);

/// The user every fixture acts as when it needs an admin.
pub const ADMIN: i64 = 999_999;

/// A user's token; `user` must be positive.
pub fn user(secret: &str, user: i64) -> String {
    mint(secret, user, false)
}

/// An admin's token.
pub fn admin(secret: &str) -> String {
    mint(secret, ADMIN, true)
}

pub fn mint(secret: &str, user: i64, admin: bool) -> String {
    let user = UserId::new(user).expect("user ids are positive");
    commerce::app::token(secret, user, admin, TTL)
}
