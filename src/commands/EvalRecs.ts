/**
 * `insights eval-recs`: how good the recommendations are (SPEC §7 Quality), on the
 * generator's shoppers with hidden tastes.
 *
 * Every event goes, in event-time order, to the recommender (`consume`). Before each
 * add-to-cart is consumed, the user's list as it stands (`query`, from the events up to
 * then) is checked for that product: a hit. The same for the baseline, the most popular
 * products so far (plain counts of every view, click, add-to-cart and paid purchase up to
 * then, ties to the smaller product id) less what the user bought in the last 24 h.
 * Messages are decoded with the engine's own decoders (`decodeClick`, `decodeCheckout`),
 * so the evaluation sees what the engine sees.
 *
 * The feeding loop (`feed`) takes the recommender as a consumer of messages and a query. The
 * command runs the live recommender job (`jobTarget`): each message goes through the engine's
 * task (decode, alignment, the job's operator, its per-flush lists), exactly as in the
 * daemon, and the list asked for is the one the API would answer. `modelTarget` (the model
 * alone) is what the variants and the controls use.
 *
 * Time: each user visits about once a day of event time (`sessions` visits each on
 * average), 1 visit in 50 is under way at once, and a visit's events are minutes apart.
 */
import { Console, Effect } from "effect"
import { performance } from "node:perf_hooks"
import { decodeCheckout, decodeClick, isDecodeFailure } from "../domain/Events.ts"
import { makeProducts, makeUsers, type ProductRow } from "../generator/Catalog.ts"
import { makeRandom } from "../generator/Random.ts"
import { type GeneratedMessage, makeSimulator } from "../generator/Shoppers.ts"
import { defaultData } from "../generator/writeData.ts"
import { TopologyTestDriver } from "../engine/TopologyTestDriver.ts"
import type { Sink } from "../engine/Topology.ts"
import * as Attribution from "../jobs/Attribution.ts"
import type { ShopEvent } from "../jobs/Attribution.ts"
import * as Recommender from "../jobs/Recommender.ts"
import {
  type Interaction,
  type ModelLimits,
  type ModelWeights,
  type ProductInfo,
  RecommenderModel
} from "../recs/Model.ts"

export interface EvalOptions {
  readonly seed: number
  readonly users: number
  /** visits per user, on average */
  readonly sessions: number
}

export const defaultEvalOptions: EvalOptions = { seed: 1, users: 1000, sessions: 20 }

export interface EvalResult {
  readonly hit_rate_at_10: number
  readonly baseline_hit_rate_at_10: number
  readonly users: number
  readonly events: number
  readonly add_to_carts: number
  readonly p99_update_ms: number
  readonly seed: number
  readonly sessions: number
}

/** A list of recommended products, best first. */
export type Query = (userId: string, ts: number) => ReadonlyArray<{ readonly productId: string }> | undefined

const dayMs = 86_400_000
const hits = 10
const start = Date.UTC(2026, 10, 1)

/** The shoppers' messages in event-time order: `sessions` × `users.length` visits. */
export function* shoppers(
  seed: number,
  users: ReturnType<typeof makeUsers>,
  products: ReadonlyArray<ProductRow>,
  sessions: number
): Generator<GeneratedMessage> {
  const simulator = makeSimulator({ seed, users, products, activeSessions: Math.max(10, Math.round(users.length / 50)) })
  // a visit is ~9 messages: spread them so each user visits about once a day
  const step = dayMs / (users.length * 9)
  const visits = users.length * sessions
  for (let i = 0; simulator.visits <= visits; i++) yield simulator.next(Math.floor(start + i * step))
}

/**
 * The most popular products so far by plain counts, less the user's purchases of the
 * last 24 h of event time. Counts only grow, so the top list is kept exactly by moving
 * a product up when its count grows.
 */
export class PopularSoFar {
  private readonly counts = new Map<string, number>()
  private readonly top: Array<string> = []
  private readonly bought = new Map<string, Array<{ readonly productId: string; readonly ts: number }>>()
  private readonly size: number
  constructor(size = 64) {
    this.size = size
  }

