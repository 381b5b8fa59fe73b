/**
 * `insights load-dims` on a real PostgreSQL: header names matched case-insensitively, fewer
 * columns than ours, a file with nothing but ids, and loading the same file twice.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createDatabase, dropDatabase, postgresAvailable, query } from "../support/TestDatabase.ts"

const run = promisify(execFile)
const available = await postgresAvailable()
const cli = path.resolve("dist/cli.js")

describe.skipIf(!available)("load-dims", () => {
  let db: { url: string; name: string }
  let dir: string
  const loadDims = (...args: Array<string>) => run(process.execPath, [cli, "load-dims", ...args], { env: { ...process.env, DATABASE_URL: db.url } })

  beforeAll(async () => {
    db = await createDatabase()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "load-dims-"))
  })
  afterAll(async () => {
    if (db) await dropDatabase(db.name)
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  it("reads Flink-style headers and fewer columns, and a file of ids only, twice", async () => {
    fs.writeFileSync(path.join(dir, "users.csv"), "User_ID,Gender\nu1,F\nu2,M\n")
    fs.writeFileSync(path.join(dir, "ids.csv"), "User_id\nu2\nu3\n")
    fs.writeFileSync(path.join(dir, "products.csv"), "Product_ID,Product_Name,Category,Price,Commission_Rate\np1,Dress,dresses,19.99,0.1\np2,Odd,bags,cheap,0.2\n")
    await loadDims("--users", path.join(dir, "users.csv"), "--products", path.join(dir, "products.csv"))
    await loadDims("--users", path.join(dir, "ids.csv"))
    await loadDims("--users", path.join(dir, "ids.csv"))
    const users = await query<{ user_id: string; gender: string | null }>(db.url, "SELECT user_id, gender FROM shop.users ORDER BY 1")
    expect(users).toEqual([{ user_id: "u1", gender: "F" }, { user_id: "u2", gender: "M" }, { user_id: "u3", gender: null }])
    const products = await query<{ product_id: string; name: string; price: string | null }>(db.url,
      "SELECT product_id, name, price::text AS price FROM shop.products ORDER BY 1")
    expect(products).toEqual([{ product_id: "p1", name: "Dress", price: "19.99" }, { product_id: "p2", name: "Odd", price: null }])
  })
})
