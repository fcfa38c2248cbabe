//! Parsing upstream rate limit headers: every format, and malformed values
//! ignored and counted, never a panic.

use std::time::{Duration, SystemTime};

use brisk_rate_limiter::{Quota, UpstreamLimits};
use proptest::prelude::*;

use crate::direct;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600) // 2025-01-01T00:00:00Z
}

fn parse(headers: &[(&str, &str)]) -> UpstreamLimits {
    UpstreamLimits::from_headers(headers.iter().copied(), now())
}

#[test]
fn retry_after_seconds_and_http_date() {
    assert_eq!(
        parse(&[("Retry-After", "120")]).retry_after,
        Some(Duration::from_secs(120))
    );
    let l = parse(&[("retry-after", "Wed, 01 Jan 2025 00:00:30 GMT")]);
    assert_eq!(l.retry_after, Some(Duration::from_secs(30)));
    assert_eq!(l.pause(), Some(Duration::from_secs(30)));
    assert_eq!(
        parse(&[("retry-after-ms", "1500")]).retry_after,
        Some(Duration::from_millis(1500))
    );
    let bad = parse(&[("Retry-After", "soon")]);
    assert_eq!((bad.retry_after, bad.malformed()), (None, 1));
}

#[test]
fn openai_headers_with_go_durations() {
    let l = parse(&[
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-limit-tokens", "150000"),
        ("x-ratelimit-remaining-requests", "59"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-requests", "1s"),
        ("x-ratelimit-reset-tokens", "6m0s"),
        ("content-type", "application/json"),
    ]);
    assert_eq!(l.requests.limit, Some(60));
    assert_eq!(l.requests.remaining, Some(59));
    assert_eq!(l.requests.reset, Some(Duration::from_secs(1)));
    assert_eq!(l.tokens.limit, Some(150_000));
    assert_eq!(l.tokens.reset, Some(Duration::from_secs(360)));
    assert_eq!(l.malformed(), 0);
    // Tokens ran out: nothing before their reset.
    assert_eq!(l.pause(), Some(Duration::from_secs(360)));
    let ms = parse(&[
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", "12ms"),
    ]);
    assert_eq!(ms.pause(), Some(Duration::from_millis(12)));
}

#[test]
fn rfc3339_and_unix_reset_timestamps() {
    let l = parse(&[
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2025-01-01T00:00:42Z"),
        ("anthropic-ratelimit-tokens-reset", "2025-01-01T01:00:10+01:00"),
    ]);
    assert_eq!(l.requests.limit, Some(50));
    assert_eq!(l.requests.reset, Some(Duration::from_secs(42)));
    assert_eq!(l.tokens.reset, Some(Duration::from_secs(10)));
    assert_eq!(l.pause(), Some(Duration::from_secs(42)));
    let gh = parse(&[
        ("X-RateLimit-Remaining", "0"),
        ("X-RateLimit-Reset", "1735689660"),
    ]);
    assert_eq!(gh.requests.reset, Some(Duration::from_secs(60)));
    assert_eq!(gh.pause(), Some(Duration::from_secs(60)));
    let past = parse(&[("x-ratelimit-reset", "2024-12-31T23:59:00Z")]);
    assert_eq!(past.requests.reset, Some(Duration::ZERO));
}

#[test]
fn ietf_ratelimit_and_policy_fields() {
    let l = parse(&[
        (
            "RateLimit-Policy",
            "\"default\";q=100;w=60, \"daily\";q=1000;w=86400",
        ),
        ("RateLimit", "\"default\";r=0;t=30, \"daily\";r=900;t=3600"),
    ]);
    assert_eq!(l.malformed(), 0);
    assert_eq!(l.policies.len(), 2);
    let d = &l.policies[0];
    assert_eq!(
        (d.name.as_str(), d.quota, d.window, d.remaining, d.reset),
        (
            "default",
            Some(100),
            Some(Duration::from_secs(60)),
            Some(0),
            Some(Duration::from_secs(30))
        )
    );
    assert_eq!(l.policies[1].remaining, Some(900));
    assert_eq!(l.pause(), Some(Duration::from_secs(30)));
    // Draft 7's single field, and the older separate fields.
    let d7 = parse(&[("RateLimit", "limit=10, remaining=0, reset=7")]);
    assert_eq!(d7.requests.remaining, Some(0));
    assert_eq!(d7.pause(), Some(Duration::from_secs(7)));
    let old = parse(&[("RateLimit-Remaining", "0"), ("RateLimit-Reset", "9")]);
    assert_eq!(old.pause(), Some(Duration::from_secs(9)));
}

#[test]
fn azure_minus_one_is_tolerated() {
    let l = parse(&[
        ("x-ratelimit-remaining-requests", "-1"),
        ("x-ratelimit-remaining-tokens", "-1"),
        ("x-ratelimit-reset-requests", "-1"),
    ]);
    assert_eq!(l.malformed(), 0);
    assert_eq!(l.requests.remaining, None);
    assert_eq!(l.pause(), None);
    assert!(l.is_empty());
}

#[test]
fn malformed_values_are_ignored_and_counted() {
    let (limiter, _clock) = direct([Quota::per_minute(10)]);
    let l = parse(&[
        ("x-ratelimit-remaining-requests", "zero"),
        ("x-ratelimit-reset-requests", "6 minutes"),
        ("x-ratelimit-reset-tokens", "2025-13-45T99:00:00Z"),
        ("RateLimit", "\"default;r=oops"),
        ("RateLimit-Policy", "\"p\";q"),
        ("retry-after", ""),
        ("x-ratelimit-limit-tokens", "42"),
    ]);
    assert_eq!(l.malformed(), 6);
    assert_eq!(
        l.tokens.limit,
        Some(42),
        "good values beside bad ones still count"
    );
    assert_eq!(l.pause(), None);
    assert_eq!(limiter.apply_upstream(&l), None);
    assert_eq!(limiter.stats().upstream_malformed, 6);
    limiter.check(1).unwrap();
    let bytes = UpstreamLimits::from_headers([("retry-after", &b"\xff\xfe"[..])], now());
    assert_eq!(bytes.malformed(), 1);
}

proptest! {
    #[test]
    fn any_header_value_parses_without_panic(
        name in prop::sample::select(vec![
            "retry-after", "retry-after-ms", "x-ratelimit-reset-requests", "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset", "anthropic-ratelimit-tokens-reset", "ratelimit", "ratelimit-policy",
            "ratelimit-reset",
        ]),
        value in "\\PC{0,40}",
    ) {
        let l = UpstreamLimits::from_headers([(name, value.as_str())], now());
        prop_assert!(l.malformed() <= 1 || name.starts_with("ratelimit"));
        let _ = l.pause();
    }
}
