// brisk dashboard: live data over /ws (topics metrics, alerts, posts,
// generated), charts drawn on canvas by this file. No external assets.
// Every text from the server goes through textContent, never innerHTML.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const POINTS = 90; // 3 minutes at one snapshot every 2 s
  const series = { rate: [], p50: [], p95: [], p99: [], cpu: [], rss: [] };

  function push(name, v) {
    const s = series[name];
    s.push(typeof v === "number" && isFinite(v) ? v : null);
    if (s.length > POINTS) s.shift();
  }

  function fmt(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return "–";
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + "k";
    return Number(v).toFixed(digits === undefined ? 0 : digits);
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  // A line chart of one or more series, scaled to their maximum.
  // The canvas's `data-points` says how many points it shows (a hook for the
  // browser test in tests/it/browser.rs).
  function chart(canvas, lines) {
    canvas.dataset.points = String(Math.max(0, ...lines.map((l) => l.data.length)));
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, pad = 26;
    ctx.clearRect(0, 0, w, h);
    let max = 0;
    for (const l of lines) for (const v of l.data) if (v !== null && v > max) max = v;
    max = max <= 0 ? 1 : max * 1.15;
    ctx.strokeStyle = "#2a313b";
    ctx.fillStyle = "#8a93a0";
    ctx.font = "10px system-ui";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = pad / 2 + ((h - pad) * i) / 4;
      ctx.beginPath();
      ctx.moveTo(pad, y);
      ctx.lineTo(w - 4, y);
      ctx.stroke();
      ctx.fillText(fmt(max * (1 - i / 4), max < 10 ? 1 : 0), 2, y + 3);
    }
    for (const l of lines) {
      ctx.strokeStyle = l.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      let started = false;
      // The newest point is at the right edge; older ones to its left.
      const offset = POINTS - l.data.length;
      l.data.forEach((v, i) => {
        if (v === null) { started = false; return; }
        const x = pad + ((w - pad - 4) * (i + offset)) / (POINTS - 1);
        const y = pad / 2 + (h - pad) * (1 - v / max);
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      });
      ctx.stroke();
      const last = l.data[l.data.length - 1];
      if (last !== null && last !== undefined) {
        ctx.fillStyle = l.color;
        ctx.beginPath();
        ctx.arc(w - 4, pad / 2 + (h - pad) * (1 - last / max), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }

  function dl(target, pairs) {
    const d = $(target);
    d.replaceChildren();
    for (const [k, v] of pairs) {
      d.append(el("dt", k), el("dd", v));
    }
  }

  function render(c) {
    const http = c.http || {};
    push("rate", http.rate_per_sec !== undefined ? http.rate_per_sec : http.rate_per_sec_1m);
    push("p50", http.p50_ms); push("p95", http.p95_ms); push("p99", http.p99_ms);
    $("rate").textContent = fmt(series.rate[series.rate.length - 1], 1);
    $("p50").textContent = fmt(http.p50_ms, 2);
    $("p95").textContent = fmt(http.p95_ms, 2);
    $("p99").textContent = fmt(http.p99_ms, 2);
    $("reqtotal").textContent = fmt(http.requests_total);
    $("errtotal").textContent = fmt(http.errors_total);
    $("uptime").textContent = "up " + fmt(c.uptime_secs) + " s";
    chart($("chart-rate"), [{ data: series.rate, color: "#3ccf7c" }]);
    chart($("chart-latency"), [
      { data: series.p50, color: "#4fb3ff" },
      { data: series.p95, color: "#ffb84f" },
      { data: series.p99, color: "#ff5f6d" },
    ]);

    const cache = $("cache");
    cache.replaceChildren();
    for (const ns of (c.cache && c.cache.namespaces) || []) {
      cache.append(el("div", ns.namespace + ": hit ratio " + fmt(ns.hit_ratio * 100, 1) + "% (" +
        fmt(ns.hits) + " hits, " + fmt(ns.misses) + " misses)"));
      const bar = el("div", undefined, "bar");
      const fill = el("span");
      fill.style.width = Math.round((ns.hit_ratio || 0) * 100) + "%";
      bar.append(fill);
      cache.append(bar);
      cache.append(el("div", "cost saved " + fmt(ns.cost_saved_us / 1000, 1) + " ms of analysis · " +
        fmt(ns.entries) + " entries", "muted small"));
    }
    if (c.cache) cache.append(el("div", "store: " + fmt(c.cache.weight) + " / " + fmt(c.cache.max_weight) +
      " (" + c.cache.bounded_by + ")", "muted small"));

    const db = c.database || {};
    const w = db.writer || {};
    dl("db", [
      ["backend", db.backend + " (" + db.path + ")"],
      ["connections in use", fmt(db.pool && db.pool.in_use) + " / " + fmt(db.pool && db.pool.max_size) +
        (db.pool && db.pool.waiting ? " (" + db.pool.waiting + " waiting)" : "")],
      ["posts · alerts", fmt(db.posts) + " · " + fmt(db.alerts)],
      ["writer queue", fmt(w.queued_rows) + " rows"],
      ["batches", fmt(w.batches) + " (p50 " + fmt(w.batch_p50_ms, 2) + " ms, p99 " + fmt(w.batch_p99_ms, 2) + " ms)"],
      ["slow queries", fmt(db.slow_queries)],
    ]);

    const tbody = $("limits").querySelector("tbody");
    tbody.replaceChildren();
    const rl = c.rate_limiter || {};
    if (!rl.enabled) {
      const tr = el("tr");
      const td = el("td", "client limits are off (CLIENT_RATE_LIMIT_PER_MINUTE=0)", "muted");
      td.colSpan = 4;
      tr.append(td);
      tbody.append(tr);
    }
    for (const k of rl.classes || []) {
      const tr = el("tr");
      tr.append(el("td", k.class), el("td", fmt(k.limit_per_minute)), el("td", fmt(k.clients)), el("td", fmt(k.limited_total)));
      tbody.append(tr);
    }

    const pipe = $("pipeline");
    pipe.replaceChildren();
    if (c.pipeline) {
      const p = c.pipeline;
      const q = p.queued || {};
      const total = Object.values(q).reduce((a, b) => a + b, 0);
      pipe.append(el("div", p.name + ": " + fmt(total) + " queued · " + fmt(p.workers) + " workers · batch " + fmt(p.batch_size)));
      const t = el("table");
      const head = el("tr");
      const row = el("tr");
      for (const k of ["urgent", "high", "normal", "low", "background"]) { head.append(el("th", k)); row.append(el("td", fmt(q[k]))); }
      t.append(head, row);
      pipe.append(t);
      pipe.append(el("div", "completed " + fmt(p.completed) + " · failed " + fmt(p.failed) + " · shed " + fmt(p.shed) + " · batches " + fmt(p.batches), "muted small"));
    }
    if (c.generator) {
      const g = c.generator;
      pipe.append(el("div", "model (" + g.backend + ", v" + g.version + "): " + fmt(g.posts) + " posts, " + fmt(g.vocabulary) + " words, " + fmt(g.heap_bytes / 1048576, 1) + " MiB", "muted small"));
    }
    if (c.training) {
      const tr = c.training;
      pipe.append(el("div", "training queue: " + fmt(tr.queued_posts) + " posts · trained " + fmt(tr.trained_posts) + " · dropped " + fmt(tr.dropped_posts) + " · passes " + fmt(tr.passes), "muted small"));
    }

    const ws = c.websocket || {};
    dl("ws", [
      ["connections", fmt(ws.connections)],
      ["Redis fan-out", ws.fanout || "off"],
      ["subscriptions", fmt(ws.subscriptions)],
      ["queued", fmt(ws.queued)],
      ["messages out", fmt(ws.messages_out)],
      ["dropped", fmt(ws.drops)],
    ]);

    const sys = c.system || {};
    push("cpu", sys.process_cpu_percent);
    push("rss", sys.process_rss_bytes / 1048576);
    dl("sys", [
      ["process CPU", fmt(sys.process_cpu_percent, 1) + " %"],
      ["process RSS", fmt(sys.process_rss_bytes / 1048576, 1) + " MiB"],
      ["machine memory", fmt(sys.memory_used_bytes / 1073741824, 1) + " / " + fmt(sys.memory_total_bytes / 1073741824, 1) + " GiB"],
    ]);
    chart($("chart-sys"), [{ data: series.cpu, color: "#4fb3ff" }, { data: series.rss, color: "#ff5f6d" }]);
  }

  function addFeed(list, main, meta, max) {
    const li = el("li");
    li.append(el("div", main), el("div", meta, "meta"));
    list.prepend(li);
    while (list.children.length > (max || 50)) list.lastChild.remove();
  }

  let alertCount = 0;
  function addAlert(a) {
    alertCount++;
    addFeed($("alerts"), a.text, a.entity + " · confidence " + fmt(a.confidence * 100) + "% · " + a.created_at + " · post " + a.post_id);
    // The list keeps the latest 50; the count says how many arrived.
    $("alertcount").textContent = "(" + alertCount + " received, " + $("alerts").children.length + " shown)";
  }

  function addGenerated(g) {
    const posts = Array.isArray(g.posts) ? g.posts : [g];
    for (const p of posts) {
      const conf = p.confidence !== undefined ? " · confidence " + fmt(p.confidence * 100) + "%" : "";
      addFeed($("generated"), p.text || JSON.stringify(p), (g.backend || p.backend || "") + conf);
    }
  }

  async function getJSON(path) {
    const r = await fetch(path, { headers: { accept: "application/json" } });
    if (!r.ok) throw new Error(path + ": " + r.status);
    return r.json();
  }

  async function initial() {
    try {
      const s = await getJSON("/api/performance/summary?window_secs=60");
      render(s.components);
    } catch (e) { /* the socket will bring data */ }
    try {
      const a = await getJSON("/api/alerts?limit=30");
      for (const x of a.alerts.slice().reverse()) addAlert(x);
    } catch (e) { /* ignore */ }
    refreshSlow();
  }

  async function refreshSlow() {
    try {
      const s = await getJSON("/api/performance/slow-queries");
      const ol = $("slow");
      ol.replaceChildren();
      for (const q of s.statements.slice(0, 5)) {
        ol.append(el("li", fmt(q.p95_ms, 2) + " ms · " + q.count + "× · " + q.statement.slice(0, 90)));
      }
      for (const q of s.reads) {
        ol.append(el("li", fmt(q.p95_ms, 2) + " ms · " + q.count + "× · " + q.query));
      }
    } catch (e) { /* ignore */ }
  }

  let backoff = 500;
  let live = false;
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws");
    ws.onopen = () => {
      backoff = 500;
      live = true;
      $("conn").textContent = "live";
      $("conn").className = "pill on";
      for (const topic of ["metrics", "alerts", "posts", "generated"]) {
        ws.send(JSON.stringify({ type: "subscribe", topic: topic }));
      }
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type !== "message") return;
      if (m.topic === "metrics") render(m.data);
      else if (m.topic === "alerts") addAlert(m.data);
      else if (m.topic === "posts") {
        for (const p of (m.data.posts || []).slice().reverse()) addFeed($("posts"), p.text, p.author + " · " + p.created_at);
      } else if (m.topic === "generated") addGenerated(m.data);
    };
    ws.onclose = () => {
      live = false;
      $("conn").textContent = "reconnecting…";
      $("conn").className = "pill off";
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  function generateForm() {
    $("generate").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = ev.target;
      const body = { n: Number(f.n.value) || 1 };
      if (f.topic.value.trim()) body.topic = f.topic.value.trim();
      $("genstatus").textContent = "generating…";
      try {
        const r = await fetch("/api/generate", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        const j = await r.json();
        if (!r.ok) {
          $("genstatus").textContent = r.status === 404
            ? "generation is not available in this build"
            : (j.message || ("error " + r.status));
          return;
        }
        $("genstatus").textContent = "done (" + (j.backend || "") + ")";
        // Results arrive on the `generated` topic; without a live socket, show them from here.
        if (!live && j.posts) addGenerated(j);
      } catch (e) {
        $("genstatus").textContent = "error: " + e.message;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    generateForm();
    initial();
    connect();
    setInterval(refreshSlow, 10000);
  });
})();
