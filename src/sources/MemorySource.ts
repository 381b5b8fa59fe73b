/**
 * An unbounded source fed by hand: tests push `SourceEvent`s and watch what is committed.
 * The in-memory adapter of the Source port (the Kafka source's stand-in where no broker
 * is the point of the test).
 */
import { Effect, Queue, Stream } from "effect"
import type { Position, SourceEvent, UnboundedSource } from "../engine/Source.ts"

export interface MemorySource {
  readonly source: UnboundedSource<never>
  readonly send: (event: SourceEvent) => Effect.Effect<void>
  readonly commits: ReadonlyArray<ReadonlyArray<Position>>
}

/** `reportsCaughtUp`: the test sends the reports a Kafka source would (`UnboundedSource.reportsCaughtUp`). */
export const make = (name = "memory", options: { readonly reportsCaughtUp?: boolean } = {}): Effect.Effect<MemorySource> =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<SourceEvent>()
    const commits: Array<ReadonlyArray<Position>> = []
    return {
      source: {
        _tag: "Unbounded",
        name,
        ...(options.reportsCaughtUp === true ? { reportsCaughtUp: true } : {}),
        events: Stream.fromQueue(queue),
        commit: (positions) => Effect.sync(() => { commits.push(positions) })
      },
      send: (event) => Queue.offer(queue, event).pipe(Effect.asVoid),
      commits
    }
  })
