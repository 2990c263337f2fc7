use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use std::sync::Arc;
use thiserror::Error;
use utoipa::ToSchema;

use super::cache::ProductCache;
use super::limit::MAX_PER_USER;
use super::model::Product;
use crate::audit::{self, Action, Entry};
use crate::bounds;
use crate::clock::{Clock, Timestamp};
use crate::ids::{ProductId, UserId};
use crate::page::{Page, PageRequest};
use crate::store::product::{NewProductRow, ProductChange};
use crate::store::{Db, StoreError};

/// Upper bounds that keep every order total far inside 64 bits.
pub const MAX_PRICE: i64 = 1_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;

#[derive(Debug, Error)]
pub enum ProductError {
    #[error("product {0} does not exist")]
    NotFound(ProductId),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] StoreError),
}

crate::store::store_fault!(ProductError);

/// What the catalogue's handlers use.
#[derive(Clone)]
pub struct ProductState {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub cache: Arc<ProductCache>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// 1..=200 characters, not blank, no control characters.
    #[schema(schema_with = bounds::name)]
    pub name: String,
    /// Won, 1..=1,000,000,000.
    #[schema(schema_with = bounds::int::<1, MAX_PRICE>)]
    pub price: i64,
    /// 0..=1,000,000,000.
    #[schema(schema_with = bounds::int::<0, MAX_STOCK>)]
    pub stock: i64,
    /// Orders are taken from this instant (RFC 3339 with offset; null or absent: open now).
    #[serde(default)]
    #[schema(inline)]
    pub sale_starts_at: Option<Timestamp>,
    /// Orders are taken until this instant (exclusive; null or absent: never closes); after
    /// `sale_starts_at` when both are set.
    #[serde(default)]
    #[schema(inline)]
    pub sale_ends_at: Option<Timestamp>,
    #[serde(default)]
    #[schema(schema_with = new_max_per_user)]
    pub max_per_user: Option<i64>,
}

/// Any of the fields; the ones given replace the stored values (an empty patch changes nothing).
/// `name`, `price` and `stock` cannot be cleared, so `null` is refused for them
/// (`400 VALIDATION_FAILED` naming the field); `null` clears `sale_starts_at` / `sale_ends_at`
/// / `max_per_user`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = bounds::name)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = bounds::int::<1, MAX_PRICE>)]
    pub price: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = bounds::int::<0, MAX_STOCK>)]
    pub stock: Option<i64>,
    /// Absent: unchanged; null: open from the start; an instant: orders are taken from it.
    #[serde(default, deserialize_with = "clearable")]
    #[schema(value_type = Option<Timestamp>, inline, nullable)]
    pub sale_starts_at: Option<Option<Timestamp>>,
    /// Absent: unchanged; null: never closes; an instant: orders are taken until it
    /// (exclusive). The window after the patch must start before it ends.
    #[serde(default, deserialize_with = "clearable")]
    #[schema(value_type = Option<Timestamp>, inline, nullable)]
    pub sale_ends_at: Option<Option<Timestamp>>,
    #[serde(default, deserialize_with = "clearable")]
    #[schema(schema_with = patched_max_per_user)]
    pub max_per_user: Option<Option<i64>>,
}

fn new_max_per_user() -> utoipa::openapi::Object {
    bounds::described(
        bounds::int_or_null::<1, MAX_PER_USER>(),
        "The most units one customer may hold in paid orders, 1..=1000 (null or absent: no limit).",
    )
}

fn patched_max_per_user() -> utoipa::openapi::Object {
    bounds::described(
        bounds::int_or_null::<1, MAX_PER_USER>(),
        "Absent: unchanged; null: no limit; 1..=1000: the most units one customer may hold in \
         paid orders, counting what they hold already.",
    )
}

