//! The dashboard in a real browser: headless Chromium (Debian's `chromium`)
//! loads `/` from a running server, and the test watches, through CDP, the
//! charts grow from `metrics` snapshots on the WebSocket, the alert and post
//! streams fill, the generate form bring posts, and no script error happen.
//! A screenshot of the page is saved under the target directory.
//!
//! Without Chromium the test fails, naming the package to install, unless
//! `BRISK_SKIP_SERVICES=1`, where it records a skip like the other tests that
//! need an outside program.

#[path = "browser_cdp.rs"]
mod cdp;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::TestServer;
use cdp::{Chromium, Page};

/// How long any one thing may take to show on the page. Generous: the
/// machine may be two loaded cores, and the test polls, so a fast run is
/// not slowed by it.
const WAIT: Duration = Duration::from_secs(60);

/// The Chromium binary, or `None` after recording a skip; panics when
/// Chromium is missing and skipping is not asked for.
fn chromium_or_skip() -> Option<PathBuf> {
    if let Some(binary) = cdp::find_chromium() {
        return Some(binary);
    }
    if brisk_testkit::skip_services() {
        brisk_testkit::skip("needs Chromium (Debian package `chromium`), which is not installed");
        return None;
    }
    panic!(
        "the dashboard's browser test needs Chromium: install Debian's package \
         (apt-get install -y --no-install-recommends chromium; scripts/test does it as root), \
         or set BRISK_CHROMIUM to a Chromium binary, or set BRISK_SKIP_SERVICES=1 to skip"
    );
}

/// A chart's state: how many points it holds (`data-points`, set by the
/// page's `chart()`), how many pixels are painted, and a checksum of them.
async fn chart(page: &Page, id: &str) -> (u64, u64, u64) {
    let v = page
        .eval(&format!(
            r##"(() => {{
                const c = document.getElementById("{id}");
                const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                let painted = 0, sum = 0;
                for (let i = 0; i < d.length; i += 4) {{
                    if (d[i + 3] > 0) painted++;
                    sum = (sum * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2] + d[i + 3]) % 1000000007;
                }}
                return {{points: Number(c.dataset.points || 0), painted, sum}};
            }})()"##
        ))
        .await
        .unwrap_or_else(|e| panic!("reading chart {id}: {e}"));
    (
        v["points"].as_u64().unwrap(),
        v["painted"].as_u64().unwrap(),
        v["sum"].as_u64().unwrap(),
    )
}

