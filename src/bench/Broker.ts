/**
 * The bench's Kafka broker: `KAFKA_BROKERS` when set; otherwise the repo's own
 * (`scripts/kafka.sh start`) on a free port with a scratch data directory, stopped (and its
 * directory removed) at the end.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { freePort } from "../http/FreePort.ts"
import { log } from "./Common.ts"

const exec = promisify(execFile)
const script = path.join(import.meta.dirname, "..", "..", "scripts", "kafka.sh")

export interface Broker {
  readonly brokers: string
  /** "KAFKA_BROKERS" or "scripts/kafka.sh" */
  readonly origin: string
  readonly stop: () => Promise<void>
}

export const openBroker = async (): Promise<Broker> => {
  const given = process.env["KAFKA_BROKERS"]
  if (given !== undefined && given.trim() !== "") return { brokers: given, origin: "KAFKA_BROKERS", stop: async () => {} }
  const port = await freePort()
  const controller = await freePort()
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "insights-bench-kafka-"))
  const env = { ...process.env, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(controller), KAFKA_DATA_DIR: dataDir }
  log(`no KAFKA_BROKERS: starting a broker with scripts/kafka.sh on 127.0.0.1:${port}`)
  await exec(script, ["start"], { env, maxBuffer: 1 << 24 })
  return {
    brokers: `127.0.0.1:${port}`,
    origin: "scripts/kafka.sh",
    stop: async () => {
      await exec(script, ["stop"], { env }).catch((e: unknown) => log(`kafka.sh stop: ${(e as Error).message}`))
      fs.rmSync(dataDir, { recursive: true, force: true })
    }
  }
}
