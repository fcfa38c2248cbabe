//! Alert lifecycle on the manual clock, rule kinds, TOML rules.

use std::sync::Arc;
use std::time::Duration;

use brisk_core::ManualClock;
use brisk_monitor::{
    AlertEngine, AlertEvent, AlertRule, AlertRules, AlertStatus, Monitor, Notification, Notifier,
    NotifyFuture, Op, RuleError, Severity, Signal,
};

fn manual() -> (ManualClock, Monitor) {
    let clock = ManualClock::new();
    let monitor = Monitor::builder().clock(clock.shared()).build().unwrap();
    (clock, monitor)
}

fn events(ns: &[Notification]) -> Vec<(String, AlertEvent, Severity)> {
    ns.iter()
        .flat_map(|n| n.alerts.iter().map(|a| (a.name.clone(), a.event, a.severity)))
        .collect()
}

const MIN: Duration = Duration::from_secs(60);

#[test]
fn pending_firing_cooldown_escalation_resolved() {
    let (clock, monitor) = manual();
    let latency = monitor.operation("analyze").unwrap();
    let rule = AlertRule::threshold(
        "analyze_slow",
        Signal::operation_quantile("analyze", 0.95, MIN),
        Op::Gt,
        0.100,
    )
    .pending(2 * MIN)
    .repeat_interval(10 * MIN)
    .escalate_after(30 * MIN)
    .summary("analyze p95 over 100 ms");
    let engine = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([rule]).unwrap())
        .build()
        .unwrap();
    let slow = |n: u32| {
        for _ in 0..n {
            latency.record(Duration::from_millis(250), true);
        }
        monitor.tick();
    };

    // Fast calls: nothing.
    latency.record(Duration::from_millis(20), true);
    monitor.tick();
    assert!(engine.evaluate().is_empty());
    assert!(engine.active().is_empty());

    // Slow: pending, not notified.
    clock.advance(MIN);
    slow(50);
    assert!(engine.evaluate().is_empty());
    assert_eq!(engine.active().len(), 1);
    assert!(!engine.active()[0].firing);

    // Still slow after the pending time: fires once.
    clock.advance(MIN);
    slow(50);
    assert!(engine.evaluate().is_empty(), "1 min of 2 pending");
    clock.advance(MIN);
    slow(50);
    let fired = engine.evaluate();
    assert_eq!(
        events(&fired),
        [("analyze_slow".to_owned(), AlertEvent::Fired, Severity::Warning)]
    );
    let a = &fired[0].alerts[0];
    assert_eq!(a.status, AlertStatus::Firing);
    assert_eq!(a.labels["operation"], "analyze");
    assert_eq!(a.labels["alertname"], "analyze_slow");
    assert_eq!(a.annotations["summary"], "analyze p95 over 100 ms");
    assert!((a.value - 0.25).abs() < 0.25 / 128.0, "{}", a.value);

    // Cooldown: no repeat before 10 min, one at 10 min.
    for _ in 0..9 {
        clock.advance(MIN);
        slow(10);
        assert!(engine.evaluate().is_empty());
    }
    clock.advance(MIN);
    slow(10);
    assert_eq!(
        events(&engine.evaluate()),
        [("analyze_slow".to_owned(), AlertEvent::Repeated, Severity::Warning)]
    );

    // Escalation 30 min after firing: critical, sent at once.
    let mut escalated = Vec::new();
    for _ in 0..20 {
        clock.advance(MIN);
        slow(10);
        escalated.extend(events(&engine.evaluate()));
    }
    assert_eq!(
        escalated,
        [
            ("analyze_slow".to_owned(), AlertEvent::Repeated, Severity::Warning),
            (
                "analyze_slow".to_owned(),
                AlertEvent::Escalated,
                Severity::Critical
            ),
        ]
    );
    assert_eq!(engine.active()[0].severity, Severity::Critical);

    // Fast again: resolved, with an end time.
    clock.advance(2 * MIN);
    latency.record(Duration::from_millis(5), true);
    monitor.tick();
    let resolved = engine.evaluate();
    assert_eq!(
        events(&resolved),
        [(
            "analyze_slow".to_owned(),
            AlertEvent::Resolved,
            Severity::Critical
        )]
    );
    assert_eq!(resolved[0].status, AlertStatus::Resolved);
    assert!(resolved[0].alerts[0].ends_at.is_some());
    assert!(engine.active().is_empty());
    clock.advance(MIN);
    assert!(engine.evaluate().is_empty(), "resolved is sent once");
}

