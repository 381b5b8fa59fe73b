/**
 * `insights query "SQL" [--json|--csv]`: DuckDB in memory over the lake (SPEC §9), with the
 * views `raw.clicks`, `raw.checkouts` (`LAKE_DIR/raw/<topic>/dt=…/hour=…/*.parquet`) and
 * `exports.checkouts`, `exports.daily_summary` (`LAKE_DIR/exports/<table>/dt=…/`), read with
 * Hive partitioning (`dt` a DATE, `hour` an INTEGER, from the path). A table with no files
 * yet is an empty view of its columns (`domain/LakeTables.ts`), so a query over it works.
 * Times show in UTC. No database is needed.
 *
 * Output: an aligned table (the default), `--json` one JSON object per row (integers and
 * decimals as exact JSON numbers), `--csv` with a header row.
 *
 * Errors are one line: SQL that DuckDB refuses (syntax, unknown table or column, a bad
 * cast), or a `LAKE_DIR` that does not exist, exit 2 like wrong usage; a failure while
 * reading the files (I/O, memory) exits 1.
 *
 * @since 0.1.0
 */
import { DuckDBInstance, type DuckDBConnection, type DuckDBResult, DuckDBTypeId, type Json, JsonDuckDBValueConverter } from "@duckdb/node-api"
import { stringify } from "csv-stringify/sync"
import { Effect } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { EngineConfig } from "../config.ts"
import { dailySummary, exportedCheckouts, type LakeTable, rawCheckouts, rawClicks } from "../domain/LakeTables.ts"
import { UsageError } from "../Process.ts"

export type QueryFormat = "table" | "json" | "csv"

/** Where the rows go (process.stdout by default). */
export interface QueryOutput {
  readonly write: (text: string) => boolean
  readonly once: (event: "drain", listener: () => void) => unknown
}

/** A failure while the query ran (not the query's fault): exit 1. */
export class QueryError extends Error {
  override readonly name = "QueryError"
}

/** DuckDB's message on one line, without the `LINE 1: …` pointer. */
export const duckMessage = (e: unknown): string => {
  const text = e instanceof Error ? e.message : String(e)
  const [head] = text.split(/\n\s*\nLINE \d+:/)
  return (head ?? text).replace(/^Failed to extract statements: /, "").replace(/\s*\n\s*/g, " ").trim()
}

/** Errors that are the query's (or the user's) fault rather than the machine's. */
const isUserError = (message: string): boolean => !/^(IO|Out of Memory|INTERNAL|FATAL|Fatal|Interrupt|Permission) Error/.test(message)

const literal = (s: string): string => `'${s.replaceAll("'", "''")}'`
const ident = (s: string): string => `"${s.replaceAll("\"", "\"\"")}"`

const open: Effect.Effect<DuckDBConnection, QueryError, Scope.Scope> = Effect.acquireRelease(
  Effect.tryPromise({
    try: async () => {
      const instance = await DuckDBInstance.create(":memory:", { autoinstall_known_extensions: "false", autoload_known_extensions: "false" })
      const connection = await instance.connect()
      await connection.run("SET TimeZone = 'UTC'")
      return { instance, connection }
    },
    catch: (e) => new QueryError(`cannot start DuckDB: ${duckMessage(e)}`)
  }),
  ({ connection, instance }) => Effect.sync(() => {
    connection.closeSync()
    instance.closeSync()
  })
).pipe(Effect.map((d) => d.connection))

/** The view over `table`'s files, or an empty view of its columns when there are none yet. */
const viewSql = async (db: DuckDBConnection, lakeDir: string, table: LakeTable): Promise<{ readonly sql: string; readonly files: number }> => {
  const glob = literal(path.join(path.resolve(lakeDir), table.dir, "**", "*.parquet"))
  const counted = (await db.runAndReadAll(`SELECT count(*)::INTEGER AS n FROM glob(${glob})`)).getRowObjectsJson()
  const files = Number(counted[0]?.["n"] ?? 0)
  if (files > 0) {
    const hiveTypes = table.partitions.map((p) => `${literal(p.name)}: ${literal(p.type)}`).join(", ")
    return {
      files,
      sql: `CREATE VIEW ${table.view} AS SELECT * FROM read_parquet(${glob}, hive_partitioning = true, union_by_name = true, hive_types = {${hiveTypes}})`
    }
  }
  const columns = [...table.columns, ...table.partitions].map((c) => `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`).join(", ")
  return { files, sql: `CREATE VIEW ${table.view} AS SELECT ${columns} WHERE false` }
}

/** The four views (SPEC §9) over `lakeDir`. */
export const createViews = (db: DuckDBConnection, config: Pick<EngineConfig, "lakeDir" | "clicksTopic" | "checkoutsTopic">) =>
  Effect.tryPromise({
    try: async () => {
      await db.run("CREATE SCHEMA raw; CREATE SCHEMA exports;")
      const tables = [rawClicks(config.clicksTopic), rawCheckouts(config.checkoutsTopic), exportedCheckouts, dailySummary]
      const out: Array<{ readonly view: string; readonly files: number }> = []
      for (const t of tables) {
        const v = await viewSql(db, config.lakeDir, t)
        await db.run(v.sql)
        out.push({ view: t.view, files: v.files })
      }
      return out
    },
    catch: (e) => new QueryError(`cannot open the lake's tables: ${duckMessage(e)}`)
  })

