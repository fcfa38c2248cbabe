//! brisk-core's behaviour through its public API.

mod backoff;
mod hash;
mod post;
mod priority;
