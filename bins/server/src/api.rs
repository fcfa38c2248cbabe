//! The HTTP API's handlers.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use brisk_core::{Engagement, Post, Timestamp};
use brisk_monitor::{HealthStatus, SlaObjectives, SummaryOptions};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::app::{ANALYSIS_NS, AppState, Hit, NAMESPACES, dictionary_format, parse_dictionary};
use crate::db::{self, AlertQuery, AlertRow, PostQuery, PostRow};
use crate::error::ApiError;
use crate::http::{Admin, RawBody, raw_json};
use crate::snapshot;

/// Most posts in one `POST /api/posts`, texts in one `POST /api/analyze`.
pub(crate) const MAX_BATCH: usize = 1_000;
/// Most rows in one page.
const MAX_PAGE: usize = 1_000;
/// How long an ingest waits for room in a full write queue before 503.
const QUEUE_WAIT: Duration = Duration::from_secs(5);

fn now() -> Timestamp {
    Timestamp::from_system_time(SystemTime::now())
}

// ---------------------------------------------------------------- posts

/// What an ingest did.
#[derive(Debug, Serialize)]
pub(crate) struct Ingested {
    accepted: usize,
    alerts: usize,
    batch: u64,
}

/// `POST /api/posts`: one post (an object) or a batch (an array of up to
/// 1,000); 201 after the batch commits.
pub(crate) async fn post_posts(State(app): State<AppState>, body: RawBody) -> Result<Response, ApiError> {
    let posts = parse_posts(&app, &body.json()?)?;
    let outcome = ingest(&app, posts, true).await?;
    Ok((StatusCode::CREATED, Json(outcome)).into_response())
}

fn parse_posts(app: &AppState, body: &Value) -> Result<Vec<Post>, ApiError> {
    let stamp = now();
    match body {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ApiError::invalid("posts", "the batch is empty"));
            }
            if items.len() > MAX_BATCH {
                return Err(ApiError::invalid(
                    "posts",
                    format!("{} posts, over the batch maximum of {MAX_BATCH}", items.len()),
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, v)| parse_post(app, v, &format!("posts[{i}]"), stamp))
                .collect()
        }
        Value::Object(_) => Ok(vec![parse_post(app, body, "post", stamp)?]),
        _ => Err(ApiError::invalid(
            "body",
            "must be a post object or an array of posts",
        )),
    }
}

fn string_field(obj: &Map<String, Value>, at: &str, name: &str) -> Result<Option<String>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(&format!("{at}.{name}"), "must be a string")),
    }
}

