//! The NATS JetStream stream that carries events between instances: the outbox relay
//! publishes to it and the data platform consumes from it.

use async_nats::jetstream::{self, stream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Clone)]
pub struct JetStream {
    context: jetstream::Context,
    stream: String,
    replicas: u8,
    /// Whether the stream is known to exist. A NATS server restarted without its store has
    /// lost it, so this is cleared on every reconnection and whenever a publish finds no stream.
    exists: Arc<AtomicBool>,
    /// Bumped on every (re)connection to the server.
    connections: watch::Receiver<u64>,
}

impl JetStream {
    /// Connects without waiting for the server: while NATS is down, publishes fail and events
    /// wait in the outbox; the client reconnects by itself. `url` may list several servers of
    /// a cluster, comma-separated (the client also learns the others from the one it reaches);
    /// a stream it creates keeps `replicas` copies.
    pub async fn connect(url: &str, stream: &str, replicas: u8) -> anyhow::Result<JetStream> {
        let exists = Arc::new(AtomicBool::new(false));
        let (connected, connections) = watch::channel(0);
        let on_event = {
            let exists = exists.clone();
            move |event| {
                if let async_nats::Event::Connected = event {
                    exists.store(false, Ordering::Release);
                    connected.send_modify(|n| *n += 1);
                }
                std::future::ready(())
            }
        };
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(1000))
            })
            .event_callback(on_event)
            .connect(servers(url)?)
            .await?;
        Ok(JetStream {
            context: jetstream::new(client),
            stream: stream.to_owned(),
            replicas,
            exists,
            connections,
        })
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.context
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The stream, created when missing. It holds `{stream}.>`; its duplicate window drops a
    /// republished event id; messages go after a day (the consumer takes them within
    /// milliseconds), which bounds NATS's store and what a recreated consumer can replay.
    pub async fn stream_handle(&self) -> Result<stream::Stream, String> {
        let config = stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.stream)],
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(24 * 60 * 60),
            num_replicas: usize::from(self.replicas),
            ..Default::default()
        };
        let stream = self
            .context
            .get_or_create_stream(config)
            .await
            .map_err(|e| e.to_string())?;
        self.exists.store(true, Ordering::Release);
        Ok(stream)
    }

    /// Before publishing: creates the stream unless it is known to exist.
    pub async fn ensure_stream(&self) -> Result<(), String> {
        if !self.exists.load(Ordering::Acquire) {
            self.stream_handle().await?;
        }
        Ok(())
    }

    /// A publish found no stream (NATS lost its store): the next `ensure_stream` creates it.
    pub fn stream_lost(&self) {
        self.exists.store(false, Ordering::Release);
    }

    /// Resolves at the next (re)connection to the server.
    pub async fn reconnected(&self) {
        let mut connections = self.connections.clone();
        connections.mark_unchanged();
        // The sender lives as long as the client; if it is gone, there is no next connection.
        if connections.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The servers of a comma-separated list (the client takes a list, not a string of several).
fn servers(url: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    url.split(',')
        .map(|one| {
            one.trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("NATS server `{one}`: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cluster_is_a_comma_separated_list() {
        let servers = super::servers("nats://127.0.0.1:4222, nats://127.0.0.1:4223").unwrap();
        assert_eq!(servers.len(), 2);
        assert!(super::servers("nats://127.0.0.1:4222,nats://x:y").is_err());
    }
}
