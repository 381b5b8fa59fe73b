/**
 * The expansion in grafanaSql.ts against the expectations of Grafana's own tests
 * (pkg/tsdb/grafana-postgresql-datasource/macros_test.go, sqleng Interpolate, the SQL
 * datasource's variable interpolation and gtime), so the dashboard test runs what Grafana runs.
 */
import { describe, expect, it } from "vitest"
import {
  ALL_VALUE,
  expandPanelSql,
  formatInterval,
  goFloat,
  interpolateGlobal,
  interpolateMacros,
  panelInterval,
  parseGoDuration,
  parseInterval,
  replaceVariables,
  rfc3339Nano,
  roundInterval,
  secondsToHms,
  type TemplateVariable
} from "./grafanaSql.ts"

const from = new Date(Date.UTC(2018, 3, 12, 18, 0, 0))
const to = new Date(from.getTime() + 5 * 60_000)
const range = { from, to }
const macros = (sql: string) => interpolateMacros(sql, range).sql

describe("PostgreSQL macro engine (macros_test.go)", () => {
  it("__time and __timeEpoch", () => {
    expect(macros("select $__time(time_column)")).toBe("select time_column AS \"time\"")
    expect(macros("select min($__time(time_column))")).toBe("select min(time_column AS \"time\")")
    expect(macros("select $__timeEpoch(time_column)")).toBe("select extract(epoch from time_column) as \"time\"")
  })

  it("__timeFilter, __timeFrom, __timeTo in RFC 3339", () => {
    expect(macros("WHERE $__timeFilter(time_column)"))
      .toBe("WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'")
    expect(macros("select $__timeFrom()")).toBe("select '2018-04-12T18:00:00Z'")
    expect(macros("select $__timeTo()")).toBe("select '2018-04-12T18:05:00Z'")
  })

  it("__timeGroup with the pre-5.3 alias compatibility", () => {
    expect(macros("SELECT $__timeGroup(time_column,'5m'), value"))
      .toBe("SELECT floor(extract(epoch from time_column)/300)*300 AS \"time\", value")
    expect(macros("SELECT $__timeGroup(time_column,'5m') as time, value"))
      .toBe("SELECT floor(extract(epoch from time_column)/300)*300 as time, value")
    expect(macros("SELECT $__timeGroup(time_column,'5m')")).toBe("SELECT floor(extract(epoch from time_column)/300)*300")
    expect(macros("SELECT $__timeGroupAlias(time_column,'5m')"))
      .toBe("SELECT floor(extract(epoch from time_column)/300)*300 AS \"time\"")
    expect(macros("$__timeGroup(time_column , '5m')")).toBe("floor(extract(epoch from time_column)/300)*300")
    expect(macros("$__timeGroupAlias(time_column , '5m')")).toBe("floor(extract(epoch from time_column)/300)*300 AS \"time\"")
    // the first occurrence of the same text decides for every occurrence
    expect(macros("SELECT $__timeGroup(t,1m) x GROUP BY $__timeGroup(t,1m), y"))
      .toBe("SELECT floor(extract(epoch from t)/60)*60 x GROUP BY floor(extract(epoch from t)/60)*60, y")
  })

  it("__timeGroup widths as Go's %v prints them, and fill modes", () => {
    expect(macros("$__timeGroup(t, '20ms')")).toBe("floor(extract(epoch from t)/0.02)*0.02")
    expect(macros("$__timeGroup(t, 1h)")).toBe("floor(extract(epoch from t)/3600)*3600")
    expect(macros("$__timeGroup(t, 12d)")).toBe("floor(extract(epoch from t)/1.0368e+06)*1.0368e+06")
    expect(interpolateMacros("$__timeGroupAlias(t, 5m, 0)", range).fill).toEqual({ mode: "value", value: 0, intervalSeconds: 300 })
    expect(interpolateMacros("$__timeGroupAlias(t, 5m, NULL)", range).fill).toEqual({ mode: "null", intervalSeconds: 300 })
    expect(interpolateMacros("$__timeGroupAlias(t, 5m, previous)", range).fill).toEqual({ mode: "previous", intervalSeconds: 300 })
    expect(() => macros("$__timeGroupAlias(t, 5m, zero)")).toThrow(/fill value/)
    expect(() => macros("$__timeGroup(t)")).toThrow(/needs time column and interval/)
    expect(() => macros("$__timeGroup(t, 5 minutes)")).toThrow(/error parsing interval/)
  })

  it("unix epoch macros", () => {
    const fromS = from.getTime() / 1000
    const toS = to.getTime() / 1000
    expect(macros("select $__unixEpochFilter(time)")).toBe(`select time >= ${fromS} AND time <= ${toS}`)
    expect(macros("select $__unixEpochNanoFilter(time)")).toBe(`select time >= ${fromS}000000000 AND time <= ${toS}000000000`)
    expect(macros("select $__unixEpochNanoFrom()")).toBe(`select ${fromS}000000000`)
    expect(macros("select $__unixEpochNanoTo()")).toBe(`select ${toS}000000000`)
    expect(macros("SELECT $__unixEpochGroup(time_column+time_adjustment,'5m')"))
      .toBe("SELECT floor((time_column+time_adjustment)/300)*300")
    expect(macros("SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')"))
      .toBe("SELECT floor((time_column+time_adjustment)/300)*300 AS \"time\"")
  })

  it("old and fractional times", () => {
    const old = { from: new Date(Date.UTC(1960, 1, 1, 7, 0, 0, 500)), to: new Date(Date.UTC(1980, 1, 3, 8, 0, 0, 500)) }
    expect(interpolateMacros("WHERE $__timeFilter(time_column)", old).sql)
      .toBe("WHERE time_column BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'")
    expect(interpolateMacros("select $__unixEpochFilter(time)", old).sql)
      .toBe(`select time >= ${Math.floor(old.from.getTime() / 1000)} AND time <= ${Math.floor(old.to.getTime() / 1000)}`)
  })

  it("rejects unknown macros", () => {
    expect(() => macros("select $__nope(x)")).toThrow(/unknown macro/)
  })
})

