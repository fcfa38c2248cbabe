//! brisk-monitor integration tests: behaviour through the public API.

mod alerts;
#[cfg(feature = "email")]
mod email;
mod exposition;
mod health;
mod log_notifier;
mod metrics;
mod recorder;
mod report;
#[cfg(feature = "system")]
mod system;
mod webhook;