/// A time: RFC 3339 text or Unix milliseconds.
fn parse_time(v: &Value, field: &str) -> Result<Timestamp, ApiError> {
    let bad = || {
        ApiError::invalid(
            field,
            "must be an RFC 3339 time (2026-01-31T12:00:00Z) or Unix milliseconds",
        )
    };
    match v {
        Value::String(s) => s
            .parse::<Timestamp>()
            .or_else(|_| s.parse::<i64>().map(Timestamp::from_unix_millis))
            .map_err(|_| bad()),
        Value::Number(n) => n.as_i64().map(Timestamp::from_unix_millis).ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn parse_post(app: &AppState, v: &Value, at: &str, stamp: Timestamp) -> Result<Post, ApiError> {
    const FIELDS: &[&str] = &[
        "id",
        "text",
        "author",
        "source",
        "created_at",
        "language",
        "engagement",
    ];
    let Value::Object(obj) = v else {
        return Err(ApiError::invalid(at, "must be an object with at least `text`"));
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            &format!("{at}.{unknown}"),
            format!("is not a post field (expected one of {})", FIELDS.join(", ")),
        ));
    }
    let Some(text) = string_field(obj, at, "text")? else {
        return Err(ApiError::invalid(&format!("{at}.text"), "is required"));
    };
    let id = string_field(obj, at, "id")?
        .unwrap_or_else(|| format!("p-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)));
    let created_at = match obj.get("created_at") {
        None | Some(Value::Null) => stamp,
        Some(t) => parse_time(t, &format!("{at}.created_at"))?,
    };
    let mut post = Post::new(id, text, created_at);
    if let Some(author) = string_field(obj, at, "author")? {
        post = post.with_author(author);
    }
    if let Some(source) = string_field(obj, at, "source")? {
        post = post.with_source(source);
    }
    if let Some(language) = string_field(obj, at, "language")? {
        post = post.with_language(language);
    }
    match obj.get("engagement") {
        None | Some(Value::Null) => {}
        Some(Value::Object(e)) => {
            let mut n = [0u64; 4];
            for (i, name) in ["likes", "reposts", "replies", "views"].into_iter().enumerate() {
                match e.get(name) {
                    None | Some(Value::Null) => {}
                    Some(v) => {
                        n[i] = v.as_u64().ok_or_else(|| {
                            ApiError::invalid(
                                &format!("{at}.engagement.{name}"),
                                "must be a whole number ≥ 0",
                            )
                        })?;
                    }
                }
            }
            if let Some(unknown) = e
                .keys()
                .find(|k| !["likes", "reposts", "replies", "views"].contains(&k.as_str()))
            {
                return Err(ApiError::invalid(
                    &format!("{at}.engagement.{unknown}"),
                    "is not an engagement field (likes, reposts, replies, views)",
                ));
            }
            post = post.with_engagement(Engagement::new(n[0], n[1], n[2], n[3]));
        }
        Some(_) => {
            return Err(ApiError::invalid(
                &format!("{at}.engagement"),
                "must be an object",
            ));
        }
    }
    post.validate(&app.post_limits)
        .map_err(|e| ApiError::invalid(&format!("{at}.{}", e.field()), e))?;
    Ok(post)
}

/// Writes posts through the batch writer and an alert row for each
/// relevant post and entity through the other, both at once, waits for
/// both commits, then publishes both on the hub when `publish`. If either
/// write fails the caller gets the error although the other may be stored:
/// posts and alerts are keyed, so sending the same batch again stores
/// nothing twice.
pub(crate) async fn ingest(app: &AppState, posts: Vec<Post>, publish: bool) -> Result<Ingested, ApiError> {
    let stamp = now().as_unix_millis();
    let analyses: Vec<_> = posts.iter().map(|p| app.relevance(&p.text)).collect();
    let rows: Vec<PostRow> = posts
        .iter()
        .map(|p| PostRow {
            post: p.clone(),
            ingested_at: stamp,
        })
        .collect();
    let receipt = match tokio::time::timeout(QUEUE_WAIT, app.posts.write(rows)).await {
        Ok(Ok(receipt)) => receipt,
        Ok(Err(brisk_db_pool::Error::BatchTooLarge { .. })) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the batch is larger than the write queue",
            ));
        }
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Err(ApiError::unavailable("the write queue is full; retry shortly", 2)),
    };
    let raised = now();
    let mut alerts = Vec::new();
    for (post, a) in posts.iter().zip(&analyses) {
        if !a.relevant {
            continue;
        }
        for entity in &a.entities {
            let signals = serde_json::value::RawValue::from_string(a.signals.to_string())
                .map_err(|e| ApiError::internal("encoding signals", &e))?;
            alerts.push(AlertRow {
                id: None,
                post_id: post.id.clone(),
                entity: entity.to_string(),
                confidence: (a.score / 100.0).clamp(0.0, 1.0),
                score: a.score,
                created_at: post.created_at,
                raised_at: raised,
                text: post.text.clone(),
                signals,
            });
        }
    }
    let n_alerts = alerts.len();
    // The alerts go to their writer while the posts' batch commits (no
    // foreign key ties them): the answer waits for both commits, not for
    // one after the other.
    let events = if publish { alerts.clone() } else { Vec::new() };
    let alert_receipt = if alerts.is_empty() {
        None
    } else {
        match tokio::time::timeout(QUEUE_WAIT, app.alerts.write(alerts)).await {
            Ok(Ok(receipt)) => Some(receipt),
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(ApiError::unavailable("the write queue is full; retry shortly", 2)),
        }
    };
    let (ack, alert_ack) = tokio::join!(receipt, async {
        match alert_receipt {
            Some(r) => r.await.map(Some),
            None => Ok(None),
        }
    });
    let ack = ack?;
    app.posts_ingested
        .fetch_add(posts.len() as u64, Ordering::Relaxed);
    if alert_ack?.is_some() {
        app.alerts_raised.fetch_add(n_alerts as u64, Ordering::Relaxed);
        for alert in &events {
            app.publish("alerts", alert).await;
        }
    }
    let accepted = posts.len();
    if publish {
        let sample: Vec<_> = posts
            .iter()
            .take(20)
            .map(|p| json!({"id": p.id, "author": p.author, "text": p.text, "created_at": p.created_at}))
            .collect();
        app.publish("posts", &json!({"count": accepted, "posts": sample}))
            .await;
        app.trainer.submit(posts);
    }
    Ok(Ingested {
        accepted,
        alerts: n_alerts,
        batch: ack.batch,
    })
}

