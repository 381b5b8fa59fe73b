/**
 * The sink ceiling: the PostgreSQL write path alone, as the daemon calls it. Rows of
 * `checkout_attribution`'s shape are made beforehand the way the daemon makes them (the
 * simulator's checkouts joined with their user's earlier click of the product, enriched by
 * `toRows` with the catalog), then written by `PgSink.make(...).write` in batches of the
 * daemon's SINK_FLUSH_ROWS, each with its task's positions and claim (fence check, upserts,
 * rollup marks, positions: one transaction), by as many writers as the daemon runs workers,
 * concurrently, each for its own task. rows ÷ time from the first write to the last commit.
 */
import { Effect } from "effect"
import type { AttributionRow, Sourced } from "../domain/Rows.ts"
import { decodeCheckout, decodeClick, isDecodeFailure } from "../domain/Events.ts"
import type { Envelope } from "../engine/Source.ts"
import type { TaskPosition } from "../engine/Topology.ts"
import { makeProducts, makeUsers } from "../generator/Catalog.ts"
import { defaultData } from "../generator/writeData.ts"
import type { AttributionOutput, CheckoutElement, ClickElement } from "../jobs/Attribution.ts"
import { toRows } from "../jobs/AttributionRows.ts"
import * as Attribution from "../jobs/Attribution.ts"
import * as Database from "../sinks/Database.ts"
import * as PgSink from "../sinks/PgSink.ts"
import * as TaskOwnership from "../sinks/TaskOwnership.ts"
import { log, rate } from "./Common.ts"
import { simulator } from "./Produce.ts"
import type { ScratchDatabase } from "./Scratch.ts"

export interface SinkCeiling {
  readonly rows_per_s: number
  readonly rows: number
  readonly writers: number
  readonly batch_rows: number
  readonly seconds: number
}

const SOURCE = "kafka:insights-bench-sink"

/** `count` attribution rows as the daemon's attribution job would write them. */
export const makeRows = (count: number): Array<Sourced<AttributionRow>> => {
  const users = makeUsers(defaultData.userSeed, defaultData.userCount)
  const products = makeProducts(defaultData.productSeed, defaultData.productCount)
  const userDims = new Map(users.map((u) => [u.user_id, { user_id: u.user_id, gender: u.gender }]))
  const productDims = new Map(products.map((p) => [p.product_id, {
    product_id: p.product_id, name: p.product_name, category: p.category, brand: p.brand, price: p.price.toFixed(2), commission_rate: String(p.commission_rate)
  }]))
  const sim = simulator(5)
  const clicks = new Map<string, ClickElement>()
  const outputs: Array<AttributionOutput> = []
  const start = Date.parse("2026-11-01T00:00:00Z")
  for (let i = 0, offset = 0; outputs.length < count; i++) {
    const m = sim.next(start + i * 5)
    if (m.topic === "clicks") {
      const c = decodeClick(m.value)
      if (isDecodeFailure(c)) continue
      const key = `${c.userId}\u0000${c.productId}`
      if (!clicks.has(key)) clicks.set(key, { id: c.clickId, ts: c.ts, matchKey: c.productId, source: c.source })
      continue
    }
    const k = decodeCheckout(m.value)
    if (isDecodeFailure(k)) continue
    const message: Envelope = { topic: "checkouts", partition: 0, offset: offset++, key: m.key, value: m.value }
    const probe: CheckoutElement = { id: k.checkoutId, ts: k.ts, matchKey: k.productId, checkout: k, message }
    outputs.push({ _tag: "Joined", probe, match: clicks.get(`${k.userId}\u0000${k.productId}`), late: false, watermark: k.ts - 15_000 })
  }
  return toRows(outputs, [], { user: (id) => userDims.get(id), product: (id) => productDims.get(id) }, Date.now(), () => SOURCE).attribution
}

export const measureSinkCeiling = async (db: ScratchDatabase, rowCount: number, writers: number, batchRows: number): Promise<SinkCeiling> => {
  const rows = makeRows(rowCount)
  // writer w writes every writers-th batch, for its own task w
  const batches: Array<Array<Array<Sourced<AttributionRow>>>> = Array.from({ length: writers }, () => [])
  for (let b = 0, i = 0; i < rows.length; b++, i += batchRows) batches[b % writers]!.push(rows.slice(i, i + batchRows))
  const program = Effect.gen(function*() {
    const sink = yield* PgSink.make({ sourceName: SOURCE, job: Attribution.JOB })
    const claims = yield* (yield* TaskOwnership.make(SOURCE)).claim(Array.from({ length: writers }, (_, w) => w))
    const started = performance.now()
    yield* Effect.forEach(batches, (mine, w) => Effect.gen(function*() {
      const claim = claims.find((c) => c.task === w)!
      let offset = 0
      for (const batch of mine) {
        offset += batch.length * 10 // as if a checkout came every ten messages
        const position = (topic: string): TaskPosition => ({
          topic, partition: w, nextOffset: offset, restartOffset: Math.max(0, offset - 50_000), maxEventTime: Date.parse(batch[batch.length - 1]!.row.checkout_timestamp),
          task: w, epoch: claim.epoch, watermark: Date.parse(batch[0]!.row.checkout_timestamp)
        })
        const result = yield* sink.write({ attribution: batch, late: [], errors: [], positions: [position("clicks"), position("checkouts")], claims: [claim] })
        if (result.fenced.length > 0) return yield* Effect.die(new Error(`the sink ceiling's writer ${w} was fenced`))
      }
    }), { concurrency: writers, discard: true })
    return performance.now() - started
  })
  const ms = await Effect.runPromise(program.pipe(Effect.provide(Database.clientLayer(db.url, writers + 1)), Effect.scoped))
  log(`sink ceiling, ${writers} writers: ${rate(rows.length, ms)} rows/s`)
  return { rows_per_s: rate(rows.length, ms), rows: rows.length, writers, batch_rows: batchRows, seconds: Math.round(ms) / 1000 }
}
