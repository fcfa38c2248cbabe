//! Integration tests of brisk-generator.

mod confidence;
mod corpus;
mod errors;
#[cfg(feature = "openai")]
mod fallback;
mod generate;
#[cfg(feature = "openai")]
mod openai;
mod persist;
mod props;
