/**
 * The soak's chart: an SVG drawn by hand from the samples (no charting dependency), and its
 * PNG, a screenshot of that SVG in Debian's chromium driven by playwright-core (the browser
 * the status-page test already uses). Two panels on one time axis: the daemon's RSS and heap
 * (MB, from 0, with the post-warm-up least-squares line of each and its slope), then events/s
 * with the clicks held in state on a second axis. The warm-up is shaded in both.
 */
import * as fs from "node:fs"
import type { Fit, Sample } from "./Soak.ts"

/** What the chart says about the run, besides the samples. */
export interface ChartInfo {
  readonly title: string
  /** one or two lines under the title */
  readonly subtitle: ReadonlyArray<string>
  /** the warm-up ends here (seconds since the daemon was ready) */
  readonly warmupEndS: number
  readonly rssFit: Fit | undefined
  /** through the heap's troughs (its floor after collections), or through every sample */
  readonly heapFit: Fit | undefined
  readonly heapJudgedOn: "floor" | "samples"
}

const WIDTH = 1200
const HEIGHT = 820
const LEFT = 96
const RIGHT = WIDTH - 96
const MEMORY = { top: 130, bottom: 474 }
const RATE = { top: 566, bottom: 746 }
const COLORS = { rss: "#1f5fbf", heap: "#d9730d", rate: "#2e8540", clicks: "#7a4fb5", fit: "#222", grid: "#e4e4e4", axis: "#555", warmup: "#f1f1f1" }

const escape = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** A round step (1, 2 or 5 × 10^k) giving about `count` intervals over `span`. */
const niceStep = (span: number, count: number): number => {
  if (!(span > 0)) return 1
  const raw = span / count
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const f = raw / magnitude
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude
}

/** Ticks from 0 to just above `max`: the axis's top is the last tick. */
const ticksFrom0 = (max: number, count: number): ReadonlyArray<number> => {
  const step = niceStep(max > 0 ? max : 1, count)
  const top = Math.max(step, Math.ceil((max * 1.04) / step) * step)
  const out: Array<number> = []
  for (let v = 0; v <= top + step / 1e6; v += step) out.push(Math.round(v / step) * step)
  return out
}

const decimals = (step: number): number => Math.max(0, -Math.floor(Math.log10(step) + 1e-9))
const label = (v: number, step: number): string =>
  v.toLocaleString("en-US", { minimumFractionDigits: decimals(step), maximumFractionDigits: decimals(step) })
const signed = (v: number): string =>
  `${v >= 0 ? "+" : "−"}${Math.abs(v).toLocaleString("en-US", { maximumFractionDigits: Math.abs(v) >= 100 ? 0 : 1, minimumFractionDigits: Math.abs(v) >= 100 ? 0 : 1 })}`

const slopeText = (f: Fit): string =>
  `${signed(f.slopePerHour)}${Number.isFinite(f.stderrPerHour) ? ` ± ${Math.round(f.stderrPerHour).toLocaleString("en-US")}` : ""} MB/h`

const text = (x: number, y: number, s: string, attrs = ""): string =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escape(s)}</text>`

const polyline = (points: ReadonlyArray<readonly [number, number]>, color: string, width: number, extra = ""): string =>
  points.length === 0 ? "" : `<polyline fill="none" stroke="${color}" stroke-width="${width}" stroke-linejoin="round" ${extra} points="${points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ")}"/>`

const dots = (points: ReadonlyArray<readonly [number, number]>, color: string): string =>
  points.length > 80 ? "" : points.map(([x, y]) => `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="2.6" fill="${color}"/>`).join("")

