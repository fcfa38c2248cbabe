//! The email notifier (feature `email`): SMTP through lettre.

use std::fmt::Write as _;
use std::time::Duration;

use brisk_core::{Backoff, ConfigError};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::alerts::{AlertStatus, Notification};
use crate::error::NotifyError;
use crate::notify::{Notifier, NotifyFuture};

/// Sends each notification as one plain-text email over SMTP.
///
/// The subject reads `[FIRING:2] analyze_slow (critical)` or
/// `[RESOLVED] analyze_slow`; the body lists each alert with its labels,
/// summary, value and start (and end) time. Failed sends are retried with
/// [`Backoff`]. Without the `rustls` feature the connection is plain SMTP
/// (a local relay); with it, [`EmailNotifierBuilder::starttls`] upgrades it.
///
/// ```
/// let mail = brisk_monitor::EmailNotifier::builder("127.0.0.1")
///     .port(2525)
///     .from("brisk <alerts@example.com>")
///     .to("oncall@example.com")
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct EmailNotifier {
    name: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    backoff: Backoff,
}

/// Builds an [`EmailNotifier`].
#[derive(Debug)]
#[must_use]
pub struct EmailNotifierBuilder {
    name: String,
    host: String,
    port: u16,
    from: Option<String>,
    to: Vec<String>,
    credentials: Option<(String, String)>,
    timeout: Duration,
    backoff: Backoff,
    starttls: bool,
    root_certificates: Vec<Vec<u8>>,
}

impl EmailNotifier {
    /// A builder sending through the SMTP server at `host`.
    pub fn builder(host: impl Into<String>) -> EmailNotifierBuilder {
        EmailNotifierBuilder {
            name: "email".to_owned(),
            host: host.into(),
            port: 25,
            from: None,
            to: Vec::new(),
            credentials: None,
            timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            starttls: false,
            root_certificates: Vec::new(),
        }
    }
}

impl EmailNotifierBuilder {
    /// The notifier's name (the `notifier` label). Default `"email"`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The SMTP port. Default 25.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The sender (`"brisk <alerts@example.com>"`). Required.
    pub fn from(mut self, from: impl Into<String>) -> Self {
        self.from = Some(from.into());
        self
    }

    /// Adds a recipient. At least one is required.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to.push(to.into());
        self
    }

    /// SMTP credentials. Default: none.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// The time limit of one SMTP command. Default 10 s; must be non-zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The retry policy. Default [`Backoff::default`].
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Requires STARTTLS (needs the `rustls` feature): the session is
    /// upgraded to TLS before anything is sent, and a server that does not
    /// offer STARTTLS or whose certificate does not verify for `host` is an
    /// error. Default off.
    pub fn starttls(mut self, on: bool) -> Self {
        self.starttls = on;
        self
    }

    /// Also trusts this PEM certificate (one or more `BEGIN CERTIFICATE`
    /// blocks) when verifying the server's, beside the Mozilla roots: for
    /// a relay with a private CA or a self-signed certificate. Only used
    /// with [`starttls`](Self::starttls). Default: none.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Checks the values and builds the notifier.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `email.from`, `email.to`, `email.timeout`,
    /// `email.starttls` (asked for without the `rustls` feature) or
    /// `email.root_certificate_pem` (not a PEM certificate).
    pub fn build(self) -> Result<EmailNotifier, ConfigError> {
        let from_text = self
            .from
            .ok_or_else(|| ConfigError::new("email.from", "is required"))?;
        let from: Mailbox = from_text
            .parse()
            .map_err(|e| ConfigError::new("email.from", format!("{from_text:?} is not an address: {e}")))?;
        if self.to.is_empty() {
            return Err(ConfigError::new("email.to", "needs at least one recipient"));
        }
        let to = self
            .to
            .iter()
            .map(|t| {
                t.parse()
                    .map_err(|e| ConfigError::new("email.to", format!("{t:?} is not an address: {e}")))
            })
            .collect::<Result<Vec<Mailbox>, _>>()?;
        if self.timeout.is_zero() {
            return Err(ConfigError::new("email.timeout", "must be greater than zero"));
        }
        let mut builder = if self.starttls {
            starttls_builder(&self.host, &self.root_certificates)?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
        };
        builder = builder.port(self.port).timeout(Some(self.timeout));
        if let Some((user, password)) = self.credentials {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(EmailNotifier {
            name: self.name,
            transport: builder.build(),
            from,
            to,
            backoff: self.backoff,
        })
    }
}

