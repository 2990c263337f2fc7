use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, Coupon, NewCoupon, UserCoupon};
use crate::app::AppState;
use crate::http::extract::PageParams;
use crate::http::{Admin, AuthUser, Json, PathId, Problem, ProblemBody};
use crate::ids::CouponId;
use crate::page::{Page, PageRequest};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(get_coupon))
        .routes(routes!(issue_coupon))
        .routes(routes!(my_coupons))
        .routes(routes!(create_coupon))
}

/// A coupon campaign with its remaining quantity.
#[utoipa::path(get, path = "/coupons/{id}", tag = "coupons",
    params(("id" = i64, Path, minimum = 1)),
    responses(
        (status = 200, body = Coupon),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "COUPON_NOT_FOUND", body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn get_coupon(
    State(app): State<Arc<AppState>>,
    PathId(id): PathId<CouponId>,
) -> Result<Json<Coupon>, Problem> {
    Ok(Json(service::get(&app.db, id).await?))
}

/// Issue one coupon to the caller, first come, first served (one per user).
#[utoipa::path(post, path = "/coupons/{id}/issue", tag = "coupons", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses(
        (status = 201, body = UserCoupon),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "COUPON_NOT_FOUND", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "COUPON_SOLD_OUT, COUPON_ALREADY_ISSUED or COUPON_NOT_ISSUABLE", body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn issue_coupon(
    State(app): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    PathId(id): PathId<CouponId>,
) -> Result<(StatusCode, Json<UserCoupon>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(service::issue(&app.db, app.clock.as_ref(), &app.sold_out_coupons, user, id).await?),
    ))
}

/// The caller's coupons, newest first, each AVAILABLE, USED or EXPIRED.
#[utoipa::path(get, path = "/me/coupons", tag = "coupons", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<UserCoupon>),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn my_coupons(
    State(app): State<Arc<AppState>>,
    AuthUser(user): AuthUser,
    page: PageRequest,
) -> Result<Json<Page<UserCoupon>>, Problem> {
    Ok(Json(
        service::list_mine(&app.db, app.clock.as_ref(), user, page).await?,
    ))
}

/// Create a coupon campaign (admin).
#[utoipa::path(post, path = "/admin/coupons", tag = "admin", security(("bearer" = [])),
    request_body = NewCoupon,
    responses(
        (status = 201, body = Coupon),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, body = ProblemBody, content_type = "application/problem+json"),
    ))]
async fn create_coupon(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Json(new): Json<NewCoupon>,
) -> Result<(StatusCode, Json<Coupon>), Problem> {
    Ok((
        StatusCode::CREATED,
        Json(service::create(&app.db, app.clock.as_ref(), new).await?),
    ))
}
