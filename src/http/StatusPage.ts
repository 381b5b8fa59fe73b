/**
 * The status page served at `GET /`: one self-contained HTML document (inline CSS and
 * JavaScript, nothing fetched from elsewhere) that polls `GET /api/status` every second and
 * redraws. Rates (events/s per partition and in total, the throughput sparkline) are computed
 * in the browser from successive snapshots, using the snapshots' own `now`.
 *
 * The recommendations card shows the recommender's figures from the same snapshot; the box next
 * to it asks `GET /api/users/:id/recommendations` for one user's list on demand and draws it
 * with DOM text nodes (never markup from the answer).
 *
 * A banner says "disconnected" when polling fails and "stale" when the snapshot's `now`
 * stops moving. The client script avoids template literals so it can live in this string.
 */

const css = `
:root {
  --bg: #f4f5f7; --card: #ffffff; --ink: #18202c; --muted: #667085; --line: #e4e7ec;
  --accent: #2563eb; --accent-soft: rgba(37, 99, 235, .12);
  --ok: #15803d; --ok-soft: #dcfce7; --warn: #b45309; --warn-soft: #fef3c7; --bad: #b91c1c; --bad-soft: #fee2e2;
}
* { box-sizing: border-box; }
html, body { margin: 0; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; align-items: center; gap: 14px; padding: 10px 24px; background: #0f172a; color: #e2e8f0; }
header h1 { margin: 0; font-size: 16px; font-weight: 600; color: #fff; letter-spacing: .01em; }
header .spacer { flex: 1; }
header .meta { font-size: 12px; color: #94a3b8; font-variant-numeric: tabular-nums; }
header a { color: #93c5fd; text-decoration: none; font-size: 12px; margin-left: 10px; }
header a:hover { text-decoration: underline; }
.pill { display: inline-flex; align-items: center; gap: 6px; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.pill::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: currentColor; }
.pill.live { color: #4ade80; background: rgba(74, 222, 128, .12); }
.pill.stale { color: #fbbf24; background: rgba(251, 191, 36, .14); }
.pill.down { color: #f87171; background: rgba(248, 113, 113, .14); }
.pill.wait { color: #94a3b8; background: rgba(148, 163, 184, .14); }
main { max-width: 1320px; margin: 0 auto; padding: 16px 24px 28px; }
.banner { display: none; margin-bottom: 14px; padding: 10px 14px; border-radius: 8px; font-weight: 600; border: 1px solid; }
.banner.show { display: block; }
.banner.stale { background: var(--warn-soft); color: var(--warn); border-color: #fcd34d; }
.banner.down { background: var(--bad-soft); color: var(--bad); border-color: #fca5a5; }
.grid { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 12px; margin-bottom: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; min-width: 0; }
.card h2 { margin: 0 0 6px; font-size: 11px; font-weight: 700; color: var(--muted); text-transform: uppercase; letter-spacing: .06em; }
.big { font-size: 28px; font-weight: 650; line-height: 1.15; font-variant-numeric: tabular-nums; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.big small { font-size: 14px; font-weight: 500; color: var(--muted); margin-left: 4px; }
.sub { margin-top: 4px; font-size: 12.5px; color: var(--muted); font-variant-numeric: tabular-nums; }
.ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
dl.kv { display: grid; grid-template-columns: 1fr auto; gap: 3px 12px; margin: 2px 0 0; font-variant-numeric: tabular-nums; }
dl.kv dt { color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
dl.kv dd { margin: 0; text-align: right; font-weight: 600; white-space: nowrap; }
body[data-connection=stale] main > :not(.banner), body[data-connection=down] main > :not(.banner) { opacity: .55; transition: opacity .3s; }
.spark { display: block; width: 100%; height: 34px; margin-top: 4px; }
.job { margin: 2px 0 8px; }
.job-name { font-weight: 600; }
.job-detail { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
.bars { display: block; width: 100%; height: 120px; background: #f8fafc; border-radius: 6px; }
.bars rect { fill: #3b82f6; }
.note { color: #64748b; font-size: 12px; margin-top: 6px; }
.section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; margin-bottom: 12px; }
.section h2 { margin: 0 0 8px; font-size: 11px; font-weight: 700; color: var(--muted); text-transform: uppercase; letter-spacing: .06em; }
.cols { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
.cols .section { margin-bottom: 0; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th { font-size: 12px; font-weight: 600; color: var(--muted); text-align: right; padding: 4px 10px; border-bottom: 1px solid var(--line); }
td { text-align: right; padding: 5px 10px; border-bottom: 1px solid #f0f2f5; }
tr:last-child td { border-bottom: 0; }
th.l, td.l { text-align: left; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 11.5px; font-weight: 600; }
.badge.active { background: var(--ok-soft); color: var(--ok); }
.badge.idle { background: #eef2f7; color: var(--muted); }
.list { list-style: none; margin: 0; padding: 0; }
.list li { padding: 6px 0; border-bottom: 1px solid #f0f2f5; font-size: 13px; }
.list li:last-child { border-bottom: 0; }
.list .when { color: var(--muted); font-size: 12px; float: right; margin-left: 8px; }
.list .what { font-weight: 600; }
.list .why { color: var(--muted); word-break: break-word; }
.empty { color: var(--muted); font-style: italic; padding: 4px 0; }
.card.wide { grid-column: span 2; }
.lookup { display: flex; gap: 8px; margin: 2px 0 6px; }
.lookup input { flex: 1; min-width: 0; font: inherit; padding: 5px 9px; border: 1px solid #d0d5dd; border-radius: 6px; background: #fff; color: var(--ink); }
.lookup input:focus { outline: 3px solid var(--accent-soft); border-color: var(--accent); }
.lookup button { font: inherit; font-weight: 600; padding: 5px 14px; border: 0; border-radius: 6px; background: var(--accent); color: #fff; cursor: pointer; }
.lookup button:hover { background: #1d4ed8; }
.scroll { overflow-x: auto; }
table.compact { margin-top: 4px; }
table.compact th, table.compact td { padding: 3px 8px; font-size: 12.5px; }
table.compact th:first-child, table.compact td:first-child { padding-left: 0; }
table.compact th:last-child, table.compact td:last-child { padding-right: 0; }
table.compact .pid { color: var(--muted); font-size: 11.5px; margin-left: 6px; white-space: nowrap; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 6px 0 0; }
@media (max-width: 980px) { .grid { grid-template-columns: repeat(2, minmax(0, 1fr)); } .cols { grid-template-columns: 1fr; } }
@media (max-width: 600px) {
  .grid { grid-template-columns: minmax(0, 1fr); } .card.wide { grid-column: auto; } .opt { display: none; }
  header { flex-wrap: wrap; padding: 10px 12px; gap: 6px 12px; } header .spacer { display: none; } header .meta { order: 3; flex-basis: 100%; }
  main { padding: 12px 12px 20px; }
}
`

