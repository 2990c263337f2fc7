//! Webhooks and deliveries as the API shows them, and the registration request.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{Array, Object, Ref};
use utoipa::ToSchema;

use crate::bounds;
use crate::events::{ORDER_CANCELLED, ORDER_PAID};
use crate::store::webhook::{DeliveryRow, DeliveryStatus, WebhookRow};
use crate::store::StoreError;

/// Longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2048;

/// An event a webhook can subscribe to: the outbox topics of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[schema(as = WebhookEvent)]
pub enum EventName {
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
}

impl EventName {
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::OrderPaid => ORDER_PAID,
            EventName::OrderCancelled => ORDER_CANCELLED,
        }
    }

    pub fn parse(topic: &str) -> Option<EventName> {
        [EventName::OrderPaid, EventName::OrderCancelled]
            .into_iter()
            .find(|e| e.as_str() == topic)
    }
}

/// `POST /admin/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http` or `https`; its host must resolve to allowed addresses only.
    #[schema(schema_with = url)]
    pub url: String,
    /// One or both events, each at most once.
    #[schema(schema_with = events)]
    pub events: Vec<EventName>,
}

fn url() -> Object {
    bounds::described(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_URL_CHARS))
            .pattern(Some("^[hH][tT][tT][pP][sS]?://"))
            .build(),
        "`http` or `https`; its host must resolve to allowed addresses only.",
    )
}

fn events() -> Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("WebhookEvent"))
        .min_items(Some(1))
        .max_items(Some(2))
        .unique_items(true)
        .description(Some("One or both events, each at most once."))
        .build()
}

/// A registered webhook (its secret is shown only when it is created).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    #[schema(schema_with = bounds::int::<1, { i64::MAX }>)]
    pub id: i64,
    pub url: String,
    pub events: Vec<EventName>,
    pub created_at: DateTime<Utc>,
}

/// A webhook just created, with its signing secret (shown only here).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing key: 32 random bytes, hex. Sign with its characters as shown.
    pub secret: String,
}

impl TryFrom<WebhookRow> for CreatedWebhook {
    type Error = StoreError;
    fn try_from(row: WebhookRow) -> Result<Self, StoreError> {
        let events = row
            .events
            .iter()
            .map(|e| EventName::parse(e).ok_or_else(|| StoreError::corrupt(e)))
            .collect::<Result<_, _>>()?;
        Ok(CreatedWebhook {
            webhook: Webhook {
                id: row.id,
                url: row.url,
                events,
                created_at: row.created_at,
            },
            secret: row.secret,
        })
    }
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;
    fn try_from(row: WebhookRow) -> Result<Self, StoreError> {
        CreatedWebhook::try_from(row).map(|created| created.webhook)
    }
}

/// One event's delivery to a webhook.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct Delivery {
    #[schema(schema_with = bounds::int::<1, { i64::MAX }>)]
    pub id: i64,
    /// The event's id, also the body's `id`: receivers de-duplicate on it.
    #[schema(schema_with = bounds::int::<1, { i64::MAX }>)]
    pub event_id: i64,
    pub event: EventName,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    #[schema(schema_with = bounds::int::<0, { i64::MAX }>)]
    pub attempts: i64,
    /// The HTTP status of the last attempt; null before any or when none came back.
    #[schema(required = true)]
    pub last_status_code: Option<i64>,
    /// Why the last attempt failed; null when it did not.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When the next attempt is due; null unless `PENDING`.
    #[schema(required = true)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// null unless `DELIVERED`.
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(row: DeliveryRow) -> Result<Self, StoreError> {
        Ok(Delivery {
            id: row.id,
            event_id: row.event_id,
            event: EventName::parse(&row.event).ok_or_else(|| StoreError::corrupt(&row.event))?,
            status: row.status,
            attempts: row.attempts,
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            next_attempt_at: row.next_attempt_at,
            delivered_at: row.delivered_at,
        })
    }
}
