//! brisk-ws-hub's integration tests: the hub core without sockets, the
//! WebSocket transport with real clients on 127.0.0.1, and (feature
//! `redis`) the fan-out across hub instances through a testkit Redis.

mod core;
#[cfg(feature = "redis")]
mod redis;
mod support;
mod ws;
