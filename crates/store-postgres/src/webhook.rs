use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_domain::page::PageRequest;
use commerce_store::webhook::{
    AttemptOutcome, ClaimedDelivery, DeliveryColumns, DeliveryRow, DeliveryStatus, NewDeliveryRow,
    NewWebhookRow, UnfannedEvent, WebhookBacklog, WebhookRow, WebhookStore,
};
use commerce_store::StoreError;

type Webhook = (i64, String, Vec<String>, String, DateTime<Utc>);

fn webhook((id, url, events, secret, created_at): Webhook) -> WebhookRow {
    WebhookRow {
        id,
        url,
        events,
        secret,
        created_at,
    }
}

type Claimed = (i64, String, String, i64, DateTime<Utc>, String, String);

#[async_trait]
impl WebhookStore for PgConn {
    async fn insert_webhook(&mut self, new: NewWebhookRow<'_>) -> Result<WebhookRow, StoreError> {
        let row: Webhook = sqlx::query_as(
            "INSERT INTO webhooks (url, events, secret, created_at) VALUES ($1, $2, $3, $4)
             RETURNING id, url, events, secret, created_at",
        )
        .bind(new.url)
        .bind(new.events)
        .bind(new.secret)
        .bind(new.created_at)
        .fetch_one(&mut self.0)
        .await
        .map_err(db)?;
        Ok(webhook(row))
    }

    async fn webhook(&mut self, id: i64) -> Result<Option<WebhookRow>, StoreError> {
        let row: Option<Webhook> = sqlx::query_as(
            "SELECT id, url, events, secret, created_at FROM webhooks WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut self.0)
        .await
        .map_err(db)?;
        Ok(row.map(webhook))
    }

    async fn webhooks(&mut self, page: PageRequest) -> Result<Vec<WebhookRow>, StoreError> {
        let rows: Vec<Webhook> = sqlx::query_as(
            "SELECT id, url, events, secret, created_at FROM webhooks WHERE id > $1
             ORDER BY id LIMIT $2",
        )
        .bind(page.after.unwrap_or(0))
        .bind(page.fetch_limit())
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(webhook).collect())
    }

    async fn all_webhooks(&mut self) -> Result<Vec<WebhookRow>, StoreError> {
        let rows: Vec<Webhook> =
            sqlx::query_as("SELECT id, url, events, secret, created_at FROM webhooks ORDER BY id")
                .fetch_all(&mut self.0)
                .await
                .map_err(db)?;
        Ok(rows.into_iter().map(webhook).collect())
    }

