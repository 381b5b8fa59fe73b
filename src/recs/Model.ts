/**
 * The recommendation model (SPEC §7): learned online from every shopper's events, pure and
 * synchronous, with bounded state. The streaming job feeds it events and asks it for a
 * user's top 10; this module does no I/O and knows no Effect.
 *
 * What it learns, all in event time:
 * - **popularity**: per product, a sum of interaction weights decayed exponentially with
 *   half-life `popularityHalfLifeMs`; a top list overall, per category and per brand.
 * - **per user**: a ring of the last `recentPerUser` interactions, a category and a brand
 *   affinity (interaction weights decayed with half-life `affinityHalfLifeMs`, at most
 *   `categoriesPerUser` / `brandsPerUser` entries) and the purchases of the last
 *   `boughtWindowMs` (at most `boughtPerUser`).
 * - **per product**: at most `neighboursPerProduct` co-occurring products (products the same
 *   user touched within `coOccurrenceWindowMs`), kept with the space-saving algorithm: a
 *   new neighbour of a full list replaces the weakest one and inherits its count plus one.
 *
 * A recommendation scores a small candidate set: the user's recent products (their recency),
 * the neighbours of those products, the top products of the user's categories and brands,
 * and the global popular list. Each part is in [0, 1] and the weights sum to 1, so a score is
 * in [0, 1]; ties go to the smaller product id. Same events in the same order, same output.
 *
 * Decay without touching every value: a decayed sum is kept *scaled*, as Σ wᵢ·2^((tᵢ − ref)/h);
 * its value at t is that times 2^(−(t − ref)/h), the same factor for every product, so ranks
 * and ratios need no decay at all. When the exponent grows large, every sum is multiplied
 * down once and `ref` moves (rare: every ~300 half-lives). A late event simply adds less.
 *
 * @since 0.1.0
 */

/**
 * What the model knows of a product (from the products table).
 *
 * @since 0.1.0
 * @category models
 */
export interface ProductInfo {
  readonly category: string
  readonly brand: string
}

/**
 * One event of a user on a product; `purchase` is a `Success` checkout.
 *
 * @since 0.1.0
 * @category models
 */
export type Interaction = "view" | "click" | "add_to_cart" | "purchase"

/**
 * A recommended product and its score in [0, 1].
 *
 * @since 0.1.0
 * @category models
 */
export interface Scored {
  readonly productId: string
  readonly score: number
}

/**
 * The bounds of the model's state and its time constants. Memory is at most about
 * `maxUsers` × (per-user state) + `maxProducts` × (per-product state).
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelLimits {
  /** interactions kept per user (a ring: the oldest goes first) */
  readonly recentPerUser: number
  /** categories in a user's affinity (a new one replaces the weakest); 1 to 31 */
  readonly categoriesPerUser: number
  /** brands in a user's affinity (a new one replaces the weakest); 1 to 31 */
  readonly brandsPerUser: number
  /** purchases kept per user for leaving them out (a ring: the oldest goes first; only those of the last `boughtWindowMs` count) */
  readonly boughtPerUser: number
  /** co-occurring products kept per product (space-saving) */
  readonly neighboursPerProduct: number
  /** two interactions of a user this close in event time make their products neighbours */
  readonly coOccurrenceWindowMs: number
  /** how many of the user's latest interactions a new one is paired with */
  readonly coOccurrenceDepth: number
  /** how many of the user's latest distinct products give their neighbours as candidates */
  readonly neighbourSources: number
  /** the top lists kept per category, per brand and overall (the candidates they give) */
  readonly topPerCategory: number
  readonly topPerBrand: number
  readonly topOverall: number
  /** half-life of product popularity, in event time */
  readonly popularityHalfLifeMs: number
  /** half-life of a user's category and brand affinity */
  readonly affinityHalfLifeMs: number
  /** half-life of a recent interaction's weight in a recommendation */
  readonly recencyHalfLifeMs: number
  /** purchases this recent (event time) are left out of a user's lists: 24 h (SPEC §7) */
  readonly boughtWindowMs: number
  /** `evict` forgets users idle longer than this */
  readonly userIdleMs: number
  /** users tracked at most; a new one beyond it pushes out the least recently active */
  readonly maxUsers: number
  /** products tracked at most; events of further products are ignored */
  readonly maxProducts: number
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const defaultLimits: ModelLimits = {
  recentPerUser: 20,
  categoriesPerUser: 8,
  brandsPerUser: 8,
  boughtPerUser: 16,
  neighboursPerProduct: 24,
  coOccurrenceWindowMs: 2 * 3_600_000,
  coOccurrenceDepth: 3,
  neighbourSources: 4,
  topPerCategory: 16,
  topPerBrand: 8,
  topOverall: 64,
  popularityHalfLifeMs: 24 * 3_600_000,
  affinityHalfLifeMs: 7 * 86_400_000,
  recencyHalfLifeMs: 3_600_000,
  boughtWindowMs: 86_400_000,
  userIdleMs: 30 * 86_400_000,
  maxUsers: 1_000_000,
  maxProducts: 200_000
}

