//! `cache-paired`: the `cache_get_hit` and `cache_mixed` workloads of the
//! criterion bench, timed in interleaved rounds so brisk and its peers share
//! the machine's noise.
//!
//! Criterion measures one function after another for seconds each; on a
//! shared machine whose speed drifts over seconds (other tenants, steal
//! time) a peer measured in a fast stretch and brisk in a slow one give a
//! ratio that says more about the machine than about the caches. Here each
//! round times every cache for a few milliseconds, in an order that rotates
//! from round to round, and the verdict is the median over the rounds of
//! the per-round ratio (peer time / brisk time: above 1 means brisk is
//! faster), beside each cache's median time per iteration.
//!
//! ```text
//! cargo run --release -p brisk-benches --bin cache-paired -- [--group get_hit|mixed] [--threads 1|2] [--rounds N] [--slot-ms MS] [--json]
//! ```

use std::time::Duration;

use brisk_benches::cache_workload::{
    BATCH, CAPACITY, Group, KEYS, caches, fill, get_hit_work, mixed_work, timed,
};

const USAGE: &str = "usage: cache-paired [--group get_hit|mixed] [--threads 1|2] [--rounds N (1-100000)] [--slot-ms MS (1-1000)] [--json]";

#[derive(Debug)]
struct Args {
    groups: Vec<Group>,
    threads: Vec<usize>,
    rounds: usize,
    slot: Duration,
    json: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = Args {
        groups: vec![Group::GetHit, Group::Mixed],
        threads: vec![1, 2],
        rounds: 200,
        slot: Duration::from_millis(5),
        json: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--group" => {
                out.groups = match value()?.as_str() {
                    "get_hit" | "cache_get_hit" => vec![Group::GetHit],
                    "mixed" | "cache_mixed" => vec![Group::Mixed],
                    other => return Err(format!("--group: unknown group {other:?}\n{USAGE}")),
                }
            }
            "--threads" => {
                out.threads = match value()?.as_str() {
                    "1" => vec![1],
                    "2" => vec![2],
                    other => return Err(format!("--threads: {other:?} is not 1 or 2\n{USAGE}")),
                }
            }
            "--rounds" => {
                let v = value()?;
                out.rounds = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or_else(|| format!("--rounds: {v:?} is not a number from 1 to 100000\n{USAGE}"))?;
            }
            "--slot-ms" => {
                let v = value()?;
                let ms: u64 = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| format!("--slot-ms: {v:?} is not a number from 1 to 1000\n{USAGE}"))?;
                out.slot = Duration::from_millis(ms);
            }
            "--json" => out.json = true,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(out)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    for &group in &args.groups {
        let name = match group {
            Group::GetHit => "cache_get_hit",
            Group::Mixed => "cache_mixed",
        };
        let work = match group {
            Group::GetHit => get_hit_work(KEYS, CAPACITY, BATCH),
            Group::Mixed => mixed_work(KEYS, BATCH),
        };
        let caches = caches(CAPACITY);
        for (_, cache) in &caches {
            fill(cache.as_ref(), CAPACITY);
        }
        for &threads in &args.threads {
            // Iterations per slot, per cache: about `slot` each (warms up too).
            let iters: Vec<u64> = caches
                .iter()
                .map(|(_, c)| {
                    let once = timed(c.as_ref(), group, threads, 20, &work) / 20;
                    let n = args.slot.as_nanos() / once.as_nanos().max(1);
                    u64::try_from(n).unwrap_or(u64::MAX).max(1)
                })
                .collect();
            let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(args.rounds); caches.len()];
            for round in 0..args.rounds {
                for j in 0..caches.len() {
                    let c = (round + j) % caches.len();
                    let took = timed(caches[c].1.as_ref(), group, threads, iters[c], &work);
                    #[allow(clippy::cast_precision_loss)]
                    times[c].push(took.as_nanos() as f64 / iters[c] as f64);
                }
            }
            let brisk = &times[0];
            let mut row = serde_json::Map::new();
            row.insert("group".into(), name.into());
            row.insert("threads".into(), threads.into());
            row.insert("rounds".into(), args.rounds.into());
            let mut text = format!("{name}/{threads}:");
            for (c, (cache, _)) in caches.iter().enumerate() {
                let med = median(&mut times[c].clone());
                row.insert(format!("{cache}_median_ns"), med.into());
                text.push_str(&format!(" {cache} {:.1} µs", med / 1000.0));
                if c > 0 {
                    let mut ratios: Vec<f64> = times[c].iter().zip(brisk).map(|(p, b)| p / b).collect();
                    let r = median(&mut ratios);
                    row.insert(format!("{cache}_over_brisk"), r.into());
                    text.push_str(&format!(" ({cache} / brisk {r:.3}×)"));
                }
                text.push(';');
            }
            if args.json {
                println!("{}", serde_json::Value::Object(row));
            } else {
                println!("{}", text.trim_end_matches(';'));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| (*s).to_string()))
    }

    #[test]
    fn arguments_are_parsed_and_checked() {
        let a = parse(&[
            "--group",
            "mixed",
            "--threads",
            "2",
            "--rounds",
            "7",
            "--slot-ms",
            "3",
            "--json",
        ])
        .unwrap();
        assert_eq!(a.groups, vec![Group::Mixed]);
        assert_eq!(a.threads, vec![2]);
        assert_eq!(a.rounds, 7);
        assert_eq!(a.slot, Duration::from_millis(3));
        assert!(a.json);
        let d = parse(&[]).unwrap();
        assert_eq!(d.groups.len(), 2);
        assert_eq!(d.threads, vec![1, 2]);
        assert!(parse(&["--threads", "3"]).unwrap_err().contains("--threads"));
        assert!(parse(&["--rounds", "0"]).unwrap_err().contains("--rounds"));
        assert!(parse(&["--group", "x"]).unwrap_err().contains("--group"));
        assert!(parse(&["--rounds"]).unwrap_err().contains("needs a value"));
    }

    #[test]
    fn the_median_of_odd_and_even_lengths() {
        assert!((median(&mut [3.0, 1.0, 2.0]) - 2.0).abs() < 1e-12);
        assert!((median(&mut [4.0, 1.0, 3.0, 2.0]) - 2.5).abs() < 1e-12);
    }
}