#[test]
fn a_condition_that_clears_while_pending_sends_nothing() {
    let (clock, monitor) = manual();
    let mem = monitor.gauge("brisk_rss_bytes", "rss", &[]).unwrap();
    let rule = AlertRule::threshold("mem", Signal::value("brisk_rss_bytes"), Op::Gt, 500e6).pending(5 * MIN);
    let engine = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([rule]).unwrap())
        .build()
        .unwrap();
    mem.set(600e6);
    assert!(engine.evaluate().is_empty());
    clock.advance(4 * MIN);
    mem.set(100e6);
    assert!(engine.evaluate().is_empty());
    mem.set(600e6);
    clock.advance(MIN);
    assert!(engine.evaluate().is_empty(), "pending restarts after clearing");
    clock.advance(4 * MIN);
    assert!(engine.evaluate().is_empty(), "4 of 5 minutes");
    clock.advance(MIN);
    assert_eq!(engine.evaluate().len(), 1);
}

#[test]
fn alerts_are_grouped_by_labels() {
    let (_clock, monitor) = manual();
    for (ns, hits, misses) in [("users", 50, 50), ("posts", 70, 30), ("tags", 99, 1)] {
        monitor
            .counter("brisk_cache_hits_total", "h", &[("namespace", ns)])
            .unwrap()
            .add(hits);
        monitor
            .counter("brisk_cache_misses_total", "m", &[("namespace", ns)])
            .unwrap()
            .add(misses);
    }
    let cold = AlertRule::threshold(
        "cache_cold",
        Signal::ratio("brisk_cache_hits_total", "brisk_cache_misses_total"),
        Op::Lt,
        0.85,
    )
    .label("team", "storage");
    let engine = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([cold.clone()]).unwrap())
        .build()
        .unwrap();
    let ns = engine.evaluate();
    assert_eq!(ns.len(), 1, "grouped by alertname");
    let mut names: Vec<_> = ns[0]
        .alerts
        .iter()
        .map(|a| a.labels["namespace"].clone())
        .collect();
    names.sort();
    assert_eq!(names, ["posts", "users"]);
    assert_eq!(
        ns[0].group_labels.get("alertname").map(String::as_str),
        Some("cache_cold")
    );

    let by_ns = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([cold]).unwrap())
        .group_by(["namespace"])
        .build()
        .unwrap();
    let ns = by_ns.evaluate();
    assert_eq!(ns.len(), 2);
    assert!(
        ns.iter()
            .all(|n| n.alerts.len() == 1 && n.alerts[0].labels["team"] == "storage")
    );
    let payload = ns[0].alertmanager_payload("brisk");
    assert_eq!(payload["commonLabels"]["team"], "storage");
    assert_eq!(
        payload["groupLabels"]["namespace"],
        ns[0].alerts[0].labels["namespace"]
    );
}

#[test]
fn baseline_degradation_fires_at_one_and_a_half_times_the_trailing_p95() {
    let (clock, monitor) = manual();
    let op = monitor.operation("db.insert").unwrap();
    let rule = AlertRule::baseline("insert_slower", "db.insert");
    let engine = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([rule]).unwrap())
        .build()
        .unwrap();
    // An hour at ~10 ms.
    for _ in 0..60 {
        for i in 0..20 {
            op.record(Duration::from_micros(9_000 + i * 100), true);
        }
        monitor.tick();
        clock.advance(MIN);
        assert!(engine.evaluate().is_empty());
    }
    // 1.3× slower: below k = 1.5, no alert.
    for _ in 0..5 {
        for i in 0..20 {
            op.record(Duration::from_micros(13_000 + i * 100), true);
        }
        monitor.tick();
        clock.advance(MIN);
    }
    assert!(engine.evaluate().is_empty());
    // 2× slower for 5 min: fires, value = ratio of p95s.
    for _ in 0..5 {
        for i in 0..20 {
            op.record(Duration::from_micros(20_000 + i * 100), true);
        }
        monitor.tick();
        clock.advance(MIN);
    }
    let ns = engine.evaluate();
    assert_eq!(
        events(&ns),
        [("insert_slower".to_owned(), AlertEvent::Fired, Severity::Warning)]
    );
    let ratio = ns[0].alerts[0].value;
    assert!(ratio > 1.5 && ratio < 2.5, "p95 ratio {ratio}");
    assert_eq!(ns[0].alerts[0].labels["operation"], "db.insert");
}

