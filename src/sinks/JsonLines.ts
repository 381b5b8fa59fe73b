/**
 * Rows waiting for the lake, kept as the bytes DuckDB will read: one JSON record a line,
 * `{"o":offset,"t":time,"v":<the event's JSON>}`, appended into large off-heap buffers.
 *
 * Why bytes and not row objects: a lake buffer holds up to `LAKE_BUFFER_ROWS` events for up
 * to five minutes. Held as objects (and the message strings they point at) they survive the
 * young generation and are copied and marked by every collection until the flush; measured,
 * that garbage-collector work was most of the tap's cost. As bytes they cost one UTF-8 copy
 * each, the row is garbage at once, and a flush hands the chunks to the file as they are.
 */

// chunks grow from FIRST to CHUNK bytes, so the many small buckets of late events stay small
const FIRST = 1 << 14
const CHUNK = 1 << 20
const EMPTY = Buffer.alloc(0)

// Chunks of every size are reused after their flush, not only full ones: every segment starts
// with small chunks, and a task hands on segments every flush. External memory counts towards
// V8's heap limits, so the pool is bounded (POOL_BYTES). The sizes are the powers of two from
// FIRST to CHUNK; one free list per size.
const POOL_BYTES = 96 * CHUNK
const pools: Array<Array<Buffer>> = []
let pooledBytes = 0
const sizeClass = (size: number): number => 31 - Math.clz32(size)
const pooledSize = (size: number): number => size <= FIRST ? FIRST : 2 ** Math.ceil(Math.log2(size))

/**
 * Chunks are shared memory: handed to the lake's DuckDB thread, they are shared, not copied
 * (measured: copying them into the message took the engine's thread 0.4-0.7 s per 1 M events).
 * The thread only reads them, and only until the write it was given is answered.
 */
const shared = (size: number): Buffer => Buffer.from(new SharedArrayBuffer(size))

const allocate = (atLeast: number): Buffer => {
  if (atLeast > CHUNK) return shared(atLeast) // a message bigger than a chunk: its own, not pooled
  const size = pooledSize(atLeast)
  const chunk = pools[sizeClass(size)]?.pop()
  if (chunk === undefined) return shared(size)
  pooledBytes -= size
  return chunk
}

const giveBack = (chunk: Buffer): void => {
  if (chunk.length > CHUNK || pooledBytes + chunk.length > POOL_BYTES) return // left to the collector
  const c = sizeClass(chunk.length)
  ;(pools[c] ??= []).push(chunk)
  pooledBytes += chunk.length
}

