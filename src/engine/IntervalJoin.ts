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
 * - A build element counts as gone once b.ts + before is below the watermark; its memory is
 *   let go of at its slot's cleanup timer.
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

/**
 * How held build elements are stored: their id, time and match key in columns of the key's
 * state, with one value of the caller's beside them (`keep`: what the output needs besides,
 * e.g. a click's source), and the element made again from those (`rebuild`) for a match.
 * Columns, not the elements: an element held for the window was three heap objects (itself,
 * its time boxed as a heap number, its id), each copied when promoted and visited by every
 * major collection; a time in a number array is stored unboxed. Measured on a replay of 1 M
 * events, holding the clicks that way was 17–30 % of the process's CPU (see the README).
 */
export interface BuildColumns<B extends JoinElement, X> {
  readonly keep: (b: B) => X
  readonly rebuild: (id: string, ts: number, matchKey: string | null, kept: X) => B
}

/** Builds that are nothing but id, time and match key. */
export const plainColumns: BuildColumns<JoinElement, undefined> = {
  keep: () => undefined,
  rebuild: (id, ts, matchKey) => ({ id, ts, matchKey })
}

export interface JoinState<P, X = undefined> {
  /**
   * held build elements from `first` on, sorted by (ts, id), as columns of one index: the
   * first match, and a redelivered element, are a binary search over `times` away. Cleanup
   * moves `first` and compacts the columns once half of them is gone.
   */
  times: Array<number>
  ids: Array<string>
  matchKeys: Array<string | null>
  kept: Array<X>
  first: number
  /** on-time probes waiting for the watermark */
  readonly pending: Map<string, P>
  /** ids of probes already joined, for dedup */
  readonly joined: Set<string>
  /**
   * the same probes sorted by time, as columns from `joinedFirst` on: forgetting is dropping
   * a prefix. (Scanning the whole set at every forget slot of a key, ~70 ids per user and
   * 360 slots an hour, was the join's largest line in a replay's profile: 372 of 7 300 ms.)
   */
  joinedTimes: Array<number>
  joinedIds: Array<string>
  joinedFirst: number
  /**
   * the key's one cleanup timer (−∞ with none): the slot its oldest build expires in; when it
   * fires it registers the next. One per slot a key had a build in was ~125 k timers in the
   * queue with 1 M clicks held (1000 users), each an object and a heap number, and each
   * registration and firing a walk of that heap
   */
  cleanupSlot: number
  /** the key's one forget timer (−∞ with none), for its oldest joined probe, as `cleanupSlot` is for builds */
  forgetSlot: number
}

/** How many build elements `state` holds. */
export const heldCount = (state: JoinState<unknown, unknown>): number => state.times.length - state.first

export interface IntervalJoinOptions<B extends JoinElement, X> {
  /** how far before a probe a build element may be, in ms (both ends inclusive) */
  readonly beforeMs: number
  /** how long after its time a joined probe's id is remembered for dedup, in ms */
  readonly retentionMs: number
  readonly columns: BuildColumns<B, X>
  /** the cleanup and forget timers' granularity, in ms (default: `defaultSlotMs`) */
  readonly slotMs?: number
}

const EMIT = 0
const CLEANUP = 1
const FORGET = 2

/**
 * Cleanup and forget timers are rounded up to a slot: a key has one of each, for its oldest
 * element, and each fires at most once a slot. They only bound memory: which builds count as
 * held is decided exactly, against the watermark, when matching, and a probe is remembered at
 * least for the retention. So the slot is a twelfth of the shorter of the two (at most 5
 * minutes, at least a second): state lingers at most that long past its time, ~8 % more held
 * clicks in a steady state, for a thirtieth of the firings of a fixed 10 s slot with a window
 * of an hour. Measured (a replay of the bench's 1 M events, attribution alone, CPU of every
 * thread): 10 s slots 5.45–6.77 s, 60 s 4.62–5.73 s, 300 s 4.52–5.03 s.
 */
export const defaultSlotMs = (beforeMs: number, retentionMs: number): number =>
  Math.min(300_000, Math.max(1_000, Math.floor(Math.min(beforeMs, retentionMs) / 12)))

/** Index of the first held time ≥ `ts` (times sorted, from `from` on). */
const lowerBound = (times: ReadonlyArray<number>, ts: number, from: number): number => {
  let lo = from, hi = times.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (times[mid]! < ts) lo = mid + 1
    else hi = mid
  }
  return lo
}

