/** bytes_per_held_click and peak_rss_mb: heldClicksWorker.ts in a process of its own. */
import { forkChild, log, mib } from "./Common.ts"
import type { HeldClicksConfig } from "./heldClicksWorker.ts"

export interface HeldClicks {
  readonly bytes_per_held_click: number
  readonly peak_rss_mb: number
  readonly clicks: number
  readonly users: number
  readonly heap_bytes: number
  readonly forced_gc: boolean
}

export const measureHeldClicks = async (config: HeldClicksConfig): Promise<HeldClicks> => {
  const child = forkChild("heldClicksWorker.js", config)
  try {
    const r = await child.done
    const result = {
      bytes_per_held_click: Math.round(r["bytesPerHeldClick"] as number),
      peak_rss_mb: mib(r["peakRssBytes"] as number),
      clicks: r["held"] as number,
      users: r["users"] as number,
      heap_bytes: (r["after"] as number) - (r["before"] as number),
      forced_gc: r["forcedGc"] as boolean
    }
    if (!result.forced_gc) throw new Error("the held-clicks process ran without --expose-gc")
    log(`held clicks: ${result.bytes_per_held_click} bytes each, peak RSS ${result.peak_rss_mb} MiB with ${result.clicks} held`)
    return result
  } finally {
    if (child.child.exitCode === null) child.child.kill("SIGKILL")
  }
}
