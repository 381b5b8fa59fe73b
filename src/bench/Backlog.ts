/**
 * The engine's input: `events` messages of the store's simulator (200 messages per second of
 * event time from 2026-11-01), written as replay files (`key<TAB>value`, as kcat writes
 * them), once whole and once split by user key into `shares` file sets: the hash of the key
 * mod `shares`, as Kafka's partitioner spreads a keyed topic, so a user's clicks and
 * checkouts stay together and each engine process replays a share on its own.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { hashKey } from "../engine/KeyedState.ts"
import { makeProducts, makeUsers, productsCsv, usersCsv } from "../generator/Catalog.ts"
import { makeSimulator } from "../generator/Shoppers.ts"
import { defaultData } from "../generator/writeData.ts"
import type { ReplayFile } from "../sources/ReplaySource.ts"

export interface Backlog {
  readonly events: number
  /** the messages' values, by topic (the anchors parse them) */
  readonly values: { readonly clicks: ReadonlyArray<string>; readonly checkouts: ReadonlyArray<string> }
  /** the whole backlog: one file per topic */
  readonly whole: ReadonlyArray<ReplayFile>
  /** share i: its files and its number of events */
  readonly shares: ReadonlyArray<{ readonly files: ReadonlyArray<ReplayFile>; readonly events: number }>
  readonly usersCsv: string
  readonly productsCsv: string
}

export const generateBacklog = (dir: string, events: number, shares: number): Backlog => {
  const users = makeUsers(defaultData.userSeed, defaultData.userCount)
  const products = makeProducts(defaultData.productSeed, defaultData.productCount)
  const sim = makeSimulator({ seed: 1, users, products })
  const whole = { clicks: [] as Array<string>, checkouts: [] as Array<string> }
  const values = { clicks: [] as Array<string>, checkouts: [] as Array<string> }
  const parts = Array.from({ length: shares }, () => ({ clicks: [] as Array<string>, checkouts: [] as Array<string> }))
  const start = Date.parse("2026-11-01T00:00:00Z")
  for (let i = 0; i < events; i++) {
    const m = sim.next(start + i * 5)
    const line = `${m.key}\t${m.value}`
    whole[m.topic].push(line)
    values[m.topic].push(m.value)
    parts[hashKey(m.key) % shares]![m.topic].push(line)
  }
  const write = (sub: string, lines: { clicks: Array<string>; checkouts: Array<string> }): Array<ReplayFile> => {
    fs.mkdirSync(path.join(dir, sub), { recursive: true })
    return (["clicks", "checkouts"] as const).map((topic) => {
      const file = path.join(dir, sub, `${topic}.txt`)
      fs.writeFileSync(file, lines[topic].length === 0 ? "" : lines[topic].join("\n") + "\n")
      return { topic, path: file }
    })
  }
  const usersFile = path.join(dir, "Users.csv")
  const productsFile = path.join(dir, "Products.csv")
  fs.writeFileSync(usersFile, usersCsv(users))
  fs.writeFileSync(productsFile, productsCsv(products))
  return {
    events,
    values,
    whole: write("whole", whole),
    shares: parts.map((p, i) => ({ files: write(`share-${i}`, p), events: p.clicks.length + p.checkouts.length })),
    usersCsv: usersFile,
    productsCsv: productsFile
  }
}