describe("sqleng.Interpolate", () => {
  it("replaces $__interval_ms before $__interval, and the epoch bounds", () => {
    expect(interpolateGlobal("$__interval_ms $__interval $__unixEpochFrom() $__unixEpochTo()", range, 90_000))
      .toBe(`90000 1m ${from.getTime() / 1000} ${to.getTime() / 1000}`)
  })
})

describe("Go and Grafana formatting", () => {
  it("RFC 3339 with trailing zeros dropped", () => {
    expect(rfc3339Nano(new Date(Date.UTC(2018, 3, 12, 18, 0, 0)))).toBe("2018-04-12T18:00:00Z")
    expect(rfc3339Nano(new Date(Date.UTC(2018, 3, 12, 18, 0, 0, 120)))).toBe("2018-04-12T18:00:00.12Z")
  })

  it("%v floats", () => {
    expect(goFloat(300)).toBe("300")
    expect(goFloat(0.02)).toBe("0.02")
    expect(goFloat(999_999)).toBe("999999")
    expect(goFloat(1_000_000)).toBe("1e+06")
    expect(goFloat(1_036_800)).toBe("1.0368e+06")
    expect(goFloat(0.0001)).toBe("0.0001")
    expect(goFloat(0.00001)).toBe("1e-05")
    expect(goFloat(31_536_000)).toBe("3.1536e+07")
  })

  it("durations and intervals", () => {
    expect(parseGoDuration("1h30m")).toBe(5_400_000)
    expect(parseGoDuration("1.5s")).toBe(1_500)
    expect(parseGoDuration("20ms")).toBe(20)
    expect(() => parseGoDuration("5")).toThrow()
    expect(parseInterval("2d")).toBe(2 * 86_400_000)
    expect(parseInterval("1w")).toBe(7 * 86_400_000)
    expect(formatInterval(90_000)).toBe("1m")
    expect(formatInterval(86_400_000)).toBe("1d")
    expect(formatInterval(500)).toBe("500ms")
    expect(secondsToHms(60)).toBe("1m")
    expect(secondsToHms(0.5)).toBe("500ms")
    expect(roundInterval(21_600)).toBe(20_000)
    expect(roundInterval(3_600_000)).toBe(3_600_000)
  })

  it("$__interval from the range, the panel width and the lower limit", () => {
    const sixHours = { from: new Date(0), to: new Date(6 * 3_600_000) }
    expect(panelInterval(sixHours, 1000, "1m")).toEqual({ intervalMs: 60_000, interval: "1m" })
    expect(panelInterval(sixHours, 100, "1m")).toEqual({ intervalMs: 300_000, interval: "5m" })
    expect(panelInterval(sixHours, 1000, "5s")).toEqual({ intervalMs: 20_000, interval: "20s" })
  })
})

describe("template variables as the SQL datasource formats them", () => {
  const multi: TemplateVariable = { name: "source", multi: true, includeAll: true }
  const customAll: TemplateVariable = { name: "category", multi: true, includeAll: true, allValue: "'__all'" }
  const single: TemplateVariable = { name: "who", multi: false, includeAll: false }

  it("quotes multi-value selections and expands All to every option", () => {
    const options = ["Google", "O'Reilly"]
    expect(replaceVariables("x IN ($source)", [{ variable: multi, options, value: ["Google"] }], {}))
      .toBe("x IN ('Google')")
    expect(replaceVariables("x IN (${source})", [{ variable: multi, options, value: ALL_VALUE }], {}))
      .toBe("x IN ('Google','O''Reilly')")
    expect(replaceVariables("x IN ([[source]])", [{ variable: multi, options, value: [ALL_VALUE] }], {}))
      .toBe("x IN ('Google','O''Reilly')")
  })

  it("uses a custom all value verbatim", () => {
    expect(replaceVariables("x IN ($category)", [{ variable: customAll, options: ["A"], value: ALL_VALUE }], {}))
      .toBe("x IN ('__all')")
  })

  it("only escapes a single-value variable, and leaves macros and unknown names alone", () => {
    expect(replaceVariables("x = '$who' AND $__timeFilter(t) AND $nope", [{ variable: single, options: [], value: "it's" }], {}))
      .toBe("x = 'it''s' AND $__timeFilter(t) AND $nope")
  })

  it("expands a whole panel query", () => {
    const sql = "SELECT $__timeGroupAlias(ts, $__interval), sum(v) FROM t WHERE $__timeFilter(ts) AND s IN ($source) GROUP BY 1 ORDER BY 1"
    const out = expandPanelSql(sql, {
      range,
      variables: [{ variable: multi, options: ["a", "b"], value: ALL_VALUE }],
      intervalMs: 60_000,
      interval: "1m"
    })
    expect(out.sql).toBe(
      "SELECT floor(extract(epoch from ts)/60)*60 AS \"time\", sum(v) FROM t WHERE ts BETWEEN '2018-04-12T18:00:00Z' AND "
        + "'2018-04-12T18:05:00Z' AND s IN ('a','b') GROUP BY 1 ORDER BY 1"
    )
  })
})
