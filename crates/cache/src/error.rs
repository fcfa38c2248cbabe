//! The cache's errors.

/// Why an insert was refused. The value comes back with the error.
///
/// [`Cache::insert`](crate::Cache::insert) leaves such a value uncached and
/// counts it (`rejected` in [`CacheStats`](crate::CacheStats));
/// [`Cache::try_insert`](crate::Cache::try_insert) returns this instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError<V> {
    /// The entry weighs more than the maximum entry weight.
    #[error("entry weighs {weight}, over the maximum entry weight of {max}")]
    TooHeavy {
        /// The value that was not cached.
        value: V,
        /// Its weight, as the weigher measured it.
        weight: u64,
        /// The cache's maximum entry weight.
        max: u64,
    },
}

impl<V> InsertError<V> {
    /// The value that was not cached.
    pub fn into_value(self) -> V {
        match self {
            InsertError::TooHeavy { value, .. } => value,
        }
    }
}

/// A namespace name that the cache was not built with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown cache namespace {name:?}; namespaces are declared with CacheBuilder::namespace")]
#[non_exhaustive]
pub struct UnknownNamespace {
    /// The name asked for.
    pub name: String,
}