/**
 * How much each part of a recommendation counts (normalised to sum 1), and how much an
 * interaction counts in popularity and affinity. Tuned by `eval-recs` (see the README).
 *
 * @since 0.1.0
 * @category models
 */
export interface ModelWeights {
  /** the user's recent products themselves, by recency */
  readonly recent: number
  /** products that co-occur with the user's recent products */
  readonly neighbours: number
  /** popular products of the user's categories, by affinity */
  readonly category: number
  /** popular products of the user's brands, by affinity */
  readonly brand: number
  /** the overall popular list */
  readonly popular: number
  /** a product the user recently put in the cart (and did not buy) has its score times this */
  readonly inCart: number
  /** how many of the user's strongest categories / brands give candidates */
  readonly categoriesAsked: number
  readonly brandsAsked: number
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const defaultWeights: ModelWeights = {
  recent: 0.25,
  neighbours: 0.25,
  category: 0.3,
  brand: 0.15,
  popular: 0.05,
  inCart: 1,
  categoriesAsked: 3,
  brandsAsked: 3
}

const kinds: ReadonlyArray<Interaction> = ["view", "click", "add_to_cart", "purchase"]
/** weight of an interaction in popularity and affinity */
const kindWeight = [1, 1, 3, 4]
const KIND_CART = 2
const KIND_PURCHASE = 3

/** rescale the scaled sums when their exponent passes this (2^300 is far from overflow) */
const MAX_EXPONENT = 300

/**
 * Users live in one Float64Array, a block of `stride` numbers per user (its *slot*): these
 * scalars first, then the ring (product index · 4 + kind, then event times), the category
 * and brand affinities (ids, then scaled weights) and the ring of purchases (products, times).
 * One block per user keeps a user's state together in memory and costs no object per user.
 */
const M_HEAD = 0 // ring: index of the oldest entry
const M_SIZE = 1 // ring: entries
const M_CATS = 2 // categories in the affinity
const M_BRANDS = 3 // brands in the affinity
const M_BHEAD = 4 // purchases: index of the oldest
const M_BSIZE = 5 // purchases: entries
const M_AFFREF = 6 // reference time of the scaled affinity weights (NaN: none yet)
const M_LAST = 7 // latest event time
const M_ACTIVE = 8 // observed since the user cap last passed over it (see pushOutOne)
const META = 9

/** A top list of product indices, best first, by (popularity desc, index asc). */
interface TopList {
  readonly items: Array<number>
  readonly size: number
}

interface UserSnapshot {
  readonly id: string
  readonly lastTs: number
  readonly active: boolean
  readonly affRef: number | null
  /** oldest first: [product index, kind index, ts] */
  readonly ring: ReadonlyArray<readonly [number, number, number]>
  readonly categories: ReadonlyArray<readonly [string, number]>
  readonly brands: ReadonlyArray<readonly [string, number]>
  readonly bought: ReadonlyArray<readonly [number, number]>
}

interface ModelSnapshot {
  readonly version: 1
  readonly popRef: number | null
  /** [product id, scaled popularity, [[neighbour index, count], …]], in index order */
  readonly products: ReadonlyArray<readonly [string, number, ReadonlyArray<readonly [number, number]>]>
  readonly users: ReadonlyArray<UserSnapshot>
}

const growInt = (a: Int32Array, size: number, fill = 0): Int32Array<ArrayBuffer> => {
  const b = new Int32Array(size).fill(fill)
  b.set(a)
  return b
}
const growFloat = (a: Float64Array, size: number): Float64Array<ArrayBuffer> => {
  const b = new Float64Array(size)
  b.set(a)
  return b
}

/**
 * The model. See the module comment for what it keeps and how it scores.
 *
 * @since 0.1.0
 * @category models
 */
export class RecommenderModel {
  readonly limits: ModelLimits
  readonly weights: ModelWeights
  private readonly catalog: (productId: string) => ProductInfo | undefined

  // products, by index
  private readonly productIndex = new Map<string, number>()
  private readonly productIds: Array<string> = []
  private productCat = new Int32Array(0)
  private productBrand = new Int32Array(0)
  private pop = new Float64Array(0)
  private popRef = Number.NaN
  /** neighbours: product p's list is at [p·K, p·K + nbrSize[p]) */
  private nbrId = new Int32Array(0)
  private nbrCount = new Float64Array(0)
  private nbrSize = new Int32Array(0)
  /** the largest count of p's list */
  private nbrMax = new Float64Array(0)
  private capacity = 0

  private readonly categoryIndex = new Map<string, number>()
  private readonly categoryNames: Array<string> = []
  private readonly brandIndex = new Map<string, number>()
  private readonly brandNames: Array<string> = []
  private readonly topOverall: TopList
  private readonly topByCategory: Array<TopList> = []
  private readonly topByBrand: Array<TopList> = []

