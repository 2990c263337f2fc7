use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::product::json_ids;
use crate::{instant, json_rows, micros, SqliteConn};
use commerce_domain::page::PageRequest;
use commerce_store::webhook::{
    AttemptOutcome, ClaimedDelivery, DeliveryColumns, DeliveryRow, DeliveryStatus, NewDeliveryRow,
    NewWebhookRow, UnfannedEvent, WebhookBacklog, WebhookRow, WebhookStore,
};
use commerce_store::StoreError;

/// A webhook as stored: its topics as a JSON array, the instant in microseconds.
type Webhook = (i64, String, String, String, i64);

const WEBHOOK: &str = "SELECT id, url, events, secret, created_at FROM webhooks";

fn read_webhook(r: &rusqlite::Row<'_>) -> rusqlite::Result<Webhook> {
    r.try_into()
}

fn webhook((id, url, events, secret, created_at): Webhook) -> Result<WebhookRow, StoreError> {
    Ok(WebhookRow {
        id,
        events: serde_json::from_str(&events).map_err(|_| StoreError::corrupt(&events))?,
        url,
        secret,
        created_at: instant(created_at)?,
    })
}

fn at(micros: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    micros.map(instant).transpose()
}

type Claimed = (i64, String, String, i64, i64, String, String);

#[async_trait]
impl WebhookStore for SqliteConn {
    async fn insert_webhook(&mut self, new: NewWebhookRow<'_>) -> Result<WebhookRow, StoreError> {
        let events = serde_json::to_string(new.events).map_err(StoreError::corrupt)?;
        let row = self.one(
            "INSERT INTO webhooks (url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4)
             RETURNING id, url, events, secret, created_at",
            params![new.url, events, new.secret, micros(new.created_at)],
            read_webhook,
        )?;
        webhook(row)
    }

    async fn webhook(&mut self, id: i64) -> Result<Option<WebhookRow>, StoreError> {
        self.optional(&format!("{WEBHOOK} WHERE id = ?1"), [id], read_webhook)?
            .map(webhook)
            .transpose()
    }

    async fn webhooks(&mut self, page: PageRequest) -> Result<Vec<WebhookRow>, StoreError> {
        self.all(
            &format!("{WEBHOOK} WHERE id > ?1 ORDER BY id LIMIT ?2"),
            [page.after.unwrap_or(0), page.fetch_limit()],
            read_webhook,
        )?
        .into_iter()
        .map(webhook)
        .collect()
    }

    async fn all_webhooks(&mut self) -> Result<Vec<WebhookRow>, StoreError> {
        self.all(&format!("{WEBHOOK} ORDER BY id"), [], read_webhook)?
            .into_iter()
            .map(webhook)
            .collect()
    }

    async fn delete_webhook(&mut self, id: i64) -> Result<bool, StoreError> {
        self.run("DELETE FROM webhook_deliveries WHERE webhook_id = ?1", [id])?;
        Ok(self.run("DELETE FROM webhooks WHERE id = ?1", [id])? == 1)
    }

    /// No row locks in SQLite: its single writer keeps two fan-outs apart.
    async fn events_to_fan_out(&mut self, limit: i64) -> Result<Vec<UnfannedEvent>, StoreError> {
        let rows: Vec<(i64, String, String, i64)> = self.all(
            "SELECT id, topic, payload, created_at FROM outbox WHERE fanned_out_at IS NULL
             ORDER BY id LIMIT ?1",
            [limit],
            |r| r.try_into(),
        )?;
        rows.into_iter()
            .map(|(id, topic, payload, created_at)| {
                Ok(UnfannedEvent {
                    id,
                    topic,
                    payload,
                    created_at: instant(created_at)?,
                })
            })
            .collect()
    }

