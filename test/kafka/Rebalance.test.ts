/**
 * Members join and leave on a real broker (ARCHITECTURE: Tasks; SPEC §5). One consumer group
 * reads a live stream while its membership changes: a second member joins mid-stream and
 * takes two tasks, leaves with SIGTERM (they move back), a third joins, then the first is
 * frozen with SIGSTOP until the group gives its tasks to the third (a zombie), thawed with
 * SIGCONT so that it tries to write what it still held, and killed. The tables must equal,
 * row for row, those of ONE daemon (another group, another database) reading the same
 * topics without interruption; every move must be a claim (the task's epoch went up), and no
 * stale owner may have written last (every position row carries its task's current epoch).
 *
 * Event times: `generate --to kafka --rate max` stamps a whole chunk with the clock at
 * production, so chunks are in event-time order and nothing generated is late however the
 * reads interleave; a click and a checkout two hours behind, produced after chunk 2, are late
 * for every reader (their task has seen both topics' chunk 1 and 2 by then).
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import { createTopics, endOffsets, kafkaBrokers, produce, uniqueName } from "../support/Kafka.ts"
import {
  attribution, checkoutsOf, clicksOf, count, type Daemon, differences, generate, httpStatus, readTopic, sleep, startDaemon, waitFor,
  writtenAttribution, apiStatus
} from "./Harness.ts"

const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()

const PARTITIONS = 4
const LATE_PARTITION = 1

/** What the SPEC fixes: every table the attribution job writes, without processing-time columns. */
const tables = async (url: string) => ({
  attribution: await query(url, "SELECT * FROM shop.checkout_attribution ORDER BY checkout_id").then((rows) =>
    rows.map(({ written_at: _w, ...rest }) => rest)),
  late: await query(url, "SELECT topic, event_id FROM shop.late_events ORDER BY topic, event_id"),
  errors: await query(url, `SELECT source, "partition", "offset", payload, error FROM shop.ingest_errors ORDER BY source, "partition", "offset"`)
})

interface Owner { readonly task: number; readonly epoch: number; readonly owner: string }
const owners = async (url: string, source: string): Promise<Array<Owner>> =>
  (await query<{ task: number; epoch: string; owner: string }>(url,
    "SELECT task, epoch::text AS epoch, owner FROM shop.task_owners WHERE source = $1 ORDER BY task", [source]).catch(() => []))
    .map((r) => ({ task: r.task, epoch: Number(r.epoch), owner: r.owner }))

interface Status {
  readonly tasks: ReadonlyArray<{ id: number; epoch: number }>
  readonly partitions: ReadonlyArray<{ task: number | null; topic: string; partition: number; position: number }>
  readonly state: { pendingCheckouts: number }
  readonly sink: { batches: number }
}
const status = (d: Daemon) => apiStatus<Status>(d)

/**
 * How long moved tasks took to resume: from each one's claim (task_owners.claimed_at) to its
 * new owner's first committed position of the attribution job (source_positions.updated_at
 * under the new epoch), the longest over `tasks`, in ms.
 */
const resumedAfter = (url: string, source: string, tasks: ReadonlyArray<number>) =>
  waitFor("the moved tasks commit under their new owner", () => query<{ task: number; ms: string | null }>(url, `
      SELECT o.task, (extract(epoch FROM min(p.updated_at) - o.claimed_at) * 1000)::bigint::text AS ms
      FROM shop.task_owners o LEFT JOIN shop.source_positions p
        ON p.source = o.source AND p.task = o.task AND p.epoch = o.epoch AND p.job = 'attribution'
      WHERE o.source = $1 AND o.task = ANY($2::int[]) GROUP BY o.task, o.claimed_at`, [source, tasks]),
    (rows) => rows.length === tasks.length && rows.every((r) => r.ms !== null), 20_000)
    .then((rows) => Math.max(...rows.map((r) => Number(r.ms))))

