/**
 * The lake sink (TestClock for processing time, real DuckDB files, an in-memory store for
 * its positions): a buffered event is written after LAKE_FLUSH_MS of processing time or as
 * soon as the buffer fills; a fenced task's files never appear; a restore counts complete
 * flushes, removes a flush cut short between two renames and temporary files.
 */
import { assert, describe, it } from "@effect/vitest"
import { DuckDBInstance } from "@duckdb/node-api"
import { Deferred, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { RawEventRow } from "../../src/domain/Rows.ts"
import { type LakeSegment, segmentsOf } from "../../src/sinks/LakeSegments.ts"
import type { CommittedPosition } from "../../src/engine/Source.ts"
import type { SinkBatch, TaskPosition } from "../../src/engine/Topology.ts"
import * as LakeSink from "../../src/sinks/LakeSink.ts"
import * as ParquetWriter from "../../src/sinks/ParquetWriter.ts"

const SOURCE = "kafka:lake-test"
const tag = createHash("sha1").update(SOURCE).digest("hex").slice(0, 8)
const T = Date.parse("2026-11-23T10:59:59.500Z")

const click = (offset: number, ts = T + offset * 1_000): RawEventRow => ({
  kind: "click", topic: "clicks", partition: 0, offset, ts, json: JSON.stringify({ click_id: `c${offset}`, user_id: "u1", source: "Google" })
})
const position = (next: number, epoch = 1): TaskPosition => ({
  topic: "clicks", partition: 0, nextOffset: next, restartOffset: next, maxEventTime: T, watermark: T, task: 0, epoch
})
const batch = (rows: ReadonlyArray<RawEventRow>, next: number, epoch = 1): SinkBatch<LakeSegment> => ({
  job: "lake", outputs: segmentsOf(rows), rejected: [], positions: [position(next, epoch)], claims: [{ task: 0, epoch }]
})

/** positions in memory, the current epoch per task decides the fence */
const memoryStore = () => {
  const epochs = new Map<number, number>([[0, 1]])
  const positions = new Map<string, TaskPosition>()
  const store: LakeSink.LakeStore<never> = {
    commit: (claims, live, rename) =>
      Effect.gen(function*() {
        const fenced = new Set(claims.filter((c) => epochs.get(c.task) !== c.epoch).map((c) => c.task))
        yield* rename(fenced)
        for (const p of live(fenced)) positions.set(`${p.topic}/${p.partition}`, p)
        return fenced
      }),
    load: (refs) => Effect.succeed(refs.flatMap((r): Array<CommittedPosition> => {
      const p = positions.get(`${r.topic}/${r.partition}`)
      return p === undefined ? [] : [{ topic: p.topic, partition: p.partition, nextOffset: p.nextOffset, restartOffset: p.nextOffset, maxEventTime: -Infinity, watermark: -Infinity }]
    }))
  }
  return { store, epochs, positions }
}

const files = (dir: string) => {
  const out: Array<string> = []
  const walk = (d: string) => { if (fs.existsSync(d)) for (const e of fs.readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(path.join(d, e.name)) : out.push(path.relative(dir, path.join(d, e.name))) }
  walk(dir)
  return out.sort()
}

const readOffsets = (dir: string) =>
  Effect.promise(async () => {
    const c = await (await DuckDBInstance.create(":memory:")).connect()
    const r = await c.runAndReadAll(`SELECT "offset", click_id, hour FROM read_parquet('${dir}/raw/clicks/**/*.parquet', hive_partitioning = true) ORDER BY 1`)
    const rows = r.getRowObjectsJson()
    c.closeSync()
    return rows.map((x) => [Number(x["offset"]), x["click_id"], Number(x["hour"])])
  })

/** A lake in a scratch folder; its store refuses the first `failCommits` commits (PostgreSQL away). */
const setup = (maxBufferRows = 1_000, failCommits = 0) =>
  Effect.gen(function*() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lake-test-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    const mem = memoryStore()
    let refusals = failCommits
    const store: LakeSink.LakeStore<Error> = {
      ...mem.store,
      commit: (claims, live, rename) => refusals-- > 0 ? Effect.fail(new Error("PostgreSQL is away")) : mem.store.commit(claims, live, rename)
    }
    const writer = yield* ParquetWriter.make
    const lake = yield* LakeSink.make({ lakeDir: dir, sourceName: SOURCE, job: "lake", flushAfterMs: 300_000, maxBufferRows, checkEveryMs: 1_000 }, writer, store)
    /** commits refused so far */
    const refused = () => failCommits - Math.max(refusals, 0)
    return { dir, lake, refused, ...mem }
  })

describe("lake sink", () => {
  it.effect("writes a buffered event after 5 minutes of processing time, not before; each hour in its folder", () =>
    Effect.gen(function*() {
      const { dir, lake, positions } = yield* setup()
      yield* lake.sink.write(batch([click(0), click(1), click(2)], 3))
      yield* TestClock.adjust("299 seconds")
      assert.deepStrictEqual(files(dir), [], "nothing in the lake before LAKE_FLUSH_MS")
      assert.strictEqual(lake.figures.buffered, 3)
      yield* TestClock.adjust("2 seconds")
      yield* lake.settled // DuckDB writes in the background, on its own threads
      assert.deepStrictEqual(files(dir), [
        `raw/clicks/dt=2026-11-23/hour=10/${tag}-p0-0-2-1of2.parquet`,
        `raw/clicks/dt=2026-11-23/hour=11/${tag}-p0-0-2-2of2.parquet`
      ])
      assert.deepStrictEqual(yield* readOffsets(dir), [[0, "c0", 10], [1, "c1", 11], [2, "c2", 11]])
      assert.strictEqual(positions.get("clicks/0")?.nextOffset, 3)
    }))

  it.effect("writes at once when the buffer fills", () =>
    Effect.gen(function*() {
      const { dir, lake } = yield* setup(4)
      yield* lake.sink.write(batch([click(0), click(1)], 2))
      assert.deepStrictEqual(files(dir), [])
      yield* lake.sink.write(batch([click(2), click(3)], 4))
      yield* lake.settled // no clock moved: the full buffer alone started the flush
      assert.strictEqual((yield* readOffsets(dir)).length, 4)
    }))

  it.effect("reads a message that spans lines (pretty-printed JSON) as well as one-line ones", () =>
    Effect.gen(function*() {
      const { dir, lake } = yield* setup()
      const pretty: RawEventRow = { ...click(1), json: JSON.stringify({ click_id: "c1", user_id: "u1", source: "Google" }, null, 2) }
      yield* lake.sink.write(batch([click(0), pretty, click(2)], 3))
      yield* lake.flushAll
      assert.deepStrictEqual((yield* readOffsets(dir)).map((r) => r.slice(0, 2)), [[0, "c0"], [1, "c1"], [2, "c2"]])
    }))

  it.effect("a fenced task's files never appear; a new owner starts from what is in the lake", () =>
    Effect.gen(function*() {
      const { dir, lake, epochs } = yield* setup()
      yield* lake.sink.write(batch([click(0)], 1))
      yield* lake.flushAll
      epochs.set(0, 2) // another member claimed task 0
      yield* lake.sink.write(batch([click(1), click(2)], 3))
      yield* lake.flushAll
      assert.deepStrictEqual((yield* readOffsets(dir)).map((r) => r[0]), [0])
      assert.deepStrictEqual(files(dir).filter((f) => f.endsWith(".tmp")), [], "its temporary files are gone")
      const [p] = yield* lake.recall.positions([{ topic: "clicks", partition: 0 }])
      assert.strictEqual(p?.nextOffset, 1)
    }))

  it.effect("a restore removes a flush cut short between two renames and temporary files; complete flushes count", () =>
    Effect.gen(function*() {
      const { dir, lake } = yield* setup()
      yield* lake.sink.write(batch([click(0), click(1), click(2)], 3))
      yield* lake.flushAll
      // a later flush of offsets 3..9 that crashed after renaming 1 of its 2 files, and a temporary file
      const hour11 = path.join(dir, "raw/clicks/dt=2026-11-23/hour=11")
      const complete = files(dir)
      fs.copyFileSync(path.join(dir, complete[1]!), path.join(hour11, `${tag}-p0-3-9-1of2.parquet`))
      fs.writeFileSync(path.join(hour11, `.${tag}-p0-3-9-2of2.parquet.tmp`), "half a file")
      const [p] = yield* lake.recall.positions([{ topic: "clicks", partition: 0 }])
      assert.strictEqual(p?.nextOffset, 3, "offsets 3..9 are written again")
      assert.deepStrictEqual(files(dir), complete)
    }))

  it.effect("a flush that cannot commit leaves nothing visible; its events go back in front of what came meanwhile and are written once, in order", () =>
    Effect.gen(function*() {
      const { dir, lake, positions } = yield* setup(2, 2)
      yield* lake.sink.write(batch([click(0), click(1)], 2)) // full: a flush starts in the background (hours 10 and 11)
      yield* lake.sink.write(batch([click(2)], 3)) // arrives while DuckDB writes: hour 11 again
      yield* lake.settled
      assert.deepStrictEqual(files(dir), [], "no file and no temporary file after a failed commit")
      assert.strictEqual(lake.figures.buffered, 3, "the failed flush's events are buffered again, with the one that came meanwhile")
      yield* Effect.exit(lake.flushAll) // fails again
      yield* lake.sink.write(batch([click(3)], 4))
      yield* lake.flushAll
      assert.deepStrictEqual((yield* readOffsets(dir)).map((r) => r[0]), [0, 1, 2, 3])
      assert.strictEqual(positions.get("clicks/0")?.nextOffset, 4)
      assert.deepStrictEqual(files(dir).filter((f) => f.endsWith(".tmp")), [])
    }))

  it.effect("after a failed flush, the next one on the schedule writes (a failure is not handed on to every later flush)", () =>
    Effect.gen(function*() {
      const { dir, lake, positions, refused } = yield* setup(1_000, 1)
      const eventually = (done: () => boolean) =>
        Effect.promise(async () => { for (let i = 0; i < 200 && !done(); i++) await new Promise((r) => setTimeout(r, 10)) })
      yield* lake.sink.write(batch([click(0), click(1)], 2))
      yield* TestClock.adjust("301 seconds") // the schedule's flush: it fails
      yield* eventually(() => refused() === 1 && lake.figures.buffered === 2) // failed, and put back
      assert.deepStrictEqual(files(dir), [])
      yield* lake.sink.write(batch([click(2)], 3))
      for (let i = 0; i < 3 && positions.get("clicks/0")?.nextOffset !== 3; i++) {
        yield* TestClock.adjust("301 seconds") // the next scheduled flush (the failed one's events are back in its buffer)
        yield* eventually(() => positions.get("clicks/0")?.nextOffset === 3)
      }
      assert.strictEqual(positions.get("clicks/0")?.nextOffset, 3, "written once the store answers again")
      assert.deepStrictEqual((yield* readOffsets(dir)).map((r) => r[0]), [0, 1, 2])
    }))

  it.effect("after a failed flush, the next one waits for those in flight and takes their events: one failure does not fail every overlapping flush after it", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lake-test-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const mem = memoryStore()
      let refusals = 1
      const store: LakeSink.LakeStore<Error> = {
        ...mem.store,
        commit: (claims, live, rename) => refusals-- > 0 ? Effect.fail(new Error("PostgreSQL is away")) : mem.store.commit(claims, live, rename)
      }
      // the first two files wait until let go: the first flush fails while the second is still writing
      const gates = [yield* Deferred.make<void>(), yield* Deferred.make<void>()]
      const real = yield* ParquetWriter.make
      let calls = 0
      const writer: ParquetWriter.ParquetWriter = {
        ...real,
        write: (kind, partition, rows, file) => {
          const gate = gates[calls++]
          return gate === undefined ? real.write(kind, partition, rows, file) : Effect.andThen(Deferred.await(gate), real.write(kind, partition, rows, file))
        }
      }
      const lake = yield* LakeSink.make({ lakeDir: dir, sourceName: SOURCE, job: "lake", flushAfterMs: 300_000, maxBufferRows: 2, checkEveryMs: 1_000 }, writer, store)
      const inHour11 = (offset: number) => click(offset, T + 10_000 + offset) // one file a flush
      const waitFor = (done: () => boolean) =>
        Effect.promise(async () => { for (let i = 0; i < 300 && !done(); i++) await new Promise((r) => setTimeout(r, 10)) })

      yield* lake.sink.write(batch([inHour11(0), inHour11(1)], 2)) // flush 1, waiting at its file
      yield* lake.sink.write(batch([inHour11(2), inHour11(3)], 4)) // flush 2, chained to flush 1
      yield* Deferred.succeed(gates[0]!, undefined)
      yield* waitFor(() => refusals === 0 && lake.figures.buffered === 2) // flush 1 could not commit: its events are back
      // flush 3 starts while flush 2 is in flight and bound to fail (its predecessor did)
      const third = yield* Effect.forkChild(lake.sink.write(batch([inHour11(4), inHour11(5)], 6)))
      yield* Deferred.succeed(gates[1]!, undefined)
      yield* Fiber.join(third)
      yield* lake.settled
      assert.strictEqual(mem.positions.get("clicks/0")?.nextOffset, 6, "the flush after the failure wrote every event: its own and those of the two that failed")
      assert.deepStrictEqual((yield* readOffsets(dir)).map((r) => r[0]), [0, 1, 2, 3, 4, 5])
      assert.deepStrictEqual(files(dir).filter((f) => f.endsWith(".tmp")), [])
    }))
})
