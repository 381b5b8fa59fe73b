/**
 * PostgreSQL failing under a running daemon (issue 13): its connections killed
 * (`pg_terminate_backend`) again and again mid-run, its server restarted (a private embedded
 * server on its own port, stopped and started again), and a table locked so the sink cannot
 * write for a while. Each time the daemon keeps running, retries by itself, and ends with
 * exactly the oracle's attribution over what is in the topics and every valid message once in
 * the raw lake; while it cannot write, its reads pause (the read position stops while the
 * backlog grows) and its memory stays bounded.
 */
import { Effect, Exit, Scope } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as EmbeddedPostgres from "../../src/sinks/EmbeddedPostgres.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import { kafkaBrokers, uniqueName } from "../support/Kafka.ts"
import {
  apiStatus, attribution, checkoutsOf, clicksOf, count, type Daemon, differences, distCli, freePort, generate, httpStatus, node, readTopic, sleep,
  startDaemon, waitFor, writtenAttribution, lakeMessages } from "./Harness.ts"

const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()


interface Status { readonly eventsTotal: number; readonly process: { readonly rssBytes: number } | null }

describe.skipIf(brokers === undefined || !pgOk)("PostgreSQL faults under a running daemon", () => {
  const dbs: Array<{ url: string; name: string }> = []
  const running: Array<Daemon> = []
  const lakes: Array<string> = []
  afterAll(async () => {
    for (const d of running) await d.stop("SIGKILL")
    for (const db of dbs) await dropDatabase(db.name)
    for (const l of lakes) fs.rmSync(l, { recursive: true, force: true })
  })

  const topics = () => {
    const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
    return { KAFKA_BROKERS: brokers ?? "", CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: "2" }
  }
  const daemonEnv = (kafka: Record<string, string>, url: string) => {
    const lakeDir = fs.mkdtempSync(path.join(os.tmpdir(), "pgfaults-lake-"))
    lakes.push(lakeDir)
    return { env: { ...kafka, KAFKA_GROUP_ID: uniqueName("pgfaults"), DATABASE_URL: url, IDLE_TIMEOUT_MS: "1500", KAFKA_SESSION_TIMEOUT_MS: "6000", LAKE_DIR: lakeDir, LAKE_FLUSH_MS: "1000" }, lakeDir }
  }
  const live = (kafka: Record<string, string>, rate: number, seconds: number, seed: number) => {
    const p = spawn(node, [distCli, "generate", "--to", "kafka", "--rate", String(rate), "--duration", String(seconds), "--seed", String(seed)],
      { env: { ...process.env, ...kafka }, stdio: "ignore" })
    return new Promise((resolve) => p.once("exit", resolve))
  }
  /** the oracle's rows and the lake's exactly-once, once everything in the topics is written */
  const verify = async (kafka: Record<string, string>, url: string, lakeDir: string, d: Daemon) => {
    const cs = clicksOf(await readTopic(brokers!, kafka["CLICKS_TOPIC"]!)), ks = checkoutsOf(await readTopic(brokers!, kafka["CHECKOUTS_TOPIC"]!))
    await waitFor("every checkout written", () => count(url, "shop.checkout_attribution"), (n) => n >= ks.length, 60_000)
      .catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon ---\n${d.output().slice(-3_000)}`) })
    expect(differences(attribution(cs, ks), await writtenAttribution(url))).toEqual([])
    expect((await d.stop("SIGTERM")).code).toBe(0)
    for (const [topic, valid] of [[kafka["CLICKS_TOPIC"]!, cs.length], [kafka["CHECKOUTS_TOPIC"]!, ks.length]] as const) {
      const held = await lakeMessages(lakeDir, topic)
        .catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon ---\n${d.output().slice(-4_000)}`) })
      expect(held, `raw/${topic}`).toEqual({ n: String(valid), distinct_messages: String(valid) })
    }
  }

  it("its connections killed five times mid-run: it reconnects by itself, nothing lost, nothing doubled", async () => {
    const db = await createDatabase("insights_pgkill")
    dbs.push(db)
    const kafka = topics()
    await generate(["--rate", "max", "--count", "2000", "--seed", "31"], kafka)
    const { env, lakeDir } = daemonEnv(kafka, db.url)
    const d = await startDaemon(env)
    running.push(d)
    await waitFor("ready", () => httpStatus(d.port, "/readyz"), (s) => s === 200, 30_000)
    const producing = live(kafka, 1500, 8, 32)
    let killed = 0
    for (let i = 0; i < 5; i++) {
      await sleep(1_200)
      const rows = await query<{ n: number }>(db.url.replace(`/${db.name}`, "/postgres"),
        "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [db.name])
      killed += rows[0]!.n
    }
    expect(killed, "the daemon's connections were there to kill").toBeGreaterThan(0)
    await producing
    await waitFor("ready again", () => httpStatus(d.port, "/readyz"), (s) => s === 200, 30_000)
    await verify(kafka, db.url, lakeDir, d)
  }, 150_000)

  it("its server restarted mid-run (down for 5 s): it waits, reconnects and resumes", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "pgfaults-embedded-"))
    fs.chmodSync(dataDir, 0o755) // the OS user postgres runs the server when we are root
    lakes.push(dataDir)
    const port = await freePort()
    const startServer = async () => {
      const scope = await Effect.runPromise(Scope.make())
      const url = await Effect.runPromise(EmbeddedPostgres.start({ dataDir: path.join(dataDir, "data"), port }).pipe(Scope.provide(scope)))
      return { url, stop: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
    }
    let server = await startServer()
    try {
      const kafka = topics()
      await generate(["--rate", "max", "--count", "2000", "--seed", "41"], kafka)
      const { env, lakeDir } = daemonEnv(kafka, server.url)
      const d = await startDaemon(env)
      running.push(d)
      await waitFor("ready", () => httpStatus(d.port, "/readyz"), (s) => s === 200, 30_000)
      const producing = live(kafka, 1500, 10, 42)
      await sleep(2_000)
      await server.stop()
      await waitFor("/readyz 503 while the server is down", () => httpStatus(d.port, "/readyz"), (s) => s === 503, 15_000)
        .catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon ---\n${d.output().slice(-4_000)}`) })
      await sleep(5_000)
      expect(d.process.exitCode, "still running").toBeNull()
      server = await startServer()
      await producing
      await waitFor("ready again", () => httpStatus(d.port, "/readyz"), (s) => s === 200, 45_000)
        .catch((e) => { throw new Error(`${(e as Error).message}\n--- daemon ---\n${d.output().slice(-3_000)}`) })
      await verify(kafka, server.url, lakeDir, d)
    } finally {
      await server.stop()
    }
  }, 180_000)

  it("the positions table locked for 15 s: reads pause (the backlog grows, memory stays bounded), then everything is written", async () => {
    const db = await createDatabase("insights_pglock")
    dbs.push(db)
    const kafka = topics()
    await generate(["--rate", "max", "--count", "1000", "--seed", "51"], kafka)
    const { env, lakeDir } = daemonEnv(kafka, db.url)
    const d = await startDaemon(env)
    running.push(d)
    await waitFor("ready", () => httpStatus(d.port, "/readyz"), (s) => s === 200, 30_000)
    await waitFor("the backlog written", () => count(db.url, "shop.checkout_attribution"), (n) => n > 0, 30_000)
    // a second connection holds an exclusive lock on the positions: every sink's commit waits
    const { PgClient } = await import("@effect/sql-pg")
    const { SqlClient } = await import("effect/sql")
    const { Redacted, Layer } = await import("effect")
    const scope = await Effect.runPromise(Scope.make())
    const sqlLayer = PgClient.layer({ url: Redacted.make(db.url), maxConnections: 1 })
    const ctx = await Effect.runPromise(Layer.buildWithScope(sqlLayer, scope))
    const sql = (await import("effect")).Context.get(ctx, SqlClient.SqlClient)
    let release!: () => void
    const released = new Promise<void>((r) => { release = r })
    const holder = Effect.runPromise(sql.withTransaction(Effect.gen(function*() {
      yield* sql`LOCK TABLE shop.source_positions IN ACCESS EXCLUSIVE MODE`
      yield* Effect.promise(() => released)
    })))
    const producing = live(kafka, 4000, 15, 52)
    const samples: Array<{ events: number; rss: number }> = []
    for (let i = 0; i < 15; i++) {
      await sleep(1_000)
      const s = await apiStatus<Status>(d)
      if (s !== undefined && s.process !== null) samples.push({ events: s.eventsTotal, rss: s.process.rssBytes })
    }
    release()
    await holder
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await producing
    expect(samples.length).toBeGreaterThan(10)
    // 60 000 messages were produced meanwhile; the engine read at most its bounded queues' worth
    const readWhileLocked = samples[samples.length - 1]!.events - samples[0]!.events
    expect(readWhileLocked, "reads pause while the sink cannot commit").toBeLessThan(30_000)
    const rssGrowth = Math.max(...samples.map((s) => s.rss)) - samples[0]!.rss
    console.log(`[pgfaults] locked 15 s: ${readWhileLocked} messages read meanwhile (60 000 produced), RSS grew ${(rssGrowth / 2 ** 20).toFixed(1)} MB`)
    expect(rssGrowth, "memory stays bounded").toBeLessThan(200 * 2 ** 20)
    await verify(kafka, db.url, lakeDir, d)
  }, 180_000)
})
