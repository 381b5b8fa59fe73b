/**
 * What Grafana does to a PostgreSQL panel query before the database sees it, so a test can
 * run the dashboard's SQL as Grafana would.
 *
 * Two passes, in Grafana's order:
 *
 * 1. In the browser, `TemplateSrv.replace(rawSql, scopedVars, SqlDatasource.interpolateVariable)`
 *    (public/app/features/plugins/sql/datasource/SqlDatasource.ts): dashboard variables
 *    (`$var`, `${var}`, `${var:format}`, `[[var]]`) and the panel's scoped variables
 *    (`$__interval`, `$__interval_ms`). A multi-value or include-All variable becomes a list of
 *    quoted literals (`'a','b'`); "All" becomes the variable's custom all value verbatim when it
 *    has one, otherwise every option; a single-value variable is only quote-escaped.
 *    Unknown names (the `$__macros`) are left alone.
 * 2. In the server, `sqleng.Interpolate` (`$__interval_ms`, `$__interval`, `$__unixEpochFrom()`,
 *    `$__unixEpochTo()`) and then the PostgreSQL macro engine
 *    (pkg/tsdb/grafana-postgresql-datasource/macros.go): `$__name(args)` with args split on
 *    commas and trimmed, args never containing `)`.
 *
 * The formatting follows Go: times in RFC 3339 with trailing fractional zeros dropped, bucket
 * widths with `%v` (shortest float, exponent form from 1e6 s up), intervals formatted by
 * `gtime.FormatInterval` and parsed by `gtime.ParseInterval`.
 */

export interface TimeRange {
  readonly from: Date
  readonly to: Date
}

/** A dashboard's template variable, as stored in `templating.list`. */
export interface TemplateVariable {
  readonly name: string
  readonly type?: string
  readonly multi?: boolean
  readonly includeAll?: boolean
  readonly allValue?: string | null
  readonly query?: unknown
  readonly current?: { readonly value?: string | ReadonlyArray<string> }
}

/** A variable's options (for "All" without a custom all value) and its selected value. */
export interface VariableState {
  readonly variable: TemplateVariable
  readonly options: ReadonlyArray<string>
  readonly value: string | ReadonlyArray<string>
}

export const ALL_VALUE = "$__all"

// ---------------------------------------------------------------------------------------------
// Go formatting helpers

/** Go's `time.Time.Format(time.RFC3339Nano)` of a UTC instant with millisecond precision. */
export const rfc3339Nano = (date: Date): string => {
  const iso = date.toISOString() // YYYY-MM-DDTHH:MM:SS.mmmZ
  const [base, fraction] = iso.slice(0, -1).split(".") as [string, string]
  const trimmed = fraction.replace(/0+$/, "")
  return trimmed === "" ? `${base}Z` : `${base}.${trimmed}Z`
}

/**
 * Go's `fmt.Sprintf("%v", f)` for a float64: `strconv.FormatFloat(f, 'g', -1, 64)`, the
 * shortest digits that round-trip, in `%e` form when the exponent is < -4 or >= 6
 * ("if precision was the shortest possible, use precision 6 for this decision").
 */
export const goFloat = (value: number): string => {
  if (Number.isNaN(value)) return "NaN"
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf"
  if (value === 0) return Object.is(value, -0) ? "-0" : "0"
  const [mantissa, exponent] = value.toExponential().split("e") as [string, string]
  const exp = Number(exponent)
  if (exp < -4 || exp >= 6) {
    const abs = Math.abs(exp)
    return `${mantissa}e${exp < 0 ? "-" : "+"}${abs < 10 ? `0${abs}` : String(abs)}`
  }
  return value.toFixed(Math.max(0, (mantissa.split(".")[1]?.length ?? 0) - exp))
}

const goUnits: Record<string, number> = {
  ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1_000, m: 60_000, h: 3_600_000
}

