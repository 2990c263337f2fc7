//! Products (상품): the catalogue, its stock, and the admin operations on it.

mod cache;
mod errors;
pub mod limit;
mod model;
mod routes;
pub mod sale;
mod service;
pub mod stock;

pub use cache::ProductCache;
pub use model::Product;
pub use routes::routes;
pub use service::{
    create, find_many, get, list, update, NewProduct, ProductError, ProductPatch, ProductState,
    MAX_PRICE, MAX_STOCK,
};

/// The product the rules' unit tests decide against: in stock (3), no sale window, no limit.
#[cfg(test)]
fn lamp() -> crate::store::product::ProductRow {
    crate::store::product::ProductRow {
        id: crate::ids::ProductId::new(1).expect("positive"),
        name: "Lamp".into(),
        price: 1000,
        stock: 3,
        sale_starts_at: None,
        sale_ends_at: None,
        max_per_user: None,
    }
}