const body = `
<header>
  <h1>Insights Engine</h1>
  <span id="conn" class="pill wait">connecting</span>
  <span class="spacer"></span>
  <span class="meta" id="updated">waiting for the first snapshot…</span>
  <nav><a href="/metrics">/metrics</a><a href="/readyz">/readyz</a><a href="/api/status">/api/status</a></nav>
</header>
<main>
  <div id="banner" class="banner" role="alert"></div>
  <div class="grid">
    <section class="card">
      <h2>Watermark</h2>
      <div class="big" id="watermark">–</div>
      <div class="sub" id="watermark-delay">no events yet</div>
      <div class="sub" id="latest-event"></div>
    </section>
    <section class="card">
      <h2>Throughput</h2>
      <div class="big" id="rate">–</div>
      <svg class="spark" id="spark" viewBox="0 0 300 40" preserveAspectRatio="none" aria-label="events per second, last two minutes"></svg>
      <div class="sub" id="rate-note">events per second</div>
    </section>
    <section class="card">
      <h2>Events in</h2>
      <div class="big" id="events-total">–</div>
      <div class="sub" id="events-by-topic"></div>
    </section>
    <section class="card">
      <h2>Errors and late events</h2>
      <dl class="kv">
        <dt>Ingest errors</dt><dd id="ingest-errors">–</dd>
        <dt>Late clicks</dt><dd id="late-clicks">–</dd>
        <dt>Late checkouts</dt><dd id="late-checkouts">–</dd>
      </dl>
    </section>
    <section class="card">
      <h2>Keyed state</h2>
      <dl class="kv">
        <dt>Users held</dt><dd id="state-users">–</dd>
        <dt>Clicks held</dt><dd id="state-clicks">–</dd>
        <dt>Pending checkouts</dt><dd id="state-pending">–</dd>
        <dt title="" id="state-bytes-label">Size (approx.)</dt><dd id="state-bytes">–</dd>
      </dl>
    </section>
    <section class="card">
      <h2>Sink (PostgreSQL)</h2>
      <dl class="kv">
        <dt>Rows written</dt><dd id="sink-rows">–</dd>
        <dt>Batch time p50 / p95</dt><dd id="sink-latency">–</dd>
        <dt>Last commit</dt><dd id="sink-commit">–</dd>
      </dl>
    </section>
    <section class="card">
      <h2>Process</h2>
      <dl class="kv">
        <dt>Uptime</dt><dd id="uptime">–</dd>
        <dt>Memory (RSS)</dt><dd id="rss">–</dd>
        <dt>JS heap used</dt><dd id="heap">–</dd>
      </dl>
    </section>
    <section class="card">
      <h2>Scheduled jobs</h2>
      <div id="jobs"><div class="empty">none yet</div></div>
    </section>
    <section class="card">
      <h2>Raw lake (Parquet)</h2>
      <dl class="kv">
        <dt>Files</dt><dd id="lake-files">–</dd>
        <dt>Events in files</dt><dd id="lake-rows">–</dd>
        <dt>Buffered</dt><dd id="lake-buffered">–</dd>
        <dt title="a buffered event is in a file within LAKE_FLUSH_MS (5 min)">Oldest buffered</dt><dd id="lake-age">–</dd>
      </dl>
    </section>
    <section class="card" id="recs-card">
      <h2>Recommendations</h2>
      <dl class="kv">
        <dt>Users with lists</dt><dd id="recs-users">–</dd>
        <dt title="events applied to the models, last 10 s">Updates</dt><dd id="recs-rate">–</dd>
        <dt title="time to apply one event to a model, over the newest 2048 updates">Update p50 / p99</dt><dd id="recs-latency">–</dd>
        <dt>Model products</dt><dd id="recs-products">–</dd>
        <dt title="item-to-item neighbour links">Model links</dt><dd id="recs-links">–</dd>
        <dt title="to shop.user_recommendations: lists (rows)">Lists written</dt><dd id="recs-lists">–</dd>
        <dt title="model snapshots: count and gzipped bytes">Snapshots</dt><dd id="recs-snapshots">–</dd>
        <dt>Last snapshot</dt><dd id="recs-snapshot-age">–</dd>
        <dt>Failed writes</dt><dd id="recs-failed">–</dd>
      </dl>
    </section>
    <section class="card wide" id="recs-lookup">
      <h2>A user's recommendations</h2>
      <form class="lookup" id="recs-form" autocomplete="off">
        <input id="recs-user" type="text" placeholder="user id" spellcheck="false" aria-label="user id">
        <button type="submit">Show</button>
      </form>
      <div class="sub" id="recs-note">the list <code>GET /api/users/:id/recommendations</code> answers, top 10</div>
      <div class="scroll">
        <table class="compact" id="recs-list" hidden>
          <thead><tr><th>#</th><th class="l">Product</th><th class="l opt">Category</th><th class="l opt">Brand</th><th>Price</th><th>Score</th></tr></thead>
          <tbody id="recs-items"></tbody>
        </table>
      </div>
    </section>
  </div>
  <section class="section">
    <h2>Business, last 24 rolled hours (from the hourly rollup)</h2>
    <div class="cols">
      <div>
        <svg class="bars" id="revenue-bars" viewBox="0 0 480 120" preserveAspectRatio="none" aria-label="revenue per hour"></svg>
        <div class="note" id="revenue-note">no hour rolled yet: an hour is rolled once every partition's watermark has passed its end</div>
      </div>
      <table>
        <thead><tr><th class="l">Source</th><th>Revenue</th><th>Paid</th><th>Checkouts</th></tr></thead>
        <tbody id="top-sources"><tr><td class="l empty" colspan="4">no hour rolled yet</td></tr></tbody>
      </table>
    </div>
  </section>
  <section class="section" id="workers-section" hidden>
    <h2>Workers <span id="workers-note"></span></h2>
    <div class="scroll"><table>
      <thead><tr><th class="l">Worker</th><th>pid</th><th class="l">State</th><th>Restarts</th><th class="l">Tasks</th><th>Partitions</th><th>Events</th><th>Events/s</th><th>Last report</th></tr></thead>
      <tbody id="workers"></tbody>
    </table></div>
  </section>
  <section class="section">
    <h2>Source partitions</h2>
    <div class="scroll"><table>
      <thead><tr><th class="l">Task (epoch)</th><th>Task watermark</th><th class="l">Topic / partition</th><th>Position</th><th>End</th><th>Lag</th><th>Events/s</th><th>Events</th><th>Latest event time</th><th>Last read</th><th>State</th></tr></thead>
      <tbody id="partitions"><tr><td class="l empty" colspan="11">no partitions assigned yet</td></tr></tbody>
    </table></div>
  </section>
  <div class="cols">
    <section class="section">
      <h2>Recent ingest errors <span id="errors-note"></span></h2>
      <ul class="list" id="recent-errors"><li class="empty">none</li></ul>
    </section>
    <section class="section">
      <h2>Recent late events <span id="late-note"></span></h2>
      <ul class="list" id="recent-late"><li class="empty">none</li></ul>
    </section>
  </div>
  <footer>Refreshes every second from <code>/api/status</code>. Rates are computed in this page from successive snapshots.</footer>
</main>
`

