/**
 * A small, fast, seeded pseudo-random number generator for the synthetic store.
 *
 * The event simulator draws a handful of numbers per message at hundreds of
 * thousands of messages per second, so it cannot afford faker (or anything that
 * allocates) per draw. `sfc32` is four 32-bit words of state, passes PractRand to
 * far beyond what a benchmark consumes, and is a few integer ops per draw. The
 * seed is spread over the state with `splitmix32` so that nearby seeds (1, 2, 3…)
 * give unrelated streams.
 *
 * @since 0.1.0
 */

/**
 * A stream of pseudo-random numbers; the same seed always gives the same stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface Random {
  /** a float in [0, 1) */
  readonly next: () => number
  /** an integer in [0, n) */
  readonly int: (n: number) => number
  /** an integer in [min, max], both ends included */
  readonly between: (min: number, max: number) => number
  /** true with probability p */
  readonly chance: (p: number) => boolean
  /** a uniformly chosen element of a non-empty array */
  readonly pick: <A>(items: ReadonlyArray<A>) => A
}

/**
 * One step of splitmix32: turns any 32-bit value into a well-mixed one. Used to
 * expand a seed into generator state and to derive independent sub-seeds.
 *
 * @since 0.1.0
 * @category constructors
 */
export const mix32 = (value: number): number => {
  let z = (value + 0x9e3779b9) | 0
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

/**
 * A seed for an independent stream derived from `seed` and a purpose number, so
 * that e.g. the shoppers' tastes do not shift when the event stream draws more.
 *
 * @since 0.1.0
 * @category constructors
 */
export const deriveSeed = (seed: number, purpose: number): number => mix32(mix32(seed) ^ Math.imul(purpose, 0x27d4eb2d))

/**
 * An sfc32 generator seeded from any number (only its low 32 bits matter).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRandom = (seed: number): Random => {
  let a = mix32(seed)
  let b = mix32(a)
  let c = mix32(b)
  let d = 1
  const nextUint32 = (): number => {
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return t >>> 0
  }
  // the first outputs of sfc32 are still correlated with the seed: discard them
  for (let i = 0; i < 12; i++) nextUint32()

  const next = (): number => nextUint32() / 4294967296
  const int = (n: number): number => Math.floor(next() * n)
  return {
    next,
    int,
    between: (min, max) => min + int(max - min + 1),
    chance: (p) => next() < p,
    pick: (items) => items[int(items.length)]!
  }
}