#[test]
fn burn_rate_needs_both_windows() {
    let (clock, monitor) = manual();
    let op = monitor.operation("api").unwrap();
    let rule = AlertRule::burn_rate("api_budget", "api", 0.99); // budget 1%; factor 14.4 → 14.4% errors
    let engine = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([rule]).unwrap())
        .build()
        .unwrap();
    let minute = |errors: u32| {
        for i in 0..100 {
            op.record(Duration::from_millis(5), i >= errors);
        }
        monitor.tick();
        clock.advance(MIN);
    };
    for _ in 0..55 {
        minute(0);
    }
    // A 5-minute burst of 50% errors: short window burns 50×, the hour only ~4×.
    for _ in 0..5 {
        minute(50);
    }
    assert!(engine.evaluate().is_empty(), "long window below the factor");
    // Errors go on: after ~30 min at 50% the hour burns > 14.4× too.
    let mut fired_at = None;
    for m in 0..40 {
        minute(50);
        if !engine.evaluate().is_empty() {
            fired_at = Some(m);
            break;
        }
    }
    let m = fired_at.expect("burn-rate alert fired");
    // The hour's bad share passes 14.4% once 6 + m of its 60 minutes ran at 50%: m = 11 or 12.
    assert!((10..=12).contains(&m), "fired after {m} more minutes");
    // Recovery: the short window clears first and resolves it.
    for _ in 0..5 {
        minute(0);
    }
    let ns = engine.evaluate();
    assert_eq!(
        events(&ns),
        [("api_budget".to_owned(), AlertEvent::Resolved, Severity::Warning)]
    );
}

#[test]
fn latency_burn_rate_counts_slow_calls() {
    let (clock, monitor) = manual();
    let op = monitor.operation("search").unwrap();
    let rule = AlertRule::burn_rate("search_latency", "search", 0.95)
        .latency_target(Duration::from_millis(100))
        .burn_settings(30 * MIN, 5 * MIN, 2.0);
    let engine = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([rule]).unwrap())
        .build()
        .unwrap();
    for _ in 0..30 {
        for i in 0..100 {
            op.record(Duration::from_millis(if i < 20 { 300 } else { 20 }), true); // 20% slow: burn 4×
        }
        monitor.tick();
        clock.advance(MIN);
    }
    let ns = engine.evaluate();
    assert_eq!(ns.len(), 1);
    assert!(
        (ns[0].alerts[0].value - 4.0).abs() < 0.2,
        "burn {}",
        ns[0].alerts[0].value
    );
}

#[test]
fn absence_of_data() {
    let (clock, monitor) = manual();
    let ingested = monitor.counter("brisk_ingested_total", "posts", &[]).unwrap();
    let rules = AlertRules::new([
        AlertRule::absence("no_ingest", Signal::value("brisk_ingested_total"), 10 * MIN)
            .severity_is(Severity::Error),
        AlertRule::absence("no_heartbeat", Signal::value("brisk_heartbeat_total"), 9 * MIN),
    ])
    .unwrap();
    let engine = AlertEngine::builder(&monitor).rules(rules).build().unwrap();
    ingested.inc();
    assert!(engine.evaluate().is_empty());
    for _ in 0..4 {
        clock.advance(2 * MIN);
        ingested.inc();
        assert!(engine.evaluate().is_empty());
    }
    clock.advance(5 * MIN);
    assert_eq!(
        events(&engine.evaluate()),
        [("no_heartbeat".to_owned(), AlertEvent::Fired, Severity::Warning)],
        "a series that never appeared"
    );
    clock.advance(5 * MIN);
    assert_eq!(
        events(&engine.evaluate()),
        [("no_ingest".to_owned(), AlertEvent::Fired, Severity::Error)]
    );
    ingested.inc();
    assert_eq!(
        events(&engine.evaluate()),
        [("no_ingest".to_owned(), AlertEvent::Resolved, Severity::Error)]
    );
}

