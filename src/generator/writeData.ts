/**
 * Writes the store's default dimension files, `Users.csv` and `Products.csv`,
 * from fixed seeds, so that `data/` in the repository is reproducible
 * (`scripts/write-data.ts` runs it).
 *
 * @since 0.1.0
 */
import { Effect, FileSystem, Path } from "effect"
import { makeProducts, makeUsers, productsCsv, usersCsv } from "./Catalog.ts"

/**
 * The seeds and sizes of the committed `data/` files. Change them and the files
 * (and every result computed over them) change.
 *
 * @since 0.1.0
 * @category models
 */
export const defaultData = {
  userSeed: 20240320,
  userCount: 1000,
  productSeed: 20240321,
  productCount: 200
} as const

/**
 * Writes `Users.csv` and `Products.csv` into `dir` (created if missing).
 *
 * @since 0.1.0
 * @category constructors
 */
export const writeDefaultData = Effect.fnUntraced(function*(dir: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  yield* fs.makeDirectory(dir, { recursive: true })
  yield* fs.writeFileString(
    path.join(dir, "Users.csv"),
    usersCsv(makeUsers(defaultData.userSeed, defaultData.userCount))
  )
  yield* fs.writeFileString(
    path.join(dir, "Products.csv"),
    productsCsv(makeProducts(defaultData.productSeed, defaultData.productCount))
  )
})

