//! `BRISK_SKIP_SERVICES`: skipping service-backed tests, and recording each
//! skip so the test script can say how many there were.

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::{Mutex, PoisonError};

/// Whether service-backed tests should skip themselves: `true` when the
/// environment variable `BRISK_SKIP_SERVICES` is set to anything but empty,
/// `0` or `false`.
///
/// [`postgres()`](fn@crate::postgres) and [`redis()`](fn@crate::redis) (and their
/// private-server counterparts) check this themselves and return `None`. A
/// test that starts servers some other way checks it first and records the
/// skip with [`skip()`]:
///
/// ```
/// if brisk_testkit::skip_services() {
///     brisk_testkit::skip("needs its own PostgreSQL server");
///     return;
/// }
/// // ... start servers, run the test ...
/// ```
#[must_use]
pub fn skip_services() -> bool {
    std::env::var_os("BRISK_SKIP_SERVICES")
        .is_some_and(|value| !matches!(value.to_str(), Some("" | "0" | "false")))
}

/// Records that the current test skipped itself because of `reason`.
///
/// Prints `skipped <test name>: <reason>` to stderr and, if the environment
/// variable `BRISK_SKIP_LOG` names a file, appends the test name to it as one
/// line (the test script counts these lines). The test name is the current
/// thread's name, which the standard test harness sets to the test's path.
/// Each test is recorded at most once per process, however often it calls
/// this.
pub fn skip(reason: &str) {
    static RECORDED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

    let thread = std::thread::current();
    let name = match thread.name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => unnamed_test(),
    };
    {
        let mut recorded = RECORDED.lock().unwrap_or_else(PoisonError::into_inner);
        if !recorded.get_or_insert_with(HashSet::new).insert(name.clone()) {
            return;
        }
    }
    eprintln!("skipped {name}: {reason}");
    if let Some(log) = std::env::var_os("BRISK_SKIP_LOG").filter(|log| !log.is_empty()) {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            // One write of the whole line, so lines from parallel tests do
            // not interleave (O_APPEND makes each write atomic here).
            .and_then(|mut file| file.write_all(format!("{name}\n").as_bytes()));
        if let Err(err) = appended {
            eprintln!(
                "brisk-testkit: could not append to BRISK_SKIP_LOG={}: {err}",
                log.to_string_lossy()
            );
        }
    }
}

/// The reason the shared-server functions record.
#[cfg(any(feature = "postgres", feature = "redis"))]
pub(crate) const SKIP_REASON: &str = "BRISK_SKIP_SERVICES is set";

/// A name for a test that runs on the main thread (a doctest, say), which
/// has no thread name to go by.
fn unnamed_test() -> String {
    let exe = std::env::current_exe().ok();
    let exe = exe
        .as_deref()
        .and_then(std::path::Path::file_name)
        .map_or("this process".into(), |name| name.to_string_lossy());
    format!("<unnamed test in {exe}>")
}
