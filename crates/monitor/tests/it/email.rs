//! The email notifier (feature `email`) against a small SMTP server on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brisk_core::{Backoff, ManualClock};
use brisk_monitor::{
    AlertEngine, AlertRule, AlertRules, EmailNotifier, Monitor, Notifier, NotifyError, Op, Signal,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A minimal SMTP server: accepts everything, records the commands and the
/// message data of each session. `reject_data` answers 554 to DATA's end.
async fn smtp_server(reject_data: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let log = log2.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let mut in_data = false;
                let mut data = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            log.lock().unwrap().push(format!("DATA:{data}"));
                            data.clear();
                            let reply: &[u8] = if reject_data {
                                b"554 no thanks\r\n"
                            } else {
                                b"250 queued\r\n"
                            };
                            w.write_all(reply).await.unwrap();
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    log.lock().unwrap().push(line.clone());
                    let upper = line.to_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-test\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        b"354 go ahead\r\n"
                    } else if upper.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, log)
}

fn firing() -> brisk_monitor::Notification {
    let clock = ManualClock::new();
    let monitor = Monitor::builder().clock(clock.shared()).build().unwrap();
    monitor.gauge("brisk_rss_bytes", "rss", &[]).unwrap().set(6e8);
    let rule = AlertRule::threshold("memory_high", Signal::value("brisk_rss_bytes"), Op::Gt, 5e8)
        .summary("RSS over 500 MB");
    let engine = AlertEngine::builder(&monitor)
        .rules(AlertRules::new([rule]).unwrap())
        .build()
        .unwrap();
    engine.evaluate().remove(0)
}

#[tokio::test]
async fn sends_one_mail_per_notification() {
    let (port, log) = smtp_server(false).await;
    let mail = EmailNotifier::builder("127.0.0.1")
        .port(port)
        .from("brisk <alerts@example.com>")
        .to("oncall@example.com")
        .to("lead@example.com")
        .build()
        .unwrap();
    mail.notify(&firing()).await.unwrap();
    let log = log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|l| l.starts_with("MAIL FROM:<alerts@example.com>")),
        "{log:?}"
    );
    assert_eq!(log.iter().filter(|l| l.starts_with("RCPT TO:")).count(), 2);
    let data = log.iter().find(|l| l.starts_with("DATA:")).unwrap();
    assert!(
        data.contains("Subject: [FIRING:1] memory_high (warning)"),
        "{data}"
    );
    assert!(data.contains("RSS over 500 MB"));
    assert!(data.contains("alertname=memory_high"));
}

#[tokio::test]
async fn a_rejected_mail_is_an_error_after_retries() {
    let (port, _log) = smtp_server(true).await;
    let mail = EmailNotifier::builder("127.0.0.1")
        .port(port)
        .from("alerts@example.com")
        .to("oncall@example.com")
        .backoff(
            Backoff::builder()
                .base(Duration::from_millis(1))
                .max_attempts(2)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = mail.notify(&firing()).await.unwrap_err();
    assert!(
        matches!(&err, NotifyError::Transport { reason, .. } if reason.contains("554")),
        "{err:?}"
    );
}

#[test]
fn builder_names_bad_fields() {
    assert_eq!(
        EmailNotifier::builder("h")
            .to("a@b.c")
            .build()
            .unwrap_err()
            .field(),
        "email.from"
    );
    assert_eq!(
        EmailNotifier::builder("h")
            .from("a@b.c")
            .build()
            .unwrap_err()
            .field(),
        "email.to"
    );
    assert_eq!(
        EmailNotifier::builder("h")
            .from("nope")
            .to("a@b.c")
            .build()
            .unwrap_err()
            .field(),
        "email.from"
    );
}

/// How an SMTP session over one stream ended.
#[cfg(feature = "rustls")]
enum SessionEnd {
    Quit,
    StartTls,
}

/// Serves SMTP commands on `stream`, logging each as `"{tag} {line}"` (the
/// message as `"{tag} DATA:{text}"`). Offers STARTTLS when `offer_starttls`,
/// and returns when the client asks for it (after the `220`) or quits.
#[cfg(feature = "rustls")]
async fn smtp_session<S>(
    stream: &mut BufReader<S>,
    log: &Mutex<Vec<String>>,
    tag: &str,
    offer_starttls: bool,
) -> SessionEnd
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return SessionEnd::Quit;
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            if offer_starttls {
                b"250-test\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
            } else {
                b"250-test\r\n250 8BITMIME\r\n"
            }
        } else if upper == "STARTTLS" && offer_starttls {
            log.lock().unwrap().push(format!("{tag} {cmd}"));
            stream.write_all(b"220 go ahead\r\n").await.unwrap();
            return SessionEnd::StartTls;
        } else if upper.starts_with("DATA") {
            stream.write_all(b"354 go ahead\r\n").await.unwrap();
            let mut data = String::new();
            loop {
                line.clear();
                if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return SessionEnd::Quit;
                }
                if line.trim_end() == "." {
                    break;
                }
                data.push_str(&line);
            }
            log.lock().unwrap().push(format!("{tag} DATA:{data}"));
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            log.lock().unwrap().push(format!("{tag} {cmd}"));
            let _ = stream.write_all(b"221 bye\r\n").await;
            return SessionEnd::Quit;
        } else {
            b"250 ok\r\n"
        };
        log.lock().unwrap().push(format!("{tag} {cmd}"));
        stream.write_all(reply).await.unwrap();
    }
}

