//! brisk-pattern-matcher's integration tests, through the public API.

mod api;
mod cases;
mod dictionary;
mod props;
mod reload;