/**
 * Whether `b` is held already: a redelivery carries the same id and time. No id set per key:
 * most elements are newer than every one held, which one comparison shows; one of the newest
 * millisecond (coarse clocks: a producer stamping a batch with one time, timestamps in whole
 * seconds) is compared with the tail's ids of that time, read from the end; the rest are a
 * binary search away. The set, looked up and added to for every element, was a third of the
 * join's time (2.8 → 1.8 s in a profiled drain of 1 M events) and 29 bytes of each held click.
 */
const isHeld = (state: JoinState<unknown, unknown>, b: JoinElement): boolean => {
  const { times, ids, first } = state
  const n = times.length
  if (n === first || times[n - 1]! < b.ts) return false // none held, or newer than every one held
  if (times[n - 1] === b.ts) {
    for (let i = n - 1; i >= first && times[i] === b.ts; i--) if (ids[i] === b.id) return true
    return false
  }
  for (let i = lowerBound(times, b.ts, first); i < n && times[i] === b.ts; i++) if (ids[i] === b.id) return true
  return false
}

/**
 * The index of the best match for `probe` among the held builds, or −1: the first in order
 * within the window whose match key fits. `heldAfter`: builds with ts + before below it are gone.
 */
export const firstMatch = (state: JoinState<unknown, unknown>, probe: JoinElement, beforeMs: number, heldAfter: number): number => {
  const { times, matchKeys } = state
  const from = Math.max(probe.ts - beforeMs, heldAfter - beforeMs)
  for (let i = lowerBound(times, from, state.first); i < times.length; i++) {
    if (times[i]! > probe.ts) return -1
    const key = matchKeys[i]!
    if (key === null || key === probe.matchKey) return i
  }
  return -1
}

