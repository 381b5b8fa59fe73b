/**
 * `WORKERS=N` with Kafka: every core reads. The process started as `node dist/main.js` (the
 * primary) runs one member of the consumer group itself and N − 1 more as child processes
 * (`fork` of the same entry point with `INSIGHTS_WORKER=i`), each with its own tasks, sinks and
 * Kafka consumer: the group's (sticky, co-partitioned) assignment spreads the partitions, the
 * fences and positions in PostgreSQL keep their writes exactly-once as with separate
 * processes. Child processes rather than worker threads: each has its own heap and collector
 * (the engine's cost is largely garbage collection), a crash stays in its process, and it is
 * the same code path as several daemons, which the tests already prove.
 *
 * Only the primary serves HTTP, runs the schedules (rollup, export, retention) and samples
 * `engine_status`; every second each worker sends it its status snapshot and its Prometheus
 * text over the IPC channel, and the primary shows the whole process (`mergeStatus`,
 * `mergeMetrics`). A worker that exits unexpectedly is started again after a second; a stop
 * is forwarded to every worker, and the primary waits for them (within its 10 s).
 */
import { Clock, Effect } from "effect"
import type { Scope } from "effect"
import { type ChildProcess, fork } from "node:child_process"
import type { StatusSnapshot } from "./http/Status.ts"

/** Set in a worker's environment: its index (1..N−1). */
export const WORKER_ENV = "INSIGHTS_WORKER"

export const workerIndex = (): number | undefined => {
  const raw = process.env[WORKER_ENV]
  return raw === undefined || raw === "" ? undefined : Number(raw)
}

/** What a worker sends the primary every second. */
export interface WorkerReport {
  readonly type: "report"
  readonly status: StatusSnapshot
  readonly metrics: string
}

export interface WorkerView {
  readonly index: number
  readonly pid: number | undefined
  readonly alive: boolean
  readonly restarts: number
  readonly lastReportAt: number | undefined
  readonly report: WorkerReport | undefined
}

/**
 * Sends `report()` to the primary every `everyMs` (a worker's side). A worker whose primary is
 * gone (killed with SIGKILL: its IPC channel closes) stops as on a SIGTERM, so no orphan goes
 * on holding partitions.
 */
export const reportToPrimary = (report: () => Effect.Effect<WorkerReport>, everyMs = 1_000) =>
  Effect.gen(function*() {
    yield* Effect.sync(() => {
      if (!process.connected) process.kill(process.pid, "SIGTERM")
      else process.once("disconnect", () => process.kill(process.pid, "SIGTERM"))
    })
    yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      const r = yield* report()
      if (process.send !== undefined && process.connected) process.send(r)
      yield* Effect.sleep(everyMs)
    })))
  })

/** Starts workers 1..count−1 for the scope's life (the primary's side). */
export const supervise = (count: number): Effect.Effect<{ readonly views: () => ReadonlyArray<WorkerView> }, never, Scope.Scope> =>
  Effect.gen(function*() {
    interface Slot { child: ChildProcess | undefined; restarts: number; lastReportAt: number | undefined; report: WorkerReport | undefined; timer: NodeJS.Timeout | undefined }
    const slots = new Map<number, Slot>()
    let stopping = false
    const entry = process.argv[1]!
    // processing time from the Clock in context, as the daemon's readiness check compares it (TestClock too)
    const context = yield* Effect.context<never>()
    const nowMs = () => Effect.runSyncWith(context)(Clock.currentTimeMillis)

    const start = (index: number) => {
      const slot = slots.get(index)!
      const child = fork(entry, [], { env: { ...process.env, [WORKER_ENV]: String(index) }, stdio: ["ignore", "inherit", "inherit", "ipc"] })
      slot.child = child
      child.on("message", (m: unknown) => {
        if (typeof m === "object" && m !== null && (m as { type?: unknown }).type === "report") {
          slot.report = m as WorkerReport
          slot.lastReportAt = nowMs()
        }
      })
      child.once("exit", (code, signal) => {
        slot.child = undefined
        slot.report = undefined
        if (stopping) return
        process.stderr.write(`insights-engine: worker ${index} exited (${signal ?? `code ${code}`}); starting it again in 1 s\n`)
        slot.restarts++
        slot.timer = setTimeout(() => { if (!stopping) start(index) }, 1_000)
      })
    }

    yield* Effect.acquireRelease(
      Effect.sync(() => {
        for (let i = 1; i < count; i++) {
          slots.set(i, { child: undefined, restarts: 0, lastReportAt: undefined, report: undefined, timer: undefined })
          start(i)
        }
      }),
      () => Effect.promise(async () => {
        stopping = true
        const exits: Array<Promise<void>> = []
        for (const slot of slots.values()) {
          if (slot.timer !== undefined) clearTimeout(slot.timer)
          const child = slot.child
          if (child === undefined || child.exitCode !== null || child.signalCode !== null) continue
          exits.push(new Promise<void>((resolve) => child.once("exit", () => resolve())))
          child.kill("SIGTERM")
        }
        // each worker bounds its own stop (SPEC §8); a hung one is killed before the primary's deadline
        const deadline = setTimeout(() => { for (const s of slots.values()) s.child?.kill("SIGKILL") }, 8_500)
        await Promise.all(exits)
        clearTimeout(deadline)
      })
    )

    return {
      views: () => [...slots].map(([index, s]) => ({
        index, pid: s.child?.pid, alive: s.child !== undefined && s.child.exitCode === null, restarts: s.restarts, lastReportAt: s.lastReportAt, report: s.report
      }))
    }
  })

