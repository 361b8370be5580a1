/** Decides whether a request may reach any route at all, before a key is read. Both rules keep web pages out, since
 *  tessera serves programs and no page of its own:
 *  - **Host** (DNS rebinding): a page whose name an attacker re-points at 127.0.0.1 reaches a loopback server with
 *    its own name in `Host`. A server without API keys answers only loopback Host values on its own port, plus
 *    `server.allowed_hosts`. A server with keys answers any Host (it may sit behind a reverse proxy), unless
 *    `server.allowed_hosts` narrows it to loopback and the listed names.
 *  - **Origin** (cross-site requests): a page of another origin can still send simple requests (a form, a
 *    `text/plain` POST) anywhere. A request whose `Origin` is not the server's own origin, or whose
 *    `Sec-Fetch-Site` is not `same-origin` or `none`, is refused, with keys or without.
 *  One exception to the Origin rule: the connect flow's two browser routes (`GET /v1/connect/<name>` and
 *  `GET /v1/connect/callback`) are reached by a user's top-level navigation from another site (the app that made
 *  the link, then the provider's consent page). Such a GET (`Sec-Fetch-Mode: navigate`, or no Fetch Metadata at
 *  all) is admitted there: it carries no API key and no ambient authority, since the sealed link or state in its
 *  query is the credential (connect-routes.ts). A `fetch()` or an embedded request from another page is still
 *  refused, and every other route is as strict as before. `server.public_url`'s host is answered like an entry of
 *  `server.allowed_hosts`, since browsers come by that name.
 *  `make` builds the check for one config (it checks the allowed hosts then); server.ts runs it first for every
 *  request, before the token fast path and the router. */
import type { IncomingHttpHeaders } from "node:http"
import { Connection } from "@tessera/engine"
import { Refusal } from "./problem.ts"

/** Loopback hosts, where a server without API keys is reachable only from this machine: the engine's one rule, the
 *  same that allows plain http to an API. */
export const isLoopback = Connection.isLoopback

export interface HostValue {
  /** Lowercased; an IPv6 address keeps its brackets. */
  readonly name: string
  /** Undefined when the value has none (RFC 9110 §7.2: the scheme's default, 80 for this http server). */
  readonly port: number | undefined
}

/** A Host header value, `name[:port]` or `[v6][:port]`; undefined when it is neither. */
export const parseHost = (value: string): HostValue | undefined => {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(value)
  if (!m) return undefined
  const port = m[2] === undefined ? undefined : Number(m[2])
  if (port !== undefined && port > 65535) return undefined
  return { name: m[1]!.toLowerCase(), port }
}

export interface Settings {
  /** The port the server listens on. */
  readonly port: number
  /** Whether the config has API keys. */
  readonly keyed: boolean
  /** `server.allowed_hosts`; undefined when the config has none. */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /** `server.public_url`: its host is answered too. */
  readonly publicUrl?: string | undefined
}

/** The refusal for a request, or undefined when it may go on to the routes. `method` and `url` (the request
 *  target) let the connect flow's navigations through; without them every request gets the strict rules. */
export type Check = (headers: IncomingHttpHeaders, method?: string, url?: string) => Refusal | undefined

