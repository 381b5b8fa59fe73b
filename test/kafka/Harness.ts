/**
 * End-to-end helpers for the Kafka suites: the daemon as a child process (`node dist/main.js`,
 * so `npm run build` first, as `npm test` does), what is in a topic as an independent client
 * reads it (kcat), and SPEC §3 computed directly from the messages (the oracle).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as path from "node:path"
import { promisify } from "node:util"
import { query } from "../support/TestDatabase.ts"
import { freePort } from "../../src/http/FreePort.ts"
import { DuckDBInstance } from "@duckdb/node-api"

export { freePort }

const exec = promisify(execFile)
export const node = process.execPath
/** the build under test (`INSIGHTS_DIST_DIR` to try another build) */
const dist = path.resolve(process.env["INSIGHTS_DIST_DIR"] ?? "dist")
export const distMain = path.join(dist, "main.js")
export const distCli = path.join(dist, "cli.js")

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))


export const waitFor = async <A>(what: string, read: () => Promise<A>, done: (a: A) => boolean, timeoutMs = 30_000, everyMs = 200): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const a = await read()
    if (done(a)) return a
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(a)?.slice(0, 500)}`)
    await sleep(everyMs)
  }
}

export interface Daemon {
  readonly port: number
  readonly process: ChildProcess
  /** everything it wrote, for failure messages */
  readonly output: () => string
  /** sends `signal`, waits for the exit: its code and how long it took */
  readonly stop: (signal: NodeJS.Signals) => Promise<{ readonly code: number | null; readonly ms: number }>
  readonly exited: Promise<number | null>
}

/** How long `stop` waits for the exit before it kills the daemon and fails. */
const STOP_TIMEOUT_MS = 30_000

/** Starts `node dist/main.js` with `env` on a free HTTP port. */
export const startDaemon = async (env: Record<string, string>): Promise<Daemon> => {
  const port = await freePort()
  const child = spawn(node, [distMain], {
    // one member per daemon unless a test asks for more (WORKERS defaults to one per core)
    env: { ...process.env, HTTP_PORT: String(port), WORKERS: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout!.on("data", (d) => { output += d })
  child.stderr!.on("data", (d) => { output += d })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return {
    port,
    process: child,
    output: () => output,
    exited,
    stop: async (signal) => {
      const started = Date.now()
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      // a daemon that does not stop fails the test with what it wrote, not a test timeout
      // minutes later with nothing to go on (SIGTERM must stop it within 10 s)
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<"late">((resolve) => { timer = setTimeout(() => resolve("late"), STOP_TIMEOUT_MS) })
      const code = await Promise.race([exited, late]).finally(() => clearTimeout(timer))
      if (code === "late") {
        child.kill("SIGKILL")
        await exited
        throw new Error(`the daemon did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}\n--- daemon ---\n${output.slice(-4_000)}`)
      }
      return { code, ms: Date.now() - started }
    }
  }
}

/** GET on the daemon: the status code, or 0 when nothing answers. */
export const httpStatus = async (port: number, urlPath: string): Promise<number> => {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(2_000) })
    await r.arrayBuffer()
    return r.status
  } catch {
    return 0
  }
}

export interface TopicMessage {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly key: string | null
  readonly value: string | null
}

/** Every message of `topic` as kcat reads it (independent of kafkajs). */
export const readTopic = async (brokers: string, topic: string): Promise<Array<TopicMessage>> => {
  const { stdout } = await exec("kcat", ["-C", "-b", brokers.split(",")[0]!, "-t", topic, "-o", "beginning", "-e", "-q",
    "-f", "%p\\t%o\\t%K\\t%k\\t%S\\t%s\\n"], { maxBuffer: 1 << 30 })
  const out: Array<TopicMessage> = []
  for (const line of stdout.split("\n")) {
    if (line === "") continue
    const [p, o, keyLen, ...rest] = line.split("\t")
    // %K is the key length (-1 for null), %S the value length (-1 for null)
    const kl = Number(keyLen)
    const joined = rest.join("\t")
    const key = kl < 0 ? null : joined.slice(0, kl)
    const after = joined.slice(Math.max(kl, 0) + 1)
    const tab = after.indexOf("\t")
    const vl = Number(after.slice(0, tab))
    const value = vl < 0 ? null : after.slice(tab + 1)
    out.push({ topic, partition: Number(p), offset: Number(o), key, value })
  }
  return out
}

/** Produces lines with kcat's own (default) partitioner: `key<TAB>value` lines, or bare values without a key. */
/** Produces `lines` with kcat: its own partitioner, or partition `partition` when given. */
export const kcatProduce = async (brokers: string, topic: string, lines: ReadonlyArray<string>, keyed: boolean, partition?: number): Promise<void> => {
  await new Promise<void>((resolve, reject) => {
    const args = ["-P", "-b", brokers.split(",")[0]!, "-t", topic, ...(keyed ? ["-K", "\t"] : []), ...(partition === undefined ? [] : ["-p", String(partition)])]
    const child = spawn("kcat", args, { stdio: ["pipe", "ignore", "pipe"] })
    let err = ""
    child.stderr.on("data", (d) => { err += d })
    child.once("exit", (code) => code === 0 ? resolve() : reject(new Error(`kcat exited ${code}: ${err}`)))
    child.stdin.end(lines.map((l) => l + "\n").join(""))
  })
}

// ---- the oracle: SPEC §3 from the messages, written from the SPEC, not from the engine

/** `partition`: events join only within one partition number (a task), keyed by the user they name. */
export interface Click { readonly id: string; readonly user: string; readonly product: string | null; readonly ts: number; readonly partition: number }
export interface Checkout { readonly id: string; readonly user: string; readonly product: string; readonly ts: number; readonly partition: number }

const A = 3_600_000

/** Naive timestamps are UTC; ids may be JSON integers. */
const time = (s: unknown): number => typeof s === "string" ? Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s.replace(" ", "T") : s.replace(" ", "T") + "Z") : NaN
const id = (v: unknown): string | undefined => typeof v === "string" && v !== "" ? v : typeof v === "number" && Number.isInteger(v) ? String(v) : undefined

const parse = (value: string | null): Record<string, unknown> | undefined => {
  if (value === null) return undefined
  try {
    const v = JSON.parse(value)
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v : undefined
  } catch {
    return undefined
  }
}

/** The valid clicks among `messages` (the oracle's test data has only obviously bad messages besides valid ones). */
export const clicksOf = (messages: ReadonlyArray<TopicMessage>): Array<Click> =>
  messages.flatMap((m) => {
    const v = parse(m.value)
    const cid = id(v?.["click_id"]), user = id(v?.["user_id"]), ts = time(v?.["click_timestamp"])
    if (v === undefined || cid === undefined || user === undefined || Number.isNaN(ts)) return []
    return [{ id: cid, user, product: id(v["product_id"]) ?? null, ts, partition: m.partition }]
  })

export const checkoutsOf = (messages: ReadonlyArray<TopicMessage>): Array<Checkout> =>
  messages.flatMap((m) => {
    const v = parse(m.value)
    const kid = id(v?.["checkout_id"]), user = id(v?.["user_id"]), product = id(v?.["product_id"]), ts = time(v?.["checkout_timestamp"])
    if (v === undefined || kid === undefined || user === undefined || product === undefined || Number.isNaN(ts)) return []
    return [{ id: kid, user, product, ts, partition: m.partition }]
  })

/**
 * checkout id → attributed click id (null: unattributed), for in-order data (nothing late).
 * A click and a checkout meet only on the same partition number (SPEC §1: producers key by
 * user, so a user's events share one; the engine's task n reads partition n of both topics).
 */
export const attribution = (clicks: ReadonlyArray<Click>, checkouts: ReadonlyArray<Checkout>): Map<string, string | null> => {
  const byUser = new Map<string, Array<Click>>()
  for (const c of clicks) {
    const key = `${c.partition}/${c.user}`
    let list = byUser.get(key)
    if (list === undefined) byUser.set(key, list = [])
    list.push(c)
  }
  const out = new Map<string, string | null>()
  for (const k of checkouts) {
    let best: Click | undefined
    for (const c of byUser.get(`${k.partition}/${k.user}`) ?? []) {
      if (!(c.product === null || c.product === k.product) || c.ts < k.ts - A || c.ts > k.ts) continue
      if (best === undefined || c.ts < best.ts || (c.ts === best.ts && c.id < best.id)) best = c
    }
    out.set(k.id, best?.id ?? null)
  }
  return out
}

/** checkout id → click id as written to shop.checkout_attribution. */
export const writtenAttribution = async (url: string): Promise<Map<string, string | null>> => {
  const rows = await query<{ checkout_id: string; click_id: string | null }>(url, "SELECT checkout_id, click_id FROM shop.checkout_attribution")
  return new Map(rows.map((r) => [r.checkout_id, r.click_id]))
}

/** The daemon's `/api/status` (only the fields a test reads), or undefined while it does not answer. */
export const apiStatus = async <S>(d: Daemon): Promise<S | undefined> => {
  try {
    const r = await fetch(`http://127.0.0.1:${d.port}/api/status`, { signal: AbortSignal.timeout(2_000) })
    return r.status === 200 ? await r.json() as S : undefined
  } catch {
    return undefined
  }
}