    async fn mark_fanned_out(
        &mut self,
        ids: Option<&[i64]>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.run(
            "UPDATE outbox SET fanned_out_at = ?1
             WHERE fanned_out_at IS NULL
               AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2)))",
            params![micros(now), ids.map(|ids| json_ids(ids.iter().copied()))],
        )?;
        Ok(())
    }

    async fn insert_deliveries(
        &mut self,
        rows: &[NewDeliveryRow],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.run(
            "INSERT INTO webhook_deliveries
                 (webhook_id, event_id, event, body, status, next_attempt_at, expires_at)
             SELECT d.value ->> 0, d.value ->> 1, d.value ->> 2, d.value ->> 3, 'PENDING', ?2,
                 d.value ->> 4
             FROM json_each(?1) AS d WHERE true
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
            params![
                json_rows(rows.iter().map(|r| (
                    r.webhook_id,
                    r.event_id,
                    &r.event,
                    &r.body,
                    micros(r.expires_at)
                ))),
                micros(now)
            ],
        )?;
        Ok(())
    }

    async fn claim_deliveries(
        &mut self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
        per_receiver: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // `n`: a due delivery's place among its webhook's, after the ones already in flight.
        let ids: Vec<i64> = self.all(
            "WITH busy AS (
                 SELECT webhook_id, COUNT(*) AS flying FROM webhook_deliveries
                 WHERE status = 'PENDING' AND claimed_until >= ?1 GROUP BY webhook_id),
             due AS (
                 SELECT d.id, d.next_attempt_at, COALESCE(b.flying, 0)
                     + ROW_NUMBER() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.id) AS n
                 FROM webhook_deliveries d LEFT JOIN busy b ON b.webhook_id = d.webhook_id
                 WHERE d.status = 'PENDING' AND d.next_attempt_at <= ?1
                   AND (d.claimed_until IS NULL OR d.claimed_until < ?1))
             UPDATE webhook_deliveries SET claimed_until = ?2
             WHERE id IN (SELECT id FROM due WHERE n <= ?4 ORDER BY next_attempt_at, id LIMIT ?3)
             RETURNING id",
            params![micros(now), micros(until), limit, per_receiver],
            |r| r.get(0),
        )?;
        let rows: Vec<Claimed> = self.all(
            "SELECT d.id, d.event, d.body, d.attempts, d.expires_at, w.url, w.secret
             FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
             WHERE d.id IN (SELECT value FROM json_each(?1))",
            [json_ids(ids)],
            |r| r.try_into(),
        )?;
        rows.into_iter()
            .map(|(id, event, body, attempts, expires_at, url, secret)| {
                Ok(ClaimedDelivery {
                    id,
                    event,
                    body,
                    attempts,
                    expires_at: instant(expires_at)?,
                    url,
                    secret,
                })
            })
            .collect()
    }

    async fn record_attempt(
        &mut self,
        id: i64,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError> {
        let delivered = outcome.status == DeliveryStatus::Delivered;
        self.run(
            "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1,
                 last_status_code = ?3, last_error = ?4, next_attempt_at = ?5,
                 delivered_at = CASE WHEN ?6 THEN ?7 END, claimed_until = NULL
             WHERE id = ?1",
            params![
                id,
                outcome.status.as_str(),
                outcome.status_code,
                outcome.error,
                outcome.next_attempt_at.map(micros),
                delivered,
                micros(outcome.at)
            ],
        )?;
        Ok(())
    }

    async fn retry_delivery(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = self.run(
            "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = ?2,
                 expires_at = ?3, delivered_at = NULL
             WHERE id = ?1",
            params![id, micros(now), micros(expires_at)],
        )?;
        Ok(updated == 1)
    }

    async fn deliveries(
        &mut self,
        webhook_id: i64,
        page: PageRequest,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows: Vec<DeliveryColumns<i64>> = self.all(
            "SELECT id, event_id, event, status, attempts, last_status_code, last_error,
                 next_attempt_at, delivered_at
             FROM webhook_deliveries WHERE webhook_id = ?1 AND id < ?2
             ORDER BY id DESC LIMIT ?3",
            [
                webhook_id,
                page.after.unwrap_or(i64::MAX),
                page.fetch_limit(),
            ],
            |r| r.try_into(),
        )?;
        rows.into_iter()
            .map(|row| DeliveryRow::from_columns(row, instant))
            .collect()
    }

    async fn webhook_backlog(&mut self) -> Result<WebhookBacklog, StoreError> {
        let (events_to_fan_out, next_due): (bool, Option<i64>) = self.one(
            // Without webhooks events wait unmarked (registration marks them), so none is due.
            "SELECT EXISTS (SELECT 1 FROM webhooks)
                     AND EXISTS (SELECT 1 FROM outbox WHERE fanned_out_at IS NULL),
                 -- A claimed delivery is due again only once its claim expires.
                 (SELECT MIN(MAX(next_attempt_at, COALESCE(claimed_until, next_attempt_at)))
                  FROM webhook_deliveries WHERE status = 'PENDING')",
            [],
            |r| r.try_into(),
        )?;
        Ok(WebhookBacklog {
            events_to_fan_out,
            next_due: at(next_due)?,
        })
    }
}
