/**
 * The synthetic store's dimensions: its users and its products, as rows and as
 * the CSV files (`data/Users.csv`, `data/Products.csv`) that PostgreSQL loads.
 *
 * Columns follow the Flink version's `users` and `products` tables. Its gender
 * column holds `M`/`F` (a `VARCHAR(2)`), its categories are lower-case
 * marketplace categories ("mens clothing", "bags & luggage", …) and its ids are
 * integers, so ours are decimal strings: that way the events of the Python-style
 * ("flink") format can carry them as JSON integers and still match these rows.
 *
 * Everything is drawn from a private faker instance seeded with the caller's
 * seed: the same seed always gives the same rows.
 *
 * @since 0.1.0
 */
import { base, en, Faker } from "@faker-js/faker"
import { stringify } from "csv-stringify/sync"

/**
 * One row of `Users.csv`. Dates are `YYYY-MM-DD`.
 *
 * @since 0.1.0
 * @category models
 */
export interface UserRow {
  readonly user_id: string
  readonly name: string
  readonly email: string
  readonly gender: Gender
  readonly birth_day: string
  readonly location: string
  readonly phone: string
  readonly registration_date: string
}

/**
 * The Flink version's gender codes.
 *
 * @since 0.1.0
 * @category models
 */
export type Gender = "M" | "F"

/**
 * One row of `Products.csv`. `price` has 2 decimals, `commission_rate` (the
 * store's share of the profit) 2 decimals in [0.05, 0.30].
 *
 * @since 0.1.0
 * @category models
 */
export interface ProductRow {
  readonly product_id: string
  readonly product_name: string
  readonly category: string
  readonly brand: string
  readonly price: number
  readonly commission_rate: number
}

/** What a category sells: item names, brands, a price range and a commission. */
interface CategorySpec {
  readonly name: string
  /** "Men's" / "Women's" / "Kids'" in front of the item, as marketplace titles do */
  readonly audience: string
  readonly items: ReadonlyArray<string>
  readonly brands: ReadonlyArray<string>
  readonly minPrice: number
  readonly maxPrice: number
  readonly commission: number
}

// The fashion-related categories of the Flink version's product file, spelled as
// its dashboard shows them (lower case, no apostrophes).
const categorySpecs: ReadonlyArray<CategorySpec> = [
  {
    name: "womens clothing",
    audience: "Women's",
    items: ["Dress", "Top", "Kurta", "Jeans", "Skirt", "Leggings", "Cardigan", "Jumpsuit", "Blouse", "Saree"],
    brands: ["Zara", "Mango", "Only", "Vero Moda", "Biba", "W", "H&M", "Forever 21"],
    minPrice: 12,
    maxPrice: 180,
    commission: 0.2
  },
  {
    name: "mens clothing",
    audience: "Men's",
    items: ["T-Shirt", "Polo Shirt", "Formal Shirt", "Jeans", "Chinos", "Jacket", "Hoodie", "Track Pants", "Blazer"],
    brands: ["Levi's", "Allen Solly", "Van Heusen", "U.S. Polo Assn.", "Jack & Jones", "Wrangler", "Peter England"],
    minPrice: 10,
    maxPrice: 200,
    commission: 0.18
  },
  {
    name: "womens shoes",
    audience: "Women's",
    items: ["Heels", "Flats", "Sneakers", "Sandals", "Ballerinas", "Ankle Boots", "Wedges"],
    brands: ["Metro", "Catwalk", "Inc.5", "Bata", "Skechers", "Puma", "Clarks"],
    minPrice: 15,
    maxPrice: 160,
    commission: 0.15
  },
  {
    name: "mens shoes",
    audience: "Men's",
    items: ["Running Shoes", "Sneakers", "Loafers", "Formal Shoes", "Sandals", "Flip Flops", "Boots"],
    brands: ["Nike", "Adidas", "Puma", "Bata", "Red Tape", "Skechers", "Woodland"],
    minPrice: 15,
    maxPrice: 220,
    commission: 0.14
  },
  {
    name: "kids fashion",
    audience: "Kids'",
    items: ["T-Shirt", "Frock", "Shorts", "Sneakers", "Hoodie", "Pyjama Set", "School Shoes", "Dungarees"],
    brands: ["Carter's", "Gap Kids", "H&M Kids", "Mothercare", "Puma Kids", "United Colors of Benetton"],
    minPrice: 6,
    maxPrice: 70,
    commission: 0.22
  },
  {
    name: "accessories",
    audience: "",
    items: ["Analog Watch", "Sunglasses", "Leather Belt", "Wallet", "Baseball Cap", "Scarf", "Bracelet", "Earrings"],
    brands: ["Fossil", "Titan", "Ray-Ban", "Fastrack", "Casio", "Tommy Hilfiger", "Guess"],
    minPrice: 8,
    maxPrice: 250,
    commission: 0.25
  },
  {
    name: "bags & luggage",
    audience: "",
    items: ["Backpack", "Trolley Bag", "Duffle Bag", "Laptop Bag", "Handbag", "Tote Bag", "Sling Bag"],
    brands: ["Samsonite", "American Tourister", "Skybags", "Wildcraft", "Safari", "Lavie"],
    minPrice: 18,
    maxPrice: 300,
    commission: 0.16
  },
  {
    name: "sports & fitness",
    audience: "",
    items: ["Yoga Mat", "Gym Gloves", "Training Shorts", "Sports Bra", "Track Jacket", "Running Tights", "Gym Bag"],
    brands: ["Adidas", "Nike", "Puma", "Reebok", "Under Armour", "Decathlon"],
    minPrice: 8,
    maxPrice: 140,
    commission: 0.12
  },
  {
    name: "beauty & health",
    audience: "",
    items: ["Perfume", "Lipstick", "Face Serum", "Moisturiser", "Eyeliner", "Hair Straightener", "Nail Polish Set"],
    brands: ["Maybelline", "L'Oreal", "Lakme", "Nivea", "The Body Shop", "Philips"],
    minPrice: 5,
    maxPrice: 90,
    commission: 0.28
  }
]

