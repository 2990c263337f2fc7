//! The test kit: what the HTTP tests (`tests/api/`) and the load generator (`loadgen/`) would
//! otherwise each write for themselves.
//!
//! - [`database`]: a fresh database on either backend, removed afterwards;
//! - [`server`]: the real `commerce` binary started on a free loopback port, ready or failed;
//! - [`token`]: tokens the server accepts;
//! - [`fixtures`]: products, coupons and charges created over HTTP;
//! - [`invariants`]: what must hold of stored state whatever happened, each defined once, as SQL
//!   over a database URL of either backend.
//!
//! It uses nothing of the server but its token minting: no `AppState`, no router.

pub mod database;
pub mod fixtures;
pub mod invariants;
pub mod server;
pub mod token;

pub use database::{postgres_admin_url, Database, Raw};
pub use invariants::Check;
