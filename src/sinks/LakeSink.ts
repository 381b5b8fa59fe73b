/**
 * The raw lake (SPEC §6): every decoded event lands under `LAKE_DIR` as
 * `raw/<topic>/dt=YYYY-MM-DD/hour=HH/*.parquet` (event time, UTC), like the AWS design's
 * Firehose stream: buffered in memory and written within `flushAfterMs` of arrival (5
 * minutes), or sooner when the buffer holds `maxBufferRows`.
 *
 * **Exactly once.** A flush writes, per partition, one file per hour bucket under a
 * temporary name, then, in one PostgreSQL transaction that checks the task is still ours
 * (the fence), renames them into place and commits the lake's position. A file's name says
 * which flush it belongs to and how many files that flush has:
 * `<source>-p<partition>-<from>-<to>-<i>of<n>.parquet`, covering offsets from..to. At a
 * task's restore, a flush with all its files present counts as done (its offsets are not
 * written again); one with files missing (a crash between two renames) is removed, and its
 * offsets are written again. So after a crash at any moment every valid message is in the
 * lake exactly once. Temporary files left by a crash are removed at restore.
 */
import { Cause, Clock, Effect, Exit, Fiber, Schedule, Semaphore } from "effect"
import { SqlClient } from "effect/sql"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import type { RawEventRow } from "../domain/Rows.ts"
import { formatTimestamp } from "../domain/Timestamp.ts"
import type { CommittedPosition, PartitionRef } from "../engine/Source.ts"
import type { Recall, Sink, SinkBatch, TaskClaim, TaskPosition } from "../engine/Topology.ts"
import { JsonLines } from "./JsonLines.ts"
import type { LakeSegment } from "./LakeSegments.ts"
import { LakeError, type ParquetWriter } from "./ParquetWriter.ts"
import * as PositionStore from "./PositionStore.ts"
import * as TaskOwnership from "./TaskOwnership.ts"
import { transaction } from "./Database.ts"

/**
 * Where the lake's progress is committed: `commit` runs `rename` inside one transaction that
 * holds the tasks' fence (given the tasks found fenced, whose files must not be renamed) and
 * stores the positions of the tasks still ours; `load` reads them back.
 */
export interface LakeStore<E> {
  readonly commit: (
    claims: ReadonlyArray<TaskClaim>,
    positions: (fenced: ReadonlySet<number>) => ReadonlyArray<TaskPosition>,
    rename: (fenced: ReadonlySet<number>) => Effect.Effect<void, LakeError>
  ) => Effect.Effect<ReadonlySet<number>, E | LakeError>
  readonly load: (partitions: ReadonlyArray<PartitionRef>) => Effect.Effect<ReadonlyArray<CommittedPosition>, E>
}

/** The lake's progress in PostgreSQL: source_positions (job `job`) under the tasks' fence. */
export const pgStore = (sourceName: string, job: string) =>
  Effect.map(SqlClient.SqlClient, (sql): LakeStore<import("effect/sql/SqlError").SqlError> => ({
    commit: (claims, positions, rename) =>
      transaction(sql, Effect.gen(function*() {
        const fenced = new Set(yield* TaskOwnership.fenced(sql, sourceName, claims))
        yield* rename(fenced)
        const live = positions(fenced)
        const recordedAt = formatTimestamp(yield* Clock.currentTimeMillis)
        if (live.length > 0) yield* sql.unsafe(PositionStore.UPSERT, [JSON.stringify(PositionStore.rows(sourceName, job, live, recordedAt))])
        return fenced as ReadonlySet<number>
      })),
    load: (partitions) => PositionStore.load(sourceName, job, partitions).pipe(Effect.provideService(SqlClient.SqlClient, sql))
  }))

export interface LakeSinkOptions {
  readonly lakeDir: string
  readonly sourceName: string
  readonly job: string
  /** a buffered event is written at most this long after it arrived (processing time) */
  readonly flushAfterMs: number
  /** ... or as soon as this many events are buffered */
  readonly maxBufferRows: number
  /** how often the age of the buffer is checked */
  readonly checkEveryMs?: number
}

