//! Where the relay sends events: straight to the data platform in this process (the embedded
//! default), or to NATS JetStream, from which the platform consumes.

use async_nats::jetstream::{self, context::Publish, stream};
use std::time::Duration;
use tokio::sync::OnceCell;

use super::Event;
use crate::app::AppState;
use crate::config::Settings;
use crate::platform;

/// A publish that is not acknowledged in this time counts as failed; the event is retried.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

pub enum Transport {
    InProcess,
    JetStream(Box<JetStream>),
}

#[derive(Clone)]
pub struct JetStream {
    context: jetstream::Context,
    stream: String,
    created: std::sync::Arc<OnceCell<()>>,
}

impl Transport {
    pub async fn from_settings(settings: &Settings) -> anyhow::Result<Transport> {
        Ok(match &settings.nats_url {
            None => Transport::InProcess,
            Some(url) => Transport::JetStream(Box::new(
                JetStream::connect(url, &settings.nats_stream).await?,
            )),
        })
    }

    /// Delivers events in order, stopping at the first failure so none overtakes an earlier
    /// one. Returns the ids delivered and the failure, if any.
    pub(super) async fn deliver_all(
        &self,
        state: &AppState,
        events: &[Event],
    ) -> (Vec<i64>, Option<String>) {
        match self {
            Transport::InProcess => {
                let batch: Vec<platform::Delivered> = events
                    .iter()
                    .map(|e| platform::Delivered {
                        id: e.id,
                        topic: &e.topic,
                        payload: &e.payload,
                    })
                    .collect();
                match platform::consume(state, &batch).await {
                    Ok(()) => (events.iter().map(|e| e.id).collect(), None),
                    Err(error) => (Vec::new(), Some(error.to_string())),
                }
            }
            Transport::JetStream(nats) => nats.publish_all(events).await,
        }
    }
}

impl JetStream {
    /// Connects without waiting for the server: while NATS is down, publishes fail and events
    /// wait in the outbox; the client reconnects by itself.
    pub async fn connect(url: &str, stream: &str) -> anyhow::Result<JetStream> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(1000))
            })
            .connect(url)
            .await?;
        Ok(JetStream {
            context: jetstream::new(client),
            stream: stream.to_owned(),
            created: Default::default(),
        })
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The stream holds `{stream}.>`; its duplicate window drops a republished event id.
    pub async fn ensure_stream(&self) -> Result<(), String> {
        self.created
            .get_or_try_init(|| async {
                let config = stream::Config {
                    name: self.stream.clone(),
                    subjects: vec![format!("{}.>", self.stream)],
                    duplicate_window: Duration::from_secs(120),
                    ..Default::default()
                };
                self.context
                    .get_or_create_stream(config)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .await
            .map(|_| ())
    }

    /// Sends the whole batch, then awaits the acknowledgements in order: one round trip for
    /// the batch rather than one per event.
    async fn publish_all(&self, events: &[Event]) -> (Vec<i64>, Option<String>) {
        if let Err(error) = self.ensure_stream().await {
            return (Vec::new(), Some(error));
        }
        let mut pending = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in events {
            let message = Publish::build()
                .message_id(event.id.to_string())
                .payload(event.payload.clone().into());
            let subject = format!("{}.{}", self.stream, event.topic);
            match self.context.send_publish(subject, message).await {
                Ok(ack) => pending.push((event.id, ack)),
                Err(error) => {
                    failure = Some(error.to_string());
                    break;
                }
            }
        }
        let mut delivered = Vec::with_capacity(pending.len());
        for (id, ack) in pending {
            match tokio::time::timeout(PUBLISH_TIMEOUT, ack).await {
                Ok(Ok(_)) => delivered.push(id),
                Ok(Err(error)) => return (delivered, Some(error.to_string())),
                Err(_) => {
                    return (
                        delivered,
                        Some("JetStream did not acknowledge in time".to_owned()),
                    )
                }
            }
        }
        (delivered, failure)
    }
}
