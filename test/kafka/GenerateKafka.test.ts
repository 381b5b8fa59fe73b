/**
 * `insights generate --to kafka` (the built CLI): the Flink version's message shape, exact
 * counts at a live rate, and clear usage errors.
 */
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"
import { kafkaBrokers, uniqueName } from "../support/Kafka.ts"
import { distCli, generate, node, readTopic } from "./Harness.ts"

const exec = promisify(execFile)
const brokers = await kafkaBrokers()

describe("generate --to kafka: usage", () => {
  const usage = async (args: ReadonlyArray<string>) => {
    const r = await exec(node, [distCli, "generate", "--to", "kafka", ...args], { env: { ...process.env, KAFKA_BROKERS: "127.0.0.1:1" } })
      .then(() => ({ code: 0, stderr: "" }), (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }))
    return r
  }
  it("--rate max needs --count or --duration; --start is for files", async () => {
    expect(await usage(["--rate", "max"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--rate max needs --count N or --duration/) })
    expect(await usage(["--start", "2026-01-01T00:00:00Z", "--count", "3"])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--start applies to --to files/) })
  })
})

describe.skipIf(brokers === undefined)("generate --to kafka on a real broker", () => {
  it("--format flink: the Python generator's JSON (integer ids, naive times, clicks without product), keyed by user id; a live rate gives rate × duration", async () => {
    const clicks = uniqueName("clicks"), checkouts = uniqueName("checkouts")
    const env = { KAFKA_BROKERS: brokers!, CLICKS_TOPIC: clicks, CHECKOUTS_TOPIC: checkouts, KAFKA_PARTITIONS: "2" }
    const out = await generate(["--format", "flink", "--rate", "400", "--duration", "1", "--seed", "9"], env)
    expect(out).toMatch(/produced 400 messages/)
    const messages = [...await readTopic(brokers!, clicks), ...await readTopic(brokers!, checkouts)]
    expect(messages.length).toBe(400)
    for (const m of messages) {
      const v = JSON.parse(m.value!) as Record<string, unknown>
      expect(typeof v["user_id"]).toBe("number")
      expect(m.key).toBe(String(v["user_id"]))
      const ts = (v["click_timestamp"] ?? v["checkout_timestamp"]) as string
      expect(ts).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/)
      if (m.topic === clicks) expect(v).not.toHaveProperty("product_id")
    }
  }, 30_000)
})
