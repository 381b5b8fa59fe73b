/**
 * Restart offsets: where a partition must be re-read from after a restart so that every
 * event still needed in keyed state comes back. A partition's offsets are checkpointed in
 * blocks of `BLOCK` offsets with the largest event time in each; the restart offset for a
 * job that keeps inputs `retainMs` past their time is the first block that may still hold
 * one (max event time ≥ watermark − retainMs). Re-reading is by block, so a restart re-reads
 * at most `BLOCK` offsets more than it needs.
 */

/** Offsets per checkpoint: the granularity of re-reading after a restart. */
export const BLOCK = 256

interface Block {
  readonly first: number
  maxTs: number
  count: number
}

export class OffsetBlocks {
  private blocks: Array<Block> = []
  private head = 0

  /** An event at `offset` with event time `ts` was read (offsets arrive in order). */
  record(offset: number, ts: number): void {
    const last = this.blocks[this.blocks.length - 1]
    if (last === undefined || this.blocks.length === this.head || last.count >= BLOCK) {
      this.blocks.push({ first: offset, maxTs: ts, count: 1 })
    } else {
      last.count++
      if (ts > last.maxTs) last.maxTs = ts
    }
  }

  /**
   * The oldest offset whose event may have time ≥ `cutoff`, or `next` when there is none (or
   * when that is older).
   */
  restartOffset(cutoff: number, next: number): number {
    const blocks = this.blocks
    for (let i = this.head; i < blocks.length; i++) {
      if (blocks[i]!.maxTs >= cutoff) return Math.min(blocks[i]!.first, next)
    }
    return next
  }

  /** Forgets the leading blocks that no job needs any more (all events before `cutoff`). */
  prune(cutoff: number): void {
    const blocks = this.blocks
    while (this.head < blocks.length - 1 && blocks[this.head]!.maxTs < cutoff) this.head++
    if (this.head > 1024) {
      this.blocks = blocks.slice(this.head)
      this.head = 0
    }
  }

  get size(): number {
    return this.blocks.length - this.head
  }
}
