/**
 * Event-time timers: a binary min-heap ordered by (time, key, namespace). Advancing the
 * watermark pops exactly the due timers, so no key is ever scanned to find work.
 *
 * Registering the same timer twice before it fires changes nothing: the copies sit next to
 * each other in the heap's order, so `popDue` skips a timer equal to the one it just returned
 * within one advance (popping until nothing is due). That costs no lookup at registration; a
 * set of timer ids, built as strings, cost more than the heap.
 */

export interface Timer {
  readonly time: number
  readonly key: string
  readonly namespace: number
}

const before = (a: Timer, b: Timer): boolean =>
  a.time !== b.time ? a.time < b.time : a.key !== b.key ? a.key < b.key : a.namespace < b.namespace

const same = (a: Timer, b: Timer): boolean => a.time === b.time && a.namespace === b.namespace && a.key === b.key

export class TimerQueue {
  private readonly heap: Array<Timer> = []
  private last: Timer | undefined

  /** Timers registered and not fired yet (a timer registered twice counts twice). */
  get size(): number {
    return this.heap.length
  }

  register(time: number, key: string, namespace: number): void {
    const timer: Timer = { time, key, namespace }
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
    for (;;) {
      const top = this.pop(watermark)
      if (top === undefined) {
        this.last = undefined // the next advance fires a timer registered again after this one
        return undefined
      }
      const last = this.last
      this.last = top
      // a copy of the timer just fired (registered twice, or again before it fired) fires once
      if (last === undefined || !same(top, last)) return top
    }
  }

  private pop(watermark: number): Timer | undefined {
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
    return top
  }
}
