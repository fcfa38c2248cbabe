//! What the dashboard shows: a snapshot of every component, served in
//! `/api/performance/summary` and published on the `metrics` topic every
//! two seconds.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::app::{AppState, NAMESPACES};
use crate::db;

/// How often the `metrics` topic gets a snapshot.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_secs(2);

/// Per namespace hits, misses, ratio, cost saved, entries and evictions.
pub(crate) fn cache(app: &AppState) -> Value {
    let namespaces: Vec<Value> = NAMESPACES
        .iter()
        .filter_map(|ns| app.cache.namespace(ns).ok().map(|c| (ns, c.stats())))
        .map(|(ns, s)| {
            json!({
                "namespace": ns,
                "hits": s.hits,
                "misses": s.misses,
                "hit_ratio": s.hit_ratio(),
                "cost_saved_us": s.cost_saved,
                "entries": s.entries,
                "inserts": s.inserts,
                "evicted_size": s.evicted_size,
                "evicted_expired": s.evicted_expired,
                "evicted_invalidated": s.evicted_invalidated,
            })
        })
        .collect();
    let l2 = app.tiered.as_ref().map(|t| {
        let s = t.analysis.l2_stats();
        json!({
            "hits": s.hits,
            "misses": s.misses,
            "writes": s.writes,
            "errors": s.errors,
            "timeouts": s.timeouts,
            "skipped": s.skipped,
            "breaker_trips": s.breaker_trips,
            "circuit_open": t.analysis.is_circuit_open(),
            "invalidations_sent": s.invalidations_sent,
            "invalidations_received": s.invalidations_received,
        })
    });
    json!({
        "namespaces": namespaces,
        "entries": app.cache.entry_count(),
        "weight": app.cache.weight(),
        "max_weight": app.cache.max_weight(),
        "bounded_by": if app.settings.cache_max_bytes.is_some() { "bytes" } else { "entries" },
        "l2": l2,
    })
}

fn ms(v: Option<f64>) -> Option<f64> {
    v.map(|s| s * 1e3)
}

