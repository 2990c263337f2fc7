use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::{instant, json_rows, micros, SqliteConn};
use commerce_domain::ids::{ProductId, UserId};
use commerce_domain::page::PageRequest;
use commerce_store::product::{Holding, NewProductRow, ProductChange, ProductRow, ProductStore};
use commerce_store::StoreError;

/// A product as stored, in the columns [`COLUMNS`].
type Product = (i64, String, i64, i64, Option<i64>, Option<i64>, Option<i64>);

/// What every query that reads products selects, in [`read`]'s order.
const COLUMNS: &str = "id, name, price, stock, sale_starts_at, sale_ends_at, max_per_user";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Product> {
    r.try_into()
}

fn checked(
    (id, name, price, stock, sale_starts_at, sale_ends_at, max_per_user): Product,
) -> Result<ProductRow, StoreError> {
    Ok(ProductRow {
        id: ProductId::new(id).ok_or_else(|| StoreError::corrupt(id))?,
        name,
        price,
        stock,
        sale_starts_at: sale_starts_at.map(instant).transpose()?,
        sale_ends_at: sale_ends_at.map(instant).transpose()?,
        max_per_user,
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
                     (name, price, stock, sale_starts_at, sale_ends_at, max_per_user,
                      created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING {COLUMNS}"
            ),
            params![
                new.name,
                new.price,
                new.stock,
                new.sale_starts_at.map(micros),
                new.sale_ends_at.map(micros),
                new.max_per_user,
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
                     max_per_user = CASE WHEN ?9 THEN ?10 ELSE max_per_user END,
                     updated_at = ?11
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
                change.max_per_user.is_some(),
                change.max_per_user.flatten(),
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

    async fn lock_holdings(
        &mut self,
        pairs: &[(ProductId, UserId)],
    ) -> Result<Vec<Holding>, StoreError> {
        let held: Vec<(i64, i64, i64)> = self.all(
            "SELECT h.product_id, h.user_id, h.quantity
             FROM json_each(?1) AS p JOIN purchase_holdings h
                 ON h.product_id = p.value ->> 0 AND h.user_id = p.value ->> 1
             ORDER BY h.product_id, h.user_id",
            [json_rows(pairs.iter().map(|(p, u)| (p.get(), u.get())))],
            |r| r.try_into(),
        )?;
        held.into_iter()
            .map(|(product, user, quantity)| Holding::stored(product, user, quantity))
            .collect()
    }

    async fn set_holdings(&mut self, holdings: &[Holding]) -> Result<(), StoreError> {
        // `WHERE true` tells SQLite's parser the ON CONFLICT is the upsert's, not a join's.
        self.run(
            "INSERT INTO purchase_holdings (product_id, user_id, quantity)
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1) WHERE true
             ON CONFLICT (product_id, user_id) DO UPDATE SET quantity = excluded.quantity",
            [json_rows(
                holdings
                    .iter()
                    .map(|h| (h.product.get(), h.user.get(), h.quantity)),
            )],
        )?;
        Ok(())
    }

    async fn release_holdings(
        &mut self,
        user: UserId,
        lines: &[(ProductId, i64)],
    ) -> Result<(), StoreError> {
        self.run(
            "UPDATE purchase_holdings SET quantity = quantity - (l.value ->> 1)
             FROM json_each(?2) AS l
             WHERE user_id = ?1 AND product_id = l.value ->> 0",
            params![
                user.get(),
                json_rows(lines.iter().map(|&(p, q)| (p.get(), q)))
            ],
        )?;
        Ok(())
    }

    async fn reset_holdings(&mut self, id: ProductId, count: bool) -> Result<(), StoreError> {
        self.run(
            "DELETE FROM purchase_holdings WHERE product_id = ?1",
            [id.get()],
        )?;
        if count {
            self.run(
                "INSERT INTO purchase_holdings (product_id, user_id, quantity)
                 SELECT i.product_id, o.user_id, SUM(i.quantity)
                 FROM order_items i JOIN orders o ON o.id = i.order_id
                 WHERE i.product_id = ?1 AND o.status = 'PAID'
                 GROUP BY i.product_id, o.user_id",
                [id.get()],
            )?;
        }
        Ok(())
    }
}
