//! HTTP assembly: the router with every module's routes, middleware, OpenAPI and docs.

pub mod answer;
pub mod auth;
mod errors;
pub mod extract;
mod metrics;
mod ops;
pub mod problem;
pub mod responses;
pub mod server;
mod strict_json;
mod write_limit;

pub use auth::{Admin, AuthUser, JwtKeys};
pub use extract::{IdempotencyHeader, Json, PathId, Query};
pub use metrics::{builder as metrics_builder, recorder as metrics_recorder};
pub use problem::{ErrorCode, Problem, ProblemBody};
pub use write_limit::{WriteLimiter, WriteQuota, WriteUser};

use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::any::Any;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "commerce", description = "Balance, products, first-come-first-served coupons, orders and sales statistics."),
    modifiers(&BearerAuth),
    components(schemas(ProblemBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The whole API as an OpenAPI document, as served at `/openapi.json` by a server with these
/// settings.
pub fn openapi(settings: &crate::config::Settings) -> utoipa::openapi::OpenApi {
    let mut openapi = api_routes().split_for_parts().1;
    crate::balance::document_max_charge(&mut openapi, settings.max_charge.get());
    openapi
}

fn api_routes() -> OpenApiRouter<Arc<AppState>> {
    let v1 = OpenApiRouter::new()
        .merge(crate::balance::routes())
        .merge(crate::product::routes())
        .merge(crate::coupon::routes())
        .merge(crate::order::routes())
        .merge(crate::platform::routes());
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1)
}

pub fn router(state: Arc<AppState>) -> Router {
    let (api, mut openapi) = api_routes().split_for_parts();
    crate::balance::document_max_charge(&mut openapi, state.settings.max_charge.get());
    Router::new()
        .merge(api)
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .route("/health/live", get(ops::live))
        .route("/health/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(CatchPanicLayer::custom(panic_problem))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(crate::telemetry::request_span)
                .on_response(crate::telemetry::record_status),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn unknown_route() -> Problem {
    Problem::not_found("no such route")
}

/// axum adds the `Allow` header listing the route's methods.
async fn method_not_allowed() -> Problem {
    Problem::new(
        ErrorCode::MethodNotAllowed,
        "this route does not take this method; see the Allow header",
    )
}

fn panic_problem(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    Problem::internal().into_response()
}
