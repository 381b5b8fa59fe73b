/**
 * Runs every panel query of every dashboard under grafana/ the way Grafana would (variables
 * and macros expanded as in grafanaSql.ts) against a filled database, connected as the
 * read-only `grafana` role, and checks the answers against figures computed independently.
 */
import { Effect, Layer } from "effect"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Database from "../../src/sinks/Database.ts"
import { createDatabase, dropDatabase, postgresAvailable } from "../support/TestDatabase.ts"
import { fillShop } from "./fill.ts"
import {
  ALL_VALUE,
  expandPanelSql,
  interpolateMacros,
  panelInterval,
  replaceVariables,
  type TimeRange,
  type VariableState
} from "./grafanaSql.ts"
import {
  allPanels,
  asUser,
  type Dashboard,
  grafanaDir,
  loadDashboards,
  openClient,
  type Panel,
  readYaml,
  sqlTargets,
  toCents
} from "./support.ts"

const available = await postgresAvailable()

const datasources = readYaml(path.join(grafanaDir, "provisioning/datasources/insights.yaml")).datasources as ReadonlyArray<any>
const datasource = datasources.find((ds) => ds.uid === "insights-pg")
const dashboards = loadDashboards()
const timeMacro = /\$__(timeFilter|timeFrom|timeTo|unixEpochFilter|unixEpochNanoFilter|unixEpochFrom|unixEpochTo)\(/

type Row = Record<string, unknown>
type Selection = "all" | "all-as-list" | "all-without-options" | { readonly [variable: string]: ReadonlyArray<string> }

describe("dashboard JSON", () => {
  it("has dashboards, panels on the provisioned PostgreSQL datasource, and valid metadata", () => {
    expect(dashboards.length).toBeGreaterThan(0)
    for (const dashboard of dashboards) {
      expect(dashboard.uid, dashboard.file).toMatch(/^[a-zA-Z0-9_-]{1,40}$/)
      expect(dashboard.schemaVersion, dashboard.file).toBeGreaterThanOrEqual(36)
      const ids = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).map((p) => p.id)
      expect(new Set(ids).size, `${dashboard.file}: unique panel ids`).toBe(ids.length)
      for (const panel of allPanels(dashboard)) {
        expect(panel.datasource?.uid, panel.title).toBe(datasource.uid)
        expect(panel.datasource?.type, panel.title).toBe(datasource.type)
        for (const target of sqlTargets(panel)) {
          expect(["time_series", "table"], panel.title).toContain(target.format)
          if (target.datasource) expect(target.datasource.uid, panel.title).toBe(datasource.uid)
        }
      }
      for (const variable of dashboard.templating?.list ?? []) {
        if (variable.type === "query") expect(variable.datasource?.uid, variable.name).toBe(datasource.uid)
      }
    }
  })

  it("has the Flink dashboard's five panels and more, nearly all following the time picker", () => {
    const panels = dashboards.flatMap(allPanels).filter((p) => sqlTargets(p).length > 0)
    const titles = panels.map((p) => p.title)
    for (
      const title of [
        "Revenue and Profit",
        "Customer Checkout Source",
        "Most Popular Product Category",
        "Customer's Gender",
        "Fail Payment"
      ]
    ) expect(titles).toContain(title)
    expect(panels.length).toBeGreaterThanOrEqual(6)
    const following = panels.filter((p) => sqlTargets(p).every((t) => timeMacro.test(t.rawSql)))
    expect(following.map((p) => p.title)).toEqual(titles)
    // the range is the picker's, never one relative to the wall clock (the Flink dashboard's
    // `now() - INTERVAL '1 hour'`)
    const clock = /\bnow\(\)|current_(timestamp|date|time)|localtime|clock_timestamp|statement_timestamp|transaction_timestamp/i
    for (const panel of panels) {
      for (const target of sqlTargets(panel)) expect(target.rawSql, panel.title).not.toMatch(clock)
    }
  })
})

