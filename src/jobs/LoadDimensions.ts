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
/** other spellings seen in the wild → our column */
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
    const statement = `
      INSERT INTO shop.${table} AS t (${columns.join(", ")}, updated_at)
      SELECT ${columns.join(", ")}, clock_timestamp() FROM json_populate_recordset(NULL::shop.${table}, $1::json)
      ON CONFLICT (${key}) DO UPDATE SET (${others.join(", ")}, updated_at) = (${others.map((c) => `EXCLUDED.${c}`).join(", ")}, clock_timestamp())
      WHERE (${others.map((c) => `t.${c}`).join(", ")}) IS DISTINCT FROM (${others.map((c) => `EXCLUDED.${c}`).join(", ")})`
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

export const loadUsers = (path: string) =>
  Effect.gen(function*() {
    const records = yield* readCsv(path)
    const problems: Array<string> = []
    const rows: Array<Record<string, string | null>> = []
    records.forEach((r, i) => {
      const id = r["user_id"]
      if (id === undefined || id === "") {
        problems.push(`${path}:${i + 2}: no user_id; row skipped`)
        return
      }
      const row: Record<string, string | null> = {}
      for (const c of USER_COLUMNS) row[c] = r[c] === undefined || r[c] === "" ? null : r[c]!
      rows.push(row)
    })
    const present = USER_COLUMNS.filter((c) => records.length === 0 || c in records[0]!)
    const unique = lastById(rows, "user_id")
    const upserted = unique.length === 0 ? 0 : yield* upsert("users", "user_id", present.length > 0 ? present : ["user_id"], unique)
    return { file: path, rows: records.length, upserted, problems } satisfies LoadReport
  })

export const loadProducts = (path: string) =>
  Effect.gen(function*() {
    const records = yield* readCsv(path)
    const problems: Array<string> = []
    const rows: Array<Record<string, string | null>> = []
    records.forEach((raw, i) => {
      const r: Record<string, string> = {}
      for (const [k, v] of Object.entries(raw)) r[PRODUCT_ALIASES[k] ?? k] = v
      const id = r["product_id"]
      if (id === undefined || id === "") {
        problems.push(`${path}:${i + 2}: no product_id; row skipped`)
        return
      }
      const row: Record<string, string | null> = {}
      for (const c of PRODUCT_COLUMNS) row[c] = r[c] === undefined || r[c] === "" ? null : r[c]!
      for (const c of ["price", "commission_rate"] as const) {
        const v = row[c] ?? null
        if (v !== null && !DECIMAL.test(v)) {
          problems.push(`${path}:${i + 2}: ${c} "${v}" is not a number; stored as NULL`)
          row[c] = null
        }
      }
      rows.push(row)
    })
    const header = records.length === 0 ? [] : Object.keys(records[0]!).map((k) => PRODUCT_ALIASES[k] ?? k)
    const present = PRODUCT_COLUMNS.filter((c) => header.includes(c))
    const unique = lastById(rows, "product_id")
    const upserted = unique.length === 0 ? 0 : yield* upsert("products", "product_id", present.length > 0 ? present : ["product_id"], unique)
    return { file: path, rows: records.length, upserted, problems } satisfies LoadReport
  })
