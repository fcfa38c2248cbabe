//! The PostgreSQL backend.

mod copy;
mod migrate;
mod pool;

pub(crate) use copy::PgSink;
pub(crate) use pool::pg_error;
pub use pool::{IndexUsage, PgConn, PgPool, PgPoolBuilder, Plan, PoolStats, Recycle, Tx};
