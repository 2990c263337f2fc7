use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_domain::ids::{ProductId, UserId};
use commerce_domain::page::PageRequest;
use commerce_store::product::{Holding, NewProductRow, ProductChange, ProductRow, ProductStore};
use commerce_store::StoreError;

#[derive(sqlx::FromRow)]
struct Product {
    id: i64,
    name: String,
    price: i64,
    stock: i64,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    max_per_user: Option<i64>,
}

/// What every query that reads products selects.
const COLUMNS: &str = "id, name, price, stock, sale_starts_at, sale_ends_at, max_per_user";

impl TryFrom<Product> for ProductRow {
    type Error = StoreError;
    fn try_from(row: Product) -> Result<Self, StoreError> {
        Ok(ProductRow {
            id: ProductId::new(row.id).ok_or_else(|| StoreError::corrupt(row.id))?,
            name: row.name,
            price: row.price,
            stock: row.stock,
            sale_starts_at: row.sale_starts_at,
            sale_ends_at: row.sale_ends_at,
            max_per_user: row.max_per_user,
        })
    }
}

fn rows(products: Vec<Product>) -> Result<Vec<ProductRow>, StoreError> {
    products.into_iter().map(ProductRow::try_from).collect()
}

fn row(product: Option<Product>) -> Result<Option<ProductRow>, StoreError> {
    product.map(ProductRow::try_from).transpose()
}

#[async_trait]
impl ProductStore for PgConn {
    async fn product(&mut self, id: ProductId) -> Result<Option<ProductRow>, StoreError> {
        row(
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
                .bind(id.get())
                .fetch_optional(&mut self.0)
                .await
                .map_err(db)?,
        )
    }