  /** user id → slot, in order of arrival (or of a second chance, see `pushOutOne`) */
  private readonly users = new Map<string, number>()
  private pool = new Float64Array(0)
  private slotCount = 0
  private readonly freeSlots: Array<number> = []
  private readonly stride: number
  private readonly oRing: number
  private readonly oRingT: number
  private readonly oCat: number
  private readonly oCatW: number
  private readonly oBrand: number
  private readonly oBrandW: number
  private readonly oBought: number
  private readonly oBoughtT: number

  // scratch for a recommendation: score per product, and which products this query touched
  private acc = new Float64Array(0)
  private mark = new Int32Array(0)
  private excluded = new Int32Array(0)
  private readonly touched: Array<number> = []
  private readonly ringP: Array<number> = []
  private bestP = new Int32Array(0)
  private bestS = new Float64Array(0)
  private readonly ringR: Array<number> = []
  private query = 0
  // scratch for co-occurrence: the user's latest products and their times
  private readonly latest: Int32Array
  private readonly latestTs: Float64Array
  private readonly weightSum: number

  constructor(
    catalog: (productId: string) => ProductInfo | undefined,
    limits?: Partial<ModelLimits>,
    weights?: Partial<ModelWeights>
  ) {
    this.catalog = catalog
    const merged = { ...defaultLimits, ...limits }
    // the affinity maps are scanned with a 31-bit set (see addAffine)
    this.limits = {
      ...merged,
      categoriesPerUser: Math.max(1, Math.min(31, merged.categoriesPerUser)),
      brandsPerUser: Math.max(1, Math.min(31, merged.brandsPerUser))
    }
    this.latest = new Int32Array(Math.max(0, this.limits.coOccurrenceDepth))
    this.latestTs = new Float64Array(Math.max(0, this.limits.coOccurrenceDepth))
    this.weights = { ...defaultWeights, ...weights }
    const w = this.weights
    this.weightSum = w.recent + w.neighbours + w.category + w.brand + w.popular || 1
    this.topOverall = { items: [], size: this.limits.topOverall }
    const { recentPerUser: R, categoriesPerUser: C, brandsPerUser: B, boughtPerUser: P } = this.limits
    this.oRing = META
    this.oRingT = this.oRing + R
    this.oCat = this.oRingT + R
    this.oCatW = this.oCat + C
    this.oBrand = this.oCatW + C
    this.oBrandW = this.oBrand + B
    this.oBought = this.oBrandW + B
    this.oBoughtT = this.oBought + P
    this.stride = this.oBoughtT + P
  }

  // ---------------------------------------------------------------- learning

  /** learns from one event of user `userId` at event time `ts` (ms). purchase = a Success checkout. Events may come slightly out of order (late events happen). */
  observe(userId: string, productId: string, kind: Interaction, ts: number): void {
    if (!Number.isFinite(ts)) return
    const p = this.productOf(productId)
    if (p === -1) return
    const k = kinds.indexOf(kind)
    if (k === -1) return
    const u = this.userFor(userId, ts)
    const pool = this.pool
    const weight = kindWeight[k]!

    // popularity, and the top lists it feeds
    this.rebasePopularity(ts)
    this.pop[p] = this.pop[p]! + weight * Math.pow(2, (ts - this.popRef) / this.limits.popularityHalfLifeMs)
    this.bump(this.topOverall, p)
    const cat = this.productCat[p]!
    if (cat !== -1) this.bump(this.topByCategory[cat]!, p)
    const brand = this.productBrand[p]!
    if (brand !== -1) this.bump(this.topByBrand[brand]!, p)

    // affinity
    const affRef = pool[u + M_AFFREF]!
    if (Number.isNaN(affRef) || (ts - affRef) / this.limits.affinityHalfLifeMs > MAX_EXPONENT) this.rebaseAffinity(u, ts)
    const scaled = weight * Math.pow(2, (ts - pool[u + M_AFFREF]!) / this.limits.affinityHalfLifeMs)
    if (cat !== -1) addAffinity(pool, u + this.oCat, u + this.oCatW, u + M_CATS, this.limits.categoriesPerUser, cat, scaled)
    if (brand !== -1) addAffinity(pool, u + this.oBrand, u + this.oBrandW, u + M_BRANDS, this.limits.brandsPerUser, brand, scaled)

    // co-occurrence with the user's latest interactions (once per product while it is among them)
    this.coOccur(u, p, ts)

    if (k === KIND_PURCHASE) this.addBought(u, p, ts)

    // the ring
    const slot = this.ringSlot(u, M_HEAD, M_SIZE, this.limits.recentPerUser)
    pool[u + this.oRing + slot] = p * 4 + k
    pool[u + this.oRingT + slot] = ts
    if (ts > pool[u + M_LAST]!) pool[u + M_LAST] = ts
  }

  private productOf(productId: string): number {
    const known = this.productIndex.get(productId)
    if (known !== undefined) return known
    if (this.productIds.length >= this.limits.maxProducts) return -1
    const info = this.catalog(productId)
    return this.addProduct(productId, info)
  }

