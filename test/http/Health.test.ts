/**
 * Readiness's progress check: a process that is alive but stuck (messages waiting and nothing
 * read, or read and nothing written, for longer than STUCK_AFTER_MS) is not ready; one that
 * is merely quiet (nothing waiting) is.
 */
import { describe, expect, it } from "vitest"
import { EngineStats } from "../../src/engine/EngineStats.ts"
import { progress } from "../../src/http/Health.ts"

const T = 1_000_000
const read = (stats: EngineStats, at: number, offset: number, end: number) =>
  stats.recordRead({ _tag: "Records", topic: "clicks", partition: 0, backlog: end > offset + 1, highWatermark: end,
    records: offset < 0 ? [] : [{ topic: "clicks", partition: 0, offset, key: null, value: "{}" }] }, at)

describe("readiness: progress", () => {
  it("quiet (nothing waiting) is ready however long it lasts", () => {
    const stats = new EngineStats()
    stats.partition({ topic: "clicks", partition: 0 })
    read(stats, T, 9, 10)
    stats.primary.recordSinkWrite(1, 5, T + 100)
    expect(progress(stats, 60_000, T, T + 3_600_000)).toEqual({ ok: true })
  })

  it("messages waiting and nothing read for longer than the setting: stuck", () => {
    const stats = new EngineStats()
    stats.partition({ topic: "clicks", partition: 0 })
    read(stats, T, 0, 500)
    stats.primary.recordSinkWrite(1, 5, T + 100)
    expect(progress(stats, 60_000, T, T + 59_000).ok).toBe(true)
    expect(progress(stats, 60_000, T, T + 61_000)).toEqual({ ok: false, detail: "stuck: 499 messages waiting, nothing read for 61 s" })
  })

  it("an empty fetch that shows a backlog, and nothing ever read: stuck after the setting from the start", () => {
    const stats = new EngineStats()
    stats.partition({ topic: "clicks", partition: 0 })
    read(stats, T, -1, 50)
    expect(progress(stats, 60_000, T, T + 61_000)).toEqual({ ok: false, detail: "stuck: 50 messages waiting, nothing read for 61 s" })
  })

  it("reading on but nothing written for longer than the setting: stuck", () => {
    const stats = new EngineStats()
    stats.partition({ topic: "clicks", partition: 0 })
    stats.primary.recordSinkWrite(1, 5, T)
    for (let i = 1; i <= 70; i++) read(stats, T + i * 1_000, i, i + 1)
    expect(progress(stats, 60_000, T, T + 70_500)).toEqual({ ok: false, detail: "stuck: messages read but nothing written for 71 s" })
    stats.primary.recordSinkWrite(1, 5, T + 70_600)
    expect(progress(stats, 60_000, T, T + 70_700)).toEqual({ ok: true })
  })
})
