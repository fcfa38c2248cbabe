//! Behaviour of brisk-cache through its public API.

mod basics;
mod expiry;
mod loads;
mod props;
mod stats;
