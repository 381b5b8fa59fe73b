/**
 * A first-match interval join between a *build* side, held in keyed state, and a *probe*
 * side whose every element yields exactly one result once the watermark passes it.
 *
 * A build element b matches a probe p (same key) when b's match key is null or equals p's,
 * `p.ts − before ≤ b.ts ≤ p.ts` (both ends inclusive) and b was not late. The result is the
 * matching b with the smallest time, ties to the smallest id; or none.
 *
 * - An on-time probe waits for the watermark to reach its time (SPEC §3), when every build
 *   element that can still arrive on time is in: its result is final. (The one exception is a
 *   build element at exactly the watermark, which SPEC §2 still calls on time: it arrives
 *   after a probe of the same millisecond was written and joins later probes only. A
 *   watermark parked at the largest event time of a quiet input is why the rule is "reaches".)
 * - A late probe is joined at once against what is still held, and flagged late.
 * - A late build element joins nothing and is reported.
 * - A build element is dropped once b.ts + before is below the watermark (timer).
 * - A redelivered element changes nothing: a build element is the same event again (the same
 *   id at the same time) as one still held, found in the sorted builds; probes' ids are
 *   remembered for `retention` after their time.
 *
 * Pure: no I/O and no clock; the key group calls it with the watermark and collects output.
 */
import type { KeyedOperator, OperatorContext } from "./KeyedState.ts"
import type { Envelope } from "./Source.ts"
import type { Timer } from "./TimerQueue.ts"

export interface JoinElement {
  readonly id: string
  /** event time, epoch ms */
  readonly ts: number
  /** null on the build side matches any probe */
  readonly matchKey: string | null
}

/**
 * `build` and `probe` are new elements. The `restore…` forms are elements re-read after a
 * restart whose outcome is already known (it was written with the positions): they rebuild
 * state and emit nothing. A restored build was on time; a restored probe was either
 * `written` already (remembered for dedup) or still pending.
 */
export type JoinInput<B, P> =
  | { readonly side: "build"; readonly element: B }
  | { readonly side: "probe"; readonly element: P }
  | { readonly side: "restore-build"; readonly element: B }
  | { readonly side: "restore-probe"; readonly element: P; readonly written: boolean }

/** Late results carry the message the late element came from (for the late-events output). */
export type JoinOutput<B, P> =
  | { readonly _tag: "Joined"; readonly probe: P; readonly match: B | undefined; readonly late: boolean; readonly watermark: number; readonly message?: Envelope | undefined }
  | { readonly _tag: "LateBuild"; readonly build: B; readonly key: string; readonly watermark: number; readonly message?: Envelope | undefined }

export interface JoinState<B, P> {
  /**
   * held build elements from `first` on, sorted by (ts, id): the first match, and a
   * redelivered element, are a binary search away. Cleanup moves `first` and compacts the
   * array once half of it is gone.
   */
  builds: Array<B>
  first: number
  /**
   * the time of the last held build (−∞ with none): the newest, since they are sorted; it
   * is `builds[builds.length − 1].ts`, kept here so that the usual element, newer than all,
   * is told apart from the state object alone, without reading the array's tail and the
   * element it points at (a join microbenchmark, 880 k clicks of 1000 users: 0.085–0.12 →
   * 0.07–0.09 µs a click; what made `onBuild` 0.5 µs a click in a member was the binary
   * search of `isHeld`, see there)
   */
  lastTs: number
  /** on-time probes waiting for the watermark */
  readonly pending: Map<string, P>
  /** ids of probes already joined → their time, for dedup */
  readonly joined: Map<string, number>
  /** the latest cleanup and forget slots registered for this key (registering one again would be a no-op) */
  cleanupSlot: number
  forgetSlot: number
}

export interface IntervalJoinOptions {
  /** how far before a probe a build element may be, in ms (both ends inclusive) */
  readonly beforeMs: number
  /** how long after its time a joined probe's id is remembered for dedup, in ms */
  readonly retentionMs: number
}

