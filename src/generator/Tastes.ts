/**
 * The synthetic shoppers' hidden tastes, and how popular each product is.
 *
 * Every user likes 1–3 favourite categories (with weights that sum to 1), a
 * favourite brand in each, and now and then looks at something else
 * (`curiosity`). The weights drift slowly with event time: each favourite's share
 * swings around its base weight over a period of days (`drift`), so what a
 * shopper looked at last week says a little less about today than yesterday does. Within a category some
 * products are far more popular than others (a Zipf-like curve). The event
 * simulator draws the products a shopper views, clicks, puts in the cart and
 * buys from these; recommendations are judged on how well they recover them,
 * against a most-popular-products baseline that only knows the popularity curve.
 *
 * Both are pure functions of the seed and the catalog, drawn from their own
 * random streams, so tests (and the recommendation evaluation) can recompute
 * them without running the simulator.
 *
 * @since 0.1.0
 */
import type { ProductRow, UserRow } from "./Catalog.ts"
import { deriveSeed, makeRandom } from "./Random.ts"

/**
 * A favourite category and the share of the shopper's on-taste picks it gets.
 *
 * @since 0.1.0
 * @category models
 */
export interface Favourite {
  readonly category: string
  readonly weight: number
  /** a brand stocked in `category` that the shopper prefers there */
  readonly brand: string
}

/**
 * How a shopper's favourite weights swing over days: favourite i's weight is
 * multiplied by `1 + amplitude · sin(2π · day / periodDays + phase + 2π · i / k)`
 * (k favourites), then the weights are normalised again.
 *
 * @since 0.1.0
 * @category models
 */
export interface Drift {
  readonly periodDays: number
  readonly phase: number
  readonly amplitude: number
}

/**
 * One shopper's hidden taste.
 *
 * @since 0.1.0
 * @category models
 */
export interface ShopperTaste {
  readonly user_id: string
  /** 1–3 categories, heaviest first; weights sum to 1 */
  readonly favourites: ReadonlyArray<Favourite>
  /** the probability that a product pick ignores the favourites (any category) */
  readonly curiosity: number
  /** the probability that an on-taste pick is of the favourite brand of the category */
  readonly brandLoyalty: number
  readonly drift: Drift
}

// purposes of the derived random streams (see Random.deriveSeed)
const tasteStream = 1
const popularityStream = 2
// brands and drift come from their own stream, so the favourites of a seed are the same as before them
const brandStream = 3

// Gendered categories lean towards the matching gender, as the Flink version's
// dashboard data did; the others are neutral.
const genderLean = (category: string, gender: string): number => {
  const forMen = category.startsWith("mens ")
  const forWomen = category.startsWith("womens ")
  if (!forMen && !forWomen) return 1
  return (forMen && gender === "M") || (forWomen && gender === "F") ? 3 : 0.25
}

/**
 * The categories that have at least one product, in first-seen order.
 *
 * @since 0.1.0
 * @category constructors
 */
export const stockedCategories = (products: ReadonlyArray<ProductRow>): ReadonlyArray<string> => [
  ...new Set(products.map((product) => product.category))
]

/**
 * Every user's taste, in the order of `users`; the same for the same seed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeTastes = (
  seed: number,
  users: ReadonlyArray<UserRow>,
  products: ReadonlyArray<ProductRow>
): ReadonlyArray<ShopperTaste> => {
  const random = makeRandom(deriveSeed(seed, tasteStream))
  const brandRandom = makeRandom(deriveSeed(seed, brandStream))
  const stocked = stockedCategories(products)
  const brandsOf = new Map<string, Array<string>>()
  for (const product of products) {
    const brands = brandsOf.get(product.category) ?? []
    if (!brands.includes(product.brand)) brands.push(product.brand)
    brandsOf.set(product.category, brands)
  }
  return users.map((user) => {
    const roll = random.next()
    const wanted = Math.min(stocked.length, roll < 0.3 ? 1 : roll < 0.75 ? 2 : 3)
    // draw distinct categories, each with chance ∝ its gender lean
    const candidates = stocked.map((category) => ({ category, lean: genderLean(category, user.gender) }))
    const chosen: Array<string> = []
    while (chosen.length < wanted) {
      const total = candidates.reduce((sum, candidate) => sum + candidate.lean, 0)
      let target = random.next() * total
      const index = candidates.findIndex((candidate) => (target -= candidate.lean) < 0)
      const [taken] = candidates.splice(index === -1 ? candidates.length - 1 : index, 1)
      chosen.push(taken!.category)
    }
    // Dirichlet(1,…,1) weights: normalised exponential draws
    const draws = chosen.map(() => -Math.log(1 - random.next()))
    const sum = draws.reduce((a, b) => a + b, 0)
    const favourites = chosen
      .map((category, i) => ({ category, weight: draws[i]! / sum, brand: brandRandom.pick(brandsOf.get(category)!) }))
      .sort((a, b) => b.weight - a.weight)
    const curiosity = 0.08 + random.next() * 0.14
    const drift: Drift = {
      periodDays: 7 + brandRandom.next() * 21,
      phase: brandRandom.next() * 2 * Math.PI,
      amplitude: 0.3 + brandRandom.next() * 0.5
    }
    return { user_id: user.user_id, favourites, curiosity, brandLoyalty: 0.25 + brandRandom.next() * 0.35, drift }
  })
}

/**
 * How often each product is picked relative to the others of its category, in
 * the order of `products`. A seeded permutation ranks the products of each
 * category; rank r gets weight 1 / (r + 1).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makePopularity = (seed: number, products: ReadonlyArray<ProductRow>): ReadonlyArray<number> => {
  const random = makeRandom(deriveSeed(seed, popularityStream))
  const weights = new Array<number>(products.length).fill(0)
  for (const category of stockedCategories(products)) {
    const members = products.flatMap((product, index) => (product.category === category ? [index] : []))
    // Fisher–Yates shuffle: popularity should not follow catalog order
    for (let i = members.length - 1; i > 0; i--) {
      const j = random.int(i + 1)
      const swap = members[i]!
      members[i] = members[j]!
      members[j] = swap
    }
    members.forEach((productIndex, rank) => {
      weights[productIndex] = 1 / (rank + 1)
    })
  }
  return weights
}

const dayMs = 86_400_000

/**
 * The favourites' weights at event time `eventTimeMs` (see `Drift`), in the order of
 * `taste.favourites`; they sum to 1.
 *
 * @since 0.1.0
 * @category constructors
 */
export const weightsAt = (taste: ShopperTaste, eventTimeMs: number): ReadonlyArray<number> => {
  const k = taste.favourites.length
  const angle = (2 * Math.PI * eventTimeMs) / (dayMs * taste.drift.periodDays) + taste.drift.phase
  const raw = taste.favourites.map((favourite, i) =>
    favourite.weight * (1 + taste.drift.amplitude * Math.sin(angle + (2 * Math.PI * i) / k))
  )
  const sum = raw.reduce((a, b) => a + b, 0)
  return raw.map((w) => w / sum)
}