/** Go's `time.ParseDuration`, in milliseconds. */
export const parseGoDuration = (input: string): number => {
  let s = input
  let sign = 1
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s[0] === "-") sign = -1
    s = s.slice(1)
  }
  if (s === "0") return 0
  if (s === "") throw new Error(`time: invalid duration "${input}"`)
  let total = 0
  const part = /^([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/
  while (s !== "") {
    const match = part.exec(s)
    if (!match || match[1] === "" || match[1] === ".") throw new Error(`time: invalid duration "${input}"`)
    total += Number(match[1]) * goUnits[match[2]!]!
    s = s.slice(match[0].length)
  }
  return sign * total
}

/** `gtime.ParseInterval`: Go durations, or `<n>d|w|M|y` measured from now in UTC; milliseconds. */
export const parseInterval = (input: string, now: Date = new Date()): number => {
  const match = /^(\d+)([dwMy])$/.exec(input)
  if (!match) return parseGoDuration(input)
  const n = Number(match[1])
  const later = new Date(now.getTime())
  switch (match[2]) {
    case "d": later.setUTCDate(later.getUTCDate() + n); break
    case "w": later.setUTCDate(later.getUTCDate() + 7 * n); break
    case "M": later.setUTCMonth(later.getUTCMonth() + n); break
    case "y": later.setUTCFullYear(later.getUTCFullYear() + n); break
  }
  return later.getTime() - now.getTime()
}

/** `gtime.FormatInterval` (server side `$__interval`). */
export const formatInterval = (ms: number): string => {
  const year = 365 * 86_400_000
  const day = 86_400_000
  if (ms >= year) return `${Math.trunc(ms / year)}y`
  if (ms >= day) return `${Math.trunc(ms / day)}d`
  if (ms >= 3_600_000) return `${Math.trunc(ms / 3_600_000)}h`
  if (ms >= 60_000) return `${Math.trunc(ms / 60_000)}m`
  if (ms >= 1_000) return `${Math.trunc(ms / 1_000)}s`
  if (ms >= 1) return `${Math.trunc(ms)}ms`
  return "1ms"
}

/** `secondsToHms` of @grafana/data (browser side `$__interval`). */
export const secondsToHms = (seconds: number): string => {
  const years = Math.floor(seconds / 31_536_000)
  if (years) return `${years}y`
  const days = Math.floor((seconds % 31_536_000) / 86_400)
  if (days) return `${days}d`
  const hours = Math.floor(((seconds % 31_536_000) % 86_400) / 3_600)
  if (hours) return `${hours}h`
  const minutes = Math.floor((((seconds % 31_536_000) % 86_400) % 3_600) / 60)
  if (minutes) return `${minutes}m`
  const secs = Math.floor((((seconds % 31_536_000) % 86_400) % 3_600) % 60)
  if (secs) return `${secs}s`
  const millis = Math.floor(seconds * 1000)
  if (millis) return `${millis}ms`
  return "less than a millisecond"
}

/** `roundInterval` of @grafana/data / `gtime.RoundInterval`, in milliseconds. */
export const roundInterval = (ms: number): number => {
  const steps: ReadonlyArray<readonly [number, number]> = [
    [10, 1], [15, 10], [35, 20], [75, 50], [150, 100], [350, 200], [750, 500], [1_500, 1_000],
    [3_500, 2_000], [7_500, 5_000], [12_500, 10_000], [17_500, 15_000], [25_000, 20_000],
    [45_000, 30_000], [90_000, 60_000], [210_000, 120_000], [450_000, 300_000], [750_000, 600_000],
    [1_050_000, 900_000], [1_500_000, 1_200_000], [2_700_000, 1_800_000], [5_400_000, 3_600_000],
    [9_000_000, 7_200_000], [16_200_000, 10_800_000], [32_400_000, 21_600_000],
    [86_400_000, 43_200_000], [172_800_000, 86_400_000], [604_800_000, 86_400_000],
    [1_814_400_000, 604_800_000]
  ]
  for (const [limit, value] of steps) if (ms <= limit) return value
  return ms < 3_628_800_000 ? 2_592_000_000 : 31_536_000_000
}

/**
 * The panel's `$__interval`: `rangeUtil.calculateInterval(range, maxDataPoints, minInterval)`,
 * where the lower limit is the panel's `interval` or else the datasource's `timeInterval`.
 */
export const panelInterval = (
  range: TimeRange,
  maxDataPoints: number,
  minInterval: string | undefined
): { readonly intervalMs: number; readonly interval: string } => {
  const lowLimitMs = minInterval ? parseInterval(minInterval.replace(/^>/, "")) : 1
  let intervalMs = roundInterval((range.to.getTime() - range.from.getTime()) / maxDataPoints)
  if (lowLimitMs > intervalMs) intervalMs = lowLimitMs
  return { intervalMs, interval: secondsToHms(intervalMs / 1000) }
}

// ---------------------------------------------------------------------------------------------
// Pass 1: template variables (browser)

const quoteLiteral = (value: string) => `'${value.replaceAll("'", "''")}'`

const variablePattern = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^}]+))?(?::([^}]+))?}/g