fn param_limit(params: &HashMap<String, String>, default: usize) -> Result<usize, ApiError> {
    match params.get("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "limit",
                format!("must be a whole number from 1 to {MAX_PAGE}"),
            )),
        },
    }
}

fn param_time(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|v| parse_time(&Value::String(v.clone()), name).map(Timestamp::as_unix_millis))
        .transpose()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn bad_cursor() -> ApiError {
    ApiError::invalid("cursor", "is not a cursor this server returned")
}

/// `GET /api/posts?since&until&author&limit&cursor`: newest first, keyset
/// pagination on (`created_at`, `id`).
pub(crate) async fn get_posts(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = param_limit(&params, 50)?;
    let after = match params.get("cursor") {
        None => None,
        Some(c) => {
            let (at, id) = c.split_once('.').ok_or_else(bad_cursor)?;
            let at = at.parse::<i64>().map_err(|_| bad_cursor())?;
            let id = String::from_utf8(unhex(id).ok_or_else(bad_cursor)?).map_err(|_| bad_cursor())?;
            Some((at, id))
        }
    };
    let author = params.get("author").cloned();
    if author.as_ref().is_some_and(|a| a.chars().count() > 256) {
        return Err(ApiError::invalid("author", "is over 256 characters"));
    }
    let q = PostQuery {
        since: param_time(&params, "since")?,
        until: param_time(&params, "until")?,
        author,
        limit,
        after,
    };
    let mut posts = app
        .timed_read("db list_posts", db::list_posts(&app.store, q))
        .await?;
    let next = if posts.len() > limit {
        posts.truncate(limit);
        posts
            .last()
            .map(|p| format!("{}.{}", p.created_at.as_unix_millis(), hex(p.id.as_bytes())))
    } else {
        None
    };
    Ok(Json(json!({"posts": posts, "next_cursor": next})).into_response())
}

// ---------------------------------------------------------------- analyze

/// `POST /api/analyze`: `{"text": ...}` or `{"texts": [...]}` (up to 1,000):
/// matches, score, relevance, signals and structure, cached by content hash.
pub(crate) async fn post_analyze(State(app): State<AppState>, body: RawBody) -> Result<Response, ApiError> {
    let Value::Object(obj) = body.json()? else {
        return Err(ApiError::invalid(
            "body",
            "must be an object with `text` or `texts`",
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| *k != "text" && *k != "texts") {
        return Err(ApiError::invalid(
            unknown,
            "is not a field of an analyze request (text, texts)",
        ));
    }
    let limit = app.settings.max_text_chars;
    let check = |field: &str, t: &str| -> Result<(), ApiError> {
        if t.trim().is_empty() {
            return Err(ApiError::invalid(field, "is empty"));
        }
        if t.len() > limit && t.chars().count() > limit {
            return Err(ApiError::invalid(
                field,
                format!("is over the maximum of {limit} characters"),
            ));
        }
        Ok(())
    };
    match (obj.get("text"), obj.get("texts")) {
        (Some(Value::String(t)), None) => {
            check("text", t)?;
            let (a, hit) = app
                .analyze_many(&[t.as_str()])
                .await
                .pop()
                .ok_or_else(|| ApiError::internal("analysis", &"no result"))?;
            Ok(raw_json(StatusCode::OK, with_hit(&a.json, hit)))
        }
        (None, Some(Value::Array(items))) => {
            if items.is_empty() || items.len() > MAX_BATCH {
                return Err(ApiError::invalid(
                    "texts",
                    format!("must hold 1 to {MAX_BATCH} texts"),
                ));
            }
            let mut texts = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let field = format!("texts[{i}]");
                let Value::String(t) = item else {
                    return Err(ApiError::invalid(&field, "must be a string"));
                };
                check(&field, t)?;
                texts.push(t.as_str());
            }
            let mut out = String::from("{\"results\":[");
            for (i, (a, hit)) in app.analyze_many(&texts).await.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&with_hit(&a.json, hit));
            }
            out.push_str("]}");
            Ok(raw_json(StatusCode::OK, out))
        }
        (Some(_), None) => Err(ApiError::invalid("text", "must be a string")),
        (None, Some(_)) => Err(ApiError::invalid("texts", "must be an array of strings")),
        (Some(_), Some(_)) => Err(ApiError::invalid("body", "give `text` or `texts`, not both")),
        (None, None) => Err(ApiError::invalid("text", "is required (or `texts` for a batch)")),
    }
}