/** The attribution job's committed next offset of each partition of `topic` ("topic/partition" → offset when no topic is given). */
export const attributionPositions = async (url: string, source: string, topic?: string): Promise<Map<number | string, number>> => {
  const rows = await query<{ topic: string; partition: number; next_offset: string }>(url,
    `SELECT topic, "partition", next_offset::text FROM shop.source_positions WHERE source = $1 AND job = 'attribution'`, [source])
  return new Map(rows.filter((r) => topic === undefined || r.topic === topic)
    .map((r) => [topic === undefined ? `${r.topic}/${r.partition}` : r.partition, Number(r.next_offset)]))
}

export const count = async (url: string, table: string): Promise<number> => {
  try {
    const [r] = await query<{ n: string }>(url, `SELECT count(*)::text AS n FROM ${table}`)
    return Number(r!.n)
  } catch {
    return -1 // not migrated yet
  }
}

/** The mismatches between the oracle and what was written (empty when equal). */
export const differences = (expected: ReadonlyMap<string, string | null>, actual: ReadonlyMap<string, string | null>): Array<string> => {
  const out: Array<string> = []
  for (const [k, c] of expected) if (actual.get(k) !== c) out.push(`${k}: expected ${c}, got ${actual.has(k) ? actual.get(k) : "no row"}`)
  for (const k of actual.keys()) if (!expected.has(k)) out.push(`${k}: unexpected row`)
  return out
}

/** Runs `insights generate` (the CLI, built) with the Kafka settings in `env`. */
export const generate = async (args: ReadonlyArray<string>, env: Record<string, string>): Promise<string> => {
  const { stderr } = await exec(node, [distCli, "generate", "--to", "kafka", ...args], { env: { ...process.env, ...env } })
  return stderr
}

/**
 * What the raw lake under `lakeDir` holds of `topic`, read by DuckDB from the files as they
 * are (Hive partitioning): its messages, and how many distinct (partition, offset) among them.
 */
export const lakeMessages = async (lakeDir: string, topic: string): Promise<Record<string, unknown> | undefined> => {
  const duck = await (await DuckDBInstance.create(":memory:")).connect()
  try {
    const [row] = (await duck.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT ("partition", "offset")) AS distinct_messages
      FROM read_parquet('${lakeDir}/raw/${topic}/**/*.parquet', hive_partitioning = true)`)).getRowObjectsJson()
    return row
  } finally {
    duck.closeSync()
  }
}

