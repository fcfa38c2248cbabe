//! The alert engine: evaluates rules against the monitor, walks each alert
//! through pending → firing → (repeat, escalation) → resolved, groups what
//! changed into notifications and hands them to the notifiers.
//
// Evaluation is synchronous and never waits on a notifier: each notifier has
// a bounded queue drained by its own task; a full queue drops the
// notification and counts it. So a webhook that hangs for its whole timeout,
// or an SMTP server that is down, delays nothing but its own deliveries.
//
// Time comes from the monitor's clock, so a test walks a rule through its
// whole life with a `ManualClock` and `evaluate()` calls, without sleeping.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use brisk_core::{Clock, ConfigError, ContentHash, Timestamp};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::Monitor;
use crate::metric::Counter;
use crate::notify::Notifier;
use crate::registry::{Labels, read};
use crate::rules::{AlertRule, AlertRules, Condition, Op, Severity, Signal, SignalKind};

/// Whether an alert is firing or has resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition holds (after its pending duration).
    Firing,
    /// The condition held and no longer does.
    Resolved,
}

impl AlertStatus {
    /// `"firing"` or `"resolved"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// Why an alert is in a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertEvent {
    /// It just started firing.
    Fired,
    /// It is still firing and its repeat interval (cooldown) has passed.
    Repeated,
    /// It has fired for `escalate_after` and its severity was raised.
    Escalated,
    /// It stopped firing.
    Resolved,
}

/// One alert instance: a rule and the labels of one series.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Alert {
    /// The rule's name (also the `alertname` label).
    pub name: String,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Why it is being sent.
    pub event: AlertEvent,
    /// Its current severity (after any escalation).
    pub severity: Severity,
    /// `alertname`, `severity`, the rule's labels and the series' labels.
    pub labels: BTreeMap<String, String>,
    /// `summary` and `value`.
    pub annotations: BTreeMap<String, String>,
    /// The value that was compared (seconds for durations, a ratio, a burn rate...).
    pub value: f64,
    /// When it started firing (wall clock).
    pub starts_at: Timestamp,
    /// When it resolved, if it has.
    pub ends_at: Option<Timestamp>,
    /// A stable hash of its labels (16 hex digits).
    pub fingerprint: String,
}

/// The alerts of one group that changed in one evaluation: what a notifier sends.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Notification {
    /// `firing` if any alert in it fires, else `resolved`.
    pub status: AlertStatus,
    /// The values of the engine's `group_by` labels shared by these alerts.
    pub group_labels: BTreeMap<String, String>,
    /// The alerts.
    pub alerts: Vec<Alert>,
}

impl Notification {
    /// The highest severity among the alerts.
    #[must_use]
    pub fn severity(&self) -> Severity {
        self.alerts.iter().map(|a| a.severity).max().unwrap_or_default()
    }

