//! The server's resource trend, read from its Prometheus `/metrics`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{StopSignal, Target};

/// One reading of the server's process metrics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ServerSample {
    /// Seconds since the start of the run.
    pub t_s: f64,
    /// `process_resident_memory_bytes` (or brisk-monitor's
    /// `brisk_process_resident_memory_bytes`), if exposed.
    pub rss_bytes: Option<f64>,
    /// `process_cpu_seconds_total`, if exposed.
    pub cpu_seconds: Option<f64>,
}

/// Reads one metric's value from Prometheus text (the first sample of
/// that name, labels or not).
#[must_use]
pub fn prometheus_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let rest = if rest.starts_with('{') {
            &rest[rest.find('}')? + 1..]
        } else {
            rest
        };
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The RSS under the standard process-collector name, else under
/// brisk-monitor's (`brisk_process_resident_memory_bytes`, as brisk-server
/// exposes it).
fn rss_bytes(text: &str) -> Option<f64> {
    prometheus_value(text, "process_resident_memory_bytes")
        .or_else(|| prometheus_value(text, "brisk_process_resident_memory_bytes"))
}

/// Samples `path` every `every` until `stop`; `None` when the server does
/// not expose either metric (the trend is optional).
pub(crate) async fn sample(
    target: Target,
    path: String,
    every: Duration,
    start: Instant,
    stop: StopSignal,
) -> Option<Vec<ServerSample>> {
    let mut samples = Vec::new();
    let mut failures = 0;
    loop {
        let read = crate::client::get(target.addr(), target.authority(), &path).await;
        let t_s = start.elapsed().as_secs_f64();
        match read {
            Ok((200, body)) => {
                let text = String::from_utf8_lossy(&body);
                let rss_bytes = rss_bytes(&text);
                let cpu_seconds = prometheus_value(&text, "process_cpu_seconds_total");
                if rss_bytes.is_none() && cpu_seconds.is_none() {
                    return None;
                }
                samples.push(ServerSample {
                    t_s,
                    rss_bytes,
                    cpu_seconds,
                });
            }
            Ok(_) if samples.is_empty() => return None,
            _ => {
                failures += 1;
                if samples.is_empty() && failures >= 3 {
                    return None;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.stopped() => break,
        }
    }
    // One last reading at the end of the run.
    if let Ok((200, body)) = crate::client::get(target.addr(), target.authority(), &path).await {
        let text = String::from_utf8_lossy(&body);
        samples.push(ServerSample {
            t_s: start.elapsed().as_secs_f64(),
            rss_bytes: rss_bytes(&text),
            cpu_seconds: prometheus_value(&text, "process_cpu_seconds_total"),
        });
    }
    (!samples.is_empty()).then_some(samples)
}

#[cfg(test)]
mod tests {
    use super::{prometheus_value, rss_bytes};

    #[test]
    fn reads_rss_under_either_name() {
        assert_eq!(rss_bytes("process_resident_memory_bytes 10\n"), Some(10.0));
        assert_eq!(
            rss_bytes(
                "# TYPE brisk_process_resident_memory_bytes gauge\nbrisk_process_resident_memory_bytes 2.5e7\n"
            ),
            Some(2.5e7)
        );
        assert_eq!(rss_bytes("brisk_process_cpu_percent 3\n"), None);
    }

    #[test]
    fn reads_plain_and_labelled_samples() {
        let text = "# HELP x\nprocess_resident_memory_bytes_extra 1\nprocess_resident_memory_bytes 4.5e7\n\
                    process_cpu_seconds_total{pid=\"1\"} 12.5\n";
        assert_eq!(
            prometheus_value(text, "process_resident_memory_bytes"),
            Some(4.5e7)
        );
        assert_eq!(prometheus_value(text, "process_cpu_seconds_total"), Some(12.5));
        assert_eq!(prometheus_value(text, "missing"), None);
    }
}
