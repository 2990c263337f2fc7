use axum::extract::{FromRef, State};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::daily::{self, DaySummary};
use super::popular::{self, Popular};
use super::state::PlatformState;
use crate::clock::{shop_day, Day};
use crate::events::SoldItem;
use crate::http::responses::problems;
use crate::http::{Admin, Json, JwtKeys, Problem, Query};

pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    PlatformState: FromRef<S>,
    JwtKeys: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(popular_products))
        .routes(routes!(run_daily_sales))
        .routes(routes!(daily_sales))
}

problems!(PopularProblems for PUBLIC {});

/// The top 5 products by quantity sold over today and the two previous days (shop time zone),
/// ties by lower product id, from the data platform's statistics. It trails real sales by
/// about a second (event delivery plus a 1 s cache), never more than a minute while the
/// event transport is up.
#[utoipa::path(get, path = "/products/popular", tag = "products",
    responses((status = 200, body = Popular), PopularProblems))]
async fn popular_products(State(app): State<PlatformState>) -> Result<Json<Popular>, Problem> {
    let today = shop_day(app.clock.now(), app.time_zone);
    let popular = popular::popular(&app.db, &app.popular, today).await?;
    Ok(Json(popular.as_ref().clone()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DateQuery {
    /// A calendar day in the shop's time zone, `YYYY-MM-DD` with a year 0001..=9999.
    #[param(inline, example = "2026-11-23")]
    date: Day,
}

problems!(RunDailySalesProblems for ADMIN {
    ValidationFailed: "a bad date, or a day not yet over",
});

/// Run the daily sales job for a finished day now: recompute it from the orders and store it as
/// the day's authoritative figures (admin). Rerunning gives the same figures.
#[utoipa::path(post, path = "/admin/jobs/daily-sales", tag = "admin", security(("bearer" = [])),
    params(DateQuery),
    responses(
        (status = 200, body = DaySummary),
        RunDailySalesProblems,
    ))]
async fn run_daily_sales(
    State(app): State<PlatformState>,
    Admin(actor): Admin,
    Query(query): Query<DateQuery>,
) -> Result<Json<DaySummary>, Problem> {
    Ok(Json(
        daily::run_finished_day(&app, actor, query.date.get()).await?,
    ))
}

#[derive(Debug, Serialize, ToSchema)]
struct DaySales {
    #[schema(value_type = String, format = Date)]
    date: NaiveDate,
    /// True once the daily job has stored the day's authoritative figures; before that the
    /// figures are the live ones fed by order events.
    finalized: bool,
    items: Vec<SoldItemView>,
}

#[derive(Debug, Serialize, ToSchema)]
struct SoldItemView {
    product_id: i64,
    quantity: i64,
    /// Won, before coupon discounts.
    amount: i64,
}

problems!(DailySalesProblems for ADMIN {
    ValidationFailed: "a bad date",
});

/// A day's sales per product (admin).
#[utoipa::path(get, path = "/admin/stats/daily-sales", tag = "admin", security(("bearer" = [])),
    params(DateQuery),
    responses(
        (status = 200, body = DaySales),
        DailySalesProblems,
    ))]
async fn daily_sales(
    State(app): State<PlatformState>,
    _: Admin,
    Query(query): Query<DateQuery>,
) -> Result<Json<DaySales>, Problem> {
    let (finalized, items) = daily::figures(&app, query.date.get()).await?;
    let items = items
        .into_iter()
        .map(
            |SoldItem {
                 product_id,
                 quantity,
                 amount,
             }| SoldItemView {
                product_id,
                quantity,
                amount,
            },
        )
        .collect();
    Ok(Json(DaySales {
        date: query.date.get(),
        finalized,
        items,
    }))
}
