//! Replays a cache access trace through brisk-cache and its peers and prints
//! their hit ratios.
//!
//! ```text
//! cargo run --release -p brisk-benches --bin cache-trace -- \
//!     --trace ../shared/data/traces/OLTP.lis.zst --format arc \
//!     --capacity 256,1000,2000 --policy brisk,moka,quick_cache,lru [--threads N] [--json]
//! ```
//!
//! Formats: `arc` (lines `start nblocks ignore reqno`, standing for the keys
//! `start..start+nblocks`) and `lirs` (one key per line; lines starting with
//! `*` are skipped). Files may be plain, `.zst` or `.gz`.
//!
//! Each request is a get, then an insert on a miss. With `--threads N`,
//! N threads share one cache (`lru`, which is not thread-safe, behind a
//! mutex) and take the trace's requests in order from one shared cursor (an
//! atomic counter, one request at a time), as workers take requests off one
//! queue: the trace is replayed interleaved, reordered only by the requests
//! in flight (at most one per thread), and the threads never wait for each
//! other. `--round-robin` instead deals the trace to the threads in turn
//! (thread t gets requests t, t + N, ...) and lets them run freely: on a
//! loaded machine they drift thousands of requests apart, which reorders the
//! trace and costs every policy hit ratio for reasons that have nothing to
//! do with concurrency; `--lockstep K` (which implies `--round-robin`) makes
//! the dealt threads meet at a barrier every K requests each.
//! `--json` prints one object per line:
//! `{"policy","capacity","requests","hits","hit_ratio"}`.
//!
//! `cache-trace --memory N [--policy ...]` instead measures memory: for each
//! policy, in a fresh process, the growth of the resident set size while
//! filling a cache of capacity N with N `u64 → u64` entries, printed as bytes
//! per entry and as overhead (bytes per entry beyond the 16 of the key and
//! value). Linux only (it reads `/proc/self/statm`).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Arc,
    Lirs,
}

/// Parses an ARC trace: each line `start nblocks ignore reqno` expands to
/// the keys `start..start + nblocks`.
fn parse_arc(input: impl BufRead, out: &mut Vec<u64>) -> Result<(), String> {
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", n + 1))?;
        let mut fields = line.split_ascii_whitespace();
        let Some(start) = fields.next() else { continue };
        let start: u64 = start
            .parse()
            .map_err(|e| format!("line {}: start {start:?}: {e}", n + 1))?;
        let count: u64 = fields
            .next()
            .ok_or_else(|| format!("line {}: missing block count", n + 1))?
            .parse()
            .map_err(|e| format!("line {}: block count: {e}", n + 1))?;
        out.extend(start..start + count);
    }
    Ok(())
}

/// Parses a LIRS trace: one key per line; `*` lines and blank lines are skipped.
fn parse_lirs(input: impl BufRead, out: &mut Vec<u64>) -> Result<(), String> {
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", n + 1))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('*') {
            continue;
        }
        out.push(
            line.parse()
                .map_err(|e| format!("line {}: key {line:?}: {e}", n + 1))?,
        );
    }
    Ok(())
}

fn open(path: &str) -> Result<Box<dyn BufRead>, String> {
    let file = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let reader: Box<dyn Read> = if path.ends_with(".zst") {
        Box::new(zstd::Decoder::new(file).map_err(|e| format!("{path}: {e}"))?)
    } else if path.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, reader)))
}

fn load(path: &str, format: Format) -> Result<Vec<u64>, String> {
    let mut keys = Vec::new();
    let input = open(path)?;
    match format {
        Format::Arc => parse_arc(input, &mut keys)?,
        Format::Lirs => parse_lirs(input, &mut keys)?,
    }
    Ok(keys)
}

/// A cache under test: a get, then an insert on a miss. Returns whether it hit.
trait Replay: Sync {
    fn access(&self, key: u64) -> bool;
}

struct Brisk(brisk_cache::Cache<u64, u64>);
impl Replay for Brisk {
    fn access(&self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, key);
        false
    }
}

struct Moka(moka::sync::Cache<u64, u64>);
impl Replay for Moka {
    fn access(&self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, key);
        false
    }
}

