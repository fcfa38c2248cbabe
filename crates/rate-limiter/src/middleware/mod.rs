//! The HTTP layer (feature `tower`): `RateLimitLayer` and its service.

mod layer;
mod service;

pub use layer::{KeyFn, KeySource, RateLimitLayer, RateLimitLayerBuilder};
pub use service::{RateLimit, ResponseFuture};
