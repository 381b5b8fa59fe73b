/**
 * SPEC §4's money, computed exactly in decimal and rounded half away from zero, as
 * PostgreSQL's `round(numeric, 2)` does: binary floating point would turn 2.675 into 2.67.
 *
 *   total_amount = round(price × quantity × (1 − discount), 2)
 *   profit       = round((total_amount − shipping_cost) × commission_rate, 2)
 *
 * Inputs are the decimal text of each value (JSON numbers through `String(n)`, PostgreSQL
 * numerics as they come); results are cents as text, e.g. "12.30".
 */

interface Decimal { readonly units: bigint; readonly scale: number }

/** Parses "12.5", "-0.1", "1e-7" exactly. */
export const parseDecimal = (text: string): Decimal => {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text.trim())
  if (m === null || (m[2] === "" && (m[3] ?? "") === "")) throw new Error(`not a decimal: ${text}`)
  const fraction = m[3] ?? ""
  let units = BigInt((m[2] || "0") + fraction)
  let scale = fraction.length - Number(m[4] ?? 0)
  if (scale < 0) { units *= 10n ** BigInt(-scale); scale = 0 }
  return { units: m[1] === "-" ? -units : units, scale }
}

const pow10 = (n: number): bigint => 10n ** BigInt(n)

/** numerator / denominator rounded half away from zero (denominator > 0). */
const roundDiv = (numerator: bigint, denominator: bigint): bigint => {
  const sign = numerator < 0n ? -1n : 1n
  const abs = numerator * sign
  return sign * ((abs * 2n + denominator) / (denominator * 2n))
}

const centsToText = (cents: bigint): string => {
  const sign = cents < 0n ? "-" : ""
  const abs = cents < 0n ? -cents : cents
  return `${sign}${abs / 100n}.${String(abs % 100n).padStart(2, "0")}`
}

const numberText = (n: number | string): string => typeof n === "number" ? String(n) : n

/** round(price × quantity × (1 − discount), 2) in cents. */
export const totalAmountCents = (price: number | string, quantity: number, discount: number | string): bigint => {
  const p = parseDecimal(numberText(price))
  const d = parseDecimal(numberText(discount))
  // price × q × (10^ds − du) / 10^(ps + ds), scaled to cents
  const numerator = p.units * BigInt(quantity) * (pow10(d.scale) - d.units) * 100n
  return roundDiv(numerator, pow10(p.scale + d.scale))
}

/** round((total − shipping) × commission_rate, 2) in cents. */
export const profitCents = (totalCents: bigint, shippingCost: number | string, commissionRate: number | string): bigint => {
  const s = parseDecimal(numberText(shippingCost))
  const r = parseDecimal(numberText(commissionRate))
  // (total/100 − su/10^ss) × ru/10^rs × 100 = (total × 10^ss − su × 100) × ru / 10^(ss + rs)
  const numerator = (totalCents * pow10(s.scale) - s.units * 100n) * r.units
  return roundDiv(numerator, pow10(s.scale + r.scale))
}

export const totalAmount = (price: number | string, quantity: number, discount: number | string): string =>
  centsToText(totalAmountCents(price, quantity, discount))

export const amounts = (
  price: number | string, quantity: number, discount: number | string,
  shippingCost: number | string, commissionRate: number | string
): { readonly totalAmount: string; readonly profit: string } => {
  const total = totalAmountCents(price, quantity, discount)
  return { totalAmount: centsToText(total), profit: centsToText(profitCents(total, shippingCost, commissionRate)) }
}
