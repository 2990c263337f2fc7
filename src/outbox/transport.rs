//! Where the relay sends events: straight to the consumer it was handed, in this process (the
//! embedded default), or to NATS JetStream, from which the platform consumes.

use async_nats::jetstream::context::{Publish, PublishErrorKind};
use std::time::Duration;
use tracing::Span;

use super::consume::{Consume, Delivered};
use crate::events::jetstream::JetStream;
use crate::store::outbox::Event;
use crate::telemetry;

/// A publish that is not acknowledged in this time counts as failed; the event is retried.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

pub enum Transport {
    InProcess,
    JetStream(Box<JetStream>),
}

impl Transport {
    /// The stream, when events go through NATS: the platform consumes from it.
    pub fn jetstream(&self) -> Option<JetStream> {
        match self {
            Transport::InProcess => None,
            Transport::JetStream(nats) => Some(nats.as_ref().clone()),
        }
    }

    /// Resolves when the transport has connected again after losing its server.
    pub(super) async fn reconnected(&self) {
        match self {
            Transport::InProcess => std::future::pending().await,
            Transport::JetStream(nats) => nats.reconnected().await,
        }
    }

    /// JetStream at `nats_url` (its `stream`, with `replicas`), else in process.
    pub async fn connect(
        nats_url: Option<&str>,
        stream: &str,
        replicas: u8,
    ) -> anyhow::Result<Transport> {
        Ok(match nats_url {
            None => Transport::InProcess,
            Some(url) => {
                Transport::JetStream(Box::new(JetStream::connect(url, stream, replicas).await?))
            }
        })
    }

    /// Delivers events in order, stopping at the first failure so none overtakes an earlier
    /// one. Returns the ids delivered and the failure, if any.
    pub(super) async fn deliver_all(
        &self,
        consumer: &dyn Consume,
        events: &[Event],
    ) -> (Vec<i64>, Option<String>) {
        match self {
            Transport::InProcess => {
                // Each delivery span lasts until the platform has consumed the batch.
                let deliveries: Vec<(Span, Option<String>)> =
                    events.iter().map(|e| delivery(e, "in-process")).collect();
                let batch: Vec<Delivered> = events
                    .iter()
                    .zip(&deliveries)
                    .map(|(e, (_, traceparent))| Delivered {
                        id: e.id,
                        topic: &e.topic,
                        payload: &e.payload,
                        traceparent: traceparent.as_deref(),
                    })
                    .collect();
                match consumer.consume(&batch).await {
                    Ok(()) => (events.iter().map(|e| e.id).collect(), None),
                    Err(error) => (Vec::new(), Some(error)),
                }
            }
            Transport::JetStream(nats) => publish_all(nats, events).await,
        }
    }
}

/// The span of one event's delivery, in the trace of the request that wrote it, and the
/// `traceparent` the consumer continues: the delivery's, or the stored one when this process
/// does not trace.
fn delivery(event: &Event, transport: &'static str) -> (Span, Option<String>) {
    let span = tracing::info_span!(
        "outbox.deliver",
        event_id = event.id,
        topic = %event.topic,
        transport
    );
    telemetry::continue_trace(&span, event.traceparent.as_deref());
    let traceparent = telemetry::traceparent(&span).or_else(|| event.traceparent.clone());
    (span, traceparent)
}

/// Publishes the batch; when the stream turns out to be gone (NATS restarted without its
/// store), creates it again and publishes the rest at once rather than after a backoff.
async fn publish_all(nats: &JetStream, events: &[Event]) -> (Vec<i64>, Option<String>) {
    let (mut delivered, mut failure) = publish_batch(nats, events).await;
    if let Some(Failure::StreamLost) = failure {
        nats.stream_lost();
        let (more, again) = publish_batch(nats, &events[delivered.len()..]).await;
        delivered.extend(more);
        failure = again;
    }
    (delivered, failure.map(|f| f.to_string()))
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("no JetStream stream for the events")]
    StreamLost,
    #[error("{0}")]
    Other(String),
}

/// Sends the whole batch, then awaits the acknowledgements in order: one round trip for the
/// batch rather than one per event. The ids delivered are a prefix of the batch's.
async fn publish_batch(nats: &JetStream, events: &[Event]) -> (Vec<i64>, Option<Failure>) {
    if let Err(error) = nats.ensure_stream().await {
        return (Vec::new(), Some(Failure::Other(error)));
    }
    let mut pending = Vec::with_capacity(events.len());
    let mut failure = None;
    for event in events {
        // The span lasts until JetStream has acknowledged the event.
        let (span, traceparent) = delivery(event, "jetstream");
        let mut message = Publish::build()
            .message_id(event.id.to_string())
            .payload(event.payload.clone().into());
        if let Some(traceparent) = traceparent {
            message = message.header(telemetry::TRACEPARENT, traceparent.as_str());
        }
        let subject = format!("{}.{}", nats.stream(), event.topic);
        match nats.context().send_publish(subject, message).await {
            Ok(ack) => pending.push((event.id, ack, span)),
            Err(error) => {
                failure = Some(Failure::Other(error.to_string()));
                break;
            }
        }
    }
    let mut delivered = Vec::with_capacity(pending.len());
    for (id, ack, _span) in pending {
        match tokio::time::timeout(PUBLISH_TIMEOUT, ack).await {
            Ok(Ok(_)) => delivered.push(id),
            Ok(Err(error)) if error.kind() == PublishErrorKind::StreamNotFound => {
                return (delivered, Some(Failure::StreamLost))
            }
            Ok(Err(error)) => return (delivered, Some(Failure::Other(error.to_string()))),
            Err(_) => {
                return (
                    delivered,
                    Some(Failure::Other(
                        "JetStream did not acknowledge in time".to_owned(),
                    )),
                )
            }
        }
    }
    (delivered, failure)
}
