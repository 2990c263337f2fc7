//! Webhooks: shops register URLs for order events and receive them signed, at least once,
//! from the same transactional outbox as the data platform (a delivery exists if and only if
//! the event's transaction committed). Registration and sends refuse internal addresses
//! (`guard`); sends happen on tasks of their own, outside any transaction (`worker`).

mod errors;
mod guard;
mod model;
mod routes;
mod service;
mod signing;
mod worker;

pub use routes::routes;
pub use service::WebhookState;
pub use worker::{run, Wake, Worker};