    async fn delete_webhook(&mut self, id: i64) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        Ok(deleted.rows_affected() == 1)
    }

    /// Locked until the caller's transaction ends: another instance's fan-out skips them.
    async fn events_to_fan_out(&mut self, limit: i64) -> Result<Vec<UnfannedEvent>, StoreError> {
        let rows: Vec<(i64, String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, topic, payload, created_at FROM outbox WHERE fanned_out_at IS NULL
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(id, topic, payload, created_at)| UnfannedEvent {
                id,
                topic,
                payload,
                created_at,
            })
            .collect())
    }

    async fn mark_fanned_out(
        &mut self,
        ids: Option<&[i64]>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Rows the relay holds locked while it sends them are skipped, not waited for: this
        // runs in the committer's transaction. They are marked on a later pass.
        sqlx::query(
            "UPDATE outbox SET fanned_out_at = $1
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE fanned_out_at IS NULL AND ($2::bigint[] IS NULL OR id = ANY($2))
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(now)
        .bind(ids)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn insert_deliveries(
        &mut self,
        rows: &[NewDeliveryRow],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_deliveries
                 (webhook_id, event_id, event, body, status, next_attempt_at, expires_at)
             SELECT w, e, t, b, 'PENDING', $6, x
             FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::timestamptz[])
                 AS d(w, e, t, b, x)
             ON CONFLICT (webhook_id, event_id) DO NOTHING",
        )
        .bind(rows.iter().map(|r| r.webhook_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.body.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.expires_at).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
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
        let rows: Vec<Claimed> = sqlx::query_as(
            "WITH busy AS (
                 SELECT webhook_id, COUNT(*) AS flying FROM webhook_deliveries
                 WHERE status = 'PENDING' AND claimed_until >= $1 GROUP BY webhook_id),
             due AS (
                 SELECT d.id, d.next_attempt_at, COALESCE(b.flying, 0)
                     + ROW_NUMBER() OVER (PARTITION BY d.webhook_id ORDER BY d.next_attempt_at, d.id) AS n
                 FROM webhook_deliveries d LEFT JOIN busy b ON b.webhook_id = d.webhook_id
                 WHERE d.status = 'PENDING' AND d.next_attempt_at <= $1
                   AND (d.claimed_until IS NULL OR d.claimed_until < $1)),
             claimed AS (
                 UPDATE webhook_deliveries SET claimed_until = $2
                 WHERE id IN (
                     SELECT id FROM webhook_deliveries
                     WHERE id IN (SELECT id FROM due WHERE n <= $4
                                  ORDER BY next_attempt_at, id LIMIT $3)
                       AND (claimed_until IS NULL OR claimed_until < $1)
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id, webhook_id, event, body, attempts, expires_at)
             SELECT c.id, c.event, c.body, c.attempts, c.expires_at, w.url, w.secret
             FROM claimed c JOIN webhooks w ON w.id = c.webhook_id",
        )
        .bind(now)
        .bind(until)
        .bind(limit)
        .bind(per_receiver)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, event, body, attempts, expires_at, url, secret)| ClaimedDelivery {
                    id,
                    event,
                    body,
                    attempts,
                    expires_at,
                    url,
                    secret,
                },
            )
            .collect())
    }

    async fn record_attempt(
        &mut self,
        id: i64,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError> {
        let delivered = outcome.status == DeliveryStatus::Delivered;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1,
                 last_status_code = $3, last_error = $4, next_attempt_at = $5,
                 delivered_at = CASE WHEN $6 THEN $7 END, claimed_until = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(outcome.status.as_str())
        .bind(outcome.status_code)
        .bind(outcome.error.as_deref())
        .bind(outcome.next_attempt_at)
        .bind(delivered)
        .bind(outcome.at)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn retry_delivery(
        &mut self,
        id: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = $2,
                 expires_at = $3, delivered_at = NULL
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(expires_at)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(updated.rows_affected() == 1)
    }

    async fn deliveries(
        &mut self,
        webhook_id: i64,
        page: PageRequest,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows: Vec<DeliveryColumns<DateTime<Utc>>> = sqlx::query_as(
            "SELECT id, event_id, event, status, attempts, last_status_code, last_error,
                 next_attempt_at, delivered_at
             FROM webhook_deliveries WHERE webhook_id = $1 AND id < $2
             ORDER BY id DESC LIMIT $3",
        )
        .bind(webhook_id)
        .bind(page.after.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        rows.into_iter()
            .map(|row| DeliveryRow::from_columns(row, Ok))
            .collect()
    }

    async fn webhook_backlog(&mut self) -> Result<WebhookBacklog, StoreError> {
        let (events_to_fan_out, next_due): (bool, Option<DateTime<Utc>>) = sqlx::query_as(
            // Without webhooks events wait unmarked (registration marks them), so none is due.
            "SELECT EXISTS (SELECT 1 FROM webhooks)
                     AND EXISTS (SELECT 1 FROM outbox WHERE fanned_out_at IS NULL),
                 -- A claimed delivery is due again only once its claim expires.
                 (SELECT MIN(GREATEST(next_attempt_at, claimed_until))
                  FROM webhook_deliveries WHERE status = 'PENDING')",
        )
        .fetch_one(&mut self.0)
        .await
        .map_err(db)?;
        Ok(WebhookBacklog {
            events_to_fan_out,
            next_due,
        })
    }
}
