//! The `OpenAPI` 3.1 document served at `/api/openapi.json`.
//
// Written by hand rather than derived (utoipa): the API is small, the
// handlers parse their bodies themselves to name bad fields, and a derive
// crate would add a proc-macro stack to every build. The integration tests
// check that every route the router serves is in this document.

use std::sync::OnceLock;

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use crate::http::raw_json;

fn error_responses(codes: &[&str]) -> Value {
    let mut map = serde_json::Map::new();
    for code in codes {
        map.insert(
            (*code).to_owned(),
            json!({"description": describe(code), "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(map)
}

fn describe(code: &str) -> &'static str {
    match code {
        "400" => "Malformed request (bad JSON)",
        "401" => "Missing or wrong admin token",
        "403" => "Admin endpoints disabled: no ADMIN_TOKEN configured",
        "413" => "Body over the body limit",
        "422" => "Validation failed; the message names the field",
        "429" => "Rate limited; see Retry-After and RateLimit headers",
        "503" => "Unavailable (write queue full, database down); see Retry-After",
        _ => "Error",
    }
}

fn op(summary: &str, ok: Value, errors: &[&str]) -> Value {
    let mut responses = error_responses(errors);
    responses
        .as_object_mut()
        .expect("an object")
        .insert("200".into(), ok);
    json!({"summary": summary, "responses": responses})
}

#[allow(clippy::needless_pass_by_value)] // called with `json!` temporaries
fn ok_json(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

#[allow(clippy::needless_pass_by_value)]
fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

#[allow(clippy::needless_pass_by_value)]
fn body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

#[allow(clippy::too_many_lines)]
fn build() -> Value {
    let admin = json!([{"bearer": []}]);
    let time = json!({"type": "string", "description": "RFC 3339 time or Unix milliseconds"});
    let mut ingest = op(
        "Ingest one post or a batch of up to 1,000; answered after commit",
        json!({"description": "unused"}),
        &["400", "413", "422", "429", "503"],
    );
    let r = ingest["responses"].as_object_mut().expect("an object");
    r.remove("200");
    r.insert(
        "201".into(),
        ok_json("Committed", json!({"$ref": "#/components/schemas/Ingested"})),
    );
    ingest["requestBody"] = body(json!({"oneOf": [
        {"$ref": "#/components/schemas/PostIn"},
        {"type": "array", "maxItems": 1000, "items": {"$ref": "#/components/schemas/PostIn"}}
    ]}));

    let mut list_posts = op(
        "Posts, newest first, keyset-paginated",
        ok_json(
            "A page",
            json!({"type": "object", "properties": {
            "posts": {"type": "array", "items": {"$ref": "#/components/schemas/Post"}},
            "next_cursor": {"type": ["string", "null"]}}}),
        ),
        &["422", "429", "503"],
    );
    list_posts["parameters"] = json!([
        query("since", "Posts created at or after", time.clone()),
        query("until", "Posts created before", time.clone()),
        query("author", "Exact author", json!({"type": "string"})),
        query(
            "limit",
            "1–1000, default 50",
            json!({"type": "integer", "minimum": 1, "maximum": 1000})
        ),
        query(
            "cursor",
            "next_cursor of the previous page",
            json!({"type": "string"})
        ),
    ]);

    let mut analyze = op(
        "Matches, score, relevance, signals and structure of one text or a batch (cached by content hash)",
        ok_json(
            "The analysis (with `cached`, and for a hit `cache_tier`: l1 or l2), or {results: [...]} for a batch",
            json!({"type": "object"}),
        ),
        &["400", "413", "422", "429"],
    );
    analyze["requestBody"] = body(json!({"oneOf": [
        {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
        {"type": "object", "required": ["texts"], "properties": {"texts": {"type": "array", "maxItems": 1000, "items": {"type": "string"}}}}
    ]}));

    let mut alerts = op(
        "Alerts raised by relevant posts, newest first",
        ok_json(
            "A page",
            json!({"type": "object", "properties": {
            "alerts": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
            "next_cursor": {"type": ["string", "null"]}}}),
        ),
        &["422", "429", "503"],
    );
    alerts["parameters"] = json!([
        query("entity", "Entity id", json!({"type": "string"})),
        query(
            "min_confidence",
            "0–1",
            json!({"type": "number", "minimum": 0, "maximum": 1})
        ),
        query("since", "Posts created at or after", time),
        query("limit", "1–1000, default 50", json!({"type": "integer"})),
        query(
            "cursor",
            "next_cursor of the previous page",
            json!({"type": "string"})
        ),
    ]);

    let mut generate = op(
        "Generate posts with the LLM when one is configured (LLM_BASE_URL), else or when it cannot answer with the local model through the pipeline at High priority; also published on `generated`",
        ok_json(
            "The posts, each with its confidence, and the backend",
            json!({"type": "object", "properties": {
            "posts": {"type": "array", "items": {"type": "object", "properties": {
                "text": {"type": "string"}, "confidence": {"type": "number"}, "fluency": {"type": "number"},
                "novelty": {"type": "number"}, "structure_fit": {"type": "number"}, "attempts": {"type": "integer"}}}},
            "cached": {"type": "boolean", "description": "Seeded local requests are cached per model"},
            "cache_tier": {"type": "string", "enum": ["l1", "l2"], "description": "With cached: this process's cache or Redis"},
            "backend": {"type": "string", "enum": ["llm", "local"]},
            "llm_model": {"type": "string", "description": "With backend llm: the model asked"},
            "llm_error": {"type": "string", "description": "With backend local when an LLM is configured: why it did not answer"},
            "topic": {"type": ["string", "null"]}, "model_version": {"type": "integer"}}}),
        ),
        &["400", "413", "422", "429", "503"],
    );
    generate["requestBody"] = body(
        json!({"type": "object", "additionalProperties": false, "properties": {
        "topic": {"type": "string", "maxLength": 100},
        "n": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
        "hook": {"type": "string", "enum": ["question", "number_or_list", "bold_claim", "quote", "other"]},
        "seed": {"type": "integer", "minimum": 0},
        "max_chars": {"type": "integer", "minimum": 20, "maximum": 2000, "default": 280}}}),
    );

    let mut put_dict = op(
        "Replace the dictionary (admin): validated, compiled, hot-reloaded, saved",
        ok_json("The new version", json!({"type": "object"})),
        &["401", "403", "413", "422", "429"],
    );
    put_dict["security"] = admin.clone();
    put_dict["requestBody"] = json!({"required": true, "content": {
        "application/toml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}}}});

    let mut summary = op(
        "Operations (rate, p50/p95/p99, errors), cache hit ratios, slowest operations and every component",
        ok_json("The summary", json!({"type": "object"})),
        &["422"],
    );
    summary["parameters"] = json!([query(
        "window_secs",
        "1–3600, default 300",
        json!({"type": "integer"})
    )]);

    let mut report = op(
        "The SLA report",
        ok_json("The report", json!({"type": "object"})),
        &["422"],
    );
    report["parameters"] = json!([query("hours", "1–24, default 24", json!({"type": "integer"}))]);

    let mut invalidate = op(
        "Invalidate a cache namespace, or one key (admin)",
        ok_json("What was invalidated", json!({"type": "object"})),
        &["400", "401", "403", "422", "429"],
    );
    invalidate["security"] = admin;
    invalidate["requestBody"] = body(
        json!({"type": "object", "required": ["namespace"], "properties": {
        "namespace": {"type": "string", "enum": ["analysis", "generation"]},
        "key": {"type": "string", "description": "The analysed text whose entry to drop"}}}),
    );

    let mut ready = op(
        "Component health: database, Redis, LLM, with degraded states",
        ok_json("Ready (healthy or degraded)", json!({"type": "object"})),
        &["503"],
    );
    ready["responses"]["503"]["description"] = json!("A critical component is down");

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "brisk-server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Ingest posts, analyse texts, raise alerts, watch performance. Errors are {error, message, request_id}; every response has x-request-id."
        },
        "paths": {
            "/api/posts": {"post": ingest, "get": list_posts},
            "/api/analyze": {"post": analyze},
            "/api/alerts": {"get": alerts},
            "/api/generate": {"post": generate},
            "/api/dictionary": {
                "get": op("The dictionary: its source text, format, version and pattern count", ok_json("The dictionary", json!({"type": "object"})), &["429"]),
                "put": put_dict
            },
            "/api/performance/summary": {"get": summary},
            "/api/performance/slow-queries": {"get": op("The slow-query log and statements by p95", ok_json("Slow queries", json!({"type": "object"})), &[])},
            "/api/performance/report": {"get": report},
            "/api/cache/stats": {"get": op("Per namespace hits, misses, hit ratio, cost saved, entries", ok_json("Cache statistics", json!({"type": "object"})), &[])},
            "/api/cache/invalidate": {"post": invalidate},
            "/api/openapi.json": {"get": op("This document", ok_json("OpenAPI 3.1", json!({"type": "object"})), &[])},
            "/health": {"get": op("Liveness", ok_json("Up", json!({"type": "object"})), &[])},
            "/ready": {"get": ready},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/ws": {"get": {"summary": "WebSocket (brisk-ws-hub protocol v1); topics metrics, alerts, posts, generated", "responses": {"101": {"description": "Switching protocols"}, "503": {"description": "Full or shutting down"}}}},
            "/": {"get": {"summary": "The dashboard", "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message", "request_id"], "properties": {
                    "error": {"type": "string", "description": "A stable code: bad_request, bad_json, validation_failed, unauthorized, admin_disabled, not_found, payload_too_large, rate_limited, unavailable, internal"},
                    "message": {"type": "string"},
                    "request_id": {"type": "string"}}},
                "PostIn": {"type": "object", "required": ["text"], "additionalProperties": false, "properties": {
                    "id": {"type": "string", "maxLength": 256, "description": "Generated when absent; a known id is ignored"},
                    "text": {"type": "string", "description": "At most BRISK_MAX_TEXT_CHARS characters"},
                    "author": {"type": "string", "maxLength": 256},
                    "source": {"type": "string", "maxLength": 256},
                    "created_at": {"type": ["string", "integer"], "description": "RFC 3339 or Unix ms; default now"},
                    "language": {"type": "string", "maxLength": 256},
                    "engagement": {"type": "object", "properties": {
                        "likes": {"type": "integer"}, "reposts": {"type": "integer"},
                        "replies": {"type": "integer"}, "views": {"type": "integer"}}}}},
                "Post": {"type": "object", "properties": {
                    "id": {"type": "string"}, "text": {"type": "string"}, "author": {"type": "string"},
                    "source": {"type": "string"}, "created_at": {"type": "string"}, "language": {"type": "string"},
                    "engagement": {"type": "object"}, "ingested_at": {"type": "string"}}},
                "Ingested": {"type": "object", "properties": {
                    "accepted": {"type": "integer"}, "alerts": {"type": "integer"}, "batch": {"type": "integer"}}},
                "Alert": {"type": "object", "properties": {
                    "id": {"type": "integer"}, "post_id": {"type": "string"}, "entity": {"type": "string"},
                    "confidence": {"type": "number"}, "score": {"type": "number"},
                    "created_at": {"type": "string"}, "raised_at": {"type": "string"},
                    "text": {"type": "string"}, "signals": {"type": "array"}}}
            }
        }
    })
}

/// `GET /api/openapi.json`.
pub(crate) async fn document() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    raw_json(StatusCode::OK, DOC.get_or_init(|| build().to_string()).clone())
}
