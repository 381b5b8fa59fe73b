/**
 * The bench's flags (`npm run bench -- --events 400000 ...`), parsed by Node's `util.parseArgs`
 * (strict: an unknown flag is an error). `--smoke` is a preset of tiny sizes for the test
 * (test/scripts/Bench.test.ts); flags given with it still win.
 */
import * as os from "node:os"
import { parseArgs } from "node:util"

export interface BenchOptions {
  /** events of the generated backlog the engine replays */
  readonly events: number
  /** events produced to Kafka for the consume ceiling and the daemon's end-to-end drain */
  readonly e2eEvents: number
  /** messages per second the live producer sends while latency is measured */
  readonly latencyRate: number
  /** seconds of production whose checkouts are measured */
  readonly latencySeconds: number
  /** clicks held in attribution's keyed state for bytes_per_held_click */
  readonly heldClicks: number
  /** rows written for the sink ceiling */
  readonly sinkRows: number
  /** engine processes for engine_events_per_s (default: the cores) */
  readonly workers: number
  /** partitions of the bench's topics */
  readonly partitions: number
  /** interleaved rounds of the one-worker engine runs (the best counts; a job's cost is the median of the rounds' ratios) */
  readonly rounds: number
  /** the daemon's LAKE_FLUSH_MS in the end-to-end run, so the lake's positions reach the end */
  readonly lakeFlushMs: number
  /** the daemon's RECS_SNAPSHOT_MS in the end-to-end run: the recommender's positions are committed with its snapshots */
  readonly recsSnapshotMs: number
  /** the recommender model's memory and the recommendations API at load (slow; off with --no-extras) */
  readonly extras: boolean
  readonly recsUsers: number
  readonly apiRequests: number
  readonly smoke: boolean
}

const usage = `npm run bench -- [--smoke] [--events N] [--e2e-events N] [--latency-rate N] [--latency-seconds S]
  [--held-clicks N] [--sink-rows N] [--workers N] [--partitions N] [--rounds N] [--lake-flush-ms MS] [--recs-snapshot-ms MS]
  [--no-extras] [--recs-users N] [--api-requests N]`

const defaults = (smoke: boolean) => smoke
  ? { events: 20_000, e2eEvents: 20_000, latencyRate: 5_000, latencySeconds: 2, heldClicks: 20_000, sinkRows: 10_000, rounds: 1, extras: false, recsUsers: 2_000, apiRequests: 100 }
  : { events: 1_000_000, e2eEvents: 1_000_000, latencyRate: 5_000, latencySeconds: 30, heldClicks: 1_000_000, sinkRows: 200_000, rounds: 5, extras: true, recsUsers: 100_000, apiRequests: 2_000 }

export const parseOptions = (argv: ReadonlyArray<string>): BenchOptions => {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      smoke: { type: "boolean" },
      events: { type: "string" },
      "e2e-events": { type: "string" },
      "latency-rate": { type: "string" },
      "latency-seconds": { type: "string" },
      "held-clicks": { type: "string" },
      "sink-rows": { type: "string" },
      workers: { type: "string" },
      partitions: { type: "string" },
      rounds: { type: "string" },
      "lake-flush-ms": { type: "string" },
      "recs-snapshot-ms": { type: "string" },
      "no-extras": { type: "boolean" },
      "recs-users": { type: "string" },
      "api-requests": { type: "string" },
      help: { type: "boolean" }
    }
  })
  if (values.help === true) {
    process.stderr.write(usage + "\n")
    process.exit(0)
  }
  const smoke = values.smoke === true
  const cores = os.availableParallelism()
  const d = defaults(smoke)
  const int = (flag: string, fallback: number, min = 1): number => {
    const raw = (values as Record<string, string | boolean | undefined>)[flag]
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (typeof raw !== "string" || !Number.isSafeInteger(n) || n < min) throw new Error(`--${flag} must be an integer ≥ ${min}, got ${String(raw)}\n${usage}`)
    return n
  }
  const workers = int("workers", cores)
  return {
    events: int("events", d.events),
    e2eEvents: int("e2e-events", d.e2eEvents),
    latencyRate: int("latency-rate", d.latencyRate),
    latencySeconds: int("latency-seconds", d.latencySeconds),
    heldClicks: int("held-clicks", d.heldClicks),
    sinkRows: int("sink-rows", d.sinkRows),
    workers,
    partitions: int("partitions", Math.max(4, workers)),
    rounds: int("rounds", d.rounds),
    lakeFlushMs: int("lake-flush-ms", 300_000),
    recsSnapshotMs: int("recs-snapshot-ms", 60_000),
    extras: values["no-extras"] === true ? false : d.extras,
    recsUsers: int("recs-users", d.recsUsers),
    apiRequests: int("api-requests", d.apiRequests),
    smoke
  }
}
