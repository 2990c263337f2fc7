use axum::extract::{FromRef, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::AuditEntry;
use super::service::{self, AuditState};
use crate::http::extract::{PageParams, Paging};
use crate::http::responses::{problems, BAD_PAGE};
use crate::http::{Admin, Json, JwtKeys, Problem};
use crate::page::Page;

pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AuditState: FromRef<S>,
    JwtKeys: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(audit_log))
}

problems!(AuditLogProblems for ADMIN {
    ValidationFailed: BAD_PAGE,
});

/// The audit log of admin writes, newest first (admin).
#[utoipa::path(get, path = "/admin/audit", tag = "admin", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<AuditEntry>),
        AuditLogProblems,
    ))]
async fn audit_log(
    State(app): State<AuditState>,
    _: Admin,
    Paging(page): Paging,
) -> Result<Json<Page<AuditEntry>>, Problem> {
    Ok(Json(service::list(&app.db, page).await?))
}
