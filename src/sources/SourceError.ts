/**
 * Why a source could not deliver: a file that cannot be read, a broker that cannot be
 * reached, topics that are not co-partitioned. Carries whether retrying may help.
 */
import { Data } from "effect"

export class SourceError extends Data.TaggedError("SourceError")<{
  readonly reason: "FileUnreadable" | "BrokerUnavailable" | "TopicMismatch" | "Protocol"
  readonly message: string
  readonly cause?: unknown
}> {
  get isRetryable(): boolean {
    return this.reason === "BrokerUnavailable"
  }
}