#[test]
fn rules_load_from_toml_and_errors_name_rule_and_field() {
    let rules = AlertRules::from_toml(
        r#"
        [[rule]]
        name = "analyze_slow"
        kind = "threshold"
        severity = "warning"
        signal = { operation = "analyze", quantile = 0.95, window = "5m" }
        op = "gt"
        value = 0.1
        for = "1m"
        escalate_after = "30m"
        repeat_interval = "15m"
        summary = "analyze p95 over 100 ms"
        labels = { team = "nlp" }

        [[rule]]
        name = "analyze_degraded"
        kind = "baseline"
        operation = "analyze"
        factor = 1.5

        [[rule]]
        name = "analyze_slo"
        kind = "burn_rate"
        operation = "analyze"
        objective = 0.999
        long_window = "1h"
        short_window = "5m"

        [[rule]]
        name = "quiet"
        kind = "absence"
        signal = { metric = "brisk_ingested_total" }
        for = "10m"
        "#,
    )
    .unwrap();
    assert_eq!(rules.len(), 4);
    let r = &rules.rules()[0];
    let expected = AlertRule::threshold(
        "analyze_slow",
        Signal::operation_quantile("analyze", 0.95, 5 * MIN),
        Op::Gt,
        0.1,
    )
    .pending(MIN)
    .escalate_after(30 * MIN)
    .repeat_interval(15 * MIN)
    .summary("analyze p95 over 100 ms")
    .label("team", "nlp");
    assert_eq!(r, &expected);

    let err = |text: &str| AlertRules::from_toml(text).unwrap_err();
    let e = err("[[rule]]\nname = \"x\"\nkind = \"threshold\"\nsignal = { metric = \"m\" }\nop = \"gt\"\n");
    assert_eq!((e.rule(), e.field()), (Some("x"), Some("value")));
    let e = err(
        "[[rule]]\nname = \"q\"\nkind = \"threshold\"\nsignal = { metric = \"m\", quantile = 1.5 }\nop = \"gt\"\nvalue = 1\n",
    );
    assert_eq!((e.rule(), e.field()), (Some("q"), Some("signal.quantile")));
    let e = err(
        "[[rule]]\nname = \"s\"\nkind = \"burn_rate\"\noperation = \"a\"\nobjective = 0.99\nshort_window = \"2h\"\n",
    );
    assert_eq!((e.rule(), e.field()), (Some("s"), Some("short_window")));
    let e = err("[[rule]]\nname = \"d\"\nkind = \"absence\"\nsignal = { metric = \"m\" }\nfor = \"soon\"\n");
    assert_eq!((e.rule(), e.field()), (Some("d"), Some("for")));
    let e = err("[[rule]]\nkind = \"baseline\"\noperation = \"a\"\nfactor = 0.9\n");
    assert_eq!((e.rule(), e.field()), (Some("#1"), Some("name")));
    let e = err(
        "[[rule]]\nname = \"e\"\nkind = \"threshold\"\nsignal = { metric = \"m\" }\nop = \"gt\"\nvalue = 1\nseverity = \"critical\"\nescalate_after = \"5m\"\n",
    );
    assert_eq!((e.rule(), e.field()), (Some("e"), Some("escalate_to")));
    assert!(matches!(
        err("[[rule]]\nname = \"x\"\ncolour = 1\n"),
        RuleError::Toml(_)
    ));
    let dup = AlertRules::new([
        AlertRule::absence("a", Signal::value("m"), MIN),
        AlertRule::absence("a", Signal::value("n"), MIN),
    ])
    .unwrap_err();
    assert_eq!((dup.rule(), dup.field()), (Some("a"), Some("name")));
    assert!(
        err("[[rule]]\nname = \"k\"\nkind = \"magic\"\n")
            .to_string()
            .contains("rule \"k\": `kind` unknown kind")
    );
}

/// A notifier that never finishes: evaluation must not wait for it.
#[derive(Debug)]
struct Stuck;

impl Notifier for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }
    fn notify<'a>(&'a self, _: &'a Notification) -> NotifyFuture<'a> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn a_stuck_notifier_blocks_nothing_and_overflow_is_counted() {
    let (clock, monitor) = manual();
    let g = monitor.gauge("brisk_flap", "f", &[]).unwrap();
    let rule = AlertRule::threshold("flap", Signal::value("brisk_flap"), Op::Gt, 0.0);
    let engine = Arc::new(
        AlertEngine::builder(&monitor)
            .rules(AlertRules::new([rule]).unwrap())
            .notifier(Stuck)
            .queue_capacity(2)
            .build()
            .unwrap(),
    );
    for i in 0..10 {
        g.set(f64::from(i % 2)); // fires, resolves, fires...
        clock.advance(MIN);
        engine.evaluate();
    }
    tokio::task::yield_now().await;
    // 10 notifications: one taken by the stuck delivery task, two queued, the rest dropped.
    let failed = engine.failed_notifications();
    assert!((7..=8).contains(&failed), "failed = {failed}");
    assert_eq!(engine.sent_notifications(), 0);
    let text = monitor.render_prometheus();
    assert!(
        text.contains("brisk_alert_notifications_failed_total{notifier=\"stuck\"} "),
        "{text}"
    );
}

#[test]
fn builder_checks_its_values() {
    let monitor = Monitor::new();
    let e = AlertEngine::builder(&monitor)
        .repeat_interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "alerts.repeat_interval");
    let e = AlertEngine::builder(&monitor)
        .queue_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), "alerts.queue_capacity");
}
