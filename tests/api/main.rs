//! HTTP-level tests: every request goes through the real router to a real database, and every
//! test runs once on SQLite and once on PostgreSQL.

mod harness;

mod audit;
mod auth;
mod balance;
mod cancellation;
mod charge_rush;
mod coupons;
mod dashboard;
mod errors;
mod faults;
mod group_commit;
mod idempotency;
mod invariants;
mod migrations;
mod money_limits;
mod nats_cluster;
mod openapi_clients;
mod ops;
mod orders;
mod own_postgres;
mod platform;
mod platform_nats;
mod platform_recovery;
mod process;
mod products;
mod purchase_limits;
mod replica;
mod sale_windows;
mod stalls;
mod strict_input;
mod traces;
mod transient;
mod webhooks;
mod write_limits;
