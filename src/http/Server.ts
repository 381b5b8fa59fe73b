/**
 * The HTTP surface of the running job on `HTTP_PORT` (SPEC §8): the status page (`/`) and its
 * JSON (`/api/status`), Prometheus text (`/metrics`), liveness (`/healthz`), readiness
 * (`/readyz`) and the recommendations API. Served by Effect's HTTP router on Node's http
 * server, in the job's process and scope: it stops when the job does.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Clock, Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import type { EngineStats } from "../engine/EngineStats.ts"
import { Health } from "./Health.ts"
import { Insights } from "./Insights.ts"
import * as Metrics from "./Metrics.ts"
import * as Recommendations from "./Recommendations.ts"
import { statusSnapshot } from "./Status.ts"
import { mergeMetrics, mergeStatus, type WorkerView } from "../Workers.ts"
import * as StatusPage from "./StatusPage.ts"

const noStore = { "cache-control": "no-store" }

/** When this process started, Unix ms (Node's time origin, not a clock read). */
const processStartedAt = (): number => Math.round(performance.timeOrigin)

/** What this process reports of itself: its status JSON and its Prometheus text (a worker sends both to the primary). */
export const selfReport = (stats: EngineStats) => {
  const startedAt = processStartedAt()
  const probe = Metrics.nodeProcess(startedAt)
  const scraper = Metrics.make(stats, probe)
  const info = { startedAt, memory: probe.memory }
  return {
    status: (now: number) => statusSnapshot(stats, now, info),
    metrics: (now: number) => scraper.format(now)
  }
}

/** `workers`: the other members of this process (`WORKERS=N`), whose reports are shown with its own. */
export const routes = (stats: EngineStats, workers?: () => ReadonlyArray<WorkerView>) =>
  Layer.unwrap(Effect.sync(() => {
    const self = selfReport(stats)
    return Layer.mergeAll(
      HttpRouter.add("GET", "/", HttpServerResponse.html(StatusPage.html).pipe(HttpServerResponse.setHeaders(noStore))),
      HttpRouter.add("GET", "/api/status", Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const own = self.status(now)
        return yield* HttpServerResponse.json(workers === undefined ? own : mergeStatus(own, workers()), { headers: noStore })
      })),
      HttpRouter.add("GET", "/metrics", Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const own = yield* self.metrics(now)
        const text = workers === undefined ? own : mergeMetrics([
          { worker: 0, text: own },
          ...workers().flatMap((w) => w.report === undefined ? [] : [{ worker: w.index, text: w.report.metrics }])
        ])
        return HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
      })),
      HttpRouter.add("GET", "/api/insights", Effect.gen(function*() {
        const insights = yield* Insights
        return yield* insights.lastDay.pipe(
          Effect.flatMap((view) => HttpServerResponse.json(view, { headers: noStore })),
          Effect.catch((error) => HttpServerResponse.json({ error }, { status: 503, headers: noStore }))
        )
      })),
      HttpRouter.add("GET", "/healthz", HttpServerResponse.json({ status: "ok" })),
      HttpRouter.add("GET", "/readyz", Effect.gen(function*() {
        const health = yield* Health
        const r = yield* health.readiness
        return yield* HttpServerResponse.json(r, { status: r.ready ? 200 : 503, headers: noStore })
      })),
      HttpRouter.add("GET", "/api/users/:userId/recommendations", Recommendations.handler)
    )
  }))

/**
 * Node's limits on a request: headers within 5 s, the whole request within 10 s, headers of at
 * most 16 KiB, an idle kept-alive connection closed after 5 s (checked every second). No
 * route reads a body (every route is a GET), so none is ever buffered.
 */
export const serverLimits = { headersTimeout: 5_000, requestTimeout: 10_000, maxHeaderSize: 16_384, keepAliveTimeout: 5_000, connectionsCheckingInterval: 1_000 } as const

/** The server on `port` (all interfaces); the status page polls once a second, so requests are not logged. */
export const layer = (port: number, stats: EngineStats, workers?: () => ReadonlyArray<WorkerView>) =>
  // path parameters as long as a request line may be: the handlers judge them (a user id over
  // 256 characters is a 400 with a reason, not the router's 404)
  HttpRouter.serve(routes(stats, workers), { disableLogger: true, routerConfig: { maxParamLength: 16_384 } }).pipe(
    Layer.provide(NodeHttpServer.layer(() => createServer(serverLimits), { port, host: "0.0.0.0" }))
  )