    /// The Alertmanager webhook payload (version 4) for this notification,
    /// as sent by [`WebhookNotifier`](crate::WebhookNotifier).
    #[must_use]
    pub fn alertmanager_payload(&self, receiver: &str) -> serde_json::Value {
        let common = |f: fn(&Alert) -> &BTreeMap<String, String>| -> BTreeMap<String, String> {
            let mut it = self.alerts.iter();
            let Some(first) = it.next() else {
                return BTreeMap::new();
            };
            let mut c = f(first).clone();
            for a in it {
                c.retain(|k, v| f(a).get(k) == Some(v));
            }
            c
        };
        let group_key = format!(
            "{{}}:{{{}}}",
            self.group_labels
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let alerts: Vec<serde_json::Value> = self
            .alerts
            .iter()
            .map(|a| {
                serde_json::json!({
                    "status": a.status.as_str(),
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": a.starts_at.to_string(),
                    "endsAt": a.ends_at.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), |t| t.to_string()),
                    "generatorURL": "",
                    "fingerprint": a.fingerprint,
                })
            })
            .collect();
        serde_json::json!({
            "version": "4",
            "groupKey": group_key,
            "truncatedAlerts": 0,
            "status": self.status.as_str(),
            "receiver": receiver,
            "groupLabels": self.group_labels,
            "commonLabels": common(|a| &a.labels),
            "commonAnnotations": common(|a| &a.annotations),
            "externalURL": "",
            "alerts": alerts,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Pending,
    Firing,
}

#[derive(Debug)]
struct Instance {
    phase: Phase,
    pending_since: Instant,
    firing_since: Instant,
    starts_at: Timestamp,
    last_sent: Instant,
    severity: Severity,
    escalated: bool,
    value: f64,
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct State {
    instances: HashMap<(usize, Labels), Instance>,
    /// Absence rules: last value seen per series and when it last changed.
    seen: HashMap<(usize, Labels), (f64, Instant)>,
}

struct Dispatcher {
    notifier: Arc<dyn Notifier>,
    tx: mpsc::Sender<Arc<Notification>>,
    rx: Mutex<Option<mpsc::Receiver<Arc<Notification>>>>,
    sent: Counter,
    failed: Counter,
}

/// An alert that is pending or firing now.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ActiveAlert {
    /// The rule's name.
    pub name: String,
    /// `true` once past its pending duration.
    pub firing: bool,
    /// Its current severity.
    pub severity: Severity,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The last value compared.
    pub value: f64,
}

/// Evaluates alert rules and notifies. Made by [`AlertEngine::builder`].
///
/// ```
/// use std::time::Duration;
/// use brisk_core::ManualClock;
/// use brisk_monitor::{AlertEngine, AlertEvent, AlertRule, AlertRules, Monitor, Op, Signal};
///
/// let clock = ManualClock::new();
/// let monitor = Monitor::builder().clock(clock.shared()).build()?;
/// let memory = monitor.gauge("brisk_memory_bytes", "RSS", &[])?;
/// let rules = AlertRules::new([AlertRule::threshold("memory_high", Signal::value("brisk_memory_bytes"), Op::Gt, 500e6)
///     .pending(Duration::from_secs(60))])?;
/// let engine = AlertEngine::builder(&monitor).rules(rules).build()?;
///
/// memory.set(600e6);
/// assert!(engine.evaluate().is_empty()); // pending
/// clock.advance(Duration::from_secs(60));
/// let sent = engine.evaluate();
/// assert_eq!(sent[0].alerts[0].event, AlertEvent::Fired);
/// memory.set(100e6);
/// assert_eq!(engine.evaluate()[0].alerts[0].event, AlertEvent::Resolved);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AlertEngine {
    monitor: Monitor,
    rules: Vec<AlertRule>,
    repeat_interval: Duration,
    group_by: Vec<String>,
    started: Instant,
    state: Mutex<State>,
    dispatchers: Vec<Dispatcher>,
}

impl fmt::Debug for AlertEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertEngine")
            .field("rules", &self.rules.len())
            .field(
                "notifiers",
                &self
                    .dispatchers
                    .iter()
                    .map(|d| d.notifier.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds an [`AlertEngine`].
#[must_use]
pub struct AlertEngineBuilder {
    monitor: Monitor,
    rules: AlertRules,
    notifiers: Vec<Arc<dyn Notifier>>,
    repeat_interval: Duration,
    group_by: Vec<String>,
    queue: usize,
}

impl fmt::Debug for AlertEngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertEngineBuilder")
            .field("rules", &self.rules.len())
            .field("repeat_interval", &self.repeat_interval)
            .field("group_by", &self.group_by)
            .finish_non_exhaustive()
    }
}

impl AlertEngineBuilder {
    /// The rules. Default: none.
    pub fn rules(mut self, rules: AlertRules) -> Self {
        self.rules = rules;
        self
    }

