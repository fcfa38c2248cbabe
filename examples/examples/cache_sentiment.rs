//! Caches (simulated) sentiment-API results by content hash and reports what
//! the cache saved.
//!
//! ```text
//! cargo run -p brisk-examples --example cache_sentiment            # 2,000 simulated requests
//! cargo run -p brisk-examples --example cache_sentiment -- 50000   # more
//! ```
//!
//! Each request asks for the sentiment of a short text; popular texts are
//! asked for again and again (a Zipf-like stream). A miss "calls the API",
//! which costs 2,000 micro-dollars; every hit saves that. Simulated time
//! advances one second per request on a manual clock, so the 15-minute TTL
//! of the `sentiment` namespace shows up in the output without waiting.

use std::process::ExitCode;
use std::time::Duration;

use brisk_cache::{Cache, CacheStats, NamespaceConfig};
use brisk_core::{ContentHash, ManualClock};

/// What one API call costs, in micro-dollars.
const API_COST: u32 = 2_000;

/// A stand-in for a sentiment API: a score in -1..=1 from the text.
fn analyse(text: &str) -> Result<f32, String> {
    if text.is_empty() {
        return Err("empty text".into());
    }
    let positive = ["great", "good", "up", "rally"]
        .iter()
        .filter(|w| text.contains(*w))
        .count();
    let negative = ["bad", "down", "crash", "sell"]
        .iter()
        .filter(|w| text.contains(*w))
        .count();
    #[allow(clippy::cast_precision_loss)]
    let score = (positive as f32 - negative as f32) / (positive + negative).max(1) as f32;
    Ok(score)
}

/// `n` texts where text `i` is drawn with probability about 1/(i+1).
fn requests(n: usize) -> Vec<String> {
    let subjects = ["$ABC", "$XYZ", "the market", "#crypto", "@newsdesk"];
    let moods = [
        "great rally",
        "bad day",
        "going up",
        "crash incoming",
        "looks good",
        "sell now",
    ];
    let mut rng = fastrand_like(7);
    (0..n)
        .map(|_| {
            // Inverse-CDF sampling of a Zipf(1) over 300 texts.
            let u = (rng() % 1_000_000) as f64 / 1_000_000.0;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let i = (300f64.powf(u) - 1.0) as usize;
            format!("{} {} #{i}", subjects[i % subjects.len()], moods[i % moods.len()])
        })
        .collect()
}

fn fastrand_like(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Runs the simulation; returns the sentiment namespace's statistics.
fn simulate(n: usize) -> Result<CacheStats, Box<dyn std::error::Error>> {
    let clock = ManualClock::new();
    let cache: Cache<ContentHash, f32> = Cache::builder()
        .max_capacity(200)
        .namespace(
            "sentiment",
            NamespaceConfig::new().ttl(Duration::from_secs(15 * 60)),
        )
        .jitter(0.1)
        .clock(clock.shared())
        .build()?;
    let sentiment = cache.namespace("sentiment")?;
    for text in requests(n) {
        let key = ContentHash::of(&text);
        sentiment
            .get_with_cost(key, Some(API_COST), || analyse(&text))
            .map_err(|e| format!("the sentiment API failed: {e}"))?;
        clock.advance(Duration::from_secs(1));
    }
    Ok(sentiment.stats())
}

fn main() -> ExitCode {
    let n = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 2_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("cache_sentiment: the argument is a number of requests: {e}");
            return ExitCode::from(2);
        }
    };
    match simulate(n) {
        Ok(s) => {
            println!("requests        {}", s.requests());
            println!("hits            {} ({:.1}%)", s.hits, s.hit_ratio() * 100.0);
            println!("API calls       {}", s.loads);
            println!("evicted (size)  {}", s.evicted_size);
            println!("expired         {}", s.evicted_expired);
            #[allow(clippy::cast_precision_loss)]
            let dollars = s.cost_saved as f64 / 1e6;
            println!("cost saved      ${dollars:.2}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cache_sentiment: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_save_the_api_cost() {
        let s = simulate(2_000).unwrap();
        assert_eq!(s.requests(), 2_000);
        assert_eq!(s.hits + s.loads, 2_000, "every miss is one API call");
        assert!(s.hit_ratio() > 0.5, "hit ratio {}", s.hit_ratio());
        assert_eq!(s.cost_saved, s.hits * u64::from(API_COST));
        assert!(
            s.evicted_expired > 0,
            "2,000 simulated seconds outlive a 15-minute ttl"
        );
    }

    #[test]
    fn the_stand_in_api_scores_words() {
        assert_eq!(analyse("great rally").unwrap(), 1.0);
        assert_eq!(analyse("bad crash").unwrap(), -1.0);
        assert!(analyse("").is_err());
    }
}