struct Quick(quick_cache::sync::Cache<u64, u64>);
impl Replay for Quick {
    fn access(&self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, key);
        false
    }
}

struct Lru(Mutex<lru::LruCache<u64, u64>>);
impl Replay for Lru {
    fn access(&self, key: u64) -> bool {
        let mut cache = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.get(&key).is_some() {
            return true;
        }
        cache.put(key, key);
        false
    }
}

fn make(policy: &str, capacity: usize) -> Result<Box<dyn Replay>, String> {
    let cap64 = capacity as u64;
    Ok(match policy {
        "brisk" => Box::new(Brisk(
            brisk_cache::Cache::builder()
                .max_capacity(cap64)
                .build()
                .map_err(|e| e.to_string())?,
        )),
        "moka" => Box::new(Moka(moka::sync::Cache::new(cap64))),
        "quick_cache" => Box::new(Quick(quick_cache::sync::Cache::new(capacity))),
        "lru" => Box::new(Lru(Mutex::new(lru::LruCache::new(
            NonZeroUsize::new(capacity).ok_or("capacity must be at least 1")?,
        )))),
        other => {
            return Err(format!(
                "unknown policy {other:?}: expected brisk, moka, quick_cache or lru"
            ));
        }
    })
}

/// Replays `keys` through `cache` on `threads` threads (round-robin); returns
/// hits. With `lockstep` > 0 the threads wait for each other every
/// `lockstep` requests.
fn replay(cache: &dyn Replay, keys: &[u64], threads: usize, lockstep: usize) -> u64 {
    if threads <= 1 {
        return keys.iter().filter(|&&k| cache.access(k)).count() as u64;
    }
    let hits = AtomicU64::new(0);
    let rounds = if lockstep == 0 {
        1
    } else {
        keys.len().div_ceil(threads).div_ceil(lockstep)
    };
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let hits = &hits;
            let barrier = &barrier;
            s.spawn(move || {
                let mut mine = keys.iter().skip(t).step_by(threads);
                let per_round = if lockstep == 0 { usize::MAX } else { lockstep };
                let mut count = 0u64;
                for _ in 0..rounds {
                    count += mine
                        .by_ref()
                        .take(per_round)
                        .filter(|&&k| cache.access(k))
                        .count() as u64;
                    if lockstep != 0 {
                        barrier.wait();
                    }
                }
                hits.fetch_add(count, Ordering::Relaxed);
            });
        }
    });
    hits.into_inner()
}

