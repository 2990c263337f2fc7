//! An audit entry: what a capability records, and what the API shows.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::ids::UserId;
use crate::store::audit::AuditRow;
use crate::store::StoreError;

/// What an admin did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = AuditAction)]
pub enum Action {
    #[serde(rename = "product.create")]
    ProductCreate,
    #[serde(rename = "product.update")]
    ProductUpdate,
    #[serde(rename = "coupon.create")]
    CouponCreate,
    #[serde(rename = "order.cancel")]
    OrderCancel,
    #[serde(rename = "job.daily_sales")]
    JobDailySales,
    #[serde(rename = "webhook.create")]
    WebhookCreate,
    #[serde(rename = "webhook.delete")]
    WebhookDelete,
}

const ACTIONS: [Action; 7] = [
    Action::ProductCreate,
    Action::ProductUpdate,
    Action::CouponCreate,
    Action::OrderCancel,
    Action::JobDailySales,
    Action::WebhookCreate,
    Action::WebhookDelete,
];

impl Action {
    /// The name the API shows and the database stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ProductCreate => "product.create",
            Action::ProductUpdate => "product.update",
            Action::CouponCreate => "coupon.create",
            Action::OrderCancel => "order.cancel",
            Action::JobDailySales => "job.daily_sales",
            Action::WebhookCreate => "webhook.create",
            Action::WebhookDelete => "webhook.delete",
        }
    }

    fn parse(name: &str) -> Option<Action> {
        ACTIONS.into_iter().find(|a| a.as_str() == name)
    }
}

/// An entry to record, in the transaction of the write it describes.
#[derive(Debug, Clone)]
pub struct Entry {
    pub actor: UserId,
    pub action: Action,
    /// `kind:key`, e.g. `product:12`, `daily_sales:2026-11-23`.
    pub resource: String,
    /// The resource as the API showed it before the write; null when it did not exist.
    pub before: Option<Value>,
    /// The resource as the API shows it after the write.
    pub after: Option<Value>,
    pub at: DateTime<Utc>,
}

/// A resource's API view as the JSON an entry keeps.
pub fn value(view: &impl Serialize) -> Value {
    // API views are structs of numbers, strings and instants: they always serialize.
    serde_json::to_value(view).expect("an API view serializes")
}

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// The admin's user id (the token's `sub`).
    pub actor: i64,
    pub action: Action,
    /// What was written, as `kind:key`.
    #[schema(example = "product:12")]
    pub resource: String,
    /// The resource as the API showed it before; null when the write created it.
    #[schema(value_type = Option<AuditValue>, required = true)]
    pub before: Option<Value>,
    /// The resource as the API showed it after.
    #[schema(value_type = Option<AuditValue>, required = true)]
    pub after: Option<Value>,
    pub at: DateTime<Utc>,
}

/// The document's name for a resource's view in an entry, so that generated clients get one
/// named type instead of an anonymous copy for `before` and another for `after`.
pub struct AuditValue;

impl utoipa::PartialSchema for AuditValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::Object)
            .description(Some(
                "A resource as the API shows it: a product, a coupon campaign, an order, a day's sales summary, or a webhook (never its secret).",
            ))
            .into()
    }
}

impl ToSchema for AuditValue {}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditEntry {
            id: row.id,
            actor: row.actor,
            action: Action::parse(&row.action).ok_or_else(|| StoreError::corrupt(&row.action))?,
            resource: row.resource,
            before: row.before,
            after: row.after,
            at: row.at,
        })
    }
}
