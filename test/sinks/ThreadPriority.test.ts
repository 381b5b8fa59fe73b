/**
 * The lake's DuckDB work runs behind the engine's thread: once the writer has opened DuckDB,
 * every thread of libuv's pool (where its queries run) is at nice 19, and the engine's own
 * thread keeps its priority. Linux only (elsewhere nothing is changed).
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { describe, expect, it } from "vitest"
import * as ParquetWriter from "../../src/sinks/ParquetWriter.ts"

/** nice value of each thread of this process, by its name */
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
  it("puts the thread pool at nice 19 once DuckDB is open, and leaves the engine's thread as it was", async () => {
    const before = os.getPriority(0)
    await Effect.runPromise(Effect.scoped(Effect.flatMap(ParquetWriter.make, (w) => w.open)))
    const pool = niceByThread().filter((t) => t.name === "libuv-worker")
    expect(pool.length).toBeGreaterThan(0)
    expect(pool.map((t) => t.nice)).toEqual(pool.map(() => 19))
    expect(niceByThread().find((t) => t.tid === process.pid)?.nice).toBe(before)
  })
})
