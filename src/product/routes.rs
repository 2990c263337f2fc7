use axum::extract::{FromRef, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model::Product;
use super::service::{self, NewProduct, ProductPatch, ProductState};
use crate::http::extract::{IdParam, PageParams, Paging};
use crate::http::responses::{problems, BodyFaults, BAD_ID, BAD_PAGE};
use crate::http::{Admin, Created, Json, JwtKeys, PathId, Problem};
use crate::ids::ProductId;
use crate::page::Page;

pub fn routes<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ProductState: FromRef<S>,
    JwtKeys: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(get_product))
        .routes(routes!(list_products))
        .routes(routes!(create_product))
        .routes(routes!(update_product))
}

problems!(GetProductProblems for PUBLIC {
    ValidationFailed: BAD_ID,
    ProductNotFound,
});

/// Product detail.
#[utoipa::path(get, path = "/products/{id}", tag = "products",
    params(IdParam),
    responses(
        (status = 200, body = Product),
        GetProductProblems,
    ))]
async fn get_product(
    State(app): State<ProductState>,
    PathId(id): PathId<ProductId>,
) -> Result<Json<Product>, Problem> {
    Ok(Json(service::get(&app.db, &app.cache, id).await?))
}

problems!(ListProductsProblems for PUBLIC {
    ValidationFailed: BAD_PAGE,
});

/// All products, by id.
#[utoipa::path(get, path = "/products", tag = "products", params(PageParams),
    responses(
        (status = 200, body = Page<Product>),
        ListProductsProblems,
    ))]
async fn list_products(
    State(app): State<ProductState>,
    Paging(page): Paging,
) -> Result<Json<Page<Product>>, Problem> {
    Ok(Json(service::list(&app.db, page).await?))
}

problems!(CreateProductProblems for ADMIN {
    ValidationFailed: "a malformed body or a field out of its bounds",
});

/// Create a product (admin).
#[utoipa::path(post, path = "/admin/products", tag = "admin", security(("bearer" = [])),
    request_body = NewProduct,
    responses(
        (status = 201, body = Product),
        CreateProductProblems,
        BodyFaults,
    ))]
async fn create_product(
    State(app): State<ProductState>,
    Admin(actor): Admin,
    Json(new): Json<NewProduct>,
) -> Result<Created<Product>, Problem> {
    Ok(Created(
        service::create(&app.db, app.clock.as_ref(), actor, new).await?,
    ))
}

problems!(UpdateProductProblems for ADMIN {
    ValidationFailed: "a bad id, a malformed body, a null field or a field out of its bounds",
    ProductNotFound,
});

/// Change a product's name, price, stock, sale window or purchase limit (admin). `stock` sets
/// the stock level; a limit set on a product without one counts the units already sold.
#[utoipa::path(patch, path = "/admin/products/{id}", tag = "admin", security(("bearer" = [])),
    params(IdParam),
    request_body = ProductPatch,
    responses(
        (status = 200, body = Product),
        UpdateProductProblems,
        BodyFaults,
    ))]
async fn update_product(
    State(app): State<ProductState>,
    Admin(actor): Admin,
    PathId(id): PathId<ProductId>,
    Json(patch): Json<ProductPatch>,
) -> Result<Json<Product>, Problem> {
    Ok(Json(
        service::update(&app.db, app.clock.as_ref(), &app.cache, actor, id, patch).await?,
    ))
}
