use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, BalanceState, BalanceView, ChargeReceipt, HistoryEntry};
use crate::bounds;
use crate::http::answer::respond;
use crate::http::extract::{IdempotencyKeyParam, PageParams, Paging};
use crate::http::responses::{problems, BodyFaults, BAD_PAGE};
use crate::http::{AuthUser, IdempotencyHeader, Json, JwtKeys, Problem, WriteLimiter, WriteUser};
use crate::page::Page;

pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    BalanceState: FromRef<S>,
    JwtKeys: FromRef<S>,
    WriteLimiter: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(get_balance))
        .routes(routes!(charge))
        .routes(routes!(history))
}

problems!(GetBalanceProblems for SIGNED_IN {});

/// The caller's balance (0 for a user who never charged).
#[utoipa::path(get, path = "/me/balance", tag = "balance", security(("bearer" = [])),
    responses((status = 200, body = BalanceView), GetBalanceProblems))]
async fn get_balance(
    State(app): State<BalanceState>,
    AuthUser(user): AuthUser,
) -> Result<Json<BalanceView>, Problem> {
    Ok(Json(service::balance_of(&app.db, user).await?))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChargeRequest {
    /// Won to add: 1..=the per-charge maximum (setting `COMMERCE_MAX_CHARGE`; the served
    /// document states the running server's value).
    #[schema(schema_with = charge_amount)]
    amount: i64,
}

fn charge_amount() -> utoipa::openapi::Object {
    bounds::described(
        bounds::int::<1, { i64::MAX }>(),
        "Won to add, 1..=the per-charge maximum (COMMERCE_MAX_CHARGE).",
    )
}

/// The served document states the running server's per-charge maximum.
pub fn document_max_charge(openapi: &mut utoipa::openapi::OpenApi, max_charge: i64) {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let schema = openapi
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("ChargeRequest"));
    if let Some(RefOr::T(Schema::Object(request))) = schema {
        if let Some(RefOr::T(Schema::Object(amount))) = request.properties.get_mut("amount") {
            amount.maximum = Some(max_charge.into());
            return;
        }
    }
    panic!("ChargeRequest.amount is not in the OpenAPI document");
}

problems!(ChargeProblems for KEYED_WRITE {
    InvalidAmount,
    ValidationFailed: "a malformed body or header",
    BalanceLimitExceeded,
});

/// Charge the caller's balance. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/me/balance/charges", tag = "balance", security(("bearer" = [])),
    params(IdempotencyKeyParam),
    request_body = ChargeRequest,
    responses(
        (status = 200, body = ChargeReceipt),
        ChargeProblems,
        BodyFaults,
    ))]
async fn charge(
    State(app): State<BalanceState>,
    WriteUser(user): WriteUser,
    IdempotencyHeader(key): IdempotencyHeader,
    Json(request): Json<ChargeRequest>,
) -> Response {
    let outcome = super::charging::charge(
        &app.db,
        app.clock.as_ref(),
        app.limits,
        user,
        request.amount,
        key,
    )
    .await;
    respond(StatusCode::OK, outcome)
}

problems!(HistoryProblems for SIGNED_IN {
    ValidationFailed: BAD_PAGE,
});

/// The caller's balance history, newest first.
#[utoipa::path(get, path = "/me/balance/history", tag = "balance", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<HistoryEntry>),
        HistoryProblems,
    ))]
async fn history(
    State(app): State<BalanceState>,
    AuthUser(user): AuthUser,
    Paging(page): Paging,
) -> Result<Json<Page<HistoryEntry>>, Problem> {
    Ok(Json(service::history(&app.db, user, page).await?))
}