    /// Adds a notifier. Default: none (notifications are only returned by
    /// [`AlertEngine::evaluate`]).
    pub fn notifier(mut self, notifier: impl Notifier) -> Self {
        self.notifiers.push(Arc::new(notifier));
        self
    }

    /// The cooldown of rules that set none: a firing alert is sent again
    /// after this long. Default 4 h (Alertmanager's); must be non-zero.
    pub fn repeat_interval(mut self, every: Duration) -> Self {
        self.repeat_interval = every;
        self
    }

    /// Labels that group alerts into one notification. Default
    /// `["alertname"]`: one notification per rule and evaluation.
    pub fn group_by<I: IntoIterator<Item = S>, S: Into<String>>(mut self, labels: I) -> Self {
        self.group_by = labels.into_iter().map(Into::into).collect();
        self
    }

    /// Notifications each notifier may have waiting; more are dropped and
    /// counted as failures. Default 256; must be non-zero.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue = capacity;
        self
    }

    /// Checks the values and builds the engine.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `alerts.repeat_interval` or `alerts.queue_capacity`.
    pub fn build(self) -> Result<AlertEngine, ConfigError> {
        if self.repeat_interval.is_zero() {
            return Err(ConfigError::new(
                "alerts.repeat_interval",
                "must be greater than zero",
            ));
        }
        if self.queue == 0 {
            return Err(ConfigError::new("alerts.queue_capacity", "must be at least 1"));
        }
        let mut dispatchers = Vec::new();
        for notifier in self.notifiers {
            let (tx, rx) = mpsc::channel(self.queue);
            let labels = [("notifier", notifier.name())];
            let sent = self
                .monitor
                .counter(
                    "brisk_alert_notifications_sent_total",
                    "Notifications delivered",
                    &labels,
                )
                .map_err(|e| ConfigError::new("alerts.notifier", e.to_string()))?;
            let failed = self
                .monitor
                .counter(
                    "brisk_alert_notifications_failed_total",
                    "Notifications that failed or were dropped on a full queue",
                    &labels,
                )
                .map_err(|e| ConfigError::new("alerts.notifier", e.to_string()))?;
            dispatchers.push(Dispatcher {
                notifier,
                tx,
                rx: Mutex::new(Some(rx)),
                sent,
                failed,
            });
        }
        Ok(AlertEngine {
            started: self.monitor.clock().now(),
            monitor: self.monitor,
            rules: self.rules.rules().to_vec(),
            repeat_interval: self.repeat_interval,
            group_by: self.group_by,
            state: Mutex::new(State::default()),
            dispatchers,
        })
    }
}

struct Observation {
    labels: Labels,
    value: f64,
    active: bool,
}

impl AlertEngine {
    /// A builder for an engine over `monitor`'s metrics and clock.
    pub fn builder(monitor: &Monitor) -> AlertEngineBuilder {
        AlertEngineBuilder {
            monitor: monitor.clone(),
            rules: AlertRules::default(),
            notifiers: Vec::new(),
            repeat_interval: Duration::from_secs(4 * 3600),
            group_by: vec!["alertname".to_owned()],
            queue: 256,
        }
    }

    /// Evaluates every rule now, advances each alert's lifecycle, queues the
    /// resulting notifications to every notifier (without waiting) and
    /// returns them.
    ///
    /// Delivery needs a tokio runtime: the first `evaluate` inside one
    /// starts a delivery task per notifier.
    pub fn evaluate(&self) -> Vec<Notification> {
        let clock = self.monitor.clock();
        let now = clock.now();
        let wall = Timestamp::now(clock.as_ref());
        let mut events = Vec::new();
        {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for (i, rule) in self.rules.iter().enumerate() {
                let obs = self.observe(i, rule, now, &mut state);
                self.advance(i, rule, &obs, now, wall, &mut state, &mut events);
            }
        }
        let notifications = self.group(events);
        self.dispatch(&notifications);
        notifications
    }