/// An SMTP server on 127.0.0.1 that offers STARTTLS with `cert` (a rustls
/// acceptor on the ring provider). Commands sent in the clear are logged as
/// `"plain …"`, commands over TLS as `"tls …"`, and each handshake as
/// `"handshake <TLS version>"` (or `"handshake failed: …"`).
#[cfg(feature = "rustls")]
async fn starttls_server(cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio_rustls::rustls::{self, pki_types};

    let key = pki_types::PrivateKeyDer::Pkcs8(pki_types::PrivatePkcs8KeyDer::from(
        cert.signing_key.serialize_der(),
    ));
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (log, acceptor) = (log2.clone(), acceptor.clone());
            tokio::spawn(async move {
                let mut plain = BufReader::new(sock);
                plain.write_all(b"220 test ESMTP\r\n").await.unwrap();
                if let SessionEnd::Quit = smtp_session(&mut plain, &log, "plain", true).await {
                    return;
                }
                // The client speaks TLS only after our 220: nothing is buffered.
                assert!(plain.buffer().is_empty());
                match acceptor.accept(plain.into_inner()).await {
                    Ok(tls) => {
                        let version = tls.get_ref().1.protocol_version();
                        let version = version.map_or("none".to_owned(), |v| format!("{v:?}"));
                        log.lock().unwrap().push(format!("handshake {version}"));
                        let mut tls = BufReader::new(tls);
                        smtp_session(&mut tls, &log, "tls", false).await;
                    }
                    Err(e) => log.lock().unwrap().push(format!("handshake failed: {e}")),
                }
            });
        }
    });
    (port, log)
}

#[cfg(feature = "rustls")]
fn self_signed() -> rcgen::CertifiedKey<rcgen::KeyPair> {
    rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap()
}

#[cfg(feature = "rustls")]
fn one_attempt() -> Backoff {
    Backoff::builder()
        .base(Duration::from_millis(1))
        .max_attempts(1)
        .build()
        .unwrap()
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn starttls_sends_the_message_over_tls_to_a_trusted_server() {
    let cert = self_signed();
    let (port, log) = starttls_server(&cert).await;
    let mail = EmailNotifier::builder("127.0.0.1")
        .port(port)
        .from("brisk <alerts@example.com>")
        .to("oncall@example.com")
        .starttls(true)
        .root_certificate_pem(cert.cert.pem())
        .backoff(one_attempt())
        .build()
        .unwrap();
    mail.notify(&firing()).await.unwrap();
    let log = log.lock().unwrap().clone();
    let pos = |prefix: &str| log.iter().position(|l| l.starts_with(prefix));
    let starttls = pos("plain STARTTLS").unwrap_or_else(|| panic!("no STARTTLS: {log:?}"));
    let handshake = pos("handshake TLSv1_").unwrap_or_else(|| panic!("no TLS handshake: {log:?}"));
    assert!(starttls < handshake, "{log:?}");
    // Nothing about the message went in the clear.
    assert!(
        !log.iter().any(|l| l.starts_with("plain MAIL")
            || l.starts_with("plain RCPT")
            || l.starts_with("plain DATA")),
        "{log:?}"
    );
    let mail_from = pos("tls MAIL FROM:<alerts@example.com>").unwrap_or_else(|| panic!("{log:?}"));
    assert!(handshake < mail_from);
    assert!(pos("tls RCPT TO:<oncall@example.com>").is_some(), "{log:?}");
    let data = log.iter().find(|l| l.starts_with("tls DATA:")).unwrap();
    assert!(
        data.contains("Subject: [FIRING:1] memory_high (warning)"),
        "{data}"
    );
    assert!(data.contains("RSS over 500 MB"), "{data}");
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn starttls_refuses_an_untrusted_certificate_and_sends_nothing() {
    let cert = self_signed();
    let (port, log) = starttls_server(&cert).await;
    let mail = EmailNotifier::builder("127.0.0.1")
        .port(port)
        .from("alerts@example.com")
        .to("oncall@example.com")
        .starttls(true) // the self-signed certificate is not trusted
        .backoff(one_attempt())
        .build()
        .unwrap();
    let err = mail.notify(&firing()).await.unwrap_err();
    assert!(matches!(err, NotifyError::Transport { .. }), "{err:?}");
    let log = log.lock().unwrap().clone();
    assert!(log.iter().any(|l| l == "plain STARTTLS"), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("MAIL FROM")), "{log:?}");
}

#[cfg(feature = "rustls")]
#[tokio::test]
async fn starttls_fails_against_a_server_without_it() {
    let (port, log) = smtp_server(false).await;
    let mail = EmailNotifier::builder("127.0.0.1")
        .port(port)
        .from("alerts@example.com")
        .to("oncall@example.com")
        .starttls(true)
        .backoff(one_attempt())
        .build()
        .unwrap();
    assert!(mail.notify(&firing()).await.is_err());
    assert!(!log.lock().unwrap().iter().any(|l| l.contains("MAIL FROM")));
}

#[cfg(feature = "rustls")]
#[test]
fn a_root_certificate_that_is_not_pem_is_named() {
    let err = EmailNotifier::builder("127.0.0.1")
        .from("alerts@example.com")
        .to("oncall@example.com")
        .starttls(true)
        .root_certificate_pem("not a certificate")
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "email.root_certificate_pem");
}