  private addProduct(productId: string, info: ProductInfo | undefined): number {
    const p = this.productIds.length
    if (p >= this.capacity) this.grow(Math.max(64, this.capacity * 2))
    this.productIds.push(productId)
    this.productIndex.set(productId, p)
    this.productCat[p] = info === undefined ? -1 : this.indexOf(info.category, this.categoryIndex, this.categoryNames, this.topByCategory, this.limits.topPerCategory)
    this.productBrand[p] = info === undefined ? -1 : this.indexOf(info.brand, this.brandIndex, this.brandNames, this.topByBrand, this.limits.topPerBrand)
    return p
  }

  private indexOf(name: string, index: Map<string, number>, names: Array<string>, tops: Array<TopList>, size: number): number {
    const known = index.get(name)
    if (known !== undefined) return known
    index.set(name, names.length)
    names.push(name)
    tops.push({ items: [], size })
    return names.length - 1
  }

  private grow(capacity: number): void {
    const K = this.limits.neighboursPerProduct
    this.productCat = growInt(this.productCat, capacity, -1)
    this.productBrand = growInt(this.productBrand, capacity, -1)
    this.pop = growFloat(this.pop, capacity)
    this.nbrId = growInt(this.nbrId, capacity * K)
    this.nbrCount = growFloat(this.nbrCount, capacity * K)
    this.nbrSize = growInt(this.nbrSize, capacity)
    this.nbrMax = growFloat(this.nbrMax, capacity)
    this.acc = growFloat(this.acc, capacity)
    this.mark = growInt(this.mark, capacity)
    this.excluded = growInt(this.excluded, capacity)
    this.capacity = capacity
  }

  /** the offset of the user's block in `pool`, made if new */
  private userFor(userId: string, ts: number): number {
    const known = this.users.get(userId)
    if (known !== undefined) {
      const u = known * this.stride
      this.pool[u + M_ACTIVE] = 1
      return u
    }
    if (this.users.size >= this.limits.maxUsers) this.pushOutOne()
    const slot = this.freeSlots.pop() ?? this.newSlot()
    this.users.set(userId, slot)
    const u = slot * this.stride
    this.pool.fill(0, u, u + this.stride)
    this.pool[u + M_AFFREF] = Number.NaN
    this.pool[u + M_LAST] = ts
    return u
  }

  private newSlot(): number {
    if ((this.slotCount + 1) * this.stride > this.pool.length) {
      const slots = Math.max(1024, Math.ceil(this.slotCount * 1.5))
      const pool = new Float64Array(slots * this.stride)
      pool.set(this.pool)
      this.pool = pool
    }
    return this.slotCount++
  }

  /**
   * Makes room for a new user (CLOCK, a cheap LRU): users are in the map in order of arrival;
   * the first one that was not active since it was last passed over goes, the active ones
   * go to the back with their flag cleared. Amortised O(1), no work per event beyond a flag.
   */
  private pushOutOne(): void {
    for (const [id, slot] of this.users) {
      this.users.delete(id)
      const u = slot * this.stride
      if (this.pool[u + M_ACTIVE] === 0) {
        this.freeSlots.push(slot)
        return
      }
      this.pool[u + M_ACTIVE] = 0
      this.users.set(id, slot)
    }
  }


  private rebasePopularity(ts: number): void {
    if (Number.isNaN(this.popRef)) {
      this.popRef = ts
      return
    }
    const exponent = (ts - this.popRef) / this.limits.popularityHalfLifeMs
    if (exponent <= MAX_EXPONENT) return
    const factor = Math.pow(2, -exponent)
    for (let p = 0; p < this.productIds.length; p++) this.pop[p] = this.pop[p]! * factor
    this.popRef = ts
  }

  private rebaseAffinity(u: number, ts: number): void {
    const pool = this.pool
    const ref = pool[u + M_AFFREF]!
    if (!Number.isNaN(ref)) {
      const factor = Math.pow(2, -(ts - ref) / this.limits.affinityHalfLifeMs)
      for (let i = 0; i < pool[u + M_CATS]!; i++) pool[u + this.oCatW + i] = pool[u + this.oCatW + i]! * factor
      for (let i = 0; i < pool[u + M_BRANDS]!; i++) pool[u + this.oBrandW + i] = pool[u + this.oBrandW + i]! * factor
    }
    pool[u + M_AFFREF] = ts
  }

  /** `p`'s popularity went up: keep `list` the exact top by (popularity desc, index asc). */
  private bump(list: TopList, p: number): void {
    const items = list.items
    let i = items.indexOf(p)
    if (i === -1) {
      if (items.length < list.size) {
        items.push(p)
        i = items.length - 1
      } else if (this.better(p, items[items.length - 1]!)) {
        i = items.length - 1
        items[i] = p
      } else return
    }
    while (i > 0 && this.better(p, items[i - 1]!)) {
      items[i] = items[i - 1]!
      items[i - 1] = p
      i--
    }
  }