/** "00" to "99": two digits a step halve the divisions (measured: ~80 → ~55 ns for an offset and a time) */
const PAIRS = Buffer.from(Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0")).join(""), "latin1")

/** The last `digits` decimal digits of `n` (0 <= n < 2^31: int32 arithmetic) at `at`, zeros in front; returns the position after them. */
const writeDigits = (t: Buffer, at: number, n: number, digits: number): number => {
  const end = at + digits
  let i = end
  while (i - at >= 2) {
    const q = (n / 100) | 0
    const pair = (n - q * 100) << 1
    t[--i] = PAIRS[pair + 1]!
    t[--i] = PAIRS[pair]!
    n = q
  }
  if (i > at) t[--i] = 0x30 + n
  return end
}

const digitCount = (n: number): number =>
  n < 10 ? 1 : n < 100 ? 2 : n < 1e3 ? 3 : n < 1e4 ? 4 : n < 1e5 ? 5 : n < 1e6 ? 6 : n < 1e7 ? 7 : n < 1e8 ? 8 : n < 1e9 ? 9 : 10

/** `n`'s decimal digits (0 <= n < 2^31). */
const writeSmall = (t: Buffer, at: number, n: number): number => writeDigits(t, at, n, digitCount(n))

/**
 * An integer's decimal digits at `at`; returns the position after them. Digits are computed
 * with int32 arithmetic (a millisecond time in two halves below 10^8): floating-point
 * division per digit made this a third of the tap's cost (measured: 99 ns for a time, 14
 * ns for an offset).
 */
const writeInteger = (t: Buffer, at: number, n: number): number => {
  if ((n | 0) === n && n >= 0) return writeSmall(t, at, n)
  if (n >= 0 && n < 1e16 && Number.isInteger(n)) {
    const high = Math.floor(n / 1e8)
    return writeDigits(t, writeSmall(t, at, high), n - high * 1e8, 8)
  }
  return at + t.write(String(n), at, "latin1")
}

export class JsonLines {
  private readonly sealed: Array<Buffer> = []
  /** the chunks this buffer took from the pool (or allocated), given back by `release` */
  private readonly owned: Array<Buffer> = []
  private tail: Buffer = EMPTY
  private used = 0
  rows = 0
  /** some event's JSON spans lines (pretty-printed): the file must be read as a free sequence of values */
  multiline = false
  /** the offset of the first row (rows are appended in offset order) */
  firstOffset = -1

  /**
   * A row: `json` written as it is, from `bytes` when given (its UTF-8 encoding, as read: a
   * copy, ~4 times cheaper than encoding the string again).
   */
  append(offset: number, ts: number, json: string, bytes?: Uint8Array): void {
    // UTF-16 code units to UTF-8 bytes: at most 3 bytes each; the record's frame under 64
    const size = (bytes === undefined ? json.length * 3 : bytes.length) + 64
    if (this.used + size > this.tail.length) this.seal(size)
    // the frame is written byte by byte and the JSON straight from its bytes or its string:
    // no new string per row (a template here was a third of the tap's garbage)
    const t = this.tail
    let at = this.used
    t[at++] = 0x7b; t[at++] = 0x22; t[at++] = 0x6f; t[at++] = 0x22; t[at++] = 0x3a // {"o":
    at = writeInteger(t, at, offset)
    t[at++] = 0x2c; t[at++] = 0x22; t[at++] = 0x74; t[at++] = 0x22; t[at++] = 0x3a // ,"t":
    at = writeInteger(t, at, ts)
    t[at++] = 0x2c; t[at++] = 0x22; t[at++] = 0x76; t[at++] = 0x22; t[at++] = 0x3a // ,"v":
    if (bytes === undefined) at += t.write(json, at)
    else {
      t.set(bytes, at)
      at += bytes.length
    }
    t[at++] = 0x7d; t[at++] = 0x0a // }\n
    this.used = at
    if (this.rows === 0) this.firstOffset = offset
    this.rows++
    if (!this.multiline && json.includes("\n")) this.multiline = true
  }

  private seal(atLeast: number): void {
    if (this.used > 0) this.sealed.push(this.tail.subarray(0, this.used))
    this.tail = allocate(Math.max(Math.min(CHUNK, this.tail.length * 2), atLeast))
    this.owned.push(this.tail)
    this.used = 0
  }

  /** The bytes so far, in order (views, not copies). */
  chunks(): ReadonlyArray<Buffer> {
    return this.used === 0 ? this.sealed : [...this.sealed, this.tail.subarray(0, this.used)]
  }

  get bytes(): number {
    let n = this.used
    for (const c of this.sealed) n += c.length
    return n
  }

  /** The rows are in a file: the chunks go back to the pool (the buffer must not be used again). */
  release(): void {
    for (const c of this.owned) giveBack(c)
    this.owned.length = 0
    this.sealed.length = 0
    this.tail = EMPTY
    this.used = 0
  }

  /** Appends `next`'s rows (all after this buffer's) and takes its chunks; `next` must not be used again. */
  absorb(next: JsonLines): void {
    if (next.rows === 0) return
    if (this.used > 0) this.sealed.push(this.tail.subarray(0, this.used))
    this.tail = EMPTY
    this.used = 0
    for (const c of next.chunks()) this.sealed.push(c)
    for (const c of next.owned) this.owned.push(c)
    if (this.rows === 0) this.firstOffset = next.firstOffset
    this.rows += next.rows
    this.multiline ||= next.multiline
    next.sealed.length = 0
    next.owned.length = 0
    next.tail = EMPTY
    next.used = 0
    next.rows = 0
  }

  /** `a` and `b` (of disjoint offset ranges, in any order) as one, in offset order; it owns their chunks (`a` and `b` must not be used again). */
  static merge(a: JsonLines, b: JsonLines): JsonLines {
    const [first, second] = a.firstOffset <= b.firstOffset ? [a, b] : [b, a]
    const out = new JsonLines()
    // absorbing empties both: a chunk has one owner, so it goes back to the pool once
    out.absorb(first)
    out.absorb(second)
    return out
  }
}