/// Every component's state, for the dashboard.
pub(crate) async fn components(app: &AppState) -> Value {
    let http_1m = app.http.stats(Some(Duration::from_secs(60)));
    let http_all = app.http.stats(None);
    #[allow(clippy::cast_precision_loss)]
    let http = json!({
        "requests_total": http_all.calls,
        "errors_total": http_all.errors,
        "rate_per_sec_1m": http_1m.calls as f64 / 60.0,
        "p50_ms": ms(http_1m.durations.quantile(0.5)),
        "p95_ms": ms(http_1m.durations.quantile(0.95)),
        "p99_ms": ms(http_1m.durations.quantile(0.99)),
    });
    let w = app.posts.stats();
    let aw = app.alerts.stats();
    let d = |d: Duration| d.as_secs_f64() * 1e3;
    let posts = db::count(&app.store, "posts").await.ok();
    let alerts = db::count(&app.store, "alerts").await.ok();
    let (slow, _, _) = db::query_log(&app.store);
    let pool = match app.store.as_postgres() {
        Some(pg) => {
            let p = pg.stats();
            json!({
                "max_size": p.max_size,
                "size": p.size,
                "in_use": p.in_use,
                "idle": p.idle,
                "waiting": p.waiting,
                "timeouts": p.timeouts,
                "wait_p99_ms": d(p.wait.p99),
            })
        }
        None => json!({
            "max_size": app.settings.db_pool_size,
            "size": app.settings.db_pool_size,
            "in_use": app.db_reads_in_use.load(Ordering::Relaxed),
        }),
    };
    let database = json!({
        "backend": if app.store.as_postgres().is_some() { "postgres" } else { "sqlite" },
        "path": app.settings.database.describe(),
        "pool": pool,
        "posts": posts,
        "alerts": alerts,
        "writer": {
            "rows_written": w.rows_written + aw.rows_written,
            "batches": w.batches + aw.batches,
            "queued_rows": w.queued_rows + aw.queued_rows,
            "retries": w.retries + aw.retries,
            "failed_batches": w.failed_batches + aw.failed_batches,
            "batch_p50_ms": d(w.batch_latency.p50),
            "batch_p99_ms": d(w.batch_latency.p99),
        },
        "slow_queries": slow.len(),
    });
    let limiter: Vec<Value> = app
        .limit_classes
        .iter()
        .filter_map(|&(name, per_minute)| {
            let layer = app.limits.as_ref()?;
            let s = layer.limiter(name)?.stats();
            // With Redis: the shared decisions plus the local ones taken
            // while Redis could not answer.
            let shared = app.shared_limits.as_ref().and_then(|l| l.stats(name));
            Some(json!({
                "class": name,
                "limit_per_minute": per_minute,
                "clients": s.keys,
                "limited_total": s.limited + shared.map_or(0, |r| r.limited),
                "shared_allowed": shared.map(|r| r.allowed),
            }))
        })
        .collect();
    let hub = app.hub.stats();
    let ws = json!({
        "fanout": match app.fanout.get() {
            None if app.settings.redis_url.is_some() => "connecting",
            None => "off",
            Some(f) if f.is_subscribed() => "subscribed",
            Some(_) => "reconnecting",
        },
        "connections": hub.connections,
        "subscriptions": hub.subscriptions,
        "queued": hub.queued,
        "published": hub.published,
        "messages_out": hub.messages_out,
        "drops": hub.drops,
        "slow_disconnects": hub.slow_disconnects,
    });
    let m = app.matcher.stats();
    let sys = app.system.sample();
    json!({
        "uptime_secs": app.started.elapsed().as_secs(),
        "http": http,
        "cache": cache(app),
        "database": database,
        "rate_limiter": {
            "enabled": app.limits.is_some(),
            "shared": app.shared_limits.is_some(),
            "local_fallbacks": app.shared_limits.as_ref().map(crate::limits::SharedLimits::fallbacks),
            "classes": limiter,
        },
        "llm": app.llm.as_ref().map(|llm| {
            let s = llm.client().stats();
            json!({
                "model": llm.model(),
                "calls": s.calls,
                "remote": s.remote,
                "cache_hits": s.cache_hits,
                "failed": s.failed,
                "http_errors": s.http_errors,
                "ready_probes": llm.probes(),
            })
        }),
        "pipeline": pipeline(app),
        "generator": app.model.describe(),
        "training": app.trainer.describe(),
        "websocket": ws,
        "matcher": {
            "dictionary_version": m.version,
            "patterns": m.patterns,
            "texts": m.texts,
            "relevant": m.relevant,
        },
        "ingest": {
            "posts": app.posts_ingested.load(Ordering::Relaxed),
            "alerts": app.alerts_raised.load(Ordering::Relaxed),
        },
        "system": sys,
    })
}

/// Publishes a snapshot on `metrics` every [`PUBLISH_EVERY`] while anyone
/// listens, with the request rate since the previous one.
pub(crate) fn spawn_publisher(app: &AppState) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PUBLISH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = (Instant::now(), app.http.stats(None).calls);
        loop {
            tick.tick().await;
            if app.hub.is_shutting_down() {
                break;
            }
            let now = Instant::now();
            let calls = app.http.stats(None).calls;
            #[allow(clippy::cast_precision_loss)]
            let rate = (calls - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
            last = (now, calls);
            if app.hub.subscriber_count("metrics") == 0 {
                continue;
            }
            let mut snap = components(&app).await;
            snap["http"]["rate_per_sec"] = json!(rate);
            // This process's own numbers: never fanned out to other processes.
            let _ = app.hub.publish("metrics", &snap);
        }
    })
}

/// The generation pipeline: queue depth per priority, workers, outcomes.
fn pipeline(app: &AppState) -> Value {
    let s = app.generator.stats();
    let names = ["urgent", "high", "normal", "low", "background"];
    let mut queued = serde_json::Map::new();
    for (i, name) in names.iter().enumerate() {
        queued.insert((*name).to_owned(), json!(s.queued.get(i).copied().unwrap_or(0)));
    }
    json!({
        "name": "generate",
        "queued": queued,
        "workers": app.generator.workers(),
        "batch_size": app.generator.batch_size(),
        "completed": s.completed,
        "failed": s.failed,
        "shed": s.shed.iter().sum::<u64>(),
        "batches": s.batches,
    })
}