/** What the lake has written so far, for the status page. */
export interface LakeFigures {
  files: number
  bytes: number
  rows: number
  flushes: number
  lastFlushAt: number | undefined
  /** arrival (processing time) of the oldest buffered event, undefined when none */
  oldestBufferedAt: number | undefined
  buffered: number
}

interface PartitionBuffer {
  readonly topic: string
  readonly partition: number
  /** what its rows are (set by the first row; a buffer of positions only writes no file) */
  kind: RawEventRow["kind"]
  /** per hour of event time (hours since the epoch): its rows, as the bytes the writer reads */
  hours: Map<number, JsonLines>
  rows: number
  /** the latest position handed to the lake for this partition, with its task and epoch */
  position: TaskPosition
  /** the lake's next offset when this buffer started: the flush covers from here */
  from: number
}

const FILE = /^([0-9a-f]{8})-p(\d+)-(\d+)-(\d+)-(\d+)of(\d+)\.parquet$/
const TEMP = /^\.([0-9a-f]{8})-p(\d+)-.*\.tmp$/

const pad2 = (n: number) => String(n).padStart(2, "0")

/** `dt=YYYY-MM-DD/hour=HH` of an event time (UTC). */
export const hourFolder = (ts: number): string => {
  const d = new Date(ts)
  return `dt=${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}/hour=${pad2(d.getUTCHours())}`
}

/** Every file under `dir`, recursively (missing dir: none). */
const walk = (dir: string): Array<string> => {
  if (!fs.existsSync(dir)) return []
  const out: Array<string> = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = nodePath.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...walk(full))
    else out.push(full)
  }
  return out
}

