use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use thiserror::Error;
use utoipa::ToSchema;

use super::cache::ProductCache;
use super::store;
use crate::clock::{to_micros, Clock};
use crate::db::{Db, DbError, Transient};
use crate::ids::ProductId;
use crate::page::{Page, PageRequest};

/// Upper bounds that keep every order total far inside 64 bits.
pub const MAX_PRICE: i64 = 1_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;
const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Error)]
pub enum ProductError {
    #[error("product {0} does not exist")]
    NotFound(ProductId),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Transient for ProductError {
    fn is_transient(&self) -> bool {
        matches!(self, ProductError::Db(e) if e.is_transient())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Product {
    #[schema(value_type = i64, example = 1)]
    pub id: ProductId,
    #[schema(example = "Wireless earbuds")]
    pub name: String,
    /// Won.
    #[schema(example = 89000)]
    pub price: i64,
    #[schema(example = 120)]
    pub stock: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    /// 1..=200 characters, not blank.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// Won, 1..=1,000,000,000.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub price: i64,
    /// 0..=1,000,000,000.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: i64,
}

/// Any of the fields; the ones given replace the stored values (an empty patch changes nothing).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub price: Option<i64>,
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<i64>,
}

fn check_name(name: &str) -> Result<(), ProductError> {
    if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ProductError::Invalid(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters and not blank"
        )));
    }
    Ok(())
}

fn check_price(price: i64) -> Result<(), ProductError> {
    if !(1..=MAX_PRICE).contains(&price) {
        return Err(ProductError::Invalid(format!(
            "price must be between 1 and {MAX_PRICE}, got {price}"
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
    let mut conn = db.reader().acquire().await.map_err(DbError::from)?;
    let product = store::get(&mut conn, id)
        .await?
        .ok_or(ProductError::NotFound(id))?;
    cache.put(product.clone(), epoch);
    Ok(product)
}

pub async fn list(db: &Db, page: PageRequest) -> Result<Page<Product>, ProductError> {
    let mut conn = db.reader().acquire().await.map_err(DbError::from)?;
    let rows = store::list(&mut conn, page).await?;
    Ok(Page::from_rows(rows, page, |p| p.id.get()))
}

/// Products by id, in no particular order; missing ids are left out.
pub async fn find_many(db: &Db, ids: &[ProductId]) -> Result<Vec<Product>, DbError> {
    let mut conn = db.reader().acquire().await?;
    store::find_many(&mut conn, ids).await
}

pub async fn create(db: &Db, clock: &dyn Clock, new: NewProduct) -> Result<Product, ProductError> {
    check_name(&new.name)?;
    check_price(new.price)?;
    check_stock(new.stock)?;
    let now = to_micros(clock.now());
    let new = std::sync::Arc::new(new);
    db.write(move |conn| {
        let new = new.clone();
        Box::pin(async move {
            Ok(store::insert(conn, new.name.trim(), new.price, new.stock, now).await?)
        })
    })
    .await
}

pub async fn update(
    db: &Db,
    clock: &dyn Clock,
    cache: &ProductCache,
    id: ProductId,
    patch: ProductPatch,
) -> Result<Product, ProductError> {
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    patch.price.map(check_price).transpose()?;
    patch.stock.map(check_stock).transpose()?;
    let now = to_micros(clock.now());
    let patch = std::sync::Arc::new(patch);
    let updated = db
        .write(move |conn| {
            let patch = patch.clone();
            Box::pin(async move {
                let name = patch.name.as_deref().map(str::trim);
                store::update(conn, id, name, patch.price, patch.stock, now)
                    .await?
                    .ok_or(ProductError::NotFound(id))
            })
        })
        .await;
    cache.forget([id]);
    updated
}

/// What taking stock for one order line found.
#[derive(Debug)]
pub enum StockTake {
    /// Stock decremented; the product as it is now.
    Taken(Product),
    Missing,
    Short {
        available: i64,
    },
}

/// Decrements stock by `quantity` in the caller's transaction, only if that much is there.
pub async fn take_stock(
    conn: &mut AnyConnection,
    id: ProductId,
    quantity: i64,
) -> Result<StockTake, DbError> {
    if let Some(product) = store::decrement_stock(conn, id, quantity).await? {
        return Ok(StockTake::Taken(product));
    }
    Ok(match store::get(conn, id).await? {
        Some(product) => StockTake::Short {
            available: product.stock,
        },
        None => StockTake::Missing,
    })
}
