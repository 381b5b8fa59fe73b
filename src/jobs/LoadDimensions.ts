/**
 * Upserts the users and products dimensions from CSV files (SPEC §9 `load-dims`): a header
 * row, names matched case-insensitively (`User_id`, `Product_ID`), `user_id` / `product_id`
 * required, every other column optional, unknown columns ignored. A row without its id, or
 * with a price that is not a number, is reported with its line and skipped or kept with the
 * value NULL; nothing is dropped silently.
 */
import { parse } from "csv-parse/sync"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs/promises"

export interface LoadReport {
  readonly file: string
  readonly rows: number
  readonly upserted: number
  readonly problems: ReadonlyArray<string>
}

const USER_COLUMNS = ["user_id", "name", "email", "gender", "birth_day", "location", "phone", "registration_date"] as const
const PRODUCT_COLUMNS = ["product_id", "name", "category", "brand", "price", "commission_rate"] as const
const PRODUCT_ALIASES: Record<string, string> = { product_name: "name" }

const normalize = (header: string): string => header.trim().toLowerCase().replace(/[\s-]+/g, "_")

const readCsv = (path: string) =>
  Effect.tryPromise({
    try: async () => {
      const text = await fs.readFile(path, "utf-8")
      return parse(text, { columns: (h: Array<string>) => h.map(normalize), skip_empty_lines: true, bom: true, trim: true, relax_column_count: true }) as Array<Record<string, string>>
    },
    catch: (cause) => new Error(`cannot read ${path}: ${(cause as Error).message}`)
  })

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/

const BATCH = 5_000

const upsert = (table: "users" | "products", key: string, columns: ReadonlyArray<string>, rows: ReadonlyArray<Record<string, string | null>>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const others = columns.filter((c) => c !== key)
    // a file with only the id column has nothing to update on an existing row
    const onConflict = others.length === 0 ? "DO NOTHING" : `
      DO UPDATE SET (${others.join(", ")}, updated_at) = (${others.map((c) => `EXCLUDED.${c}`).join(", ")}, clock_timestamp())
      WHERE (${others.map((c) => `t.${c}`).join(", ")}) IS DISTINCT FROM (${others.map((c) => `EXCLUDED.${c}`).join(", ")})`
    const statement = `
      INSERT INTO shop.${table} AS t (${columns.join(", ")}, updated_at)
      SELECT ${columns.join(", ")}, clock_timestamp() FROM json_populate_recordset(NULL::shop.${table}, $1::json)
      ON CONFLICT (${key}) ${onConflict}`
    let upserted = 0
    for (let i = 0; i < rows.length; i += BATCH) {
      const chunk = rows.slice(i, i + BATCH)
      const result = yield* sql.unsafe(statement, [JSON.stringify(chunk)]).raw
      upserted += (result as { rowCount?: number } | undefined)?.rowCount ?? 0
    }
    return upserted
  })

/** Keeps the last row per id: a CSV with the same id twice means the later line. */
const lastById = (rows: ReadonlyArray<Record<string, string | null>>, key: string) =>
  [...new Map(rows.map((r) => [r[key]!, r])).values()]

/** What differs between the two dimensions: where they go and how their columns are read. */
interface DimensionSpec {
  readonly table: "users" | "products"
  readonly key: string
  readonly columns: ReadonlyArray<string>
  /** other spellings seen in the wild → our column */
  readonly aliases: Readonly<Record<string, string>>
  /** columns that must hold a number; anything else is reported and stored as NULL */
  readonly numeric: ReadonlyArray<string>
}

const USERS: DimensionSpec = { table: "users", key: "user_id", columns: USER_COLUMNS, aliases: {}, numeric: [] }
const PRODUCTS: DimensionSpec = {
  table: "products", key: "product_id", columns: PRODUCT_COLUMNS, aliases: PRODUCT_ALIASES, numeric: ["price", "commission_rate"]
}

const load = (spec: DimensionSpec, path: string) =>
  Effect.gen(function*() {
    const records = yield* readCsv(path)
    const problems: Array<string> = []
    const rows: Array<Record<string, string | null>> = []
    records.forEach((raw, i) => {
      const r: Record<string, string> = {}
      for (const [k, v] of Object.entries(raw)) r[spec.aliases[k] ?? k] = v
      const id = r[spec.key]
      if (id === undefined || id === "") {
        problems.push(`${path}:${i + 2}: no ${spec.key}; row skipped`)
        return
      }
      const row: Record<string, string | null> = {}
      for (const c of spec.columns) row[c] = r[c] === undefined || r[c] === "" ? null : r[c]!
      for (const c of spec.numeric) {
        const v = row[c] ?? null
        if (v !== null && !DECIMAL.test(v)) {
          problems.push(`${path}:${i + 2}: ${c} "${v}" is not a number; stored as NULL`)
          row[c] = null
        }
      }
      rows.push(row)
    })
    const header = records.length === 0 ? [] : Object.keys(records[0]!).map((k) => spec.aliases[k] ?? k)
    const present = spec.columns.filter((c) => header.includes(c))
    const unique = lastById(rows, spec.key)
    const upserted = unique.length === 0 ? 0 : yield* upsert(spec.table, spec.key, present.length > 0 ? present : [spec.key], unique)
    return { file: path, rows: records.length, upserted, problems } satisfies LoadReport
  })

export const loadUsers = (path: string) => load(USERS, path)

export const loadProducts = (path: string) => load(PRODUCTS, path)