export const make = <E>(options: LakeSinkOptions, writer: ParquetWriter, store: LakeStore<E>) =>
  Effect.gen(function*() {
    const { lakeDir, sourceName } = options
    const tag = createHash("sha1").update(sourceName).digest("hex").slice(0, 8)
    const figures: LakeFigures = { files: 0, bytes: 0, rows: 0, flushes: 0, lastFlushAt: undefined, oldestBufferedAt: undefined, buffered: 0 }
    const buffers = new Map<string, PartitionBuffer>()
    /** per partition: the next offset not yet in a renamed file (or committed position) */
    const written = new Map<string, number>()
    const lock = yield* Semaphore.make(1)
    const scope = yield* Effect.scope
    /**
     * A flush failed: the next one waits for those in flight before it takes the buffers, so
     * it takes their events too. Chained to a flush that fails, a flush fails as well (its
     * positions would pass rows not written), and under load each new flush overlapped a
     * failing one: one failure (a member's restore removing the scratch file of a write it
     * had just taken over) made the next five flushes fail, over six seconds.
     */
    let recovering = false
    const topicDir = (topic: string) => nodePath.join(lakeDir, "raw", topic)
    const key = (topic: string, partition: number) => `${topic}/${partition}`

    /**
     * Where the lake stands for `partitions` of this source: complete flushes count, partial
     * ones and temporary files are removed. Only the given partitions are touched (another
     * member may be writing the others).
     */
    const scan = (partitions: ReadonlyArray<PartitionRef>) =>
      Effect.try({
        try: () => {
          const wanted = new Set(partitions.map((p) => key(p.topic, p.partition)))
          const next = new Map<string, number>()
          const flushes = new Map<string, { files: Array<string>; n: number; to: number; k: string }>()
          for (const topic of new Set(partitions.map((p) => p.topic))) {
            for (const path of walk(topicDir(topic))) {
              const name = nodePath.basename(path)
              const temp = TEMP.exec(name)
              if (temp !== null) {
                if (temp[1] === tag && wanted.has(key(topic, Number(temp[2])))) fs.rmSync(path, { force: true })
                continue
              }
              const m = FILE.exec(name)
              if (m === null || m[1] !== tag) continue
              const k = key(topic, Number(m[2]))
              if (!wanted.has(k)) continue
              const id = `${k}/${m[3]}-${m[4]}`
              let f = flushes.get(id)
              if (f === undefined) flushes.set(id, f = { files: [], n: Number(m[6]), to: Number(m[4]), k })
              f.files.push(path)
            }
          }
          for (const f of flushes.values()) {
            if (f.files.length < f.n) {
              for (const path of f.files) fs.rmSync(path, { force: true }) // a flush cut short: written again
              continue
            }
            next.set(f.k, Math.max(next.get(f.k) ?? 0, f.to + 1))
          }
          return next
        },
        catch: (cause) => new LakeError({ message: `cannot read the lake in ${lakeDir}: ${String(cause)}`, cause })
      })

    /** Writes the given buffers' files under temporary names: [temp, final] per file. */
    const writeFiles = (buffer: PartitionBuffer, to: number) =>
      Effect.gen(function*() {
        const n = buffer.hours.size
        const files: Array<{ temp: string; final: string }> = []
        let i = 0
        for (const [hour, rows] of buffer.hours) {
          i++
          const dir = nodePath.join(topicDir(buffer.topic), hourFolder(hour * 3_600_000))
          const name = `${tag}-p${buffer.partition}-${buffer.from}-${to}-${i}of${n}.parquet`
          const final = nodePath.join(dir, name)
          const temp = nodePath.join(dir, `.${name}.tmp`)
          yield* Effect.try({ try: () => fs.mkdirSync(dir, { recursive: true }), catch: (cause) => new LakeError({ message: `cannot create ${dir}: ${String(cause)}`, cause }) })
          yield* writer.write(buffer.kind, buffer.partition, rows, temp)
          files.push({ temp, final })
        }
        return files
      })

    /**
     * Writes out the given buffers: their files under temporary names, then the fenced commit
     * that renames them and stores the positions. On failure nothing is visible and the
     * buffers go back in front of what arrived meanwhile (the next flush tries again).
     */
    const writeOut = (taken: ReadonlyArray<PartitionBuffer>, now: number, previous: Fiber.Fiber<Exit.Exit<void, unknown>> | undefined) =>
      Effect.gen(function*() {
        const staged: Array<{ buffer: PartitionBuffer; files: Array<{ temp: string; final: string }> }> = []
        const cleanup = Effect.sync(() => { for (const s of staged) for (const f of s.files) fs.rmSync(f.temp, { force: true }) })
        yield* Effect.gen(function*() {
          for (const buffer of taken) {
            const to = buffer.position.nextOffset - 1
            staged.push({ buffer, files: buffer.rows === 0 || to < buffer.from ? [] : yield* writeFiles(buffer, to) })
          }
          // commits go in order: this flush's positions pass the previous one's only once those are in place
          if (previous !== undefined && Exit.isFailure(yield* Fiber.join(previous))) {
            return yield* Effect.fail(new LakeError({ message: "the previous flush failed" }))
          }
          const claims = new Map<number, TaskClaim>()
          for (const { buffer } of staged) claims.set(buffer.position.task, { task: buffer.position.task, epoch: buffer.position.epoch })
          const fenced = yield* store.commit(
            [...claims.values()],
            (fenced) => staged.filter((s) => !fenced.has(s.buffer.position.task)).map((s) => s.buffer.position),
            (fenced) => Effect.try({
              try: () => {
                for (const s of staged) if (!fenced.has(s.buffer.position.task)) for (const f of s.files) fs.renameSync(f.temp, f.final)
              },
              catch: (cause) => new LakeError({ message: `cannot rename into ${lakeDir}: ${String(cause)}`, cause })
            })
          )
          for (const s of staged) {
            for (const lines of s.buffer.hours.values()) lines.release()
            if (fenced.has(s.buffer.position.task)) {
              for (const f of s.files) fs.rmSync(f.temp, { force: true })
              continue
            }
            figures.rows += s.buffer.rows
            for (const f of s.files) {
              figures.files++
              figures.bytes += fs.statSync(f.final).size
            }
          }
          figures.flushes++
          figures.lastFlushAt = now
        }).pipe(Effect.tapCause((cause) => Effect.andThen(cleanup, Effect.sync(() => {
          recovering = true
          // not committed: the events go back in front of what arrived meanwhile
          for (const b of taken) {
            const k = key(b.topic, b.partition)
            const current = buffers.get(k)
            if (current === undefined || current.position.epoch !== b.position.epoch) buffers.set(k, b)
            else {
              // flushes that failed one after another come back in any order: offsets restore it
              for (const [hour, lines] of b.hours) {
                const now = current.hours.get(hour)
                current.hours.set(hour, now === undefined ? lines : JsonLines.merge(lines, now))
              }
              current.rows += b.rows
              current.from = Math.min(current.from, b.from)
            }
            written.set(k, Math.min(written.get(k) ?? b.from, b.from))
            figures.buffered += b.rows
            figures.oldestBufferedAt = Math.min(figures.oldestBufferedAt ?? now, now)
          }
        }).pipe(Effect.andThen(Effect.logWarning(`lake: ${String((Cause.squash(cause) as { message?: string })?.message ?? Cause.squash(cause))}; the events stay buffered and are written at the next flush`))))))
      })

    /**
     * Flushes written in the background, oldest first: at most two, so DuckDB's work and the
     * fiber waking up to commit it overlap the engine's (a third full buffer waits: backpressure).
     */
    const inFlight: Array<Fiber.Fiber<Exit.Exit<void, unknown>>> = []
    const MAX_IN_FLIGHT = 2
    const awaitOne = Effect.suspend(() => {
      const oldest = inFlight.shift()
      return oldest === undefined ? Effect.void : Effect.asVoid(Fiber.join(oldest))
    })
    const awaitInFlight: Effect.Effect<void> = Effect.suspend(() => inFlight.length === 0 ? Effect.void : Effect.andThen(awaitOne, awaitInFlight))

    /**
     * Takes every buffer (and the positions of partitions with nothing to write) and writes
     * them out in the background.
     */
    const flushAll = Effect.gen(function*() {
      // a flush that has ended is no one's predecessor: if it failed, its events are back in
      // the buffers this flush takes (chaining to it would fail every flush after one failure)
      while (inFlight.length > 0 && inFlight[0]!.pollUnsafe() !== undefined) inFlight.shift()
      while (inFlight.length >= MAX_IN_FLIGHT) yield* awaitOne
      if (recovering) {
        recovering = false
        yield* awaitInFlight
      }
      if (buffers.size === 0) return
      const now = yield* Clock.currentTimeMillis
      const taken = [...buffers.values()]
      buffers.clear()
      figures.buffered = 0
      figures.oldestBufferedAt = undefined
      for (const b of taken) written.set(key(b.topic, b.partition), b.position.nextOffset) // what arrives next starts there
      inFlight.push(yield* Effect.forkIn(Effect.exit(writeOut(taken, now, inFlight[inFlight.length - 1])), scope))
    })

    const due = (now: number) =>
      figures.buffered >= options.maxBufferRows || (figures.oldestBufferedAt !== undefined && now - figures.oldestBufferedAt >= options.flushAfterMs)

    const write = (batch: SinkBatch<LakeSegment>) =>
      Semaphore.withPermits(lock, 1)(Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const positions = new Map(batch.positions.map((p) => [key(p.topic, p.partition), p]))
        const ensure = (topic: string, partition: number, position: TaskPosition, kind: RawEventRow["kind"]): PartitionBuffer => {
          const k = key(topic, partition)
          let b = buffers.get(k)
          if (b !== undefined && b.position.epoch !== position.epoch) {
            // a new claim of the task: what the old one buffered is stale (its task re-reads it)
            figures.buffered -= b.rows
            buffers.delete(k)
            b = undefined
          }
          if (b === undefined) buffers.set(k, b = { topic, partition, kind, hours: new Map(), rows: 0, position, from: written.get(k) ?? 0 })
          return b
        }
        // a task's segments follow what it handed on before: their bytes are appended, not copied
        let added = 0
        for (const segment of batch.outputs) {
          const position = positions.get(key(segment.topic, segment.partition))
          if (position === undefined) { segment.lines.release(); continue } // every output comes with its position
          const run = ensure(segment.topic, segment.partition, position, segment.kind)
          run.kind = segment.kind
          const rows = segment.lines.rows
          let lines = run.hours.get(segment.hour)
          if (lines === undefined) run.hours.set(segment.hour, lines = new JsonLines())
          // absorbing empties the segment: one handed on again (a stop put it back) adds nothing
          lines.absorb(segment.lines)
          run.rows += rows
          added += rows
        }
        figures.buffered += added
        if (added > 0 && figures.oldestBufferedAt === undefined) figures.oldestBufferedAt = now
        for (const [k, p] of positions) {
          const b = buffers.get(k) ?? ensure(p.topic, p.partition, p, "click")
          b.position = p
        }
        if (due(now)) yield* flushAll
        return { fenced: [] as Array<number> }
      }))

    // a quiet input still gets its files within flushAfterMs
    yield* Effect.forkScoped(Effect.repeat(
      Semaphore.withPermits(lock, 1)(Effect.gen(function*() {
        if (due(yield* Clock.currentTimeMillis)) yield* flushAll
      })).pipe(Effect.catch((e) => Effect.logWarning(`lake: ${(e as { message?: string }).message ?? String(e)}; retrying at the next check`))),
      Schedule.spaced(options.checkEveryMs ?? 1_000)
    ))

    const recall: Pick<Recall<unknown, LakeError | E>, "positions"> = {
      positions: (partitions) =>
        Effect.gen(function*() {
          const files = yield* scan(partitions)
          const stored = yield* store.load(partitions)
          const storedByKey = new Map(stored.map((p) => [key(p.topic, p.partition), p]))
          const out: Array<CommittedPosition> = []
          for (const ref of partitions) {
            const k = key(ref.topic, ref.partition)
            const next = Math.max(files.get(k) ?? 0, storedByKey.get(k)?.nextOffset ?? 0)
            written.set(k, next)
            if (files.has(k) || storedByKey.has(k)) {
              out.push({ topic: ref.topic, partition: ref.partition, nextOffset: next, restartOffset: next, maxEventTime: -Infinity, watermark: -Infinity })
            }
          }
          return out
        })
    }

    /** writes out everything buffered and waits until it is in place */
    const flushNow = Semaphore.withPermits(lock, 1)(Effect.andThen(flushAll, awaitInFlight))
    const sink: Sink<LakeSegment, LakeError | E> = {
      write,
      // the input is done: its last files may take every core
      close: Effect.andThen(writer.useAllCores, flushNow)
    }
    /** waits for the flush in the background, if any (tests) */
    const settled = awaitInFlight
    return { sink, recall, figures, flushAll: flushNow, settled }
  })

export type LakeSink = Effect.Success<ReturnType<typeof make>>

/** The lake's progress in memory (benchmarks, tests): every claim's epoch is current. */
export const memoryStore = (): LakeStore<never> => {
  const positions = new Map<string, TaskPosition>()
  return {
    commit: (_claims, live, rename) =>
      Effect.gen(function*() {
        const none = new Set<number>()
        yield* rename(none)
        for (const p of live(none)) positions.set(`${p.topic}/${p.partition}`, p)
        return none as ReadonlySet<number>
      }),
    load: (refs) => Effect.succeed(refs.flatMap((r): Array<CommittedPosition> => {
      const p = positions.get(`${r.topic}/${r.partition}`)
      return p === undefined ? [] : [{ topic: p.topic, partition: p.partition, nextOffset: p.nextOffset, restartOffset: p.nextOffset, maxEventTime: -Infinity, watermark: -Infinity }]
    }))
  }
}
