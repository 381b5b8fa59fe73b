/**
 * What a task runs: one decode shared by every job, then several keyed jobs over the same
 * decoded events, each with its own operator, output type and sink (ARCHITECTURE: Topology).
 * A new capability is a new `JobNode`, not a new runner.
 *
 * Every sink commits its own progress (positions per job); a partition restarts from the
 * oldest offset that any job's sink or state still needs, and an event re-read from before
 * a job's committed position only rebuilds that job's state (`Recall`).
 */
import { Effect } from "effect"
import type { KeyedOperator } from "./KeyedState.ts"
import type { CommittedPosition, Envelope, PartitionRef, Position } from "./Source.ts"

/**
 * A decoded message: routed by `key` within its task, ordered by `ts`. It names the message it
 * came from, so the engine carries one object per event from decode to the jobs.
 */
export interface Decoded<E> {
  readonly key: string
  readonly ts: number
  readonly event: E
  readonly message: Envelope
}

/** A message that is not a valid event (or that its sink refused), with the reason in words. */
export interface Rejected {
  readonly envelope: Envelope
  /** where the message was read: the source's name, or the file for a replay */
  readonly origin: string
  readonly error: string
}

/** Ownership of a task as claimed in the sink's store: writes carry it and are fenced by it. */
export interface TaskClaim {
  readonly task: number
  readonly epoch: number
}

/** A position with the task that owns it and the task's watermark when it was taken. */
export interface TaskPosition extends Position {
  readonly task: number
  readonly epoch: number
  readonly watermark: number
}

/** What one job's sink writes in one transaction. */
export interface SinkBatch<O> {
  readonly job: string
  readonly outputs: ReadonlyArray<O>
  /** messages that are not valid events (only in the dead-letter job's batches) */
  readonly rejected: ReadonlyArray<Rejected>
  /** every partition touched since the last batch, with its next offset for this job */
  readonly positions: ReadonlyArray<TaskPosition>
  /** the tasks whose work is in the batch: the sink writes nothing of a task whose claim is stale */
  readonly claims: ReadonlyArray<TaskClaim>
}

/** What a sink did with a batch: the tasks it found fenced (nothing of theirs was written). */
export interface SinkResult {
  readonly fenced: ReadonlyArray<number>
}

export interface Sink<O, E> {
  readonly write: (batch: SinkBatch<O>) => Effect.Effect<SinkResult, E>
  /** writes out whatever the sink still buffers (end of input, or a stop) */
  readonly close?: Effect.Effect<void, E>
}

/**
 * Exactly-once restarts of one job: where its output is written up to, and how to turn an
 * input re-read from before that point into the state it left behind.
 */
export interface Recall<I, E> {
  readonly positions: (partitions: ReadonlyArray<PartitionRef>) => Effect.Effect<ReadonlyArray<CommittedPosition>, E>
  /**
   * One result per input, in order: its restore form, or undefined when it left nothing in
   * state. A job without state has none: inputs re-read before its position are skipped.
   */
  readonly recall?: (inputs: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<I | undefined>, E>
}

export interface JobNode<Ev, S, I, O, E> {
  readonly name: string
  /** the job's input for a decoded event (read from `message`), or undefined when the job ignores it */
  readonly input: (event: Ev, message: Envelope) => I | undefined
  /**
   * The job's operator; or, for a job that keeps state across the keys of a task (a model
   * learned from all of them), a function that makes one for each task as it is created.
   */
  readonly operator: KeyedOperator<S, I, O> | ((task: number) => KeyedOperator<S, I, O>)
  /** how long after its event time an input may still be needed in state (sets restart offsets) */
  readonly retainMs: number
  readonly sink: Sink<O, E>
  /** resume from committed positions (unbounded sources); a bounded replay always starts fresh */
  readonly recall?: Recall<I, E> | undefined
}

/** Any job of a topology over events `Ev` (jobs differ in state, input and output types). */
export type AnyJob<Ev, E> = JobNode<Ev, any, any, any, E>

/** Claims tasks for this process: bumps each task's epoch in the store and returns the new claims. */
export interface Ownership<E> {
  readonly claim: (tasks: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<TaskClaim>, E>
}

export interface Topology<Ev, E> {
  /**
   * A message to an event, or the reason it is not one. `latestEventTime`: events after it
   * are refused (the processing clock plus the allowed future), so one bad clock cannot push a
   * watermark years ahead.
   */
  readonly decode: (envelope: Envelope, latestEventTime: number) => Decoded<Ev> | string
  /** the first job is the dead-letter job: its sink writes rejected messages */
  readonly jobs: ReadonlyArray<AnyJob<Ev, E>>
  readonly ownership: Ownership<E>
}

/** Ownership without a store (tests, benchmarks): every claim of a task bumps its epoch in memory. */
export const memoryOwnership = (): Ownership<never> & { readonly epochs: Map<number, number> } => {
  const epochs = new Map<number, number>()
  return {
    epochs,
    claim: (tasks) =>
      Effect.sync(() => tasks.map((task) => {
        const epoch = (epochs.get(task) ?? 0) + 1
        epochs.set(task, epoch)
        return { task, epoch }
      }))
  }
}