const isAll = (value: string | ReadonlyArray<string>) =>
  typeof value === "string" ? value === ALL_VALUE : value.includes(ALL_VALUE)

/** `SqlDatasource.interpolateVariable`. */
const sqlFormatter = (value: string | number | ReadonlyArray<string>, variable: TemplateVariable | undefined): string => {
  if (typeof value === "string") {
    return variable?.multi || variable?.includeAll ? quoteLiteral(value) : value.replaceAll("'", "''")
  }
  if (typeof value === "number") return String(value)
  return value.map(quoteLiteral).join(",")
}

/** The few explicit `${var:format}` formats a SQL dashboard would use. */
const explicitFormat = (format: string, value: string | ReadonlyArray<string>): string => {
  const values = typeof value === "string" ? [value] : value
  switch (format) {
    case "raw": return values.join(",")
    case "csv": return values.join(",")
    case "singlequote": return values.map((v) => `'${v.replaceAll("'", "\\'")}'`).join(",")
    case "doublequote": return values.map((v) => `"${v.replaceAll("\"", "\\\"")}"`).join(",")
    case "sqlstring": return values.map(quoteLiteral).join(",")
    case "pipe": return values.join("|")
    default: throw new Error(`unsupported variable format ${format}`)
  }
}

export interface ScopedVars {
  readonly [name: string]: string | number
}

/** `TemplateSrv.replace(sql, scopedVars, interpolateVariable)`. */
export const replaceVariables = (
  sql: string,
  variables: ReadonlyArray<VariableState>,
  scopedVars: ScopedVars
): string =>
  sql.replace(variablePattern, (match, var1, var2, fmt2, var3, _fieldPath, fmt3) => {
    const name: string = var1 ?? var2 ?? var3
    const format: string | undefined = fmt2 ?? fmt3
    const scoped = scopedVars[name]
    if (scoped !== undefined) {
      return format ? explicitFormat(format, String(scoped)) : sqlFormatter(scoped, undefined)
    }
    const state = variables.find((v) => v.variable.name === name)
    if (!state) return match
    let value = state.value
    if (isAll(value)) {
      const custom = state.variable.allValue
      if (custom && format !== "text" && format !== "percentencode") {
        return replaceVariables(custom, variables, scopedVars)
      }
      value = state.options
    }
    return format ? explicitFormat(format, value) : sqlFormatter(value, state.variable)
  })

// ---------------------------------------------------------------------------------------------
// Pass 2: the server (sqleng.Interpolate, then the PostgreSQL macro engine)

export interface FillMode {
  readonly mode: "null" | "previous" | "value"
  readonly value?: number
  readonly intervalSeconds: number
}

export interface Interpolated {
  readonly sql: string
  /** Set when a `$__timeGroup(col, interval, fill)` asked Grafana to fill gaps after the query. */
  readonly fill?: FillMode
}

/** `sqleng.Interpolate`: the datasource-independent substitutions. */
export const interpolateGlobal = (sql: string, range: TimeRange, intervalMs: number): string =>
  sql
    .replaceAll("$__interval_ms", String(Math.trunc(intervalMs)))
    .replaceAll("$__interval", formatInterval(intervalMs))
    .replaceAll("$__unixEpochFrom()", String(Math.floor(range.from.getTime() / 1000)))
    .replaceAll("$__unixEpochTo()", String(Math.floor(range.to.getTime() / 1000)))

const macroPattern = /\$([_a-zA-Z0-9]+)\(([^)]*)\)/g

const unixNano = (date: Date) => (BigInt(date.getTime()) * 1_000_000n).toString()

