//! Reading what upstream APIs say about their limits.
//
// Every format here comes from a real API and each is forgiving on purpose:
// a value that does not parse is ignored and counted (`malformed`), never a
// panic and never a reason to fail the request that carried it. Azure
// OpenAI sends `-1` where it does not know a value: that is "unknown", not
// malformed.

use std::time::{Duration, SystemTime};

use brisk_core::parse_retry_after;

/// One limit an upstream reported: how many it allows, how many are left,
/// and when the count resets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitStatus {
    /// The limit (e.g. `x-ratelimit-limit-requests`).
    pub limit: Option<u64>,
    /// What is left (e.g. `x-ratelimit-remaining-requests`).
    pub remaining: Option<u64>,
    /// Time until the count resets, from the response's arrival.
    pub reset: Option<Duration>,
}

impl LimitStatus {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The wait this status asks for: `reset` once `remaining` is 0.
    fn pause(&self) -> Option<Duration> {
        match (self.remaining, self.reset) {
            (Some(0), Some(reset)) => Some(reset),
            _ => None,
        }
    }
}

/// One policy of the IETF `RateLimit-Policy` / `RateLimit` fields, joined
/// by name: `RateLimit-Policy: "default";q=100;w=60` and
/// `RateLimit: "default";r=50;t=30`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// The policy's name (empty in the older unnamed forms).
    pub name: String,
    /// Its quota (`q`).
    pub quota: Option<u64>,
    /// Its window (`w`).
    pub window: Option<Duration>,
    /// What is left (`r`).
    pub remaining: Option<u64>,
    /// Time until it resets (`t`).
    pub reset: Option<Duration>,
}

/// What an upstream API's response said about its rate limits.
///
/// Parsed from the response headers with [`from_headers`](Self::from_headers)
/// (or `from_header_map` with the `tower` feature); applied to a limiter
/// with [`RateLimiter::apply_upstream`](crate::RateLimiter::apply_upstream), which
/// pauses it so that once `remaining` reaches 0 nothing goes out before
/// `reset`. Understood:
///
/// - `Retry-After` (seconds or an HTTP date) and `retry-after-ms`;
/// - OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, with
///   resets as Go durations (`12ms`, `6m0s`, `1h2m3.5s`);
/// - Anthropic's `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`,
///   with RFC 3339 reset timestamps;
/// - the plain `x-ratelimit-{limit,remaining,reset}` and the IETF draft's
///   `RateLimit-{Limit,Remaining,Reset}` (as requests), resets in seconds,
///   Unix timestamps or RFC 3339;
/// - the IETF `RateLimit-Policy` and `RateLimit` structured fields
///   (`"default";q=100;w=60`, `"default";r=50;t=30`), and draft 7's
///   `RateLimit: limit=100, remaining=50, reset=30`.
///
/// Azure's `-1` reads as "unknown". Anything that does not parse is ignored
/// and counted in [`malformed`](Self::malformed).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use brisk_rate_limiter::UpstreamLimits;
///
/// let headers = [
///     ("x-ratelimit-limit-requests", "60"),
///     ("x-ratelimit-remaining-requests", "0"),
///     ("x-ratelimit-reset-requests", "6m0s"),
///     ("x-ratelimit-remaining-tokens", "149984"),
///     ("x-ratelimit-reset-tokens", "6ms"),
///     ("x-ratelimit-limit-tokens", "lots"), // malformed: ignored, counted
/// ];
/// let limits = UpstreamLimits::from_headers(headers, SystemTime::now());
/// assert_eq!(limits.requests.remaining, Some(0));
/// assert_eq!(limits.tokens.reset, Some(Duration::from_millis(6)));
/// assert_eq!(limits.malformed(), 1);
/// assert_eq!(limits.pause(), Some(Duration::from_secs(360)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamLimits {
    /// From `Retry-After` or `retry-after-ms`.
    pub retry_after: Option<Duration>,
    /// The request-count limit.
    pub requests: LimitStatus,
    /// The token limit.
    pub tokens: LimitStatus,
    /// IETF `RateLimit-Policy` / `RateLimit` policies.
    pub policies: Vec<Policy>,
    malformed: u32,
}

