/**
 * Real-time recommendations (SPEC §7) as a job of the topology: every click, view, add-to-cart
 * and paid checkout, late or not, teaches the task's model (`RecommenderModel`: what is kept
 * per user and per product is bounded there); at the task's next flush (a quarter of a second)
 * the top 10 of every user seen since is recomputed and handed to the sink, coalesced: one
 * list per user per flush, however many events they sent.
 *
 * The model belongs to the task, like keyed state: task n learns from the users of partition n.
 * So a task moves between members with its whole state, and a run's lists depend only on what
 * each partition holds, not on which member ran it. Every `snapshotEveryMs` a flush also hands
 * on a snapshot of the model, taken between two steps: the sink stores it with the positions
 * of that flush in one transaction, and a restored task resumes from it (the input after those
 * positions is read again, nothing before).
 *
 * The API reads the models in memory (`Recommenders.lookup`): a list is there as soon as the
 * event is processed.
 */
import { Context } from "effect"
import type { Checkout, Click } from "../domain/Events.ts"
import type { KeyedOperator } from "../engine/KeyedState.ts"
import type { JobNode, Recall, Sink } from "../engine/Topology.ts"
import { type Interaction, type ModelLimits, type ProductInfo, RecommenderModel, type Scored } from "../recs/Model.ts"
import { isClick, type ShopEvent } from "./Attribution.ts"
import type { Dimensions } from "./Dimensions.ts"

export const JOB = "recommendations"

/** What the job learns from one event. */
export interface RecInput {
  readonly userId: string
  readonly productId: string
  readonly kind: Interaction
  readonly ts: number
}

/** A user's new list, computed at a flush (processing time `updatedAt`). */
export interface RecList {
  readonly _tag: "List"
  readonly task: number
  readonly userId: string
  readonly items: ReadonlyArray<Scored>
  readonly updatedAt: number
}

/** The whole state of one task's recommender as it stood at a flush, as JSON (`TaskModelState`). */
export interface RecSnapshot {
  readonly _tag: "Snapshot"
  readonly task: number
  readonly takenAt: number
  /** serialised at once: the model goes on learning while the sink writes it */
  readonly json: string
}

export type RecOutput = RecList | RecSnapshot

/** What a snapshot holds: the model, and when each user's list was last computed. */
export interface TaskModelState {
  readonly model: unknown
  readonly clock: number
  readonly updatedAt: ReadonlyArray<readonly [string, number]>
}

const clickInput = (c: Click): RecInput | undefined =>
  c.productId === null ? undefined : { userId: c.userId, productId: c.productId, kind: c.eventType, ts: c.ts }

const checkoutInput = (k: Checkout): RecInput | undefined =>
  k.paymentStatus === "Success" ? { userId: k.userId, productId: k.productId, kind: "purchase", ts: k.ts } : undefined

/** The job's input for a store event: clicks on a product, and paid checkouts (purchases). */
export const input = (event: ShopEvent): RecInput | undefined =>
  isClick(event) ? clickInput(event) : checkoutInput(event)

/** One task's recommender: its model and the users whose list is due at the next flush. */
export class TaskModel {
  model: RecommenderModel
  /** the newest event time seen: the model's clock (decay, the 24 h of purchases left out) */
  clock = -Infinity
  /** per user: processing time their list was last computed */
  readonly updatedAt = new Map<string, number>()
  readonly dirty = new Set<string>()
  lastSnapshotAt = -Infinity
  updates = 0

  constructor(readonly task: number, private readonly catalog: (productId: string) => ProductInfo | undefined, private readonly limits?: Partial<ModelLimits>) {
    this.model = new RecommenderModel(catalog, limits)
  }

  restore(state: TaskModelState): void {
    this.model = RecommenderModel.restore(this.catalog, state.model, this.limits)
    this.clock = state.clock
    this.updatedAt.clear()
    for (const [user, at] of state.updatedAt) this.updatedAt.set(user, at)
    this.dirty.clear()
  }

  snapshot(): TaskModelState {
    return { model: this.model.snapshot(), clock: this.clock, updatedAt: [...this.updatedAt] }
  }
}

/**
 * How fast lists are recomputed: the time of each computation (the last 2048, for p50 and
 * p99) and how many were made in the last 10 s of processing time.
 */
export class UpdateMeter {
  private readonly samples = new Float64Array(2048)
  private count = 0
  private readonly buckets = new Float64Array(10)
  private bucketSecond = 0

  record(ms: number, now: number): void {
    this.samples[this.count++ % this.samples.length] = ms
    this.roll(now)
    this.buckets[this.bucketSecond % 10]!++
  }

  private roll(now: number): void {
    const second = Math.floor(now / 1000)
    if (second === this.bucketSecond) return
    for (let s = Math.max(this.bucketSecond + 1, second - 9); s <= second; s++) this.buckets[s % 10] = 0
    this.bucketSecond = second
  }

  /** updates per second over the last 10 s */
  perSecond(now: number): number {
    this.roll(now)
    let n = 0
    for (const b of this.buckets) n += b
    return n / 10
  }

  percentile(p: number): number | undefined {
    const n = Math.min(this.count, this.samples.length)
    if (n === 0) return undefined
    const sorted = this.samples.slice(0, n).sort()
    return sorted[Math.min(n - 1, Math.floor(p * n))]
  }
}

/**
 * The recommenders of the tasks this process runs (made by the job as tasks are created,
 * dropped with them): what the API and the status page read.
 */
export class Recommenders {
  private readonly tasks = new Map<number, TaskModel>()
  /** how many tasks the input has, when known: holding them all, a user no model knows has no events */
  totalTasks: number | undefined

  constructor(readonly catalog: (productId: string) => ProductInfo | undefined, readonly limits?: Partial<ModelLimits>) {}

