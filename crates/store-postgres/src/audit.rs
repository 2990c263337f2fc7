use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_domain::page::PageRequest;
use commerce_store::audit::{parse_json, AuditRow, AuditStore, NewAuditRow};
use commerce_store::StoreError;

/// An entry as stored; the values come back as JSON text (sqlx's `json` feature is not built).
type Entry = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
);

fn text(value: Option<&serde_json::Value>) -> Option<String> {
    value.map(serde_json::Value::to_string)
}

#[async_trait]
impl AuditStore for PgConn {
    async fn insert_audit(&mut self, entry: &NewAuditRow<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (actor, action, resource, before_value, after_value, at)
             VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)",
        )
        .bind(entry.actor)
        .bind(entry.action)
        .bind(entry.resource)
        .bind(text(entry.before))
        .bind(text(entry.after))
        .bind(entry.at)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn audit_page(&mut self, page: PageRequest) -> Result<Vec<AuditRow>, StoreError> {
        let entries: Vec<Entry> = sqlx::query_as(
            "SELECT id, actor, action, resource, before_value::text, after_value::text, at
             FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(page.after.unwrap_or(i64::MAX))
        .bind(page.fetch_limit())
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        entries
            .into_iter()
            .map(|(id, actor, action, resource, before, after, at)| {
                Ok(AuditRow {
                    id,
                    actor,
                    action,
                    resource,
                    before: parse_json(before)?,
                    after: parse_json(after)?,
                    at,
                })
            })
            .collect()
    }
}
