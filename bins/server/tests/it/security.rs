//! Admin auth, limits, injection-shaped input, headers.

use brisk_server::Secret;
use serde_json::{Value, json};

use crate::{TestServer, error_body, settings};

const TOKEN: &str = "test-admin-token-0123456789";

#[tokio::test]
async fn admin_endpoints_are_forbidden_without_a_configured_token() {
    let s = TestServer::default().await;
    let r = s
        .client
        .put(s.url("/api/dictionary"))
        .bearer_auth("anything-at-all-really")
        .body("[[entities]]\nid = \"x\"\naliases = [\"X\"]\n")
        .send()
        .await
        .unwrap();
    let body = error_body(r, 403).await;
    assert_eq!(body["error"], "admin_disabled");
    let r = s
        .post_json("/api/cache/invalidate", &json!({"namespace": "analysis"}))
        .await;
    error_body(r, 403).await;
}

#[tokio::test]
async fn admin_needs_the_right_bearer_token_and_reloads_the_dictionary() {
    let mut settings = settings();
    settings.admin_token = Some(Secret::from(TOKEN));
    let s = TestServer::start(settings).await;
    let new_dict = "[[entities]]\nid = \"zorg\"\naliases = [\"Zorg Industries\", \"$ZORG\"]\n\n[[keywords]]\nterm = \"explodes\"\nweight = 40\n";

    let r = s
        .client
        .put(s.url("/api/dictionary"))
        .body(new_dict)
        .send()
        .await
        .unwrap();
    let body = error_body(r, 401).await;
    assert_eq!(body["error"], "unauthorized");
    let r = s
        .client
        .put(s.url("/api/dictionary"))
        .bearer_auth("test-admin-token-WRONG-56789")
        .body(new_dict)
        .send()
        .await
        .unwrap();
    error_body(r, 401).await;

    // Before: $ZORG is nobody; analysed once so the old result is cached.
    let before: Value = s
        .post_json("/api/analyze", &json!({"text": "$ZORG explodes"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["relevant"], false);

    // An invalid dictionary is refused and the old one stays.
    let r = s
        .client
        .put(s.url("/api/dictionary"))
        .bearer_auth(TOKEN)
        .body("[[entities]]\nid = \"\"\n")
        .send()
        .await
        .unwrap();
    let body = error_body(r, 422).await;
    assert_eq!(body["error"], "invalid_dictionary");

    let r = s
        .client
        .put(s.url("/api/dictionary"))
        .bearer_auth(TOKEN)
        .body(new_dict)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"], 2);

    let after: Value = s
        .post_json("/api/analyze", &json!({"text": "$ZORG explodes"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        after["cached"], false,
        "the old dictionary's analysis is not served"
    );
    assert_eq!(after["relevant"], true);
    let dict: Value = s.get("/api/dictionary").await.json().await.unwrap();
    assert_eq!(dict["version"], 2);
    assert_eq!(dict["source"], new_dict);
    assert_eq!(
        std::fs::read_to_string(s.dir.join("dictionary.toml")).unwrap(),
        new_dict,
        "saved"
    );

    let r = s
        .client
        .post(s.url("/api/cache/invalidate"))
        .bearer_auth(TOKEN)
        .json(&json!({"namespace": "analysis", "key": "$ZORG explodes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["invalidated"], 1);
    let r = s
        .client
        .post(s.url("/api/cache/invalidate"))
        .bearer_auth(TOKEN)
        .json(&json!({"namespace": "nope"}))
        .send()
        .await
        .unwrap();
    error_body(r, 422).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let mut settings = settings();
    settings.max_body_bytes = 4096;
    let s = TestServer::start(settings).await;
    let big = json!({"text": "y".repeat(5000)});
    let r = s.post_json("/api/posts", &big).await;
    let body = error_body(r, 413).await;
    assert_eq!(body["error"], "payload_too_large");
    let r = s.post_json("/api/analyze", &big).await;
    error_body(r, 413).await;
    // Under the limit is fine.
    let r = s.post_json("/api/posts", &json!({"text": "small"})).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn clients_are_limited_per_class_with_429() {
    let mut settings = settings();
    settings.client_rate_limit_per_minute = 3;
    let s = TestServer::start(settings).await;
    for _ in 0..3 {
        let r = s.post_json("/api/analyze", &json!({"text": "hello"})).await;
        assert_eq!(r.status(), 200);
    }
    let r = s.post_json("/api/analyze", &json!({"text": "hello"})).await;
    assert!(r.headers().contains_key("retry-after"));
    assert!(r.headers().contains_key("ratelimit-policy"));
    let body = error_body(r, 429).await;
    assert_eq!(body["error"], "rate_limited");
    // Another class still has room, and so does another client (API key).
    assert_eq!(s.get("/api/posts?limit=1").await.status(), 200);
    let r = s
        .client
        .post(s.url("/api/analyze"))
        .header("x-api-key", "another-client")
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Operations endpoints are not limited.
    for _ in 0..5 {
        assert_eq!(s.get("/health").await.status(), 200);
    }
}

#[tokio::test]
async fn injection_shaped_texts_come_back_byte_for_byte() {
    let s = TestServer::default().await;
    let texts = [
        "'); DROP TABLE posts; --",
        "\" OR 1=1 --",
        "Robert'); DELETE FROM alerts WHERE ('1'='1",
        "<script>alert('x')</script>",
        "<img src=x onerror=alert(1)>&amp;&lt;",
        "{{7*7}} ${7*7} %s %n \\x00\\u0000",
        "emoji 👩‍👩‍👧 and RTL \u{202e}txet and zero\u{200b}width",
        "line\nbreaks\r\nand\ttabs",
    ];
    let posts: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("inj-{i}"), "text": t, "author": "' OR '1'='1", "created_at": 1_800_000_000_000_i64 + i as i64}))
        .collect();
    let r = s.post_json("/api/posts", &Value::Array(posts)).await;
    assert_eq!(r.status(), 201);

    let page: Value = s
        .get("/api/posts?author=%27%20OR%20%271%27%3D%271&limit=100")
        .await
        .json()
        .await
        .unwrap();
    let got = page["posts"].as_array().unwrap();
    assert_eq!(
        got.len(),
        texts.len(),
        "only this author's posts, and all of them"
    );
    for p in got {
        let i: usize = p["id"].as_str().unwrap()["inj-".len()..].parse().unwrap();
        assert_eq!(p["text"].as_str().unwrap(), texts[i]);
        assert_eq!(p["author"], "' OR '1'='1");
    }
    // The tables are still there.
    let r = s.post_json("/api/posts", &json!({"text": "still works"})).await;
    assert_eq!(r.status(), 201);
    let all: Value = s.get("/api/posts?limit=1000").await.json().await.unwrap();
    assert_eq!(all["posts"].as_array().unwrap().len(), texts.len() + 1);

    // A text with a NUL byte is refused, naming the field.
    let r = s.post_json("/api/posts", &json!({"text": "nul\u{0}byte"})).await;
    let body = error_body(r, 422).await;
    assert!(
        body["message"].as_str().unwrap().starts_with("post.text"),
        "{body}"
    );
}

#[tokio::test]
async fn headers_request_ids_and_cors_off_by_default() {
    let s = TestServer::default().await;
    let r = s
        .client
        .get(s.url("/health"))
        .header("origin", "https://evil.example")
        .header("x-request-id", "client-chosen-id-1")
        .send()
        .await
        .unwrap();
    let h = r.headers();
    assert_eq!(h["x-request-id"], "client-chosen-id-1");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert!(
        !h.contains_key("access-control-allow-origin"),
        "CORS is off by default"
    );

    // A request id with odd characters is replaced by our own.
    let r = s
        .client
        .get(s.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");

    let mut with_cors = settings();
    with_cors.cors_origins = vec!["https://app.example".into()];
    let c = TestServer::start(with_cors).await;
    let r = c
        .client
        .get(c.url("/health"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example");
}