  private better(a: number, b: number): boolean {
    const pa = this.pop[a]!
    const pb = this.pop[b]!
    return pa > pb || (pa === pb && a < b)
  }

  private coOccur(u: number, p: number, ts: number): void {
    const { recentPerUser: R, coOccurrenceDepth, coOccurrenceWindowMs } = this.limits
    const pool = this.pool
    const size = pool[u + M_SIZE]!
    const depth = Math.min(size, coOccurrenceDepth)
    // the latest `depth` products and their times, newest first, read once: the ring's slots
    // step back without a modulo (a floating-point one per read was most of this method)
    const latest = this.latest, times = this.latestTs
    let slot = (pool[u + M_HEAD]! + size - 1) % R
    for (let j = 0; j < depth; j++) {
      const q = pool[u + this.oRing + slot]! >> 2
      if (q === p) return // already among the latest: its pairs were counted
      latest[j] = q
      times[j] = pool[u + this.oRingT + slot]!
      slot = slot === 0 ? R - 1 : slot - 1
    }
    for (let j = 0; j < depth; j++) {
      if (Math.abs(ts - times[j]!) > coOccurrenceWindowMs) continue
      const q = latest[j]!
      let seen = false
      for (let i = 0; i < j; i++) {
        if (latest[i] === q) {
          seen = true
          break
        }
      }
      if (seen) continue
      this.addNeighbour(p, q)
      this.addNeighbour(q, p)
    }
  }

  /**
   * space-saving: a new neighbour of a full list replaces the weakest (the first of the least
   * counted) and gets its count + 1. The search for `q` is a loop of its own over the ids and
   * the weakest is looked for only when `q` is new to a full list: reading the counts beside
   * the ids at every step was most of this method's time.
   */
  private addNeighbour(p: number, q: number): void {
    const K = this.limits.neighboursPerProduct
    if (K === 0) return
    const base = p * K
    const size = this.nbrSize[p]!
    const ids = this.nbrId, counts = this.nbrCount
    const end = base + size
    let at = base
    while (at < end && ids[at] !== q) at++
    let count: number
    if (at < end) count = counts[at]! + 1
    else if (size < K) {
      ids[at] = q
      count = 1
      this.nbrSize[p] = size + 1
    } else {
      at = base
      let least = counts[base]!
      for (let i = base + 1; i < end; i++) {
        if (counts[i]! < least) { least = counts[i]!; at = i }
      }
      ids[at] = q
      count = least + 1
    }
    counts[at] = count
    if (count > this.nbrMax[p]!) this.nbrMax[p] = count
  }

  /**
   * The slot a new entry takes in a ring of the user's block whose head and size are at
   * `headAt` and `sizeAt`: the next free one, or the oldest's when the ring is full.
   */
  private ringSlot(u: number, headAt: number, sizeAt: number, capacity: number): number {
    const pool = this.pool
    const head = pool[u + headAt]!
    const size = pool[u + sizeAt]!
    if (size < capacity) pool[u + sizeAt] = size + 1
    else pool[u + headAt] = (head + 1) % capacity
    return (head + size) % capacity
  }

  /** the purchases are a ring too: the oldest goes first; the 24 h window is applied when asked */
  private addBought(u: number, p: number, ts: number): void {
    const pool = this.pool
    const slot = this.ringSlot(u, M_BHEAD, M_BSIZE, this.limits.boughtPerUser)
    pool[u + this.oBought + slot] = p
    pool[u + this.oBoughtT + slot] = ts
  }

  // ---------------------------------------------------------------- asking

