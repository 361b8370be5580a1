/** The small HTML page a user's browser ends on in the connect flow: connected, or why not (consent denied, an
 *  expired or altered link, a used callback, a provider failure). A person reads it, so it says what happened
 *  and what to do, in words; it never carries a stack, a token, a code or the state.
 *
 *  Every value is HTML-escaped; a strict Content-Security-Policy lets the page load nothing but its one style (by
 *  hash), run no script and be framed by no one; `Referrer-Policy: no-referrer` keeps the callback's URL (with
 *  its code) out of any Referer, and `no-store` out of any cache. */
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { createHash } from "node:crypto"

/** The outcome a page reports; `code` is stable (tests and the `redirect_after` query read it). */
export interface Outcome {
  readonly status: number
  readonly code: string
  readonly title: string
  readonly message: string
  readonly connection?: string | undefined
}

export const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

const style = `
body{font:15px/1.5 system-ui,sans-serif;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:#f6f6f6;color:#1d1d1f}
main{background:#fff;padding:2rem 2.5rem;border-radius:.5rem;box-shadow:0 1px 3px rgba(0,0,0,.12);max-width:34rem}
h1{font-size:1.25rem;margin:0 0 .75rem}main[data-ok=true] h1{color:#17803d}main[data-ok=false] h1{color:#c62828}
.muted{color:#6b6b6b;font-size:.85rem}
`.trim()

const hash = (s: string) => `'sha256-${createHash("sha256").update(s, "utf8").digest("base64")}'`

export const contentSecurityPolicy = [
  "default-src 'none'",
  `style-src ${hash(style)}`,
  "img-src 'none'",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'"
].join("; ")

export const securityHeaders: Readonly<Record<string, string>> = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store"
}

export const html = (o: Outcome, requestId: string): string => {
  const ok = o.status < 400
  const about = o.connection === undefined ? "" : `<p>Connection: <strong>${escape(o.connection)}</strong></p>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>${escape(o.title)} · tessera</title><style>${style}</style></head>
<body><main data-ok="${ok}" data-code="${escape(o.code)}"><h1>${escape(o.title)}</h1><p>${escape(o.message)}</p>${about}
<p class="muted">${ok ? "You can close this window." : `Code ${escape(o.code)} · request ${escape(requestId)}`}</p></main></body></html>
`
}

export const response = (
  o: Outcome,
  requestId: string,
  headers: Readonly<Record<string, string>> = {}
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(html(o, requestId), {
    status: o.status,
    contentType: "text/html; charset=utf-8",
    headers: { ...securityHeaders, ...headers }
  })