/**
 * The product categories, in a fixed order.
 *
 * @since 0.1.0
 * @category models
 */
export const categories: ReadonlyArray<string> = categorySpecs.map((spec) => spec.name)

const fits = ["Slim Fit", "Regular Fit", "Classic", "Casual", "Premium", "Everyday", "Lightweight", "Printed"]

const makeFaker = (seed: number): Faker => {
  // a private instance: seeding the global faker would leak into other callers
  const faker = new Faker({ locale: [en, base] })
  faker.seed(seed)
  return faker
}

const isoDate = (date: Date): string => date.toISOString().slice(0, 10)

const round2 = (value: number): number => Math.round(value * 100) / 100

const capitalise = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1)

// Fixed ranges, never "now": the same seed must give the same rows every day.
const birthDays = { from: "1955-01-01T00:00:00.000Z", to: "2006-12-31T00:00:00.000Z" } as const
const registrationDays = { from: "2018-01-01T00:00:00.000Z", to: "2024-12-31T00:00:00.000Z" } as const

/**
 * The first id of each dimension; ids are consecutive decimal integers (no
 * leading zeros, so that an id sent as a JSON integer reads back unchanged).
 *
 * @since 0.1.0
 * @category models
 */
export const firstUserId = 100001

/**
 * @since 0.1.0
 * @category models
 */
export const firstProductId = 5001

/**
 * `count` users, the same for the same seed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUsers = (seed: number, count: number): ReadonlyArray<UserRow> => {
  const faker = makeFaker(seed)
  const rows: Array<UserRow> = []
  for (let i = 0; i < count; i++) {
    const gender: Gender = faker.datatype.boolean() ? "M" : "F"
    const firstName = faker.person.firstName(gender === "M" ? "male" : "female")
    const lastName = faker.person.lastName()
    rows.push({
      user_id: String(firstUserId + i),
      name: `${firstName} ${lastName}`,
      email: faker.internet.email({ firstName, lastName }).toLowerCase(),
      gender,
      birth_day: isoDate(faker.date.between(birthDays)),
      location: `${faker.location.city()}, ${faker.location.state({ abbreviated: true })}`,
      phone: faker.phone.number({ style: "national" }),
      registration_date: isoDate(faker.date.between(registrationDays))
    })
  }
  return rows
}

/**
 * `count` products spread over the categories (every category gets some as soon
 * as `count` ≥ the number of categories), the same for the same seed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeProducts = (seed: number, count: number): ReadonlyArray<ProductRow> => {
  const faker = makeFaker(seed)
  const rows: Array<ProductRow> = []
  for (let i = 0; i < count; i++) {
    // round-robin over categories first so small catalogs still cover them all
    const spec = i < categorySpecs.length ? categorySpecs[i]! : faker.helpers.arrayElement(categorySpecs)
    const brand = faker.helpers.arrayElement(spec.brands)
    const item = faker.helpers.arrayElement(spec.items)
    const style = faker.helpers.arrayElement(fits)
    const colour = capitalise(faker.color.human())
    const title = [brand, spec.audience, style, item].filter((part) => part !== "").join(" ")
    // log-uniform: many cheap items, a few expensive ones, prices ending in .99 or .49
    const logPrice = faker.number.float({ min: Math.log(spec.minPrice), max: Math.log(spec.maxPrice) })
    const price = Math.max(1, Math.round(Math.exp(logPrice))) - faker.helpers.arrayElement([0.01, 0.51])
    const commission = spec.commission + faker.number.float({ min: -0.05, max: 0.05 })
    rows.push({
      product_id: String(firstProductId + i),
      product_name: `${title} (${colour})`,
      category: spec.name,
      brand,
      price: round2(Math.max(0.49, price)),
      commission_rate: round2(Math.min(0.3, Math.max(0.05, commission)))
    })
  }
  return rows
}

const userColumns = [
  "user_id",
  "name",
  "email",
  "gender",
  "birth_day",
  "location",
  "phone",
  "registration_date"
] as const

const productColumns = ["product_id", "product_name", "category", "brand", "price", "commission_rate"] as const

/**
 * `Users.csv`: a header row, then one row per user.
 *
 * @since 0.1.0
 * @category constructors
 */
export const usersCsv = (rows: ReadonlyArray<UserRow>): string =>
  stringify(rows.map((row) => userColumns.map((column) => row[column])), {
    header: true,
    columns: [...userColumns]
  })

/**
 * `Products.csv`: a header row, then one row per product; money with 2 decimals.
 *
 * @since 0.1.0
 * @category constructors
 */
export const productsCsv = (rows: ReadonlyArray<ProductRow>): string =>
  stringify(
    rows.map((row) => [
      row.product_id,
      row.product_name,
      row.category,
      row.brand,
      row.price.toFixed(2),
      row.commission_rate.toFixed(2)
    ]),
    { header: true, columns: [...productColumns] }
  )
