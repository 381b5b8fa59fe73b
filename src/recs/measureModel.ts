/**
 * The recommender model's memory and speed at scale, for the bench: a model of `users`
 * users (default 100 k) and `products` products (default 10 k) built from synthetic events
 * (each user with a few favourite categories, `eventsPerUser` events each, so every ring is
 * full), then timed on further observe + recommend pairs.
 *
 * `heap_bytes` is the memory the model holds (JS heap used plus typed arrays' backing stores,
 * after building it minus before, both after a forced GC when the process runs with `--expose-gc`; without it the figure is
 * rougher). `bytes_per_user` divides it by the users (the products' share is included).
 *
 *     node --expose-gc -e 'import("./dist/recs/measureModel.js").then(m => console.log(m.measureModel()))'
 *
 * @since 0.1.0
 */
import { performance } from "node:perf_hooks"
import { makeRandom } from "../generator/Random.ts"
import { type Interaction, type ProductInfo, RecommenderModel } from "./Model.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface ModelMeasurement {
  readonly heap_bytes: number
  readonly bytes_per_user: number
  readonly observe_recommend_per_s: number
  readonly users: number
  readonly products: number
  readonly neighbour_links: number
  /** whether the heap was measured after a forced GC */
  readonly forced_gc: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MeasureOptions {
  readonly users?: number
  readonly products?: number
  readonly eventsPerUser?: number
  /** observe + recommend pairs timed after the build */
  readonly timed?: number
  readonly seed?: number
}

const categories = 40
const brands = 400
const kinds: ReadonlyArray<Interaction> = ["view", "view", "click", "click", "click", "add_to_cart", "purchase"]

const settle = (): number => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc !== undefined) {
    gc()
    gc()
  }
  // typed arrays' backing stores live outside the JS heap: count them too
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

/**
 * Builds the model and measures it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const measureModel = (options: MeasureOptions = {}): ModelMeasurement => {
  const userCount = options.users ?? 100_000
  const productCount = options.products ?? 10_000
  const eventsPerUser = options.eventsPerUser ?? 24
  const timed = options.timed ?? 200_000
  const random = makeRandom(options.seed ?? 7)

  const productIds = Array.from({ length: productCount }, (_, i) => `P${i}`)
  const info: Array<ProductInfo> = productIds.map((_, i) => ({ category: `c${i % categories}`, brand: `b${i % brands}` }))
  const byCategory = Array.from({ length: categories }, (_, c) => productIds.filter((_, i) => i % categories === c))
  const index = new Map(productIds.map((id, i) => [id, i]))
  const catalog = (productId: string): ProductInfo | undefined => {
    const i = index.get(productId)
    return i === undefined ? undefined : info[i]
  }
  const userIds = Array.from({ length: userCount }, (_, i) => `U${i}`)
  const favourites = userIds.map(() => [random.int(categories), random.int(categories)])
  // a skewed pick within a category: low positions are far more popular
  const pick = (user: number): string => {
    const list = random.chance(0.15) ? byCategory[random.int(categories)]! : byCategory[random.pick(favourites[user]!)]!
    return list[Math.floor(list.length * random.next() ** 3)]!
  }
  const start = Date.UTC(2026, 10, 1)
  const step = (14 * 86_400_000) / (userCount * eventsPerUser) // two weeks of event time
  let ts = start
  const event = (model: RecommenderModel): readonly [string, number] => {
    const user = random.int(userCount)
    const userId = userIds[user]!
    ts += step
    model.observe(userId, pick(user), random.pick(kinds), ts)
    return [userId, ts]
  }

  const before = settle()
  const model = new RecommenderModel(catalog)
  for (let i = 0; i < userCount * eventsPerUser; i++) event(model)
  const after = settle()

  // warm, then time observe + recommend pairs
  for (let i = 0; i < 20_000; i++) {
    const [userId, at] = event(model)
    model.recommend(userId, at)
  }
  // the timed events are drawn beforehand: only the model is timed
  const users = Array.from({ length: timed }, () => random.int(userCount))
  const products = users.map(pick)
  const kindsDrawn = users.map(() => random.pick(kinds))
  const began = performance.now()
  for (let i = 0; i < timed; i++) {
    const userId = userIds[users[i]!]!
    ts += step
    model.observe(userId, products[i]!, kindsDrawn[i]!, ts)
    model.recommend(userId, ts)
  }
  const seconds = (performance.now() - began) / 1000
  const stats = model.stats()
  const heap = Math.max(0, after - before)
  return {
    heap_bytes: heap,
    bytes_per_user: Math.round(heap / userCount),
    observe_recommend_per_s: Math.round(timed / seconds),
    users: stats.users,
    products: stats.products,
    neighbour_links: stats.neighbourLinks,
    forced_gc: (globalThis as { gc?: () => void }).gc !== undefined
  }
}
