use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::{instant, json_rows, micros, SqliteConn};
use commerce_domain::ids::ProductId;
use commerce_domain::page::PageRequest;
use commerce_store::product::{NewProductRow, ProductChange, ProductRow, ProductStore};
use commerce_store::StoreError;

/// A product as stored, in the columns [`COLUMNS`].
type Product = (i64, String, i64, i64, Option<i64>, Option<i64>);

/// What every query that reads products selects, in [`read`]'s order.
const COLUMNS: &str = "id, name, price, stock, sale_starts_at, sale_ends_at";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    r.try_into()
}

fn checked(
    (id, name, price, stock, sale_starts_at, sale_ends_at): Product,
) -> Result<ProductRow, StoreError> {
    Ok(ProductRow {
        id: ProductId::new(id).ok_or_else(|| StoreError::corrupt(id))?,
        name,
        price,
        stock,
        sale_starts_at: sale_starts_at.map(instant).transpose()?,
        sale_ends_at: sale_ends_at.map(instant).transpose()?,
    })
}

fn rows(products: Vec<Product>) -> Result<Vec<ProductRow>, StoreError> {
    products.into_iter().map(checked).collect()
}

fn row(product: Option<Product>) -> Result<Option<ProductRow>, StoreError> {
    product.map(checked).transpose()
}

/// Ids as a JSON array, for `IN (SELECT value FROM json_each(?1))`.
pub(crate) fn json_ids(ids: impl IntoIterator<Item = i64>) -> String {
    serde_json::to_string(&ids.into_iter().collect::<Vec<_>>()).expect("ids serialize")
}

#[async_trait]
impl ProductStore for SqliteConn {
    async fn product(&mut self, id: ProductId) -> Result<Option<ProductRow>, StoreError> {
        row(self.optional(
            &format!("SELECT {COLUMNS} FROM products WHERE id = ?1"),
            [id.get()],
            read,
        )?)
    }

    async fn products(&mut self, page: PageRequest) -> Result<Vec<ProductRow>, StoreError> {
        rows(self.all(
            &format!("SELECT {COLUMNS} FROM products WHERE id > ?1 ORDER BY id LIMIT ?2"),
            [page.after.unwrap_or(0), page.fetch_limit()],
            read,
        )?)
    }

    async fn products_by_id(&mut self, ids: &[ProductId]) -> Result<Vec<ProductRow>, StoreError> {
        rows(self.all(
            &format!(
                "SELECT {COLUMNS} FROM products WHERE id IN (SELECT value FROM json_each(?1))"
            ),
            [json_ids(ids.iter().map(|id| id.get()))],
            read,
        )?)
    }

    async fn lock_products(&mut self, ids: &[ProductId]) -> Result<Vec<ProductRow>, StoreError> {
        rows(self.all(
            &format!(
                "SELECT {COLUMNS} FROM products
                 WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id"
            ),
            [json_ids(ids.iter().map(|id| id.get()))],
            read,
        )?)
    }

    async fn set_stocks(&mut self, stocks: &[(ProductId, i64)]) -> Result<(), StoreError> {
        self.run(
            "UPDATE products SET stock = s.value ->> 1
             FROM json_each(?1) AS s WHERE products.id = s.value ->> 0",
            [json_rows(
                stocks.iter().map(|&(id, stock)| (id.get(), stock)),
            )],
        )?;
        Ok(())
    }

    async fn insert_product(
        &mut self,
        new: NewProductRow<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProductRow, StoreError> {
        checked(self.one(
            &format!(
                "INSERT INTO products
                     (name, price, stock, sale_starts_at, sale_ends_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING {COLUMNS}"
            ),
            params![
                new.name,
                new.price,
                new.stock,
                new.sale_starts_at.map(micros),
                new.sale_ends_at.map(micros),
                micros(now)
            ],
            read,
        )?)
    }

    async fn update_product(
        &mut self,
        id: ProductId,
        change: ProductChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<ProductRow>, StoreError> {
        row(self.optional(
            &format!(
                "UPDATE products SET name = COALESCE(?2, name), price = COALESCE(?3, price),
                     stock = COALESCE(?4, stock),
                     sale_starts_at = CASE WHEN ?5 THEN ?6 ELSE sale_starts_at END,
                     sale_ends_at = CASE WHEN ?7 THEN ?8 ELSE sale_ends_at END,
                     updated_at = ?9
                 WHERE id = ?1 RETURNING {COLUMNS}"
            ),
            params![
                id.get(),
                change.name,
                change.price,
                change.stock,
                change.sale_starts_at.is_some(),
                change.sale_starts_at.flatten().map(micros),
                change.sale_ends_at.is_some(),
                change.sale_ends_at.flatten().map(micros),
                micros(now)
            ],
            read,
        )?)
    }

    async fn restock(&mut self, id: ProductId, quantity: i64) -> Result<(), StoreError> {
        self.run(
            "UPDATE products SET stock = stock + ?2 WHERE id = ?1",
            [id.get(), quantity],
        )?;
        Ok(())
    }
}