const sum = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined ? (b ?? null) : a + (b ?? 0)

const sumRecord = (a: Record<string, number>, b: Record<string, number>): Record<string, number> => {
  const out = { ...a }
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v
  return out
}

const minTime = (a: string | null, b: string | null): string | null =>
  a === null ? b : b === null ? a : a === "+infinity" ? b : b === "+infinity" ? a : a < b ? a : b

/**
 * The whole process's status: the primary's with every reporting worker's added (counts
 * summed, tasks and partitions listed with their worker, the watermark the minimum).
 */
export const mergeStatus = (primary: StatusSnapshot, workers: ReadonlyArray<WorkerView>) => {
  let s = { ...primary, tasks: primary.tasks.map((t) => ({ ...t, worker: 0 })), partitions: primary.partitions.map((p) => ({ ...p, worker: 0 })) }
  for (const w of workers) {
    const o = w.report?.status
    if (o === undefined) continue
    const watermark = minTime(s.watermark, o.watermark)
    s = {
      ...s,
      watermark,
      watermarkDelaySeconds: watermark === null || watermark === "+infinity" ? s.watermarkDelaySeconds : (Date.parse(s.now) - Date.parse(watermark)) / 1000,
      eventsTotal: s.eventsTotal + o.eventsTotal,
      eventsByTopic: sumRecord(s.eventsByTopic, o.eventsByTopic),
      counters: sumRecord(s.counters, o.counters),
      ingestErrors: s.ingestErrors + o.ingestErrors,
      lateEvents: { clicks: s.lateEvents.clicks + o.lateEvents.clicks, checkouts: s.lateEvents.checkouts + o.lateEvents.checkouts },
      tasks: [...s.tasks, ...o.tasks.map((t) => ({ ...t, worker: w.index }))].sort((a, b) => a.id - b.id),
      jobs: s.jobs.map((j) => {
        const other = o.jobs.find((x) => x.name === j.name)
        return other === undefined ? j : { ...j, rowsWritten: j.rowsWritten + other.rowsWritten, batches: j.batches + other.batches, counters: sumRecord(j.counters, other.counters) }
      }),
      partitions: [...s.partitions, ...o.partitions.map((p) => ({ ...p, worker: w.index }))].sort((a, b) => a.partition - b.partition || (a.topic < b.topic ? -1 : 1)),
      state: {
        ...s.state,
        users: s.state.users + o.state.users, clicksHeld: s.state.clicksHeld + o.state.clicksHeld,
        pendingCheckouts: s.state.pendingCheckouts + o.state.pendingCheckouts, timers: s.state.timers + o.state.timers, approxBytes: s.state.approxBytes + o.state.approxBytes
      },
      sink: { ...s.sink, rowsWritten: s.sink.rowsWritten + o.sink.rowsWritten, batches: s.sink.batches + o.sink.batches },
      lake: s.lake === null || o.lake === null ? s.lake ?? o.lake : {
        ...s.lake, files: s.lake.files + o.lake.files, bytes: s.lake.bytes + o.lake.bytes, rows: s.lake.rows + o.lake.rows, buffered: s.lake.buffered + o.lake.buffered
      },
      recommendations: s.recommendations === null || o.recommendations === null ? s.recommendations ?? o.recommendations : {
        ...s.recommendations,
        tasks: s.recommendations.tasks + o.recommendations.tasks, users: s.recommendations.users + o.recommendations.users,
        updates: s.recommendations.updates + o.recommendations.updates, updatesPerSecond: s.recommendations.updatesPerSecond + o.recommendations.updatesPerSecond,
        listsWritten: s.recommendations.listsWritten + o.recommendations.listsWritten, rowsWritten: s.recommendations.rowsWritten + o.recommendations.rowsWritten,
        failedWrites: s.recommendations.failedWrites + o.recommendations.failedWrites,
        model: {
          products: Math.max(s.recommendations.model.products, o.recommendations.model.products),
          neighbourLinks: s.recommendations.model.neighbourLinks + o.recommendations.model.neighbourLinks,
          users: s.recommendations.model.users + o.recommendations.model.users
        }
      },
      process: s.process === null || o.process === null ? s.process : {
        rssBytes: s.process.rssBytes + o.process.rssBytes, heapUsedBytes: s.process.heapUsedBytes + o.process.heapUsedBytes,
        heapTotalBytes: s.process.heapTotalBytes + o.process.heapTotalBytes
      },
      recentErrors: [...s.recentErrors, ...o.recentErrors].sort((a, b) => a.at < b.at ? -1 : 1).slice(-20),
      recentLateEvents: [...s.recentLateEvents, ...o.recentLateEvents].sort((a, b) => a.at < b.at ? -1 : 1).slice(-20)
    }
  }
  return {
    ...s,
    workers: [
      { index: 0, pid: process.pid, alive: true, restarts: 0, lastReportAt: s.now },
      ...workers.map((w) => ({ index: w.index, pid: w.pid ?? null, alive: w.alive, restarts: w.restarts, lastReportAt: w.lastReportAt === undefined ? null : new Date(w.lastReportAt).toISOString() }))
    ]
  }
}