/// A field that is there: absent is `None` (by `default`), `null` is not a value of `T`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// A field that can be cleared: absent is `None` (by `default`), `null` is `Some(None)`.
fn clearable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A sale window starts before it ends when both sides are set.
fn check_window(
    starts: Option<DateTime<Utc>>,
    ends: Option<DateTime<Utc>>,
) -> Result<(), ProductError> {
    if let (Some(starts), Some(ends)) = (starts, ends) {
        if starts >= ends {
            return Err(ProductError::Invalid(format!(
                "sale_starts_at ({}) must be before sale_ends_at ({})",
                starts.to_rfc3339(),
                ends.to_rfc3339()
            )));
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ProductError> {
    bounds::check_name(name).map_err(ProductError::Invalid)
}

fn check_price(price: i64) -> Result<(), ProductError> {
    if !(1..=MAX_PRICE).contains(&price) {
        return Err(ProductError::Invalid(format!(
            "price must be between 1 and {MAX_PRICE}, got {price}"
        )));
    }
    Ok(())
}

fn check_max_per_user(limit: i64) -> Result<(), ProductError> {
    if !(1..=MAX_PER_USER).contains(&limit) {
        return Err(ProductError::Invalid(format!(
            "max_per_user must be between 1 and {MAX_PER_USER}, got {limit}"
        )));
    }
    Ok(())
}

fn check_stock(stock: i64) -> Result<(), ProductError> {
    if !(0..=MAX_STOCK).contains(&stock) {
        return Err(ProductError::Invalid(format!(
            "stock must be between 0 and {MAX_STOCK}, got {stock}"
        )));
    }
    Ok(())
}

pub async fn get(db: &Db, cache: &ProductCache, id: ProductId) -> Result<Product, ProductError> {
    if let Some(product) = cache.get(id) {
        return Ok(product);
    }
    let epoch = cache.epoch(id);
    let product: Product = db
        .read_lagging()
        .await?
        .product(id)
        .await?
        .ok_or(ProductError::NotFound(id))?
        .into();
    cache.put(product.clone(), epoch);
    Ok(product)
}

pub async fn list(db: &Db, page: PageRequest) -> Result<Page<Product>, ProductError> {
    let rows = db.read_lagging().await?.products(page).await?;
    let products = rows.into_iter().map(Product::from).collect();
    Ok(Page::from_rows(products, page, |p| p.id.get()))
}

/// Products by id, in no particular order; missing ids are left out.
pub async fn find_many(db: &Db, ids: &[ProductId]) -> Result<Vec<Product>, StoreError> {
    let rows = db.read_lagging().await?.products_by_id(ids).await?;
    Ok(rows.into_iter().map(Product::from).collect())
}

/// Creates a product, recorded in the audit log as `actor`'s.
pub async fn create(
    db: &Db,
    clock: &dyn Clock,
    actor: UserId,
    new: NewProduct,
) -> Result<Product, ProductError> {
    check_name(&new.name)?;
    check_price(new.price)?;
    check_stock(new.stock)?;
    new.max_per_user.map(check_max_per_user).transpose()?;
    check_window(
        new.sale_starts_at.map(Timestamp::get),
        new.sale_ends_at.map(Timestamp::get),
    )?;
    let now = clock.now();
    let new = std::sync::Arc::new(new);
    db.write(move |conn| {
        let new = new.clone();
        Box::pin(async move {
            let product: Product = conn
                .insert_product(
                    NewProductRow {
                        name: new.name.trim(),
                        price: new.price,
                        stock: new.stock,
                        sale_starts_at: new.sale_starts_at.map(Timestamp::get),
                        sale_ends_at: new.sale_ends_at.map(Timestamp::get),
                        max_per_user: new.max_per_user,
                    },
                    now,
                )
                .await?
                .into();
            let entry = Entry {
                actor,
                action: Action::ProductCreate,
                resource: format!("product:{}", product.id.get()),
                before: None,
                after: Some(audit::value(&product)),
                at: now,
            };
            audit::record(conn, &entry).await?;
            Ok(product)
        })
    })
    .await
}

/// Changes a product, recorded in the audit log as `actor`'s with the product before and after.
pub async fn update(
    db: &Db,
    clock: &dyn Clock,
    cache: &ProductCache,
    actor: UserId,
    id: ProductId,
    patch: ProductPatch,
) -> Result<Product, ProductError> {
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    patch.price.map(check_price).transpose()?;
    patch.stock.map(check_stock).transpose()?;
    patch
        .max_per_user
        .flatten()
        .map(check_max_per_user)
        .transpose()?;
    let now = clock.now();
    let patch = std::sync::Arc::new(patch);
    let updated = db
        .write(move |conn| {
            let patch = patch.clone();
            Box::pin(async move {
                let change = ProductChange {
                    name: patch.name.as_deref().map(str::trim),
                    price: patch.price,
                    stock: patch.stock,
                    sale_starts_at: patch.sale_starts_at.map(|at| at.map(Timestamp::get)),
                    sale_ends_at: patch.sale_ends_at.map(|at| at.map(Timestamp::get)),
                    max_per_user: patch.max_per_user,
                };
                // Locked, so concurrent changes see each other's result as their `before`.
                let before = conn
                    .lock_products(&[id])
                    .await?
                    .pop()
                    .ok_or(ProductError::NotFound(id))?;
                // The window as the patch leaves it, against the locked row.
                check_window(
                    change.sale_starts_at.unwrap_or(before.sale_starts_at),
                    change.sale_ends_at.unwrap_or(before.sale_ends_at),
                )?;
                let before = Product::from(before);
                let after: Product = conn
                    .update_product(id, change, now)
                    .await?
                    .ok_or(ProductError::NotFound(id))?
                    .into();
                // Holdings are kept for limited products only (see `purchase_holdings` in
                // migration 0010): a product gaining a limit counts its paid orders now, under
                // its lock, and one losing it drops them. A changed limit keeps them.
                if before.max_per_user.is_some() != after.max_per_user.is_some() {
                    conn.reset_holdings(id, after.max_per_user.is_some())
                        .await?;
                }
                let entry = Entry {
                    actor,
                    action: Action::ProductUpdate,
                    resource: format!("product:{}", id.get()),
                    before: Some(audit::value(&before)),
                    after: Some(audit::value(&after)),
                    at: now,
                };
                audit::record(conn, &entry).await?;
                Ok(after)
            })
        })
        .await;
    cache.forget([id]);
    updated
}
