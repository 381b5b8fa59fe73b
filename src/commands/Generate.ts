/**
 * `insights generate`: the synthetic store. Writes the users and products CSVs, then a stream
 * of clicks and checkouts, keyed by user, to kcat-format files (`--to files DIR`) or to Kafka
 * (`--to kafka`). Same seed, same events. Event times advance `1000 / rate` ms per message
 * from `--start` (files), or follow the clock (Kafka).
 */
import { Clock, Console, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeProducts, makeUsers, productsCsv, usersCsv } from "../generator/Catalog.ts"
import { makeSimulator } from "../generator/Shoppers.ts"
import { defaultData } from "../generator/writeData.ts"
import { UsageError } from "../Process.ts"
import * as Progress from "./Progress.ts"

export interface GenerateOptions {
  readonly seed: number
  /** messages per second, or "max" */
  readonly rate: number | "max"
  readonly count: number | undefined
  readonly durationMs: number | undefined
  readonly format: "engine" | "flink"
  /** epoch ms of the first event (files) */
  readonly start: number | undefined
}

/** The store's default catalog: the same users and products as `data/`. */
const catalog = () => ({
  users: makeUsers(defaultData.userSeed, defaultData.userCount),
  products: makeProducts(defaultData.productSeed, defaultData.productCount)
})

/** Writes `clicks.txt`, `checkouts.txt`, `Users.csv` and `Products.csv` into `dir`. */
export const toFiles = (dir: string, options: GenerateOptions) =>
  Effect.gen(function*() {
    const rate = options.rate === "max" ? 100 : options.rate
    const count = options.count ?? (options.durationMs !== undefined ? Math.ceil(options.durationMs / 1000 * rate) : undefined)
    if (count === undefined) return yield* Effect.fail(new UsageError("generate --to files needs --count N or --duration D"))
    const start = options.start ?? (yield* Clock.currentTimeMillis)
    const { users, products } = catalog()
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, "Users.csv"), usersCsv(users))
    fs.writeFileSync(path.join(dir, "Products.csv"), productsCsv(products))
    const simulator = makeSimulator({ seed: options.seed, users, products, format: options.format })
    const out = { clicks: [] as Array<string>, checkouts: [] as Array<string> }
    const files = {
      clicks: fs.openSync(path.join(dir, "clicks.txt"), "w"),
      checkouts: fs.openSync(path.join(dir, "checkouts.txt"), "w")
    }
    const flush = (topic: "clicks" | "checkouts") => {
      if (out[topic].length === 0) return
      fs.writeSync(files[topic], out[topic].join(""))
      out[topic] = []
    }
    const step = 1000 / rate
    yield* Effect.gen(function*() {
      const progress = yield* Progress.make({ label: "generate", unit: "messages", total: count })
      for (let i = 0; i < count; i++) {
        const m = simulator.next(Math.floor(start + i * step))
        out[m.topic].push(`${m.key}\t${m.value}\n`)
        if (out[m.topic].length >= 10_000) flush(m.topic)
        if ((i & 0x3fff) === 0x3fff) yield* progress.update(i + 1) // every 16 384 messages
      }
      flush("clicks")
      flush("checkouts")
      fs.closeSync(files.clicks)
      fs.closeSync(files.checkouts)
      yield* progress.update(count)
    }).pipe(Effect.scoped) // the bar ends before the summary line
    yield* Console.error(`wrote ${count} messages to ${dir}/clicks.txt and ${dir}/checkouts.txt (+ Users.csv, Products.csv)`)
  })
