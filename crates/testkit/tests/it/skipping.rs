//! `BRISK_SKIP_SERVICES=1`: every service-backed test skips itself, and each
//! skip is recorded once in `BRISK_SKIP_LOG`.

use crate::run_self;

#[test]
fn skip_services_skips_and_records_each_test_once() {
    let tests = [
        "postgres::two_calls_give_two_databases",
        "postgres::private_server_stops_and_restarts_with_its_data",
        "postgres::builder_settings_reach_the_server",
        "redis::two_prefixes_do_not_see_each_other",
        "redis::private_server_stops_and_restarts",
        "errors::a_server_that_cannot_start_reports_its_log",
    ];
    let log = std::env::temp_dir().join(format!(
        "brisk-testkit-it-skiplog-{}-{:016x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let log_str = log.to_str().expect("utf-8 temp path");
    let output = run_self(
        &tests,
        &[("BRISK_SKIP_SERVICES", "1"), ("BRISK_SKIP_LOG", log_str)],
    );
    let recorded = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);

    assert!(output.status.success(), "the skipped tests must pass");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("{} passed", tests.len())), "{stdout}");
    let mut lines: Vec<&str> = recorded.lines().collect();
    lines.sort_unstable();
    let mut expected = tests.to_vec();
    expected.sort_unstable();
    assert_eq!(
        lines, expected,
        "BRISK_SKIP_LOG should name each skipped test once"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("skipped postgres::two_calls_give_two_databases: BRISK_SKIP_SERVICES is set"),
        "{stderr}"
    );
}

#[test]
fn skip_services_reads_the_environment() {
    // This process's own setting, whatever it is, is what the functions see.
    let set = std::env::var_os("BRISK_SKIP_SERVICES")
        .is_some_and(|v| !matches!(v.to_str(), Some("" | "0" | "false")));
    assert_eq!(brisk_testkit::skip_services(), set);
}
