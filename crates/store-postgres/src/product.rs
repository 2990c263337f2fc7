use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::db;
use crate::PgConn;
use commerce_domain::ids::ProductId;
use commerce_domain::page::PageRequest;
use commerce_store::product::{ProductChange, ProductRow, ProductStore};
use commerce_store::StoreError;

#[derive(sqlx::FromRow)]
struct Product {
    id: i64,
    name: String,
    price: i64,
    stock: i64,
}

impl TryFrom<Product> for ProductRow {
    type Error = StoreError;
    fn try_from(row: Product) -> Result<Self, StoreError> {
        Ok(ProductRow {
            id: ProductId::new(row.id).ok_or_else(|| StoreError::corrupt(row.id))?,
            name: row.name,
            price: row.price,
            stock: row.stock,
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
            sqlx::query_as("SELECT id, name, price, stock FROM products WHERE id = $1")
                .bind(id.get())
                .fetch_optional(&mut self.0)
                .await
                .map_err(db)?,
        )
    }

    async fn products(&mut self, page: PageRequest) -> Result<Vec<ProductRow>, StoreError> {
        rows(
            sqlx::query_as(
                "SELECT id, name, price, stock FROM products WHERE id > $1 ORDER BY id LIMIT $2",
            )
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
            sqlx::query_as("SELECT id, name, price, stock FROM products WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut self.0)
                .await
                .map_err(db)?,
        )
    }

    async fn insert_product(
        &mut self,
        name: &str,
        price: i64,
        stock: i64,
        now: DateTime<Utc>,
    ) -> Result<ProductRow, StoreError> {
        sqlx::query_as::<_, Product>(
            "INSERT INTO products (name, price, stock, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4) RETURNING id, name, price, stock",
        )
        .bind(name)
        .bind(price)
        .bind(stock)
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
        row(sqlx::query_as(
            "UPDATE products SET name = COALESCE($2, name), price = COALESCE($3, price),
                 stock = COALESCE($4, stock), updated_at = $5
             WHERE id = $1 RETURNING id, name, price, stock",
        )
        .bind(id.get())
        .bind(change.name)
        .bind(change.price)
        .bind(change.stock)
        .bind(now)
        .fetch_optional(&mut self.0)
        .await
        .map_err(db)?)
    }

    async fn lock_products(&mut self, ids: &[ProductId]) -> Result<Vec<ProductRow>, StoreError> {
        let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
        rows(
            sqlx::query_as(
                "SELECT id, name, price, stock FROM products WHERE id = ANY($1)
                 ORDER BY id FOR UPDATE",
            )
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