  observe(userId: string, productId: string, kind: Interaction, ts: number): void {
    const count = (this.counts.get(productId) ?? 0) + 1
    this.counts.set(productId, count)
    const better = (a: string, b: string) => {
      const ca = this.counts.get(a) ?? 0
      const cb = this.counts.get(b) ?? 0
      return ca > cb || (ca === cb && a < b)
    }
    let i = this.top.indexOf(productId)
    if (i === -1) {
      if (this.top.length < this.size) i = this.top.push(productId) - 1
      else if (better(productId, this.top[this.top.length - 1]!)) this.top[i = this.top.length - 1] = productId
      else i = -1
    }
    while (i > 0 && better(productId, this.top[i - 1]!)) {
      this.top[i] = this.top[i - 1]!
      this.top[--i] = productId
    }
    if (kind === "purchase") {
      const list = (this.bought.get(userId) ?? []).filter((b) => b.ts > ts - dayMs)
      list.push({ productId, ts })
      this.bought.set(userId, list)
    }
  }

  list(userId: string, ts: number, n = hits): ReadonlyArray<{ readonly productId: string }> {
    const recent = new Set((this.bought.get(userId) ?? []).filter((b) => b.ts > ts - dayMs).map((b) => b.productId))
    return this.top.filter((id) => !recent.has(id)).slice(0, n).map((productId) => ({ productId }))
  }
}

/** One decoded event of interest: a user's interaction with a product, or undefined. */
export const interactionOf = (
  message: GeneratedMessage
): { readonly userId: string; readonly productId: string; readonly kind: Interaction; readonly ts: number } | undefined => {
  if (message.topic === "clicks") {
    const click = decodeClick(message.value)
    if (isDecodeFailure(click) || click.productId === null) return undefined
    return { userId: click.userId, productId: click.productId, kind: click.eventType, ts: click.ts }
  }
  const checkout = decodeCheckout(message.value)
  if (isDecodeFailure(checkout) || checkout.paymentStatus !== "Success") return undefined
  return { userId: checkout.userId, productId: checkout.productId, kind: "purchase", ts: checkout.ts }
}

export interface FeedCounts {
  readonly events: number
  readonly addToCarts: number
  readonly hits: number
  readonly baselineHits: number
}

/**
 * Feeds `messages` (in event-time order) to `consume`, asking `query` for the user's list
 * just before each add-to-cart; counts the hits of it and of the popular-so-far baseline.
 */
export const feed = (
  messages: Iterable<GeneratedMessage>,
  consume: (message: GeneratedMessage) => void,
  query: Query
): FeedCounts => {
  const baseline = new PopularSoFar()
  let events = 0
  let addToCarts = 0
  let hitCount = 0
  let baselineHits = 0
  for (const message of messages) {
    events++
    const event = interactionOf(message)
    if (event !== undefined && event.kind === "add_to_cart") {
      addToCarts++
      const list = query(event.userId, event.ts) ?? []
      if (list.slice(0, hits).some((item) => item.productId === event.productId)) hitCount++
      if (baseline.list(event.userId, event.ts).some((item) => item.productId === event.productId)) baselineHits++
    }
    consume(message)
    if (event !== undefined) baseline.observe(event.userId, event.productId, event.kind, event.ts)
  }
  return { events, addToCarts, hits: hitCount, baselineHits }
}

/** The products table as the model sees it. */
export const catalogOf = (products: ReadonlyArray<ProductRow>): (productId: string) => ProductInfo | undefined => {
  const byId = new Map(products.map((p) => [p.product_id, { category: p.category, brand: p.brand }]))
  return (productId) => byId.get(productId)
}

/**
 * The model as the engine would run it: decode, observe, recompute the user's list; the
 * time of each observe + recommend goes to `timings` (ms). `shuffleUsers` (a control)
 * attributes each event to a random user, so no user's history is theirs.
 */
export const modelTarget = (
  model: RecommenderModel,
  timings: Array<number>,
  shuffleUsers?: { readonly seed: number; readonly users: ReadonlyArray<string> }
): { readonly consume: (message: GeneratedMessage) => void; readonly query: Query } => {
  const random = shuffleUsers === undefined ? undefined : makeRandom(shuffleUsers.seed)
  return {
    consume: (message) => {
      const event = interactionOf(message)
      if (event === undefined) return
      const userId = random === undefined ? event.userId : random.pick(shuffleUsers!.users)
      const began = performance.now()
      model.observe(userId, event.productId, event.kind, event.ts)
      model.recommend(userId, event.ts)
      timings.push(performance.now() - began)
    },
    query: (userId, ts) => model.recommend(userId, ts)
  }
}