/** The connect flow's browser routes: `/v1/connect/<one segment>`, any query. */
const connectPath = /^\/v1\/connect\/[^/?#]+(?:\?|$)/

/** A user's own top-level GET navigation to a connect route (see the module header). */
export const isConnectNavigation = (headers: IncomingHttpHeaders, method?: string, url?: string): boolean => {
  if ((method !== "GET" && method !== "HEAD") || url === undefined || !connectPath.test(url)) return false
  const mode = headers["sec-fetch-mode"]
  const site = headers["sec-fetch-site"]
  // A browser sends Fetch Metadata on every request; one without any is not a page's script (browsers that
  // predate it are not why this rule exists, and a program may follow the link too).
  if (mode === undefined && site === undefined) return true
  return mode === "navigate" && headers["sec-fetch-dest"] !== "iframe" && headers["sec-fetch-dest"] !== "frame"
}

const quoted = (v: string) => JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}...` : v)

const hostRefusal = (host: string | undefined, s: Settings): Refusal => {
  const loopback = `127.0.0.1:${s.port}, [::1]:${s.port} or localhost:${s.port}`
  const what = host === undefined ? "a request without a Host header" : `Host ${quoted(host)}`
  const detail =
    s.allowedHosts === undefined
      ? `${what} is not answered: without API keys this server answers only ${loopback}, so that a web page cannot ` +
        "reach it through DNS rebinding. Call it by one of those names, or add the name to server.allowed_hosts"
      : `${what} is not answered: call the server as ${loopback} or by a name in server.allowed_hosts ` +
        `(${s.allowedHosts.join(", ") || "none"}), or add this one there`
  return new Refusal({ code: "HostNotAllowed", detail })
}

const crossSiteRefusal = (what: string): Refusal =>
  new Refusal({
    code: "CrossSiteRequest",
    detail:
      `a request sent by a web page of another origin (${what}) is refused on every route, so that no page can use ` +
      "this server's tokens or proxy. Call the server from a program (which sends no Origin or Sec-Fetch-Site header)"
  })

/** Whether `origin` (an Origin header) is the origin a browser shows for the server called as `host`. */
const sameOrigin = (origin: string, host: string | undefined): boolean => {
  if (host === undefined) return false
  try {
    const o = new URL(origin)
    if (o.protocol !== "http:" && o.protocol !== "https:") return false
    // Origin is a bare origin; anything longer (a path, "null", a list of two) is not one.
    if (o.origin !== origin) return false
    // The Host header without a port means the scheme's default one, as the browser's origin does.
    return new URL(`${o.protocol}//${host}`).host === o.host
  } catch {
    return false
  }
}

const crossSite = (headers: IncomingHttpHeaders, host: string | undefined): Refusal | undefined => {
  // Fetch Metadata: a browser says who made the request; "none" is the user's own navigation. Any other value,
  // including one this code does not know, is refused.
  const site = headers["sec-fetch-site"]
  if (site !== undefined && site !== "same-origin" && site !== "none")
    return crossSiteRefusal(`Sec-Fetch-Site: ${quoted(site)}`)
  const origin = headers.origin
  if (origin !== undefined && !sameOrigin(origin, host)) return crossSiteRefusal(`Origin ${quoted(origin)}`)
  return undefined
}

/** The entries of `server.allowed_hosts`, parsed; throws a TypeError naming the first that is not a Host value. */
export const parseAllowed = (allowedHosts: ReadonlyArray<string> | undefined): ReadonlyArray<HostValue> =>
  (allowedHosts ?? []).map((h) => {
    const p = parseHost(h)
    if (!p) throw new TypeError(`server.allowed_hosts: ${quoted(h)} is not a host name or host:port`)
    return p
  })

/** The Host value of `server.public_url`, answered like an allowed host (without a port: on any port). */
const publicHost = (publicUrl: string | undefined): ReadonlyArray<HostValue> => {
  const h = publicUrl === undefined ? undefined : parseHost(new URL(publicUrl).host)
  return h ? [h] : []
}

export const make = (s: Settings): Check => {
  const listed = [...parseAllowed(s.allowedHosts), ...publicHost(s.publicUrl)]
  const anyHost = s.keyed && s.allowedHosts === undefined
  const allowed = (h: HostValue) =>
    (isLoopback(h.name) && (h.port ?? 80) === s.port) ||
    listed.some((e) => e.name === h.name && (e.port === undefined || e.port === h.port))
  // Callers send the same Host over and over: remember the last one allowed, so the hot path parses nothing.
  let lastAllowed: string | undefined
  return (headers, method, url) => {
    const host = headers.host
    if (!anyHost && (host === undefined || host !== lastAllowed)) {
      const h = host === undefined ? undefined : parseHost(host)
      if (!h || !allowed(h)) return hostRefusal(host, s)
      lastAllowed = host
    }
    return isConnectNavigation(headers, method, url) ? undefined : crossSite(headers, host)
  }
}
