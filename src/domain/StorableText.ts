/** Text PostgreSQL can hold: NUL and lone surrogates escaped as `\uXXXX`. (placeholder until merged) */
export const storableText = (s: string): string =>
  s.isWellFormed() && !s.includes("\u0000") ? s : s.replace(/\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
