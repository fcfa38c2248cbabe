//! Notifiers: where alert notifications go.
//
// A notifier is called from its own delivery task (see alerts.rs), so it may
// take its time (retries, backoff, timeouts) without delaying evaluation or
// recording. The webhook retries with brisk-core's one backoff policy and
// honours a Retry-After header.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use brisk_core::{Backoff, ConfigError, parse_retry_after};

use crate::alerts::{AlertStatus, Notification};
use crate::error::NotifyError;
use crate::rules::Severity;

/// The future a [`Notifier`] returns.
pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), NotifyError>> + Send + 'a>>;

/// Somewhere to send alert notifications.
///
/// ```
/// use brisk_monitor::{Notification, Notifier, NotifyFuture};
///
/// #[derive(Debug)]
/// struct Stdout;
///
/// impl Notifier for Stdout {
///     fn name(&self) -> &str { "stdout" }
///     fn notify<'a>(&'a self, n: &'a Notification) -> NotifyFuture<'a> {
///         Box::pin(async move {
///             println!("{} alerts, {:?}", n.alerts.len(), n.status);
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait Notifier: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and the `notifier` label of the delivery counters.
    fn name(&self) -> &str;

    /// Delivers one notification.
    fn notify<'a>(&'a self, notification: &'a Notification) -> NotifyFuture<'a>;
}

/// Writes each alert as a `tracing` event: `error` level for error and
/// critical, `warn` for warning, `info` for info and for resolved alerts.
/// Target `brisk_monitor::alert`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn name(&self) -> &str {
        "log"
    }

    fn notify<'a>(&'a self, n: &'a Notification) -> NotifyFuture<'a> {
        for a in &n.alerts {
            let summary = a.annotations.get("summary").map_or("", String::as_str);
            let labels = format!("{:?}", a.labels);
            macro_rules! emit {
                ($level:ident) => {
                    tracing::$level!(
                        target: "brisk_monitor::alert",
                        alertname = %a.name,
                        status = a.status.as_str(),
                        severity = a.severity.as_str(),
                        event = ?a.event,
                        value = a.value,
                        labels = %labels,
                        "{summary}"
                    )
                };
            }
            match (a.status, a.severity) {
                (AlertStatus::Resolved, _) | (_, Severity::Info) => emit!(info),
                (_, Severity::Warning) => emit!(warn),
                (_, Severity::Error | Severity::Critical) => emit!(error),
            }
        }
        Box::pin(async { Ok(()) })
    }
}

/// POSTs each notification as JSON in the Alertmanager webhook format
/// (version 4), so receivers written for Alertmanager accept it.
///
/// Each attempt has a timeout; a 5xx, 408 or 429 answer or a transport error
/// is retried with [`Backoff`] (honouring `Retry-After`); other 4xx answers
/// fail at once. HTTPS needs the `rustls` feature.
///
/// ```
/// use std::time::Duration;
/// let hook = brisk_monitor::WebhookNotifier::builder("http://127.0.0.1:9093/hook")
///     .timeout(Duration::from_secs(2))
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct WebhookNotifier {
    name: String,
    url: reqwest::Url,
    receiver: String,
    client: reqwest::Client,
    backoff: Backoff,
}

/// Builds a [`WebhookNotifier`].
#[derive(Debug)]
#[must_use]
pub struct WebhookNotifierBuilder {
    name: String,
    url: String,
    receiver: String,
    timeout: Duration,
    backoff: Backoff,
    headers: Vec<(String, String)>,
}

impl WebhookNotifier {
    /// A builder posting to `url`.
    pub fn builder(url: impl Into<String>) -> WebhookNotifierBuilder {
        WebhookNotifierBuilder {
            name: "webhook".to_owned(),
            url: url.into(),
            receiver: "brisk".to_owned(),
            timeout: Duration::from_secs(5),
            backoff: Backoff::default(),
            headers: Vec::new(),
        }
    }
}

impl WebhookNotifierBuilder {
    /// The notifier's name (the `notifier` label). Default `"webhook"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The payload's `receiver`. Default `"brisk"`.
    pub fn receiver(mut self, receiver: impl Into<String>) -> Self {
        self.receiver = receiver.into();
        self
    }

    /// The time limit of one attempt (connect, send, answer). Default 5 s;
    /// must be non-zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The retry policy. Default [`Backoff::default`] (5 attempts, 100 ms
    /// base, 10 s cap).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Adds a header to every request (e.g. `Authorization`). Default: none.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Checks the values and builds the notifier.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `webhook.url` (not an http or https URL),
    /// `webhook.timeout`, `webhook.header` or `webhook.client`.
    pub fn build(self) -> Result<WebhookNotifier, ConfigError> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| ConfigError::new("webhook.url", format!("{:?} is not a URL: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "webhook.url",
                format!("must be http or https, got {:?}", url.scheme()),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("webhook.timeout", "must be greater than zero"));
        }
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &self.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| ConfigError::new("webhook.header", format!("{k:?}: {e}")))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| ConfigError::new("webhook.header", format!("value of {k:?}: {e}")))?;
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| ConfigError::new("webhook.client", e.to_string()))?;
        Ok(WebhookNotifier {
            name: self.name,
            url,
            receiver: self.receiver,
            client,
            backoff: self.backoff,
        })
    }
}

impl WebhookNotifier {
    async fn post(&self, n: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(&n.alertmanager_payload(&self.receiver)).unwrap_or_default();
        let mut retries = self.backoff.retries();
        loop {
            let attempt = self
                .client
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let delay = match attempt {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retryable = status >= 500 || status == 408 || status == 429;
                    let hint = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    match retryable.then(|| retries.next_delay_after(hint)).flatten() {
                        Some(d) => d,
                        None => {
                            return Err(NotifyError::Status {
                                notifier: self.name.clone(),
                                status,
                                attempts: retries.attempts(),
                            });
                        }
                    }
                }
                Err(e) => match retries.next_delay() {
                    Some(d) => d,
                    None => {
                        let reason = if e.is_timeout() {
                            "timed out".to_owned()
                        } else if e.is_connect() {
                            "could not connect".to_owned()
                        } else {
                            e.to_string()
                        };
                        return Err(NotifyError::Transport {
                            notifier: self.name.clone(),
                            reason,
                            attempts: retries.attempts(),
                        });
                    }
                },
            };
            tokio::time::sleep(delay).await;
        }
    }
}

impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn notify<'a>(&'a self, notification: &'a Notification) -> NotifyFuture<'a> {
        Box::pin(self.post(notification))
    }
}