  /** the user's top n (default 10), best first, as of event time `ts`; products bought by the user in the last 24 h of event time left out; undefined when the user has no events */
  recommend(userId: string, ts: number, n = 10): ReadonlyArray<Scored> | undefined {
    const slot = this.users.get(userId)
    if (slot === undefined) return undefined
    const u = slot * this.stride
    const pool = this.pool
    const q = this.nextQuery()
    this.markBought(u, ts, q)
    const w = this.weights
    const norm = 1 / this.weightSum
    const R = this.limits.recentPerUser

    // recent products and their neighbours: each distinct product once, its newest interaction sets its recency
    const ringP = this.ringP
    const ringR = this.ringR
    ringP.length = 0
    ringR.length = 0
    let recencySum = 0
    const head = pool[u + M_HEAD]!
    for (let j = pool[u + M_SIZE]! - 1; j >= 0; j--) {
      const entry = (head + j) % R
      const packed = pool[u + this.oRing + entry]!
      const p = packed >> 2
      const r = Math.pow(2, -Math.max(0, ts - pool[u + this.oRingT + entry]!) / this.limits.recencyHalfLifeMs)
      if (this.mark[p] !== q) {
        this.touch(p, q)
        ringP.push(p)
        ringR.push(r)
        recencySum += r
      } else {
        const i = ringP.indexOf(p)
        if (r > ringR[i]!) {
          recencySum += r - ringR[i]!
          ringR[i] = r
        }
      }
      // in the cart and not bought: scaled by `inCart` at the end
      if ((packed & 3) === KIND_CART && this.excluded[p] !== q) this.excluded[p] = -q
    }
    const K = this.limits.neighboursPerProduct
    for (let j = 0; j < ringP.length; j++) {
      const p = ringP[j]!
      const r = ringR[j]!
      this.acc[p] = this.acc[p]! + w.recent * norm * r
      if (w.neighbours <= 0 || recencySum <= 0 || j >= this.limits.neighbourSources) continue
      const base = p * K
      const size = this.nbrSize[p]!
      const max = this.nbrMax[p]!
      if (max <= 0) continue
      const f = (w.neighbours * norm * r) / (recencySum * max)
      for (let i = 0; i < size; i++) {
        const n = this.nbrId[base + i]!
        this.touch(n, q)
        this.acc[n] = this.acc[n]! + f * this.nbrCount[base + i]!
      }
    }

    // popular products of the user's strongest categories and brands
    if (w.category > 0) this.addAffine(u + this.oCat, u + this.oCatW, pool[u + M_CATS]!, w.categoriesAsked, this.topByCategory, w.category * norm, q)
    if (w.brand > 0) this.addAffine(u + this.oBrand, u + this.oBrandW, pool[u + M_BRANDS]!, w.brandsAsked, this.topByBrand, w.brand * norm, q)

    // the overall popular list: its first n + (bought) entries, enough to fill the list when the rest is thin
    const top = this.topOverall.items
    const fill = Math.min(top.length, n + pool[u + M_BSIZE]!)
    if (fill > 0) {
      const f = this.pop[top[0]!]! > 0 ? (w.popular * norm) / this.pop[top[0]!]! : 0
      for (let i = 0; i < fill; i++) {
        const p = top[i]!
        this.touch(p, q)
        this.acc[p] = this.acc[p]! + f * this.pop[p]!
      }
    }

    return this.select(n, q)
  }

  /** adds the top products of the `asked` strongest entries of an affinity (ids at `oIds`, weights at `oW` in the pool) */
  private addAffine(oIds: number, oW: number, size: number, asked: number, tops: ReadonlyArray<TopList>, share: number, q: number): void {
    const pool = this.pool
    let total = 0
    for (let i = 0; i < size; i++) total += pool[oW + i]!
    if (total <= 0) return
    // the `asked` strongest (ties: lower id), without sorting; `taken` is a bit set (size ≤ 31)
    let taken = 0
    for (let round = 0; round < Math.min(asked, size); round++) {
      let best = -1
      for (let i = 0; i < size; i++) {
        if ((taken & (1 << i)) !== 0) continue
        const wi = pool[oW + i]!
        if (best === -1 || wi > pool[oW + best]! || (wi === pool[oW + best] && pool[oIds + i]! < pool[oIds + best]!)) best = i
      }
      taken |= 1 << best
      const items = tops[pool[oIds + best]!]!.items
      if (items.length === 0) continue
      const top = this.pop[items[0]!]!
      if (top <= 0) continue
      const f = (share * pool[oW + best]!) / (total * top)
      for (let i = 0; i < items.length; i++) {
        const p = items[i]!
        this.touch(p, q)
        this.acc[p] = this.acc[p]! + f * this.pop[p]!
      }
    }
  }

  private nextQuery(): number {
    this.query = this.query >= 0x3fffffff ? 1 : this.query + 1
    if (this.query === 1) {
      this.mark.fill(0)
      this.excluded.fill(0)
    }
    this.touched.length = 0
    return this.query
  }

  private touch(p: number, q: number): void {
    if (this.mark[p] === q) return
    this.mark[p] = q
    this.acc[p] = 0
    if (this.excluded[p] === -q) this.excluded[p] = 0
    this.touched.push(p)
  }

  private markBought(u: number, ts: number, q: number): void {
    const pool = this.pool
    const size = pool[u + M_BSIZE]!
    for (let i = 0; i < size; i++) {
      if (pool[u + this.oBoughtT + i]! > ts - this.limits.boughtWindowMs) this.excluded[pool[u + this.oBought + i]!] = q
    }
  }

  /** the best n of the touched products, not excluded: score desc, then product id asc */
  private select(n: number, q: number): Array<Scored> {
    if (this.bestP.length < n) {
      this.bestP = new Int32Array(n)
      this.bestS = new Float64Array(n)
    }
    const bestP = this.bestP
    const bestS = this.bestS
    const inCart = this.weights.inCart
    const touched = this.touched
    let size = 0
    for (let t = 0; t < touched.length; t++) {
      const p = touched[t]!
      const ex = this.excluded[p]!
      if (ex === q) continue
      const s = ex === -q ? this.acc[p]! * inCart : this.acc[p]!
      if (size === n && !this.outranks(s, p, bestS[n - 1]!, bestP[n - 1]!)) continue
      let i = size === n ? n - 1 : size++
      while (i > 0 && this.outranks(s, p, bestS[i - 1]!, bestP[i - 1]!)) {
        bestP[i] = bestP[i - 1]!
        bestS[i] = bestS[i - 1]!
        i--
      }
      bestP[i] = p
      bestS[i] = s
    }
    const out: Array<Scored> = new Array(size)
    for (let i = 0; i < size; i++) out[i] = { productId: this.productIds[bestP[i]!]!, score: clamp01(bestS[i]!) }
    return out
  }

