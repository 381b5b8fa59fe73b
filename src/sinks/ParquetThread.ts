/**
 * The lake's DuckDB, on a worker thread of its own (started by ParquetWriter.ts): a request
 * is a scratch file's bytes and the statement that turns it into Parquet; the thread writes
 * the bytes, runs the statement and removes the scratch file, all on its own thread
 * (synchronous file calls, DuckDB's tasks run by this thread), then answers.
 *
 * Why a thread and not libuv's pool, where the driver's promises run DuckDB: the pool also
 * does the engine's file reads (a replay) and the lake's renames, and DuckDB's write of a
 * flush (~0.3 s) held a pool thread that had to be lowered below the engine's thread, so each
 * read then waited behind DuckDB for a core. Here only this thread is lowered, and the pool
 * keeps the engine's priority.
 *
 * Self-contained (Node's modules and DuckDB only): it is loaded as it is, from the sources
 * under test and from tsc's output in a build.
 */
import { DuckDBInstance, DuckDBPendingResultState } from "@duckdb/node-api"
import type { DuckDBConnection } from "@duckdb/node-api"
import * as fs from "node:fs"
import * as os from "node:os"
import { parentPort } from "node:worker_threads"

export type Request =
  | { readonly id: number; readonly op: "open" }
  | { readonly id: number; readonly op: "threads"; readonly threads: number }
  | { readonly id: number; readonly op: "write"; readonly scratch: string; readonly chunks: ReadonlyArray<Uint8Array>; readonly sql: string }

export type Reply = { readonly id: number; readonly error?: string }

/**
 * This thread at the lowest priority (nice 19), so that when the engine's thread and DuckDB
 * both want a core the kernel runs the engine's first; DuckDB still gets the cores' idle
 * time (measured: its writes kept up). Linux only: there a thread has its own nice value.
 */
const lowerThisThread = (): void => {
  if (process.platform !== "linux") return
  try {
    // "/proc/thread-self" names this thread: "<pid>/task/<tid>"
    const tid = Number(fs.readlinkSync("/proc/thread-self").split("/").pop())
    os.setPriority(tid, os.constants.priority.PRIORITY_LOW)
  } catch {
    // no /proc (a sandbox), or a kernel that refuses: the default priority stays
  }
}

let connection: DuckDBConnection | undefined

const connect = async (): Promise<DuckDBConnection> => {
  if (connection !== undefined) return connection
  // one thread, this one: the engine's thread keeps a core (measured on 2 cores: more DuckDB
  // threads took it from the engine while they wrote, for no faster flush overall)
  const instance = await DuckDBInstance.create(":memory:", { threads: "1" })
  const c = await instance.connect()
  await c.run(`SET TimeZone = 'UTC'`)
  connection = c
  return c
}

const writeScratch = (path: string, chunks: ReadonlyArray<Uint8Array>): void => {
  const fd = fs.openSync(path, "w")
  try {
    for (const chunk of chunks) {
      for (let at = 0; at < chunk.length;) at += fs.writeSync(fd, chunk, at, chunk.length - at)
    }
  } finally {
    fs.closeSync(fd)
  }
}

/** Runs `sql` with this thread doing DuckDB's work (its tasks, one by one), not the pool. */
const runHere = async (c: DuckDBConnection, sql: string): Promise<void> => {
  const pending = await c.start(sql)
  // until the result is ready, or what is left is with DuckDB's other threads (after
  // useAllCores): getResult waits for those
  while (pending.runTask() === DuckDBPendingResultState.RESULT_NOT_READY) {}
  await pending.getResult()
}

const handle = async (request: Request): Promise<void> => {
  switch (request.op) {
    case "open":
      await connect()
      return
    case "threads":
      await (await connect()).run(`SET threads = ${request.threads}`)
      return
    case "write": {
      // DuckDB first: a scratch file is not written for a DuckDB that cannot start
      const c = await connect()
      writeScratch(request.scratch, request.chunks)
      try {
        await runHere(c, request.sql)
      } finally {
        fs.rmSync(request.scratch, { force: true })
      }
    }
  }
}

lowerThisThread()
// requests come one at a time (the writer's lock), so they are answered in order
parentPort!.on("message", (request: Request) => {
  handle(request).then(
    () => parentPort!.postMessage({ id: request.id } satisfies Reply),
    (cause: unknown) => parentPort!.postMessage({ id: request.id, error: (cause as Error)?.message ?? String(cause) } satisfies Reply)
  )
})
