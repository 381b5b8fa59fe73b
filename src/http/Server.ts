/**
 * The HTTP surface of the running job on `HTTP_PORT`: health, readiness and the status JSON.
 * Served by Effect's HTTP router on Node's http server, in the job's process and scope.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Clock, Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import type { RunnerStats } from "../engine/RunnerStats.ts"
import { Health } from "./Health.ts"
import { statusSnapshot } from "./Status.ts"

export const routes = (stats: RunnerStats) =>
  Layer.mergeAll(
    HttpRouter.add("GET", "/healthz", HttpServerResponse.json({ status: "ok" })),
    HttpRouter.add("GET", "/readyz", Effect.gen(function*() {
      const health = yield* Health
      const r = yield* health.readiness
      return yield* HttpServerResponse.json(r, { status: r.ready ? 200 : 503 })
    })),
    HttpRouter.add("GET", "/api/status", Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      return yield* HttpServerResponse.json(statusSnapshot(stats, now))
    }))
  )

export const layer = (port: number, stats: RunnerStats) =>
  HttpRouter.serve(routes(stats)).pipe(Layer.provide(NodeHttpServer.layer(createServer, { port, host: "0.0.0.0" })))
