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
  /** purchases kept per user for leaving them out (older than `boughtWindowMs` are dropped) */
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
  boughtPerUser: 32,
  neighboursPerProduct: 24,
  coOccurrenceWindowMs: 2 * 3_600_000,
  coOccurrenceDepth: 10,
  neighbourSources: 4,
  topPerCategory: 24,
  topPerBrand: 12,
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
  categoriesAsked: 2,
  brandsAsked: 3
}

const kinds: ReadonlyArray<Interaction> = ["view", "click", "add_to_cart", "purchase"]
/** weight of an interaction in popularity and affinity */
const kindWeight = [1, 1, 3, 4]
const KIND_CART = 2
const KIND_PURCHASE = 3

/** rescale the scaled sums when their exponent passes this (2^300 is far from overflow) */
const MAX_EXPONENT = 300

/** One user's state. Typed arrays of fixed size: the bound is the allocation. */
interface UserState {
  readonly ringProduct: Int32Array
  readonly ringKind: Uint8Array
  readonly ringTs: Float64Array
  ringHead: number
  ringSize: number
  readonly catId: Int32Array
  readonly catW: Float64Array
  catSize: number
  readonly brandId: Int32Array
  readonly brandW: Float64Array
  brandSize: number
  /** reference time of the user's scaled affinity weights */
  affRef: number
  boughtProduct: Array<number>
  boughtTs: Array<number>
  lastTs: number
  /** observed since the user-cap eviction last passed over it (see `pushOutOne`) */
  active: boolean
}

/** A top list of product indices, best first, by (popularity desc, index asc). */
interface TopList {
  readonly items: Array<number>
  readonly size: number
}

interface UserSnapshot {
  readonly id: string
  readonly lastTs: number
  readonly affRef: number
  /** oldest first: [product index, kind index, ts] */
  readonly ring: ReadonlyArray<readonly [number, number, number]>
  readonly categories: ReadonlyArray<readonly [string, number]>
  readonly brands: ReadonlyArray<readonly [string, number]>
  readonly bought: ReadonlyArray<readonly [number, number]>
}

interface ModelSnapshot {
  readonly version: 1
  readonly popRef: number
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

