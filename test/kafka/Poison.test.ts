/**
 * SPEC §1 (Limits, Bad input) on real Kafka, through the daemon (`node dist/main.js`): while a
 * backlog flows in chunks (`generate --to kafka`), the whole poison corpus is produced with
 * kcat in its middle, some messages bare to a fixed partition (-p), some keyed (kcat's own
 * partitioner, or -p), with valid checkouts whose row PostgreSQL must refuse (total_amount past
 * numeric(12,2)); then the rest of the backlog. The daemon never exits and stays healthy; every
 * poison message and every refused checkout is in ingest_errors exactly once, under
 * `kafka:<group>` at its topic, partition and offset, with its payload and why; every other
 * checkout is written with the oracle's attribution within 60 s of the last message, none
 * late; SIGTERM exits 0 with every partition's position at its end.
 *
 * kcat sends one message a line; the two corpus values with a line break, and the 1 MB one
 * (past librdkafka's default message.max.bytes), go through kcat with a message delimiter
 * (-D) instead. "lone surrogate as a raw character" is left out: UTF-8 has no bytes for a lone
 * surrogate, it arrives as U+FFFD, a valid checkout (see PoisonTransport.ts).
 */
import { execFile, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { committedOffsets, createTopics, endOffsets, kafkaBrokers, uniqueName } from "../support/Kafka.ts"
import { poisonToSend, type SentPoison } from "../support/PoisonTransport.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"
import {
  attribution, checkoutsOf, clicksOf, count, type Daemon, differences, generate, httpStatus, kcatProduce, startDaemon,
  type TopicMessage, waitFor, writtenAttribution, attributionPositions
} from "./Harness.ts"

const exec = promisify(execFile)
const brokers = await kafkaBrokers()
const pgOk = await postgresAvailable()
const PARTITIONS = 3
const MAX_QUANTITY = 2_147_483_647
const NUMERIC_12_2_BOUND = 9_999_999_999.995
/** all checkouts written within this of the last message produced */
const BOUND_MS = 60_000

/** Every message of `topic` as kcat reads it, as JSON envelopes (so values may hold line breaks). */
const readTopicJson = async (topic: string): Promise<Array<TopicMessage>> => {
  const { stdout } = await exec("kcat", ["-C", "-b", brokers!.split(",")[0]!, "-t", topic, "-o", "beginning", "-e", "-q", "-J"], { maxBuffer: 1 << 30 })
  return stdout.split("\n").filter((l) => l !== "").map((l) => {
    const m = JSON.parse(l) as { partition: number; offset: number; key: string | null; payload: string | null }
    return { topic, partition: m.partition, offset: m.offset, key: m.key, value: m.payload }
  })
}

const DELIMITER = "\u001e<end of message>\u001e"

/** kcat with a message delimiter instead of a newline, and room for a 1 MB message. */
const kcatProduceDelimited = async (topic: string, messages: ReadonlyArray<string>, keyed: boolean, partition?: number): Promise<void> => {
  for (const m of messages) if (m.includes(DELIMITER)) throw new Error("a message holds the delimiter")
  await new Promise<void>((resolve, reject) => {
    const args = ["-P", "-b", brokers!.split(",")[0]!, "-t", topic, "-D", DELIMITER, "-X", "message.max.bytes=1048576",
      ...(keyed ? ["-K", "\t"] : []), ...(partition === undefined ? [] : ["-p", String(partition)])]
    const child = spawn("kcat", args, { stdio: ["pipe", "ignore", "pipe"] })
    let err = ""
    child.stderr.on("data", (d) => { err += d })
    child.once("exit", (code) => code === 0 && err === "" ? resolve() : reject(new Error(`kcat exited ${code}: ${err}`)))
    child.stdin.end(messages.map((m) => m + DELIMITER).join(""))
  })
}

describe.skipIf(brokers === undefined || !pgOk)("Kafka: the poison corpus in the middle of a flowing backlog", () => {
  let db: { url: string; name: string }
  let lakeDir: string
  const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts"), group = uniqueName("engine-poison")
  const topicOf = { clicks, checkouts }
  const kafkaEnv = () => ({ KAFKA_BROKERS: brokers!, CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: String(PARTITIONS) })
  let daemon: Daemon | undefined
  let exitedWhileRunning: number | null | undefined
  let sent: Array<SentPoison> = []
  let untransportable: Array<string> = []
  const refused: Array<Record<string, unknown>> = []
  let generatedCheckouts = 0
  let producedAt = 0
  let producedIn = 0

  beforeAll(async () => {
    db = await createDatabase("insights_kafka_poison")
    lakeDir = fs.mkdtempSync(path.join(os.tmpdir(), "poison-lake-"))
  })
  afterAll(async () => {
    if (daemon !== undefined) await daemon.stop("SIGKILL")
    if (db) await dropDatabase(db.name)
    if (lakeDir) fs.rmSync(lakeDir, { recursive: true, force: true })
  })

  const chunk = async (seed: number, n: number) => {
    const out = await generate(["--rate", "max", "--count", String(n), "--seed", String(seed)], kafkaEnv())
    const m = /produced ([\d,]+) messages \(([\d,]+) clicks, ([\d,]+) checkouts\)/.exec(out)
    expect(m, out).not.toBeNull()
    expect(Number(m![1]!.replaceAll(",", ""))).toBe(n)
    generatedCheckouts += Number(m![3]!.replaceAll(",", ""))
  }

  /** The corpus with kcat: bare to a fixed partition, keyed with kcat's partitioner, keyed to a fixed partition. */
  const producePoison = async () => {
    const poison = poisonToSend(Date.now())
    sent = poison.sent
    untransportable = poison.untransportable
    const groups = new Map<string, { topic: string; keyed: boolean; partition: number | undefined; delimited: boolean; lines: Array<string> }>()
    sent.forEach((p, i) => {
      // kcat skips an empty line: an empty message needs a key
      const mode = p.value === "" ? 1 : i % 3
      const keyed = mode !== 0
      const partition = mode === 1 ? undefined : i % PARTITIONS
      const delimited = /[\r\n]/.test(p.value) || p.value.length > 900_000
      const k = `${p.topic} ${keyed} ${partition} ${delimited}`
      if (!groups.has(k)) groups.set(k, { topic: topicOf[p.topic], keyed, partition, delimited, lines: [] })
      groups.get(k)!.lines.push(keyed ? `poison-${i}\t${p.value}` : p.value)
    })
    for (const g of groups.values()) {
      if (g.delimited) await kcatProduceDelimited(g.topic, g.lines, g.keyed, g.partition)
      else await kcatProduce(brokers!, g.topic, g.lines, g.keyed, g.partition)
    }
    expect([...groups.values()].filter((g) => g.delimited).reduce((a, g) => a + g.lines.length, 0)).toBe(3)
  }

  /** Valid checkouts of real users and expensive products: quantity 2147483647 makes total_amount overflow numeric(12,2). */
  const produceRefused = async () => {
    const users = fs.readFileSync("data/Users.csv", "utf-8").trimEnd().split("\n").slice(1).map((l) => l.split(",")[0]!)
    const products = fs.readFileSync("data/Products.csv", "utf-8").trimEnd().split("\n").slice(1)
      .map((l) => { const f = l.split(","); return { id: f[0]!, price: Number(f.at(-2)) } })
      .filter((p) => p.price * MAX_QUANTITY >= 2 * NUMERIC_12_2_BOUND)
    expect(products.length).toBeGreaterThanOrEqual(3)
    const now = Date.now()
    for (let i = 0; i < 3; i++) {
      refused.push({
        checkout_id: `refused-${i}`, user_id: users[i * 7]!, product_id: products[i]!.id, quantity: MAX_QUANTITY, shipping_cost: 4.5, discount: 0,
        payment_method: "Visa", payment_status: "Success", payment_description: "None", shipping_address: "1 Main St",
        checkout_timestamp: new Date(now + i).toISOString()
      })
    }
    await kcatProduce(brokers!, checkouts, refused.map((k) => `${k["user_id"]}\t${JSON.stringify(k)}`), true)
  }

  it("the daemon stays up while a backlog flows in with the poison corpus in its middle", async () => {
    await createTopics(brokers!, [clicks, checkouts], PARTITIONS)
    daemon = await startDaemon({ ...kafkaEnv(), KAFKA_GROUP_ID: group, DATABASE_URL: db.url, IDLE_TIMEOUT_MS: "1500", LAKE_DIR: lakeDir })
    const d = daemon
    void d.exited.then((code) => { exitedWhileRunning = code })
    const ready = await waitFor("/readyz", () => httpStatus(d.port, "/readyz"), (s) => s === 200 || d.process.exitCode !== null, 30_000)
    expect(ready, d.output().slice(-3_000)).toBe(200)

    const started = Date.now()
    await chunk(501, 6_000)
    await chunk(502, 6_000)
    await producePoison()
    await produceRefused()
    await chunk(503, 6_000)
    await chunk(504, 6_000)
    producedAt = Date.now()
    producedIn = producedAt - started
    expect(exitedWhileRunning, d.output().slice(-3_000)).toBeUndefined()
    expect(untransportable).toEqual(["lone surrogate as a raw character"])
    expect(sent.length).toBe(56)
  }, 120_000)

  it("records every poison message and refused checkout once, writes every other checkout as the oracle says, within 60 s", async () => {
    const d = daemon!
    const [clickMessages, checkoutMessages] = [await readTopicJson(clicks), await readTopicJson(checkouts)]
    const messages = { clicks: clickMessages, checkouts: checkoutMessages }
    // where each poison message and refused checkout landed
    const at = (m: TopicMessage) => `kafka:${group} ${m.topic}/${m.partition}@${m.offset}`
    const expectedErrors = new Map<string, { name: string; payload: string; reason: string }>()
    const locate = (topic: "clicks" | "checkouts", value: string, e: { name: string; payload: string; reason: string }) => {
      const found = messages[topic].filter((m) => m.value === value)
      expect(found.map(at), e.name).toHaveLength(1)
      expectedErrors.set(at(found[0]!), e)
    }
    for (const p of sent) locate(p.topic, p.received, { name: p.name, payload: p.payload, reason: p.reason })
    for (const k of refused) {
      locate("checkouts", JSON.stringify(k), { name: String(k["checkout_id"]), payload: JSON.stringify(k), reason: "refused by PostgreSQL: numeric field overflow" })
    }
    // the poison went to every partition, keyed and bare, and sat in the middle of the backlog
    const poisonAt = [...expectedErrors.keys()]
    expect(new Set(poisonAt.map((k) => k.replace(/@\d+$/, ""))).size).toBe(2 * PARTITIONS)
    for (const topic of [clicks, checkouts]) {
      const ends = await endOffsets(brokers!, topic)
      for (const k of poisonAt.filter((k) => k.includes(` ${topic}/`))) {
        const [, p, o] = /\/(\d+)@(\d+)$/.exec(k)!
        expect(Number(o), k).toBeGreaterThan(0)
        expect(Number(o), k).toBeLessThan(ends.get(Number(p))! - 1)
      }
    }

    const valid = (ms: ReadonlyArray<TopicMessage>) => ms.filter((m) => !expectedErrors.has(at(m)))
    const cs = clicksOf(valid(clickMessages))
    const ks = checkoutsOf(valid(checkoutMessages))
    expect(ks.length).toBe(generatedCheckouts)
    expect(cs.length + ks.length).toBe(24_000)
    const expected = attribution(cs, ks)

    // on time out, the comparisons below say what is missing; then the time out fails the test
    let timedOut: string | undefined
    await waitFor("every checkout and every ingest error written",
      () => Promise.all([count(db.url, "shop.checkout_attribution"), count(db.url, "shop.ingest_errors")]),
      ([rows, errors]) => (rows >= ks.length && errors >= expectedErrors.size) || d.process.exitCode !== null, Math.max(1_000, producedAt + BOUND_MS - Date.now()))
      .catch((e) => { timedOut = `${(e as Error).message}\n--- daemon output ---\n${d.output().slice(-3_000)}` })
    const writtenAfter = Date.now() - producedAt
    if (timedOut === undefined) await new Promise((r) => setTimeout(r, 1_500)) // nothing more may come
    expect(exitedWhileRunning, `the daemon exited\n${d.output().slice(-3_000)}`).toBeUndefined()

    expect(differences(expected, await writtenAttribution(db.url))).toEqual([])
    expect([...expected.values()].filter((c) => c !== null).length).toBeGreaterThan(ks.length * 0.8)
    expect(await count(db.url, "shop.late_events")).toBe(0)

    const rows = await query<{ input: string; source: string; partition: number; offset: string; payload: string; error: string }>(db.url,
      `SELECT input, source, "partition", "offset"::text, payload, error FROM shop.ingest_errors`)
    const problems: Array<string> = []
    const seen = new Set<string>()
    for (const r of rows) {
      const k = `${r.input} ${r.source}/${r.partition}@${r.offset}`
      if (seen.has(k)) problems.push(`${k} recorded twice`)
      seen.add(k)
      const e = expectedErrors.get(k)
      if (e === undefined) { problems.push(`unexpected ingest error ${k}: ${r.error.slice(0, 200)}`); continue }
      if (r.payload !== e.payload) problems.push(`${e.name}: payload ${JSON.stringify(r.payload.slice(0, 80))}… is not the message's (escaped)`)
      if (!r.error.includes(e.reason)) problems.push(`${e.name}: error ${JSON.stringify(r.error.slice(0, 300))} does not say ${JSON.stringify(e.reason)}`)
    }
    for (const [k, e] of expectedErrors) if (!seen.has(k)) problems.push(`${e.name}: no ingest error at ${k}`)
    expect(problems).toEqual([])
    expect(rows.length).toBe(sent.length + refused.length)
    expect(timedOut).toBeUndefined()

    // still up, still healthy
    expect(d.process.exitCode).toBeNull()
    expect(await httpStatus(d.port, "/healthz")).toBe(200)
    console.log(`produced 24,000 messages + ${sent.length} poison + ${refused.length} refused in ${producedIn} ms; ` +
      `every row written ${writtenAfter} ms after the last message`)
  }, 120_000)

  it("SIGTERM: exits 0 within 10 s, every partition's position at its end (none stalled)", async () => {
    const { code, ms } = await daemon!.stop("SIGTERM")
    expect(code, daemon!.output().slice(-2_000)).toBe(0)
    expect(ms).toBeLessThan(10_000)
    daemon = undefined
    for (const topic of [clicks, checkouts]) {
      const ends = await endOffsets(brokers!, topic)
      expect(await attributionPositions(db.url, `kafka:${group}`, topic)).toEqual(ends)
      expect(await committedOffsets(brokers!, group, topic)).toEqual(ends)
    }
  }, 30_000)
})
