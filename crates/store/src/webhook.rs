//! Webhooks: the shops' subscriptions, their deliveries (one per event and subscribed webhook,
//! created by the fan-out from the outbox), and the claims that keep two instances from sending
//! one delivery at the same time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::StoreError;
use commerce_domain::page::PageRequest;

/// A webhook as stored. `events` are the topics it is subscribed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    pub created_at: DateTime<Utc>,
}

/// A webhook to store.
#[derive(Debug, Clone, Copy)]
pub struct NewWebhookRow<'a> {
    pub url: &'a str,
    pub events: &'a [&'a str],
    pub secret: &'a str,
    pub created_at: DateTime<Utc>,
}

/// An outbox event the fan-out has not handled yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfannedEvent {
    pub id: i64,
    pub topic: String,
    pub payload: String,
    pub created_at: DateTime<Utc>,
}

/// A delivery to create: due at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeliveryRow {
    pub webhook_id: i64,
    pub event_id: i64,
    pub event: String,
    /// The request body, built once per event.
    pub body: String,
    /// Failed attempts after this instant make the delivery `FAILED`.
    pub expires_at: DateTime<Utc>,
}

/// A delivery's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "PENDING",
            DeliveryStatus::Delivered => "DELIVERED",
            DeliveryStatus::Failed => "FAILED",
        }
    }

    pub fn parse(name: &str) -> Result<DeliveryStatus, StoreError> {
        match name {
            "PENDING" => Ok(DeliveryStatus::Pending),
            "DELIVERED" => Ok(DeliveryStatus::Delivered),
            "FAILED" => Ok(DeliveryStatus::Failed),
            other => Err(StoreError::corrupt(other)),
        }
    }
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: i64,
    pub event: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery's columns as the log reads them, its two instants as the backend stores them.
pub type DeliveryColumns<I> = (
    i64,
    i64,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<I>,
    Option<I>,
);

impl DeliveryRow {
    /// The row from its columns, the backend's stored instants converted by `instant`.
    pub fn from_columns<I>(
        columns: DeliveryColumns<I>,
        instant: impl Fn(I) -> Result<DateTime<Utc>, StoreError>,
    ) -> Result<DeliveryRow, StoreError> {
        let (id, event_id, event, status, attempts, code, error, next, delivered) = columns;
        Ok(DeliveryRow {
            id,
            event_id,
            event,
            status: DeliveryStatus::parse(&status)?,
            attempts,
            last_status_code: code,
            last_error: error,
            next_attempt_at: next.map(&instant).transpose()?,
            delivered_at: delivered.map(&instant).transpose()?,
        })
    }
}

/// A delivery claimed for an attempt, with what sending it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub event: String,
    pub body: String,
    pub attempts: i64,
    pub expires_at: DateTime<Utc>,
    pub url: String,
    pub secret: String,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub status: DeliveryStatus,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    /// `Some` while the delivery stays `PENDING`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// What waits for the webhook worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookBacklog {
    /// Events wait for the fan-out and a webhook exists to fan them out to.
    pub events_to_fan_out: bool,
    /// The earliest `next_attempt_at` of the pending deliveries.
    pub next_due: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait WebhookStore {
    async fn insert_webhook(&mut self, new: NewWebhookRow<'_>) -> Result<WebhookRow, StoreError>;

    async fn webhook(&mut self, id: i64) -> Result<Option<WebhookRow>, StoreError>;

    /// By id.
    async fn webhooks(&mut self, page: PageRequest) -> Result<Vec<WebhookRow>, StoreError>;

    /// Every webhook, for the fan-out (a shop has a handful).
    async fn all_webhooks(&mut self) -> Result<Vec<WebhookRow>, StoreError>;

    /// Deletes the webhook and its deliveries; whether it existed.
    async fn delete_webhook(&mut self, id: i64) -> Result<bool, StoreError>;

    /// The oldest events not yet fanned out; on PostgreSQL locked for the caller's
    /// transaction, skipping those another instance's fan-out holds.
    async fn events_to_fan_out(&mut self, limit: i64) -> Result<Vec<UnfannedEvent>, StoreError>;

    /// Marks events fanned out; `None` marks every event not yet fanned out (at a webhook's
    /// registration: they came before it, and no webhook needed them). On PostgreSQL rows another transaction holds (the
    /// relay's) are skipped, never waited for.
    async fn mark_fanned_out(
        &mut self,
        ids: Option<&[i64]>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Creates deliveries, due at `now`; one already there for its event and webhook is kept.
    async fn insert_deliveries(
        &mut self,
        rows: &[NewDeliveryRow],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` pending deliveries due at `now` whose claim is absent or expired,
    /// until `until`, the oldest due first, leaving any webhook at most `per_receiver` claimed
    /// (by any instance) at once, so one slow receiver cannot take every sender; on PostgreSQL
    /// skipping rows another transaction holds.
    async fn claim_deliveries(
        &mut self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
        per_receiver: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;

    /// Records an attempt's outcome and releases the claim (nothing when the delivery was
    /// deleted meanwhile).
    async fn record_attempt(&mut self, id: i64, outcome: &AttemptOutcome)
        -> Result<(), StoreError>;

    /// Makes a delivery `PENDING` and due at `now`, failing only after `expires_at`; whether it
    /// exists.
    async fn retry_delivery(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The webhook's deliveries, newest first, before the page's cursor.
    async fn deliveries(
        &mut self,
        webhook_id: i64,
        page: PageRequest,
    ) -> Result<Vec<DeliveryRow>, StoreError>;

    async fn webhook_backlog(&mut self) -> Result<WebhookBacklog, StoreError>;
}
