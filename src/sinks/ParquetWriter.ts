/**
 * Writes raw events to Parquet with DuckDB (an embedded, well-kept engine; never a
 * hand-written encoder). A batch comes as JSON records (`JsonLines`: `{"o":offset,"t":time,
 * "v":<the event's JSON>}` a line), written as they are next to the target (off the event
 * loop); DuckDB, on its own threads, reads it with `read_json(format = 'unstructured')`
 * (the event's JSON parsed once, straight into a typed STRUCT: multi-line JSON is fine) and
 * writes the file with `COPY … TO … (FORMAT parquet)`. Measured cheapest from JavaScript:
 * a string concatenation per event, against ~1.3 µs for DuckDB's appender.
 *
 * Columns (SPEC §1 and §6): the event's fields under their input names, typed: ids and other
 * text as VARCHAR (a JSON integer id as its decimal string), `quantity` INTEGER,
 * `shipping_cost` DECIMAL(12,2), `discount` DOUBLE, the event time as TIMESTAMP WITH TIME
 * ZONE (UTC), then `partition` INTEGER and `offset` BIGINT. `dt` and `hour` are the folders.
 */
import type { DuckDBConnection } from "@duckdb/node-api"
import { Data, Effect, Semaphore } from "effect"
import type { Scope } from "effect"
import * as fsp from "node:fs/promises"
import * as os from "node:os"
import type { RawEventRow } from "../domain/Rows.ts"
import type { JsonLines } from "./JsonLines.ts"
import { lowerThreadPool } from "./ThreadPriority.ts"

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
 * Writes `chunks` with as few thread-pool round trips as the kernel allows (one `writev`):
 * `fs.promises.writeFile` goes in 512 KiB chunks, each waiting for the event loop, which
 * a busy engine keeps for itself (measured: 1.7 s for 30 MB while the engine ran, 60 ms idle).
 */
const writeWhole = async (path: string, chunks: ReadonlyArray<Buffer>): Promise<void> => {
  const handle = await fsp.open(path, "w")
  try {
    const total = chunks.reduce((n, c) => n + c.length, 0)
    let written = (await handle.writev(chunks as Array<Buffer>, 0)).bytesWritten
    // a short write (rare): the rest chunk by chunk
    for (let skip = written, i = 0; written < total && i < chunks.length; i++) {
      const c = chunks[i]!
      if (skip >= c.length) {
        skip -= c.length
        continue
      }
      for (let at = skip; at < c.length;) {
        const n = (await handle.write(c, at, c.length - at, written)).bytesWritten
        at += n
        written += n
      }
      skip = 0
    }
  } finally {
    await handle.close()
  }
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
 * An in-memory DuckDB for the scope's life, opened at the first write; writes run one at a
 * time. Opened late because loading it is ~60 ms of the start's critical path (measured),
 * before the first event, and the first file is due minutes later. A DuckDB that cannot start
 * fails that write (its events stay buffered) and is tried again at the next.
 */
export const make: Effect.Effect<ParquetWriter, LakeError, Scope.Scope> = Effect.gen(function*() {
  let threads = 1
  let opening: Promise<DuckDBConnection> | undefined
  const open = async (): Promise<DuckDBConnection> => {
    const { DuckDBInstance } = await import("@duckdb/node-api")
    // one thread: the engine's own thread keeps a core to itself (measured on 2 cores: two
    // DuckDB threads took it from the engine while they wrote, for no faster flush overall)
    const instance = await DuckDBInstance.create(":memory:", { threads: String(threads) })
    // its queries run on the thread pool (created by now): behind the engine's thread
    lowerThreadPool()
    const c = await instance.connect()
    await c.run(`SET TimeZone = 'UTC'`)
    return c
  }
  const connect = (): Promise<DuckDBConnection> => {
    opening ??= open().catch((cause: unknown) => {
      opening = undefined
      throw new LakeError({ message: `cannot start DuckDB: ${String(cause)}`, cause })
    })
    return opening
  }
  yield* Effect.addFinalizer(() =>
    opening === undefined ? Effect.void : Effect.promise(() => opening!.then((c) => c.closeSync(), () => {})))
  const lock = yield* Semaphore.make(1)

  const write = (kind: RawEventRow["kind"], partition: number, rows: JsonLines, path: string) =>
    Semaphore.withPermits(lock, 1)(Effect.tryPromise({
      try: async () => {
        // DuckDB first: a scratch file is not written for a DuckDB that cannot start
        const connection = await connect()
        const scratch = `${path}.json.tmp`
        await writeWhole(scratch, rows.chunks())
        // one record a line unless a message spans lines (pretty-printed JSON): DuckDB reads
        // newline-delimited JSON about a third faster than a free sequence of values
        const multiline = rows.multiline
        try {
          await connection.run(
            `COPY (SELECT ${PROJECTION[kind]}, CAST(${partition} AS INTEGER) AS "partition", o AS "offset" ` +
              `FROM read_json(${quote(scratch)}, format = '${multiline ? "unstructured" : "newline_delimited"}', columns = {o: 'BIGINT', t: 'DOUBLE', v: '${STRUCT[kind]}'})) ` + // already in offset order
              `TO ${quote(path)} (FORMAT parquet, ROW_GROUP_SIZE ${ROW_GROUP_ROWS})`
          )
        } finally {
          await fsp.rm(scratch, { force: true })
        }
      },
      catch: (cause) => cause instanceof LakeError ? cause : new LakeError({ message: `cannot write ${path}: ${(cause as Error)?.message ?? String(cause)}`, cause })
    }))

  const useAllCores = Semaphore.withPermits(lock, 1)(Effect.tryPromise({
    try: async () => {
      threads = Math.max(1, os.availableParallelism())
      if (opening !== undefined) await (await connect()).run(`SET threads = ${threads}`)
    },
    catch: (cause) => new LakeError({ message: `cannot configure DuckDB: ${String(cause)}`, cause })
  }))

  const openNow = Effect.tryPromise({ try: connect, catch: (cause) => cause as LakeError })
  return { write, useAllCores: Effect.asVoid(useAllCores), open: Effect.asVoid(openNow) }
})