  private outranks(s: number, p: number, t: number, r: number): boolean {
    return s > t || (s === t && this.productIds[p]! < this.productIds[r]!)
  }

  /** recency-weighted popularity list (cold start), leaving out what `userId` (if given) bought in the last 24 h */
  popular(ts: number, n = 10, userId?: string): ReadonlyArray<Scored> {
    const q = this.nextQuery()
    const slot = userId === undefined ? undefined : this.users.get(userId)
    if (slot !== undefined) this.markBought(slot * this.stride, ts, q)
    const top = this.topOverall.items
    if (top.length === 0) return []
    const best = this.pop[top[0]!]!
    for (const p of top) {
      this.touch(p, q)
      this.acc[p] = best > 0 ? this.pop[p]! / best : 0
    }
    return this.select(n, q)
  }

  stats(): { users: number; products: number; neighbourLinks: number } {
    let links = 0
    for (let p = 0; p < this.productIds.length; p++) links += this.nbrSize[p]!
    return { users: this.users.size, products: this.productIds.length, neighbourLinks: links }
  }

  /** the sizes of one user's state (for tests of the bounds), or undefined */
  userSizes(userId: string): { recent: number; categories: number; brands: number; bought: number } | undefined {
    const slot = this.users.get(userId)
    if (slot === undefined) return undefined
    const u = slot * this.stride
    const pool = this.pool
    return { recent: pool[u + M_SIZE]!, categories: pool[u + M_CATS]!, brands: pool[u + M_BRANDS]!, bought: pool[u + M_BSIZE]! }
  }

  /** how many neighbours a product has (for tests of the bounds) */
  neighbourCount(productId: string): number {
    const p = this.productIndex.get(productId)
    return p === undefined ? 0 : this.nbrSize[p]!
  }

  /** a product's neighbours with their space-saving counts, in list order (for tests of the algorithm) */
  neighbours(productId: string): ReadonlyArray<{ readonly productId: string; readonly count: number }> {
    const p = this.productIndex.get(productId)
    if (p === undefined) return []
    const K = this.limits.neighboursPerProduct
    return Array.from({ length: this.nbrSize[p]! }, (_, i) => ({ productId: this.productIds[this.nbrId[p * K + i]!]!, count: this.nbrCount[p * K + i]! }))
  }

  // ---------------------------------------------------------------- forgetting and restarts

  /** forget users idle longer than the limit (called now and then by the job with the event-time clock) */
  evict(ts: number): number {
    let evicted = 0
    for (const [id, slot] of this.users) {
      if (this.pool[slot * this.stride + M_LAST]! < ts - this.limits.userIdleMs) {
        this.users.delete(id)
        this.freeSlots.push(slot)
        evicted++
      }
    }
    return evicted
  }

  /** the whole model as a JSON-serialisable value, and back (a restart restores it) */
  snapshot(): unknown {
    const K = this.limits.neighboursPerProduct
    const R = this.limits.recentPerUser
    const products = this.productIds.map((id, p) => {
      const nbrs: Array<readonly [number, number]> = []
      for (let i = 0; i < this.nbrSize[p]!; i++) nbrs.push([this.nbrId[p * K + i]!, this.nbrCount[p * K + i]!])
      return [id, this.pop[p]!, nbrs] as const
    })
    const users: Array<UserSnapshot> = []
    const pool = this.pool
    const P = this.limits.boughtPerUser
    for (const [id, slot] of this.users) {
      const u = slot * this.stride
      const ring: Array<readonly [number, number, number]> = []
      for (let j = 0; j < pool[u + M_SIZE]!; j++) {
        const entry = (pool[u + M_HEAD]! + j) % R
        const packed = pool[u + this.oRing + entry]!
        ring.push([packed >> 2, packed & 3, pool[u + this.oRingT + entry]!])
      }
      const bought: Array<readonly [number, number]> = []
      for (let j = 0; j < pool[u + M_BSIZE]!; j++) {
        const entry = (pool[u + M_BHEAD]! + j) % P
        bought.push([pool[u + this.oBought + entry]!, pool[u + this.oBoughtT + entry]!])
      }
      const affRef = pool[u + M_AFFREF]!
      users.push({
        id,
        lastTs: pool[u + M_LAST]!,
        active: pool[u + M_ACTIVE] === 1,
        affRef: Number.isNaN(affRef) ? null : affRef,
        ring,
        categories: Array.from({ length: pool[u + M_CATS]! }, (_, i) =>
          [this.categoryNames[pool[u + this.oCat + i]!]!, pool[u + this.oCatW + i]!] as const),
        brands: Array.from({ length: pool[u + M_BRANDS]! }, (_, i) =>
          [this.brandNames[pool[u + this.oBrand + i]!]!, pool[u + this.oBrandW + i]!] as const),
        bought
      })
    }
    const snapshot: ModelSnapshot = {
      version: 1,
      popRef: Number.isNaN(this.popRef) ? null : this.popRef,
      products,
      users
    }
    return snapshot
  }

