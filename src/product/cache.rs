//! A short-lived cache of product details: the hottest read of a flash sale.
//!
//! This instance forgets a product as soon as it changes it (an order's stock, an admin PATCH),
//! so its own answers are exact; changes made by other instances show within the TTL. Orders
//! never read it: stock is decided by the guarded update in the database.

use moka::sync::Cache;
use std::time::Duration;

use super::service::Product;
use crate::ids::ProductId;

const MAX_ENTRIES: u64 = 100_000;

pub struct ProductCache(Cache<ProductId, Product>);

impl ProductCache {
    pub fn new(ttl: Duration) -> Self {
        Self(
            Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ttl)
                .build(),
        )
    }

    pub(super) fn get(&self, id: ProductId) -> Option<Product> {
        self.0.get(&id)
    }

    pub(super) fn put(&self, product: Product) {
        self.0.insert(product.id, product);
    }

    /// Call after the transaction that changed these products has committed.
    pub fn forget(&self, ids: impl IntoIterator<Item = ProductId>) {
        for id in ids {
            self.0.invalidate(&id);
        }
    }
}
