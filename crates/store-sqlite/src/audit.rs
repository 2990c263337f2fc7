use async_trait::async_trait;
use rusqlite::params;

use crate::{instant, micros, SqliteConn};
use commerce_domain::page::PageRequest;
use commerce_store::audit::{parse_json, AuditRow, AuditStore, NewAuditRow};
use commerce_store::StoreError;

/// An entry as stored: values as JSON text, the instant in microseconds since the epoch.
type Entry = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
);

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    r.try_into()
}

fn text(value: Option<&serde_json::Value>) -> Option<String> {
    value.map(serde_json::Value::to_string)
}

#[async_trait]
impl AuditStore for SqliteConn {
    async fn insert_audit(&mut self, entry: &NewAuditRow<'_>) -> Result<(), StoreError> {
        self.run(
            "INSERT INTO audit_log (actor, action, resource, before_value, after_value, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                entry.actor,
                entry.action,
                entry.resource,
                text(entry.before),
                text(entry.after),
                micros(entry.at)
            ],
        )?;
        Ok(())
    }

    async fn audit_page(&mut self, page: PageRequest) -> Result<Vec<AuditRow>, StoreError> {
        let entries = self.all(
            "SELECT id, actor, action, resource, before_value, after_value, at
             FROM audit_log WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            [page.after.unwrap_or(i64::MAX), page.fetch_limit()],
            read,
        )?;
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
                    at: instant(at)?,
                })
            })
            .collect()
    }
}
