//! The router: every capability's routes under `/api/v1`, the OpenAPI document and its docs,
//! health and metrics, the fallbacks and the middleware stack.

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

use super::errors;
use super::ops;
use super::state::AppState;
use crate::config::Settings;
use crate::http::{extract, metrics, ErrorCode, Problem, ProblemBody};
use crate::{audit, balance, coupon, order, platform, product, telemetry, webhook};

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
pub fn openapi(settings: &Settings) -> utoipa::openapi::OpenApi {
    let mut openapi = api_routes().split_for_parts().1;
    document_settings(&mut openapi, settings);
    openapi
}

/// The served document lists every error code and states the running server's settings.
fn document_settings(openapi: &mut utoipa::openapi::OpenApi, settings: &Settings) {
    errors::document_codes(openapi);
    balance::document_max_charge(openapi, settings.max_charge.get());
}

fn api_routes() -> OpenApiRouter<Arc<AppState>> {
    let v1 = OpenApiRouter::new()
        .merge(balance::routes())
        .merge(product::routes())
        .merge(coupon::routes())
        .merge(order::routes())
        .merge(platform::routes())
        .merge(audit::routes())
        .merge(webhook::routes());
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1)
}

pub fn router(state: Arc<AppState>) -> Router {
    let (api, mut openapi) = api_routes().split_for_parts();
    document_settings(&mut openapi, &state.settings);
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
                .make_span_with(telemetry::request_span)
                .on_response(telemetry::record_status),
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
