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