/// The cached JSON object with `"cached": …` (and, for a hit,
/// `"cache_tier": "l1"` or `"l2"`) as its first members.
fn with_hit(json: &str, hit: Hit) -> String {
    let members = hit.members();
    let mut s = String::with_capacity(json.len() + members.len() + 1);
    s.push('{');
    s.push_str(members);
    s.push_str(&json[1..]);
    s
}

// ---------------------------------------------------------------- alerts

/// `GET /api/alerts?entity&min_confidence&since&limit&cursor`.
pub(crate) async fn get_alerts(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = param_limit(&params, 50)?;
    let min_confidence = match params.get("min_confidence") {
        None => None,
        Some(v) => match v.parse::<f64>() {
            Ok(c) if (0.0..=1.0).contains(&c) => Some(c),
            _ => {
                return Err(ApiError::invalid(
                    "min_confidence",
                    "must be a number from 0 to 1",
                ));
            }
        },
    };
    let after = match params.get("cursor") {
        None => None,
        Some(c) => {
            let (at, id) = c.split_once('.').ok_or_else(bad_cursor)?;
            Some((
                at.parse().map_err(|_| bad_cursor())?,
                id.parse().map_err(|_| bad_cursor())?,
            ))
        }
    };
    let q = AlertQuery {
        entity: params.get("entity").cloned(),
        min_confidence,
        since: param_time(&params, "since")?,
        limit,
        after,
    };
    let mut alerts = app
        .timed_read("db list_alerts", db::list_alerts(&app.store, q))
        .await?;
    let next = if alerts.len() > limit {
        alerts.truncate(limit);
        alerts
            .last()
            .map(|a| format!("{}.{}", a.created_at.as_unix_millis(), a.id.unwrap_or_default()))
    } else {
        None
    };
    Ok(Json(json!({"alerts": alerts, "next_cursor": next})).into_response())
}

// ---------------------------------------------------------------- dictionary

/// `GET /api/dictionary`: the dictionary's text, format, version and size.
pub(crate) async fn get_dictionary(State(app): State<AppState>) -> Response {
    let d = app
        .dictionary
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let stats = app.matcher.stats();
    Json(json!({
        "version": d.version,
        "format": d.format,
        "loaded_at": d.loaded_at,
        "patterns": stats.patterns,
        "source": d.source,
    }))
    .into_response()
}

/// `PUT /api/dictionary` (admin): validates the new dictionary (in the
/// dictionary file's format), compiles and swaps it in, saves the file.
pub(crate) async fn put_dictionary(
    State(app): State<AppState>,
    _admin: Admin,
    body: RawBody,
) -> Result<Response, ApiError> {
    let text = std::str::from_utf8(&body.0)
        .map_err(|_| ApiError::invalid("body", "is not UTF-8 text"))?
        .to_owned();
    let path = app.settings.dictionary.clone();
    let format = dictionary_format(&path);
    let dict = parse_dictionary(format, &text).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_dictionary",
            format!("the {format} dictionary is invalid: {e}"),
        )
    })?;
    let _one_at_a_time = app.dictionary_update.lock().await;
    let tmp = path.with_extension(format!("{format}.tmp"));
    tokio::fs::write(&tmp, &text)
        .await
        .map_err(|e| ApiError::internal("saving the dictionary", &e))?;
    let version = match app.install_dictionary(&dict, text) {
        Ok(v) => v,
        Err(reason) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_dictionary",
                reason,
            ));
        }
    };
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(|e| ApiError::internal("saving the dictionary", &e))?;
    tracing::info!(version, "dictionary reloaded");
    Ok(Json(json!({"version": version, "patterns": app.matcher.stats().patterns})).into_response())
}

// ---------------------------------------------------------------- performance

/// `GET /api/performance/summary?window_secs=300`: operations with rate and
/// p50/p95/p99, cache hit ratios, slowest operations, and every component.
pub(crate) async fn performance_summary(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let window = match params.get("window_secs") {
        None => 300,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=3600).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "window_secs",
                    "must be a whole number from 1 to 3600",
                ));
            }
        },
    };
    let summary = app
        .monitor
        .summary(&SummaryOptions::default().window(Duration::from_secs(window)));
    let components = snapshot::components(&app).await;
    Ok(Json(json!({"summary": summary, "components": components})).into_response())
}

