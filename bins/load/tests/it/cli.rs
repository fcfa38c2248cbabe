//! The binary end to end.

use std::process::Command;
use std::time::Duration;

fn brisk_load(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_brisk-load"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_binary_refuses_a_non_loopback_target_before_sending_anything() {
    let out = brisk_load(&[
        "http",
        "load",
        "--target",
        "http://192.0.2.10:8000",
        "--duration",
        "1s",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing target") && err.contains("--allow-remote"),
        "{err}"
    );
    let out = brisk_load(&["ws", "idle", "--target", "ws://192.0.2.10:9001/ws"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing target"));
}

#[test]
fn the_binary_names_the_bad_field_of_a_mix_file() {
    let dir = std::env::temp_dir().join(format!("brisk-load-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mix = dir.join("bad.toml");
    std::fs::write(&mix, "[[request]]\npath = \"/\"\nweight = -3\n").unwrap();
    let out = brisk_load(&[
        "http",
        "load",
        "--target",
        "http://127.0.0.1:9",
        "--mix",
        mix.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("request[0].weight"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_json_and_writes_html() {
    let addr = crate::server::capacity(8, Duration::from_millis(1)).await;
    let dir = std::env::temp_dir().join(format!("brisk-load-cli-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mix, html) = (dir.join("mix.toml"), dir.join("report.html"));
    std::fs::write(
        &mix,
        "[sla]\np99_ms = 200\n[[request]]\nname = \"fast\"\npath = \"/fast\"\n",
    )
    .unwrap();
    let args: Vec<String> = [
        "http",
        "load",
        "--target",
        &format!("http://{addr}"),
        "--mix",
        mix.to_str().unwrap(),
        "--rate",
        "40",
        "--duration",
        "1s",
        "--json",
        "--report",
        html.to_str().unwrap(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_brisk-load"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["summary"]["completed"], 40);
    assert_eq!(json["summary"]["by_request"]["fast"]["count"], 40);
    assert_eq!(json["sla"]["p99_ms"], 200.0);
    assert_eq!(json["server"]["rss_end_mb"], 50.0);
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_a_ws_broadcast_in_the_issue_form() {
    // `brisk-load ws --url ... --connections N --topics T --rate R --duration S --json`
    let hub = brisk_ws_hub::Hub::builder().client_publish(true).build().unwrap();
    let addr = crate::server::serve(brisk_ws_hub::router(hub.clone(), "/ws")).await;
    let args: Vec<String> = [
        "ws",
        "--url",
        &format!("ws://{addr}/ws"),
        "--connections",
        "24",
        "--per-source",
        "8",
        "--topics",
        "3",
        "--rate",
        "20",
        "--duration",
        "0.3",
        "--drain",
        "500ms",
        "--stats-path",
        "none",
        "--json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_brisk-load"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 0.3 s at 20/s is 6 messages, two per topic; 8 connections on each
    // of the 3 topics: 6 × 8 deliveries.
    assert_eq!(json["ws"]["messages"], 6, "{json}");
    assert_eq!(json["ws"]["opened"], 24, "{json}");
    assert_eq!(
        (
            &json["ws"]["delivered"],
            &json["ws"]["lost"],
            &json["ws"]["duplicated"]
        ),
        (
            &serde_json::json!(48),
            &serde_json::json!(0),
            &serde_json::json!(0)
        ),
        "{json}"
    );
    assert_eq!(json["summary"]["planned"], 48, "{json}");
    assert!(json["summary"]["latency_ms"]["p999"].as_f64().unwrap() > 0.0);
    // Bad schedules are refused, naming the flag.
    let out = brisk_load(&["ws", "--url", "ws://127.0.0.1:9/ws", "--rate", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rate"));
}