const parseFill = (arg: string, intervalSeconds: number): FillMode => {
  if (arg === "NULL") return { mode: "null", intervalSeconds }
  if (arg === "previous") return { mode: "previous", intervalSeconds }
  const value = Number(arg)
  if (arg.trim() === "" || Number.isNaN(value)) throw new Error(`error parsing fill value ${arg}`)
  return { mode: "value", value, intervalSeconds }
}

/** The PostgreSQL macro engine (`postgresMacroEngine.Interpolate`), TimescaleDB off. */
export const interpolateMacros = (sql: string, range: TimeRange): Interpolated => {
  let fill: FillMode | undefined
  const evaluate = (name: string, args: ReadonlyArray<string>): string => {
    // Go's strings.Split never returns an empty slice: `$__timeFilter()` has the column "",
    // and the "missing time column" error of macros.go cannot happen.
    const column = () => args[0] ?? ""
    switch (name) {
      case "__time":
        return `${column()} AS "time"`
      case "__timeEpoch":
        return `extract(epoch from ${column()}) as "time"`
      case "__timeFilter":
        return `${column()} BETWEEN '${rfc3339Nano(range.from)}' AND '${rfc3339Nano(range.to)}'`
      case "__timeFrom":
        return `'${rfc3339Nano(range.from)}'`
      case "__timeTo":
        return `'${rfc3339Nano(range.to)}'`
      case "__timeGroup":
      case "__unixEpochGroup": {
        if (args.length < 2) throw new Error(`macro ${name} needs time column and interval and optional fill value`)
        let seconds: number
        try {
          seconds = parseInterval(args[1]!.replace(/^'+|'+$/g, "")) / 1000
        } catch {
          throw new Error(`error parsing interval ${args[1]}`)
        }
        if (args.length === 3) fill = parseFill(args[2]!, seconds)
        const width = goFloat(seconds)
        return name === "__timeGroup"
          ? `floor(extract(epoch from ${args[0]})/${width})*${width}`
          : `floor((${args[0]})/${width})*${width}`
      }
      case "__timeGroupAlias":
        return `${evaluate("__timeGroup", args)} AS "time"`
      case "__unixEpochGroupAlias":
        return `${evaluate("__unixEpochGroup", args)} AS "time"`
      case "__unixEpochFilter":
        return `${column()} >= ${Math.floor(range.from.getTime() / 1000)} AND ${column()} <= ${
          Math.floor(range.to.getTime() / 1000)
        }`
      case "__unixEpochNanoFilter":
        return `${column()} >= ${unixNano(range.from)} AND ${column()} <= ${unixNano(range.to)}`
      case "__unixEpochNanoFrom":
        return unixNano(range.from)
      case "__unixEpochNanoTo":
        return unixNano(range.to)
      default:
        throw new Error(`unknown macro "${name}"`)
    }
  }
  const original = sql
  const out = sql.replace(macroPattern, (match: string, rawName: string, rawArgs: string) => {
    let name = rawName
    // pre-5.3 compatibility: `$__timeGroup(...)` directly followed by ',' means the alias form;
    // Go looks at the first occurrence of the same macro text in the query.
    if (name === "__timeGroup") {
      const index = original.indexOf(match)
      if (index >= 0 && original[index + match.length] === ",") name = "__timeGroupAlias"
    }
    const args = rawArgs.split(",").map((arg) => arg.replace(/^ +| +$/g, ""))
    return evaluate(name, args)
  })
  return fill ? { sql: out, fill } : { sql: out }
}

/** Both passes: what the database receives for a panel's `rawSql`. */
export const expandPanelSql = (
  rawSql: string,
  options: {
    readonly range: TimeRange
    readonly variables: ReadonlyArray<VariableState>
    readonly intervalMs: number
    readonly interval: string
  }
): Interpolated => {
  const browser = replaceVariables(rawSql, options.variables, {
    __interval: options.interval,
    __interval_ms: options.intervalMs,
    __from: options.range.from.getTime(),
    __to: options.range.to.getTime(),
    __range_ms: options.range.to.getTime() - options.range.from.getTime(),
    __range_s: Math.floor((options.range.to.getTime() - options.range.from.getTime()) / 1000)
  })
  return interpolateMacros(interpolateGlobal(browser, options.range, options.intervalMs), options.range)
}
