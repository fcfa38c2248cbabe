//! An outbound rate limiter in front of an LLM API, against a simulated API.
//!
//! ```text
//! cargo run -p brisk-examples --example rate_limiter_llm              # 10 simulated minutes
//! cargo run -p brisk-examples --example rate_limiter_llm -- 60        # 60 simulated minutes
//! ```
//!
//! The client may send 20 requests a minute and 1,000 an hour, and 40,000
//! tokens a minute. Before each call it checks the token window first (with
//! `peek`, so a refusal spends no request), then the request windows, then
//! spends the estimated tokens; after it, it refunds the tokens it did not
//! use and applies the API's rate limit headers. The simulated API allows
//! only 15 requests a minute, so it answers `x-ratelimit-remaining-requests:
//! 0` with a reset, and the limiter pauses until then instead of sending
//! requests that would fail. Time is a `ManualClock` advanced one simulated
//! second per step, so the run takes milliseconds.
//!
//! It prints one line per minute and a summary, and exits with status 1 if
//! the API ever had to refuse a request (the limiter's job is that it never
//! does).

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use brisk_core::{Clock, ManualClock};
use brisk_rate_limiter::{Quota, RateLimitError, RateLimiter, UpstreamLimits};

/// The simulated API: 15 requests per fixed minute.
struct FakeApi {
    minute_start: Duration,
    used: u32,
}

impl FakeApi {
    const PER_MINUTE: u32 = 15;

    /// Serves one request at `t` (time since the start); `Err` is a 429.
    /// Either way, the rate limit headers it sends back.
    fn call(&mut self, t: Duration) -> (Result<u64, ()>, Vec<(&'static str, String)>) {
        if t >= self.minute_start + Duration::from_secs(60) {
            self.minute_start = Duration::from_secs(t.as_secs() / 60 * 60);
            self.used = 0;
        }
        let reset = self.minute_start + Duration::from_secs(60) - t;
        let ok = self.used < Self::PER_MINUTE;
        if ok {
            self.used += 1;
        }
        let headers = vec![
            ("x-ratelimit-limit-requests", Self::PER_MINUTE.to_string()),
            (
                "x-ratelimit-remaining-requests",
                (Self::PER_MINUTE - self.used).to_string(),
            ),
            ("x-ratelimit-reset-requests", format!("{}s", reset.as_secs())),
        ];
        // Tokens actually used: a little less than estimated.
        (if ok { Ok(700) } else { Err(()) }, headers)
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Summary {
    sent: u32,
    refused_by_api: u32,
    limited_locally: u32,
    paused: u32,
    tokens_refunded: u64,
}

fn run(minutes: u64, mut log: impl FnMut(String)) -> Result<Summary, Box<dyn std::error::Error>> {
    let clock = ManualClock::new();
    let requests = RateLimiter::builder()
        .quota(Quota::per_minute(20).named("rpm"))
        .quota(Quota::per_hour(1_000).named("rph"))
        .clock(clock.shared())
        .name("llm-requests")
        .build()?;
    let tokens = RateLimiter::builder()
        .quota(Quota::per_minute(40_000).named("tpm"))
        .clock(clock.shared())
        .name("llm-tokens")
        .build()?;
    let mut api = FakeApi {
        minute_start: Duration::ZERO,
        used: 0,
    };
    let mut summary = Summary::default();
    let start = clock.now();
    let estimate = 1_000;
    for second in 0..minutes * 60 {
        let attempt = tokens.peek(estimate).and_then(|()| requests.check(1));
        match attempt {
            Ok(()) => {
                tokens.check(estimate)?;
                let (result, headers) = api.call(clock.elapsed(start));
                summary.sent += 1;
                match result {
                    Ok(used) => {
                        tokens.refund(estimate - used);
                        summary.tokens_refunded += estimate - used;
                    }
                    Err(()) => summary.refused_by_api += 1,
                }
                let limits = UpstreamLimits::from_headers(headers, SystemTime::now());
                let _ = requests.apply_upstream(&limits);
            }
            Err(RateLimitError::Paused { .. }) => summary.paused += 1,
            Err(RateLimitError::Limited { .. }) => summary.limited_locally += 1,
            Err(other) => return Err(other.into()),
        }
        if (second + 1) % 60 == 0 {
            log(format!(
                "minute {:>3}: sent {:>4}, refused by the API {}, paused {:>4}, limited locally {:>4}",
                (second + 1) / 60,
                summary.sent,
                summary.refused_by_api,
                summary.paused,
                summary.limited_locally
            ));
        }
        clock.advance(Duration::from_secs(1));
    }
    Ok(summary)
}

fn main() -> ExitCode {
    let minutes = match std::env::args().nth(1).map(|m| m.parse::<u64>()) {
        None => 10,
        Some(Ok(m)) if m > 0 => m,
        Some(_) => {
            eprintln!("rate_limiter_llm: the argument is a number of simulated minutes (> 0)");
            return ExitCode::from(2);
        }
    };
    match run(minutes, |line| println!("{line}")) {
        Ok(summary) => {
            println!("{summary:?}");
            if summary.refused_by_api == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("rate_limiter_llm: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_never_has_to_refuse() {
        let mut lines = Vec::new();
        let summary = run(10, |l| lines.push(l)).unwrap();
        assert_eq!(lines.len(), 10);
        assert_eq!(summary.refused_by_api, 0, "{summary:?}");
        // The API's 15 a minute is what gets through, not the local 20.
        assert_eq!(summary.sent, 150, "{summary:?}");
        assert!(summary.paused > 0, "{summary:?}");
        assert_eq!(summary.tokens_refunded, 150 * 300);
    }
}