/// `GET /api/performance/slow-queries`: the store's slow-query log and its
/// statements by p95.
pub(crate) async fn slow_queries(State(app): State<AppState>) -> Response {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (slow, mut stats, threshold) = db::query_log(&app.store);
    let slow: Vec<Value> = slow
        .into_iter()
        .rev()
        .map(|q| {
            json!({
                "statement": q.statement,
                "ms": ms(q.elapsed),
                "at": Timestamp::from_system_time(q.at),
            })
        })
        .collect();
    stats.sort_by_key(|s| std::cmp::Reverse(s.latency.p95));
    let statements: Vec<Value> = stats
        .into_iter()
        .take(20)
        .map(|s| {
            json!({
                "statement": s.statement,
                "count": s.latency.count,
                "errors": s.errors,
                "p50_ms": ms(s.latency.p50),
                "p95_ms": ms(s.latency.p95),
                "p99_ms": ms(s.latency.p99),
                "max_ms": ms(s.latency.max),
            })
        })
        .collect();
    let reads: Vec<Value> = app
        .monitor
        .operations()
        .into_iter()
        .filter(|op| op.name().starts_with("db "))
        .map(|op| {
            let s = op.stats(None);
            let q = |p: f64| s.durations.quantile(p).map(|v| v * 1e3);
            json!({"query": op.name(), "count": s.calls, "p50_ms": q(0.5), "p95_ms": q(0.95), "p99_ms": q(0.99)})
        })
        .collect();
    Json(json!({
        "threshold_ms": ms(threshold),
        "slow_queries": slow,
        "statements": statements,
        "reads": reads,
    }))
    .into_response()
}

/// `GET /api/performance/report?hours=24`: the SLA report over the minutes
/// the history has closed (it rolls every minute).
pub(crate) async fn performance_report(
    State(app): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let hours = match params.get("hours") {
        None => 24,
        Some(v) => match v.parse::<u64>() {
            Ok(h) if (1..=24).contains(&h) => h,
            _ => return Err(ApiError::invalid("hours", "must be a whole number from 1 to 24")),
        },
    };
    let report = app
        .history
        .report(Duration::from_secs(hours * 3600), &SlaObjectives::default());
    Ok(Json(report).into_response())
}

// ---------------------------------------------------------------- cache

/// `GET /api/cache/stats`: per namespace hits, misses, hit ratio, cost
/// saved (microseconds of analysis), entries and evictions.
pub(crate) async fn cache_stats(State(app): State<AppState>) -> Response {
    Json(snapshot::cache(&app)).into_response()
}

/// `POST /api/cache/invalidate` (admin): `{"namespace": "analysis"}` drops
/// the namespace; with `"key": "<text>"` only that text's entry.
pub(crate) async fn cache_invalidate(
    State(app): State<AppState>,
    _admin: Admin,
    body: RawBody,
) -> Result<Response, ApiError> {
    let Value::Object(obj) = body.json()? else {
        return Err(ApiError::invalid("body", "must be an object with `namespace`"));
    };
    if let Some(unknown) = obj.keys().find(|k| *k != "namespace" && *k != "key") {
        return Err(ApiError::invalid(unknown, "is not a field (namespace, key)"));
    }
    let Some(Value::String(ns)) = obj.get("namespace") else {
        return Err(ApiError::invalid(
            "namespace",
            format!("is required: one of {}", NAMESPACES.join(", ")),
        ));
    };
    let cache = app.cache.namespace(ns).map_err(|_| {
        ApiError::invalid(
            "namespace",
            format!("{ns:?} is not a namespace ({})", NAMESPACES.join(", ")),
        )
    })?;
    let tiered = app.tiered.as_ref().map(|t| {
        if ns == ANALYSIS_NS {
            &t.analysis
        } else {
            &t.generation
        }
    });
    match obj.get("key") {
        None | Some(Value::Null) => {
            cache.invalidate_all();
            // With Redis: every process's L1 and the Redis entries too.
            let everywhere = match tiered {
                Some(t) => match t.invalidate_namespace().await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "namespace invalidated in this process only");
                        false
                    }
                },
                None => false,
            };
            Ok(
                Json(json!({"namespace": ns, "invalidated": "all", "all_processes": everywhere}))
                    .into_response(),
            )
        }
        Some(Value::String(text)) => {
            if ns != ANALYSIS_NS {
                return Err(ApiError::invalid(
                    "key",
                    format!("keys are texts of the {ANALYSIS_NS:?} namespace only"),
                ));
            }
            let key = app.analysis_key(text);
            let removed = cache.remove(&key).is_some();
            if let Some(t) = tiered
                && let Err(e) = t.remove(&key).await
            {
                tracing::warn!(error = %e, "key removed in this process only");
            }
            Ok(Json(json!({"namespace": ns, "invalidated": if removed { 1 } else { 0 }})).into_response())
        }
        Some(_) => Err(ApiError::invalid("key", "must be a string (the analysed text)")),
    }
}

