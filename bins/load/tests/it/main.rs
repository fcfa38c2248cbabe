//! brisk-load's behaviour through its public API and its binary, against
//! local axum servers on 127.0.0.1 with known latency and capacity.

mod brisk_server;
mod cli;
mod mix;
mod scenarios;
mod server;
mod suite;
mod target;
mod ws;
