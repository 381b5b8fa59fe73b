/**
 * Writes raw events to Parquet with DuckDB (an embedded, well-kept engine; never a
 * hand-written encoder). A batch comes as JSON records (`JsonLines`: `{"o":offset,"t":time,
 * "v":<the event's JSON>}` a line), handed to DuckDB's own thread (ParquetThread.ts), which
 * writes them as they are next to the target and reads them with `read_json` (the event's
 * JSON parsed once, straight into a typed STRUCT: multi-line JSON is fine) into
 * `COPY … TO … (FORMAT parquet)`. Measured cheapest from JavaScript: a copy of the message's
 * bytes per event, against ~1.3 µs for DuckDB's appender.
 *
 * Columns (SPEC §1 and §6): the event's fields under their input names, typed: ids and other
 * text as VARCHAR (a JSON integer id as its decimal string), `quantity` INTEGER,
 * `shipping_cost` DECIMAL(12,2), `discount` DOUBLE, the event time as TIMESTAMP WITH TIME
 * ZONE (UTC), then `partition` INTEGER and `offset` BIGINT. `dt` and `hour` are the folders.
 */
import { Data, Effect, Semaphore } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { Worker } from "node:worker_threads"
import type { RawEventRow } from "../domain/Rows.ts"
import type { JsonLines } from "./JsonLines.ts"
import type { Reply, Request } from "./ParquetThread.ts"

