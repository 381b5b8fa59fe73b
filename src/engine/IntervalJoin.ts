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
 * - Ids are remembered (builds while held, probes for `retention` after their time), so a
 *   redelivered element changes nothing.
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
  | { readonly _tag: "LateBuild"; readonly build: B; readonly watermark: number; readonly message?: Envelope | undefined }

export interface JoinState<B, P> {
  /** held build elements, bucketed by time (a cleanup timer drops exactly one bucket) */
  readonly builds: Map<number, Array<B>>
  /** ids of the held build elements, for dedup */
  readonly buildIds: Set<string>
  /** on-time probes waiting for the watermark */
  readonly pending: Map<string, P>
  /** ids of probes already joined → their time, for dedup */
  readonly joined: Map<string, number>
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

/** The best match for `probe` among `builds`, or undefined. `heldAfter`: builds with ts + before below it are gone. */
export const firstMatch = <B extends JoinElement>(
  builds: ReadonlyMap<number, ReadonlyArray<B>>, probe: JoinElement, beforeMs: number, heldAfter: number
): B | undefined => {
  const from = Math.max(probe.ts - beforeMs, heldAfter - beforeMs)
  let best: B | undefined
  for (const [ts, bucket] of builds) {
    if (ts < from || ts > probe.ts || (best !== undefined && ts > best.ts)) continue
    for (let i = 0; i < bucket.length; i++) {
      const b = bucket[i]!
      if (b.matchKey !== null && b.matchKey !== probe.matchKey) continue
      if (best === undefined || b.ts < best.ts || (b.ts === best.ts && b.id < best.id)) best = b
    }
  }
  return best
}

export const make = <B extends JoinElement, P extends JoinElement>(
  options: IntervalJoinOptions
): KeyedOperator<JoinState<B, P>, JoinInput<B, P>, JoinOutput<B, P>> => {
  const { beforeMs, retentionMs } = options

  const onBuild = (state: JoinState<B, P>, b: B, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    if (state.buildIds.has(b.id)) return // redelivered
    if (b.ts < ctx.watermark) {
      ctx.emit({ _tag: "LateBuild", build: b, watermark: ctx.watermark, message: ctx.message })
      return
    }
    hold(state, b, ctx)
  }

  const hold = (state: JoinState<B, P>, b: B, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    const bucket = state.builds.get(b.ts)
    if (bucket === undefined) {
      state.builds.set(b.ts, [b])
      ctx.registerTimer(b.ts + beforeMs + 1, CLEANUP)
    } else bucket.push(b)
    state.buildIds.add(b.id)
  }

  const onProbe = (state: JoinState<B, P>, p: P, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    if (state.pending.has(p.id) || state.joined.has(p.id)) return // redelivered
    if (p.ts < ctx.watermark) {
      ctx.emit({ _tag: "Joined", probe: p, match: firstMatch(state.builds, p, beforeMs, ctx.watermark), late: true, watermark: ctx.watermark, message: ctx.message })
      remember(state, p, ctx)
      return
    }
    state.pending.set(p.id, p)
    ctx.registerTimer(p.ts, EMIT)
  }

  const restore = (state: JoinState<B, P>, input: JoinInput<B, P>, ctx: OperatorContext<JoinOutput<B, P>>): void => {
    if (input.side === "restore-build") {
      const b = input.element
      if (!state.buildIds.has(b.id) && b.ts + beforeMs >= ctx.watermark) hold(state, b, ctx)
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
    ctx.registerTimer(p.ts + retentionMs + 1, FORGET)
  }

  return {
    create: () => ({ builds: new Map(), buildIds: new Set(), pending: new Map(), joined: new Map() }),
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
        for (const p of state.pending.values()) {
          if (p.ts > t) continue
          state.pending.delete(p.id)
          ctx.emit({ _tag: "Joined", probe: p, match: firstMatch(state.builds, p, beforeMs, -Infinity), late: false, watermark: ctx.watermark })
          remember(state, p, ctx)
        }
      } else if (timer.namespace === CLEANUP) {
        const ts = t - beforeMs - 1
        const bucket = state.builds.get(ts)
        if (bucket !== undefined) {
          state.builds.delete(ts)
          for (let i = 0; i < bucket.length; i++) state.buildIds.delete(bucket[i]!.id)
        }
      } else if (timer.namespace === FORGET) {
        for (const [id, ts] of state.joined) if (ts + retentionMs < t) state.joined.delete(id)
      }
    },
    isEmpty: (state) => state.builds.size === 0 && state.pending.size === 0 && state.joined.size === 0,
    measure: (state) => [state.buildIds.size, state.pending.size]
  }
}
