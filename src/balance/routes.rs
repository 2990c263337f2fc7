use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, BalanceView, ChargeReceipt, HistoryEntry, Limits};
use crate::app::AppState;
use crate::http::extract::PageParams;
use crate::http::{AuthUser, IdempotencyHeader, Json, ProblemBody};
use crate::page::{Page, PageRequest};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(get_balance))
        .routes(routes!(charge))
        .routes(routes!(history))
}

/// The caller's balance (0 for a user who never charged).
#[utoipa::path(get, path = "/me/balance", tag = "balance", security(("bearer" = [])),
    responses(
        (status = 200, body = BalanceView),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn get_balance(
    State(app): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
) -> Result<Json<BalanceView>, crate::http::Problem> {
    Ok(Json(service::balance_of(&app.db, user).await?))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChargeRequest {
    /// Won to add: 1..=the per-charge maximum (default 1,000,000).
    #[schema(example = 5000, minimum = 1)]
    amount: i64,
}

/// Charge the caller's balance. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/me/balance/charges", tag = "balance", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1..=255 printable ASCII; a retry with the same key and body replays the first response")),
    request_body = ChargeRequest,
    responses(
        (status = 200, body = ChargeReceipt),
        (status = 400, description = "INVALID_AMOUNT or VALIDATION_FAILED", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "BALANCE_LIMIT_EXCEEDED", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "IDEMPOTENCY_KEY_REUSED", body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn charge(
    State(app): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    IdempotencyHeader(key): IdempotencyHeader,
    Json(request): Json<ChargeRequest>,
) -> Result<Json<ChargeReceipt>, crate::http::Problem> {
    let limits = Limits {
        max_charge: app.settings.max_charge,
        max_balance: app.settings.max_balance,
    };
    Ok(Json(
        service::charge(
            &app.db,
            app.clock.as_ref(),
            limits,
            user,
            request.amount,
            key,
        )
        .await?,
    ))
}

/// The caller's balance history, newest first.
#[utoipa::path(get, path = "/me/balance/history", tag = "balance", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<HistoryEntry>),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn history(
    State(app): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    page: PageRequest,
) -> Result<Json<Page<HistoryEntry>>, crate::http::Problem> {
    Ok(Json(service::history(&app.db, user, page).await?))
}
