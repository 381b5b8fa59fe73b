/**
 * Progress of long commands (`generate`, `replay`): a bar with rate and ETA on a terminal
 * (drawn by `cli-progress`), a plain line every few seconds when stderr is not a terminal
 * (CI logs, pipes), nothing at all for work shorter than that.
 *
 * The hot path only calls `update(done)` now and then (every few thousand items, or a poller
 * reading a counter a few times a second); rendering is throttled here, and the rate is
 * measured over the last seconds of updates. Time comes from `Clock`, so `TestClock` drives
 * it in tests.
 */
import cliProgress from "cli-progress"
import { Clock, Duration, Effect, Schedule } from "effect"
import type { Scope } from "effect"

/** Where progress goes: a TTY gets a bar, anything else log lines. */
export interface Output {
  readonly isTTY?: boolean | undefined
  readonly write: (text: string) => unknown
}

export interface ProgressOptions {
  /** first word of each line, e.g. "replay" */
  readonly label: string
  /** what is counted, e.g. "messages" */
  readonly unit: string
  /** known total (the bar and ETA need it; may also be set later with `setTotal`) */
  readonly total?: number | undefined
  /** "auto" (default): a bar on a TTY, log lines otherwise */
  readonly mode?: "auto" | "bar" | "log" | "off" | undefined
  /** default process.stderr */
  readonly output?: Output | undefined
  /** how often the bar is redrawn at most (default 200 ms) */
  readonly barIntervalMs?: number | undefined
  /** how often a log line is written (default 5 s) */
  readonly logIntervalMs?: number | undefined
}

export interface Progress {
  /** Records how much is done; draws when the last drawing is old enough. Cheap, but call it per batch, not per item. */
  readonly update: (done: number) => Effect.Effect<void>
  readonly setTotal: (total: number) => void
}

/** The rate is measured over this much processing time. */
const RATE_WINDOW_MS = 10_000

export const formatCount = (n: number): string => Math.round(n).toLocaleString("en-US")

export const formatRate = (perSecond: number | undefined): string => {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return "–/s"
  const a = Math.abs(perSecond)
  if (a >= 1e6) return `${(perSecond / 1e6).toFixed(a >= 1e7 ? 0 : 1)} M/s`
  if (a >= 1e3) return `${(perSecond / 1e3).toFixed(a >= 1e4 ? 0 : 1)} k/s`
  return `${a >= 10 ? Math.round(perSecond) : perSecond.toFixed(1)}/s`
}

export const formatDuration = (ms: number | undefined): string => {
  if (ms === undefined || !Number.isFinite(ms)) return "–"
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`
}

interface Sample {
  readonly t: number
  readonly done: number
}

/** What one line says, from the numbers. */
export interface Figures {
  readonly done: number
  readonly total: number | undefined
  readonly ratePerSecond: number | undefined
  readonly etaMs: number | undefined
  readonly elapsedMs: number
}

export const describe = (label: string, unit: string, f: Figures): string => {
  const parts = [
    f.total === undefined
      ? `${formatCount(f.done)} ${unit}`
      : `${formatCount(f.done)} / ${formatCount(f.total)} ${unit} (${(f.total === 0 ? 100 : Math.min(100, (f.done / f.total) * 100)).toFixed(1)} %)`,
    formatRate(f.ratePerSecond),
    f.total === undefined ? `elapsed ${formatDuration(f.elapsedMs)}` : `ETA ${formatDuration(f.etaMs)}`
  ]
  return `${label}: ${parts.join(", ")}`
}

/**
 * A progress reporter for the life of the scope; closing the scope draws the last state
 * and ends the bar's line.
 */
export const make = (options: ProgressOptions): Effect.Effect<Progress, never, Scope.Scope> =>
  Effect.gen(function*() {
    const output: Output = options.output ?? process.stderr
    const mode = options.mode === undefined || options.mode === "auto" ? (output.isTTY === true ? "bar" : "log") : options.mode
    const interval = mode === "bar" ? options.barIntervalMs ?? 200 : options.logIntervalMs ?? 5_000
    const startedAt = yield* Clock.currentTimeMillis
    let total = options.total
    let done = 0
    let lastDrawn = startedAt
    let samples: Array<Sample> = [{ t: startedAt, done: 0 }]

    const figures = (now: number): Figures => {
      const first = samples[0]!
      const dt = now - first.t
      const ratePerSecond = dt >= 500 ? ((done - first.done) / dt) * 1000 : undefined
      const etaMs = total !== undefined && ratePerSecond !== undefined && ratePerSecond > 0
        ? Math.max(0, ((total - done) / ratePerSecond) * 1000)
        : total !== undefined && done >= total ? 0 : undefined
      return { done, total, ratePerSecond, etaMs, elapsedMs: now - startedAt }
    }

    const bar = mode === "bar"
      ? new cliProgress.SingleBar({
        stream: output as NodeJS.WritableStream,
        fps: 1000 / interval,
        barsize: 30,
        hideCursor: false,
        gracefulExit: false,
        format: (opts, params, payload: { figures?: Figures }) => {
          const f = payload.figures
          if (f === undefined) return `${options.label}: starting`
          if (f.total === undefined) return describe(options.label, options.unit, f)
          return `${options.label} ${cliProgress.Format.BarFormat(params.progress, opts)} ${describe("", options.unit, f).slice(2)}`
        }
      }, cliProgress.Presets.shades_classic)
      : undefined

    const draw = (now: number): void => {
      const f = figures(now)
      if (bar !== undefined) {
        bar.setTotal(Math.max(1, f.total ?? 1))
        bar.update(f.total === undefined ? 0 : Math.min(f.done, f.total), { figures: f })
      } else if (mode === "log") {
        output.write(describe(options.label, options.unit, f) + "\n")
      }
    }

    if (bar !== undefined) bar.start(Math.max(1, total ?? 1), 0, {})
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (bar !== undefined) {
          // rate over the whole run for the last drawing
          samples = [{ t: startedAt, done: 0 }]
          draw(now)
          bar.stop()
        }
      })
    )

    return {
      setTotal: (n: number) => {
        total = n
      },
      update: (n: number) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            done = n
            const lastSample = samples[samples.length - 1]!
            if (now - lastSample.t >= 250) {
              samples.push({ t: now, done: n })
              while (samples.length > 2 && now - samples[1]!.t >= RATE_WINDOW_MS) samples.shift()
            }
            if (mode !== "off" && now - lastDrawn >= interval) {
              lastDrawn = now
              draw(now)
            }
          }))
    }
  })

/** Feeds `progress` from a counter read every `every` until the scope closes (for work that runs in other fibers). */
export const poll = (progress: Progress, read: () => number, every: Duration.Input = "200 millis"): Effect.Effect<void, never, Scope.Scope> =>
  Effect.suspend(() => progress.update(read())).pipe(
    Effect.repeat(Schedule.spaced(every)),
    Effect.forkScoped,
    Effect.andThen(Effect.addFinalizer(() => Effect.suspend(() => progress.update(read())))),
    Effect.asVoid
  )