const percentile = (values: Array<number>, p: number): number => {
  if (values.length === 0) return 0
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!
}

const round = (x: number, digits: number) => Number(x.toFixed(digits))

/**
 * The live recommender job on one task of the engine (`TopologyTestDriver`, the same step the
 * daemon runs): every message is piped through decode, alignment and the job; the time of each
 * message's step goes to `timings`; the query is the API's in-memory lookup.
 */
export const jobTarget = (
  catalog: (productId: string) => ProductInfo | undefined,
  timings: Array<number>,
  model?: { readonly limits?: Partial<ModelLimits> }
): { readonly consume: (message: GeneratedMessage) => void; readonly query: Query } => {
  const recs = new Recommender.Recommenders(catalog, model?.limits)
  const discard: Sink<Recommender.RecOutput, never> = { write: () => Effect.succeed({ fenced: [] }) }
  const driver = new TopologyTestDriver<ShopEvent>({
    decode: Attribution.decode({ clicks: "clicks", checkouts: "checkouts" }),
    jobs: [Recommender.node(recs, { snapshotEveryMs: Infinity }, discard)]
  }, { partitions: [{ topic: "clicks", partition: 0 }, { topic: "checkouts", partition: 0 }], idleTimeoutMs: 1 })
  // a topic that has sent nothing yet holds the other back until it is idle: start idle
  driver.advanceWallClock(2)
  return {
    consume: (message) => {
      const began = performance.now()
      driver.pipe(message.topic, message.value, { key: message.key })
      timings.push(performance.now() - began)
    },
    query: (userId) => recs.lookup(userId)?.items
  }
}

/** Runs the evaluation; `model` options choose a variant (the model alone), `shuffleUsers` runs the control. */
export const evaluate = (
  options: EvalOptions,
  model?: { readonly limits?: Partial<ModelLimits>; readonly weights?: Partial<ModelWeights>; readonly shuffleUsers?: boolean }
): EvalResult => {
  const users = makeUsers(defaultData.userSeed, options.users)
  const products = makeProducts(defaultData.productSeed, defaultData.productCount)
  const timings: Array<number> = []
  const target = model === undefined
    ? jobTarget(catalogOf(products), timings)
    : modelTarget(
      new RecommenderModel(catalogOf(products), model.limits, model.weights),
      timings,
      model.shuffleUsers ? { seed: options.seed ^ 0x5bd1e995, users: users.map((u) => u.user_id) } : undefined
    )
  const counts = feed(shoppers(options.seed, users, products, options.sessions), target.consume, target.query)
  return {
    hit_rate_at_10: round(counts.hits / Math.max(1, counts.addToCarts), 4),
    baseline_hit_rate_at_10: round(counts.baselineHits / Math.max(1, counts.addToCarts), 4),
    users: options.users,
    events: counts.events,
    add_to_carts: counts.addToCarts,
    p99_update_ms: round(percentile(timings, 0.99), 4),
    seed: options.seed,
    sessions: options.sessions
  }
}

/** The command: one JSON line (`--json`) or a short summary. */
export const evalRecs = (options: EvalOptions, json: boolean) =>
  Effect.gen(function*() {
    const result = yield* Effect.sync(() => evaluate(options))
    if (json) return yield* Console.log(JSON.stringify(result))
    const ratio = result.baseline_hit_rate_at_10 > 0 ? result.hit_rate_at_10 / result.baseline_hit_rate_at_10 : Infinity
    yield* Console.log(
      `recommendations, seed ${result.seed}: ${result.users} users, ${result.sessions} visits each on average, ` +
        `${result.events} events, ${result.add_to_carts} add-to-carts\n` +
        `  hit rate @10: ${(100 * result.hit_rate_at_10).toFixed(1)} % (model) vs ` +
        `${(100 * result.baseline_hit_rate_at_10).toFixed(1)} % (most popular so far): ${ratio.toFixed(2)}×\n` +
        `  one event through the job (decode, learn, new list): p99 ${result.p99_update_ms} ms`
    )
  })