export const make = <B extends JoinElement, P extends JoinElement, X = undefined>(
  options: IntervalJoinOptions<B, X>
): KeyedOperator<JoinState<P, X>, JoinInput<B, P>, JoinOutput<B, P>> => {
  const { beforeMs, retentionMs, columns } = options
  const slotMs = options.slotMs ?? defaultSlotMs(beforeMs, retentionMs)
  const slotAfter = (t: number): number => Math.ceil(t / slotMs) * slotMs
  type State = JoinState<P, X>

  const matchOf = (state: State, p: JoinElement, heldAfter: number): B | undefined => {
    const i = firstMatch(state, p, beforeMs, heldAfter)
    return i < 0 ? undefined : columns.rebuild(state.ids[i]!, state.times[i]!, state.matchKeys[i]!, state.kept[i]!)
  }

  const onBuild = (state: State, b: B, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    if (isHeld(state, b)) return // redelivered
    if (b.ts < ctx.watermark) {
      ctx.emit({ _tag: "LateBuild", build: b, key: ctx.key, watermark: ctx.watermark, message: ctx.message })
      return
    }
    hold(state, b, ctx)
  }

  const hold = (state: State, b: B, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    const { times, ids, matchKeys, kept } = state
    const ts = b.ts, kept1 = columns.keep(b)
    let i = times.length
    times.push(ts)
    ids.push(b.id)
    matchKeys.push(b.matchKey)
    kept.push(kept1)
    // usually the newest; an older one is sorted in by (ts, id), moved up from the end
    const first = state.first
    while (i > first && (ts < times[i - 1]! || (ts === times[i - 1] && b.id < ids[i - 1]!))) {
      times[i] = times[i - 1]!
      ids[i] = ids[i - 1]!
      matchKeys[i] = matchKeys[i - 1]!
      kept[i] = kept[i - 1]!
      i--
    }
    times[i] = ts
    ids[i] = b.id
    matchKeys[i] = b.matchKey
    kept[i] = kept1
    // one cleanup timer per key, for its oldest build: an older one than that held moves it earlier
    const slot = slotAfter(ts + beforeMs + 1)
    if (slot < state.cleanupSlot || state.cleanupSlot === -Infinity) {
      state.cleanupSlot = slot
      ctx.registerTimer(slot, CLEANUP)
    }
  }

  /** Drops the held builds with ts + before below `t` (as `forget` does the joined probes). */
  const cleanUp = (state: State, t: number): void => {
    const length = state.times.length
    let n = state.first
    while (n < length && state.times[n]! + beforeMs < t) n++
    if (n === length) {
      state.times.length = 0
      state.ids.length = 0
      state.matchKeys.length = 0
      state.kept.length = 0
      state.first = 0
    } else if (n > 32 && n * 2 > length) {
      state.times = state.times.slice(n)
      state.ids = state.ids.slice(n)
      state.matchKeys = state.matchKeys.slice(n)
      state.kept = state.kept.slice(n)
      state.first = 0
    } else {
      // let go of what they point at now (times are unboxed: nothing to let go of)
      const { ids, matchKeys, kept } = state
      for (let i = state.first; i < n; i++) {
        ids[i] = ""
        matchKeys[i] = null
        kept[i] = undefined as X
      }
      state.first = n
    }
  }

  const onProbe = (state: State, p: P, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    if (state.pending.has(p.id) || state.joined.has(p.id)) return // redelivered
    if (p.ts < ctx.watermark) {
      ctx.emit({ _tag: "Joined", probe: p, match: matchOf(state, p, ctx.watermark), late: true, watermark: ctx.watermark, message: ctx.message })
      remember(state, p, ctx)
      return
    }
    state.pending.set(p.id, p)
    ctx.registerTimer(p.ts, EMIT)
  }

  const restore = (state: State, input: JoinInput<B, P>, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    if (input.side === "restore-build") {
      const b = input.element
      if (b.ts + beforeMs >= ctx.watermark && !isHeld(state, b)) hold(state, b, ctx)
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

  const remember = (state: State, p: P, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    state.joined.add(p.id)
    const { joinedTimes: times, joinedIds: ids } = state
    let i = times.length
    times.push(p.ts)
    ids.push(p.id)
    // usually the newest (on-time probes are joined in time order); a late one is sorted in
    while (i > state.joinedFirst && p.ts < times[i - 1]!) {
      times[i] = times[i - 1]!
      ids[i] = ids[i - 1]!
      i--
    }
    times[i] = p.ts
    ids[i] = p.id
    const slot = slotAfter(p.ts + retentionMs + 1)
    if (slot < state.forgetSlot || state.forgetSlot === -Infinity) {
      state.forgetSlot = slot
      ctx.registerTimer(slot, FORGET)
    }
  }

  /** Forgets the joined probes with ts + retention below `t`. */
  const forget = (state: State, t: number): void => {
    const { joinedTimes: times, joinedIds: ids, joined } = state
    let n = state.joinedFirst
    while (n < times.length && times[n]! + retentionMs < t) joined.delete(ids[n++]!)
    if (n === times.length) {
      times.length = 0
      ids.length = 0
      state.joinedFirst = 0
    } else if (n > 32 && n * 2 > times.length) {
      state.joinedTimes = times.slice(n)
      state.joinedIds = ids.slice(n)
      state.joinedFirst = 0
    } else {
      for (let i = state.joinedFirst; i < n; i++) ids[i] = ""
      state.joinedFirst = n
    }
  }

  return {
    create: (): State => ({
      times: [], ids: [], matchKeys: [], kept: [], first: 0, pending: new Map(), joined: new Set(),
      joinedTimes: [], joinedIds: [], joinedFirst: 0, cleanupSlot: -Infinity, forgetSlot: -Infinity
    }),
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
          ctx.emit({ _tag: "Joined", probe: p, match: matchOf(state, p, -Infinity), late: false, watermark: ctx.watermark })
          remember(state, p, ctx)
        })
      } else if (timer.namespace === CLEANUP) {
        cleanUp(state, t)
        // the key's timer (not one it replaced by an earlier one) registers the next, for the oldest left
        if (t === state.cleanupSlot) {
          state.cleanupSlot = -Infinity
          if (heldCount(state) > 0) {
            state.cleanupSlot = slotAfter(state.times[state.first]! + beforeMs + 1)
            ctx.registerTimer(state.cleanupSlot, CLEANUP)
          }
        }
      } else if (timer.namespace === FORGET) {
        forget(state, t)
        // the key's timer (not one it replaced by an earlier one) registers the next, for the oldest left
        if (t === state.forgetSlot) {
          state.forgetSlot = -Infinity
          if (state.joinedTimes.length > state.joinedFirst) {
            state.forgetSlot = slotAfter(state.joinedTimes[state.joinedFirst]! + retentionMs + 1)
            ctx.registerTimer(state.forgetSlot, FORGET)
          }
        }
      }
    },
    isEmpty: (state) => state.times.length === state.first && state.pending.size === 0 && state.joined.size === 0,
    measure: (state) => [heldCount(state), state.pending.size]
  }
}