export class LakeError extends Data.TaggedError("LakeError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

const STRUCT: Record<RawEventRow["kind"], string> = {
  click: "STRUCT(click_id VARCHAR, user_id VARCHAR, product_id VARCHAR, source VARCHAR, event_type VARCHAR, user_agent VARCHAR, ip_address VARCHAR)",
  checkout: "STRUCT(checkout_id VARCHAR, user_id VARCHAR, product_id VARCHAR, quantity DOUBLE, shipping_cost DOUBLE, discount DOUBLE, " +
    "payment_method VARCHAR, payment_status VARCHAR, payment_description VARCHAR, shipping_address VARCHAR)"
}

const PROJECTION: Record<RawEventRow["kind"], string> = {
  click: "v.click_id, v.user_id, v.product_id, v.source, coalesce(v.event_type, 'click') AS event_type, v.user_agent, v.ip_address, " +
    "CAST(epoch_ms(CAST(t AS BIGINT)) AS TIMESTAMPTZ) AS click_timestamp",
  checkout: "v.checkout_id, v.user_id, v.product_id, CAST(v.quantity AS INTEGER) AS quantity, CAST(v.shipping_cost AS DECIMAL(12,2)) AS shipping_cost, " +
    "v.discount, v.payment_method, v.payment_status, v.payment_description, v.shipping_address, " +
    "CAST(epoch_ms(CAST(t AS BIGINT)) AS TIMESTAMPTZ) AS checkout_timestamp"
}

/**
 * Rows per Parquet row group. DuckDB holds a row group in memory until it is written, and its
 * allocator keeps what it freed: at the default (122 880) a process writing 100 k-row flushes
 * kept ~300 MB more RSS; at 30 000, ~180 MB, at the same speed (measured over 30 flushes).
 */
const ROW_GROUP_ROWS = 30_000

const quote = (path: string) => `'${path.replaceAll("'", "''")}'`

export interface ParquetWriter {
  /** Writes `rows` (all of one kind and one partition) to a Parquet file at `path` (and a scratch file beside it). */
  readonly write: (kind: RawEventRow["kind"], partition: number, rows: JsonLines, path: string) => Effect.Effect<void, LakeError>
  /**
   * From now on DuckDB may use every core: for the last flush, when the engine's thread has
   * nothing left to do (the end of a replay, a stop) and only the files are waited for.
   */
  readonly useAllCores: Effect.Effect<void, LakeError>
  /** Opens DuckDB now rather than at the first write (a benchmark's set-up, kept out of what it times). */
  readonly open: Effect.Effect<void, LakeError>
}

/**
 * Where the thread's module is: beside this one (the sources, tsc's output), or under
 * `sinks/` from a bundle's entry (`dist/main.js`) or chunk (`dist/chunks/`), which tsc's
 * output sits beside.
 */
const threadEntry = (): URL => {
  const own = import.meta.url.endsWith(".ts") ? "./ParquetThread.ts" : "./ParquetThread.js"
  const candidates = [own, "./sinks/ParquetThread.js", "../sinks/ParquetThread.js"].map((c) => new URL(c, import.meta.url))
  return candidates.find((c) => fs.existsSync(c)) ?? candidates[0]!
}

/**
 * An in-memory DuckDB on a thread of its own (ParquetThread.ts) for the scope's life, started
 * at the first write; writes run one at a time. Started late because loading DuckDB is ~60 ms
 * of the start's critical path (measured), before the first event, and the first file is due
 * minutes later. A thread or a DuckDB that cannot start (or a thread that dies) fails that
 * write (its events stay buffered) and is started again at the next.
 */
export const make: Effect.Effect<ParquetWriter, LakeError, Scope.Scope> = Effect.suspend(() => makeAt(threadEntry))

/** The writer with its thread's module at `entry` (a test gives one that fails). */
export const makeAt = (entry: () => URL): Effect.Effect<ParquetWriter, LakeError, Scope.Scope> => Effect.gen(function*() {
  let threads = 1
  let thread: Worker | undefined
  let nextId = 0
  /** DuckDB opened (or opening) on the current thread */
  let opened: Promise<void> | undefined
  const waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>()
  const lost = (worker: Worker, why: string) => {
    if (thread !== worker) return
    thread = undefined
    opened = undefined
    for (const w of waiting.values()) w.reject(new Error(why))
    waiting.clear()
  }
  const start = (): Worker => {
    if (thread !== undefined) return thread
    const worker = new Worker(entry(), { name: "lake-duckdb" })
    // an idle thread does not keep the process alive; one with a write to answer does, by
    // itself, whatever else holds the event loop
    worker.unref()
    worker.on("message", (reply: Reply) => {
      const w = waiting.get(reply.id)
      waiting.delete(reply.id)
      if (waiting.size === 0) worker.unref()
      if (reply.error === undefined) w?.resolve()
      else w?.reject(new Error(reply.error))
    })
    worker.on("error", (cause: unknown) => lost(worker, `the lake's DuckDB thread failed: ${(cause as Error)?.message ?? String(cause)}`))
    worker.on("exit", (code) => lost(worker, `the lake's DuckDB thread exited (${code})`))
    thread = worker
    return worker
  }
  const ask = (request: DistributiveOmit<Request, "id">): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { resolve, reject })
      const worker = start()
      worker.ref()
      worker.postMessage({ ...request, id })
    })
  const open = (): Promise<void> => {
    opened ??= ask({ op: "open" }).then(() => threads > 1 ? ask({ op: "threads", threads }) : undefined).catch((cause: unknown) => {
      opened = undefined
      throw new LakeError({ message: `cannot start DuckDB: ${(cause as Error).message}`, cause })
    })
    return opened
  }
  yield* Effect.addFinalizer(() =>
    thread === undefined ? Effect.void : Effect.promise(() => thread!.terminate().then(() => {}, () => {})))
  const lock = yield* Semaphore.make(1)

  const write = (kind: RawEventRow["kind"], partition: number, rows: JsonLines, path: string) =>
    Semaphore.withPermits(lock, 1)(Effect.tryPromise({
      try: async () => {
        await open()
        const scratch = `${path}.json.tmp`
        // one record a line unless a message spans lines (pretty-printed JSON): DuckDB reads
        // newline-delimited JSON about a third faster than a free sequence of values
        const format = rows.multiline ? "unstructured" : "newline_delimited"
        const sql = `COPY (SELECT ${PROJECTION[kind]}, CAST(${partition} AS INTEGER) AS "partition", o AS "offset" ` +
          `FROM read_json(${quote(scratch)}, format = '${format}', columns = {o: 'BIGINT', t: 'DOUBLE', v: '${STRUCT[kind]}'})) ` + // already in offset order
          `TO ${quote(path)} (FORMAT parquet, ROW_GROUP_SIZE ${ROW_GROUP_ROWS})`
        // the chunks are shared with the thread, not copied (SharedArrayBuffers, JsonLines.ts);
        // the buffer stays whole until its file is renamed: a failed write is tried again from it
        await ask({ op: "write", scratch, chunks: rows.chunks(), sql })
      },
      catch: (cause) => cause instanceof LakeError ? cause : new LakeError({ message: `cannot write ${path}: ${(cause as Error)?.message ?? String(cause)}`, cause })
    }))

  const useAllCores = Semaphore.withPermits(lock, 1)(Effect.tryPromise({
    try: async () => {
      threads = Math.max(1, os.availableParallelism())
      if (opened !== undefined) await ask({ op: "threads", threads })
    },
    catch: (cause) => new LakeError({ message: `cannot configure DuckDB: ${String(cause)}`, cause })
  }))

  const openNow = Effect.tryPromise({ try: open, catch: (cause) => cause as LakeError })
  return { write, useAllCores: Effect.asVoid(useAllCores), open: Effect.asVoid(openNow) }
})

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
