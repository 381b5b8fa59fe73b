import * as NodeServices from "@effect/platform-node/NodeServices"
import { assert, describe, it } from "@effect/vitest"
import { parse } from "csv-parse/sync"
import { Effect, FileSystem, Path } from "effect"
import {
  categories,
  makeProducts,
  makeUsers,
  type ProductRow,
  productsCsv,
  type UserRow,
  usersCsv
} from "../../src/generator/Catalog.ts"
import { writeDefaultData } from "../../src/generator/writeData.ts"

const parseCsv = (text: string): Array<Record<string, string>> => parse(text, { columns: true })

const isoDay = /^\d{4}-\d{2}-\d{2}$/

describe("Catalog", () => {
  it("gives the same rows and CSVs for the same seed", () => {
    assert.deepStrictEqual(makeUsers(3, 200), makeUsers(3, 200))
    assert.strictEqual(usersCsv(makeUsers(3, 200)), usersCsv(makeUsers(3, 200)))
    assert.strictEqual(productsCsv(makeProducts(4, 100)), productsCsv(makeProducts(4, 100)))
  })

  it("gives different rows for different seeds", () => {
    assert.notStrictEqual(usersCsv(makeUsers(3, 50)), usersCsv(makeUsers(4, 50)))
    assert.notStrictEqual(productsCsv(makeProducts(3, 50)), productsCsv(makeProducts(4, 50)))
  })

  it("writes users with the Flink version's columns", () => {
    const users = makeUsers(11, 500)
    const rows = parseCsv(usersCsv(users))
    assert.deepStrictEqual(Object.keys(rows[0]!), [
      "user_id",
      "name",
      "email",
      "gender",
      "birth_day",
      "location",
      "phone",
      "registration_date"
    ])
    // the CSV reads back to exactly the rows (quoting done right)
    assert.deepStrictEqual(rows, users.map((user) => ({ ...user })))
    assert.strictEqual(new Set(users.map((user) => user.user_id)).size, users.length)
    for (const user of users) {
      assert.match(user.user_id, /^[1-9][0-9]*$/)
      assert.include(["M", "F"], user.gender)
      assert.match(user.birth_day, isoDay)
      assert.match(user.registration_date, isoDay)
      assert.include(user.email, "@")
      assert.isAbove(user.name.length, 3)
      assert.isAbove(user.location.length, 3)
    }
    const men = users.filter((user) => user.gender === "M").length
    assert.isTrue(men > 200 && men < 300)
  })

  it("writes products with the Flink version's columns, 2-decimal money and every category", () => {
    const products = makeProducts(12, 200)
    const rows = parseCsv(productsCsv(products))
    assert.deepStrictEqual(Object.keys(rows[0]!), [
      "product_id",
      "product_name",
      "category",
      "brand",
      "price",
      "commission_rate"
    ])
    assert.strictEqual(new Set(products.map((product) => product.product_id)).size, products.length)
    assert.deepStrictEqual(new Set(products.map((product) => product.category)), new Set(categories))
    rows.forEach((row, i) => {
      const product = products[i]!
      assert.match(row.price!, /^\d+\.\d{2}$/)
      assert.match(row.commission_rate!, /^0\.\d{2}$/)
      assert.strictEqual(Number(row.price), product.price)
      assert.strictEqual(Number(row.commission_rate), product.commission_rate)
      assert.isTrue(product.price > 0 && product.price < 10_000)
      assert.isTrue(product.commission_rate >= 0.05 && product.commission_rate <= 0.3)
      assert.strictEqual(row.product_name, product.product_name)
      assert.include(product.product_name, product.brand)
    })
  })

  it("covers every category even in a tiny catalog", () => {
    assert.deepStrictEqual(
      makeProducts(1, categories.length).map((product: ProductRow) => product.category),
      [...categories]
    )
  })

  it.effect("the committed data/ files are what writeDefaultData writes", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dir = yield* fs.makeTempDirectoryScoped()
      yield* writeDefaultData(dir)
      for (const file of ["Users.csv", "Products.csv"]) {
        const written = yield* fs.readFileString(path.join(dir, file))
        const committed = yield* fs.readFileString(path.join("data", file))
        assert.strictEqual(written, committed, `data/${file} is stale: run scripts/write-data.ts`)
      }
      const users: ReadonlyArray<Partial<UserRow>> = parseCsv(yield* fs.readFileString(path.join(dir, "Users.csv")))
      assert.strictEqual(users.length, 1000)
      assert.strictEqual(parseCsv(yield* fs.readFileString(path.join(dir, "Products.csv"))).length, 200)
    }).pipe(Effect.provide(NodeServices.layer)))
})
