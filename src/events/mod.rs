//! Events the order module publishes and the data platform consumes (`commerce_domain::events`,
//! owned by neither), and the NATS JetStream that carries them between instances.

pub use commerce_domain::events::*;

pub mod jetstream;