describe.skipIf(!available)("dashboard queries as the read-only grafana role", () => {
  let db: { url: string; name: string }
  let owner: ReturnType<typeof openClient>
  let grafana: ReturnType<typeof openClient>
  let range: TimeRange

  beforeAll(async () => {
    db = await createDatabase("insights_grafana")
    await Effect.runPromise(Layer.build(Database.layer(db.url)).pipe(Effect.scoped))
    await fillShop(db.url)
    owner = openClient(db.url)
    grafana = openClient(asUser(db.url, "grafana"))
    // The time picker as a user would set it to see all the data: derived from the rows, not
    // from the wall clock, and widened to whole milliseconds (Grafana's resolution).
    const [bounds] = await owner.run<{ from_ms: string; to_ms: string }>(
      `SELECT floor(extract(epoch FROM min(checkout_timestamp)) * 1000)::bigint::text AS from_ms,
              ceil(extract(epoch FROM max(checkout_timestamp)) * 1000)::bigint::text AS to_ms
       FROM shop.checkout_attribution`
    )
    range = { from: new Date(Number(bounds!.from_ms)), to: new Date(Number(bounds!.to_ms)) }
  })

  afterAll(async () => {
    await grafana?.close()
    await owner?.close()
    if (db) await dropDatabase(db.name)
  })

  /** The variables' options, from their own queries run as grafana. */
  const variableOptions = async (dashboard: Dashboard, within: TimeRange) => {
    const options = new Map<string, ReadonlyArray<string>>()
    for (const variable of dashboard.templating?.list ?? []) {
      if (variable.type !== "query") continue
      const text = typeof variable.query === "string" ? variable.query : (variable.query as { query: string }).query
      const sql = interpolateMacros(replaceVariables(text, [], {}), within).sql
      const rows = await grafana.run(sql)
      options.set(variable.name, rows.map((row) => String(Object.values(row)[0])))
    }
    return options
  }

  const states = (dashboard: Dashboard, options: Map<string, ReadonlyArray<string>>, selection: Selection): Array<VariableState> =>
    (dashboard.templating?.list ?? []).map((variable) => {
      const opts = options.get(variable.name) ?? []
      if (selection === "all") return { variable, options: opts, value: ALL_VALUE }
      if (selection === "all-as-list") return { variable: { ...variable, allValue: null }, options: opts, value: ALL_VALUE }
      // Grafana without the custom all value and nothing to choose from: an empty list
      if (selection === "all-without-options") return { variable: { ...variable, allValue: null }, options: [], value: ALL_VALUE }
      return { variable, options: opts, value: selection[variable.name] ?? ALL_VALUE }
    })

  /** Runs a panel's queries as Grafana would; returns the rows of each. */
  const runPanel = async (
    dashboard: Dashboard,
    panel: Panel,
    variables: ReadonlyArray<VariableState>,
    within: TimeRange = range,
    maxDataPoints = 1000
  ) => {
    const minInterval = panel.interval || datasource.jsonData?.timeInterval
    const { intervalMs, interval } = panelInterval(within, panel.maxDataPoints ?? maxDataPoints, minInterval)
    const results: Array<{ readonly format: string; readonly sql: string; readonly rows: ReadonlyArray<Row> }> = []
    for (const target of sqlTargets(panel)) {
      const { sql } = expandPanelSql(target.rawSql, { range: within, variables, intervalMs, interval })
      expect(sql, `${dashboard.file}: ${panel.title}: unexpanded variable or macro`).not.toMatch(/\$\w|\[\[/)
      let rows: ReadonlyArray<Row>
      try {
        rows = await grafana.run(sql)
      } catch (error) {
        throw new Error(`${dashboard.file}: panel "${panel.title}" failed: ${String(error)}\n${sql}`)
      }
      results.push({ format: target.format ?? "time_series", sql, rows })
    }
    return results
  }

  const findPanel = (title: string) => {
    for (const dashboard of dashboards) {
      const panel = allPanels(dashboard).find((p) => p.title === title)
      if (panel) return { dashboard, panel }
    }
    throw new Error(`no panel "${title}"`)
  }

  /** Checks what Grafana needs from a time-series result: a `time` column, ascending. */
  const checkTimeSeries = (title: string, rows: ReadonlyArray<Row>) => {
    let previous = -Infinity
    for (const row of rows) {
      expect(Object.keys(row), title).toContain("time")
      const value = row["time"]
      const t = value instanceof Date ? value.getTime() / 1000 : Number(value)
      expect(Number.isFinite(t), `${title}: time ${String(value)}`).toBe(true)
      expect(t, `${title}: ordered by time`).toBeGreaterThanOrEqual(previous)
      previous = t
    }
  }

  it("every panel query runs for All (custom, as a list, with no options) and for selections; few are empty", async () => {
    const report: Array<string> = []
    for (const dashboard of dashboards) {
      const options = await variableOptions(dashboard, range)
      for (const [name, values] of options) expect(values.length, `variable ${name} has options`).toBeGreaterThan(0)
      const singles: Selection = Object.fromEntries([...options].map(([name, values]) => [name, [values[0]!]]))
      const pairs: Selection = Object.fromEntries([...options].map(([name, values]) => [name, values.slice(0, 2)]))
      let panels = 0
      let empty = 0
      const emptyOnCheckouts: Array<string> = []
      for (const panel of allPanels(dashboard)) {
        if (sqlTargets(panel).length === 0) continue
        panels++
        for (const selection of ["all", "all-as-list", "all-without-options", singles, pairs] as const) {
          const results = await runPanel(dashboard, panel, states(dashboard, options, selection))
          for (const result of results) {
            if (result.format === "time_series") checkTimeSeries(panel.title, result.rows)
          }
          if (selection === "all") {
            const rows = results.reduce((n, r) => n + r.rows.length, 0)
            report.push(`${panel.title}: ${rows} rows`)
            if (rows === 0) {
              empty++
              if (sqlTargets(panel).some((t) => t.rawSql.includes("shop.checkout_attribution"))) emptyOnCheckouts.push(panel.title)
            }
          }
        }
      }
      expect(panels, dashboard.file).toBeGreaterThanOrEqual(6)
      // the acceptance rule: at most one panel in five empty (engine_status is written by the
      // daemon only, so a replayed database leaves the engine-health panels empty) ...
      expect(empty * 5, `${dashboard.file}: empty panels\n${report.join("\n")}`).toBeLessThanOrEqual(panels)
      // ... and none of those that read the checkouts
      expect(emptyOnCheckouts, `${dashboard.file}: empty panels\n${report.join("\n")}`).toEqual([])
    }
  })

  it("the revenue panel's total equals the sum of successful total_amount, computed independently", async () => {
    const rows = await owner.run<{ total_amount: string | null; payment_status: string; source: string | null }>(
      "SELECT total_amount::text AS total_amount, payment_status, source FROM shop.checkout_attribution"
    )
    const expected = (keep: (row: (typeof rows)[number]) => boolean) =>
      rows.filter((row) => row.payment_status === "Success" && keep(row)).reduce((sum, row) => sum + toCents(row.total_amount), 0n)
    const failedAmounts = rows.filter((row) => row.payment_status !== "Success" && row.total_amount !== null)
    expect(failedAmounts.length, "the data has failed payments with an amount").toBeGreaterThan(0)

    const { dashboard, panel } = findPanel("Revenue and Profit")
    const options = await variableOptions(dashboard, range)
    const revenueOf = async (selection: Selection) => {
      const [result] = await runPanel(dashboard, panel, states(dashboard, options, selection))
      return result!.rows.reduce((sum, row) => sum + toCents(row["Revenue"]), 0n)
    }
    const total = expected(() => true)
    expect(total).toBeGreaterThan(0n)
    expect(await revenueOf("all")).toBe(total)
    expect(await revenueOf("all-as-list")).toBe(total)
    expect(await revenueOf("all-without-options")).toBe(total)
    expect(await revenueOf({ source: ["Google"] })).toBe(expected((row) => row.source === "Google"))
    expect(await revenueOf({ source: ["Unattributed"] })).toBe(expected((row) => row.source === null))
    expect(await revenueOf({ source: ["Google", "Facebook"] })).toBe(
      expected((row) => row.source === "Google" || row.source === "Facebook")
    )

    // the KPI and the by-source table agree with it
    const stat = findPanel("Revenue")
    const [statResult] = await runPanel(stat.dashboard, stat.panel, states(dashboard, options, "all"))
    expect(toCents(statResult!.rows[0]!["Revenue"])).toBe(total)
    const bySource = findPanel("Revenue by source")
    const [tableResult] = await runPanel(bySource.dashboard, bySource.panel, states(dashboard, options, "all"))
    expect(tableResult!.rows.reduce((sum, row) => sum + toCents(row["Revenue"]), 0n)).toBe(total)
    expect(tableResult!.rows.map((row) => row["Source"])).toContain("Unattributed")
  })

  it("follows the time picker: a 30-minute window has exactly that window's revenue", async () => {
    const within = { from: new Date(range.to.getTime() - 30 * 60_000), to: range.to }
    const [{ cents }] = (await owner.run<{ cents: string }>(
      `SELECT coalesce(sum(total_amount) * 100, 0)::bigint::text AS cents FROM shop.checkout_attribution
       WHERE payment_status = 'Success' AND checkout_timestamp >= $1 AND checkout_timestamp <= $2`,
      [within.from, within.to]
    )) as [{ cents: string }]
    const { dashboard, panel } = findPanel("Revenue and Profit")
    const options = await variableOptions(dashboard, within)
    const [result] = await runPanel(dashboard, panel, states(dashboard, options, "all"), within)
    expect(result!.rows.reduce((sum, row) => sum + toCents(row["Revenue"]), 0n)).toBe(BigInt(cents))
    // 30 minutes at 1000 points is below the datasource's 1m minimum: one-minute buckets
    expect(result!.rows.length).toBeLessThanOrEqual(31)
    expect(result!.sql).toContain("60000 / 1000.0")
    for (const row of result!.rows) expect((row["time"] as Date).getTime() % 60_000).toBe(0)
  })

  it("panels answer consistently: failures by reason, top 10, gender, attribution shares", async () => {
    const [counts] = await owner.run<{ failed: string; genders_unknown: string; genders_mf: string }>(
      `SELECT count(*) FILTER (WHERE payment_status <> 'Success')::text AS failed,
              count(*) FILTER (WHERE gender IS NULL)::text AS genders_unknown,
              count(*) FILTER (WHERE gender IN ('M', 'F'))::text AS genders_mf
       FROM shop.checkout_attribution`
    )
    const run = async (title: string) => {
      const { dashboard, panel } = findPanel(title)
      const options = await variableOptions(dashboard, range)
      const [result] = await runPanel(dashboard, panel, states(dashboard, options, "all"))
      return result!.rows
    }
    const failures = await run("Fail Payment")
    expect(failures.reduce((n, row) => n + Number(row["Failed checkouts"]), 0)).toBe(Number(counts!.failed))
    expect(failures.reduce((n, row) => n + Number(row["Share of failures"]), 0)).toBeCloseTo(1, 9)

    const top = await run("Most Popular Product Category")
    expect(top.length).toBeLessThanOrEqual(10)
    const units = top.map((row) => Number(row["Units sold"]))
    expect(units).toEqual([...units].sort((a, b) => b - a))

    const genders = (await run("Customer's Gender")).map((row) => row["Gender"])
    if (Number(counts!.genders_unknown) > 0) expect(genders).toContain("Unknown")
    if (Number(counts!.genders_mf) > 0) expect(genders).toEqual(expect.arrayContaining(["Female", "Male"]))
    expect(genders).not.toContain("M")
    expect(genders).not.toContain("")

    const shares = await run("Attribution share by source")
    const perBucket = new Map<string, number>()
    for (const row of shares) perBucket.set(String(row["time"]), (perBucket.get(String(row["time"])) ?? 0) + Number(row["share"]))
    for (const [bucket, sum] of perBucket) expect(sum, `bucket ${bucket}`).toBeCloseTo(1, 9)
  })

  it("the grafana role cannot write, and can read tables created later in shop", async () => {
    const denied = [
      "INSERT INTO shop.checkout_attribution (checkout_id, user_id, product_id, quantity, shipping_cost, discount, payment_status, checkout_timestamp, is_late, written_at) VALUES ('x', 'u', 'p', 1, 0, 0, 'Success', now(), false, now())",
      "UPDATE shop.checkout_attribution SET total_amount = 0",
      "DELETE FROM shop.checkout_attribution",
      "TRUNCATE shop.engine_status",
      "CREATE TABLE shop.grafana_was_here (x int)",
      "INSERT INTO shop.users (user_id) VALUES ('intruder')"
    ]
    for (const statement of denied) {
      await expect(grafana.run(statement), statement).rejects.toThrow()
      // and not merely because the session is read-only: the privileges are not there
    }
    const [privileges] = await owner.run<Record<string, boolean>>(
      `SELECT has_table_privilege('grafana', 'shop.checkout_attribution', 'SELECT') AS can_select,
              has_table_privilege('grafana', 'shop.checkout_attribution', 'INSERT') AS can_insert,
              has_table_privilege('grafana', 'shop.checkout_attribution', 'UPDATE') AS can_update,
              has_table_privilege('grafana', 'shop.checkout_attribution', 'DELETE') AS can_delete,
              has_table_privilege('grafana', 'shop.checkout_attribution', 'TRUNCATE') AS can_truncate,
              has_schema_privilege('grafana', 'shop', 'CREATE') AS can_create`
    )
    expect(privileges).toEqual({
      can_select: true,
      can_insert: false,
      can_update: false,
      can_delete: false,
      can_truncate: false,
      can_create: false
    })
    // a later table (an hourly rollup, say) made by the migrating role is readable at once
    await owner.run("CREATE TABLE shop.rollup_probe (hour timestamptz PRIMARY KEY, revenue numeric(12,2))")
    await owner.run("INSERT INTO shop.rollup_probe VALUES ('2025-06-01T10:00:00Z', 12.50)")
    expect(await grafana.run("SELECT revenue::text AS revenue FROM shop.rollup_probe")).toEqual([{ revenue: "12.50" }])
    await expect(grafana.run("DELETE FROM shop.rollup_probe")).rejects.toThrow()
    await owner.run("DROP TABLE shop.rollup_probe")
  })
})
