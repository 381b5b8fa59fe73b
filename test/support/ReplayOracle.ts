/**
 * SPEC §3 for the replay tests, written from the SPEC, not from the engine: the earliest
 * on-time click in the window `[k.ts − A, k.ts]` of the same user whose product is null or the
 * checkout's, ties to the smallest click id; a late click (`lateClickIds`) joins nothing.
 */
const A = 3_600_000

export interface OracleClick { readonly click_id: string; readonly user_id: string; readonly product_id?: string | null; readonly click_timestamp: string }
export interface OracleCheckout { readonly checkout_id: string; readonly user_id: string; readonly product_id: string; readonly checkout_timestamp: string }

/** checkout id → attributed click id (null: unattributed) */
export const firstClickOracle = (
  clicks: ReadonlyArray<OracleClick>, checkouts: ReadonlyArray<OracleCheckout>, lateClickIds: ReadonlySet<string> = new Set()
): Map<string, string | null> => {
  const byUser = new Map<string, Array<OracleClick>>()
  for (const c of clicks) {
    if (lateClickIds.has(c.click_id)) continue
    byUser.set(c.user_id, [...(byUser.get(c.user_id) ?? []), c])
  }
  const expected = new Map<string, string | null>()
  for (const k of checkouts) {
    const kts = Date.parse(k.checkout_timestamp)
    const candidates = (byUser.get(k.user_id) ?? []).filter((c) => {
      const cts = Date.parse(c.click_timestamp)
      return (c.product_id == null || c.product_id === k.product_id) && cts >= kts - A && cts <= kts
    })
    candidates.sort((a, b) => Date.parse(a.click_timestamp) - Date.parse(b.click_timestamp) || (a.click_id < b.click_id ? -1 : a.click_id > b.click_id ? 1 : 0))
    expected.set(k.checkout_id, candidates[0]?.click_id ?? null)
  }
  return expected
}
