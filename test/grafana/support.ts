/**
 * Shared pieces of the Grafana tests: the provisioning files, the dashboards' panels and
 * variables, and a SQL client that stays open for many queries.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, ManagedRuntime, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { readdirSync, readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parse as parseYaml } from "yaml"
import type { TemplateVariable } from "./grafanaSql.ts"

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url))
export const grafanaDir = path.join(repoRoot, "grafana")

export const readYaml = (file: string): any => parseYaml(readFileSync(file, "utf8"))

/** Every file under `dir` (relative paths), recursively. */
export const filesUnder = (dir: string): ReadonlyArray<string> =>
  (readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<import("node:fs").Dirent>)
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort()

export interface Target {
  readonly refId: string
  readonly rawSql: string
  readonly format?: string
  readonly hide?: boolean
  readonly datasource?: { readonly type?: string; readonly uid?: string }
}

export interface Panel {
  readonly id: number
  readonly title: string
  readonly type: string
  readonly interval?: string
  readonly maxDataPoints?: number
  readonly datasource?: { readonly type?: string; readonly uid?: string }
  readonly targets?: ReadonlyArray<Target>
  readonly panels?: ReadonlyArray<Panel>
}

export interface Dashboard {
  readonly file: string
  readonly uid: string
  readonly title: string
  readonly schemaVersion: number
  readonly panels: ReadonlyArray<Panel>
  readonly templating?: { readonly list?: ReadonlyArray<TemplateVariable & { readonly datasource?: { readonly uid?: string } }> }
}

/** Every dashboard JSON under grafana/ (files with a `panels` array). */
export const loadDashboards = (): ReadonlyArray<Dashboard> =>
  filesUnder(grafanaDir)
    .filter((file) => file.endsWith(".json"))
    .map((file) => ({ file, json: JSON.parse(readFileSync(path.join(grafanaDir, file), "utf8")) }))
    .filter(({ json }) => Array.isArray(json.panels))
    .map(({ file, json }) => ({ ...json, file }))

/** Panels, with those inside (collapsed) rows, minus the rows themselves. */
export const allPanels = (dashboard: Dashboard): ReadonlyArray<Panel> =>
  dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]).filter((panel) => panel.type !== "row")

/** The panel's SQL queries Grafana would run. */
export const sqlTargets = (panel: Panel): ReadonlyArray<Target> =>
  (panel.targets ?? []).filter((target) => !target.hide && typeof target.rawSql === "string" && target.rawSql.trim() !== "")

/** One pooled connection for many statements; `close` when done. */
export const openClient = (url: string) => {
  const runtime = ManagedRuntime.make(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
  return {
    run: <A extends object = Record<string, unknown>>(text: string, params: ReadonlyArray<unknown> = []) =>
      runtime.runPromise(
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return (yield* sql.unsafe<A>(text, params)) as ReadonlyArray<A>
        })
      ),
    /** The statements in one transaction (rolled back when one fails); the last one's rows. */
    transaction: <A extends object = Record<string, unknown>>(texts: ReadonlyArray<string>) =>
      runtime.runPromise(
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql.withTransaction(Effect.gen(function*() {
            let rows: ReadonlyArray<A> = []
            for (const text of texts) rows = (yield* sql.unsafe<A>(text)) as ReadonlyArray<A>
            return rows
          }))
        })
      ),
    close: () => runtime.dispose()
  }
}

/** `url` with another user name (the local server trusts 127.0.0.1). */
export const asUser = (url: string, user: string): string => {
  const u = new URL(url)
  u.username = user
  u.password = ""
  return u.toString()
}

/** A numeric(12,2) (as text or number) in integer cents, exactly. */
export const toCents = (value: unknown): bigint => {
  if (value === null || value === undefined) return 0n
  const text = String(value)
  const match = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text)
  if (!match) throw new Error(`not a decimal: ${text}`)
  const fraction = (match[3] ?? "").padEnd(2, "0")
  if (/[1-9]/.test(fraction.slice(2))) throw new Error(`more than two decimals: ${text}`)
  const value100 = BigInt(match[2]!) * 100n + BigInt(fraction.slice(0, 2))
  return match[1] === "-" ? -value100 : value100
}