  create(task: number): TaskModel {
    const m = new TaskModel(task, this.catalog, this.limits)
    this.tasks.set(task, m)
    return m
  }

  drop(m: TaskModel): void {
    if (this.tasks.get(m.task) === m) this.tasks.delete(m.task)
  }

  /** This process runs every task of the input: what its models do not know, no one does. */
  holdsEveryTask(): boolean {
    return this.totalTasks !== undefined && this.tasks.size >= this.totalTasks
  }

  get(task: number): TaskModel | undefined {
    return this.tasks.get(task)
  }

  all(): IterableIterator<TaskModel> {
    return this.tasks.values()
  }

  /** The user's list from the model of the task that knows them, or undefined when none does. */
  lookup(userId: string, n = 10): { readonly items: ReadonlyArray<Scored>; readonly updatedAt: number | undefined } | undefined {
    for (const m of this.tasks.values()) {
      if (m.model.userSizes(userId) === undefined) continue
      const items = m.model.recommend(userId, m.clock, n)
      if (items !== undefined) return { items, updatedAt: m.updatedAt.get(userId) }
    }
    return undefined
  }

  /** The most popular products over every task's model (the mean of their scores, so still 0..1), best first. */
  popular(n = 10): ReadonlyArray<Scored> {
    const sum = new Map<string, number>()
    for (const m of this.tasks.values()) {
      for (const s of m.model.popular(m.clock, n)) sum.set(s.productId, (sum.get(s.productId) ?? 0) + s.score)
    }
    const tasks = Math.max(1, this.tasks.size)
    return [...sum].map(([productId, score]) => ({ productId, score: score / tasks }))
      .sort((a, b) => b.score - a.score || (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0))
      .slice(0, n)
  }

  figures(): { readonly tasks: number; readonly users: number; readonly products: number; readonly neighbourLinks: number; readonly updates: number } {
    let users = 0, products = 0, neighbourLinks = 0, updates = 0
    for (const m of this.tasks.values()) {
      const s = m.model.stats()
      users += s.users
      products += s.products
      neighbourLinks += s.neighbourLinks
      updates += m.updates
    }
    return { tasks: this.tasks.size, users, products, neighbourLinks, updates }
  }
}

/** What the model knows of a product, from the products dimension. */
export const catalogOf = (dims: Dimensions["Service"]) => (productId: string): ProductInfo | undefined => {
  const p = dims.product(productId)
  return p === undefined ? undefined : { category: p.category ?? "", brand: p.brand ?? "" }
}

/** The recommenders of this process, for the HTTP API. */
export class RecommenderRegistry extends Context.Service<RecommenderRegistry, Recommenders>()("insights/jobs/RecommenderRegistry") {}

export interface RecommenderOptions {
  /** processing time between two snapshots of a task's model */
  readonly snapshotEveryMs: number
  /** how often (processing time) users idle beyond the model's limit are forgotten */
  readonly evictEveryMs?: number
  /** the time of each list's computation, for the status page */
  readonly meter?: UpdateMeter
  /**
   * a user's list is computed again at the first flush at least this long (processing time)
   * after its previous computation (default 0: at every flush); the last flush computes all
   */
  readonly recomputeEveryMs?: number
}

/** The job's operator for one task: the model learns from each input; lists are made per flush. */
export const operatorFor = (recs: Recommenders, options: RecommenderOptions) => (task: number): KeyedOperator<null, RecInput, RecOutput> => {
  const m = recs.create(task)
  const evictEveryMs = options.evictEveryMs ?? 60_000
  const recomputeEveryMs = options.recomputeEveryMs ?? 0
  let lastEvictAt = -Infinity
  return {
    create: () => null,
    onElement: (_state, input) => {
      m.model.observe(input.userId, input.productId, input.kind, input.ts)
      if (input.ts > m.clock) m.clock = input.ts
      m.dirty.add(input.userId)
    },
    onTimer: () => {},
    isEmpty: () => true,
    measure: () => [0, 0],
    onFlush: (now, emit, final) => {
      for (const userId of m.dirty) {
        // under load flushes come every few ms: a user's list is made at most every recomputeEveryMs
        if (!final && recomputeEveryMs > 0 && now - (m.updatedAt.get(userId) ?? -Infinity) < recomputeEveryMs) continue
        m.dirty.delete(userId) // deleting the current entry while iterating a Set is safe
        const started = performance.now()
        const items = m.model.recommend(userId, m.clock) ?? []
        options.meter?.record(performance.now() - started, now)
        m.updatedAt.set(userId, now)
        m.updates++
        emit({ _tag: "List", task, userId, items, updatedAt: now })
      }
      if (now - lastEvictAt >= evictEveryMs && m.clock > -Infinity) {
        lastEvictAt = now
        if (m.model.evict(m.clock) > 0) {
          for (const user of m.updatedAt.keys()) if (m.model.userSizes(user) === undefined) m.updatedAt.delete(user)
        }
      }
      if (now - m.lastSnapshotAt >= options.snapshotEveryMs) {
        m.lastSnapshotAt = now
        emit({ _tag: "Snapshot", task, takenAt: now, json: JSON.stringify(m.snapshot()) })
      }
    },
    dispose: () => recs.drop(m)
  }
}

export const node = <E>(
  recs: Recommenders, options: RecommenderOptions, sink: Sink<RecOutput, E>, recall?: Recall<RecInput, E>
): JobNode<ShopEvent, null, RecInput, RecOutput, E> => ({
  name: JOB,
  input,
  operator: operatorFor(recs, options),
  // its state is restored from the snapshot, not rebuilt from the input
  retainMs: -Infinity,
  sink,
  recall
})
