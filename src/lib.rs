//! commerce: balance, products, first-come-first-served coupons, atomic order payment and a
//! data platform, served over HTTP from one binary on SQLite or PostgreSQL.

pub mod app;
pub mod audit;
pub mod balance;
pub mod config;
pub mod coupon;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod order;
pub mod outbox;
pub mod platform;
pub mod product;
pub mod store;
pub mod telemetry;
pub mod webhook;

pub use commerce_domain::{bounds, clock, ids, money, page};