const EXACT_NUMBERS = new Set<DuckDBTypeId>([
  DuckDBTypeId.BIGINT, DuckDBTypeId.UBIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UHUGEINT, DuckDBTypeId.DECIMAL, DuckDBTypeId.BIGNUM
])
const RIGHT_ALIGNED = new Set<DuckDBTypeId>([
  ...EXACT_NUMBERS, DuckDBTypeId.TINYINT, DuckDBTypeId.SMALLINT, DuckDBTypeId.INTEGER, DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT, DuckDBTypeId.UINTEGER, DuckDBTypeId.FLOAT, DuckDBTypeId.DOUBLE
])

/** A value as text for the table and CSV: nested values as JSON. */
const text = (v: Json): string => v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v)

/** A JSON value; exact numbers (bigint, decimal) as they are written, not through a double. */
const jsonValue = (v: Json, exact: boolean): string =>
  v !== null && exact && typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v) ? v : JSON.stringify(v)

/** The widest a table cell is shown; longer values end in "…". */
const MAX_CELL = 60

const writer = (out: QueryOutput) => (chunk: string) =>
  Effect.callback<void>((resume) => {
    if (out.write(chunk)) resume(Effect.void)
    else out.once("drain", () => resume(Effect.void))
  })

/** Writes the result's rows, chunk by chunk (the table once it has them all); their count. */
const emit = (result: DuckDBResult, format: QueryFormat, out: QueryOutput) =>
  Effect.gen(function*() {
    const write = writer(out)
    const names = result.deduplicatedColumnNames()
    const types = names.map((_, i) => result.columnTypeId(i))
    const exact = types.map((t) => EXACT_NUMBERS.has(t))
    const keys = names.map((n) => JSON.stringify(n))
    if (format === "csv") yield* write(stringify([names]))
    const table: Array<ReadonlyArray<Json>> = []
    let count = 0
    for (;;) {
      const chunk = yield* Effect.tryPromise({ try: () => result.fetchChunk(), catch: (e) => e })
      if (chunk === null || chunk.rowCount === 0) break
      // values as DuckDB's JSON converter gives them: strings for bigints, decimals, times
      const rows = chunk.convertRows(JsonDuckDBValueConverter)
      count += rows.length
      if (format === "json") yield* write(rows.map((r) => `{${r.map((v, i) => `${keys[i]}:${jsonValue(v, exact[i]!)}`).join(",")}}\n`).join(""))
      else if (format === "csv") yield* write(stringify(rows.map((r) => r.map(text))))
      else table.push(...rows)
    }
    if (format !== "table") return count
    const cells = table.map((r) => r.map((v) => {
      const s = v === null ? "NULL" : text(v)
      return s.length > MAX_CELL ? `${s.slice(0, MAX_CELL - 1)}…` : s
    }))
    const widths = names.map((n, i) => cells.reduce((w, r) => Math.max(w, r[i]!.length), n.length))
    const pad = (s: string, i: number) => RIGHT_ALIGNED.has(types[i]!) ? s.padStart(widths[i]!) : s.padEnd(widths[i]!)
    const lines = [
      names.map(pad).join(" │ "),
      widths.map((w) => "─".repeat(w)).join("─┼─"),
      ...cells.map((r) => r.map(pad).join(" │ ")),
      `(${count.toLocaleString("en-US")} row${count === 1 ? "" : "s"})`
    ]
    yield* write(lines.map((l) => l.trimEnd()).join("\n") + "\n")
    return count
  })

/** Runs `sql` over the lake of `config` and writes its rows to `out` in `format`. */
export const query = (config: Pick<EngineConfig, "lakeDir" | "clicksTopic" | "checkoutsTopic">, sql: string, format: QueryFormat, out: QueryOutput = process.stdout) =>
  Effect.gen(function*() {
    const stat = fs.statSync(config.lakeDir, { throwIfNoEntry: false })
    if (stat === undefined) {
      return yield* Effect.fail(new UsageError(`no lake at ${config.lakeDir} (LAKE_DIR): nothing has been written to it yet, or LAKE_DIR points elsewhere`))
    }
    if (!stat.isDirectory()) return yield* Effect.fail(new UsageError(`LAKE_DIR ${config.lakeDir} is not a folder`))
    const db = yield* open
    yield* createViews(db, config)
    const result = yield* Effect.tryPromise({
      try: () => db.stream(sql),
      catch: (e) => {
        const m = duckMessage(e)
        return isUserError(m) ? new UsageError(`query: ${m}`) : new QueryError(`query failed: ${m}`)
      }
    })
    return yield* emit(result, format, out).pipe(Effect.mapError((e) => {
      const m = duckMessage(e)
      return isUserError(m) ? new UsageError(`query: ${m}`) : new QueryError(`query failed: ${m}`)
    }))
  }).pipe(Effect.scoped)
