//! Refresh-ahead, stale serving and adaptive TTL on a (simulated) quote
//! service whose upstream is slow to change and sometimes down.
//!
//! ```text
//! cargo run -p brisk-examples --example cache_refresh            # one simulated hour
//! cargo run -p brisk-examples --example cache_refresh -- 7200    # seconds to simulate
//! ```
//!
//! Every simulated second a reader asks for the quotes of five symbols.
//! Entries live 60 s; a read in their last 10 s starts one background
//! reload, so readers never wait for the upstream. The upstream is down for
//! minutes 20 to 22: failed reloads let the cached quotes serve stale for
//! up to 5 minutes instead of turning into misses. Symbols whose quote
//! rarely changes get longer TTLs (adaptive TTL, 30 s to 10 min), so they
//! cost fewer upstream calls. Time is a manual clock, so nothing waits.

use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brisk_cache::{Cache, CacheStats, NamespaceConfig};
use brisk_core::{Clock, ManualClock};

/// A background reload, as the cache hands it to its executor.
type Task = Box<dyn FnOnce() + Send>;

const SYMBOLS: [&str; 5] = ["ABC", "XYZ", "QQQ", "BOND", "GOLD"];

#[derive(Debug)]
struct Unavailable;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("quote service unavailable")
    }
}

impl std::error::Error for Unavailable {}

/// The upstream: quotes that change every `period` seconds per symbol
/// (ABC every 20 s ... GOLD never), down between `outage`.
struct Upstream {
    clock: ManualClock,
    start: std::time::Instant,
    calls: AtomicU64,
    outage: std::ops::Range<u64>,
}

impl Upstream {
    fn quote(&self, symbol: &str) -> Result<u64, Unavailable> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now().duration_since(self.start).as_secs();
        if self.outage.contains(&now) {
            return Err(Unavailable);
        }
        let period = match symbol {
            "ABC" => 20,
            "XYZ" => 120,
            "QQQ" => 600,
            "BOND" => 3_600,
            _ => u64::MAX,
        };
        Ok(100 + now / period)
    }
}

/// What the simulation saw.
#[derive(Debug)]
struct Report {
    stats: CacheStats,
    reads: u64,
    served: u64,
    upstream_calls: u64,
}

fn simulate(seconds: u64) -> Result<Report, Box<dyn std::error::Error>> {
    let clock = ManualClock::new();
    let upstream = Arc::new(Upstream {
        start: clock.now(),
        clock: clock.clone(),
        calls: AtomicU64::new(0),
        outage: 20 * 60..22 * 60,
    });
    // Background reloads go to a queue that a "worker" drains every second.
    let queue: Arc<Mutex<Vec<Task>>> = Arc::default();
    let loader = Arc::clone(&upstream);
    let pending = Arc::clone(&queue);
    let cache: Cache<&'static str, u64> = Cache::builder()
        .namespace(
            "quotes",
            NamespaceConfig::new()
                .ttl(Duration::from_secs(60))
                .refresh_ahead(Duration::from_secs(10))
                .stale_limit(Duration::from_secs(5 * 60))
                .adaptive_ttl(Duration::from_secs(30), Duration::from_secs(600)),
        )
        .clock(clock.shared())
        .reloader(move |_namespace: &str, symbol: &&'static str| loader.quote(symbol))
        .refresh_executor(move |task| pending.lock().expect("queue").push(task))
        .build()?;
    let quotes = cache.namespace("quotes")?;
    let (mut reads, mut served) = (0, 0);
    for _ in 0..seconds {
        for symbol in SYMBOLS {
            reads += 1;
            let found = quotes.get_with(symbol, || upstream.quote(symbol));
            if found.is_ok() {
                served += 1;
            }
        }
        let tasks = std::mem::take(&mut *queue.lock().expect("queue"));
        for task in tasks {
            task();
        }
        clock.advance(Duration::from_secs(1));
    }
    Ok(Report {
        stats: quotes.stats(),
        reads,
        served,
        upstream_calls: upstream.calls.load(Ordering::Relaxed),
    })
}

fn main() -> ExitCode {
    let seconds = match std::env::args().nth(1).map(|a| a.parse::<u64>()) {
        None => 3_600,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("cache_refresh: the argument is a number of seconds: {e}");
            return ExitCode::from(2);
        }
    };
    match simulate(seconds) {
        Ok(r) => {
            let s = r.stats;
            println!("reads             {}", r.reads);
            println!("served            {} ({} failed)", r.served, r.reads - r.served);
            println!("hits              {} ({:.1}%)", s.hits, s.hit_ratio() * 100.0);
            println!("  of them stale   {}", s.stale_hits);
            println!("refreshes         {}", s.refreshes);
            println!(
                "upstream calls    {} ({} failed)",
                r.upstream_calls, s.load_errors
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cache_refresh: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_ride_out_the_outage_on_stale_quotes() {
        let r = simulate(3_600).unwrap();
        assert_eq!(r.reads, 5 * 3_600);
        // Only the first read of each symbol misses; the two-minute outage
        // is served stale (within the 5-minute limit), never failed.
        assert_eq!(r.served, r.reads);
        assert_eq!(r.stats.misses, 5);
        assert!(r.stats.stale_hits > 0, "the outage served stale quotes");
        assert!(r.stats.load_errors > 0, "reloads failed during the outage");
        // Adaptive TTL: a fixed 60 s TTL would reload each symbol about once
        // a minute (some 300 successful loads in the hour); stable symbols
        // stretch to 10 minutes, ABC (changing every 20 s) stays at 30 s.
        assert!(r.stats.loads < 300, "{} successful loads", r.stats.loads);
        assert_eq!(r.upstream_calls, r.stats.loads + r.stats.load_errors);
        assert_eq!(r.stats.refreshes, r.stats.loads + r.stats.load_errors - 5);
    }
}