/**
 * The whole process's Prometheus text: every family once (its HELP and TYPE from the first
 * text that has it), every sample with a `worker` label (0 is the primary).
 */
export const mergeMetrics = (texts: ReadonlyArray<{ readonly worker: number; readonly text: string }>): string => {
  const families = new Map<string, { help: string | undefined; type: string | undefined; samples: Array<string> }>()
  const family = (name: string) => {
    let f = families.get(name)
    if (f === undefined) families.set(name, f = { help: undefined, type: undefined, samples: [] })
    return f
  }
  const typeOf = new Map<string, string>()
  for (const { text } of texts) {
    for (const line of text.split("\n")) {
      const m = /^# TYPE (\S+) (\S+)/.exec(line)
      if (m !== null) typeOf.set(m[1]!, m[2]!)
    }
  }
  // a sample's family: its name, or the name less a histogram's or summary's suffix
  const familyOf = (sample: string): string => {
    if (typeOf.has(sample)) return sample
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      if (sample.endsWith(suffix) && typeOf.has(sample.slice(0, -suffix.length))) return sample.slice(0, -suffix.length)
    }
    return sample
  }
  for (const { worker, text } of texts) {
    for (const line of text.split("\n")) {
      if (line === "") continue
      const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line)
      if (meta !== null) {
        const f = family(meta[2]!)
        if (meta[1] === "HELP") f.help ??= line
        else f.type ??= line
        continue
      }
      if (line.startsWith("#")) continue
      const at = line.search(/[{ ]/)
      const name = line.slice(0, at)
      const rest = line.slice(at)
      const labelled = rest.startsWith("{}") ? `{worker="${worker}"}${rest.slice(2)}`
        : rest.startsWith("{") ? `{worker="${worker}",${rest.slice(1)}` : `{worker="${worker}"}${rest}`
      family(familyOf(name)).samples.push(name + labelled)
    }
  }
  const out: Array<string> = []
  for (const f of families.values()) {
    if (f.help !== undefined) out.push(f.help)
    if (f.type !== undefined) out.push(f.type)
    out.push(...f.samples)
  }
  return out.join("\n") + "\n"
}
