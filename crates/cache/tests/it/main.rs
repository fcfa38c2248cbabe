//! Behaviour of brisk-cache through its public API.

mod basics;
mod expiry;
mod loads;
mod props;
#[cfg(feature = "redis")]
mod redis_l2;
mod refresh;
#[cfg(feature = "redis")]
mod refresh_l2;
mod stats;