    async fn products(&mut self, page: PageRequest) -> Result<Vec<ProductRow>, StoreError> {
        rows(
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM products WHERE id > $1 ORDER BY id LIMIT $2"
            ))
            .bind(page.after.unwrap_or(0))
            .bind(page.fetch_limit())
            .fetch_all(&mut self.0)
            .await
            .map_err(db)?,
        )
    }

    async fn products_by_id(&mut self, ids: &[ProductId]) -> Result<Vec<ProductRow>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        rows(
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM products WHERE id = ANY($1)"
            ))
            .bind(ids)
            .fetch_all(&mut self.0)
            .await
            .map_err(db)?,
        )
    }

    async fn insert_product(
        &mut self,
        new: NewProductRow<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProductRow, StoreError> {
        sqlx::query_as::<_, Product>(&format!(
            "INSERT INTO products
                 (name, price, stock, sale_starts_at, sale_ends_at, max_per_user,
                  created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLUMNS}"
        ))
        .bind(new.name)
        .bind(new.price)
        .bind(new.stock)
        .bind(new.sale_starts_at)
        .bind(new.sale_ends_at)
        .bind(new.max_per_user)
        .bind(now)
        .fetch_one(&mut self.0)
        .await
        .map_err(db)?
        .try_into()
    }

    async fn update_product(
        &mut self,
        id: ProductId,
        change: ProductChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<ProductRow>, StoreError> {
        row(sqlx::query_as(&format!(
            "UPDATE products SET name = COALESCE($2, name), price = COALESCE($3, price),
                 stock = COALESCE($4, stock),
                 sale_starts_at = CASE WHEN $5 THEN $6 ELSE sale_starts_at END,
                 sale_ends_at = CASE WHEN $7 THEN $8 ELSE sale_ends_at END,
                 max_per_user = CASE WHEN $9 THEN $10 ELSE max_per_user END,
                 updated_at = $11
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id.get())
        .bind(change.name)
        .bind(change.price)
        .bind(change.stock)
        .bind(change.sale_starts_at.is_some())
        .bind(change.sale_starts_at.flatten())
        .bind(change.sale_ends_at.is_some())
        .bind(change.sale_ends_at.flatten())
        .bind(change.max_per_user.is_some())
        .bind(change.max_per_user.flatten())
        .bind(now)
        .fetch_optional(&mut self.0)
        .await
        .map_err(db)?)
    }

    async fn lock_products(&mut self, ids: &[ProductId]) -> Result<Vec<ProductRow>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        rows(
            sqlx::query_as(&format!(
                "SELECT {COLUMNS} FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE"
            ))
            .bind(ids)
            .fetch_all(&mut self.0)
            .await
            .map_err(db)?,
        )
    }

    async fn set_stocks(&mut self, stocks: &[(ProductId, i64)]) -> Result<(), StoreError> {
        let ids: Vec<i64> = stocks.iter().map(|(id, _)| id.get()).collect();
        let after: Vec<i64> = stocks.iter().map(|&(_, stock)| stock).collect();
        sqlx::query(
            "UPDATE products p SET stock = s.stock
             FROM UNNEST($1::bigint[], $2::bigint[]) AS s(id, stock) WHERE p.id = s.id",
        )
        .bind(ids)
        .bind(after)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn restock(&mut self, id: ProductId, quantity: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE products SET stock = stock + $2 WHERE id = $1")
            .bind(id.get())
            .bind(quantity)
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn lock_holdings(
        &mut self,
        pairs: &[(ProductId, UserId)],
    ) -> Result<Vec<Holding>, StoreError> {
        let products: Vec<i64> = pairs.iter().map(|(p, _)| p.get()).collect();
        let users: Vec<i64> = pairs.iter().map(|(_, u)| u.get()).collect();
        let held: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT h.product_id, h.user_id, h.quantity FROM purchase_holdings h
             JOIN UNNEST($1::bigint[], $2::bigint[]) AS p(product_id, user_id)
                 USING (product_id, user_id)
             ORDER BY h.product_id, h.user_id FOR UPDATE OF h",
        )
        .bind(products)
        .bind(users)
        .fetch_all(&mut self.0)
        .await
        .map_err(db)?;
        held.into_iter()
            .map(|(product, user, quantity)| Holding::stored(product, user, quantity))
            .collect()
    }

    async fn set_holdings(&mut self, holdings: &[Holding]) -> Result<(), StoreError> {
        let products: Vec<i64> = holdings.iter().map(|h| h.product.get()).collect();
        let users: Vec<i64> = holdings.iter().map(|h| h.user.get()).collect();
        let quantities: Vec<i64> = holdings.iter().map(|h| h.quantity).collect();
        sqlx::query(
            "INSERT INTO purchase_holdings (product_id, user_id, quantity)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[])
             ON CONFLICT (product_id, user_id) DO UPDATE SET quantity = EXCLUDED.quantity",
        )
        .bind(products)
        .bind(users)
        .bind(quantities)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn release_holdings(
        &mut self,
        user: UserId,
        lines: &[(ProductId, i64)],
    ) -> Result<(), StoreError> {
        let products: Vec<i64> = lines.iter().map(|(p, _)| p.get()).collect();
        let quantities: Vec<i64> = lines.iter().map(|&(_, q)| q).collect();
        sqlx::query(
            "UPDATE purchase_holdings h SET quantity = h.quantity - l.quantity
             FROM UNNEST($2::bigint[], $3::bigint[]) AS l(product_id, quantity)
             WHERE h.user_id = $1 AND h.product_id = l.product_id",
        )
        .bind(user.get())
        .bind(products)
        .bind(quantities)
        .execute(&mut self.0)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn reset_holdings(&mut self, id: ProductId, count: bool) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM purchase_holdings WHERE product_id = $1")
            .bind(id.get())
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        if count {
            sqlx::query(
                "INSERT INTO purchase_holdings (product_id, user_id, quantity)
                 SELECT i.product_id, o.user_id, SUM(i.quantity)::bigint
                 FROM order_items i JOIN orders o ON o.id = i.order_id
                 WHERE i.product_id = $1 AND o.status = 'PAID'
                 GROUP BY i.product_id, o.user_id",
            )
            .bind(id.get())
            .execute(&mut self.0)
            .await
            .map_err(db)?;
        }
        Ok(())
    }
}