/// The number shown in the element `id` (`–` before any data).
fn shown_number(v: &Value) -> Option<f64> {
    v.as_str()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_goes_live_in_chromium_and_generates_posts() {
    let Some(binary) = chromium_or_skip() else { return };
    let mut settings = crate::settings();
    // The demo corpus trains the local generator the form uses.
    settings.seed_demo = true;
    let server = TestServer::start(settings).await;

    let browser = Chromium::launch(&binary)
        .await
        .unwrap_or_else(|e| panic!("launching {}: {e}", binary.display()));
    let page = browser.new_page(1280, 900).await.unwrap_or_else(|e| {
        panic!(
            "opening a tab: {e}; Chromium's stderr:\n{}",
            browser.stderr_tail()
        )
    });

    // The page loads, from the server alone.
    page.navigate(&server.url("/")).await.unwrap();
    page.wait_for("the page to load", WAIT, "document.readyState", |v| {
        v == "complete"
    })
    .await;
    let title = page.eval("document.title").await.unwrap();
    assert!(title.as_str().unwrap().starts_with("brisk"), "{title}");

    // The WebSocket opens and subscribes.
    page.wait_for(
        "the WebSocket to connect (#conn says `live`)",
        WAIT,
        r##"document.getElementById("conn").textContent"##,
        |v| v == "live",
    )
    .await;

    // Charts grow by one point per `metrics` snapshot: after the one drawn
    // from the HTTP summary at load, only the WebSocket adds points.
    page.wait_for(
        "a first chart point",
        WAIT,
        r##"Number(document.getElementById("chart-rate").dataset.points || 0)"##,
        |v| v.as_u64().is_some_and(|n| n >= 1),
    )
    .await;
    let (points0, _, sum0) = chart(&page, "chart-rate").await;
    // Traffic for the request counters to show.
    for i in 0..20 {
        let r = server
            .post_json("/api/analyze", &json!({"text": format!("$ACME note {i}")}))
            .await;
        assert_eq!(r.status(), 200);
    }
    page.wait_for(
        "two more chart points from metrics snapshots over the WebSocket",
        WAIT,
        r##"Number(document.getElementById("chart-rate").dataset.points || 0)"##,
        |v| v.as_u64().is_some_and(|n| n >= points0 + 2),
    )
    .await;
    let (points1, painted1, sum1) = chart(&page, "chart-rate").await;
    assert!(points1 >= points0 + 2, "{points0} -> {points1}");
    assert!(
        painted1 > 1000,
        "the rate chart is drawn: {painted1} pixels painted"
    );
    assert_ne!(sum0, sum1, "the rate chart was redrawn with the new points");
    for id in ["chart-latency", "chart-sys"] {
        let (points, painted, _) = chart(&page, id).await;
        assert!(
            points >= points1,
            "{id} has {points} points, the rate chart {points1}"
        );
        assert!(painted > 1000, "{id} is drawn: {painted} pixels painted");
    }
    // The counters follow the server: at least the 20 requests above.
    let total = page
        .wait_for(
            "the request total to count the test's requests",
            WAIT,
            r##"document.getElementById("reqtotal").textContent"##,
            |v| shown_number(v).is_some_and(|n| n >= 20.0),
        )
        .await;
    let connections = page
        .eval(r##"[...document.querySelectorAll("#ws dd")].map((d) => d.textContent)[0]"##)
        .await
        .unwrap();
    assert!(
        shown_number(&connections).is_some_and(|n| n >= 1.0),
        "the page's own socket is counted: {connections}; total {total}"
    );

    // Live streams: an alert and ingested posts, markup shown as text.
    let markup = r##"<img src=x onerror="document.title='pwned'"><b>bold</b>"##;
    let r = server
        .post_json(
            "/api/posts",
            &json!([
                {"id": "browser-hit", "text": "$ACME earnings beat, analysts cheer", "author": "@desk"},
                {"id": "browser-markup", "text": markup, "author": "@markup"}
            ]),
        )
        .await;
    assert_eq!(r.status(), 201);
    page.wait_for(
        "the alert for post browser-hit in #alerts",
        WAIT,
        r##"[...document.querySelectorAll("#alerts li")].some((li) => li.textContent.includes("post browser-hit"))"##,
        |v| v == true,
    )
    .await;
    page.wait_for(
        "the markup post in #posts, as text",
        WAIT,
        r##"[...document.querySelectorAll("#posts li div:first-child")].map((d) => d.textContent)"##,
        |v| v.as_array().is_some_and(|a| a.iter().any(|t| t == markup)),
    )
    .await;
    let injected = page
        .eval(r##"document.querySelectorAll("#posts img, #posts b").length + (document.title === "pwned" ? 100 : 0)"##)
        .await
        .unwrap();
    assert_eq!(injected, 0, "a post's markup must never become elements");

    // The generate form: type a topic, ask for 3, submit.
    let before = page
        .eval(r##"document.querySelectorAll("#generated li").length"##)
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    page.eval(
        r##"(() => {
            const f = document.getElementById("generate");
            f.topic.value = "Acme";
            f.n.value = "3";
            f.querySelector("button[type=submit]").click();
            return true;
        })()"##,
    )
    .await
    .unwrap();
    let status = page
        .wait_for(
            "the generate form to report an outcome",
            WAIT,
            r##"document.getElementById("genstatus").textContent"##,
            |v| v.as_str().is_some_and(|s| !s.is_empty() && s != "generating…"),
        )
        .await;
    assert_eq!(status, "done (local)", "the form's status line");
    let generated = page
        .wait_for(
            "three generated posts in #generated",
            WAIT,
            r##"[...document.querySelectorAll("#generated li")].map((li) => [li.children[0].textContent, li.children[1].textContent])"##,
            |v| v.as_array().is_some_and(|a| a.len() as u64 >= before + 3),
        )
        .await;
    for post in generated.as_array().unwrap().iter().take(3) {
        let text = post[0].as_str().unwrap();
        let meta = post[1].as_str().unwrap();
        assert!(
            text.to_lowercase().contains("acme"),
            "a post on the topic: {text:?}"
        );
        assert!(
            meta.starts_with("local · confidence "),
            "backend and confidence: {meta:?}"
        );
    }

    // The screenshot, a test artifact under the target directory.
    let png = page.screenshot_png().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        png.len() > 20_000,
        "a page's worth of pixels: {} bytes",
        png.len()
    );
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("brisk-dashboard.png");
    std::fs::write(&shot, &png).unwrap_or_else(|e| panic!("writing {}: {e}", shot.display()));
    eprintln!("dashboard screenshot: {}", shot.display());

    // No uncaught exception, console error or failed load, from start to end.
    let errors = page.errors();
    assert!(errors.is_empty(), "the page reported errors: {errors:#?}");
    browser.close().await;
}