impl UpstreamLimits {
    /// Reads the rate limit headers among `headers` (name, value); other
    /// headers are skipped. Names are matched case-insensitively. `now` is
    /// the wall time the response arrived, for absolute reset times.
    #[must_use]
    pub fn from_headers<'a, N, V>(headers: impl IntoIterator<Item = (N, V)>, now: SystemTime) -> Self
    where
        N: AsRef<str> + 'a,
        V: AsRef<[u8]> + 'a,
    {
        let mut out = Self::default();
        for (name, value) in headers {
            let name = name.as_ref().to_ascii_lowercase();
            if !is_rate_limit_header(&name) {
                continue;
            }
            match std::str::from_utf8(value.as_ref()) {
                Ok(value) => out.read(&name, value.trim(), now),
                Err(_) => out.malformed += 1,
            }
        }
        out
    }

    /// Reads the rate limit headers of an `http` header map.
    #[cfg(feature = "tower")]
    #[must_use]
    pub fn from_header_map(headers: &http::HeaderMap, now: SystemTime) -> Self {
        Self::from_headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())), now)
    }

    /// How many values were ignored because they did not parse.
    #[must_use]
    pub fn malformed(&self) -> u32 {
        self.malformed
    }

    /// Whether nothing was understood.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.retry_after.is_none()
            && self.requests.is_empty()
            && self.tokens.is_empty()
            && self.policies.is_empty()
    }

    /// How long to send nothing: the longest of `Retry-After` and the
    /// reset of every limit whose `remaining` is 0. `None` when nothing
    /// asks for a pause.
    #[must_use]
    pub fn pause(&self) -> Option<Duration> {
        let policies = self.policies.iter().map(|p| match (p.remaining, p.reset) {
            (Some(0), Some(reset)) => Some(reset),
            _ => None,
        });
        [self.retry_after, self.requests.pause(), self.tokens.pause()]
            .into_iter()
            .chain(policies)
            .flatten()
            .max()
    }

    fn read(&mut self, name: &str, value: &str, now: SystemTime) {
        let ok = match name {
            "retry-after" => set(&mut self.retry_after, parse_retry_after(value, now)),
            "retry-after-ms" => set(
                &mut self.retry_after,
                parse_seconds(value).map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            ),
            "ratelimit" => self.read_ietf(value, false),
            "ratelimit-policy" => self.read_ietf(value, true),
            _ => self.read_triplet(name, value, now),
        };
        if !ok {
            self.malformed += 1;
        }
    }

    /// `x-ratelimit-<what>-<unit>`, `anthropic-ratelimit-<unit>-<what>`,
    /// `x-ratelimit-<what>`, `ratelimit-<what>`.
    fn read_triplet(&mut self, name: &str, value: &str, now: SystemTime) -> bool {
        let (what, unit) = if let Some(rest) = name.strip_prefix("x-ratelimit-") {
            match rest.split_once('-') {
                Some((what, unit)) => (what, unit),
                None => (rest, "requests"),
            }
        } else if let Some(rest) = name.strip_prefix("anthropic-ratelimit-") {
            match rest.split_once('-') {
                Some((unit, what)) => (what, unit),
                None => return true,
            }
        } else if let Some(what) = name.strip_prefix("ratelimit-") {
            (what, "requests")
        } else {
            return true;
        };
        let status = match unit {
            "requests" => &mut self.requests,
            "tokens" => &mut self.tokens,
            _ => return true, // another unit (input-tokens, ...): not ours
        };
        if value == "-1" {
            return true; // Azure: unknown
        }
        match what {
            "limit" => set(&mut status.limit, value.parse().ok()),
            "remaining" => set(&mut status.remaining, value.parse().ok()),
            "reset" => set(&mut status.reset, parse_reset(value, now)),
            _ => true,
        }
    }

    /// The IETF structured fields; `policy` for `RateLimit-Policy`.
    fn read_ietf(&mut self, value: &str, policy: bool) -> bool {
        // Draft 7: `limit=100, remaining=50, reset=30`.
        if !policy && !value.contains(';') && value.contains('=') {
            let mut ok = true;
            for part in value.split(',') {
                let Some((k, v)) = part.trim().split_once('=') else {
                    ok = false;
                    continue;
                };
                ok &= match k.trim() {
                    "limit" => set(&mut self.requests.limit, v.trim().parse().ok()),
                    "remaining" => set(&mut self.requests.remaining, v.trim().parse().ok()),
                    "reset" => set(
                        &mut self.requests.reset,
                        v.trim().parse().ok().map(Duration::from_secs),
                    ),
                    _ => true,
                };
            }
            return ok;
        }
        let mut ok = true;
        for member in split_members(value) {
            let mut parts = member.split(';').map(str::trim);
            let item = parts.next().unwrap_or("");
            let name = item.trim_matches('"').to_owned();
            if item.starts_with('"') != item.ends_with('"') || item.is_empty() && !policy {
                ok = false;
                continue;
            }
            let index = match self.policies.iter().position(|p| p.name == name) {
                Some(i) => i,
                None => {
                    self.policies.push(Policy {
                        name,
                        ..Policy::default()
                    });
                    self.policies.len() - 1
                }
            };
            let p = &mut self.policies[index];
            for param in parts {
                let Some((k, v)) = param.split_once('=') else {
                    ok = false;
                    continue;
                };
                let n = v.trim().parse::<u64>().ok();
                ok &= match k.trim() {
                    "q" => set(&mut p.quota, n),
                    "w" => set(&mut p.window, n.map(Duration::from_secs)),
                    "r" => set(&mut p.remaining, n),
                    "t" => set(&mut p.reset, n.map(Duration::from_secs)),
                    _ => true, // `pk`, `qu` and future parameters
                };
            }
        }
        ok
    }
}

