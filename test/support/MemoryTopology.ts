/**
 * The store's topology without PostgreSQL: the attribution job writing to a sink function,
 * claims kept in memory. For tests that drive the real runner through a MemorySource.
 */
import { Effect } from "effect"
import * as Attribution from "../../src/jobs/Attribution.ts"
import type { AttributionInput, AttributionOutput, ShopEvent } from "../../src/jobs/Attribution.ts"
import { memoryOwnership, type Recall, type SinkBatch, type SinkResult, type Topology } from "../../src/engine/Topology.ts"

export const A = 3_600_000
export const topics = { clicks: "clicks", checkouts: "checkouts" }

export const attributionTopology = <E = never>(
  write: (batch: SinkBatch<AttributionOutput>) => Effect.Effect<SinkResult | void, E>,
  recall?: Recall<AttributionInput, E>
): Topology<ShopEvent, E> & { readonly ownership: ReturnType<typeof memoryOwnership> } => ({
  decode: Attribution.decode(topics),
  ownership: memoryOwnership(),
  jobs: [Attribution.node<E>(
    { windowMs: A, dedupRetentionMs: A },
    { write: (batch) => Effect.map(write(batch), (r) => r ?? { fenced: [] }) },
    recall
  )]
})
