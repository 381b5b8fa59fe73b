/**
 * The lake's DuckDB runs on a thread of its own, behind the engine's thread: once the writer
 * has opened DuckDB, that thread ("lake-duckdb") is at nice 19, while the engine's thread and
 * libuv's pool (the engine's file reads) keep their priority. Linux only (elsewhere nothing
 * is changed). And its writes are real: DuckDB (a connection of the test's own) reads back
 * what went in, also after a write that failed, and after the thread itself died.
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { JsonLines } from "../../src/sinks/JsonLines.ts"
import * as ParquetWriter from "../../src/sinks/ParquetWriter.ts"

/** nice value of each thread of this process, by its name */
const clicks = (n: number): JsonLines => {
  const rows = new JsonLines()
  for (let i = 0; i < n; i++) {
    rows.append(10 + i, Date.UTC(2026, 11, 1, 0, 0, i), JSON.stringify({ click_id: `c${i}`, user_id: i, product_id: "p", source: "Google", user_agent: "ua", ip_address: "1.2.3.4" }))
  }
  return rows
}

const readBack = async (file: string) => {
  const db = await (await DuckDBInstance.create(":memory:")).connect()
  try {
    const read = await db.runAndReadAll(
      `SELECT count(*)::INTEGER AS n, sum("offset")::BIGINT AS offsets, min("partition") AS p, count(DISTINCT user_id)::INTEGER AS users, ` +
        `min(click_timestamp) = TIMESTAMPTZ '2026-12-01 00:00:00+00' AS first FROM read_parquet('${file}')`
    )
    return read.getRowObjectsJson()
  } finally {
    db.closeSync()
  }
}

const niceByThread = (): Array<{ name: string; tid: number; nice: number }> =>
  fs.readdirSync("/proc/self/task").flatMap((t) => {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${t}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      return [{ name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), tid: Number(t), nice: Number(fields[16]) }]
    } catch {
      return []
    }
  })

describe.skipIf(process.platform !== "linux")("the lake's thread priority", () => {
  it("puts DuckDB's own thread at nice 19 once it is open, and leaves the engine's thread and the pool as they were", async () => {
    const before = os.getPriority(0)
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const writer = yield* ParquetWriter.make
      yield* writer.open
      const threads = niceByThread()
      expect(threads.filter((t) => t.name === "lake-duckdb").map((t) => t.nice)).toEqual([19])
      const pool = threads.filter((t) => t.name === "libuv-worker")
      expect(pool.length).toBeGreaterThan(0)
      expect(pool.map((t) => t.nice)).toEqual(pool.map(() => before))
      expect(threads.find((t) => t.tid === process.pid)?.nice).toBe(before)
    })))
    // the scope's end stops the thread
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(niceByThread().filter((t) => t.name === "lake-duckdb")).toEqual([])
  })
})

describe("the lake's DuckDB thread", () => {
  it("writes the rows it is given as Parquet, and writes again after a failed write", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parquet-thread-"))
    try {
      const rows = clicks(1000)
      const good = path.join(dir, "clicks.parquet")
      await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const writer = yield* ParquetWriter.make
        // a folder that does not exist: DuckDB's write fails, the writer reports it
        const failed = yield* Effect.exit(writer.write("click", 3, rows, path.join(dir, "missing", "x.parquet")))
        expect(Exit.isFailure(failed)).toBe(true)
        yield* writer.write("click", 3, rows, good)
      })))
      expect(fs.readdirSync(dir).sort()).toEqual(["clicks.parquet"]) // no scratch file left
      expect(await readBack(good)).toEqual([{ n: 1000, offsets: String(1000 * 10 + (999 * 1000) / 2), p: 3, users: 1000, first: true }])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("the lake's DuckDB thread, dying", () => {
  it("fails the write it was doing with the reason, and the next write starts a new thread and succeeds", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parquet-thread-dies-"))
    const marker = path.join(dir, "died")
    process.env["DYING_THREAD_MARKER"] = marker
    try {
      const rows = clicks(500)
      const file = path.join(dir, "clicks.parquet")
      const entry = () => new URL("./fixtures/DyingParquetThread.ts", import.meta.url)
      await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const writer = yield* ParquetWriter.makeAt(entry)
        const first = yield* Effect.flip(writer.write("click", 1, rows, file))
        expect(first.message).toMatch(/DuckDB thread exited \(7\)/)
        expect(fs.existsSync(marker)).toBe(true)
        expect(fs.existsSync(file)).toBe(false)
        yield* writer.write("click", 1, rows, file)
      })))
      expect(await readBack(file)).toEqual([{ n: 500, offsets: String(500 * 10 + (499 * 500) / 2), p: 1, users: 500, first: true }])
    } finally {
      delete process.env["DYING_THREAD_MARKER"]
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
