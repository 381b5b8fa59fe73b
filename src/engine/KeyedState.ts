/**
 * Keyed state: the state of one job's keys within a task, with their event-time timers
 * (Flink's `KeyedProcessFunction` + `InternalTimerService` shape). A key's state is created on
 * first use and retired once it empties; timers sit in one queue ordered by (time, key,
 * namespace), so a watermark wakes exactly the due keys and no key is ever scanned.
 *
 * Operators are plain functions over a key's state (`KeyedOperator`); they never see fibers.
 */
import type { Envelope } from "./Source.ts"
import { type Timer, TimerQueue } from "./TimerQueue.ts"

/** Handed to an operator for one call; not to be kept. */
export interface OperatorContext<O> {
  readonly key: string
  readonly watermark: number
  /** the message the current element came from (undefined in onTimer): for late outputs, never to be kept in state */
  readonly message: Envelope | undefined
  readonly registerTimer: (time: number, namespace: number) => void
  readonly emit: (output: O) => void
}

export interface KeyedOperator<S, I, O> {
  /**
   * keeps no keyed state: the task calls `onElement` for each input as it is read (in offset
   * order per partition, before alignment and the watermark), with a null state and no key
   * lookup (a tap: every event, late or not, to a sink); its position is the read position
   */
  readonly stateless?: true
  readonly create: () => S
  readonly onElement: (state: S, input: I, ctx: OperatorContext<O>) => void
  readonly onTimer: (state: S, timer: Timer, ctx: OperatorContext<O>) => void
  readonly isEmpty: (state: S) => boolean
  /** per-state counters summed for the status page (e.g. [elements held, pending]) */
  readonly measure: (state: S) => readonly [number, number]
  /**
   * At every flush of the task: outputs made once per flush rather than per element (work
   * coalesced over the flush, or a checkpoint of state the operator keeps across its keys).
   * `now` is processing time; `final`: the last flush (the input ended, or a stop), so
   * nothing may be left for a later one.
   */
  readonly onFlush?: (now: number, emit: (output: O) => void, final: boolean) => void
  /** The task is dropped (revoked, fenced, stopped): let go of what is kept outside keyed state. */
  readonly dispose?: () => void
}

/** One element for a key, with the watermark it was judged against. */
export interface KeyedInput<I> {
  readonly key: string
  readonly input: I
  readonly watermark: number
  readonly message?: Envelope
}

export interface KeyGroupStats {
  readonly keys: number
  readonly held: number
  readonly pending: number
  readonly timers: number
}

/** The state of many keys and their timers; single-threaded, synchronous. */
export class KeyGroup<S, I, O> {
  private readonly states = new Map<string, S>()
  private readonly timers = new TimerQueue()
  private out: Array<O> = []
  private readonly ctx: { key: string; watermark: number; message: Envelope | undefined; registerTimer: (t: number, ns: number) => void; emit: (o: O) => void }

  constructor(private readonly operator: KeyedOperator<S, I, O>) {
    const self = this
    this.ctx = {
      key: "",
      watermark: -Infinity,
      message: undefined,
      registerTimer(time, namespace) { self.timers.register(time, this.key, namespace) },
      emit(o) { self.out.push(o) }
    }
  }

  /** Applies `inputs` in order, then fires every timer due at `watermark`; returns the output. */
  process(inputs: ReadonlyArray<KeyedInput<I>>, watermark: number): Array<O> {
    for (let i = 0; i < inputs.length; i++) {
      const { key, input, watermark: wm, message } = inputs[i]!
      this.apply(key, input, wm, message)
    }
    return this.advance(watermark)
  }

  /** Applies one input, judged against `watermark`; its outputs wait for the next `advance`. */
  apply(key: string, input: I, watermark: number, message: Envelope | undefined): void {
    const { operator, states, ctx } = this
    let state = states.get(key)
    const created = state === undefined
    if (state === undefined) state = operator.create()
    ctx.key = key
    ctx.watermark = watermark
    ctx.message = message
    operator.onElement(state, input, ctx)
    if (operator.isEmpty(state)) { if (!created) states.delete(key) }
    else if (created) states.set(key, state)
  }

  /** A stateless operator's input: no key, no state to look up or retire. */
  tap(input: I, watermark: number, message: Envelope | undefined): void {
    const ctx = this.ctx
    ctx.key = ""
    ctx.watermark = watermark
    ctx.message = message
    this.operator.onElement(null as S, input, ctx)
  }

  /** Fires every timer due at `watermark`; returns the outputs since the last call. */
  advance(watermark: number): Array<O> {
    this.fire(watermark)
    const out = this.out
    this.out = []
    return out
  }

  private fire(watermark: number): void {
    const { operator, states, ctx, timers } = this
    ctx.watermark = watermark
    ctx.message = undefined
    for (let timer = timers.popDue(watermark); timer !== undefined; timer = timers.popDue(watermark)) {
      const state = states.get(timer.key)
      if (state === undefined) continue
      ctx.key = timer.key
      operator.onTimer(state, timer, ctx)
      if (operator.isEmpty(state)) states.delete(timer.key)
    }
  }

  /** The operator's per-flush outputs (`onFlush`), if it has any. */
  flush(now: number, final = false): Array<O> {
    const onFlush = this.operator.onFlush
    if (onFlush === undefined) return []
    onFlush(now, this.ctx.emit, final)
    const out = this.out
    this.out = []
    return out
  }

  dispose(): void {
    this.operator.dispose?.()
  }

  stats(): KeyGroupStats {
    let held = 0, pending = 0
    for (const s of this.states.values()) {
      const [h, p] = this.operator.measure(s)
      held += h
      pending += p
    }
    return { keys: this.states.size, held, pending, timers: this.timers.size }
  }

  /** A key's state, for tests and inspection. */
  get(key: string): S | undefined {
    return this.states.get(key)
  }
}

/** FNV-1a: a cheap, stable string hash (the in-process generator's partitioner). */
export const hashKey = (key: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