fn is_rate_limit_header(name: &str) -> bool {
    name.starts_with("x-ratelimit-")
        || name.starts_with("anthropic-ratelimit-")
        || name.starts_with("ratelimit")
        || name == "retry-after"
        || name == "retry-after-ms"
}

/// Stores `parsed` if it is `Some`; returns whether it was.
fn set<T>(slot: &mut Option<T>, parsed: Option<T>) -> bool {
    match parsed {
        Some(v) => {
            *slot = Some(v);
            true
        }
        None => false,
    }
}

/// Top-level members of a structured-field list (commas outside quotes).
fn split_members(value: &str) -> impl Iterator<Item = &str> {
    let mut members = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                members.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    members.push(&value[start..]);
    members.into_iter().map(str::trim).filter(|m| !m.is_empty())
}

/// Non-negative, finite seconds (`"1.5"`).
fn parse_seconds(value: &str) -> Option<f64> {
    let v: f64 = value.parse().ok()?;
    (0.0..1e12).contains(&v).then_some(v)
}

/// A reset: a Go duration (`6m0s`), an RFC 3339 time, a Unix timestamp
/// (≥ 10^9) or a number of seconds.
pub(crate) fn parse_reset(value: &str, now: SystemTime) -> Option<Duration> {
    if value.bytes().any(|b| b == b'T' || b == b't') && value.contains('-') {
        let at = parse_rfc3339(value)?;
        return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
    }
    if let Some(secs) = parse_seconds(value) {
        if secs >= 1e9 {
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs);
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
        return Some(Duration::from_secs_f64(secs));
    }
    parse_go_duration(value)
}

/// Go's `time.Duration` text: `300ms`, `1.5h`, `6m0s`, `2h45m`, `1µs`.
pub(crate) fn parse_go_duration(value: &str) -> Option<Duration> {
    let mut rest = value;
    let mut total = 0.0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    (total.is_finite() && total < 1e12).then(|| Duration::from_secs_f64(total))
}

/// RFC 3339: `2025-01-01T00:00:30Z`, `2025-01-01T00:00:30.5+01:00`.
pub(crate) fn parse_rfc3339(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = value.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &value[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.find(|c: char| !c.is_ascii_digit()).unwrap_or(frac.len());
        if digits == 0 {
            return None;
        }
        let padded: String = frac[..digits]
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        nanos = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (num_at(rest, 1..3)?, num_at(rest, 4..6)?);
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

fn num_at(s: &str, r: std::ops::Range<usize>) -> Option<i64> {
    let part = s.get(r)?;
    part.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| part.parse().ok())?
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("12ms"), Some(Duration::from_millis(12)));
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some(Duration::from_secs_f64(3723.5))
        );
        assert_eq!(parse_go_duration("250us"), Some(Duration::from_micros(250)));
        for bad in ["", "ms", "5x", "1..2s", "-3s", "s5"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc3339() {
        let at = |s| parse_rfc3339(s).map(|t| t.duration_since(SystemTime::UNIX_EPOCH).unwrap());
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(
            at("2025-01-01T00:00:30Z"),
            Some(Duration::from_secs(1_735_689_630))
        );
        assert_eq!(
            at("2025-01-01T01:00:30+01:00"),
            Some(Duration::from_secs(1_735_689_630))
        );
        assert_eq!(
            at("2025-01-01T00:00:30.25Z"),
            Some(Duration::from_millis(1_735_689_630_250))
        );
        for bad in [
            "2025-13-01T00:00:00Z",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00+0100",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