/** The chart as a standalone SVG document. */
export const svg = (samples: ReadonlyArray<Sample>, info: ChartInfo): string => {
  const lastS = samples.length === 0 ? 60 : Math.max(samples[samples.length - 1]!.elapsedS, 1)
  const inMinutes = lastS >= 120
  const xUnit = inMinutes ? 60 : 1
  const xTicks = ticksFrom0(lastS / xUnit, 10).filter((t) => t * xUnit <= lastS * 1.0001)
  const xMax = lastS
  const x = (s: number) => LEFT + (s / xMax) * (RIGHT - LEFT)
  const xStep = xTicks.length > 1 ? xTicks[1]! - xTicks[0]! : 1

  const memMax = Math.max(1, ...samples.map((s) => Math.max(s.rssMb, s.heapUsedMb)))
  const memTicks = ticksFrom0(memMax, 6)
  const memTop = memTicks[memTicks.length - 1]!
  const memY = (v: number) => MEMORY.bottom - (v / memTop) * (MEMORY.bottom - MEMORY.top)

  const rates = samples.flatMap((s) => s.eventsPerS === undefined ? [] : [s.eventsPerS])
  const rateTicks = ticksFrom0(Math.max(1, ...rates), 4)
  const rateTop = rateTicks[rateTicks.length - 1]!
  const rateY = (v: number) => RATE.bottom - (v / rateTop) * (RATE.bottom - RATE.top)
  const clicksMax = Math.max(1, ...samples.map((s) => s.clicksHeld))
  // the clicks axis has as many intervals as the events/s axis, so both share its grid lines
  const clicksStep = niceStep(clicksMax * 1.04, rateTicks.length - 1)
  const clicksTop = Math.max(clicksStep * (rateTicks.length - 1), Math.ceil(clicksMax * 1.04 / clicksStep) * clicksStep)
  const clicksTicks = rateTicks.map((_, i) => (clicksTop / (rateTicks.length - 1)) * i)
  const clicksY = (v: number) => RATE.bottom - (v / clicksTop) * (RATE.bottom - RATE.top)

  const out: Array<string> = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="13" fill="#222">`)
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`)
  out.push(text(LEFT, 38, info.title, `font-size="21" font-weight="bold"`))
  info.subtitle.slice(0, 2).forEach((line, i) => out.push(text(LEFT, 62 + i * 18, line, `font-size="13" fill="#555"`)))

  const panel = (top: number, bottom: number, warmupLabel: boolean) => {
    const w = Math.min(info.warmupEndS, xMax)
    if (w > 0) {
      out.push(`<rect x="${LEFT}" y="${top}" width="${(x(w) - LEFT).toFixed(1)}" height="${bottom - top}" fill="${COLORS.warmup}"/>`)
      if (warmupLabel) out.push(text((LEFT + x(w)) / 2, top + 16, "warm-up", `text-anchor="middle" fill="#888" font-size="12"`))
    }
    for (const t of xTicks) {
      out.push(`<line x1="${x(t * xUnit).toFixed(1)}" x2="${x(t * xUnit).toFixed(1)}" y1="${top}" y2="${bottom}" stroke="${COLORS.grid}"/>`)
      out.push(text(x(t * xUnit), bottom + 18, label(t, xStep), `text-anchor="middle" fill="${COLORS.axis}"`))
    }
    out.push(`<rect x="${LEFT}" y="${top}" width="${RIGHT - LEFT}" height="${bottom - top}" fill="none" stroke="#999"/>`)
  }
  const yAxis = (ticks: ReadonlyArray<number>, y: (v: number) => number, side: "left" | "right", color: string, grid: boolean) => {
    const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1
    for (const t of ticks) {
      if (grid && t > 0) out.push(`<line x1="${LEFT}" x2="${RIGHT}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="${COLORS.grid}"/>`)
      out.push(side === "left"
        ? text(LEFT - 8, y(t) + 4.5, label(t, step), `text-anchor="end" fill="${color}"`)
        : text(RIGHT + 8, y(t) + 4.5, label(t, step), `text-anchor="start" fill="${color}"`))
    }
  }
  const axisTitle = (s: string, top: number, bottom: number, side: "left" | "right", color: string) => {
    const cx = side === "left" ? 26 : WIDTH - 22
    const cy = (top + bottom) / 2
    out.push(text(cx, cy, s, `text-anchor="middle" fill="${color}" transform="rotate(${side === "left" ? -90 : 90} ${cx} ${cy})"`))
  }
  const legend = (y: number, items: ReadonlyArray<{ readonly label: string; readonly color: string; readonly dash?: boolean }>) => {
    let lx = LEFT
    for (const item of items) {
      out.push(`<line x1="${lx}" x2="${lx + 26}" y1="${y - 4}" y2="${y - 4}" stroke="${item.color}" stroke-width="3"${item.dash === true ? ` stroke-dasharray="6 4" stroke-width="1.6"` : ""}/>`)
      out.push(text(lx + 32, y, item.label))
      lx += 32 + item.label.length * 7.2 + 26
    }
  }

  // panel 1: memory
  legend(MEMORY.top - 12, [
    { label: `RSS${info.rssFit ? ` (after warm-up ${slopeText(info.rssFit)})` : ""}`, color: COLORS.rss },
    { label: `heap used${info.heapFit ? ` (${info.heapJudgedOn === "floor" ? "its floor" : "after warm-up"} ${slopeText(info.heapFit)})` : ""}`, color: COLORS.heap },
    { label: `least-squares lines${info.heapJudgedOn === "floor" ? " (heap: through its troughs)" : ""}`, color: COLORS.fit, dash: true }
  ])
  panel(MEMORY.top, MEMORY.bottom, true)
  yAxis(memTicks, memY, "left", COLORS.axis, true)
  axisTitle("memory (MB)", MEMORY.top, MEMORY.bottom, "left", COLORS.axis)
  const rssPoints = samples.map((s) => [x(s.elapsedS), memY(s.rssMb)] as const)
  const heapPoints = samples.map((s) => [x(s.elapsedS), memY(s.heapUsedMb)] as const)
  out.push(polyline(heapPoints, COLORS.heap, 2.2), dots(heapPoints, COLORS.heap))
  out.push(polyline(rssPoints, COLORS.rss, 2.6), dots(rssPoints, COLORS.rss))
  for (const fit of [info.rssFit, info.heapFit]) {
    if (fit === undefined) continue
    const at = (s: number) => [x(s), memY(fit.intercept + fit.slopePerHour * (s / 3600))] as const
    out.push(polyline([at(fit.fromS), at(fit.toS)], COLORS.fit, 1.6, `stroke-dasharray="6 4"`))
  }

  // panel 2: events/s and clicks held
  legend(RATE.top - 12, [
    { label: "events/s (between samples)", color: COLORS.rate },
    { label: "clicks held in state (right axis)", color: COLORS.clicks }
  ])
  panel(RATE.top, RATE.bottom, false)
  yAxis(rateTicks, rateY, "left", COLORS.rate, true)
  yAxis(clicksTicks, clicksY, "right", COLORS.clicks, false)
  axisTitle("events/s", RATE.top, RATE.bottom, "left", COLORS.rate)
  axisTitle("clicks held", RATE.top, RATE.bottom, "right", COLORS.clicks)
  const clickPoints = samples.map((s) => [x(s.elapsedS), clicksY(s.clicksHeld)] as const)
  const ratePoints = samples.flatMap((s) => s.eventsPerS === undefined ? [] : [[x(s.elapsedS), rateY(s.eventsPerS)] as const])
  out.push(polyline(clickPoints, COLORS.clicks, 2), dots(clickPoints, COLORS.clicks))
  out.push(polyline(ratePoints, COLORS.rate, 2.2), dots(ratePoints, COLORS.rate))
  out.push(text((LEFT + RIGHT) / 2, RATE.bottom + 44, `${inMinutes ? "minutes" : "seconds"} since the daemon was ready`, `text-anchor="middle" fill="${COLORS.axis}"`))
  out.push(`</svg>`)
  return out.join("\n") + "\n"
}

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]

/** The SVG at `svgPath` screenshotted to `pngPath` by chromium (`CHROMIUM_PATH`, default /usr/bin/chromium). */
export const png = async (svgPath: string, pngPath: string): Promise<void> => {
  const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
  if (!fs.existsSync(executablePath)) throw new Error(`no chromium at ${executablePath} (apt-get install chromium, or set CHROMIUM_PATH)`)
  // a development dependency: loaded only when a chart is drawn
  const { chromium } = await import("playwright-core")
  const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS })
  try {
    const page = await browser.newPage({ viewport: { width: WIDTH, height: HEIGHT }, deviceScaleFactor: 1 })
    await page.setContent(`<!doctype html><html><body style="margin:0;background:#fff">${fs.readFileSync(svgPath, "utf8")}</body></html>`)
    await page.screenshot({ path: pngPath, clip: { x: 0, y: 0, width: WIDTH, height: HEIGHT } })
  } finally {
    await browser.close()
  }
}