const EMIT = 0
const CLEANUP = 1
const FORGET = 2

/**
 * Cleanup and forget timers are rounded up to this granularity: one timer per key per slot
 * instead of one per element. They only bound memory; which builds count as held is decided
 * exactly, against the watermark, when matching.
 */
const SLOT_MS = 10_000
const slotAfter = (t: number): number => Math.ceil(t / SLOT_MS) * SLOT_MS

const before = (a: JoinElement, b: JoinElement): boolean => a.ts < b.ts || (a.ts === b.ts && a.id < b.id)

/** Index of the first element with ts ≥ `ts` in a (ts, id)-sorted array. */
const lowerBound = (builds: ReadonlyArray<JoinElement>, ts: number, from: number): number => {
  let lo = from, hi = builds.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (builds[mid]!.ts < ts) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * Whether `b` is held already: a redelivery carries the same id and time. No id set per key:
 * most elements are newer than every one held, which one comparison shows; one of the newest
 * millisecond (coarse clocks: a producer stamping a batch with one time, timestamps in whole
 * seconds) is compared with the tail's elements of that time, read from the end; the rest
 * are a binary search away. The set, looked up and added to for every element, was a third
 * of the join's time (2.8 → 1.8 s in a profiled drain of 1 M events) and 29 bytes of each
 * held click.
 */
const isHeld = (builds: ReadonlyArray<JoinElement>, first: number, lastTs: number, b: JoinElement): boolean => {
  if (lastTs < b.ts) return false // newer than every held one, or none held
  const n = builds.length
  if (lastTs === b.ts) {
    // the binary search over ~900 held clicks a user touched ~10 of them, each a cache miss,
    // for an element that is at the tail's time (the bench's producer stamps 20 000 at once)
    for (let i = n - 1; i >= first && builds[i]!.ts === b.ts; i--) if (builds[i]!.id === b.id) return true
    return false
  }
  for (let i = lowerBound(builds, b.ts, first); i < n && builds[i]!.ts === b.ts; i++) if (builds[i]!.id === b.id) return true
  return false
}

/**
 * The best match for `probe` among `builds` from index `first` (sorted by ts, id), or
 * undefined: the first in order within the window whose match key fits. `heldAfter`: builds
 * with ts + before below it are gone.
 */
export const firstMatch = <B extends JoinElement>(
  builds: ReadonlyArray<B>, first: number, probe: JoinElement, beforeMs: number, heldAfter: number
): B | undefined => {
  const from = Math.max(probe.ts - beforeMs, heldAfter - beforeMs)
  for (let i = lowerBound(builds, from, first); i < builds.length; i++) {
    const b = builds[i]!
    if (b.ts > probe.ts) return undefined
    if (b.matchKey === null || b.matchKey === probe.matchKey) return b
  }
  return undefined
}

export const make = <B extends JoinElement, P extends JoinElement>(
  options: IntervalJoinOptions
): KeyedOperator<JoinState<B, P>, JoinInput<B, P>, JoinOutput<B, P>> => {
  const { beforeMs, retentionMs } = options

  const onBuild = (state: JoinState<B, P>, b: B, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    if (isHeld(state.builds, state.first, state.lastTs, b)) return // redelivered
    if (b.ts < ctx.watermark) {
      ctx.emit({ _tag: "LateBuild", build: b, key: ctx.key, watermark: ctx.watermark, message: ctx.message })
      return
    }
    hold(state, b, ctx)
  }

  const hold = (state: JoinState<B, P>, b: B, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    const builds = state.builds
    if (b.ts > state.lastTs) {
      builds.push(b) // the usual case: newer than all
      state.lastTs = b.ts
    } else {
      let i = builds.length
      builds.push(b)
      const first = state.first
      while (i > first && before(b, builds[i - 1]!)) { builds[i] = builds[i - 1]!; i-- }
      builds[i] = b
    }
    const slot = slotAfter(b.ts + beforeMs + 1)
    if (slot !== state.cleanupSlot) {
      state.cleanupSlot = slot
      ctx.registerTimer(slot, CLEANUP)
    }
  }

  const onProbe = (state: JoinState<B, P>, p: P, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    if (state.pending.has(p.id) || state.joined.has(p.id)) return // redelivered
    if (p.ts < ctx.watermark) {
      ctx.emit({ _tag: "Joined", probe: p, match: firstMatch(state.builds, state.first, p, beforeMs, ctx.watermark), late: true, watermark: ctx.watermark, message: ctx.message })
      remember(state, p, ctx)
      return
    }
    state.pending.set(p.id, p)
    ctx.registerTimer(p.ts, EMIT)
  }

  const restore = (state: JoinState<B, P>, input: JoinInput<B, P>, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    if (input.side === "restore-build") {
      const b = input.element
      if (b.ts + beforeMs >= ctx.watermark && !isHeld(state.builds, state.first, state.lastTs, b)) hold(state, b, ctx)
    } else if (input.side === "restore-probe") {
      const p = input.element
      if (state.pending.has(p.id) || state.joined.has(p.id)) return
      if (input.written) {
        if (p.ts + retentionMs >= ctx.watermark) remember(state, p, ctx)
      } else {
        state.pending.set(p.id, p)
        ctx.registerTimer(p.ts, EMIT)
      }
    }
  }

  const remember = (state: JoinState<B, P>, p: P, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    state.joined.set(p.id, p.ts)
    const slot = slotAfter(p.ts + retentionMs + 1)
    if (slot !== state.forgetSlot) {
      state.forgetSlot = slot
      ctx.registerTimer(slot, FORGET)
    }
  }

  return {
    create: () => ({ builds: [], first: 0, lastTs: -Infinity, pending: new Map(), joined: new Map(), cleanupSlot: -Infinity, forgetSlot: -Infinity }),
    onElement: (state, input, ctx) =>
      input.side === "build" ? onBuild(state, input.element, ctx)
      : input.side === "probe" ? onProbe(state, input.element, ctx)
      : restore(state, input, ctx),
    // A timer acts as of its own time, not the (possibly far later) watermark that fired it:
    // a jump of the watermark fires timers in time order, and each must see the state as it
    // was at its time, or an early cleanup would hide builds from a later emission.
    onTimer: (state, timer: Timer, ctx) => {
      const t = timer.time
      if (timer.namespace === EMIT) {
        // forEach, not for-of: no iterator or entry arrays per timer (deleting while iterating is safe)
        state.pending.forEach((p, id) => {
          if (p.ts > t) return
          state.pending.delete(id)
          ctx.emit({ _tag: "Joined", probe: p, match: firstMatch(state.builds, state.first, p, beforeMs, -Infinity), late: false, watermark: ctx.watermark })
          remember(state, p, ctx)
        })
      } else if (timer.namespace === CLEANUP) {
        const builds = state.builds
        let n = state.first
        while (n < builds.length && builds[n]!.ts + beforeMs < t) n++
        if (n === builds.length) {
          builds.length = 0
          state.first = 0
          state.lastTs = -Infinity
        } else if (n > 32 && n * 2 > builds.length) {
          state.builds = builds.slice(n)
          state.first = 0
        } else {
          for (let i = state.first; i < n; i++) builds[i] = undefined as unknown as B // let go of them now
          state.first = n
        }
      } else if (timer.namespace === FORGET) {
        // fired: a probe remembered later for this slot (one already older than the retention) registers it again
        if (t === state.forgetSlot) state.forgetSlot = -Infinity
        const joined = state.joined
        joined.forEach((ts, id) => { if (ts + retentionMs < t) joined.delete(id) })
      }
    },
    isEmpty: (state) => state.builds.length === state.first && state.pending.size === 0 && state.joined.size === 0,
    measure: (state) => [state.builds.length - state.first, state.pending.size]
  }
}