  /** in order of arrival (or of a second chance, see `pushOutOne`) */
  private readonly users = new Map<string, UserState>()

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
    this.weights = { ...defaultWeights, ...weights }
    const w = this.weights
    this.weightSum = w.recent + w.neighbours + w.category + w.brand + w.popular || 1
    this.topOverall = { items: [], size: this.limits.topOverall }
  }

  // ---------------------------------------------------------------- learning

  /** learns from one event of user `userId` at event time `ts` (ms). purchase = a Success checkout. Events may come slightly out of order (late events happen). */
  observe(userId: string, productId: string, kind: Interaction, ts: number): void {
    if (!Number.isFinite(ts)) return
    const p = this.productOf(productId)
    if (p === -1) return
    const k = kinds.indexOf(kind)
    if (k === -1) return
    const user = this.userFor(userId, ts)
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
    if (Number.isNaN(user.affRef) || (ts - user.affRef) / this.limits.affinityHalfLifeMs > MAX_EXPONENT) {
      this.rebaseAffinity(user, ts)
    }
    const scaled = weight * Math.pow(2, (ts - user.affRef) / this.limits.affinityHalfLifeMs)
    if (cat !== -1) user.catSize = addAffinity(user.catId, user.catW, user.catSize, cat, scaled)
    if (brand !== -1) user.brandSize = addAffinity(user.brandId, user.brandW, user.brandSize, brand, scaled)

    // co-occurrence with the user's latest interactions (once per product while it is among them)
    this.coOccur(user, p, ts)

    if (k === KIND_PURCHASE) this.addBought(user, p, ts)

    // the ring
    const R = this.limits.recentPerUser
    const slot = (user.ringHead + user.ringSize) % R
    if (user.ringSize < R) user.ringSize++
    else user.ringHead = (user.ringHead + 1) % R
    user.ringProduct[slot] = p
    user.ringKind[slot] = k
    user.ringTs[slot] = ts
    if (ts > user.lastTs) user.lastTs = ts
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

  private userFor(userId: string, ts: number): UserState {
    const known = this.users.get(userId)
    if (known !== undefined) {
      known.active = true
      return known
    }
    if (this.users.size >= this.limits.maxUsers) this.pushOutOne()
    const user = this.newUser(ts)
    this.users.set(userId, user)
    return user
  }

  /**
   * Makes room for a new user (CLOCK, a cheap LRU): users are in the map in order of arrival;
   * the first one that was not active since it was last passed over goes, the active ones
   * go to the back with their flag cleared. Amortised O(1), no work per event beyond a flag.
   */
  private pushOutOne(): void {
    for (const [id, user] of this.users) {
      this.users.delete(id)
      if (!user.active) return
      user.active = false
      this.users.set(id, user)
    }
  }

  private newUser(ts: number): UserState {
    const { recentPerUser: R, categoriesPerUser: C, brandsPerUser: B } = this.limits
    return {
      ringProduct: new Int32Array(R),
      ringKind: new Uint8Array(R),
      ringTs: new Float64Array(R),
      ringHead: 0,
      ringSize: 0,
      catId: new Int32Array(C),
      catW: new Float64Array(C),
      catSize: 0,
      brandId: new Int32Array(B),
      brandW: new Float64Array(B),
      brandSize: 0,
      affRef: Number.NaN,
      boughtProduct: [],
      boughtTs: [],
      lastTs: ts,
      active: false
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

  private rebaseAffinity(user: UserState, ts: number): void {
    if (!Number.isNaN(user.affRef)) {
      const factor = Math.pow(2, -(ts - user.affRef) / this.limits.affinityHalfLifeMs)
      for (let i = 0; i < user.catSize; i++) user.catW[i] = user.catW[i]! * factor
      for (let i = 0; i < user.brandSize; i++) user.brandW[i] = user.brandW[i]! * factor
    }
    user.affRef = ts
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

  private coOccur(user: UserState, p: number, ts: number): void {
    const { recentPerUser: R, coOccurrenceDepth, coOccurrenceWindowMs } = this.limits
    const depth = Math.min(user.ringSize, coOccurrenceDepth)
    // already among the latest: its pairs were counted
    for (let j = 0; j < depth; j++) {
      if (user.ringProduct[(user.ringHead + user.ringSize - 1 - j) % R] === p) return
    }
    for (let j = 0; j < depth; j++) {
      const slot = (user.ringHead + user.ringSize - 1 - j) % R
      const q = user.ringProduct[slot]!
      if (Math.abs(ts - user.ringTs[slot]!) > coOccurrenceWindowMs) continue
      let seen = false
      for (let i = 0; i < j; i++) {
        if (user.ringProduct[(user.ringHead + user.ringSize - 1 - i) % R] === q) {
          seen = true
          break
        }
      }
      if (seen) continue
      this.addNeighbour(p, q)
      this.addNeighbour(q, p)
    }
  }

  /** space-saving: a new neighbour of a full list replaces the weakest and gets its count + 1 */
  private addNeighbour(p: number, q: number): void {
    const K = this.limits.neighboursPerProduct
    const base = p * K
    const size = this.nbrSize[p]!
    let weakest = -1
    for (let i = 0; i < size; i++) {
      if (this.nbrId[base + i] === q) {
        const count = this.nbrCount[base + i]! + 1
        this.nbrCount[base + i] = count
        if (count > this.nbrMax[p]!) this.nbrMax[p] = count
        return
      }
      if (weakest === -1 || this.nbrCount[base + i]! < this.nbrCount[base + weakest]!) weakest = i
    }
    let count = 1
    if (size < K) {
      this.nbrId[base + size] = q
      this.nbrCount[base + size] = 1
      this.nbrSize[p] = size + 1
    } else {
      this.nbrId[base + weakest] = q
      count = this.nbrCount[base + weakest]! + 1
      this.nbrCount[base + weakest] = count
    }
    if (count > this.nbrMax[p]!) this.nbrMax[p] = count
  }

  private addBought(user: UserState, p: number, ts: number): void {
    // drop what left the window (relative to the newest purchase), then the oldest beyond the cap
    const newest = Math.max(ts, user.boughtTs.length > 0 ? Math.max(...user.boughtTs) : ts)
    for (let i = user.boughtTs.length - 1; i >= 0; i--) {
      if (user.boughtTs[i]! <= newest - this.limits.boughtWindowMs) {
        user.boughtTs.splice(i, 1)
        user.boughtProduct.splice(i, 1)
      }
    }
    user.boughtProduct.push(p)
    user.boughtTs.push(ts)
    while (user.boughtTs.length > this.limits.boughtPerUser) {
      user.boughtTs.shift()
      user.boughtProduct.shift()
    }
  }

  // ---------------------------------------------------------------- asking

  /** the user's top n (default 10), best first, as of event time `ts`; products bought by the user in the last 24 h of event time left out; undefined when the user has no events */
  recommend(userId: string, ts: number, n = 10): ReadonlyArray<Scored> | undefined {
    const user = this.users.get(userId)
    if (user === undefined) return undefined
    const q = this.nextQuery()
    this.markBought(user, ts, q)
    const w = this.weights
    const norm = 1 / this.weightSum
    const R = this.limits.recentPerUser

    // recent products and their neighbours: each distinct product once, its newest interaction sets its recency
    const ringP = this.ringP
    const ringR = this.ringR
    ringP.length = 0
    ringR.length = 0
    let recencySum = 0
    for (let j = user.ringSize - 1; j >= 0; j--) {
      const slot: number = (user.ringHead + j) % R
      const p = user.ringProduct[slot]!
      const r = Math.pow(2, -Math.max(0, ts - user.ringTs[slot]!) / this.limits.recencyHalfLifeMs)
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
      if (user.ringKind[slot] === KIND_CART && this.excluded[p] !== q) this.excluded[p] = -q
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
    if (w.category > 0) this.addAffine(user.catId, user.catW, user.catSize, w.categoriesAsked, this.topByCategory, w.category * norm, q)
    if (w.brand > 0) this.addAffine(user.brandId, user.brandW, user.brandSize, w.brandsAsked, this.topByBrand, w.brand * norm, q)

    // the overall popular list: its first n + (bought) entries, enough to fill the list when the rest is thin
    const top = this.topOverall.items
    const fill = Math.min(top.length, n + user.boughtTs.length)
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

  private addAffine(
    ids: Int32Array,
    weights: Float64Array,
    size: number,
    asked: number,
    tops: ReadonlyArray<TopList>,
    share: number,
    q: number
  ): void {
    let total = 0
    for (let i = 0; i < size; i++) total += weights[i]!
    if (total <= 0) return
    // the `asked` strongest (ties: lower index), without sorting; `taken` is a bit set (size ≤ 31)
    let taken = 0
    for (let round = 0; round < Math.min(asked, size); round++) {
      let best = -1
      for (let i = 0; i < size; i++) {
        if ((taken & (1 << i)) !== 0) continue
        if (best === -1 || weights[i]! > weights[best]! || (weights[i] === weights[best] && ids[i]! < ids[best]!)) best = i
      }
      taken |= 1 << best
      const items = tops[ids[best]!]!.items
      if (items.length === 0) continue
      const top = this.pop[items[0]!]!
      if (top <= 0) continue
      const f = (share * weights[best]!) / (total * top)
      for (const p of items) {
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

  private markBought(user: UserState, ts: number, q: number): void {
    for (let i = 0; i < user.boughtTs.length; i++) {
      if (user.boughtTs[i]! > ts - this.limits.boughtWindowMs) this.excluded[user.boughtProduct[i]!] = q
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
    const user = userId === undefined ? undefined : this.users.get(userId)
    if (user !== undefined) this.markBought(user, ts, q)
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
    const u = this.users.get(userId)
    return u === undefined
      ? undefined
      : { recent: u.ringSize, categories: u.catSize, brands: u.brandSize, bought: u.boughtTs.length }
  }

  /** how many neighbours a product has (for tests of the bounds) */
  neighbourCount(productId: string): number {
    const p = this.productIndex.get(productId)
    return p === undefined ? 0 : this.nbrSize[p]!
  }

  // ---------------------------------------------------------------- forgetting and restarts

  /** forget users idle longer than the limit (called now and then by the job with the event-time clock) */
  evict(ts: number): number {
    let evicted = 0
    for (const [id, user] of this.users) {
      if (user.lastTs < ts - this.limits.userIdleMs) {
        this.users.delete(id)
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
    for (const [id, u] of this.users) {
      const ring: Array<readonly [number, number, number]> = []
      for (let j = 0; j < u.ringSize; j++) {
        const slot = (u.ringHead + j) % R
        ring.push([u.ringProduct[slot]!, u.ringKind[slot]!, u.ringTs[slot]!])
      }
      users.push({
        id,
        lastTs: u.lastTs,
        affRef: Number.isNaN(u.affRef) ? -1 : u.affRef,
        ring,
        categories: Array.from({ length: u.catSize }, (_, i) => [this.categoryNames[u.catId[i]!]!, u.catW[i]!] as const),
        brands: Array.from({ length: u.brandSize }, (_, i) => [this.brandNames[u.brandId[i]!]!, u.brandW[i]!] as const),
        bought: u.boughtProduct.map((p, i) => [p, u.boughtTs[i]!] as const)
      })
    }
    const snapshot: ModelSnapshot = {
      version: 1,
      popRef: Number.isNaN(this.popRef) ? -1 : this.popRef,
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
    model.popRef = s.products.length === 0 && s.popRef === -1 ? Number.NaN : s.popRef
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
    for (const us of s.users.slice(-model.limits.maxUsers)) {
      const u = model.newUser(us.lastTs)
      u.lastTs = us.lastTs
      u.affRef = us.affRef === -1 ? Number.NaN : us.affRef
      for (const [p, k, ts] of us.ring.slice(-R)) {
        if (p >= kept) continue
        const slot = (u.ringHead + u.ringSize) % R
        u.ringProduct[slot] = p
        u.ringKind[slot] = k
        u.ringTs[slot] = ts
        u.ringSize++
      }
      for (const [name, w] of us.categories.slice(0, model.limits.categoriesPerUser)) {
        const c = model.indexOf(name, model.categoryIndex, model.categoryNames, model.topByCategory, model.limits.topPerCategory)
        u.catId[u.catSize] = c
        u.catW[u.catSize++] = w
      }
      for (const [name, w] of us.brands.slice(0, model.limits.brandsPerUser)) {
        const b = model.indexOf(name, model.brandIndex, model.brandNames, model.topByBrand, model.limits.topPerBrand)
        u.brandId[u.brandSize] = b
        u.brandW[u.brandSize++] = w
      }
      for (const [p, ts] of us.bought.slice(-model.limits.boughtPerUser)) {
        if (p >= kept) continue
        u.boughtProduct.push(p)
        u.boughtTs.push(ts)
      }
      model.users.set(us.id, u)
    }
    return model
  }
}

/** adds `w` to `id`'s weight; a new id in a full map replaces the weakest entry. Returns the size. */
const addAffinity = (ids: Int32Array, weights: Float64Array, size: number, id: number, w: number): number => {
  let weakest = -1
  for (let i = 0; i < size; i++) {
    if (ids[i] === id) {
      weights[i] = weights[i]! + w
      return size
    }
    if (weakest === -1 || weights[i]! < weights[weakest]!) weakest = i
  }
  if (size < ids.length) {
    ids[size] = id
    weights[size] = w
    return size + 1
  }
  ids[weakest] = id
  weights[weakest] = w
  return size
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x)