// ---------------------------------------------------------------- operations

/// `GET /health`: the process is up.
pub(crate) async fn health(State(app): State<AppState>) -> Response {
    Json(json!({"status": "ok", "uptime_secs": app.started.elapsed().as_secs()})).into_response()
}

/// `GET /ready`: the database, Redis and the LLM, with degraded states; 503
/// when a critical component is down.
pub(crate) async fn ready(State(app): State<AppState>) -> Response {
    let report = app.health.run().await;
    let status = if report.status == HealthStatus::Unhealthy || app.hub.is_shutting_down() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    // A 503 keeps the report; the error middleware adds error, message and request_id.
    (status, Json(&report)).into_response()
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    let body = app.monitor.render_prometheus();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(brisk_monitor::PROMETHEUS_CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------- generation

/// `POST /api/generate`: `{topic?, n?, hook?, seed?, max_chars?}`. With
/// `LLM_BASE_URL`, the API is asked first (through its client's pipeline,
/// limiter and cache) and the local model answers when it cannot;
/// otherwise the local model, through the pipeline at High priority. The
/// answer's `backend` says which (`"llm"` or `"local"`); the posts are also
/// published on `generated`. A local request with a seed is deterministic
/// for a model, so its answer is cached (namespace `generation`) under the
/// request and the model's fingerprint.
pub(crate) async fn post_generate(State(app): State<AppState>, body: RawBody) -> Result<Response, ApiError> {
    let request = crate::generate::parse_request(&body.json()?)?;
    let topic = request.topic.clone();
    let version = app.model.version();
    let mut llm_error = None;
    if let Some(llm) = &app.llm {
        match llm.generate(&request, &app.model).await {
            Ok(posts) => {
                let json = json!({
                    "posts": posts,
                    "backend": "llm",
                    "llm_model": llm.model(),
                    "topic": topic,
                    "model_version": version,
                })
                .to_string();
                app.publish("generated", &RawJson(&json)).await;
                return Ok(raw_json(StatusCode::OK, with_hit(&json, Hit::Miss)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "the LLM gave no answer; generating locally");
                llm_error = Some(e);
            }
        }
    }
    // Not cached when an LLM is configured: its answer is wanted once it is back.
    let key = request
        .seed
        .filter(|_| app.llm.is_none())
        .map(|_| request.cache_key(app.model.fingerprint()));
    if let Some(key) = &key
        && let Some((json, hit)) = app.cached_generation(key).await
    {
        app.publish("generated", &RawJson(&json)).await;
        return Ok(raw_json(StatusCode::OK, with_hit(&json, hit)));
    }
    let start = std::time::Instant::now();
    let posts = crate::generate::run(&app.generator, request).await?;
    let mut answer = json!({
        "posts": &*posts,
        "backend": "local",
        "topic": topic,
        "model_version": version,
    });
    if let Some(e) = llm_error {
        answer["llm_error"] = json!(e);
    }
    let json = answer.to_string();
    app.publish("generated", &RawJson(&json)).await;
    if let Some(key) = key {
        let cost = u32::try_from(start.elapsed().as_micros())
            .unwrap_or(u32::MAX)
            .max(1);
        app.cache_generation(key, Arc::from(json.as_str()), cost).await;
    }
    Ok(raw_json(StatusCode::OK, with_hit(&json, Hit::Miss)))
}

/// JSON text that serializes as itself (it is ours, already valid).
struct RawJson<'a>(&'a str);

impl Serialize for RawJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::value::RawValue::from_string(self.0.to_owned()) {
            Ok(raw) => raw.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}
