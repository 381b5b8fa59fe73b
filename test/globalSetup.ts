/**
 * Makes `npm test` self-sufficient: when no `KAFKA_BROKERS` is given and nothing answers on
 * 127.0.0.1:9092, a broker is started with `scripts/kafka.sh` (its own port and data dir)
 * for the run and stopped after it. CI starts its own broker and sets `KAFKA_BROKERS`.
 */
import type { TestProject } from "vitest/node"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

const answers = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port })
    s.setTimeout(1_000)
    s.once("connect", () => { s.destroy(); resolve(true) })
    s.once("timeout", () => { s.destroy(); resolve(false) })
    s.once("error", () => resolve(false))
  })

declare module "vitest" {
  export interface ProvidedContext {
    /** the brokers the tests use ("" when none): read with inject("kafkaBrokers") */
    kafkaBrokers: string
  }
}

export default async function setup(project: TestProject): Promise<() => void> {
  // every daemon and CLI the tests start writes its lake into a scratch folder, not the checkout
  if (!process.env["LAKE_DIR"]) process.env["LAKE_DIR"] = fs.mkdtempSync(path.join(os.tmpdir(), "insights-test-lake-"))
  const use = (brokers: string) => {
    process.env["KAFKA_BROKERS"] = brokers
    project.provide("kafkaBrokers", brokers)
  }
  project.provide("kafkaBrokers", "")
  if (process.env["KAFKA_BROKERS"]) {
    use(process.env["KAFKA_BROKERS"])
    return () => {}
  }
  if (await answers(9092)) {
    use("127.0.0.1:9092")
    return () => {}
  }
  const env = { ...process.env, KAFKA_PORT: "19192", KAFKA_DATA_DIR: path.resolve(".kafka-test") }
  try {
    execFileSync("bash", ["scripts/kafka.sh", "start"], { env, stdio: "inherit" })
  } catch (e) {
    if (process.env["CI"] === "true") throw e
    process.stderr.write(`no Kafka broker: Kafka tests will be skipped (${(e as Error).message})\n`)
    return () => {}
  }
  use("127.0.0.1:19192")
  return () => {
    execFileSync("bash", ["scripts/kafka.sh", "stop"], { env, stdio: "inherit" })
  }
}
