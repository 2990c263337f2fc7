//! A product as the API shows it (and the cache keeps it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ids::ProductId;
use crate::store::product::ProductRow;

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
    /// Orders are taken from this instant; null: open from the start.
    #[schema(required = true)]
    pub sale_starts_at: Option<DateTime<Utc>>,
    /// Orders are taken until this instant (exclusive); null: never closes.
    #[schema(required = true)]
    pub sale_ends_at: Option<DateTime<Utc>>,
    /// The most units of it one customer may hold in paid orders; null: no limit.
    #[schema(required = true, minimum = 1, maximum = 1000, example = 2)]
    pub max_per_user: Option<i64>,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        Product {
            id: row.id,
            name: row.name,
            price: row.price,
            stock: row.stock,
            sale_starts_at: row.sale_starts_at,
            sale_ends_at: row.sale_ends_at,
            max_per_user: row.max_per_user,
        }
    }
}