  static restore(
    catalog: (productId: string) => ProductInfo | undefined,
    snapshot: unknown,
    limits?: Partial<ModelLimits>,
    weights?: Partial<ModelWeights>
  ): RecommenderModel {
    const model = new RecommenderModel(catalog, limits, weights)
    const s = snapshot as ModelSnapshot
    if (s === null || typeof s !== "object" || s.version !== 1) throw new Error("not a recommender model snapshot (version 1)")
    const K = model.limits.neighboursPerProduct
    const R = model.limits.recentPerUser
    model.popRef = s.popRef ?? Number.NaN
    const kept = Math.min(s.products.length, model.limits.maxProducts)
    for (let p = 0; p < kept; p++) {
      const [id, pop] = s.products[p]!
      model.addProduct(id, catalog(id))
      model.pop[p] = pop
    }
    for (let p = 0; p < kept; p++) {
      const nbrs = s.products[p]![2].filter(([q]) => q < kept)
      // a snapshot taken with a larger K keeps its strongest neighbours
      const chosen = nbrs.length <= K ? nbrs : [...nbrs].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, K)
      chosen.forEach(([q, count], i) => {
        model.nbrId[p * K + i] = q
        model.nbrCount[p * K + i] = count
        if (count > model.nbrMax[p]!) model.nbrMax[p] = count
      })
      model.nbrSize[p] = chosen.length
      // the top lists are a function of popularity: rebuilding them gives the same lists
      model.bump(model.topOverall, p)
      const cat = model.productCat[p]!
      if (cat !== -1) model.bump(model.topByCategory[cat]!, p)
      const brand = model.productBrand[p]!
      if (brand !== -1) model.bump(model.topByBrand[brand]!, p)
    }
    const P = model.limits.boughtPerUser
    for (const us of s.users.slice(-model.limits.maxUsers)) {
      const u = model.userFor(us.id, us.lastTs)
      const pool = model.pool
      pool[u + M_ACTIVE] = us.active ? 1 : 0
      pool[u + M_AFFREF] = us.affRef ?? Number.NaN
      let size = 0
      for (const [p, k, ts] of us.ring.slice(-R)) {
        if (p >= kept) continue
        pool[u + model.oRing + size] = p * 4 + k
        pool[u + model.oRingT + size++] = ts
      }
      pool[u + M_SIZE] = size
      for (const [name, w] of us.categories.slice(0, model.limits.categoriesPerUser)) {
        const c = model.indexOf(name, model.categoryIndex, model.categoryNames, model.topByCategory, model.limits.topPerCategory)
        const i = pool[u + M_CATS]!
        pool[u + model.oCat + i] = c
        pool[u + model.oCatW + i] = w
        pool[u + M_CATS] = i + 1
      }
      for (const [name, w] of us.brands.slice(0, model.limits.brandsPerUser)) {
        const b = model.indexOf(name, model.brandIndex, model.brandNames, model.topByBrand, model.limits.topPerBrand)
        const i = pool[u + M_BRANDS]!
        pool[u + model.oBrand + i] = b
        pool[u + model.oBrandW + i] = w
        pool[u + M_BRANDS] = i + 1
      }
      let bought = 0
      for (const [p, ts] of us.bought.slice(-P)) {
        if (p >= kept) continue
        pool[u + model.oBought + bought] = p
        pool[u + model.oBoughtT + bought++] = ts
      }
      pool[u + M_BSIZE] = bought
    }
    return model
  }
}

/**
 * Adds `w` to `id`'s weight in an affinity held in `pool` (ids at `oIds`, weights at `oW`,
 * the size at `oSize`, at most `cap` entries); a new id in a full one replaces the weakest.
 */
const addAffinity = (pool: Float64Array, oIds: number, oW: number, oSize: number, cap: number, id: number, w: number): void => {
  const size = pool[oSize]!
  let weakest = -1
  for (let i = 0; i < size; i++) {
    if (pool[oIds + i] === id) {
      pool[oW + i] = pool[oW + i]! + w
      return
    }
    if (weakest === -1 || pool[oW + i]! < pool[oW + weakest]!) weakest = i
  }
  if (size < cap) {
    pool[oIds + size] = id
    pool[oW + size] = w
    pool[oSize] = size + 1
    return
  }
  pool[oIds + weakest] = id
  pool[oW + weakest] = w
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x)
