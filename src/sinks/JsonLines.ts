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

// Full chunks are reused after their flush: allocating tens of MB of external memory per
// flush made V8 collect more often (external memory counts towards its heap limits).
const pool: Array<Buffer> = []
const POOLED = 96
const allocate = (size: number): Buffer => size === CHUNK ? pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK) : Buffer.allocUnsafeSlow(size)

/** A safe integer's decimal digits at `at`; returns the position after them. */
const writeInteger = (t: Buffer, at: number, n: number): number => {
  if (n < 0 || !Number.isSafeInteger(n)) return at + t.write(String(n), at, "latin1")
  let digits = 1
  for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++
  const end = at + digits
  for (let i = end - 1; i >= at; i--) {
    t[i] = 0x30 + (n % 10)
    n = Math.floor(n / 10)
  }
  return end
}

export class JsonLines {
  private readonly sealed: Array<Buffer> = []
  /** the full chunks this buffer took from the pool (or allocated), given back by `release` */
  private readonly owned: Array<Buffer> = []
  private tail: Buffer = EMPTY
  private used = 0
  rows = 0
  /** some event's JSON spans lines (pretty-printed): the file must be read as a free sequence of values */
  multiline = false
  /** the offset of the first row (rows are appended in offset order) */
  firstOffset = -1

  append(offset: number, ts: number, json: string): void {
    // UTF-16 code units to UTF-8 bytes: at most 3 bytes each; the record's frame under 64
    if (this.used + json.length * 3 + 64 > this.tail.length) this.seal(json.length * 3 + 64)
    // the frame is written byte by byte and the JSON straight from its string: no new
    // string per row (a template here was a third of the tap's garbage)
    const t = this.tail
    let at = this.used
    t[at++] = 0x7b; t[at++] = 0x22; t[at++] = 0x6f; t[at++] = 0x22; t[at++] = 0x3a // {"o":
    at = writeInteger(t, at, offset)
    t[at++] = 0x2c; t[at++] = 0x22; t[at++] = 0x74; t[at++] = 0x22; t[at++] = 0x3a // ,"t":
    at = writeInteger(t, at, ts)
    t[at++] = 0x2c; t[at++] = 0x22; t[at++] = 0x76; t[at++] = 0x22; t[at++] = 0x3a // ,"v":
    at += t.write(json, at)
    t[at++] = 0x7d; t[at++] = 0x0a // }\n
    this.used = at
    if (this.rows === 0) this.firstOffset = offset
    this.rows++
    if (!this.multiline && json.includes("\n")) this.multiline = true
  }

  private seal(atLeast: number): void {
    if (this.used > 0) this.sealed.push(this.tail.subarray(0, this.used))
    this.tail = allocate(Math.max(Math.min(CHUNK, Math.max(FIRST, this.tail.length * 2)), atLeast))
    if (this.tail.length === CHUNK) this.owned.push(this.tail)
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
    for (const c of this.owned) if (pool.length < POOLED) pool.push(c)
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

  /** `a` and `b` (of disjoint offset ranges, in any order) as one, in offset order; it owns their chunks. */
  static merge(a: JsonLines, b: JsonLines): JsonLines {
    const [first, second] = a.firstOffset <= b.firstOffset ? [a, b] : [b, a]
    const out = new JsonLines()
    out.sealed.push(...first.chunks(), ...second.chunks())
    out.owned.push(...first.owned, ...second.owned)
    out.rows = first.rows + second.rows
    out.multiline = first.multiline || second.multiline
    out.firstOffset = first.firstOffset
    return out
  }
}
