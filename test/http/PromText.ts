/**
 * Reading `/metrics` in tests. Three independent judges of the Prometheus text format
 * (version 0.0.4):
 * - `parse-prometheus-text-format` (npm), a port of the Python client's parser: families,
 *   samples, histogram buckets;
 * - `checkExposition` below, stricter line by line: names, label syntax and escapes, float
 *   values, one TYPE per family before its samples, contiguous families, no duplicate series,
 *   counters ≥ 0, cumulative histogram buckets whose `+Inf` equals `_count`;
 * - Prometheus's own `promtool check metrics` (parser + naming lint) when it is installed
 *   (Debian: `apt-get install prometheus`).
 */
import parsePrometheusTextFormat, { type Family } from "parse-prometheus-text-format"
import { spawnSync } from "node:child_process"

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*"
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`
const FLOAT = "[+-]?(?:Inf|NaN|(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?)"
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (${FLOAT})(?: -?\\d+)?$`)
const LABEL_G = new RegExp(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`, "g")
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"])

export interface Series {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Exposition {
  readonly text: string
  readonly problems: ReadonlyArray<string>
  readonly types: ReadonlyMap<string, string>
  readonly series: ReadonlyArray<Series>
}

const parseValue = (v: string): number => v.endsWith("Inf") ? (v.startsWith("-") ? -Infinity : Infinity) : Number(v)

/** The family a sample name belongs to, given the declared types. */
const familyOf = (name: string, types: ReadonlyMap<string, string>): string => {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length)
      const t = types.get(base)
      if (t === "histogram" || (t === "summary" && suffix !== "_bucket")) return base
    }
  }
  return name
}

export const checkExposition = (text: string): Exposition => {
  const problems: Array<string> = []
  const types = new Map<string, string>()
  const helps = new Set<string>()
  const series: Array<Series> = []
  const seen = new Set<string>()
  const finished = new Set<string>()
  let current: string | undefined
  if (!text.endsWith("\n")) problems.push("the text does not end with a newline")
  const lines = text.split("\n")
  lines.pop()
  lines.forEach((line, i) => {
    const at = `line ${i + 1} (${JSON.stringify(line)})`
    const enter = (family: string) => {
      if (family !== current) {
        if (finished.has(family)) problems.push(`${at}: family ${family} is not contiguous`)
        if (current !== undefined) finished.add(current)
        current = family
      }
    }
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line)
      if (m === null) return // a plain comment
      const [, kind, name, rest = ""] = m
      if (!new RegExp(`^${NAME}$`).test(name!)) problems.push(`${at}: bad metric name`)
      enter(name!)
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) problems.push(`${at}: unknown type`)
        if (types.has(name!)) problems.push(`${at}: second TYPE for ${name}`)
        if (series.some((s) => familyOf(s.name, types) === name)) problems.push(`${at}: TYPE after samples of ${name}`)
        types.set(name!, rest)
      } else {
        if (helps.has(name!)) problems.push(`${at}: second HELP for ${name}`)
        helps.add(name!)
      }
      return
    }
    if (line.trim() === "") return problems.push(`${at}: empty line`), undefined
    const m = SAMPLE.exec(line)
    if (m === null) return problems.push(`${at}: not a valid sample line`), undefined
    const [, name, labelText = "", value] = m
    const labels: Record<string, string> = {}
    for (const l of labelText.matchAll(LABEL_G)) {
      if (l[1]! in labels) problems.push(`${at}: label ${l[1]} repeated`)
      labels[l[1]!] = l[2]!.replace(/\\(["\\n])/g, (_, c: string) => c === "n" ? "\n" : c)
    }
    const family = familyOf(name!, types)
    enter(family)
    const key = `${name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}}`
    if (seen.has(key)) problems.push(`${at}: duplicate series ${key}`)
    seen.add(key)
    const v = parseValue(value!)
    if (types.get(family) === "counter" && !(v >= 0)) problems.push(`${at}: counter below zero`)
    series.push({ name: name!, labels, value: v })
  })

  // histograms: cumulative buckets, +Inf bucket = _count
  for (const [family, type] of types) {
    if (type !== "histogram") continue
    const groups = new Map<string, Array<Series>>()
    for (const s of series) {
      if (s.name !== `${family}_bucket`) continue
      const { le, ...rest } = s.labels
      if (le === undefined) problems.push(`${family}: bucket without le`)
      const k = JSON.stringify(Object.entries(rest).sort())
      groups.set(k, [...(groups.get(k) ?? []), s])
    }
    for (const [k, buckets] of groups) {
      const sorted = [...buckets].sort((a, b) => parseValue(a.labels["le"]!) - parseValue(b.labels["le"]!))
      for (let i = 1; i < sorted.length; i++) {
        if (sorted[i]!.value < sorted[i - 1]!.value) problems.push(`${family}${k}: buckets not cumulative`)
      }
      const inf = sorted[sorted.length - 1]
      const count = series.find((s) => s.name === `${family}_count` && JSON.stringify(Object.entries(s.labels).sort()) === k)
      if (inf?.labels["le"] !== "+Inf") problems.push(`${family}${k}: no +Inf bucket`)
      else if (count === undefined || count.value !== inf.value) problems.push(`${family}${k}: +Inf bucket differs from _count`)
      if (!series.some((s) => s.name === `${family}_sum` && JSON.stringify(Object.entries(s.labels).sort()) === k)) problems.push(`${family}${k}: no _sum`)
    }
  }
  return { text, problems, types, series }
}

/** `parse-prometheus-text-format`'s reading (throws on a line it cannot read). */
export const parseFamilies = (text: string): Array<Family> => parsePrometheusTextFormat(text)

/** `promtool check metrics` on the text: undefined when promtool is not installed, else its complaints (empty: clean). */
export const promtool = (text: string): ReadonlyArray<string> | undefined => {
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
  if (r.error !== undefined) return undefined
  const out = `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.trim() !== "")
  return r.status === 0 ? [] : out.length > 0 ? out : [`promtool exited ${r.status}`]
}

/** The value of one series, by name and (a subset of) labels. */
export const valueOf = (e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined =>
  e.series.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
