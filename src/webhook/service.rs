use std::collections::HashSet;
use std::sync::Arc;
use thiserror::Error;

use super::guard::{self, Target};
use super::model::{CreatedWebhook, Delivery, NewWebhook, Webhook, MAX_URL_CHARS};
use super::signing;
use super::worker::{Wake, GIVE_UP_AFTER};
use crate::audit::{self, Action, Entry};
use crate::clock::Clock;
use crate::ids::{DeliveryId, UserId, WebhookId};
use crate::page::{Page, PageRequest};
use crate::store::webhook::NewWebhookRow;
use crate::store::{Db, StoreError};

#[derive(Debug, Error)]
pub enum WebhookError {
    #[error("{0}")]
    Invalid(String),
    #[error("webhook {0} does not exist")]
    NotFound(WebhookId),
    #[error("delivery {0} does not exist")]
    DeliveryNotFound(DeliveryId),
    #[error(transparent)]
    Db(#[from] StoreError),
}

crate::store::store_fault!(WebhookError);

/// What the webhook handlers use.
#[derive(Clone)]
pub struct WebhookState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// Loopback and private receivers are allowed (`COMMERCE_WEBHOOK_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// Wakes this instance's delivery worker.
    pub wake: Wake,
}

/// Registers a webhook, recorded in the audit log (without its secret) as `actor`'s.
pub async fn create(
    app: &WebhookState,
    actor: UserId,
    new: NewWebhook,
) -> Result<CreatedWebhook, WebhookError> {
    if new.events.is_empty() {
        return Err(WebhookError::Invalid(
            "events must name at least one event".into(),
        ));
    }
    if new.events.iter().collect::<HashSet<_>>().len() != new.events.len() {
        return Err(WebhookError::Invalid(
            "events must not repeat an event".into(),
        ));
    }
    if new.url.chars().count() > MAX_URL_CHARS {
        return Err(WebhookError::Invalid(format!(
            "{} must be at most {MAX_URL_CHARS} characters",
            guard::REFUSAL
        )));
    }
    let (url, target) = guard::parse(&new.url).map_err(WebhookError::Invalid)?;
    match target {
        Target::Ip(ip) => guard::refusal(ip, app.allow_private).map_or(Ok(()), Err),
        Target::Name(name) => guard::resolve(
            &name,
            url.port_or_known_default().unwrap_or(0),
            app.allow_private,
        )
        .await
        .map(drop),
    }
    .map_err(WebhookError::Invalid)?;
    let now = app.clock.now();
    let secret = signing::new_secret();
    let new = Arc::new((url.to_string(), new.events, secret));
    app.db
        .write(move |conn| {
            let new = new.clone();
            Box::pin(async move {
                let (url, events, secret) = new.as_ref();
                let events: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
                let row = NewWebhookRow {
                    url,
                    events: &events,
                    secret,
                    created_at: now,
                };
                // A webhook hears of events committed after it: the earlier ones, left unmarked
                // while there was no webhook to fan them out to, are marked here.
                conn.mark_fanned_out(None, now).await?;
                let created = CreatedWebhook::try_from(conn.insert_webhook(row).await?)?;
                let entry = Entry {
                    actor,
                    action: Action::WebhookCreate,
                    resource: format!("webhook:{}", created.webhook.id),
                    before: None,
                    after: Some(audit::value(&created.webhook)),
                    at: now,
                };
                audit::record(conn, &entry).await?;
                Ok(created)
            })
        })
        .await
}

/// Webhooks by id, without secrets. Read from the primary: an admin sees their own write.
pub async fn list(db: &Db, page: PageRequest) -> Result<Page<Webhook>, WebhookError> {
    let rows = db.read().await?.webhooks(page).await?;
    let hooks = rows
        .into_iter()
        .map(Webhook::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(hooks, page, |w| w.id))
}

/// Deletes a webhook and its deliveries (pending ones are never sent; one in flight may still
/// arrive), recorded in the audit log with the webhook as it was.
pub async fn delete(
    db: &Db,
    clock: &dyn Clock,
    actor: UserId,
    id: WebhookId,
) -> Result<(), WebhookError> {
    let now = clock.now();
    db.write(move |conn| {
        Box::pin(async move {
            let before = conn
                .webhook(id.get())
                .await?
                .ok_or(WebhookError::NotFound(id))?;
            let before = Webhook::try_from(before)?;
            conn.delete_webhook(id.get()).await?;
            let entry = Entry {
                actor,
                action: Action::WebhookDelete,
                resource: format!("webhook:{id}"),
                before: Some(audit::value(&before)),
                after: None,
                at: now,
            };
            audit::record(conn, &entry).await?;
            Ok(())
        })
    })
    .await
}

/// A webhook's deliveries, newest first.
pub async fn deliveries(
    db: &Db,
    id: WebhookId,
    page: PageRequest,
) -> Result<Page<Delivery>, WebhookError> {
    let mut conn = db.read().await?;
    if conn.webhook(id.get()).await?.is_none() {
        return Err(WebhookError::NotFound(id));
    }
    let rows = conn.deliveries(id.get(), page).await?;
    let deliveries = rows
        .into_iter()
        .map(Delivery::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_rows(deliveries, page, |d| d.id))
}

/// Makes a delivery `PENDING` and due now, with a fresh period of retries, and wakes the
/// worker to try it at once.
pub async fn retry(app: &WebhookState, id: DeliveryId) -> Result<(), WebhookError> {
    let now = app.clock.now();
    let found = app
        .db
        .write(move |conn| {
            Box::pin(async move {
                conn.retry_delivery(id.get(), now, now + GIVE_UP_AFTER)
                    .await
            })
        })
        .await?;
    if !found {
        return Err(WebhookError::DeliveryNotFound(id));
    }
    app.wake.notify();
    Ok(())
}
