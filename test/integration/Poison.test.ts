/**
 * SPEC §1 (Limits, Bad input) and §5 through `insights replay` on a real PostgreSQL: a
 * generated backlog with every message of the poison corpus spliced into the middle of its
 * topic's file (some lines keyed, some bare), and valid checkouts whose row PostgreSQL must
 * refuse (total_amount past numeric(12,2)). The replay exits 0; every poison line is in
 * ingest_errors exactly once, where it was (file, topic, line) and why; each refused checkout
 * is there too, "refused by PostgreSQL"; every other checkout has exactly the oracle's
 * attribution, nothing late, nothing missing, nothing extra; replaying again changes nothing.
 *
 * What a kcat file cannot carry (a line break) is sent without its CR/LF, and "lone surrogate
 * as a raw character" is left out: UTF-8 has no bytes for a lone surrogate, its line reads
 * back as U+FFFD, a valid checkout (see PoisonTransport.ts). The test fails if more is left out.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { lineSafe, poisonToSend, type SentPoison } from "../support/PoisonTransport.ts"
import { firstClickOracle } from "../support/ReplayOracle.ts"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const run = promisify(execFile)
const available = await postgresAvailable()
const node = process.execPath
const cli = path.resolve("dist/cli.js")
const A = 3_600_000
const MAX_QUANTITY = 2_147_483_647
/** numeric(12,2): at most 10 integer digits */
const NUMERIC_12_2_BOUND = 9_999_999_999.995

interface Click { click_id: string; user_id: string; product_id?: string | null; source: string; click_timestamp: string }
interface Checkout { checkout_id: string; user_id: string; product_id: string; checkout_timestamp: string; [k: string]: unknown }


/** One line of a file that must become one ingest_errors row. */
interface ExpectedError {
  readonly source: "clicks" | "checkouts"
  readonly line: number
  readonly payload: string
  /** a part of the error's text */
  readonly reason: string
  readonly name: string
}

/** `lines` with `inserts` placed before the original line `at` (0-based); the 1-based line number of each insert. */
const splice = <T>(lines: ReadonlyArray<string>, inserts: ReadonlyArray<{ at: number; line: string; tag: T }>) => {
  const sorted = [...inserts].sort((a, b) => a.at - b.at)
  const out: Array<string> = []
  const placed: Array<{ tag: T; line: number }> = []
  let j = 0
  for (let i = 0; i <= lines.length; i++) {
    while (j < sorted.length && sorted[j]!.at === i) {
      out.push(sorted[j]!.line)
      placed.push({ tag: sorted[j]!.tag, line: out.length })
      j++
    }
    if (i < lines.length) out.push(lines[i]!)
  }
  if (j !== sorted.length) throw new Error("an insert is past the end of the file")
  return { out, placed }
}

