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
  private pendingHead = 0
  private remainder = ""
  private eof = false
  private lineNo = 0
  private readonly buffer = Buffer.allocUnsafe(CHUNK_BYTES)
  private readonly decoder = new TextDecoder("utf-8")

  constructor(readonly file: ReplayFile) {}

  /** Up to `max` messages of the file; empty when the file is done. */
  async next(max: number): Promise<Array<Envelope>> {
    if (this.handle === undefined && !this.eof) this.handle = await fs.open(this.file.path, "r")
    while (this.pending.length - this.pendingHead < max && !this.eof) await this.fill()
    const { topic, partition = 0 } = this.file
    const n = Math.min(max, this.pending.length - this.pendingHead)
    const out: Array<Envelope> = new Array(n)
    for (let i = 0; i < n; i++) {
      const raw = this.pending[this.pendingHead++]!
      const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw
      const tab = text.indexOf("\t")
      out[i] = tab < 0
        ? { topic, partition, offset: ++this.lineNo, key: null, value: text }
        : { topic, partition, offset: ++this.lineNo, key: text.slice(0, tab), value: text.slice(tab + 1) }
    }
    // drop what was handed out: the array would otherwise keep every line of the file (the
    // lines slice the chunks they were read in, so memory would grow with the file)
    this.pending = this.pending.slice(this.pendingHead)
    this.pendingHead = 0
    return out
  }

  private async fill(): Promise<void> {
    const { bytesRead } = await this.handle!.read(this.buffer, 0, CHUNK_BYTES, null)
    if (bytesRead === 0) {
      this.eof = true
      const rest = this.remainder + this.decoder.decode()
      // a final newline ends the last line; it does not start an empty message
      if (rest !== "") this.pending.push(rest)
      this.remainder = ""
      await this.close()
      return
    }
    const text = this.remainder + this.decoder.decode(this.buffer.subarray(0, bytesRead), { stream: true })
    const lines = text.split("\n")
    this.remainder = lines.pop()!
    for (const l of lines) this.pending.push(l)
  }

  async close(): Promise<void> {
    const h = this.handle
    this.handle = undefined
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
