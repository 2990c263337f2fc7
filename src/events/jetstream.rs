//! The NATS JetStream stream that carries events between instances: the outbox relay
//! publishes to it and the data platform consumes from it.

use async_nats::jetstream::{self, stream};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

#[derive(Clone)]
pub struct JetStream {
    context: jetstream::Context,
    stream: String,
    created: Arc<OnceCell<()>>,
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
}
