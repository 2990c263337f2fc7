//! Products (상품): the catalogue, its stock, and the admin operations on it.

mod cache;
mod errors;
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
