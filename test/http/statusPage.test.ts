/**
 * The status page in a real browser: Debian's chromium driven by playwright-core against the
 * daemon (`node dist/main.js`) on a fresh database. The watermark and the event counter on
 * the page must move, no banner may show while the engine runs, a frozen snapshot must turn
 * the page "stale" and a stopped daemon "disconnected". Leaves a screenshot in
 * `test-artifacts/status-page.png`.
 *
 * Without chromium the file is skipped on a laptop and fails under `CI=true`.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { createDatabase, dropDatabase, isCI, postgresAvailable, query } from "../support/TestDatabase.ts"
import { type Daemon, sleep, startDaemon, waitFor } from "./Daemon.ts"

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
  "--no-first-run", "--disable-component-update", "--disable-sync"
]
const artifacts = path.resolve(import.meta.dirname, "../../test-artifacts")

const postgres = await postgresAvailable()
const chromiumPresent = fs.existsSync(CHROMIUM)
// under CI a missing browser is a failure (the launch below fails), never a skip
const runs = postgres && (chromiumPresent || isCI)

const text = (page: Page, selector: string) => page.locator(selector).innerText()
const digits = (s: string) => Number(s.replace(/[^0-9]/g, ""))

describe.skipIf(!runs)("status page in chromium", () => {
  let db: { readonly url: string; readonly name: string }
  let daemon: Daemon
  let browser: Browser
  let page: Page
  const pageErrors: Array<string> = []

  beforeAll(async () => {
    if (!chromiumPresent) throw new Error(`chromium is required under CI=true but ${CHROMIUM} does not exist (apt-get install chromium)`)
    db = await createDatabase("insights_page")
    daemon = await startDaemon({ DATABASE_URL: db.url, GENERATOR_RATE: "200", WATERMARK_DELAY_MS: "1000", IDLE_TIMEOUT_MS: "2000" })
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
    page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`))
    page.on("console", (m) => { if (m.type() === "error") pageErrors.push(`console: ${m.text()}`) })
  })

  afterAll(async () => {
    await browser?.close()
    await daemon?.kill()
    if (db !== undefined) await dropDatabase(db.name)
  })

  it("shows a live job: the watermark and the event counter move, no banner; the business view from the rollup", async () => {
    // three rolled hours a few hours back (the daemon itself rolls at most the current hour meanwhile)
    const hourStart = Math.floor(Date.now() / 3_600_000) * 3_600_000
    for (const [ago, revenue] of [[5, "120.50"], [4, "80.00"], [3, "42.25"]] as const) {
      await query(db.url, `INSERT INTO shop.hourly_rollup VALUES ($1, 'source', 'PageTestSource', 7, 5, 9, $2, 10, now())`, [new Date(hourStart - ago * 3_600_000).toISOString(), revenue])
    }
    await page.goto(daemon.baseUrl + "/")
    await page.waitForSelector("body[data-connection=live]", { timeout: 10_000 })
    // the first watermark appears once every partition has had an event or gone idle
    await waitFor("a watermark on the page", async () => (await text(page, "#watermark")).match(/\d\d:\d\d:\d\d/) ? true : undefined, 45_000)
      .catch(async (e) => {
        const status = await daemon.get("/api/status").then((r) => r.text(), (err) => String(err))
        throw new Error(`${(e as Error).message}\n/api/status: ${status}\n--- daemon output ---\n${daemon.output()}`)
      })
    const watermark1 = await text(page, "#watermark")
    const events1 = await text(page, "#events-total")

    // watch for a few seconds: never a banner, never a disconnection
    for (let i = 0; i < 8; i++) {
      await sleep(500)
      assert.isFalse(await page.locator("#banner").isVisible(), `banner shown: ${await text(page, "#banner").catch(() => "")}`)
      assert.strictEqual(await page.getAttribute("body", "data-connection"), "live")
    }
    const watermark2 = await text(page, "#watermark")
    const events2 = await text(page, "#events-total")
    assert.notStrictEqual(watermark2, watermark1, "the watermark moved")
    assert.isAbove(digits(events2), digits(events1), `events ${events1} -> ${events2}`)
    assert.match(await text(page, "#watermark-delay"), /behind the clock/)
    assert.match(await text(page, "#rate"), /\/s$/)
    assert.isAbove(digits(await text(page, "#rate")), 0)
    assert.isAbove(await page.locator("#partitions tr").count(), 1)
    assert.match(await text(page, "#partitions"), /clicks \/ 0/)
    assert.strictEqual(await page.locator("#spark path").count(), 2, "the sparkline is drawn")
    assert.match(await text(page, "#state-bytes"), /^≈ [\d.]+ (B|kB|MB|GB)$/)
    assert.match(await text(page, "#sink-commit"), /ago|just now/)
    // the midnight export's schedule: nothing due on a fresh database, its next run at 00:01 UTC
    assert.match(await text(page, "#jobs"), /midnight-export\s+not run yet; next \d{4}-\d\d-\d\dT00:01:00\.000Z/)

    // the business view, read from shop.hourly_rollup through /api/insights
    await waitFor("the rollup's bars", async () => (await page.locator("#revenue-bars rect").count()) >= 3 ? true : undefined, 15_000)
    assert.match(await text(page, "#top-sources"), /PageTestSource\s+242\.75\s+15\s+21/)
    assert.match(await text(page, "#revenue-note"), /paid checkouts/)
    assert.match(await text(page, "#lake-files"), /^\d+ · [\d.]+ (B|kB|MB)$/)

    fs.mkdirSync(artifacts, { recursive: true })
    await page.screenshot({ path: path.join(artifacts, "status-page.png"), fullPage: true })
    assert.deepStrictEqual(pageErrors, [])
  })

  it("says 'stale' when the snapshot's clock stops moving", async () => {
    const frozen = await (await daemon.get("/api/status")).text()
    await page.route("**/api/status", (route) => route.fulfill({ status: 200, contentType: "application/json", body: frozen }))
    await page.waitForSelector("#banner.show.stale", { timeout: 10_000 })
    assert.match(await text(page, "#banner"), /^Stale/)
    assert.strictEqual(await page.getAttribute("body", "data-connection"), "stale")
    await page.unroute("**/api/status")
    await page.waitForSelector("body[data-connection=live]", { timeout: 10_000 })
    assert.isFalse(await page.locator("#banner").isVisible())
  })

  it("lists recent ingest errors and late events with their reasons, as text (no markup gets through)", async () => {
    const real = await (await daemon.get("/api/status")).json() as Record<string, any>
    const hostile = "Expected a valid Date at [\"timestamp\"] <img src=x onerror=\"document.body.dataset.pwned=1\">"
    const started = Date.now()
    await page.route("**/api/status", (route) => {
      const now = new Date(Date.parse(real["now"]) + (Date.now() - started)).toISOString() // a clock that moves
      route.fulfill({
        status: 200,
        contentType: "application/json",
        body: JSON.stringify({
          ...real,
          now,
          ingestErrors: 7,
          lateEvents: { clicks: 3, checkouts: 1 },
          recentErrors: [{ topic: "clicks", partition: 2, offset: 4711, error: hostile, at: real["now"] }],
          recentLateEvents: [{ topic: "checkouts", id: "co-<b>42</b>", eventTime: "2026-03-01T11:59:00.000Z", at: real["now"], reason: "event time behind the watermark" }]
        })
      })
    })
    await page.locator("#ingest-errors", { hasText: /^7$/ }).waitFor({ timeout: 10_000 })
    assert.strictEqual(await text(page, "#late-clicks"), "3")
    const errors = await text(page, "#recent-errors")
    assert.include(errors, "clicks / 2 @ 4711")
    assert.include(errors, hostile, "the reason is shown verbatim")
    const late = await text(page, "#recent-late")
    assert.include(late, "co-<b>42</b>")
    assert.include(late, "event time behind the watermark")
    assert.strictEqual(await page.locator("#recent-errors img, #recent-late b").count(), 0)
    assert.isNull(await page.getAttribute("body", "data-pwned"))
    assert.isFalse(await page.locator("#banner").isVisible())
    await page.screenshot({ path: path.join(artifacts, "status-page-errors.png"), fullPage: true })
    await page.unroute("**/api/status")
  })

  it("says 'disconnected' when the daemon is gone (and the daemon stops cleanly on SIGTERM)", async () => {
    daemon.child.kill("SIGTERM")
    const exit = await Promise.race([daemon.exited, sleep(10_000).then(() => undefined)])
    assert.deepStrictEqual(exit, { code: 0, signal: null }, daemon.output())
    await page.waitForSelector("#banner.show.down", { timeout: 10_000 })
    assert.match(await text(page, "#banner"), /^Disconnected/)
    assert.strictEqual(await text(page, "#conn"), "disconnected")
    await page.screenshot({ path: path.join(artifacts, "status-page-disconnected.png") })
  })
})