/** task_owners' `owner` of a daemon (TaskOwnership.ownerName: host:pid). */
const ownerOf = (d: Daemon) => `:${d.process.pid}`
const ownedBy = (os: ReadonlyArray<Owner>, d: Daemon) => os.filter((o) => o.owner.endsWith(ownerOf(d))).map((o) => o.task)

describe.skipIf(brokers === undefined || !pgOk)("members join and leave on a real broker", () => {
  const dbs: Array<{ url: string; name: string }> = []
  const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
  const kafkaEnv = { KAFKA_BROKERS: brokers ?? "", CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: String(PARTITIONS) }
  // the lake writes a file every second, so moves, the zombie and the kill fall between flushes
  const lakeDir = fs.mkdtempSync(path.join(os.tmpdir(), "rebalance-lake-"))
  const engineEnv = (db: { url: string }, group: string) => ({
    ...kafkaEnv, KAFKA_GROUP_ID: group, DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500", KAFKA_SESSION_TIMEOUT_MS: "6000",
    LAKE_DIR: lakeDir, LAKE_FLUSH_MS: "1000"
  })
  const running: Array<Daemon> = []
  const start = async (db: { url: string }, group: string) => {
    const d = await startDaemon(engineEnv(db, group))
    running.push(d)
    return d
  }

  beforeAll(async () => {
    dbs.push(await createDatabase("insights_rebalance_ref"), await createDatabase("insights_rebalance"))
    await createTopics(brokers!, [clicks, checkouts], PARTITIONS)
  })
  afterAll(async () => {
    for (const d of running) {
      if (d.process.signalCode === "SIGSTOP") d.process.kill("SIGCONT")
      await d.stop("SIGKILL")
    }
    fs.rmSync(lakeDir, { recursive: true, force: true })
    for (const db of dbs) await dropDatabase(db.name)
  })

  const withOutput = (ds: ReadonlyArray<Daemon>) => (e: unknown): never => {
    throw new Error(`${(e as Error).message}\n${ds.map((d, i) => `--- member ${i + 1} (pid ${d.process.pid}) ---\n${d.output().slice(-2_500)}`).join("\n")}`)
  }

  /** Every checkout of the topics has its row, every bad message its error; then nothing more may come. */
  const settle = async (url: string, ds: ReadonlyArray<Daemon>, late = 2, timeoutMs = 30_000) => {
    const cm = await readTopic(brokers!, clicks), km = await readTopic(brokers!, checkouts)
    const cs = checkoutsOf(km).length
    const bad = cm.length - clicksOf(cm).length + km.length - cs
    await waitFor("every checkout and bad message written",
      () => Promise.all([count(url, "shop.checkout_attribution"), count(url, "shop.ingest_errors"), count(url, "shop.late_events")]),
      ([rows, errors, lates]) => rows >= cs && errors >= bad && lates >= late, timeoutMs, 250).catch(withOutput(ds))
    await sleep(1_000)
  }

  const waitOwners = (url: string, source: string, what: string, ok: (os: Array<Owner>) => boolean, ds: ReadonlyArray<Daemon>, timeoutMs = 30_000) =>
    waitFor(what, () => owners(url, source), (os) => os.length === PARTITIONS && ok(os), timeoutMs, 100).catch(withOutput(ds))

  /** Tasks that changed hands between two snapshots went up by one claim; the others kept their epoch. */
  const expectMoves = (before: ReadonlyArray<Owner>, after: ReadonlyArray<Owner>, moved: ReadonlyArray<number>) => {
    for (const a of after) {
      const b = before.find((o) => o.task === a.task)!
      if (moved.includes(a.task)) {
        expect(a.owner, `task ${a.task} moved`).not.toBe(b.owner)
        expect(a.epoch, `task ${a.task}: its move is a claim`).toBe(b.epoch + 1)
      } else {
        expect(a, `task ${a.task} stayed`).toEqual(b)
      }
    }
  }

  it("a live stream through joins, a SIGTERM, a zombie and a kill -9 gives the tables of one uninterrupted member; every move is fenced", async () => {
    const [reference, rebalanced] = [dbs[0]!, dbs[1]!]
    const group = uniqueName("rebalance"), source = `kafka:${group}`
    const t0 = Date.now()
    const log = (what: string) => console.log(`[rebalance +${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`)

    // ---- member 1 alone: it claims every task
    const m1 = await start(rebalanced, group)
    await waitFor("member 1 ready", () => httpStatus(m1.port, "/readyz"), (s) => s === 200, 30_000).catch(withOutput([m1]))
    const s0 = await waitOwners(rebalanced.url, source, "member 1 owns every task", (os) => ownedBy(os, m1).length === PARTITIONS, [m1])
    expect(s0.map((o) => o.epoch)).toEqual([1, 1, 1, 1])
    log("member 1 owns every task")

    // ---- chunk 1 (and two bad messages), read by member 1
    await generate(["--rate", "max", "--count", "1500", "--seed", "101"], kafkaEnv)
    await produce(brokers!, clicks, [{ key: "junk", value: "not json", partition: 0 }])
    await produce(brokers!, checkouts, [{ key: "junk", value: "{\"checkout_id\":1}", partition: 3 }])
    await waitFor("member 1 writes rows", () => count(rebalanced.url, "shop.checkout_attribution"), (n) => n > 0, 20_000).catch(withOutput([m1]))
    log("chunk 1 written")

    // ---- member 2 joins mid-stream: it claims two tasks, member 1 keeps two
    const m2 = await start(rebalanced, group)
    const s1 = await waitOwners(rebalanced.url, source, "member 2 owns two tasks", (os) => ownedBy(os, m2).length === 2 && ownedBy(os, m1).length === 2, [m1, m2])
    const ofM2 = ownedBy(s1, m2)
    expectMoves(s0, s1, ofM2)
    await waitFor("member 1 dropped the tasks it lost", () => status(m1), (s) => s !== undefined && s.tasks.length === 2, 10_000).catch(withOutput([m1, m2]))
    log(`member 2 joined with tasks ${ofM2}; they resumed ${await resumedAfter(rebalanced.url, source, ofM2)} ms after their claim`)

    // ---- chunk 2, read by both, then a click and a checkout two hours behind (late)
    await generate(["--rate", "max", "--count", "1500", "--seed", "102"], kafkaEnv)
    const km = await readTopic(brokers!, checkouts)
    const template = km.map((m) => { try { return JSON.parse(m.value ?? "") as Record<string, unknown> } catch { return undefined } })
      .find((v) => typeof v?.["checkout_id"] === "string" && typeof v["product_id"] === "string")!
    const lateTs = Date.now() - 2 * 3_600_000
    await produce(brokers!, clicks, [{ key: "late-user", partition: LATE_PARTITION, value: JSON.stringify({
      click_id: "late-click-1", user_id: "late-user", product_id: template["product_id"], source: "Gmail", click_timestamp: new Date(lateTs).toISOString()
    }) }])
    await produce(brokers!, checkouts, [{ key: "late-user", partition: LATE_PARTITION, value: JSON.stringify({
      ...template, checkout_id: "late-checkout-1", user_id: "late-user", checkout_timestamp: new Date(lateTs + 60_000).toISOString()
    }) }])
    await settle(rebalanced.url, [m1, m2])
    log("chunk 2 and the late events written")

    // ---- member 2 leaves with SIGTERM: its tasks move back to member 1 (claimed again)
    const term = await m2.stop("SIGTERM")
    expect(term.code, m2.output().slice(-2_000)).toBe(0)
    expect(term.ms).toBeLessThan(10_000)
    const s2 = await waitOwners(rebalanced.url, source, "member 1 owns every task again", (os) => ownedBy(os, m1).length === PARTITIONS, [m1])
    expectMoves(s1, s2, ofM2)
    log("member 2 stopped; its tasks are back on member 1")

    // ---- member 3 joins: it claims two tasks of member 1
    const m3 = await start(rebalanced, group)
    const s3 = await waitOwners(rebalanced.url, source, "member 3 owns two tasks", (os) => ownedBy(os, m3).length === 2 && ownedBy(os, m1).length === 2, [m1, m3])
    const ofM3 = ownedBy(s3, m3), ofM1 = ownedBy(s3, m1)
    expectMoves(s2, s3, ofM3)
    await waitFor("member 1 dropped the tasks it lost", () => status(m1), (s) => s !== undefined && s.tasks.length === 2, 10_000).catch(withOutput([m1, m3]))
    log(`member 3 joined with tasks ${ofM3}; they resumed ${await resumedAfter(rebalanced.url, source, ofM3)} ms after their claim`)

    // ---- chunk 3; member 1 is frozen once it has read all of its part, before it wrote it all
    await generate(["--rate", "max", "--count", "1500", "--seed", "103"], kafkaEnv)
    const ends = new Map<string, number>()
    for (const topic of [clicks, checkouts]) for (const [p, end] of await endOffsets(brokers!, topic)) ends.set(`${topic}/${p}`, end)
    const frozen = (await waitFor("member 1 has read its part of chunk 3 and still holds checkouts", () => status(m1), (s) =>
      s !== undefined && s.state.pendingCheckouts > 0 &&
      s.partitions.filter((p) => p.task !== null).length === 4 &&
      s.partitions.every((p) => p.task === null || p.position === ends.get(`${p.topic}/${p.partition}`)), 5_000, 20).catch(withOutput([m1, m3])))!
    m1.process.kill("SIGSTOP")
    log(`member 1 frozen holding ${frozen.state.pendingCheckouts} checkouts (${frozen.sink.batches} batches written)`)

    // the group gives its tasks to member 3 once its session expires; member 3 writes everything
    const s4 = await waitOwners(rebalanced.url, source, "member 3 owns every task", (os) => ownedBy(os, m3).length === PARTITIONS, [m1, m3])
    expectMoves(s3, s4, ofM1)
    await settle(rebalanced.url, [m1, m3])
    log("member 3 took over and wrote chunk 3")

    // ---- the zombie wakes: whatever it still held for its old tasks must not be written
    // who wrote each position last (the live member may still move its own positions meanwhile)
    const writers = () => query(rebalanced.url, `SELECT job, topic, "partition", task, epoch::text FROM shop.source_positions ORDER BY job, topic, "partition"`)
    const positionsBefore = await writers()
    m1.process.kill("SIGCONT")
    const before = m1.output().length
    const after = () => m1.output().slice(before)
    // it steps: writes (batches grow), finds itself fenced, or hears of the rebalance first
    const woke = (await waitFor("the zombie steps once", () => status(m1), (s) =>
      s !== undefined && (s.sink.batches > frozen.sink.batches || /dropped \((another member claimed it: fenced|revoked)\)/.test(after())),
      10_000, 20).catch(withOutput([m1, m3])))!
    await m1.stop("SIGKILL")
    const zombieOutput = after()
    log(`the zombie stepped (batches ${woke.sink.batches}, tasks ${JSON.stringify(woke.tasks)}) and was killed`)
    expect.soft(await writers(), "the zombie wrote no position")
      .toEqual(positionsBefore)
    expect.soft(woke.sink.batches, "a fenced member writes nothing").toBe(frozen.sink.batches)
    // it either tries to write and is fenced, or hears of the rebalance first and drops its tasks: either way it writes nothing
    expect(zombieOutput, "the zombie dropped its tasks").toMatch(/dropped \((another member claimed it: fenced|revoked)\)/)

    // if the zombie managed to rejoin before it was killed, its tasks come back to member 3
    const s5 = await waitOwners(rebalanced.url, source, "member 3 owns every task at the end", (os) => ownedBy(os, m3).length === PARTITIONS, [m3])
    for (const o of s5) expect(o.epoch).toBeGreaterThanOrEqual(s4.find((b) => b.task === o.task)!.epoch)
    await settle(rebalanced.url, [m3])
    log("settled")

    // ---- the fence: every position was written last by its task's current owner, at the end of its partition
    const all = await query<{ job: string; topic: string; partition: number; next_offset: string; task: number; epoch: string; current: string | null }>(rebalanced.url, `
      SELECT p.job, p.topic, p."partition", p.next_offset::text, p.task, p.epoch::text, o.epoch::text AS current
      FROM shop.source_positions p LEFT JOIN shop.task_owners o ON o.source = p.source AND o.task = p.task
      WHERE p.source = $1 ORDER BY p.job, p.topic, p."partition"`, [source])
    for (const p of all) {
      expect(p.task, `${p.job} ${p.topic}/${p.partition}`).toBe(p.partition)
      // attribution commits with every batch; the lake only when it renames files (within 5 minutes), so
      // an earlier owner's lake position may still stand, but never a later one's
      if (p.job === "attribution") expect(p.epoch, `${p.topic}/${p.partition}: written by its task's current owner`).toBe(p.current)
      else expect(Number(p.epoch), `${p.job} ${p.topic}/${p.partition}`).toBeLessThanOrEqual(Number(p.current))
    }
    // the lake's positions follow its files (every 5 minutes); attribution's are at the end
    const positions = all.filter((p) => p.job === "attribution")
    expect(positions.length).toBe(2 * PARTITIONS)
    for (const p of positions) expect(Number(p.next_offset), `${p.topic}/${p.partition} read to its end`).toBe(ends.get(`${p.topic}/${p.partition}`))
    // member 2's tasks moved three times (to 2, back to 1, to 3), the others once (to 3)
    for (const o of s5) expect(o.epoch, `task ${o.task}`).toBeGreaterThanOrEqual(ofM2.includes(o.task) ? 4 : 2)

    // ---- the reference: ONE member over the whole backlog, into its own database
    const one = await start(reference, uniqueName("reference"))
    await settle(reference.url, [one])
    log("reference settled")

    const cm = await readTopic(brokers!, clicks), km2 = await readTopic(brokers!, checkouts)
    const cs = clicksOf(cm), ks = checkoutsOf(km2)
    expect(cm.length - cs.length + km2.length - ks.length).toBe(2)
    // the reference is right: the oracle's attribution for the on-time events; the late pair is late
    const oracle = attribution(cs.filter((c) => c.id !== "late-click-1"), ks.filter((k) => k.id !== "late-checkout-1"))
    oracle.set("late-checkout-1", null)
    expect(differences(oracle, await writtenAttribution(reference.url))).toEqual([])
    const ref = await tables(reference.url)
    expect(ref.late).toEqual([{ topic: checkouts, event_id: "late-checkout-1" }, { topic: clicks, event_id: "late-click-1" }].sort((a, b) => a.topic < b.topic ? -1 : 1))
    expect(ref.attribution.find((r) => r["checkout_id"] === "late-checkout-1")).toMatchObject({ is_late: true, click_id: null })
    expect(ref.errors.length).toBe(2)
    expect(ref.attribution.filter((r) => r["click_id"] !== null).length).toBeGreaterThan(ref.attribution.length / 2)

    // ---- row for row
    const got = await tables(rebalanced.url)
    expect(got.attribution.length).toBe(ks.length)
    expect(got).toEqual(ref)
    log("equal")

    // ---- the lake: every valid message of the moved, fenced and killed members exactly once
    expect((await m3.stop("SIGTERM")).code).toBe(0) // a clean stop writes what it buffered
    const tag = createHash("sha1").update(source).digest("hex").slice(0, 8)
    const duck = await (await DuckDBInstance.create(":memory:")).connect()
    for (const [topic, valid] of [[clicks, cs.length], [checkouts, ks.length]] as const) {
      const [row] = (await duck.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT ("partition", "offset")) AS distinct_messages
        FROM read_parquet('${lakeDir}/raw/${topic}/**/*.parquet', hive_partitioning = true, filename = true)
        WHERE parse_filename(filename) LIKE '${tag}-%'`)).getRowObjectsJson()
      expect(row, `raw/${topic}`).toEqual({ n: String(valid), distinct_messages: String(valid) })
    }
    duck.closeSync()
  }, 150_000)
})
