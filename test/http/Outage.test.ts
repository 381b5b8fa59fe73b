/**
 * SPEC §8 and §5 through PostgreSQL outages: the daemon reads Kafka (2 partitions) and writes
 * to PostgreSQL through a TCP proxy the test cuts. While the database is away `/readyz` is
 * 503 and the sink cannot commit, and the daemon keeps running. First outage: once the
 * database is back, the same daemon writes what it read meanwhile. Second outage: a SIGTERM
 * must still exit 0 within 10 s (what is in flight was never committed, so it is read again),
 * and a new daemon of the same group writes what was missed. Each time the tables are
 * exactly the oracle's attribution over what is in the topics, with exactly the bad messages
 * in ingest_errors and the positions at the end of every partition.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { adminUrl, createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import { createTopics, endOffsets, kafkaBrokers, produce, uniqueName } from "../support/Kafka.ts"
import {
  attribution, checkoutsOf, clicksOf, count, type Daemon, differences, generate, httpStatus, readTopic, sleep, startDaemon, waitFor,
  writtenAttribution, attributionPositions, apiStatus
} from "../kafka/Harness.ts"
import { startTcpProxy, type TcpProxy } from "./TcpProxy.ts"

const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()

interface Status {
  readonly eventsTotal: number
  readonly partitions: ReadonlyArray<{ topic: string; partition: number; position: number }>
}
const status = (d: Daemon) => apiStatus<Status>(d)

describe.skipIf(brokers === undefined || !pgOk)("a PostgreSQL outage", () => {
  let db: { url: string; name: string }
  let proxy: TcpProxy
  const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts"), group = uniqueName("outage")
  const kafkaEnv = { KAFKA_BROKERS: brokers ?? "", CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: "2" }
  const running: Array<Daemon> = []
  const start = async () => {
    const viaProxy = new URL(db.url)
    viaProxy.hostname = "127.0.0.1"
    viaProxy.port = String(proxy.port)
    const d = await startDaemon({ ...kafkaEnv, KAFKA_GROUP_ID: group, DATABASE_URL: viaProxy.toString(), IDLE_TIMEOUT_MS: "1500", KAFKA_SESSION_TIMEOUT_MS: "6000" })
    running.push(d)
    return d
  }
  const withOutput = (d: Daemon) => (e: unknown): never => {
    throw new Error(`${(e as Error).message}\n--- daemon (pid ${d.process.pid}) ---\n${d.output().slice(-3_000)}`)
  }

  beforeAll(async () => {
    db = await createDatabase("insights_outage")
    const target = new URL(adminUrl)
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
    await createTopics(brokers!, [clicks, checkouts], 2)
  })
  afterAll(async () => {
    for (const d of running) await d.stop("SIGKILL")
    await proxy?.close()
    if (db !== undefined) await dropDatabase(db.name)
  })

  /** Every checkout of the topics has its row, every bad message its error, and what that must be. */
  const expectations = async () => {
    const cm = await readTopic(brokers!, clicks), km = await readTopic(brokers!, checkouts)
    const cs = clicksOf(cm), ks = checkoutsOf(km)
    const bad = [...cm.filter((m) => clicksOf([m]).length === 0), ...km.filter((m) => checkoutsOf([m]).length === 0)]
    return { cs, ks, bad }
  }
  const ends = async () => {
    const out = new Map<string, number>()
    for (const topic of [clicks, checkouts]) for (const [p, o] of await endOffsets(brokers!, topic)) out.set(`${topic}/${p}`, o)
    return out
  }
  /** Waits until everything in the topics is written, then checks it against the oracle. */
  const settledAsTheOracle = async (d: Daemon) => {
    const { cs, ks, bad } = await expectations()
    await waitFor("every checkout and bad message written",
      () => Promise.all([count(db.url, "shop.checkout_attribution"), count(db.url, "shop.ingest_errors")]),
      ([rows, errors]) => rows >= ks.length && errors >= bad.length, 30_000, 250).catch(withOutput(d))
    await sleep(1_000)
    const expected = attribution(cs, ks)
    expect(differences(expected, await writtenAttribution(db.url))).toEqual([])
    expect([...expected.values()].filter((c) => c !== null).length, "most checkouts are attributed").toBeGreaterThan(ks.length / 2)
    const errors = await query<{ source: string; partition: number; offset: string; payload: string }>(db.url,
      `SELECT source, "partition", "offset"::text, payload FROM shop.ingest_errors ORDER BY source, "partition", "offset"`)
    expect(errors.map((e) => [e.source, e.partition, Number(e.offset), e.payload]).sort())
      .toEqual(bad.map((m) => [m.topic, m.partition, m.offset, m.value]).sort())
    expect(await count(db.url, "shop.late_events")).toBe(0)
    // positions at the end of every partition
    expect(await attributionPositions(db.url, `kafka:${group}`)).toEqual(await ends())
    return { checkouts: ks.length, bad: bad.length }
  }

  /** Cuts the database off, produces a chunk (and a bad message), and waits until `d` has read into it, unable to write it. */
  const outage = async (d: Daemon, seed: number, junk: string) => {
    await proxy.cut()
    await waitFor("/readyz 503 while the database is cut off", () => httpStatus(d.port, "/readyz"), (s) => s === 503, 10_000).catch(withOutput(d))
    const before = await ends()
    await generate(["--rate", "max", "--count", "2000", "--seed", String(seed)], kafkaEnv)
    await produce(brokers!, checkouts, [{ key: "junk", value: junk, partition: 1 }])
    await waitFor("the daemon reads past what it had before the cut", () => status(d), (s) =>
      s !== undefined && s.partitions.some((p) => p.position > (before.get(`${p.topic}/${p.partition}`) ?? Infinity)), 10_000).catch(withOutput(d))
    // long enough for what it read to come due (idle after 1.5 s): the sink waits, the daemon rides it out
    await sleep(3_000)
    expect(d.process.exitCode, `the daemon survives the outage\n${d.output().slice(-3_000)}`).toBe(null)
    expect(await httpStatus(d.port, "/readyz"), "still 503 while the database is away").toBe(503)
  }

  let daemon: Daemon
  const t0 = Date.now()
  const log = (what: string) => console.log(`[outage +${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`)

  it("rides out an outage: once the database is back, the same daemon writes what it read meanwhile", async () => {
    daemon = await start()
    await waitFor("ready", () => httpStatus(daemon.port, "/readyz"), (s) => s === 200, 30_000).catch(withOutput(daemon))

    // a backlog, with a bad message, written while the database is there
    await generate(["--rate", "max", "--count", "2000", "--seed", "201"], kafkaEnv)
    await produce(brokers!, clicks, [{ key: "junk", value: "not json", partition: 0 }])
    await waitFor("rows written", () => count(db.url, "shop.checkout_attribution"), (n) => n > 0, 20_000).catch(withOutput(daemon))
    log("first rows written")

    await outage(daemon, 202, "{\"checkout_id\":\"bad-1\"}")
    const written = await count(db.url, "shop.checkout_attribution")
    log(`cut; chunk 2 produced and read; ${written} rows`)

    await proxy.restore()
    await waitFor("/readyz 200 again", () => httpStatus(daemon.port, "/readyz"), (s) => s === 200, 15_000).catch(withOutput(daemon))
    const r = await settledAsTheOracle(daemon)
    expect(r.checkouts, "the outage held back checkouts").toBeGreaterThan(written)
    expect(r.bad).toBe(2)
    log("restored; the same daemon wrote what it read meanwhile")
  }, 60_000)

  it("SIGTERM during an outage exits 0 within 10 s, and a restart writes what was missed", async () => {
    await outage(daemon, 203, "{\"checkout_id\":\"bad-2\"}")
    const written = await count(db.url, "shop.checkout_attribution")
    log(`cut again; chunk 3 produced and read; ${written} rows`)

    const stopped = await daemon.stop("SIGTERM")
    log(`SIGTERM: exit ${stopped.code} after ${stopped.ms} ms`)
    expect(stopped.code, daemon.output().slice(-3_000)).toBe(0)
    expect(stopped.ms, daemon.output().slice(-3_000)).toBeLessThan(10_000)
    // what was missed: checkouts without their row, the bad message not recorded
    const { ks, bad } = await expectations()
    expect(ks.length - await count(db.url, "shop.checkout_attribution"), "the outage left checkouts unwritten").toBeGreaterThan(0)
    expect(await count(db.url, "shop.ingest_errors")).toBe(bad.length - 1)

    // the database is back: a new daemon of the same group writes what was missed
    await proxy.restore()
    daemon = await start()
    const r = await settledAsTheOracle(daemon)
    expect(r.bad).toBe(3)
    log(`restarted: ${r.checkouts - written} missed checkouts written`)

    const term = await daemon.stop("SIGTERM")
    expect(term.code, daemon.output().slice(-2_000)).toBe(0)
  }, 60_000)
})
