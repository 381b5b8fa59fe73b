/**
 * Keyed state: each key's state is owned by exactly one key group, and each key group by
 * one fiber with a bounded mailbox (Flink's key groups). Within a group, a key's state is
 * created on first use and retired once it empties; event-time timers sit in one queue per
 * group, ordered by (time, key, namespace), so a watermark wakes exactly the due keys.
 *
 * Operators are plain functions over a key's state (`KeyedOperator`); they never see fibers.
 */
import { Deferred, Effect, Fiber, Queue } from "effect"
import type { Scope } from "effect"
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
  readonly create: () => S
  readonly onElement: (state: S, input: I, ctx: OperatorContext<O>) => void
  readonly onTimer: (state: S, timer: Timer, ctx: OperatorContext<O>) => void
  readonly isEmpty: (state: S) => boolean
  /** per-state counters summed for the status page (e.g. [elements held, pending]) */
  readonly measure: (state: S) => readonly [number, number]
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
    const { operator, states, ctx } = this
    for (let i = 0; i < inputs.length; i++) {
      const { key, input, watermark: wm, message } = inputs[i]!
      let state = states.get(key)
      if (state === undefined) state = operator.create()
      ctx.key = key
      ctx.watermark = wm
      ctx.message = message
      operator.onElement(state, input, ctx)
      if (operator.isEmpty(state)) states.delete(key)
      else states.set(key, state)
    }
    this.advance(watermark)
    const out = this.out
    this.out = []
    return out
  }

  private advance(watermark: number): void {
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

/** FNV-1a: a cheap, stable string hash for routing keys to groups. */
export const hashKey = (key: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

interface Work<I, O> {
  readonly inputs: ReadonlyArray<KeyedInput<I>>
  readonly watermark: number
  readonly reply: Deferred.Deferred<Array<O>>
}

/** Key groups, each owned by a fiber reading a bounded mailbox. */
export interface KeyedActors<S, I, O> {
  readonly groups: ReadonlyArray<KeyGroup<S, I, O>>
  /** Routes `inputs` by key, advances every group to `watermark`, and gathers the output. */
  readonly process: (inputs: ReadonlyArray<KeyedInput<I>>, watermark: number) => Effect.Effect<Array<O>>
  readonly stats: () => KeyGroupStats
}

export const makeActors = <S, I, O>(
  operator: KeyedOperator<S, I, O>, groupCount: number, mailboxCapacity = 4
): Effect.Effect<KeyedActors<S, I, O>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const groups = Array.from({ length: groupCount }, () => new KeyGroup(operator))
    const mailboxes = yield* Effect.forEach(groups, (group) =>
      Effect.gen(function*() {
        const mailbox = yield* Queue.bounded<Work<I, O>>(mailboxCapacity)
        const fiber = yield* Effect.forkScoped(Effect.forever(
          Effect.flatMap(Queue.take(mailbox), (work) =>
            Deferred.succeed(work.reply, group.process(work.inputs, work.watermark)))
        ))
        yield* Effect.addFinalizer(() => Fiber.interrupt(fiber))
        return mailbox
      }))

    const process = (inputs: ReadonlyArray<KeyedInput<I>>, watermark: number): Effect.Effect<Array<O>> => {
      let routed: Array<ReadonlyArray<KeyedInput<I>>>
      if (groupCount === 1) routed = [inputs]
      else {
        const byGroup: Array<Array<KeyedInput<I>>> = groups.map(() => [])
        for (let i = 0; i < inputs.length; i++) byGroup[hashKey(inputs[i]!.key) % groupCount]!.push(inputs[i]!)
        routed = byGroup
      }
      return Effect.gen(function*() {
        const replies = yield* Effect.forEach(mailboxes, (mailbox, g) =>
          Effect.gen(function*() {
            const reply = yield* Deferred.make<Array<O>>()
            yield* Queue.offer(mailbox, { inputs: routed[g]!, watermark, reply })
            return reply
          }))
        const outputs = yield* Effect.forEach(replies, (reply) => Deferred.await(reply))
        return outputs.flat()
      })
    }

    const stats = (): KeyGroupStats => {
      let keys = 0, held = 0, pending = 0, timers = 0
      for (const g of groups) {
        const s = g.stats()
        keys += s.keys; held += s.held; pending += s.pending; timers += s.timers
      }
      return { keys, held, pending, timers }
    }

    return { groups, process, stats }
  })
