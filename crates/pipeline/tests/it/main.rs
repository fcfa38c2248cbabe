//! brisk-pipeline's integration tests, through the public API. Time is
//! tokio's paused time (with `TokioClock`) or a `ManualClock`: no test
//! waits in real time.

mod balance;
mod batching;
mod breaker;
mod common;
mod config;
mod execution;
mod flight;
mod queue;
