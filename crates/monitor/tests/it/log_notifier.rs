//! The log notifier: what it writes, through a capturing `tracing` subscriber.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use brisk_core::ManualClock;
use brisk_monitor::{
    AlertEngine, AlertRule, AlertRules, LogNotifier, Monitor, Notifier, Op, Severity, Signal,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event: target, level and fields (the message as `message`).
#[derive(Debug, Clone)]
struct Captured {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

/// A subscriber that keeps every event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn writes_one_event_per_alert_at_the_severity_level() {
    let clock = ManualClock::new();
    let monitor = Monitor::builder().clock(clock.shared()).build().unwrap();
    let rss = monitor.gauge("brisk_rss_bytes", "rss", &[("host", "a")]).unwrap();
    rss.set(6e8);
    let rules = AlertRules::new([
        AlertRule::threshold("memory_high", Signal::value("brisk_rss_bytes"), Op::Gt, 5e8)
            .summary("RSS over 500 MB"),
        AlertRule::threshold("memory_critical", Signal::value("brisk_rss_bytes"), Op::Gt, 5.5e8)
            .severity_is(Severity::Critical),
    ])
    .unwrap();
    let engine = AlertEngine::builder(&monitor).rules(rules).build().unwrap();
    let fired = engine.evaluate();
    rss.set(1e8);
    let resolved = engine.evaluate();
    assert_eq!((fired.len(), resolved.len()), (2, 2));

    let capture = Capture::default();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    tracing::subscriber::with_default(capture.clone(), || {
        rt.block_on(async {
            for n in fired.iter().chain(&resolved) {
                LogNotifier.notify(n).await.unwrap();
            }
        });
    });
    let events = capture.0.lock().unwrap().clone();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events.iter().all(|e| e.target == "brisk_monitor::alert"));
    let find = |name: &str, status: &str| {
        events
            .iter()
            .find(|e| e.fields["alertname"] == name && e.fields["status"] == status)
            .unwrap_or_else(|| panic!("no {name} {status}: {events:?}"))
    };
    let high = find("memory_high", "firing");
    assert_eq!(high.level, Level::WARN);
    assert_eq!(high.fields["severity"], "warning");
    assert_eq!(high.fields["message"], "RSS over 500 MB");
    assert_eq!(high.fields["event"], "Fired");
    assert_eq!(high.fields["value"], "600000000.0");
    assert!(
        high.fields["labels"].contains("\"host\": \"a\""),
        "{:?}",
        high.fields
    );
    assert_eq!(find("memory_critical", "firing").level, Level::ERROR);
    let done = find("memory_high", "resolved");
    assert_eq!(done.level, Level::INFO);
    assert_eq!(done.fields["event"], "Resolved");
}
