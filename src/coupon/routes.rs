use axum::extract::{FromRef, State};
use std::borrow::Cow;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{AllOfBuilder, Discriminator, OneOfBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::{Coupon, DiscountType, UserCoupon};
use super::service::{self, CouponState, NewCoupon, MAX_AMOUNT, MAX_RATE};
use crate::bounds;
use crate::http::extract::{IdParam, PageParams, Paging};
use crate::http::responses::{problems, BodyFaults, BAD_ID, BAD_PAGE};
use crate::http::{
    Admin, AuthUser, Created, Json, JwtKeys, PathId, Problem, WriteLimiter, WriteUser,
};
use crate::ids::CouponId;
use crate::page::Page;

pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    CouponState: FromRef<S>,
    JwtKeys: FromRef<S>,
    WriteLimiter: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(issuable_coupons))
        .routes(routes!(get_coupon))
        .routes(routes!(issue_coupon))
        .routes(routes!(my_coupons))
        .routes(routes!(create_coupon))
}

problems!(IssuableCouponsProblems for PUBLIC {
    ValidationFailed: BAD_PAGE,
});

/// The coupons that can be issued now (issue window open, some remaining), by id.
#[utoipa::path(get, path = "/coupons", tag = "coupons",
    params(PageParams),
    responses(
        (status = 200, body = Page<Coupon>),
        IssuableCouponsProblems,
    ))]
async fn issuable_coupons(
    State(app): State<CouponState>,
    Paging(page): Paging,
) -> Result<Json<Page<Coupon>>, Problem> {
    Ok(Json(
        service::list_issuable(&app.db, app.clock.as_ref(), page).await?,
    ))
}

problems!(GetCouponProblems for PUBLIC {
    ValidationFailed: BAD_ID,
    CouponNotFound,
});

/// A coupon campaign with its remaining quantity.
#[utoipa::path(get, path = "/coupons/{id}", tag = "coupons",
    params(IdParam),
    responses(
        (status = 200, body = Coupon),
        GetCouponProblems,
    ))]
async fn get_coupon(
    State(app): State<CouponState>,
    PathId(id): PathId<CouponId>,
) -> Result<Json<Coupon>, Problem> {
    Ok(Json(service::get(&app.db, id).await?))
}

problems!(IssueCouponProblems for USER_WRITE {
    ValidationFailed: BAD_ID,
    CouponNotFound,
    CouponSoldOut,
    CouponAlreadyIssued,
    CouponNotIssuable,
});

/// Issue one coupon to the caller, first come, first served (one per user).
#[utoipa::path(post, path = "/coupons/{id}/issue", tag = "coupons", security(("bearer" = [])),
    params(IdParam),
    responses(
        (status = 201, body = UserCoupon),
        IssueCouponProblems,
    ))]
async fn issue_coupon(
    State(app): State<CouponState>,
    WriteUser(user): WriteUser,
    PathId(id): PathId<CouponId>,
) -> Result<Created<UserCoupon>, Problem> {
    Ok(Created(
        service::issue(&app.db, app.clock.as_ref(), &app.sold_out, user, id).await?,
    ))
}

problems!(MyCouponsProblems for SIGNED_IN {
    ValidationFailed: BAD_PAGE,
});

/// The caller's coupons, newest first, each AVAILABLE, USED or EXPIRED.
#[utoipa::path(get, path = "/me/coupons", tag = "coupons", security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, body = Page<UserCoupon>),
        MyCouponsProblems,
    ))]
async fn my_coupons(
    State(app): State<CouponState>,
    AuthUser(user): AuthUser,
    Paging(page): Paging,
) -> Result<Json<Page<UserCoupon>>, Problem> {
    Ok(Json(
        service::list_mine(&app.db, app.clock.as_ref(), user, page).await?,
    ))
}

problems!(CreateCouponProblems for ADMIN {
    ValidationFailed:
        "a malformed body, a field out of its bounds, or issue_starts_at not before issue_ends_at",
});

/// Create a coupon campaign (admin).
#[utoipa::path(post, path = "/admin/coupons", tag = "admin", security(("bearer" = [])),
    request_body = NewCouponBody,
    responses(
        (status = 201, body = Coupon),
        CreateCouponProblems,
        BodyFaults,
    ))]
async fn create_coupon(
    State(app): State<CouponState>,
    Admin(actor): Admin,
    Json(new): Json<NewCoupon>,
) -> Result<Created<Coupon>, Problem> {
    Ok(Created(
        service::create(&app.db, app.clock.as_ref(), actor, new).await?,
    ))
}

/// `POST /admin/coupons`'s body as documented: one of `NewFixedCoupon` and `NewRateCoupon`,
/// told apart by `discount_type`, because a RATE's `discount_value` is a percentage (JSON Schema
/// cannot make one field's bounds depend on another's value any other way).
struct NewCouponBody;

impl utoipa::PartialSchema for NewCouponBody {
    fn schema() -> RefOr<Schema> {
        let kinds = [DiscountType::Fixed, DiscountType::Rate];
        let mapping = kinds.map(|kind| {
            let target = Ref::from_schema_name(variant_name(kind)).ref_location;
            (kind.as_str().to_owned(), target)
        });
        let mut discriminator = Discriminator::new("discount_type");
        discriminator.mapping = mapping.into_iter().collect();
        kinds
            .into_iter()
            .fold(OneOfBuilder::new(), |one_of, kind| {
                one_of.item(Ref::from_schema_name(variant_name(kind)))
            })
            .discriminator(Some(discriminator))
            .into()
    }
}

impl utoipa::ToSchema for NewCouponBody {
    fn name() -> Cow<'static, str> {
        "NewCoupon".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for kind in [DiscountType::Fixed, DiscountType::Rate] {
            schemas.push((variant_name(kind).to_owned(), variant(kind)));
        }
        schemas.push((DiscountType::name().into_owned(), DiscountType::schema()));
    }
}

fn variant_name(kind: DiscountType) -> &'static str {
    match kind {
        DiscountType::Fixed => "NewFixedCoupon",
        DiscountType::Rate => "NewRateCoupon",
    }
}

/// `NewCoupon` for one discount type: its `discount_type` is that value of `DiscountType`, and
/// its `discount_value` has that type's bounds.
fn variant(kind: DiscountType) -> RefOr<Schema> {
    let RefOr::T(Schema::Object(mut object)) = <NewCoupon as utoipa::PartialSchema>::schema()
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
        if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field) {
            property.description = Some(about.to_owned());
        }
    }
    // `DiscountType` narrowed to one value; utoipa has no `const`, and its extensions are
    // written as given, so the keyword goes there.
    let mut discount_type = AllOfBuilder::new()
        .item(Ref::from_schema_name(DiscountType::name()))
        .build();
    discount_type.extensions = Some(Extensions::from_iter([("const", kind.as_str())]));
    let (value, about) = match kind {
        DiscountType::Fixed => (bounds::int::<1, MAX_AMOUNT>(), "Won off the order total."),
        DiscountType::Rate => (
            bounds::int::<1, MAX_RATE>(),
            "Percent off the order total, rounded down.",
        ),
    };
    object
        .properties
        .insert("discount_type".into(), Schema::AllOf(discount_type).into());
    object.properties.insert(
        "discount_value".into(),
        bounds::described(value, about).into(),
    );
    Schema::Object(object).into()
}
