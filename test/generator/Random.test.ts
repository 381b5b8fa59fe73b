import { assert, describe, it } from "@effect/vitest"
import { deriveSeed, makeRandom } from "../../src/generator/Random.ts"

const draws = (seed: number, n: number) => {
  const random = makeRandom(seed)
  return Array.from({ length: n }, () => random.next())
}

describe("Random", () => {
  it("gives the same stream for the same seed", () => {
    assert.deepStrictEqual(draws(7, 1000), draws(7, 1000))
  })

  it("gives unrelated streams for neighbouring seeds", () => {
    const a = draws(1, 1000)
    const b = draws(2, 1000)
    assert.isBelow(a.filter((x, i) => x === b[i]).length, 2)
    assert.notStrictEqual(deriveSeed(1, 1), deriveSeed(1, 2))
    assert.notStrictEqual(deriveSeed(1, 1), deriveSeed(2, 1))
  })

  it("stays in range and covers it evenly", () => {
    const random = makeRandom(42)
    const buckets = new Array<number>(10).fill(0)
    for (let i = 0; i < 100_000; i++) {
      const x = random.next()
      assert.isTrue(x >= 0 && x < 1)
      buckets[Math.floor(x * 10)]!++
    }
    for (const count of buckets) assert.isTrue(count > 9_500 && count < 10_500, `bucket ${count}`)
    for (let i = 0; i < 10_000; i++) {
      const k = random.between(1, 3)
      assert.isTrue(k === 1 || k === 2 || k === 3)
      const j = random.int(5)
      assert.isTrue(Number.isInteger(j) && j >= 0 && j < 5)
    }
  })
})
