//! brisk-load: open-loop load, stress, spike, soak and breaking-point runs
//! over loopback, with SLA verdicts, and WebSocket broadcast probes.
//!
//! The `brisk-load` binary is the usual way in (see `docs/load.md`); this
//! library is what it is made of, for tests and for programs that want to
//! run a scenario in-process.
//!
//! ```
//! use brisk_load::{Mix, Schedule, Phase, Target};
//! use std::time::Duration;
//!
//! // Only loopback targets, unless remote ones are allowed explicitly.
//! let target = Target::parse("http://127.0.0.1:8000", false)?;
//! assert!(Target::parse("http://203.0.113.9:80", false).is_err());
//!
//! // The built-in mix for brisk-server, and a schedule: 100 req/s for 2 s,
//! // then 1,000 req/s for 1 s.
//! let mix = Mix::brisk_server();
//! assert_eq!(mix.sla().map(|s| s.p99_ms), Some(10.0));
//! let schedule = Schedule::new(vec![
//!     Phase::new("baseline", 100.0, Duration::from_secs(2)),
//!     Phase::new("spike", 1_000.0, Duration::from_secs(1)),
//! ], 1_000_000);
//! assert_eq!(schedule.total(), 1_200);
//! # let _ = target;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Main types: [`HttpRun`] (the HTTP scenarios), [`WsRun`] (WebSocket),
//! [`Mix`] (what each request is), [`Report`] (table, JSON, HTML), and
//! [`run_suite`] (brisk's parts in-process beside the old system's figures).
//!
//! # Implementation notes
//!
//! - **Open loop.** The [`Schedule`] fixes every request's due time; a
//!   pool of workers, one keep-alive connection each, sends them. Latency
//!   is measured from the due time into an HdrHistogram, so a stalled
//!   server shows up as the queue it causes (no coordinated omission); the
//!   time from the actual send is kept beside it as the "service time".
//! - **The client** is hyper's low-level HTTP/1.1 connection: no pool
//!   lookups or URL parsing per request, so the load generator costs
//!   little next to the server on a small machine.
//! - **Bounded.** Every run has a request cap and a time cap; a stop
//!   signal (Ctrl-C) ends it with a partial report.

mod client;
mod engine;
mod error;
mod fanout;
mod metrics;
mod mix;
mod report;
mod scenario;
mod schedule;
mod suite;
mod target;
mod ws;

pub use engine::StopSignal;
pub use error::LoadError;
pub use fanout::run_suite_client;
pub use metrics::{ServerSample, prometheus_value};
pub use mix::{DEFAULT_MIX_TOML, Mix, RequestSpec, Sla};
pub use report::{
    BreakingPointReport, Percentiles, PhaseReport, Report, RequestCount, ServerTrend, SoakReport,
    SpikeReport, Summary, Trial, Verdict, WindowReport, WsReport, slope,
};
pub use scenario::{BreakingPointSearch, HttpRun};
pub use schedule::{Phase, Schedule};
pub use suite::{Scale, SuiteLine, SuiteOptions, run_suite, suite_table};
pub use target::{Target, is_loopback};
pub use ws::{MAX_CLIENT_PROCESSES, MAX_CONNECTIONS, WsRun, run_ws_client};
