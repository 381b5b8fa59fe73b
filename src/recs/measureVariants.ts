/**
 * Compares model variants on `eval-recs`' shoppers: the hit rate @10 of each, against the
 * most-popular-so-far baseline, over a few seeds. How the default weights were chosen.
 *
 *     node_modules/.bin/node src/recs/measureVariants.ts [users] [sessions] [seeds, e.g. 1,2,3]
 *
 * @since 0.1.0
 */
import { evaluate } from "../commands/EvalRecs.ts"
import type { ModelLimits, ModelWeights } from "./Model.ts"

const users = Number(process.argv[2] ?? 1000)
const sessions = Number(process.argv[3] ?? 20)
const seeds = (process.argv[4] ?? "1,2,3").split(",").map(Number)

/** more variants as JSON: MORE='[["name", {weights}, {limits}], …]'; ONLY_MORE=1 runs only those */
const more = process.env["MORE"] ? JSON.parse(process.env["MORE"]) as Array<[string, Partial<ModelWeights>, Partial<ModelLimits>?]> : []
const none = { recent: 0, neighbours: 0, category: 0, brand: 0, popular: 0 }
const variants: ReadonlyArray<readonly [string, Partial<ModelWeights>, Partial<ModelLimits>?]> = [
  ["popular only (= baseline, recency-weighted)", { ...none, popular: 1 }],
  ["A: popular in affine categories", { ...none, category: 0.95, popular: 0.05 }],
  ["B: A + brands", { ...none, category: 0.6, brand: 0.35, popular: 0.05 }],
  ["C: B + co-occurrence", { ...none, category: 0.4, brand: 0.2, neighbours: 0.35, popular: 0.05 }],
  ["D: recent items only", { ...none, recent: 0.95, popular: 0.05 }],
  ["E: C + recent items (default)", {}],
  ["E without co-occurrence", { neighbours: 0 }],
  ["E without brands", { brand: 0 }],
  ["E, in-cart products' scores × 0.3", { inCart: 0.3 }],
  ["E, in-cart products left out", { inCart: 0 }],
  ...more
]

const only = process.env["ONLY_MORE"] ? variants.slice(variants.length - more.length) : variants
for (const [name, weights, limits] of only) {
  const rows = seeds.map((seed) => evaluate({ seed, users, sessions }, { weights, limits: limits ?? {} }))
  const cell = rows.map((r) => `${r.hit_rate_at_10.toFixed(3)}/${r.baseline_hit_rate_at_10.toFixed(3)}`).join("  ")
  const ratio = rows.reduce((s, r) => s + r.hit_rate_at_10 / r.baseline_hit_rate_at_10, 0) / rows.length
  console.log(`${name.padEnd(46)} ${cell}   mean ratio ${ratio.toFixed(2)}×  p99 ${Math.max(...rows.map((r) => r.p99_update_ms))} ms`)
}
