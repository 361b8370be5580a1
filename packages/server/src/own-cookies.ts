/** tessera's own cookies, and how the proxy keeps them out of the traffic it forwards, both ways.
 *
 *  The one cookie tessera sets is the connect flow's browser binding (`tessera_connect_<state id>`, on the callback
 *  path, connect-routes.ts). Every Path tessera sets (that cookie's, the proxy's scoping below) carries
 *  `server.public_url`'s path prefix when it has one (`basePathOf`): the paths a browser sees behind a reverse proxy
 *  that adds one. Every name with the prefix is tessera's:
 *  - a caller's Cookie header goes upstream without them (the other cookies are the caller's business with the
 *    API, and stay), and without the header when nothing is left;
 *  - an API's Set-Cookie naming one is dropped, so that an API answer cannot plant or overwrite the binding
 *    cookie of a browser on tessera's origin (the other Set-Cookie lines go back as they came).
 *  - every other Set-Cookie is scoped to the connection's own proxy prefix (`Path=<base>/v1/proxy/<name>/`, its own
 *    `Path` and `Domain` dropped), so an API's cookies go back only to that API, never to another connection's
 *    proxy path or to tessera's own pages (the connect callback among them, which a flood of large cookies for its
 *    path could otherwise push past the header limit).
 *  Names are matched without regard to case, and a nameless cookie (`Set-Cookie: tessera_connect_x`, or
 *  `=tessera_connect_x=v`, which a browser sends back as that text) counts by the text it is sent back as: a
 *  near-miss of the name is refused rather than trusted. */

/** The prefix of every cookie name tessera sets. */
export const prefix = "tessera_connect_"

const own = new RegExp(`^[\\s=]*${prefix}`, "i")
// The hot path's test: most Cookie headers hold none of tessera's, and go up unchanged.
const anywhere = new RegExp(prefix, "i")

/** Whether one `name=value` pair (or a nameless value) is one of tessera's cookies. */
export const isOwn = (pair: string): boolean => own.test(pair)

/** A request's Cookie header without tessera's cookies; undefined when none is left. */
export const withoutOwn = (cookie: string | ReadonlyArray<string> | undefined): string | undefined => {
  if (cookie === undefined) return undefined
  const text = typeof cookie === "string" ? cookie : cookie.join("; ")
  if (!anywhere.test(text)) return text
  const kept = text
    .split(";")
    .map((p) => p.trim())
    .filter((p) => p !== "" && !isOwn(p))
  return kept.length === 0 ? undefined : kept.join("; ")
}

/** An answer's Set-Cookie lines without those that set one of tessera's cookies; undefined when none is left. */
export const withoutOwnSetCookie = (
  lines: string | ReadonlyArray<string> | undefined
): string | Array<string> | undefined => {
  if (lines === undefined) return undefined
  // Only the name=value pair before the first ";" names the cookie; the attributes may say anything.
  const kept = (typeof lines === "string" ? [lines] : lines).filter((l) => !isOwn(l.split(";", 1)[0]!))
  return kept.length === 0 ? undefined : typeof lines === "string" ? kept[0] : kept
}

/** The path prefix a browser sees before the server's own paths: `server.public_url`'s path without its trailing
 *  slash ("/tessera" for `https://example.com/tessera`), "" when public_url is unset or has no path. Behind a
 *  reverse proxy that adds a prefix, a cookie Path without it would never match what the browser asks for. */
export const basePathOf = (publicUrl: string | undefined): string =>
  publicUrl === undefined ? "" : new URL(publicUrl).pathname.replace(/\/+$/, "")

/** The path an API's cookies are scoped to: its connection's proxy prefix, below `base` (`basePathOf`). */
export const proxyPathOf = (connection: string, base = ""): string =>
  `${base}/v1/proxy/${encodeURIComponent(connection)}/`

// The attributes that would widen a cookie beyond the proxy prefix; everything else (Secure, HttpOnly, SameSite,
// Max-Age, Expires, Partitioned) is the API's own business and stays.
const widening = /^\s*(?:path|domain)\s*(?:=|$)/i

/** One Set-Cookie line with its Path and Domain replaced by `Path=<path>`. */
const scopedLine = (line: string, path: string): string => {
  const [pair, ...attributes] = line.split(";")
  return [pair, ...attributes.filter((a) => !widening.test(a)).map((a) => a.trim()), `Path=${path}`].join("; ")
}

/** An answer's Set-Cookie lines as they go back: tessera's own dropped, the others scoped to `path`. */
export const scopedSetCookie = (
  lines: string | ReadonlyArray<string> | undefined,
  path: string
): string | Array<string> | undefined => {
  const kept = withoutOwnSetCookie(lines)
  if (kept === undefined) return undefined
  return typeof kept === "string" ? scopedLine(kept, path) : kept.map((l) => scopedLine(l, path))
}
