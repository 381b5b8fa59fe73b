/**
 * End to end: the daemon (`node dist/main.js`, one member per core) drains events already
 * produced to the broker into PostgreSQL. The time runs from the daemon's spawn until every
 * partition's committed position of the job that writes PostgreSQL's rows (attribution, in
 * shop.source_positions) has reached the topic's end offset; the lake and the recommender run
 * all along at their own settings (by default the lake writes a file per 100 k events or
 * 5 min, the recommender snapshots every minute: their positions follow their files and
 * snapshots, so waiting for them would time a timer). Then the rows are checked: one
 * checkout_attribution row per distinct valid checkout produced.
 *
 * `start_ms` is from the spawn to the first event the daemon counts (`eventsTotal` of
 * `/api/status`, polled every 20 ms: the primary's own count is live, the workers' reach it
 * every second, so this is when the first member processed an event, within the poll).
 */
import * as Attribution from "../jobs/Attribution.ts"
import { log, rate, round3, sleep, wallNow } from "./Common.ts"
import { type BenchDaemon, startDaemon } from "./Daemon.ts"
import type { Backfill, BenchTopics } from "./Produce.ts"
import type { Poller } from "./Scratch.ts"

export interface EndToEnd {
  readonly events_per_s: number
  readonly events: number
  readonly seconds: number
  readonly start_ms: number
  readonly start_ms_source: string
}

export interface RowsCheck {
  readonly rows_verified: boolean
  readonly rows: { readonly checkout_attribution: number; readonly late_events: number; readonly ingest_errors: number; readonly expected_checkouts: number }
  readonly rows_per_event: number
  /** from the end of the latency run until the rows were all there */
  readonly waited_ms: number
}

export interface EndToEndSetup {
  readonly brokers: string
  readonly topics: BenchTopics
  readonly partitions: number
  readonly groupId: string
  readonly databaseUrl: string
  readonly lakeDir: string
  readonly lakeFlushMs: number
  readonly recsSnapshotMs: number
  readonly usersCsv: string
  readonly productsCsv: string
  /** "topic/partition" → end offset */
  readonly ends: Record<string, { readonly low: number; readonly high: number }>
  readonly produced: Backfill
}

const count = async (db: Poller, table: string): Promise<number> =>
  Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`))[0]!.n)

/** Starts the daemon and measures its drain; the daemon is left running for the caller (the latency run) to stop. */
export const measureEndToEnd = async (setup: EndToEndSetup, db: Poller, timeoutMs: number): Promise<{ readonly result: EndToEnd; readonly daemon: BenchDaemon }> => {
  const source = `kafka:${setup.groupId}`
  const daemon = await startDaemon({
    DATABASE_URL: setup.databaseUrl,
    KAFKA_BROKERS: setup.brokers,
    KAFKA_GROUP_ID: setup.groupId,
    KAFKA_PARTITIONS: String(setup.partitions),
    CLICKS_TOPIC: setup.topics.clicks,
    CHECKOUTS_TOPIC: setup.topics.checkouts,
    LAKE_DIR: setup.lakeDir,
    LAKE_FLUSH_MS: String(setup.lakeFlushMs),
    RECS_SNAPSHOT_MS: String(setup.recsSnapshotMs),
    USERS_CSV: setup.usersCsv,
    PRODUCTS_CSV: setup.productsCsv
  })
  try {
    // the first event counted, polled beside the drain
    let firstEventAt: number | undefined
    let draining = true
    const watchStart = (async () => {
      while (draining && firstEventAt === undefined) {
        const n = await daemon.eventsTotal()
        if (n !== undefined && n > 0) firstEventAt = wallNow()
        else await sleep(20)
      }
    })()
    const wanted = Object.entries(setup.ends).filter(([, e]) => e.high > 0)
    const deadline = daemon.spawnedAt + timeoutMs
    let drainedAt: number | undefined
    let last = ""
    while (drainedAt === undefined) {
      if (daemon.child.exitCode !== null) throw new Error(`the daemon exited (${daemon.child.exitCode}): ${daemon.output().slice(-3_000)}`)
      if (wallNow() > deadline) throw new Error(`the daemon did not drain ${setup.produced.messages} events within ${timeoutMs} ms; positions: ${last}\n${daemon.output().slice(-3_000)}`)
      const rows = await db.query<{ job: string; topic: string; partition: number; next_offset: string }>(
        `SELECT job, topic, "partition", next_offset::text FROM shop.source_positions WHERE source = $1`, [source]).catch(() => [])
      const at = wallNow()
      const next = new Map(rows.map((r) => [`${r.job} ${r.topic}/${r.partition}`, Number(r.next_offset)]))
      const behind = [Attribution.JOB].flatMap((job) => wanted.filter(([id, e]) => (next.get(`${job} ${id}`) ?? -1) < e.high).map(([id]) => `${job} ${id}`))
      last = `${behind.length} behind: ${behind.slice(0, 6).join(", ")}`
      if (behind.length === 0) drainedAt = at
      else {
        if (process.env["BENCH_DEBUG"] !== undefined) log(`${Math.round(at - daemon.spawnedAt)} ms: ${last} ${JSON.stringify([...next].slice(0, 30))}`)
        await sleep(50)
      }
    }
    draining = false
    await watchStart
    const ms = drainedAt - daemon.spawnedAt
    log(`end to end: ${rate(setup.produced.messages, ms)} events/s (every position at the end offsets)`)
    return {
      daemon,
      result: {
        events_per_s: rate(setup.produced.messages, ms),
        events: setup.produced.messages,
        seconds: Math.round(ms) / 1000,
        start_ms: firstEventAt === undefined ? NaN : Math.round(firstEventAt - daemon.spawnedAt),
        start_ms_source: "spawn of node dist/main.js → first /api/status with eventsTotal > 0 (polled every 20 ms)"
      }
    }
  } catch (e) {
    await daemon.stop()
    throw e
  }
}

/**
 * The drained events' rows: one checkout_attribution row per distinct valid checkout produced
 * (those of this production, by their ids' prefix). A checkout's row is written once the
 * watermark has passed it, and the backlog's last W of event time is passed only by newer
 * events (the latency run's) or the idle timeout: so this is checked after the latency run,
 * waiting up to `timeoutMs` for the count to be reached.
 */
export const verifyRows = async (db: Poller, produced: Backfill, timeoutMs: number): Promise<RowsCheck> => {
  const started = wallNow()
  const attributed = async () => Number((await db.query<{ n: string }>(
    "SELECT count(*)::text AS n FROM shop.checkout_attribution WHERE starts_with(checkout_id, $1)", [produced.checkoutIdPrefix]))[0]!.n)
  let n = await attributed()
  while (n < produced.distinctValidCheckouts && wallNow() - started < timeoutMs) {
    await sleep(200)
    n = await attributed()
  }
  const rows = {
    checkout_attribution: n,
    late_events: await count(db, "shop.late_events"),
    ingest_errors: await count(db, "shop.ingest_errors"),
    expected_checkouts: produced.distinctValidCheckouts
  }
  log(`end to end rows: ${JSON.stringify(rows)}`)
  return {
    rows_verified: rows.checkout_attribution === rows.expected_checkouts,
    rows,
    rows_per_event: round3((rows.checkout_attribution + rows.late_events + rows.ingest_errors) / produced.messages),
    waited_ms: Math.round(wallNow() - started)
  }
}
