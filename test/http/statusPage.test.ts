/**
 * The status page in a real browser: Debian's chromium driven by playwright-core against the
 * daemon (`node dist/main.js`) on a fresh database. The watermark and the event counter on
 * the page must move, no banner may show while the engine runs, a frozen snapshot must turn
 * the page "stale" and a stopped daemon "disconnected". The recommendations card must show the
 * recommender's figures and the lookup box a user's list, drawn as text at 1280 and 420 pixels
 * wide. Leaves screenshots in `test-artifacts/` (and `/tmp/status-recs*.png`).
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
    // a snapshot of the recommender every 2 s, so the card has one to show within the test
    daemon = await startDaemon({ DATABASE_URL: db.url, GENERATOR_RATE: "200", WATERMARK_DELAY_MS: "1000", IDLE_TIMEOUT_MS: "2000", RECS_SNAPSHOT_MS: "2000" })
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

  it("shows the recommender's figures, and a user's list in the lookup box as text, at 1280 and 420 pixels wide", async () => {
    await page.setViewportSize({ width: 1280, height: 900 })
    // figures, not placeholders, once the recommender has updated, written and snapshotted
    await waitFor("the recommender's figures", async () =>
      digits(await text(page, "#recs-users")) > 0 && digits(await text(page, "#recs-lists")) > 0 && /ago|just now/.test(await text(page, "#recs-snapshot-age"))
        ? true
        : undefined, 30_000)
      .catch(async (e) => {
        const status = await daemon.get("/api/status").then((r) => r.text(), (err) => String(err))
        throw new Error(`${(e as Error).message}\ncard: ${await text(page, "#recs-card")}\n/api/status: ${status}`)
      })
    assert.match(await text(page, "#recs-users"), /^[\d,]+$/)
    assert.match(await text(page, "#recs-rate"), /^[\d.]+ ?k?\/s$/)
    assert.isAbove(digits(await text(page, "#recs-rate")), 0)
    assert.match(await text(page, "#recs-latency"), /^\d+(\.\d+)? (µs|ms) \/ \d+(\.\d+)? (µs|ms)$/)
    assert.match(await text(page, "#recs-products"), /^[1-9][\d,]*$/)
    assert.match(await text(page, "#recs-links"), /^[\d,]+$/)
    assert.match(await text(page, "#recs-lists"), /^[1-9][\d,]*$/)
    assert.match(await text(page, "#recs-snapshots"), /^[1-9][\d,]* · [\d.]+ (B|kB|MB)$/)
    assert.match(await text(page, "#recs-snapshot-age"), /^(just now|[\d.]+ s ago)$/)
    assert.strictEqual(await text(page, "#recs-failed"), "0")

    // a user with a written list (the user with the most rows, then the smallest id)
    const user = await waitFor("a list in shop.user_recommendations", async () =>
      (await query<{ user_id: string }>(db.url, "SELECT user_id FROM shop.user_recommendations GROUP BY user_id ORDER BY count(*) DESC, user_id LIMIT 1"))[0]?.user_id)
    await page.fill("#recs-user", user)
    const answered = page.waitForResponse((r) => r.url().endsWith(`/api/users/${encodeURIComponent(user)}/recommendations`))
    await page.press("#recs-user", "Enter")
    const body = await (await answered).json() as { personalized: boolean; items: Array<{ product_id: string; name: string | null }> }
    await page.locator("#recs-items tr").first().waitFor({ timeout: 5_000 })
    assert.isTrue(body.personalized)
    assert.isAbove(body.items.length, 0)
    const rows = await Promise.all((await page.locator("#recs-items tr").all()).map((tr) => tr.locator("td").allInnerTexts()))
    assert.strictEqual(rows.length, body.items.length)
    rows.forEach((cells, i) => {
      assert.strictEqual(cells[0], String(i + 1))
      assert.include(cells[1], body.items[i]!.product_id, "the product cell names the product")
      assert.match(cells[5]!, /^\d/, "a score")
    })
    assert.match(await text(page, "#recs-note"), new RegExp(`^personalized for ${user} · updated \\d\\d:\\d\\d:\\d\\d`))

    // layout: nothing spills out of the two cards, at 1280 and at 420 wide
    // (a string, run in the page: this project's TypeScript has no DOM types)
    const fits = () => page.evaluate(`["recs-card", "recs-lookup"].map((id) => {
        const el = document.getElementById(id), scroll = el.querySelector(".scroll")
        return { id, card: el.scrollWidth - el.clientWidth, table: scroll === null ? 0 : scroll.scrollWidth - scroll.clientWidth, width: el.clientWidth }
      })`) as Promise<Array<{ id: string; card: number; table: number; width: number }>>
    const truncated = () =>
      page.evaluate(`[...document.querySelectorAll("#recs-card dt, #recs-card dd")].filter((el) => el.scrollWidth > el.clientWidth).map((el) => el.textContent)`) as Promise<Array<string>>
    for (const f of await fits()) assert.deepInclude(f, { card: 0, table: 0 }, JSON.stringify(f))
    assert.deepStrictEqual(await truncated(), [], "every label of the card is shown whole")
    await page.locator("#recs-card").scrollIntoViewIfNeeded()
    await page.screenshot({ path: "/tmp/status-recs.png", fullPage: true })
    await page.locator(".grid").screenshot({ path: "/tmp/status-recs-grid.png" })
    await page.setViewportSize({ width: 420, height: 900 })
    await sleep(300)
    await page.screenshot({ path: "/tmp/status-recs-narrow.png", fullPage: true })
    for (const f of await fits()) assert.deepInclude(f, { card: 0, table: 0 }, JSON.stringify(f))
    assert.deepStrictEqual(await truncated(), [])
    assert.strictEqual(await page.evaluate("document.documentElement.scrollWidth"), 420, "the page does not scroll sideways (wide tables scroll in their box)")
    await page.locator("#recs-card").screenshot({ path: "/tmp/status-recs-narrow-card.png" })
    await page.locator("#recs-lookup").screenshot({ path: "/tmp/status-recs-narrow-lookup.png" })
    assert.isFalse(await page.locator("#recs-list th.opt").first().isVisible(), "category and brand give way on a narrow page")
    fs.mkdirSync(artifacts, { recursive: true })
    fs.copyFileSync("/tmp/status-recs.png", path.join(artifacts, "status-recs.png"))
    fs.copyFileSync("/tmp/status-recs-narrow.png", path.join(artifacts, "status-recs-narrow.png"))
    await page.setViewportSize({ width: 1440, height: 900 })

    // a user with no events: the popularity list, said so
    await page.fill("#recs-user", "no-such-user")
    await page.press("#recs-user", "Enter")
    await page.locator("#recs-note", { hasText: /^no events from no-such-user here/ }).waitFor({ timeout: 5_000 })

    // an id the API refuses: its reason, in red, and no stale table
    assert.deepStrictEqual(pageErrors, [])
    await page.fill("#recs-user", "a".repeat(257))
    await page.click("#recs-form button")
    await page.locator("#recs-note.bad", { hasText: /at most 256/ }).waitFor({ timeout: 5_000 })
    assert.isTrue(await page.locator("#recs-list").isHidden())
    // chromium logs every 4xx answer to the console: that one is expected, and the only one
    assert.deepStrictEqual(pageErrors.splice(0), ["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"])
  })

  it("draws a user's list as text: markup in the answer stays text, the id is one path segment", async () => {
    const hostile = "<img src=x onerror=\"document.body.dataset.pwned=1\">"
    let asked = ""
    await page.route("**/api/users/*/recommendations", (route) => {
      asked = new URL(route.request().url()).pathname
      route.fulfill({
        status: 200,
        contentType: "application/json",
        body: JSON.stringify({
          user_id: "u/<b>1</b>?x", personalized: true, updated_at: new Date().toISOString(),
          items: [
            { product_id: "p-1", name: `Chair ${hostile}`, category: "<i>home</i>", brand: "<b>Acme</b>", price: 12.5, score: 0.87654 },
            { product_id: "p-<b>2</b>", name: null, category: null, brand: null, price: null, score: 0.5 }
          ]
        })
      })
    })
    await page.setViewportSize({ width: 1440, height: 900 })
    await page.fill("#recs-user", "u/<b>1</b>?x")
    await page.press("#recs-user", "Enter")
    await page.locator("#recs-items tr").nth(1).waitFor({ timeout: 5_000 })
    assert.strictEqual(asked, "/api/users/u%2F%3Cb%3E1%3C%2Fb%3E%3Fx/recommendations")
    const list = await page.locator("#recs-items").innerText()
    assert.include(list, `Chair ${hostile}`)
    assert.include(list, "<i>home</i>")
    assert.include(list, "<b>Acme</b>")
    assert.include(list, "12.50")
    assert.include(list, "0.877")
    assert.include(list, "p-<b>2</b>")
    assert.include(await text(page, "#recs-note"), "personalized for u/<b>1</b>?x")
    assert.strictEqual(await page.locator("#recs-lookup img, #recs-lookup b, #recs-lookup i").count(), 0)
    assert.isNull(await page.getAttribute("body", "data-pwned"))
    await page.unroute("**/api/users/*/recommendations")
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
