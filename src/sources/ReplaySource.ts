/**
 * Replays files as `kcat -C -K'\t'` writes them: one message a line, `key<TAB>value`, or a
 * bare value when the line has no TAB. Each file is one partition of its topic and the offset
 * of a message is its line number (from 1), so an ingest error names the line to look at.
 * Files are read in chunks on demand, so memory does not depend on their size.
 */
import { Effect } from "effect"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import type { BoundedSource, End, Envelope, Records } from "../engine/Source.ts"
import { SourceError } from "./SourceError.ts"

export interface ReplayFile {
  readonly topic: string
  readonly path: string
  /** partition number for this file (default 0) */
  readonly partition?: number
}

const CHUNK_BYTES = 1 << 20
/** tuned by measurement: larger pulls keep more decoded events alive across collections */
const LINES_PER_PULL = 1_024

class LineReader {
  private handle: fs.FileHandle | undefined
  /** lines read and not yet handed out, from `pendingHead` on */
  private pending: Array<string> = []
  /**
   * per pending line: the chunk it was read from when that chunk's text has one character a
   * byte (so a line's characters index its bytes, handed on for the taps), else undefined
   */
  private pendingChunk: Array<Buffer | undefined> = []
  /** per pending line: where it starts in its chunk */
  private pendingStart: Array<number> = []
  private pendingHead = 0
  private eof = false
  private lineNo = 0
  /** bytes read after the last newline, waiting for the rest of their line */
  private carry: Buffer = Buffer.alloc(0)
  private atStart = true

  constructor(readonly file: ReplayFile) {}

  /** Up to `max` messages of the file; empty when the file is done. */
  async next(max: number): Promise<Array<Envelope>> {
    if (this.handle === undefined && !this.eof) this.handle = await fs.open(this.file.path, "r")
    while (this.pending.length - this.pendingHead < max && !this.eof) await this.fill()
    const { topic, partition = 0 } = this.file
    const n = Math.min(max, this.pending.length - this.pendingHead)
    const out: Array<Envelope> = new Array(n)
    for (let i = 0; i < n; i++) {
      const h = this.pendingHead++
      const raw = this.pending[h]!
      const chunk = this.pendingChunk[h]
      const at = this.pendingStart[h]!
      const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw
      const tab = text.indexOf("\t")
      out[i] = tab < 0
        ? { topic, partition, offset: ++this.lineNo, key: null, value: text, bytes: chunk?.subarray(at, at + text.length) }
        : { topic, partition, offset: ++this.lineNo, key: text.slice(0, tab), value: text.slice(tab + 1), bytes: chunk?.subarray(at + tab + 1, at + text.length) }
    }
    // drop what was handed out: the array would otherwise keep every line of the file (the
    // lines slice the chunks they were read in, so memory would grow with the file)
    this.pending = this.pending.slice(this.pendingHead)
    this.pendingChunk = this.pendingChunk.slice(this.pendingHead)
    this.pendingStart = this.pendingStart.slice(this.pendingHead)
    this.pendingHead = 0
    return out
  }

  /**
   * The next read, started as soon as the one before is split into lines, so it runs while
   * they are handed out (a read waited for costs the engine's thread the read's latency,
   * ~300 times per 1 M events, behind whatever else the thread pool and the cores are doing).
   */
  private ahead: Promise<{ readonly buffer: Buffer; readonly carried: number; readonly bytesRead: number }> | undefined

  /** Reads the next chunk behind what is carried over (one read at a time: the file's position moves with it). */
  private readAhead(): void {
    const carried = this.carry.length
    const buffer = Buffer.allocUnsafe(carried + CHUNK_BYTES)
    this.carry.copy(buffer, 0)
    const read = this.handle!.read(buffer, carried, CHUNK_BYTES, null).then(({ bytesRead }) => ({ buffer, carried, bytesRead }))
    read.catch(() => {}) // its failure is reported by the fill that waits for it, if any
    this.ahead = read
  }

  /**
   * Takes a chunk and decodes it up to its last newline: a newline byte is never inside a
   * UTF-8 sequence, so the text is cut at whole characters and the bytes after it wait for
   * the next chunk (no streaming decoder, no string joined across chunks).
   */
  private async fill(): Promise<void> {
    if (this.ahead === undefined) this.readAhead()
    const { buffer, carried, bytesRead } = await this.ahead!
    this.ahead = undefined
    const end = carried + bytesRead
    // a byte-order mark starts no message (TextDecoder dropped it too)
    const start = this.atStart && end >= 3 && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf ? 3 : 0
    this.atStart = false
    if (bytesRead === 0) {
      this.eof = true
      // a final newline ends the last line; it does not start an empty message
      if (end > start) this.push(buffer, start, end)
      this.carry = Buffer.alloc(0)
      await this.close()
      return
    }
    const cut = buffer.lastIndexOf(0x0a, end - 1)
    if (cut < start) {
      this.carry = buffer.subarray(start, end) // a line longer than a chunk: read on
    } else {
      this.push(buffer, start, cut)
      this.carry = Buffer.from(buffer.subarray(cut + 1, end))
    }
    this.readAhead()
  }

  /** The lines of `chunk[start, end)` (whole UTF-8 characters), in order. */
  private push(chunk: Buffer, start: number, end: number): void {
    const text = chunk.toString("utf8", start, end)
    const lines = text.split("\n")
    // as many characters as bytes: every character is one byte (a UTF-8 sequence of n bytes
    // decodes to fewer than n UTF-16 units, a stray byte to one U+FFFD, which the taps check)
    const bytes = text.length === end - start ? chunk : undefined
    let at = start
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!
      this.pending.push(line)
      this.pendingChunk.push(bytes)
      this.pendingStart.push(at)
      at += line.length + 1
    }
  }

  async close(): Promise<void> {
    const h = this.handle
    this.handle = undefined
    const read = this.ahead
    this.ahead = undefined
    if (read !== undefined) await read.catch(() => {}) // a read in flight finishes before its file is closed
    if (h !== undefined) await h.close()
  }
}

export const make = (files: ReadonlyArray<ReplayFile>): Effect.Effect<BoundedSource<SourceError>, never, import("effect").Scope.Scope> =>
  Effect.gen(function*() {
    const readers = files.map((f) => new LineReader(f))
    yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all(readers.map((r) => r.close()))))
    const pull = (index: number): Effect.Effect<Records | End, SourceError> => {
      const reader = readers[index]!
      const { topic, partition = 0, path } = reader.file
      return Effect.tryPromise({
        try: () => reader.next(LINES_PER_PULL),
        catch: (cause) => new SourceError({ reason: "FileUnreadable", message: `cannot read ${path}: ${(cause as Error).message}`, cause })
      }).pipe(Effect.map((records): Records | End =>
        records.length === 0 ? { _tag: "End", topic, partition } : { _tag: "Records", topic, partition, records, backlog: true }
      ))
    }
    return {
      _tag: "Bounded",
      name: "replay",
      partitions: files.map((f) => ({ topic: f.topic, partition: f.partition ?? 0 })),
      origins: files.map((f) => `file:${nodePath.resolve(f.path)}`),
      pull
    }
  })
