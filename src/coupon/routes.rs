use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, Coupon, DiscountType, NewCoupon, UserCoupon, MAX_AMOUNT, MAX_RATE};
use crate::app::AppState;
use crate::bounds;
use crate::http::extract::{IdParam, PageParams};
use crate::http::responses::{BodyFaults, Forbidden, RateLimited, Unauthorized, Unavailable};
use crate::http::{Admin, AuthUser, Json, PathId, Problem, ProblemBody, WriteUser};
use crate::ids::CouponId;
use crate::page::{Page, PageRequest};

pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(issuable_coupons))
        .routes(routes!(get_coupon))
        .routes(routes!(issue_coupon))
        .routes(routes!(my_coupons))
        .routes(routes!(create_coupon))
}

/// The coupons that can be issued now (issue window open, some remaining), by id.
#[utoipa::path(get, path = "/coupons", tag = "coupons",
    params(PageParams),
    responses(
        (status = 200, body = Page<Coupon>),
        (status = 400, description = "VALIDATION_FAILED: a bad `limit` or `cursor`", body = ProblemBody, content_type = "application/problem+json"),
        Unavailable,
    ))]
async fn issuable_coupons(
    State(app): State<Arc<AppState>>,
    page: PageRequest,
) -> Result<Json<Page<Coupon>>, Problem> {
    Ok(Json(
        service::list_issuable(&app.db, app.clock.as_ref(), page).await?,
    ))
}

/// A coupon campaign with its remaining quantity.
#[utoipa::path(get, path = "/coupons/{id}", tag = "coupons",
    params(IdParam),
    responses(
        (status = 200, body = Coupon),
        (status = 400, description = "VALIDATION_FAILED: the id is not a positive 64-bit integer", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "COUPON_NOT_FOUND", body = ProblemBody, content_type = "application/problem+json"),
        Unavailable,
    ))]
async fn get_coupon(
    State(app): State<Arc<AppState>>,
    PathId(id): PathId<CouponId>,
) -> Result<Json<Coupon>, Problem> {
    Ok(Json(service::get(&app.db, id).await?))
}

/// Issue one coupon to the caller, first come, first served (one per user).
#[utoipa::path(post, path = "/coupons/{id}/issue", tag = "coupons", security(("bearer" = [])),
    params(IdParam),
    responses(
        (status = 201, body = UserCoupon),
        (status = 400, description = "VALIDATION_FAILED: the id is not a positive 64-bit integer", body = ProblemBody, content_type = "application/problem+json"),
        Unauthorized,
        RateLimited,
        (status = 404, description = "COUPON_NOT_FOUND", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "COUPON_SOLD_OUT, COUPON_ALREADY_ISSUED or COUPON_NOT_ISSUABLE", body = ProblemBody, content_type = "application/problem+json"),
        Unavailable,
    ))]
async fn issue_coupon(
    State(app): State<Arc<AppState>>,
    WriteUser(user): WriteUser,
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
        (status = 400, description = "VALIDATION_FAILED: a bad `limit` or `cursor`", body = ProblemBody, content_type = "application/problem+json"),
        Unauthorized,
        Unavailable,
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
    request_body = NewCouponBody,
    responses(
        (status = 201, body = Coupon),
        (status = 400, description = "VALIDATION_FAILED: a malformed body, a field out of its bounds, or issue_starts_at not before issue_ends_at", body = ProblemBody, content_type = "application/problem+json"),
        Unauthorized,
        Forbidden,
        BodyFaults,
        Unavailable,
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

/// `POST /admin/coupons`'s body as documented: `NewCoupon` once per discount type, because a
/// RATE's `discount_value` is a percentage (JSON Schema cannot make one field's bounds depend on
/// another's value any other way).
struct NewCouponBody;

impl utoipa::PartialSchema for NewCouponBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
        use utoipa::openapi::RefOr;
        let RefOr::T(Schema::Object(mut common)) = <NewCoupon as utoipa::PartialSchema>::schema()
        else {
            unreachable!("NewCoupon is an object")
        };
        // `schema_with` fields lose their doc comments; these are NewCoupon's.
        for (field, about) in [
            (
                "name",
                "1..=200 characters, not blank, no control characters.",
            ),
            ("total_quantity", "How many can be issued in all."),
            (
                "valid_days",
                "An issued coupon expires this many days after issue.",
            ),
            (
                "min_order_amount",
                "Compared with the order total before discount (default 0).",
            ),
        ] {
            if let Some(RefOr::T(Schema::Object(property))) = common.properties.get_mut(field) {
                property.description = Some(about.to_owned());
            }
        }
        let variant = |kind: DiscountType, value: utoipa::openapi::Object, about: &str| {
            let mut object = common.clone();
            let kind_schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind.as_str()]));
            object
                .properties
                .insert("discount_type".into(), kind_schema.into());
            let mut value = value;
            value.description = Some(about.to_owned());
            object
                .properties
                .insert("discount_value".into(), value.into());
            object.title = Some(kind.as_str().to_owned());
            Schema::Object(object)
        };
        OneOfBuilder::new()
            .item(variant(
                DiscountType::Fixed,
                bounds::int::<1, MAX_AMOUNT>(),
                "Won off the order total.",
            ))
            .item(variant(
                DiscountType::Rate,
                bounds::int::<1, MAX_RATE>(),
                "Percent off the order total, rounded down.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for NewCouponBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "NewCoupon".into()
    }
}
