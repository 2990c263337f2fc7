//! Who takes the events in this process: the relay is handed a consumer (the data platform)
//! instead of knowing one.

use async_trait::async_trait;

/// An event as delivered: its id (the idempotency key), topic, payload and the W3C
/// `traceparent` of its delivery, which its consumption continues.
pub struct Delivered<'a> {
    pub id: i64,
    pub topic: &'a str,
    pub payload: &'a str,
    pub traceparent: Option<&'a str>,
}

/// Applies delivered events, each once however often it is delivered; all or none of a batch.
#[async_trait]
pub trait Consume: Send + Sync {
    async fn consume(&self, events: &[Delivered<'_>]) -> Result<(), String>;
}
