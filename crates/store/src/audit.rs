//! The admin audit log: one entry per admin write, stored in the write's own transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::StoreError;
use commerce_domain::page::PageRequest;

/// An entry to store: who did what to which resource, its values before and after, when.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditRow<'a> {
    /// The admin's user id (the token's `sub`).
    pub actor: i64,
    pub action: &'a str,
    pub resource: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
    pub at: DateTime<Utc>,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub id: i64,
    pub actor: i64,
    pub action: String,
    pub resource: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait AuditStore {
    /// Appends an entry; entries are never changed or deleted.
    async fn insert_audit(&mut self, entry: &NewAuditRow<'_>) -> Result<(), StoreError>;

    /// Newest first, before the page's cursor.
    async fn audit_page(&mut self, page: PageRequest) -> Result<Vec<AuditRow>, StoreError>;
}

/// A stored JSON value read back: text that is not JSON is a corrupt row.
pub fn parse_json(text: Option<String>) -> Result<Option<Value>, StoreError> {
    text.map(|text| serde_json::from_str(&text).map_err(|_| StoreError::corrupt(text)))
        .transpose()
}
