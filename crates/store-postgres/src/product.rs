use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_domain::ids::ProductId;
use commerce_domain::page::PageRequest;
use commerce_store::product::{NewProductRow, ProductChange, ProductRow, ProductStore};
use commerce_store::StoreError;

#[derive(sqlx::FromRow)]
struct Product {
    id: i64,
    name: String,
    price: i64,
    stock: i64,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
}

/// What every query that reads products selects.
const COLUMNS: &str = "id, name, price, stock, sale_starts_at, sale_ends_at";

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
                 (name, price, stock, sale_starts_at, sale_ends_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {COLUMNS}"
        ))
        .bind(new.name)
        .bind(new.price)
        .bind(new.stock)
        .bind(new.sale_starts_at)
        .bind(new.sale_ends_at)
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
                 updated_at = $9
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
}