/// Replays `keys` through `cache` on `threads` threads that take the next
/// request from one shared cursor, in trace order; returns hits.
fn replay_cursor(cache: &dyn Replay, keys: &[u64], threads: usize) -> u64 {
    let next = AtomicUsize::new(0);
    let hits = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut count = 0u64;
                while let Some(&k) = keys.get(next.fetch_add(1, Ordering::Relaxed)) {
                    count += u64::from(cache.access(k));
                }
                hits.fetch_add(count, Ordering::Relaxed);
            });
        }
    });
    hits.into_inner()
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> Result<u64, String> {
    let statm = std::fs::read_to_string("/proc/self/statm").map_err(|e| format!("/proc/self/statm: {e}"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or("unreadable /proc/self/statm")?;
    Ok(pages * 4096)
}

/// Fills one cache with `n` entries and prints its RSS growth per entry.
fn memory_one(policy: &str, n: usize) -> Result<(), String> {
    let keys: Vec<u64> = (0..n as u64)
        .map(|k| k.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let before = rss_bytes()?;
    let cache = make(policy, n)?;
    for &k in &keys {
        cache.access(k);
    }
    let after = rss_bytes()?;
    let resident = keys.iter().filter(|&&k| cache.access(k)).count();
    #[allow(clippy::cast_precision_loss)]
    let per_entry = (after - before) as f64 / n as f64;
    println!(
        "{policy:<12} {n:>9} {resident:>9} {per_entry:>10.1} {:>10.1}",
        per_entry - 16.0
    );
    drop(cache);
    Ok(())
}

fn memory(policies: &[String], n: usize) -> Result<(), String> {
    println!(
        "{:<12} {:>9} {:>9} {:>10} {:>10}",
        "policy", "capacity", "resident", "B/entry", "overhead"
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    for policy in policies {
        let status = std::process::Command::new(&exe)
            .args(["--memory-one", policy, &n.to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("measuring {policy} failed"));
        }
    }
    Ok(())
}

struct Args {
    trace: String,
    format: Format,
    capacities: Vec<usize>,
    policies: Vec<String>,
    threads: usize,
    lockstep: usize,
    round_robin: bool,
    json: bool,
}

const USAGE: &str = "usage: cache-trace --trace FILE --format arc|lirs --capacity N[,N...] \
                     [--policy brisk,moka,quick_cache,lru] [--threads N [--round-robin] [--lockstep K]] [--json]\n   \
                     or: cache-trace --memory N [--policy brisk,moka,quick_cache,lru]";

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut trace = None;
    let mut format = None;
    let mut capacities = Vec::new();
    let mut policies = vec!["brisk".into(), "moka".into(), "quick_cache".into(), "lru".into()];
    let mut threads = 1;
    let mut lockstep = 0;
    let mut round_robin = false;
    let mut json = false;
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--trace" => trace = Some(value()?),
            "--format" => {
                format = Some(match value()?.as_str() {
                    "arc" => Format::Arc,
                    "lirs" => Format::Lirs,
                    other => return Err(format!("unknown format {other:?}: expected arc or lirs")),
                });
            }
            "--capacity" => {
                for c in value()?.split(',') {
                    capacities.push(c.trim().parse().map_err(|e| format!("capacity {c:?}: {e}"))?);
                }
            }
            "--policy" => policies = value()?.split(',').map(|p| p.trim().to_owned()).collect(),
            "--threads" => threads = value()?.parse().map_err(|e| format!("threads: {e}"))?,
            "--lockstep" => lockstep = value()?.parse().map_err(|e| format!("lockstep: {e}"))?,
            "--round-robin" => round_robin = true,
            "--json" => json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        trace: trace.ok_or_else(|| format!("--trace is required\n{USAGE}"))?,
        format: format.ok_or_else(|| format!("--format is required\n{USAGE}"))?,
        capacities: if capacities.is_empty() {
            return Err(format!("--capacity is required\n{USAGE}"));
        } else {
            capacities
        },
        policies,
        threads: threads.max(1),
        lockstep,
        round_robin: round_robin || lockstep > 0,
        json,
    })
}

fn run() -> Result<(), String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--memory-one") && argv.len() == 3 {
        let n = argv[2].parse().map_err(|e| format!("entries: {e}"))?;
        return memory_one(&argv[1], n);
    }
    if argv.first().map(String::as_str) == Some("--memory") {
        let n = argv
            .get(1)
            .ok_or("--memory needs a number of entries")?
            .parse()
            .map_err(|e| format!("entries: {e}"))?;
        let policies = match (argv.get(2).map(String::as_str), argv.get(3)) {
            (Some("--policy"), Some(list)) => list.split(',').map(str::to_owned).collect(),
            _ => vec!["brisk".into(), "moka".into(), "quick_cache".into(), "lru".into()],
        };
        return memory(&policies, n);
    }
    let args = parse_args(argv.into_iter())?;
    let keys = load(&args.trace, args.format)?;
    if !args.json {
        println!(
            "trace {} ({} requests), {} thread(s){}",
            args.trace,
            keys.len(),
            args.threads,
            if args.threads == 1 {
                String::new()
            } else if args.lockstep > 0 {
                format!(", dealt round-robin, in step every {} requests", args.lockstep)
            } else if args.round_robin {
                ", dealt round-robin, free-running".to_owned()
            } else {
                ", taking requests in order from one shared cursor".to_owned()
            }
        );
        println!(
            "{:<12} {:>9} {:>10} {:>10} {:>9}",
            "policy", "capacity", "requests", "hits", "hit %"
        );
    }
    for &capacity in &args.capacities {
        for policy in &args.policies {
            let cache = make(policy, capacity)?;
            let hits = if args.round_robin {
                replay(cache.as_ref(), &keys, args.threads, args.lockstep)
            } else {
                replay_cursor(cache.as_ref(), &keys, args.threads)
            };
            #[allow(clippy::cast_precision_loss)]
            let ratio = if keys.is_empty() {
                0.0
            } else {
                hits as f64 / keys.len() as f64
            };
            if args.json {
                let line = serde_json::json!({
                    "policy": policy,
                    "capacity": capacity,
                    "requests": keys.len(),
                    "hits": hits,
                    "hit_ratio": ratio,
                });
                println!("{line}");
            } else {
                println!(
                    "{policy:<12} {capacity:>9} {:>10} {hits:>10} {:>8.2}%",
                    keys.len(),
                    ratio * 100.0
                );
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = io::Write::write_all(&mut io::stderr(), format!("cache-trace: {e}\n").as_bytes());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arc_lines_expand_to_block_ranges() {
        let input = "10 3 0 1\n\n7 1 0 2\n";
        let mut keys = Vec::new();
        parse_arc(input.as_bytes(), &mut keys).unwrap();
        assert_eq!(keys, vec![10, 11, 12, 7]);
        assert!(parse_arc("x 1 0 0\n".as_bytes(), &mut keys).is_err());
        assert!(parse_arc("5\n".as_bytes(), &mut keys).is_err());
    }

    #[test]
    fn lirs_skips_star_lines() {
        let input = "*\n1\n2\n* checkpoint\n\n3\n";
        let mut keys = Vec::new();
        parse_lirs(input.as_bytes(), &mut keys).unwrap();
        assert_eq!(keys, vec![1, 2, 3]);
        assert!(parse_lirs("1.5\n".as_bytes(), &mut keys).is_err());
    }

    #[test]
    fn replay_counts_hits_for_every_policy() {
        // 1,2,3 miss, then 1,2,3 hit with room for all three.
        let keys = [1, 2, 3, 1, 2, 3];
        for policy in ["brisk", "moka", "quick_cache", "lru"] {
            let cache = make(policy, 100).unwrap();
            assert_eq!(replay(cache.as_ref(), &keys, 1, 0), 3, "{policy}");
        }
        // Two threads in lockstep see every request once: with room for
        // all keys, each key misses exactly once.
        let keys: Vec<u64> = (0..1000).map(|i| i % 10).collect();
        for lockstep in [0, 7] {
            let cache = make("lru", 100).unwrap();
            assert_eq!(
                replay(cache.as_ref(), &keys, 2, lockstep),
                990,
                "lockstep {lockstep}"
            );
        }
        // The shared cursor hands every request to exactly one thread.
        struct Seen(Mutex<Vec<u64>>);
        impl Replay for Seen {
            fn access(&self, key: u64) -> bool {
                self.0.lock().unwrap().push(key);
                key.is_multiple_of(2)
            }
        }
        let keys: Vec<u64> = (0..1000).collect();
        for threads in [1, 2, 3] {
            let seen = Seen(Mutex::new(Vec::new()));
            assert_eq!(replay_cursor(&seen, &keys, threads), 500, "{threads} threads");
            let mut got = seen.0.into_inner().unwrap();
            got.sort_unstable();
            assert_eq!(got, keys, "{threads} threads");
        }
        assert!(make("fifo", 10).is_err());
    }

    #[test]
    fn args_parse() {
        let args = parse_args(
            [
                "--trace",
                "t.gz",
                "--format",
                "lirs",
                "--capacity",
                "256,1000",
                "--threads",
                "2",
                "--lockstep",
                "100",
                "--json",
            ]
            .into_iter()
            .map(String::from),
        )
        .unwrap();
        assert_eq!(args.capacities, vec![256, 1000]);
        assert_eq!(args.format, Format::Lirs);
        assert_eq!(args.threads, 2);
        assert_eq!(args.lockstep, 100);
        assert!(args.round_robin, "--lockstep deals round-robin");
        assert!(args.json);
        assert!(parse_args(["--format", "arc"].into_iter().map(String::from)).is_err());
        let base = [
            "--trace",
            "t",
            "--format",
            "arc",
            "--capacity",
            "1",
            "--threads",
            "2",
        ];
        let cursor = parse_args(base.into_iter().map(String::from)).unwrap();
        assert!(!cursor.round_robin, "the shared cursor is the default");
        let dealt = base.into_iter().chain(["--round-robin"]).map(String::from);
        assert!(parse_args(dealt).unwrap().round_robin);
    }
}
