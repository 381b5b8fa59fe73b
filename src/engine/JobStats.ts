/**
 * One job's own figures: counters it defines (late events, ingest errors, ...), its sink's
 * writes and latency, and the last few rejected and late messages for the status page.
 * Bumped by the job's sink after each committed batch (never per event through an Effect);
 * read on demand by the HTTP surface.
 */

export interface SinkFigures {
  rowsWritten: number
  batches: number
  lastBatchMs: number | undefined
  lastCommitAt: number | undefined
  /** recent batch latencies in ms, newest last */
  readonly recentBatchMs: Array<number>
}

export interface RecentError {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly error: string
  readonly at: number
}

export interface RecentLate {
  readonly topic: string
  readonly id: string
  readonly eventTime: string
  readonly at: number
}

const RECENT = 20

export class JobStats {
  readonly counters = new Map<string, number>()
  readonly sink: SinkFigures = { rowsWritten: 0, batches: 0, lastBatchMs: undefined, lastCommitAt: undefined, recentBatchMs: [] }
  readonly recentErrors: Array<RecentError> = []
  readonly recentLateEvents: Array<RecentLate> = []

  /** figures of the job's own (files written, buffer age, ...), read on demand at processing time `now` */
  report: (now: number) => Readonly<Record<string, number | undefined>> = () => ({})

  constructor(readonly name: string) {}

  count(name: string, n = 1): void {
    if (n !== 0) this.counters.set(name, (this.counters.get(name) ?? 0) + n)
  }

  counter(name: string): number {
    return this.counters.get(name) ?? 0
  }

  recentError(e: RecentError): void {
    this.recentErrors.push(e)
    if (this.recentErrors.length > RECENT) this.recentErrors.shift()
  }

  recentLate(e: RecentLate): void {
    this.recentLateEvents.push(e)
    if (this.recentLateEvents.length > RECENT) this.recentLateEvents.shift()
  }

  recordSinkWrite(rows: number, latencyMs: number, at: number): void {
    this.sink.rowsWritten += rows
    this.sink.batches++
    this.sink.lastBatchMs = latencyMs
    this.sink.lastCommitAt = at
    this.sink.recentBatchMs.push(latencyMs)
    if (this.sink.recentBatchMs.length > 100) this.sink.recentBatchMs.shift()
  }
}
