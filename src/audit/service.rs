use crate::page::{Page, PageRequest};
use crate::store::audit::NewAuditRow;
use crate::store::{Conn, Db, StoreError};

use super::model::{AuditEntry, Entry};

/// What the audit log's handlers use.
#[derive(Clone)]
pub struct AuditState {
    pub db: Db,
}

/// Records `entry` in the caller's transaction (or savepoint): it is stored if and only if the
/// write it describes is.
pub async fn record(conn: &mut dyn Conn, entry: &Entry) -> Result<(), StoreError> {
    let row = NewAuditRow {
        actor: entry.actor.get(),
        action: entry.action.as_str(),
        resource: &entry.resource,
        before: entry.before.as_ref(),
        after: entry.after.as_ref(),
        at: entry.at,
    };
    conn.insert_audit(&row).await
}

/// Entries newest first. Read from the primary: an admin sees their own write at once.
pub async fn list(db: &Db, page: PageRequest) -> Result<Page<AuditEntry>, StoreError> {
    let rows = db.read().await?.audit_page(page).await?;
    let entries = rows
        .into_iter()
        .map(AuditEntry::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(entries, page, |e| e.id))
}
