/**
 * Event-time timers: a binary min-heap ordered by (time, key, namespace). Registering the
 * same timer twice changes nothing; advancing the watermark pops exactly the due timers,
 * so no key is ever scanned to find work.
 */

export interface Timer {
  readonly time: number
  readonly key: string
  readonly namespace: number
}

const before = (a: Timer, b: Timer): boolean =>
  a.time !== b.time ? a.time < b.time : a.key !== b.key ? a.key < b.key : a.namespace < b.namespace

const id = (t: Timer): string => `${t.time}\u0000${t.namespace}\u0000${t.key}`

export class TimerQueue {
  private readonly heap: Array<Timer> = []
  private readonly registered = new Set<string>()

  get size(): number {
    return this.heap.length
  }

  register(time: number, key: string, namespace: number): void {
    const timer: Timer = { time, key, namespace }
    const timerId = id(timer)
    if (this.registered.has(timerId)) return
    this.registered.add(timerId)
    const heap = this.heap
    heap.push(timer)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(timer, heap[parent]!)) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = timer
  }

  /** The earliest timer's time, or +∞. */
  peekTime(): number {
    return this.heap.length === 0 ? Infinity : this.heap[0]!.time
  }

  /** Removes and returns the earliest timer if it is due at `watermark` (time ≤ watermark). */
  popDue(watermark: number): Timer | undefined {
    const heap = this.heap
    if (heap.length === 0 || heap[0]!.time > watermark) return undefined
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      let i = 0
      const n = heap.length
      for (;;) {
        const l = 2 * i + 1, r = l + 1
        let smallest = i
        let candidate = last
        if (l < n && before(heap[l]!, candidate)) { smallest = l; candidate = heap[l]! }
        if (r < n && before(heap[r]!, candidate)) { smallest = r; candidate = heap[r]! }
        if (smallest === i) break
        heap[i] = heap[smallest]!
        i = smallest
      }
      heap[i] = last
    }
    this.registered.delete(id(top))
    return top
  }
}
