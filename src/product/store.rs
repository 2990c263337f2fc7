use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::service::Product;
use crate::db::DbError;
use crate::ids::ProductId;
use crate::page::PageRequest;

const COLUMNS: &str = "id, name, price, stock";

fn product(row: &AnyRow) -> Result<Product, DbError> {
    let id: i64 = row.try_get("id")?;
    Ok(Product {
        id: ProductId::new(id).ok_or_else(|| DbError::Corrupt(format!("product id {id}")))?,
        name: row.try_get("name")?,
        price: row.try_get("price")?,
        stock: row.try_get("stock")?,
    })
}

pub(super) async fn get(
    conn: &mut AnyConnection,
    id: ProductId,
) -> Result<Option<Product>, DbError> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
        .bind(id.get())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(product)
        .transpose()
}

pub(super) async fn list(
    conn: &mut AnyConnection,
    page: PageRequest,
) -> Result<Vec<Product>, DbError> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM products WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(page.after.unwrap_or(0))
    .bind(page.fetch_limit())
    .fetch_all(conn)
    .await?
    .iter()
    .map(product)
    .collect()
}

pub(super) async fn find_many(
    conn: &mut AnyConnection,
    ids: &[ProductId],
) -> Result<Vec<Product>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM products WHERE id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(id.get());
    }
    query.fetch_all(conn).await?.iter().map(product).collect()
}

pub(super) async fn insert(
    conn: &mut AnyConnection,
    name: &str,
    price: i64,
    stock: i64,
    now: i64,
) -> Result<Product, DbError> {
    let row = sqlx::query(&format!(
        "INSERT INTO products (name, price, stock, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
         RETURNING {COLUMNS}"
    ))
    .bind(name)
    .bind(price)
    .bind(stock)
    .bind(now)
    .fetch_one(conn)
    .await?;
    product(&row)
}

pub(super) async fn update(
    conn: &mut AnyConnection,
    id: ProductId,
    name: Option<&str>,
    price: Option<i64>,
    stock: Option<i64>,
    now: i64,
) -> Result<Option<Product>, DbError> {
    sqlx::query(&format!(
        "UPDATE products SET name = COALESCE($2, name), price = COALESCE($3, price),
             stock = COALESCE($4, stock), updated_at = $5
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id.get())
    .bind(name)
    .bind(price)
    .bind(stock)
    .bind(now)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(product)
    .transpose()
}

/// The guard in the WHERE makes overselling impossible whatever the concurrency.
pub(super) async fn decrement_stock(
    conn: &mut AnyConnection,
    id: ProductId,
    quantity: i64,
) -> Result<Option<Product>, DbError> {
    sqlx::query(&format!(
        "UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING {COLUMNS}"
    ))
    .bind(id.get())
    .bind(quantity)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(product)
    .transpose()
}
