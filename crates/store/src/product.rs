//! Products and their stock: what the product service needs from a database.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::StoreError;
use commerce_domain::ids::{ProductId, UserId};
use commerce_domain::page::PageRequest;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub id: ProductId,
    pub name: String,
    pub price: i64,
    pub stock: i64,
    /// The sale window: orders are taken from `sale_starts_at` (null: open from the start)
    /// until `sale_ends_at` (exclusive; null: never closes).
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    /// The most units one user may hold in paid orders (null: no limit).
    pub max_per_user: Option<i64>,
}

/// A new product.
#[derive(Debug, Clone, Copy)]
pub struct NewProductRow<'a> {
    pub name: &'a str,
    pub price: i64,
    pub stock: i64,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    pub max_per_user: Option<i64>,
}

/// The fields a PATCH may change; `None` keeps the stored value.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProductChange<'a> {
    pub name: Option<&'a str>,
    pub price: Option<i64>,
    pub stock: Option<i64>,
    /// `None` keeps it, `Some(None)` clears it, `Some(Some(at))` sets it.
    pub sale_starts_at: Option<Option<DateTime<Utc>>>,
    pub sale_ends_at: Option<Option<DateTime<Utc>>>,
    pub max_per_user: Option<Option<i64>>,
}

/// What one user holds of one limited product in paid orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    pub product: ProductId,
    pub user: UserId,
    pub quantity: i64,
}

impl Holding {
    /// A holding row as stored, its ids checked.
    pub fn stored(product: i64, user: i64, quantity: i64) -> Result<Self, StoreError> {
        Ok(Holding {
            product: ProductId::new(product).ok_or_else(|| StoreError::corrupt(product))?,
            user: UserId::new(user).ok_or_else(|| StoreError::corrupt(user))?,
            quantity,
        })
    }
}

#[async_trait]
pub trait ProductStore {
    async fn product(&mut self, id: ProductId) -> Result<Option<ProductRow>, StoreError>;

    /// By id, after the page's cursor.
    async fn products(&mut self, page: PageRequest) -> Result<Vec<ProductRow>, StoreError>;

    /// Products by id, in no particular order; missing ids are left out.
    async fn products_by_id(&mut self, ids: &[ProductId]) -> Result<Vec<ProductRow>, StoreError>;

    async fn insert_product(
        &mut self,
        new: NewProductRow<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProductRow, StoreError>;

    async fn update_product(
        &mut self,
        id: ProductId,
        change: ProductChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<ProductRow>, StoreError>;

    /// Puts `quantity` back into the stock (a cancelled order's line).
    async fn restock(&mut self, id: ProductId, quantity: i64) -> Result<(), StoreError>;

    /// The products, locked until the transaction ends (on PostgreSQL `FOR UPDATE` in id
    /// order; SQLite's write transaction holds every row), in id order; missing ids are left
    /// out. A batch of orders decides against these.
    async fn lock_products(&mut self, ids: &[ProductId]) -> Result<Vec<ProductRow>, StoreError>;

    /// Sets each locked product's stock to what a batch decided: (id, stock after).
    async fn set_stocks(&mut self, stocks: &[(ProductId, i64)]) -> Result<(), StoreError>;

    /// The holdings of these (product, user) pairs, locked until the transaction ends (on
    /// PostgreSQL `FOR UPDATE` in (product, user) order, taken after the products' locks); a
    /// pair without a row is left out (it holds nothing).
    async fn lock_holdings(
        &mut self,
        pairs: &[(ProductId, UserId)],
    ) -> Result<Vec<Holding>, StoreError>;

    /// Stores what a batch left each pair holding, inserting the pairs without a row.
    async fn set_holdings(&mut self, holdings: &[Holding]) -> Result<(), StoreError>;

    /// Gives back a cancelled order's units: (product, quantity) of each line; a line whose
    /// product has no holding row (no limit) changes nothing.
    async fn release_holdings(
        &mut self,
        user: UserId,
        lines: &[(ProductId, i64)],
    ) -> Result<(), StoreError>;

    /// Replaces the product's holdings by its paid orders' units per user (a limit is set on a
    /// product that had none), or deletes them (`count` false: its limit is cleared).
    async fn reset_holdings(&mut self, id: ProductId, count: bool) -> Result<(), StoreError>;
}
