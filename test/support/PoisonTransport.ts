/**
 * The poison corpus (PoisonCorpus.ts) made ready for a real transport, replay files or Kafka:
 *
 * - **Re-timed.** The corpus is written against a clock on 2026-11-23; a daemon or a replay
 *   decodes against the real clock. The corpus' ordinary event time is replaced, in the text
 *   (so that `1e400`, `NaN` and raw characters stay exactly as they are), by a time near now;
 *   the far-future entries (year 2099) stay as they are; "1 ms past now + MAX_FUTURE_MS" becomes
 *   now + MAX_FUTURE_MS + 15 minutes (a moving clock cannot be hit to the millisecond: refused
 *   as long as it is decoded within 15 minutes of `now`).
 * - **As it arrives.** A transport carries UTF-8 bytes: a lone surrogate has none, so it
 *   arrives as U+FFFD. An entry whose bytes decode to a valid event ("lone surrogate as a raw
 *   character") is no longer poison on any byte transport and is left out (`untransportable`);
 *   one that is still not JSON ("random UTF-16 code units") is kept, with the payload that
 *   arrives.
 * - `ingest_errors.payload` holds the message with every NUL and lone surrogate written as the
 *   six characters `\uXXXX` (PostgreSQL text holds neither).
 */
import { type PoisonMessage, poisonCorpus } from "./PoisonCorpus.ts"

export const MAX_FUTURE_MS = 86_400_000
const FUTURE_MARGIN_MS = 15 * 60_000

export interface SentPoison extends PoisonMessage {
  /** the message as sent */
  readonly value: string
  /** the message as a consumer reads it back: its UTF-8 bytes decoded */
  readonly received: string
  /** what `ingest_errors.payload` must hold */
  readonly payload: string
}

const CORPUS_TIME = "2026-11-23T10:00:00.000Z"
const JUST_PAST_LIMIT = "2026-11-24T00:00:00.001Z"
const FAR_FUTURE = /2099-01-01/

/** A string's UTF-8 bytes read back (lone surrogates become U+FFFD). */
export const viaUtf8 = (s: string): string => Buffer.from(s, "utf8").toString("utf8")

/** NUL and lone surrogates as `\uXXXX` text (lower-case hex), written here from SPEC, not taken from the engine. */
export const escapedPayload = (s: string): string =>
  s.replace(/\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"))

const parses = (s: string): boolean => {
  try {
    JSON.parse(s)
    return true
  } catch {
    return false
  }
}

/** The corpus with its event times moved next to `now` (see above). */
export const retimedCorpus = (now: number, nearNow: number = now): Array<PoisonMessage> => {
  let justPast = 0
  const out = poisonCorpus.map((p) => {
    if (p.value.includes(JUST_PAST_LIMIT)) {
      justPast++
      return { ...p, value: p.value.replace(JUST_PAST_LIMIT, new Date(now + MAX_FUTURE_MS + FUTURE_MARGIN_MS).toISOString()) }
    }
    return { ...p, value: p.value.replaceAll(CORPUS_TIME, new Date(nearNow).toISOString()) }
  })
  // the corpus changed under us: say so rather than test less
  if (justPast !== 1) throw new Error(`expected one corpus entry at ${JUST_PAST_LIMIT}, found ${justPast}`)
  if (out.filter((p) => FAR_FUTURE.test(p.value)).length !== 2) throw new Error("expected two far-future (2099) corpus entries")
  if (Date.UTC(2099, 0, 1) <= now + MAX_FUTURE_MS) throw new Error("the far-future entries are no longer in the future")
  return out
}

/** Poison that is still poison once carried as UTF-8 bytes. */
const transportable = (p: PoisonMessage): boolean => p.value.isWellFormed() || !parses(viaUtf8(p.value))

/** The re-timed corpus as a byte transport carries it, and what it cannot carry. */
export const poisonToSend = (now: number, nearNow: number = now): { sent: Array<SentPoison>; untransportable: Array<string> } => {
  const corpus = retimedCorpus(now, nearNow)
  const sent = corpus.filter(transportable).map((p): SentPoison => {
    const received = viaUtf8(p.value)
    return { ...p, received, payload: escapedPayload(received) }
  })
  const payloads = new Set(sent.map((p) => p.received))
  if (payloads.size !== sent.length) throw new Error("two corpus entries arrive as the same message: they cannot be told apart")
  return { sent, untransportable: corpus.filter((p) => !transportable(p)).map((p) => p.name) }
}

/**
 * For a line transport (a kcat file: one message a line, CRLF allowed): a message holding a
 * line break cannot be a line; it is sent without its CR and LF characters, named so.
 */
export const lineSafe = (p: SentPoison): SentPoison => {
  if (!/[\r\n]/.test(p.value)) return p
  const value = p.value.replace(/[\r\n]/g, "")
  const received = viaUtf8(value)
  return { ...p, name: `${p.name} (without its CR/LF)`, value, received, payload: escapedPayload(received) }
}
