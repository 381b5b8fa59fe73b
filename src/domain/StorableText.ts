/**
 * What PostgreSQL `text` can hold: any string without a NUL character (`\u0000`) that is
 * well-formed UTF-16 (a lone surrogate has no UTF-8 encoding). A string that breaks either
 * makes PostgreSQL refuse the whole statement, so the whole batch.
 */

/** True when PostgreSQL text can hold `s` as it is. */
export const isStorableText = (s: string): boolean => s.indexOf("\u0000") === -1 && s.isWellFormed()

/** The index of the first character PostgreSQL text cannot hold, or -1. */
export const firstUnstorable = (s: string): number => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0) return i
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = c <= 0xdbff && i + 1 < s.length ? s.charCodeAt(i + 1) : 0
      if (next >= 0xdc00 && next <= 0xdfff) i++
      else return i
    }
  }
  return -1
}

const escape = (c: number): string => "\\u" + c.toString(16).padStart(4, "0")

/**
 * `s` unchanged when PostgreSQL text can hold it; else a copy with every NUL replaced by the
 * six characters `\u0000` and every lone surrogate by its `\uXXXX` escape (lower-case hex, as
 * `JSON.stringify` writes them). For the raw payloads in `ingest_errors`, which must hold
 * whatever arrived. The escape is for people reading the row: a payload that already held
 * the six characters `\u0000` reads the same.
 */
export const storableText = (s: string): string => {
  if (isStorableText(s)) return s
  let out = ""
  let from = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0 || (c >= 0xd800 && c <= 0xdfff)) {
      const next = c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? s.charCodeAt(i + 1) : 0
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++ // a valid pair
        continue
      }
      out += s.slice(from, i) + escape(c)
      from = i + 1
    }
  }
  return out + s.slice(from)
}