const script = `
(function () {
  "use strict";
  var POLL_MS = 1000, TIMEOUT_MS = 3000, STALE_MS = 3500, RATE_WINDOW_MS = 5000, SPARK_POINTS = 120;
  var history = [];        // [{ t, total, parts: { "topic/p": events } }] by snapshot time
  var last = null;         // last snapshot
  var lastOkAt = 0;        // wall clock of the last successful poll
  var lastNowChangeAt = 0; // wall clock at which snapshot.now last moved
  var failure = null;      // reason of the last failed poll, or null

  function $(id) { return document.getElementById(id); }
  function setText(id, text) { var el = $(id); if (el.textContent !== text) el.textContent = text; }
  function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]; }); }

  function count(n) {
    if (n === null || n === undefined) return "–";
    if (Math.abs(n) >= 1e7) return compact(n);
    return Math.round(n).toLocaleString("en-US");
  }
  function compact(n) {
    var a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + " G";
    if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + " M";
    if (a >= 1e3) return (n / 1e3).toFixed(a >= 1e4 ? 0 : 1) + " k";
    return a >= 10 || n === 0 ? String(Math.round(n)) : n.toFixed(1);
  }
  function rate(r) { return r === null ? "–" : compact(r) + "/s"; }
  function bytes(b) {
    if (b === null || b === undefined) return "–";
    if (b >= 1e9) return (b / 1e9).toFixed(1) + " GB";
    if (b >= 1e6) return (b / 1e6).toFixed(1) + " MB";
    if (b >= 1e3) return (b / 1e3).toFixed(1) + " kB";
    return b + " B";
  }
  function seconds(s) {
    if (s === null || s === undefined) return "–";
    var a = Math.abs(s);
    if (a < 10) return s.toFixed(1) + " s";
    if (a < 60) return Math.round(s) + " s";
    if (a < 3600) return Math.floor(a / 60) + " min " + Math.round(a % 60) + " s";
    if (a < 86400) return Math.floor(a / 3600) + " h " + Math.round((a % 3600) / 60) + " min";
    return Math.floor(a / 86400) + " d " + Math.round((a % 86400) / 3600) + " h";
  }
  function fine(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 1) return Math.round(ms * 1000) + " µs";
    if (ms < 10) return ms.toFixed(1) + " ms";
    return millis(ms);
  }
  function millis(ms) { return ms === null || ms === undefined ? "–" : ms < 1000 ? Math.round(ms) + " ms" : (ms / 1000).toFixed(2) + " s"; }
  function ago(iso, nowMs) {
    if (!iso) return "never";
    var s = (nowMs - Date.parse(iso)) / 1000;
    if (s < 1) return "just now";
    return seconds(s) + " ago";
  }
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function clock(iso, nowMs) {
    if (!iso) return "–";
    if (iso === "+infinity") return "end of input";
    var d = new Date(iso), n = new Date(nowMs);
    var t = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (d.toDateString() !== n.toDateString()) t = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + t;
    return t;
  }

  function rateOver(field) {
    // events/s over the last RATE_WINDOW_MS of snapshots (field: function(entry) -> number)
    if (history.length < 2) return null;
    var newest = history[history.length - 1], oldest = null;
    for (var i = history.length - 2; i >= 0; i--) {
      oldest = history[i];
      if (newest.t - history[i].t >= RATE_WINDOW_MS) break;
    }
    var a = field(oldest), b = field(newest), dt = (newest.t - oldest.t) / 1000;
    if (a === undefined || b === undefined || dt <= 0) return null;
    return Math.max(0, (b - a) / dt);
  }

  function sparkline() {
    var pts = [];
    for (var i = 1; i < history.length; i++) {
      var dt = (history[i].t - history[i - 1].t) / 1000;
      if (dt > 0) pts.push(Math.max(0, (history[i].total - history[i - 1].total) / dt));
    }
    pts = pts.slice(-SPARK_POINTS);
    var svg = $("spark");
    if (pts.length < 2) { svg.innerHTML = ""; return; }
    var peak = Math.max.apply(null, pts), max = peak * 1.15 || 1, w = 300, h = 40;
    var step = w / (Math.max(pts.length, 30) - 1); // a short history is drawn at its final scale from 30 points on
    var x0 = w - (pts.length - 1) * step, line = "";
    for (var j = 0; j < pts.length; j++) line += (j ? " L" : "M") + (x0 + j * step).toFixed(1) + " " + (h - 2 - (pts[j] / max) * (h - 6)).toFixed(1);
    var area = line + " L" + w + " " + h + " L" + x0.toFixed(1) + " " + h + " Z";
    svg.innerHTML = '<path d="' + area + '" fill="rgba(37,99,235,.12)" stroke="none"/>' +
      '<path d="' + line + '" fill="none" stroke="#2563eb" stroke-width="1.6" vector-effect="non-scaling-stroke" stroke-linejoin="round"/>' +
      '<title>events/s, last ' + pts.length + ' s (peak ' + compact(peak) + '/s)</title>';
    setText("rate-note", "5 s average · peak " + rate(peak) + " in the last " + seconds((history[history.length - 1].t - history[Math.max(0, history.length - 1 - pts.length)].t) / 1000));
  }

  function render(s) {
    var nowMs = Date.parse(s.now);
    var entry = { t: nowMs, total: s.eventsTotal, parts: {} };
    s.partitions.forEach(function (p) { entry.parts[p.topic + "/" + p.partition] = p.events; });
    var prev = history[history.length - 1];
    if (prev && (entry.total < prev.total || entry.t < prev.t)) history = []; // the engine restarted
    if (!prev || entry.t !== prev.t) history.push(entry);
    if (history.length > SPARK_POINTS + 10) history.shift();

    // watermark
    setText("watermark", clock(s.watermark, nowMs));
    $("watermark").title = s.watermark || "";
    var d = s.watermarkDelaySeconds, wd = $("watermark-delay");
    if (s.watermark === "+infinity") { wd.textContent = "input complete"; wd.className = "sub ok"; }
    else if (d === null) { wd.textContent = "no events yet"; wd.className = "sub"; }
    else { wd.textContent = seconds(d) + " behind the clock"; wd.className = "sub " + (d < 10 ? "ok" : d < 120 ? "warn" : "bad"); }

    var latest = s.partitions.reduce(function (m, p) { return p.maxEventTime && p.maxEventTime !== "+infinity" && (m === null || p.maxEventTime > m) ? p.maxEventTime : m; }, null);
    setText("latest-event", latest ? "latest event time " + clock(latest, nowMs) : "");

    // throughput and events
    setText("rate", rate(rateOver(function (e) { return e.total; })));
    sparkline();
    var et = $("events-total");
    setText("events-total", count(s.eventsTotal));
    et.setAttribute("data-value", String(s.eventsTotal));
    var topics = Object.keys(s.eventsByTopic).sort();
    setText("events-by-topic", topics.length ? topics.map(function (t) { return t + " " + count(s.eventsByTopic[t]); }).join("  ·  ") : "nothing read yet");

    // errors and late events
    function flag(id, n) { var el = $(id); el.textContent = count(n); el.className = n > 0 ? "warn" : ""; }
    flag("ingest-errors", s.ingestErrors);
    flag("late-clicks", s.lateEvents.clicks);
    flag("late-checkouts", s.lateEvents.checkouts);

    // keyed state
    setText("state-users", count(s.state.users));
    setText("state-clicks", count(s.state.clicksHeld));
    setText("state-pending", count(s.state.pendingCheckouts));
    setText("state-bytes", "≈ " + bytes(s.state.approxBytes));
    $("state-bytes-label").title = "estimate: " + s.state.approxBytesFormula;

    // sink
    setText("sink-rows", count(s.sink.rowsWritten));
    var lat = s.sink.recentBatchMs;
    setText("sink-latency", lat.count ? millis(lat.p50) + " / " + millis(lat.p95) : "–");
    $("sink-latency").title = lat.count ? "over the last " + lat.count + " batches; last " + millis(s.sink.lastBatchMs) + ", max " + millis(lat.max) : "";
    setText("sink-commit", ago(s.sink.lastCommitAt, nowMs));

    // process
    setText("uptime", s.startedAt ? seconds((nowMs - Date.parse(s.startedAt)) / 1000) : "–");
    setText("rss", s.process ? bytes(s.process.rssBytes) : "–");
    setText("heap", s.process ? bytes(s.process.heapUsedBytes) : "–");
    $("heap").title = s.process ? "of " + bytes(s.process.heapTotalBytes) + " allocated" : "";

    // the raw lake
    if (s.lake) {
      setText("lake-files", count(s.lake.files) + " · " + bytes(s.lake.bytes));
      setText("lake-rows", count(s.lake.rows));
      setText("lake-buffered", count(s.lake.buffered));
      setText("lake-age", s.lake.oldestBufferedAgeSeconds === null ? "none waiting" : seconds(s.lake.oldestBufferedAgeSeconds));
    }

    // the recommender
    var rc = s.recommendations;
    if (rc) {
      setText("recs-users", count(rc.users));
      setText("recs-rate", rate(rc.updatesPerSecond));
      $("recs-rate").title = count(rc.updates) + " updates since start";
      setText("recs-latency", rc.updateMs.p50 === null ? "–" : fine(rc.updateMs.p50) + " / " + fine(rc.updateMs.p99));
      setText("recs-products", count(rc.model.products));
      $("recs-products").title = count(rc.model.users) + " users, " + rc.tasks + (rc.tasks === 1 ? " task" : " tasks") + " held here";
      setText("recs-links", count(rc.model.neighbourLinks));
      setText("recs-lists", count(rc.listsWritten));
      $("recs-lists").title = count(rc.rowsWritten) + " rows" + (rc.lastWriteMs === null ? "" : "; the last write took " + millis(rc.lastWriteMs));
      setText("recs-snapshots", count(rc.snapshots.count) + " · " + bytes(rc.snapshots.bytes));
      setText("recs-snapshot-age", rc.snapshots.lastAgeSeconds === null ? "none yet" : rc.snapshots.lastAgeSeconds < 1 ? "just now" : seconds(rc.snapshots.lastAgeSeconds) + " ago");
      $("recs-snapshot-age").title = rc.snapshots.lastAt || "";
      flag("recs-failed", rc.failedWrites);
    } else setText("recs-users", "not running");

    // scheduled jobs
    $("jobs").innerHTML = s.scheduledJobs.length === 0 ? '<div class="empty">none yet</div>' :
      s.scheduledJobs.map(function (j) {
        return '<div class="job"><div class="job-name">' + esc(j.name) + '</div><div class="job-detail">' + esc((j.lastRunAt ? "ran " + ago(j.lastRunAt, nowMs) : "not run yet") +
          (j.lastResult ? " (" + j.lastResult + ")" : "") + (j.nextRunAt ? "; next " + j.nextRunAt : "")) + "</div></div>";
      }).join("");

    // partitions, with the task that owns them (task n: partition n of every topic)
    var tasks = {};
    (s.tasks || []).forEach(function (t) { tasks[t.id] = t; });
    var rows = s.partitions.map(function (p) {
      var id = p.topic + "/" + p.partition;
      var r = rateOver(function (e) { return e.parts[id]; });
      var t = p.task === null ? undefined : tasks[p.task];
      var owner = t && t.worker !== undefined && s.workers ? " · w" + esc(String(t.worker)) : "";
      return '<tr><td class="l">' + (t ? esc(String(t.id)) + " (" + esc(String(t.epoch)) + ")" + owner : "–") + "</td>" +
        '<td title="' + esc(t && t.watermark || "") + '">' + (t ? clock(t.watermark, nowMs) : "–") + "</td>" +
        '<td class="l">' + esc(p.topic) + " / " + p.partition + "</td>" +
        "<td>" + count(p.position) + "</td>" +
        "<td>" + (p.highWatermark === null ? "–" : count(p.highWatermark)) + "</td>" +
        '<td class="' + (p.lag > 1000 ? "warn" : "") + '">' + (p.lag === null ? "–" : count(p.lag)) + "</td>" +
        "<td>" + rate(r) + "</td>" +
        "<td>" + count(p.events) + "</td>" +
        '<td title="' + esc(p.maxEventTime || "") + '">' + clock(p.maxEventTime, nowMs) + "</td>" +
        "<td>" + ago(p.lastReadAt, nowMs) + "</td>" +
        '<td><span class="badge ' + (p.idle ? "idle" : "active") + '">' + (p.idle ? "idle" : "active") + "</span></td></tr>";
    });
    $("partitions").innerHTML = rows.length ? rows.join("") : '<tr><td class="l empty" colspan="11">no partitions assigned yet</td></tr>';

    // WORKERS=N: every member of the process, with the tasks it runs (task n: partition n of every topic)
    $("workers-section").hidden = !s.workers;
    if (s.workers) {
      $("workers-note").textContent = "(" + s.workers.length + " members of the consumer group in this process)";
      $("workers").innerHTML = s.workers.map(function (w) {
        var own = (s.tasks || []).filter(function (t) { return t.worker === w.index; }).map(function (t) { return t.id; });
        var parts = s.partitions.filter(function (p) { return own.indexOf(p.task) >= 0; });
        var events = parts.reduce(function (n, p) { return n + p.events; }, 0);
        var ids = parts.map(function (p) { return p.topic + "/" + p.partition; });
        var r = rateOver(function (e) { return ids.reduce(function (n, id) { return e.parts[id] === undefined ? n : n + e.parts[id]; }, 0); });
        return '<tr><td class="l">' + (w.index === 0 ? "0 (primary)" : esc(String(w.index))) + "</td>" +
          "<td>" + (w.pid === null ? "–" : esc(String(w.pid))) + "</td>" +
          '<td class="l"><span class="badge ' + (w.alive ? "active" : "idle") + '">' + (w.alive ? "running" : "starting again") + "</span></td>" +
          "<td>" + count(w.restarts) + "</td>" +
          '<td class="l">' + (own.length ? own.sort(function (a, b) { return a - b; }).join(", ") : "–") + "</td>" +
          "<td>" + parts.length + "</td>" +
          "<td>" + count(events) + "</td>" +
          "<td>" + rate(r) + "</td>" +
          "<td>" + ago(w.lastReportAt, nowMs) + "</td></tr>";
      }).join("");
    }

    // recent errors and late events, newest first
    var errs = s.recentErrors.slice(-6).reverse();
    setText("errors-note", s.recentErrors.length ? "(last " + errs.length + " of " + count(s.ingestErrors) + ")" : "");
    $("recent-errors").innerHTML = errs.length ? errs.map(function (e) {
      return '<li><span class="when">' + esc(ago(e.at, nowMs)) + '</span><span class="what">' + esc(e.topic) + " / " + e.partition + " @ " + e.offset +
        '</span><br><span class="why">' + esc(e.error) + "</span></li>";
    }).join("") : '<li class="empty">none</li>';
    var late = s.recentLateEvents.slice(-6).reverse();
    setText("late-note", s.recentLateEvents.length ? "(last " + late.length + ")" : "");
    $("recent-late").innerHTML = late.length ? late.map(function (e) {
      return '<li><span class="when">' + esc(ago(e.at, nowMs)) + '</span><span class="what">' + esc(e.topic) + " " + esc(e.id) +
        '</span><br><span class="why">event time ' + esc(e.eventTime) + ": " + esc(e.reason) + "</span></li>";
    }).join("") : '<li class="empty">none</li>';
  }

  function connection() {
    var wall = Date.now(), banner = $("banner"), conn = $("conn");
    var state, text = "";
    if (failure !== null && (last === null || wall - lastOkAt > POLL_MS * 1.5)) {
      state = "down";
      text = "Disconnected: cannot reach the engine (" + failure + ")" + (last ? "; the figures below are from " + seconds((wall - lastOkAt) / 1000) + " ago." : ".");
    } else if (last !== null && wall - lastNowChangeAt > STALE_MS) {
      state = "stale";
      text = "Stale: the engine's snapshot has not moved for " + seconds((wall - lastNowChangeAt) / 1000) + "; the figures below may be out of date.";
    } else state = last === null ? "wait" : "live";
    banner.className = "banner" + (state === "down" || state === "stale" ? " show " + state : "");
    banner.textContent = text;
    document.body.setAttribute("data-connection", state);
    conn.className = "pill " + state;
    conn.textContent = { live: "live", stale: "stale", down: "disconnected", wait: "connecting" }[state];
    setText("updated", last === null ? "waiting for the first snapshot…" : "engine clock " + clock(last.now, Date.parse(last.now)) + " · updated " + seconds((wall - lastOkAt) / 1000) + " ago");
  }

  // the business view: from the rollup, every 10 s (it changes once an hour)
  function money(v) { return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }); }
  function renderInsights(v) {
    var svg = $("revenue-bars");
    var hours = v.hours || [];
    if (hours.length === 0) { svg.innerHTML = ""; return; }
    var max = hours.reduce(function (m, h) { return Math.max(m, h.revenue); }, 0) || 1;
    var w = 480 / 24;
    svg.innerHTML = hours.map(function (h, i) {
      var x = (24 - hours.length + i) * w, bh = Math.max(1, (h.revenue / max) * 110);
      return '<rect x="' + (x + 1) + '" y="' + (118 - bh) + '" width="' + (w - 2) + '" height="' + bh + '"><title>' +
        esc(h.hour) + ": " + esc(money(h.revenue)) + " revenue, " + esc(count(h.paidCheckouts)) + " paid of " + esc(count(h.checkouts)) + "</title></rect>";
    }).join("");
    var total = hours.reduce(function (a, h) { return a + h.revenue; }, 0);
    var paid = hours.reduce(function (a, h) { return a + h.paidCheckouts; }, 0);
    setText("revenue-note", money(total) + " revenue · " + count(paid) + " paid checkouts · hours " + hours[0].hour.slice(0, 13).replace("T", " ") + "h to " + hours[hours.length - 1].hour.slice(11, 13) + "h UTC");
    $("top-sources").innerHTML = (v.topSources || []).map(function (t) {
      return '<tr><td class="l">' + esc(t.source) + "</td><td>" + esc(money(t.revenue)) + "</td><td>" + count(t.paidCheckouts) + "</td><td>" + count(t.checkouts) + "</td></tr>";
    }).join("") || '<tr><td class="l empty" colspan="4">no hour rolled yet</td></tr>';
  }
  function pollInsights() {
    fetch("/api/insights", { cache: "no-store" })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (v) { if (v) renderInsights(v); })
      .catch(function () {})
      .then(function () { setTimeout(pollInsights, 10000); });
  }
  pollInsights();

  // one user's list, on demand; every string from the answer goes in as a text node
  var lookupSeq = 0;
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function score(x) { return typeof x !== "number" ? "–" : Math.abs(x) >= 1000 ? compact(x) : x.toFixed(Math.abs(x) >= 10 ? 1 : 3); }
  function showRecommendations(id) {
    var seq = ++lookupSeq, note = $("recs-note"), table = $("recs-list"), items = $("recs-items");
    note.textContent = "loading…";
    note.className = "sub";
    fetch("/api/users/" + encodeURIComponent(id) + "/recommendations", { cache: "no-store" })
      .then(function (res) {
        return res.json().catch(function () { return null; }).then(function (b) {
          if (!res.ok) throw new Error((b && typeof b.error === "string" && b.error) || "HTTP " + res.status);
          return b;
        });
      })
      .then(function (b) {
        if (seq !== lookupSeq) return; // a newer lookup was started
        var list = (b && b.items) || [], rows = [];
        list.forEach(function (it, i) {
          var tr = document.createElement("tr");
          cell(tr, String(i + 1));
          var product = cell(tr, it.name === null || it.name === undefined ? String(it.product_id) : String(it.name), "l");
          if (it.name !== null && it.name !== undefined) {
            var pid = document.createElement("span");
            pid.className = "pid";
            pid.textContent = String(it.product_id);
            product.appendChild(pid);
          }
          cell(tr, it.category === null || it.category === undefined ? "–" : String(it.category), "l opt");
          cell(tr, it.brand === null || it.brand === undefined ? "–" : String(it.brand), "l opt");
          cell(tr, typeof it.price === "number" ? money(it.price) : "–");
          cell(tr, score(it.score));
          rows.push(tr);
        });
        items.replaceChildren.apply(items, rows);
        table.hidden = rows.length === 0;
        var nowMs = last ? Date.parse(last.now) : Date.now();
        note.textContent = (b.personalized ? "personalized for " + b.user_id + (b.updated_at ? " · updated " + clock(b.updated_at, nowMs) + " (" + ago(b.updated_at, nowMs) + ")" : "")
          : "no events from " + b.user_id + " here: the most popular products") + (rows.length === 0 ? " · no products to recommend" : "");
        note.className = "sub";
      })
      .catch(function (e) {
        if (seq !== lookupSeq) return;
        items.replaceChildren();
        table.hidden = true;
        note.textContent = "cannot show the list: " + ((e && e.message) || "request failed");
        note.className = "sub bad";
      });
  }
  $("recs-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var id = $("recs-user").value.trim();
    if (id === "") { $("recs-note").textContent = "type a user id first"; $("recs-note").className = "sub warn"; return; }
    showRecommendations(id);
  });

  function poll() {
    var ctl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctl) ctl.abort(); }, TIMEOUT_MS);
    fetch("/api/status", { cache: "no-store", signal: ctl ? ctl.signal : undefined })
      .then(function (res) { if (!res.ok) throw new Error("HTTP " + res.status); return res.json(); })
      .then(function (s) {
        var wall = Date.now();
        if (last === null || s.now !== last.now) lastNowChangeAt = wall;
        last = s; lastOkAt = wall; failure = null;
        render(s);
      })
      .catch(function (e) { failure = e && e.name === "AbortError" ? "timed out" : (e && e.message) || "request failed"; })
      .then(function () { clearTimeout(timer); connection(); setTimeout(poll, POLL_MS); });
  }

  setInterval(connection, 500);
  poll();
})();
`

export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Insights Engine · status</title>
<link rel="icon" href="data:,">
<style>${css}</style>
</head>
<body data-connection="wait">
${body}
<script>${script}</script>
</body>
</html>
`
