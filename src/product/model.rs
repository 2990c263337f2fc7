//! A product as the API shows it (and the cache keeps it).

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
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        Product {
            id: row.id,
            name: row.name,
            price: row.price,
            stock: row.stock,
        }
    }
}