#[cfg(feature = "rustls")]
fn starttls_builder(
    host: &str,
    roots: &[Vec<u8>],
) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, ConfigError> {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let mut params = TlsParameters::builder(host.to_owned());
    for pem in roots {
        // An input without any certificate block parses as an empty list.
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(ConfigError::new(
                "email.root_certificate_pem",
                "holds no `-----BEGIN CERTIFICATE-----` block",
            ));
        }
        let cert = Certificate::from_pem(pem)
            .map_err(|e| ConfigError::new("email.root_certificate_pem", e.to_string()))?;
        params = params.add_root_certificate(cert);
    }
    let params = params
        .build_rustls()
        .map_err(|e| ConfigError::new("email.starttls", e.to_string()))?;
    Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).tls(Tls::Required(params)))
}

#[cfg(not(feature = "rustls"))]
fn starttls_builder(
    _host: &str,
    _roots: &[Vec<u8>],
) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, ConfigError> {
    Err(ConfigError::new(
        "email.starttls",
        "needs brisk-monitor's `rustls` feature",
    ))
}

/// The subject and plain-text body of `n`.
pub(crate) fn render(n: &Notification) -> (String, String) {
    let name = n.alerts.first().map_or("alert", |a| a.name.as_str());
    let subject = match n.status {
        AlertStatus::Firing => {
            let firing = n
                .alerts
                .iter()
                .filter(|a| a.status == AlertStatus::Firing)
                .count();
            format!("[FIRING:{firing}] {name} ({})", n.severity())
        }
        AlertStatus::Resolved => format!("[RESOLVED] {name}"),
    };
    let mut body = String::new();
    for a in &n.alerts {
        let _ = writeln!(
            body,
            "{} {} ({})",
            a.status.as_str().to_uppercase(),
            a.name,
            a.severity
        );
        if let Some(s) = a.annotations.get("summary") {
            let _ = writeln!(body, "  {s}");
        }
        let _ = writeln!(body, "  value: {}", a.value);
        let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(body, "  labels: {}", labels.join(", "));
        let _ = writeln!(body, "  since: {}", a.starts_at);
        if let Some(end) = a.ends_at {
            let _ = writeln!(body, "  resolved: {end}");
        }
        body.push('\n');
    }
    (subject, body)
}

impl EmailNotifier {
    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let (subject, body) = render(n);
        let mut builder = Message::builder().from(self.from.clone()).subject(subject);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let message =
            builder
                .header(ContentType::TEXT_PLAIN)
                .body(body)
                .map_err(|e| NotifyError::Transport {
                    notifier: self.name.clone(),
                    reason: e.to_string(),
                    attempts: 0,
                })?;
        let mut retries = self.backoff.retries();
        loop {
            match self.transport.send(message.clone()).await {
                Ok(_) => return Ok(()),
                Err(e) => match retries.next_delay() {
                    Some(d) if !e.is_permanent() => tokio::time::sleep(d).await,
                    _ => {
                        return Err(NotifyError::Transport {
                            notifier: self.name.clone(),
                            reason: e.to_string(),
                            attempts: retries.attempts(),
                        });
                    }
                },
            }
        }
    }
}

impl Notifier for EmailNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn notify<'a>(&'a self, notification: &'a Notification) -> NotifyFuture<'a> {
        Box::pin(self.send(notification))
    }
}
