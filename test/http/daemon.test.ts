/**
 * The daemon's HTTP surface end to end: `node dist/main.js` as a child process on a fresh
 * database, reached through a TCP proxy the test can cut. Checks `/metrics` with three
 * parsers, the recommendations API, readiness through a database outage, and a clean exit on
 * SIGTERM. Without PostgreSQL the file is skipped on a laptop and fails under `CI=true`.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as net from "node:net"
import { adminUrl, createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import { type Daemon, sleep, startDaemon, waitFor } from "./Daemon.ts"
import { checkExposition, parseFamilies, promtool, valueOf } from "./PromText.ts"
import { startTcpProxy, type TcpProxy } from "./TcpProxy.ts"

const available = await postgresAvailable()

/** the daemon's resident memory, from its status JSON */
let statusRss: () => Promise<number>

const readyz = async (d: Daemon) => {
  const res = await d.get("/readyz", 10_000)
  return { status: res.status, body: await res.json() as { ready: boolean; checks: Record<string, { ok: boolean; detail?: string }> } }
}

describe.skipIf(!available)("daemon HTTP surface", () => {
  let db: { readonly url: string; readonly name: string }
  let proxy: TcpProxy
  let daemon: Daemon

  beforeAll(async () => {
    db = await createDatabase("insights_http")
    const target = new URL(adminUrl)
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
    const viaProxy = new URL(db.url)
    viaProxy.hostname = "127.0.0.1"
    viaProxy.port = String(proxy.port)
    daemon = await startDaemon({ DATABASE_URL: viaProxy.toString() })
    statusRss = async () => ((await (await daemon.get("/api/status")).json()) as { process: { rssBytes: number } }).process.rssBytes
  })

  afterAll(async () => {
    await daemon?.kill()
    await proxy?.close()
    if (db !== undefined) await dropDatabase(db.name)
  })

  it("/healthz answers while the process runs", async () => {
    const res = await daemon.get("/healthz")
    assert.strictEqual(res.status, 200)
    assert.deepStrictEqual(await res.json(), { status: "ok" })
  })

  it("/metrics is valid Prometheus text whose counters grow under load", async () => {
    const scrape = async () => {
      const res = await daemon.get("/metrics")
      assert.strictEqual(res.status, 200)
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/)
      return res.text()
    }
    // wait until the sink has committed and there is a watermark (once every partition has had an event), so every family has something to say
    const first = await waitFor("a first sink commit and a watermark", async () => {
      const e = checkExposition(await scrape())
      return (valueOf(e, "insights_sink_batches_total") ?? 0) > 0 && valueOf(e, "insights_watermark_delay_seconds") !== undefined ? e : undefined
    }, 45_000).catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon output ---\n${daemon.output()}`) })
    await sleep(2_500)
    const second = await scrape()

    for (const text of [first.text, second]) {
      const e = checkExposition(text)
      assert.deepStrictEqual(e.problems, [], "every line valid")
      const families = parseFamilies(text) // throws on a line it cannot read
      assert.isAtLeast(families.length, 8)
      const lint = promtool(text)
      if (lint !== undefined) assert.deepStrictEqual(lint, [], "promtool check metrics")
    }
    const a = first
    const b = checkExposition(second)
    const names = new Set(b.types.keys())
    for (
      const name of [
        "insights_events_in_total", "insights_ingest_errors_total", "insights_late_events_total", "insights_watermark_delay_seconds",
        "insights_partition_lag_messages", "insights_state_users", "insights_state_clicks_held", "insights_state_pending_checkouts",
        "insights_sink_rows_total", "insights_sink_batch_duration_seconds", "process_resident_memory_bytes", "nodejs_heap_size_used_bytes",
        "insights_recommendation_users", "insights_recommendation_updates_total", "insights_recommendation_update_seconds",
        "insights_recommendation_model_products", "insights_recommendation_model_neighbour_links", "insights_recommendation_lists_written_total",
        "insights_recommendation_snapshots_total", "insights_recommendation_snapshot_bytes_total", "insights_recommendation_failed_writes_total"
      ]
    ) assert.isTrue(names.has(name), `${name} is exported`)
    assert.strictEqual(b.types.get("insights_sink_batch_duration_seconds"), "histogram")

    const grew = (name: string, labels: Record<string, string> = {}) => {
      const before = valueOf(a, name, labels)
      const after = valueOf(b, name, labels)
      assert.isDefined(after, `${name} present`)
      assert.isAbove(after!, before ?? 0, `${name}${JSON.stringify(labels)} grew from ${before} to ${after}`)
    }
    grew("insights_events_in_total", { topic: "clicks" })
    grew("insights_sink_batches_total")
    grew("insights_sink_batch_duration_seconds_count")
    grew("process_cpu_seconds_total")
    grew("insights_recommendation_updates_total")
    assert.isAbove(valueOf(b, "insights_recommendation_users")!, 0)
    assert.isAbove(valueOf(b, "insights_recommendation_model_products")!, 0)
    const p50 = valueOf(b, "insights_recommendation_update_seconds", { quantile: "0.5" })!
    const p99 = valueOf(b, "insights_recommendation_update_seconds", { quantile: "0.99" })!
    assert.isAbove(p50, 0)
    assert.isAtLeast(p99, p50)
    assert.isBelow(p99, 1, "one model update takes well under a second")
    assert.strictEqual(valueOf(b, "insights_recommendation_failed_writes_total"), 0)
    // 200 msg/s for 2.5 s: roughly 500 more messages
    const added = (valueOf(b, "insights_events_in_total", { topic: "clicks" })! + (valueOf(b, "insights_events_in_total", { topic: "checkouts" }) ?? 0)) -
      (valueOf(a, "insights_events_in_total", { topic: "clicks" })! + (valueOf(a, "insights_events_in_total", { topic: "checkouts" }) ?? 0))
    assert.isAbove(added, 200)
    assert.isBelow(added, 2_000)
    assert.isAbove(valueOf(b, "process_resident_memory_bytes")!, 10_000_000)
    const delay = valueOf(b, "insights_watermark_delay_seconds")!
    assert.isAbove(delay, 0)
    assert.isBelow(delay, 30)
  })

  it("the status JSON carries what the page shows", async () => {
    const res = await daemon.get("/api/status")
    assert.strictEqual(res.status, 200)
    assert.strictEqual(res.headers.get("cache-control"), "no-store")
    const s = await res.json() as Record<string, any>
    assert.isAbove(s["eventsTotal"], 0)
    assert.isAtLeast(s["partitions"].length, 2)
    assert.isNumber(s["state"]["approxBytes"])
    // the midnight export's schedule: on a fresh database nothing is due yet; it fires next at 00:01 UTC
    const jobs = s["scheduledJobs"] as Array<Record<string, unknown>>
    assert.deepStrictEqual(jobs.filter((j) => j["name"] === "midnight-export").map((j): Record<string, unknown> => ({ ...j, nextRunAt: String(j["nextRunAt"]).slice(10) })), [
      { name: "midnight-export", lastRunAt: null, lastResult: null, nextRunAt: "T00:01:00.000Z" }
    ])
    // the hourly rollup runs every ROLLUP_EVERY_MS; it has run at least once since start
    const rollup = jobs.find((j) => j["name"] === "hourly-rollup")
    assert.isString(rollup?.["lastRunAt"])
    assert.isString(rollup?.["lastResult"])
    assert.isNumber(s["process"]["rssBytes"])
    // the recommender: users with lists, update rate and latency, model size, what its sink wrote
    const recs = s["recommendations"]
    assert.deepStrictEqual(Object.keys(recs).sort(), [
      "failedWrites", "lastWriteMs", "listsWritten", "model", "rowsWritten", "snapshots", "tasks", "updateMs", "updates", "updatesPerSecond", "users"
    ])
    assert.isAbove(recs["users"], 0)
    assert.isAbove(recs["updates"], 0)
    assert.isAbove(recs["updatesPerSecond"], 0)
    assert.isAbove(recs["updateMs"]["p50"], 0)
    assert.isAtLeast(recs["updateMs"]["p99"], recs["updateMs"]["p50"])
    assert.isAbove(recs["model"]["products"], 0)
    assert.strictEqual(recs["model"]["users"], recs["users"])
    assert.isAbove(recs["listsWritten"], 0, "lists reach the table within RECS_WRITE_MS")
    assert.isAtLeast(recs["rowsWritten"], recs["listsWritten"])
    assert.deepStrictEqual(Object.keys(recs["snapshots"]).sort(), ["bytes", "count", "lastAgeSeconds", "lastAt"])
    assert.strictEqual(recs["failedWrites"], 0)
    const page = await daemon.get("/")
    assert.strictEqual(page.status, 200)
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/)
    const html = await page.text()
    assert.include(html, "/api/status")
    assert.notMatch(html, /<(script|link)[^>]+(src|href)="(https?:)?\/\//, "nothing loaded from elsewhere")
  })

  it("recommendations: the SPEC §7 shape; a user with no events (known or not) gets the popularity list; 400 for an id over 256 characters", async () => {
    const [user] = await query<{ user_id: string }>(db.url, "SELECT user_id FROM shop.users ORDER BY user_id LIMIT 1")
    assert.isDefined(user, "users are loaded at first start")
    for (const id of ["no-such-user", "x' OR '1'='1", "%", "a".repeat(256)]) {
      const res = await daemon.get(`/api/users/${encodeURIComponent(id)}/recommendations`)
      assert.strictEqual(res.status, 200, id)
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/)
      const body = await res.json() as { user_id: string; personalized: boolean; updated_at: string | null; items: Array<Record<string, unknown>> }
      assert.deepStrictEqual(Object.keys(body).sort(), ["items", "personalized", "updated_at", "user_id"])
      assert.strictEqual(body.user_id, id)
      assert.isFalse(body.personalized)
      assert.isNull(body.updated_at)
      assert.isAtMost(body.items.length, 10)
      for (const item of body.items) assert.deepStrictEqual(Object.keys(item).sort(), ["brand", "category", "name", "price", "product_id", "score"])
    }
    const long = await daemon.get(`/api/users/${"a".repeat(257)}/recommendations`)
    assert.strictEqual(long.status, 400)
    assert.match((await long.json() as { error: string }).error, /at most 256/)
  })

  it("request limits: headers that never end are cut off, an oversized header gets 431, a large body is never read", async () => {
    const { hostname, port } = new URL(daemon.baseUrl)
    // a client that sends half a request line and waits (slow loris): closed within headersTimeout (5 s) + the 1 s check
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const started = performance.now()
      const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
      socket.on("data", () => {}) // read the 408: a paused socket would never see its end
      socket.on("error", () => {})
      socket.on("close", () => resolve(performance.now() - started))
      setTimeout(() => reject(new Error("the half-sent request was never cut off")), 15_000)
    })
    assert.isBelow(closedAfter, 8_000)
    const big = await daemon.get("/healthz", 5_000).then(() => undefined) // still serving
    assert.isUndefined(big)
    const oversized = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`))
      let data = ""
      socket.on("data", (d) => { data += d.toString() })
      socket.on("error", () => {})
      socket.on("close", () => resolve(data))
    })
    assert.match(oversized, /^HTTP\/1\.1 431/)
    // 20 MB posted: answered (no such route) without the process reading it into memory
    const rssBefore = await statusRss()
    const res = await fetch(`${daemon.baseUrl}/api/status`, { method: "POST", body: new Uint8Array(20 * 2 ** 20), signal: AbortSignal.timeout(10_000) }).catch((e) => e as Error)
    if (res instanceof Response) assert.notStrictEqual(res.status, 200)
    const rssAfter = await statusRss()
    assert.isBelow(rssAfter - rssBefore, 15 * 2 ** 20, "the body was not buffered")
  })

  it("/readyz goes 503 with the reason while the database is cut off, and 200 once it is back", async () => {
    const before = await readyz(daemon)
    assert.strictEqual(before.status, 200)
    assert.deepStrictEqual(before.body.checks["database"], { ok: true })

    await proxy.cut() // every connection reset, new ones refused
    const down = await waitFor("/readyz 503", async () => {
      const r = await readyz(daemon)
      return r.status === 503 ? r : undefined
    }, 10_000).catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon ---\n${daemon.output().slice(-3_000)}`) })
    assert.isFalse(down.body.ready)
    assert.isFalse(down.body.checks["database"]!.ok)
    assert.match(down.body.checks["database"]!.detail ?? "", /database unreachable/)
    assert.strictEqual((await daemon.get("/healthz")).status, 200, "still alive")
    assert.strictEqual((await daemon.get("/metrics")).status, 200, "metrics need no database")
    const rec = await daemon.get("/api/users/100001/recommendations")
    assert.strictEqual(rec.status, 200, "recommendations are answered from memory while the database is away")
    await sleep(1_000)
    assert.strictEqual((await readyz(daemon)).status, 503, "stays 503 while the database is away")

    await proxy.restore()
    const up = await waitFor("/readyz 200 again", async () => {
      const r = await readyz(daemon)
      return r.status === 200 ? r : undefined
    }, 15_000)
    assert.isTrue(up.body.ready)

    // and a database that is gone for good
    await dropDatabase(db.name)
    const gone = await waitFor("/readyz 503 after DROP DATABASE", async () => {
      const r = await readyz(daemon)
      return r.status === 503 ? r : undefined
    }, 10_000)
    assert.isFalse(gone.body.checks["database"]!.ok)
  })
})

describe.skipIf(!available)("daemon shutdown", () => {
  let db: { readonly url: string; readonly name: string }
  let daemon: Daemon | undefined

  beforeAll(async () => {
    db = await createDatabase("insights_http_stop")
  })
  afterAll(async () => {
    await daemon?.kill()
    if (db !== undefined) await dropDatabase(db.name)
  })

  it("exits 0 within 10 s of SIGTERM, with work in flight", async () => {
    daemon = await startDaemon({ DATABASE_URL: db.url, GENERATOR_RATE: "2000" })
    const d = daemon
    await waitFor("rows written", async () => {
      const s = await (await d.get("/api/status")).json() as { sink: { batches: number } }
      return s.sink.batches > 2 ? true : undefined
    })
    const started = performance.now()
    d.child.kill("SIGTERM")
    const exit = await Promise.race([d.exited, sleep(10_000).then(() => undefined)])
    const seconds = (performance.now() - started) / 1000
    assert.isDefined(exit, `still running 10 s after SIGTERM\n${d.output()}`)
    assert.deepStrictEqual(exit, { code: 0, signal: null }, d.output())
    assert.isBelow(seconds, 10)
    await d.get("/healthz", 1_000).then(
      () => assert.fail("the HTTP server still answers after exit"),
      () => undefined
    )
    // what was read before the signal was committed: positions are in the database
    const [row] = await query<{ n: number }>(db.url, "SELECT count(*)::int AS n FROM shop.source_positions")
    assert.isAbove(row!.n, 0)
  })
})