    /// Pending and firing alerts, as of the last evaluation.
    #[must_use]
    pub fn active(&self) -> Vec<ActiveAlert> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<ActiveAlert> = state
            .instances
            .iter()
            .map(|((i, _), inst)| ActiveAlert {
                name: self.rules[*i].name.clone(),
                firing: inst.phase == Phase::Firing,
                severity: inst.severity,
                labels: inst.labels.clone(),
                value: inst.value,
            })
            .collect();
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        out
    }

    /// Notifications that failed or were dropped, over all notifiers.
    #[must_use]
    pub fn failed_notifications(&self) -> u64 {
        self.dispatchers.iter().map(|d| d.failed.get()).sum()
    }

    /// Notifications delivered, over all notifiers.
    #[must_use]
    pub fn sent_notifications(&self) -> u64 {
        self.dispatchers.iter().map(|d| d.sent.get()).sum()
    }

    /// Spawns a task on the current tokio runtime that calls
    /// [`evaluate`](Self::evaluate) every `every`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    #[allow(clippy::must_use_candidate)] // dropping the handle detaches the task, the usual use
    pub fn spawn(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                engine.evaluate();
            }
        })
    }

    fn dispatch(&self, notifications: &[Notification]) {
        if notifications.is_empty() || self.dispatchers.is_empty() {
            return;
        }
        let runtime = tokio::runtime::Handle::try_current().ok();
        for d in &self.dispatchers {
            if let Some(rt) = &runtime
                && let Some(rx) = d.rx.lock().unwrap_or_else(PoisonError::into_inner).take()
            {
                rt.spawn(deliver(rx, d.notifier.clone(), d.sent.clone(), d.failed.clone()));
            }
            for n in notifications {
                if d.tx.try_send(Arc::new(n.clone())).is_err() {
                    d.failed.inc();
                    tracing::warn!(
                        notifier = d.notifier.name(),
                        "alert notification dropped: queue full"
                    );
                }
            }
        }
    }

    fn group(&self, events: Vec<Alert>) -> Vec<Notification> {
        let mut groups: BTreeMap<BTreeMap<String, String>, Vec<Alert>> = BTreeMap::new();
        for a in events {
            let key = self
                .group_by
                .iter()
                .filter_map(|k| a.labels.get(k).map(|v| (k.clone(), v.clone())))
                .collect();
            groups.entry(key).or_default().push(a);
        }
        groups
            .into_iter()
            .map(|(group_labels, alerts)| Notification {
                status: if alerts.iter().any(|a| a.status == AlertStatus::Firing) {
                    AlertStatus::Firing
                } else {
                    AlertStatus::Resolved
                },
                group_labels,
                alerts,
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn advance(
        &self,
        i: usize,
        rule: &AlertRule,
        obs: &[Observation],
        now: Instant,
        wall: Timestamp,
        state: &mut State,
        events: &mut Vec<Alert>,
    ) {
        let pending = if matches!(rule.condition, Condition::Absence { .. }) {
            Duration::ZERO // the absence duration is the condition itself
        } else {
            rule.pending
        };
        let repeat = rule.repeat_interval.unwrap_or(self.repeat_interval);
        let mut active_keys = Vec::new();
        for o in obs.iter().filter(|o| o.active) {
            let key = (i, o.labels.clone());
            active_keys.push(key.clone());
            let inst = state.instances.entry(key).or_insert_with(|| Instance {
                phase: Phase::Pending,
                pending_since: now,
                firing_since: now,
                starts_at: wall,
                last_sent: now,
                severity: rule.severity,
                escalated: false,
                value: o.value,
                labels: alert_labels(rule, &o.labels, rule.severity),
            });
            inst.value = o.value;
            match inst.phase {
                Phase::Pending => {
                    if now.saturating_duration_since(inst.pending_since) >= pending {
                        inst.phase = Phase::Firing;
                        inst.firing_since = now;
                        inst.starts_at = wall;
                        inst.last_sent = now;
                        events.push(make_alert(rule, inst, AlertEvent::Fired, None));
                    }
                }
                Phase::Firing => {
                    let firing_for = now.saturating_duration_since(inst.firing_since);
                    if let Some(after) = rule.escalate_after
                        && !inst.escalated
                        && firing_for >= after
                    {
                        inst.escalated = true;
                        inst.severity = rule.escalate_to;
                        inst.labels = alert_labels(rule, &o.labels, inst.severity);
                        inst.last_sent = now;
                        events.push(make_alert(rule, inst, AlertEvent::Escalated, None));
                    } else if now.saturating_duration_since(inst.last_sent) >= repeat {
                        inst.last_sent = now;
                        events.push(make_alert(rule, inst, AlertEvent::Repeated, None));
                    }
                }
            }
        }
        let gone: Vec<_> = state
            .instances
            .keys()
            .filter(|k| k.0 == i && !active_keys.contains(k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(inst) = state.instances.remove(&key)
                && inst.phase == Phase::Firing
            {
                events.push(make_alert(rule, &inst, AlertEvent::Resolved, Some(wall)));
            }
        }
    }

    fn observe(&self, i: usize, rule: &AlertRule, now: Instant, state: &mut State) -> Vec<Observation> {
        match &rule.condition {
            Condition::Threshold { signal, op, value } => self
                .signal_values(signal)
                .into_iter()
                .map(|(labels, v)| Observation {
                    labels,
                    value: v,
                    active: match op {
                        Op::Gt => v > *value,
                        Op::Lt => v < *value,
                    },
                })
                .collect(),
            Condition::Baseline {
                metric,
                labels,
                quantile,
                factor,
                window,
                baseline,
                min_samples,
            } => self
                .monitor
                .histograms_matching(metric, labels)
                .into_iter()
                .map(|(labels, h)| {
                    let recent = h.between(*window, Duration::ZERO);
                    let base = h.between(*baseline, *window);
                    let enough = recent.count() >= *min_samples && base.count() >= *min_samples;
                    let (r, b) = (
                        recent.quantile(*quantile).unwrap_or(0.0),
                        base.quantile(*quantile).unwrap_or(0.0),
                    );
                    let ratio = if b > 0.0 { r / b } else { 0.0 };
                    Observation {
                        labels,
                        value: ratio,
                        active: enough && b > 0.0 && r > factor * b,
                    }
                })
                .collect(),
            Condition::BurnRate {
                operation,
                objective,
                latency_target,
                long_window,
                short_window,
                factor,
            } => {
                let Some(op) = read(&self.monitor.inner.operations).get(operation).cloned() else {
                    return Vec::new();
                };
                let budget = 1.0 - objective;
                let burn = |w: Duration| {
                    let s = op.stats(Some(w));
                    if s.calls == 0 {
                        return 0.0;
                    }
                    let bad = match latency_target {
                        Some(t) => 1.0 - s.durations.fraction_at_or_below(t.as_secs_f64()),
                        None => s.error_ratio(),
                    };
                    bad / budget
                };
                let (long, short) = (burn(*long_window), burn(*short_window));
                vec![Observation {
                    labels: vec![("operation".to_owned(), operation.clone())],
                    value: long,
                    active: long > *factor && short > *factor,
                }]
            }
            Condition::Absence { signal } => {
                let values = match &signal.kind {
                    #[allow(clippy::cast_precision_loss)]
                    SignalKind::Quantile { .. } => self
                        .monitor
                        .histograms_matching(&signal.metric, &signal.labels)
                        .into_iter()
                        .map(|(l, h)| (l, h.snapshot().count() as f64))
                        .collect(),
                    _ => self.signal_values(signal),
                };
                let mut out = Vec::new();
                if values.is_empty() {
                    let mut labels = signal.labels.clone();
                    labels.sort();
                    let absent = now.saturating_duration_since(self.started);
                    out.push(Observation {
                        labels,
                        value: absent.as_secs_f64(),
                        active: absent >= rule.pending,
                    });
                }
                for (labels, v) in values {
                    let entry = state.seen.entry((i, labels.clone())).or_insert((v, now));
                    #[allow(clippy::float_cmp)] // any change at all is new data
                    if entry.0 != v {
                        *entry = (v, now);
                    }
                    let absent = now.saturating_duration_since(entry.1);
                    out.push(Observation {
                        labels,
                        value: absent.as_secs_f64(),
                        active: absent >= rule.pending,
                    });
                }
                out
            }
        }
    }

    fn signal_values(&self, signal: &Signal) -> Vec<(Labels, f64)> {
        match &signal.kind {
            SignalKind::Value => self.monitor.scalars_matching(&signal.metric, &signal.labels),
            SignalKind::Quantile { q, window } => self
                .monitor
                .histograms_matching(&signal.metric, &signal.labels)
                .into_iter()
                .filter_map(|(labels, h)| {
                    let snap = match window {
                        Some(w) => h.window(*w),
                        None => h.snapshot(),
                    };
                    snap.quantile(*q).map(|v| (labels, v))
                })
                .collect(),
            SignalKind::Ratio { other } => {
                let others: HashMap<Labels, f64> = self
                    .monitor
                    .scalars_matching(other, &signal.labels)
                    .into_iter()
                    .collect();
                self.monitor
                    .scalars_matching(&signal.metric, &signal.labels)
                    .into_iter()
                    .filter_map(|(labels, n)| {
                        let o = others.get(&labels).copied().unwrap_or(0.0);
                        (n + o > 0.0).then(|| (labels, n / (n + o)))
                    })
                    .collect()
            }
        }
    }
}

fn alert_labels(rule: &AlertRule, series: &Labels, severity: Severity) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = series.iter().cloned().collect();
    labels.extend(rule.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels.insert("alertname".to_owned(), rule.name.clone());
    labels.insert("severity".to_owned(), severity.as_str().to_owned());
    labels
}

fn make_alert(rule: &AlertRule, inst: &Instance, event: AlertEvent, ends_at: Option<Timestamp>) -> Alert {
    let mut annotations = BTreeMap::new();
    let summary = if rule.summary.is_empty() {
        format!(
            "{} is {}",
            rule.name,
            if ends_at.is_some() { "resolved" } else { "firing" }
        )
    } else {
        rule.summary.clone()
    };
    annotations.insert("summary".to_owned(), summary);
    annotations.insert("value".to_owned(), format!("{}", inst.value));
    // The fingerprint ignores severity, which escalation changes.
    let identity: String = inst
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "severity")
        .map(|(k, v)| format!("{k}={v}\u{1f}"))
        .collect();
    let hash = ContentHash::of(&identity).as_u128();
    Alert {
        name: rule.name.clone(),
        status: if ends_at.is_some() { AlertStatus::Resolved } else { AlertStatus::Firing },
        event,
        severity: inst.severity,
        labels: inst.labels.clone(),
        annotations,
        value: inst.value,
        starts_at: inst.starts_at,
        ends_at,
        #[allow(clippy::cast_possible_truncation)] // the low 64 bits
        fingerprint: format!("{:016x}", hash as u64),
    }
}

async fn deliver(
    mut rx: mpsc::Receiver<Arc<Notification>>,
    notifier: Arc<dyn Notifier>,
    sent: Counter,
    failed: Counter,
) {
    while let Some(n) = rx.recv().await {
        match notifier.notify(&n).await {
            Ok(()) => sent.inc(),
            Err(e) => {
                failed.inc();
                tracing::warn!(notifier = notifier.name(), error = %e, "alert notification failed");
            }
        }
    }
}
