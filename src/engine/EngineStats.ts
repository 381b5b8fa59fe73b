/**
 * What the engine has read and holds, for the status page, `/metrics` and engine_status:
 * partitions (read position, end, rate), events by topic, the tasks this process owns with
 * their watermarks and keyed state, and each job's own figures (`JobStats`, registered by the
 * job). The driver bumps the read counters once per batch; the rest is read from the live
 * tasks on demand.
 */
import { JobStats } from "./JobStats.ts"
import type { KeyGroupStats } from "./KeyedState.ts"
import type { PartitionRef, Records } from "./Source.ts"
import type { PartitionState } from "./Watermark.ts"

export interface PartitionStats {
  readonly id: string
  readonly topic: string
  readonly partition: number
  /** messages read */
  events: number
  /** next offset to read, as read (not yet necessarily written) */
  readOffset: number
  /** the partition's end, when the source knows it */
  highWatermark: number | undefined
  /** processing time of the last message */
  lastReadAt: number | undefined
}

export interface PartitionView extends Readonly<PartitionStats> {
  readonly task: number | undefined
  readonly maxEventTime: number
  readonly idle: boolean
  readonly lag: number | undefined
}

/** A live task as the engine shows it. */
export interface TaskView {
  readonly id: number
  readonly epoch: number
  readonly watermark: number
  readonly partitions: ReadonlyArray<{ readonly id: string; readonly watermark: PartitionState }>
  readonly isIdle: (p: PartitionState, now: number) => boolean
  /** keyed state of job `job` (its index in the topology) */
  readonly state: (job: number) => KeyGroupStats
}

/**
 * A scheduled job's state for the status page (the midnight export, …): kept up to date by
 * the job itself. Times are epoch ms of processing time.
 */
export interface ScheduledJobStatus {
  readonly name: string
  /** when the last run started */
  lastRunAt: number | undefined
  /** what the last run did, in words (e.g. "succeeded: 2026-11-23, 1,234 rows") */
  lastResult: string | undefined
  /** when the schedule fires next */
  nextRunAt: number | undefined
}

/** What a process with no job yet shows. */
const noJob = new JobStats("none")

const emptyState: KeyGroupStats = { keys: 0, held: 0, pending: 0, timers: 0 }

export class EngineStats {
  readonly partitions = new Map<string, PartitionStats>()
  readonly eventsByTopic = new Map<string, number>()
  /** each job's figures, by job name, in topology order */
  readonly jobs = new Map<string, JobStats>()
  /** scheduled jobs by name, in registration order */
  readonly scheduledJobs = new Map<string, ScheduledJobStatus>()
  private tasks: () => Iterable<TaskView> = () => []
  private jobIndex = new Map<string, number>()

  /** The driver shows its live tasks and the jobs' order. */
  attach(tasks: () => Iterable<TaskView>, jobNames: ReadonlyArray<string>): void {
    this.tasks = tasks
    this.jobIndex = new Map(jobNames.map((n, i) => [n, i]))
    for (const n of jobNames) this.job(n)
  }

  /** The figures of job `name` (created on first use: a job registers before it runs). */
  job(name: string): JobStats {
    let j = this.jobs.get(name)
    if (j === undefined) this.jobs.set(name, j = new JobStats(name))
    return j
  }

  /** The status of scheduled job `name` (created on first use). */
  scheduledJob(name: string): ScheduledJobStatus {
    let j = this.scheduledJobs.get(name)
    if (j === undefined) this.scheduledJobs.set(name, j = { name, lastRunAt: undefined, lastResult: undefined, nextRunAt: undefined })
    return j
  }

  /** The first job's figures (the dead-letter job's: its sink also writes the rejected messages). */
  get primary(): JobStats {
    const first = this.jobs.values().next()
    return first.done === true ? noJob : first.value
  }

  /** A job-defined counter, summed over jobs. */
  counter(name: string): number {
    let n = 0
    for (const j of this.jobs.values()) n += j.counter(name)
    return n
  }

  /** Every job's counters, summed by name. */
  counters(): Map<string, number> {
    const out = new Map<string, number>()
    for (const j of this.jobs.values()) for (const [k, v] of j.counters) out.set(k, (out.get(k) ?? 0) + v)
    return out
  }

  partition(ref: PartitionRef): void {
    const id = `${ref.topic}/${ref.partition}`
    if (!this.partitions.has(id)) {
      this.partitions.set(id, { id, topic: ref.topic, partition: ref.partition, events: 0, readOffset: 0, highWatermark: undefined, lastReadAt: undefined })
    }
  }

  /** Forgets a partition this process no longer reads. */
  dropPartition(ref: PartitionRef): void {
    this.partitions.delete(`${ref.topic}/${ref.partition}`)
  }

  recordRead(records: Records, now: number): void {
    const n = records.records.length
    if (n > 0) this.eventsByTopic.set(records.topic, (this.eventsByTopic.get(records.topic) ?? 0) + n)
    const p = this.partitions.get(`${records.topic}/${records.partition}`)
    if (p === undefined) return
    p.events += n
    if (n > 0) {
      p.readOffset = records.records[n - 1]!.offset + 1
      p.lastReadAt = now
    }
    if (records.highWatermark !== undefined) p.highWatermark = records.highWatermark
  }

  get eventsTotal(): number {
    let n = 0
    for (const v of this.eventsByTopic.values()) n += v
    return n
  }

  /**
   * The process's watermark: the minimum over its tasks that have one (a task that has seen no
   * event yet, e.g. one whose partitions only ever carried garbage, has none); −∞ when none has.
   */
  get watermark(): number {
    let min = Infinity
    let seen = false
    for (const t of this.tasks()) {
      if (t.watermark === -Infinity) continue
      seen = true
      if (t.watermark < min) min = t.watermark
    }
    return seen ? min : -Infinity
  }

  /** The tasks this process owns now. */
  taskViews(): Array<TaskView> {
    return [...this.tasks()].sort((a, b) => a.id - b.id)
  }

  /** Partitions with their watermark view at processing time `now`, by partition number then topic. */
  partitionViews(now: number): Array<PartitionView> {
    const tracked = new Map<string, { task: TaskView; watermark: PartitionState }>()
    for (const t of this.tasks()) for (const p of t.partitions) tracked.set(p.id, { task: t, watermark: p.watermark })
    const views: Array<PartitionView> = []
    for (const p of this.partitions.values()) {
      const w = tracked.get(p.id)
      views.push({
        ...p,
        task: w?.task.id,
        maxEventTime: w?.watermark.maxEventTime ?? -Infinity,
        idle: w === undefined ? true : w.task.isIdle(w.watermark, now),
        lag: p.highWatermark === undefined ? undefined : Math.max(0, p.highWatermark - p.readOffset)
      })
    }
    // by task (partition number), then topic: a task's partitions side by side
    return views.sort((a, b) => a.partition - b.partition || (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0))
  }

  /** Keyed state of job `name` (the first job's by default), summed over tasks. */
  state(name?: string): KeyGroupStats {
    const index = name === undefined ? 0 : this.jobIndex.get(name)
    if (index === undefined) return emptyState
    let keys = 0, held = 0, pending = 0, timers = 0
    for (const t of this.tasks()) {
      const s = t.state(index)
      keys += s.keys; held += s.held; pending += s.pending; timers += s.timers
    }
    return { keys, held, pending, timers }
  }
}
