use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{CreatedWebhook, Delivery, NewWebhook, Webhook};
use super::service::{self, WebhookState};
use crate::http::extract::{IdParam, PageParams, Paging};
use crate::http::responses::{problems, BodyFaults, BAD_ID, BAD_PAGE};
use crate::http::{Admin, Created, Json, JwtKeys, PathId, Problem};
use crate::ids::{DeliveryId, WebhookId};
use crate::page::Page;

pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    WebhookState: FromRef<S>,
    JwtKeys: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(delete_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(retry_delivery))
}

problems!(CreateWebhookProblems for ADMIN {
    ValidationFailed: "a malformed body, an event named twice, or a refused address (the detail starts with `webhook address`): not http or https, a name that does not resolve, a loopback or private address unless allowed, a link-local or cloud-metadata address always",
});

/// Register a webhook (admin); its signing secret is shown only in this answer.
#[utoipa::path(post, path = "/admin/webhooks", tag = "admin", security(("bearer" = [])),
    request_body = NewWebhook,
    responses(
        (status = 201, body = CreatedWebhook),
        CreateWebhookProblems,
        BodyFaults,
    ))]
async fn create_webhook(
    State(app): State<WebhookState>,
    Admin(actor): Admin,
    Json(new): Json<NewWebhook>,
) -> Result<Created<CreatedWebhook>, Problem> {
    Ok(Created(service::create(&app, actor, new).await?))
}

problems!(ListWebhooksProblems for ADMIN {
    ValidationFailed: BAD_PAGE,
});

/// The webhooks, by id, without their secrets (admin).
#[utoipa::path(get, path = "/admin/webhooks", tag = "admin", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<Webhook>),
        ListWebhooksProblems,
    ))]
async fn list_webhooks(
    State(app): State<WebhookState>,
    _: Admin,
    Paging(page): Paging,
) -> Result<Json<Page<Webhook>>, Problem> {
    Ok(Json(service::list(&app.db, page).await?))
}

problems!(DeleteWebhookProblems for ADMIN {
    ValidationFailed: BAD_ID,
    NotFound: "no such webhook",
});

/// Delete a webhook and its deliveries: pending ones are never sent (admin).
#[utoipa::path(delete, path = "/admin/webhooks/{id}", tag = "admin", security(("bearer" = [])),
    params(IdParam),
    responses(
        (status = 204, description = "Deleted"),
        DeleteWebhookProblems,
    ))]
async fn delete_webhook(
    State(app): State<WebhookState>,
    Admin(actor): Admin,
    PathId(id): PathId<WebhookId>,
) -> Result<StatusCode, Problem> {
    service::delete(&app.db, app.clock.as_ref(), actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

problems!(ListDeliveriesProblems for ADMIN {
    ValidationFailed: "the id is not a positive 64-bit integer, or a bad `limit` or `cursor`",
    NotFound: "no such webhook",
});

/// A webhook's deliveries, newest first (admin).
#[utoipa::path(get, path = "/admin/webhooks/{id}/deliveries", tag = "admin",
    security(("bearer" = [])),
    params(IdParam, PageParams),
    responses(
        (status = 200, body = Page<Delivery>),
        ListDeliveriesProblems,
    ))]
async fn list_deliveries(
    State(app): State<WebhookState>,
    _: Admin,
    PathId(id): PathId<WebhookId>,
    Paging(page): Paging,
) -> Result<Json<Page<Delivery>>, Problem> {
    Ok(Json(service::deliveries(&app.db, id, page).await?))
}

problems!(RetryDeliveryProblems for ADMIN {
    ValidationFailed: BAD_ID,
    NotFound: "no such delivery",
});

/// Try a delivery again at once, with a fresh day of retries (admin).
#[utoipa::path(post, path = "/admin/webhooks/deliveries/{id}/retry", tag = "admin",
    security(("bearer" = [])),
    params(IdParam),
    responses(
        (status = 202, description = "The delivery is `PENDING` and being tried"),
        RetryDeliveryProblems,
    ))]
async fn retry_delivery(
    State(app): State<WebhookState>,
    _: Admin,
    PathId(id): PathId<DeliveryId>,
) -> Result<StatusCode, Problem> {
    service::retry(&app, id).await?;
    Ok(StatusCode::ACCEPTED)
}
