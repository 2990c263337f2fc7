//! A short-lived cache of product details: the hottest read of a flash sale.
//!
//! This instance forgets a product as soon as it changes it (an order's stock, an admin PATCH),
//! so its own answers are exact; changes made by other instances show within the TTL. Orders
//! never read it: stock is decided by the guarded update in the database.

use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::model::Product;
use crate::ids::ProductId;

const MAX_ENTRIES: u64 = 100_000;
const STRIPES: usize = 64;

pub struct ProductCache {
    entries: Cache<ProductId, Product>,
    /// Bumped by every `forget`, per stripe of ids. A read that started before a change
    /// committed may return the old row after the change's `forget`; comparing epochs keeps
    /// such a row out of the cache.
    epochs: [AtomicU64; STRIPES],
}

/// Taken before reading the database; `put` only keeps rows read under an unchanged epoch.
pub(super) struct Epoch(u64);

impl ProductCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ttl)
                .build(),
            epochs: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn stripe(&self, id: ProductId) -> &AtomicU64 {
        &self.epochs[id.get() as usize % STRIPES]
    }

    pub(super) fn get(&self, id: ProductId) -> Option<Product> {
        self.entries.get(&id)
    }

    pub(super) fn epoch(&self, id: ProductId) -> Epoch {
        Epoch(self.stripe(id).load(Ordering::Acquire))
    }

    pub(super) fn put(&self, product: Product, read_at: Epoch) {
        let id = product.id;
        if self.stripe(id).load(Ordering::Acquire) == read_at.0 {
            self.entries.insert(id, product);
            // A forget that raced with the insert must still win.
            if self.stripe(id).load(Ordering::Acquire) != read_at.0 {
                self.entries.invalidate(&id);
            }
        }
    }

    /// Call after the transaction that changed these products has committed.
    pub fn forget(&self, ids: impl IntoIterator<Item = ProductId>) {
        for id in ids {
            self.stripe(id).fetch_add(1, Ordering::AcqRel);
            self.entries.invalidate(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: i64, stock: i64) -> Product {
        Product {
            id: ProductId::new(id).unwrap(),
            name: "p".into(),
            price: 1,
            stock,
            sale_starts_at: None,
            sale_ends_at: None,
            max_per_user: None,
        }
    }

    #[test]
    fn a_row_read_before_a_change_is_not_kept_after_it() {
        let cache = ProductCache::new(Duration::from_secs(60));
        let id = ProductId::new(7).unwrap();
        let epoch = cache.epoch(id); // a reader starts, reads stock 10 ...
        cache.forget([id]); // ... an order commits and forgets the product ...
        cache.put(product(7, 10), epoch); // ... then the reader tries to cache its old row
        assert_eq!(cache.get(id), None);
        let epoch = cache.epoch(id);
        cache.put(product(7, 9), epoch);
        assert_eq!(cache.get(id).map(|p| p.stock), Some(9));
    }
}