describe.skipIf(!available)("replay: the poison corpus in the middle of a backlog", () => {
  let db: { url: string; name: string }
  let dir: string
  const files = { clicks: "", checkouts: "" }
  let clicks: Array<Click> = []
  let checkouts: Array<Checkout> = []
  const refused: Array<Checkout> = []
  const expectedErrors: Array<ExpectedError> = []
  let sent: Array<SentPoison> = []
  let untransportable: Array<string> = []
  let firstRun = { stderr: "", ms: 0 }
  let totalLines = 0

  const replay = async () => {
    const started = Date.now()
    // execFile rejects unless the exit code is 0
    const { stderr } = await run(node, [cli, "replay", "--clicks", files.clicks, "--checkouts", files.checkouts,
      "--users", path.join(dir, "Users.csv"), "--products", path.join(dir, "Products.csv")],
    { env: { ...process.env, DATABASE_URL: db.url, LAKE_DIR: path.join(dir, "lake") }, maxBuffer: 1 << 26 })
    return { stderr, ms: Date.now() - started }
  }

  beforeAll(async () => {
    db = await createDatabase("insights_poison")
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "poison-replay-"))
    const now = Date.now()
    await run(node, [cli, "generate", "--to", "files", dir, "--count", "20000", "--seed", "4711", "--rate", "20",
      "--start", new Date(now - 2 * A).toISOString()])
    const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf-8").trimEnd().split("\n")
    const clickLines = read("clicks.txt"), checkoutLines = read("checkouts.txt")
    const value = (line: string) => line.slice(line.indexOf("\t") + 1)
    clicks = clickLines.map((l) => JSON.parse(value(l)))
    checkouts = checkoutLines.map((l) => JSON.parse(value(l)))

    // valid checkouts whose total_amount numeric(12,2) cannot hold: quantity 2147483647 of an
    // expensive product, right after a generated checkout of the same user, at its time
    const products = fs.readFileSync(path.join(dir, "Products.csv"), "utf-8").trimEnd().split("\n").slice(1)
      .map((l) => { const f = l.split(","); return { id: f[0]!, price: Number(f.at(-2)) } })
    const expensive = products.filter((p) => p.price * MAX_QUANTITY >= 2 * NUMERIC_12_2_BOUND).slice(0, 3)
    expect(expensive).toHaveLength(3)
    const refusedAt = [Math.floor(checkouts.length / 3), Math.floor(checkouts.length / 2), Math.floor(checkouts.length / 2) + 1]
    refusedAt.forEach((at, i) => {
      refused.push({ ...checkouts[at - 1]!, checkout_id: `refused-${i}`, product_id: expensive[i]!.id, quantity: MAX_QUANTITY, discount: 0 })
    })

    // the corpus, re-timed to now, one message a line
    const poison = poisonToSend(now)
    untransportable = poison.untransportable
    sent = poison.sent.map(lineSafe)
    const asLine = (p: SentPoison, i: number) => i % 2 === 0 || p.value.includes("\t") ? `poison-${i}\t${p.value}` : p.value
    const forTopic = (topic: "clicks" | "checkouts", lines: ReadonlyArray<string>, every: number, extra: Array<{ at: number; line: string; tag: ExpectedError | undefined }>) => {
      const mine = sent.filter((p) => p.topic === topic)
      const mid = Math.floor(lines.length / 2)
      const inserts = [
        ...mine.map((p, i) => ({ at: mid + i * every, line: asLine(p, i), tag: { source: topic, line: 0, payload: p.payload, reason: p.reason, name: p.name } as ExpectedError | undefined })),
        ...extra
      ]
      const { out, placed } = splice(lines, inserts)
      for (const { tag, line } of placed) if (tag !== undefined) expectedErrors.push({ ...tag, line })
      return out
    }
    const clickOut = forTopic("clicks", clickLines, 41, [])
    const checkoutOut = forTopic("checkouts", checkoutLines, 7, refused.map((k, i) => ({
      at: refusedAt[i]!, line: `${k.user_id}\t${JSON.stringify(k)}`,
      tag: { source: "checkouts", line: 0, payload: JSON.stringify(k), reason: "refused by PostgreSQL: numeric field overflow", name: k.checkout_id }
    })))
    totalLines = clickOut.length + checkoutOut.length
    files.clicks = path.join(dir, "clicks-poisoned.txt")
    files.checkouts = path.join(dir, "checkouts-poisoned.txt")
    fs.writeFileSync(files.clicks, clickOut.join("\n") + "\n")
    fs.writeFileSync(files.checkouts, checkoutOut.join("\n") + "\n")
    firstRun = await replay()
  }, 180_000)

  afterAll(async () => {
    if (db) await dropDatabase(db.name)
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  it("leaves out only what UTF-8 lines cannot carry as poison; exits 0 having read every line", () => {
    expect(untransportable).toEqual(["lone surrogate as a raw character"])
    expect(sent.filter((p) => p.name.endsWith("(without its CR/LF)")).map((p) => p.name))
      .toEqual(["random bytes (Latin-1) (without its CR/LF)", "only whitespace (without its CR/LF)"])
    expect(sent.length).toBe(56)
    expect(firstRun.stderr).toContain(`replayed ${totalLines} messages`)
    console.log(`replay of ${totalLines} lines (${sent.length} poison, ${refused.length} refused by PostgreSQL): ${firstRun.ms} ms`)
  })

  it("writes every poison line and every refused checkout to ingest_errors exactly once: file, topic, line, payload, why", async () => {
    const rows = await query<{ input: string; source: string; partition: number; line: string; payload: string; error: string }>(db.url,
      `SELECT input, source, "partition", "offset"::text AS line, payload, error FROM shop.ingest_errors`)
    const fileOf = { clicks: `file:${files.clicks}`, checkouts: `file:${files.checkouts}` }
    const key = (input: string, source: string, partition: number, line: number | string) => `${input} ${source}/${partition}@${line}`
    const actual = new Map<string, typeof rows[number]>()
    for (const r of rows) {
      const k = key(r.input, r.source, r.partition, r.line)
      expect(actual.has(k), `${k} recorded twice`).toBe(false)
      actual.set(k, r)
    }
    const problems: Array<string> = []
    for (const e of expectedErrors) {
      const k = key(fileOf[e.source], e.source, 0, e.line)
      const r = actual.get(k)
      if (r === undefined) problems.push(`${e.name}: no ingest error at ${k}`)
      else {
        if (r.payload !== e.payload) problems.push(`${e.name}: payload ${JSON.stringify(r.payload.slice(0, 80))}… is not the line's (escaped)`)
        if (!r.error.includes(e.reason)) problems.push(`${e.name}: error ${JSON.stringify(r.error.slice(0, 300))} does not say ${JSON.stringify(e.reason)}`)
      }
      actual.delete(k)
    }
    for (const [k, r] of actual) problems.push(`unexpected ingest error ${k}: ${r.error.slice(0, 200)}`)
    expect(problems).toEqual([])
    expect(rows.length).toBe(sent.length + refused.length)
  })

  it("writes every other checkout with the oracle's attribution: none late, none missing, none extra", async () => {
    const rows = await query<{ checkout_id: string; click_id: string | null; is_late: boolean }>(db.url,
      "SELECT checkout_id, click_id, is_late FROM shop.checkout_attribution")
    const expected = firstClickOracle(clicks, checkouts)
    const actual = new Map(rows.map((r) => [r.checkout_id, r.click_id]))
    const differences: Array<string> = []
    for (const [id, click] of expected) if (actual.get(id) !== click) differences.push(`${id}: expected ${click}, got ${actual.has(id) ? actual.get(id) : "no row"}`)
    for (const id of actual.keys()) if (!expected.has(id)) differences.push(`${id}: unexpected row`)
    expect(differences).toEqual([])
    expect(rows.length).toBe(checkouts.length)
    expect([...expected.values()].filter((c) => c !== null).length).toBeGreaterThan(checkouts.length * 0.8)
    expect(rows.filter((r) => r.is_late)).toEqual([])
    expect(await query(db.url, "SELECT topic, event_id FROM shop.late_events")).toEqual([])
  })

  it("replaying the same files again reads every line and changes nothing: no doubled errors", async () => {
    const snapshot = () => Promise.all([
      query(db.url, "SELECT * FROM shop.checkout_attribution ORDER BY checkout_id"),
      query(db.url, "SELECT * FROM shop.late_events ORDER BY topic, event_id"),
      query(db.url, `SELECT * FROM shop.ingest_errors ORDER BY input, source, "partition", "offset"`)
    ])
    const before = await snapshot()
    const again = await replay()
    expect(again.stderr).toContain(`replayed ${totalLines} messages`)
    const after = await snapshot()
    expect(after[2].length).toBe(sent.length + refused.length)
    expect(after).toEqual(before)
    console.log(`second replay: ${again.ms} ms`)
  }, 180_000)
})
