/** The authenticated API proxy behind `ANY /v1/proxy/:name/*`: forwards a call to the connection's `api.base_url`
 *  plus the rest of the path and the query, with the token applied per the manifest's `apply` rule.
 *
 *  The call itself is the engine's `Api.forward` (the one "call the API with the token" path, shared with
 *  `tessera.fetch` and `tessera request`): it resolves the path below the API base URL, applies the token, sends
 *  with undici, streams the request body from the Node request and hands back the answer as a stream, which goes
 *  out as `HttpServerResponse.raw(stream)`, piped by Effect with backpressure. This module holds what is the
 *  proxy's own:
 *  - A `..` path segment, plain or percent-encoded (also behind an encoded slash), and a `.`, `/` or `\` encoded
 *    twice (`%252e`), are refused with 400, before the connection is even looked up (Api.pathProblem, the rule
 *    Api.resolve applies too).
 *  - Hop-by-hop headers (RFC 9110 §7.6.1) are dropped both ways (Api.endToEnd). The caller's Authorization and
 *    X-Tessera-Key never go upstream; the manifest's header carries the connection's token instead.
 *  - tessera's own cookies (own-cookies.ts) never go upstream in Cookie, and an API's Set-Cookie naming one (or its
 *    Clear-Site-Data) never comes back; its other cookies come back scoped to the connection's proxy prefix (below
 *    `server.public_url`'s path, when it has one): the fast path and the router build both sets of headers here
 *    (`requestHeaders`, `answerHeaders`).
 *  - Limits: bodies over `maxBodyBytes` get 413; a body with a Content-Length up to `replayBytes` is buffered so
 *    that an upstream 401 can be retried once (a streamed one's 401 goes back as is); no response headers within
 *    `timeoutMs` gives 504 (UpstreamTimeout), and a body that then stalls that long is cut.
 *  - The request id goes upstream as X-Request-Id; the answer carries the server's own X-Request-Id, and
 *    `Content-Security-Policy: sandbox` (`answerHeaders`): an API's HTML never runs as a page of this origin.
 *  - Api's failures become the server's problems: 404 NoApiBaseUrl, 400 for a refused path, 413 for a body. */
import * as Effect from "effect/Effect"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as http from "node:http"
import { Api, TokenError, type Connection, type Engine } from "@tessera/engine"
import type { Metrics } from "./metrics.ts"
import * as OwnCookies from "./own-cookies.ts"
import { Refusal } from "./problem.ts"

/** Body size, replay buffer and upstream time limit (see Api.ForwardLimits). */
export type Limits = Api.ForwardLimits

export const defaultLimits: Limits = { maxBodyBytes: 10 * 1024 * 1024, replayBytes: 1024 * 1024, timeoutMs: 30_000 }

export const checkLimits = (l: Limits): Limits => {
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new TypeError(`proxy limit ${k} must be a positive integer, got ${String(v)}`)
  }
  if (l.replayBytes > l.maxBodyBytes) throw new TypeError("proxy limit replayBytes cannot exceed maxBodyBytes")
  return l
}

/** The upstream connection pools, one per server so that closing it frees every socket (Api's undici client). */
export type Agents = Api.Client

export const makeAgents = (): Agents => Api.makeClient()

export interface Target {
  /** The raw name segment as sent. */
  readonly name: string
  /** The rest of the path after the connection name, as sent (percent-encoding kept): "" or "/...". */
  readonly rest: string
  /** "" or "?..." as sent. */
  readonly search: string
}

/** Splits the raw request target `/v1/proxy/<name>/<rest>?<query>` and refuses path traversal (synchronously:
 *  the proxy fast path's form). */
export const targetOf = (rawUrl: string): Target | Refusal => {
  const q = rawUrl.indexOf("?")
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q)
  const search = q === -1 ? "" : rawUrl.slice(q)
  const m = /^\/+v1\/+proxy\/+([^/]*)(.*)$/.exec(path)
  if (!m) return new Refusal({ code: "BadRequest", detail: "expected /v1/proxy/<connection>/<path>" })
  const problem = Api.pathProblem(path)
  if (problem) return new Refusal({ code: "BadRequest", detail: `the path ${Api.pathReasons[problem]}` })
  return { name: m[1]!, rest: m[2]!, search }
}

/** `targetOf` as an Effect (the router's form). */
export const parseTarget = (rawUrl: string): Effect.Effect<Target, Refusal> => {
  const t = targetOf(rawUrl)
  return t instanceof Refusal ? Effect.fail(t) : Effect.succeed(t)
}

export interface Deps {
  readonly limits: Limits
  readonly agents: Agents
  readonly metrics: Metrics
}

/** Api's refusals as the server's problems. */
export const refusal = (c: Connection.Connection, e: Api.ApiError): Refusal | TokenError.InputInvalid => {
  const where = { connection: c.name, provider: c.manifest.id }
  switch (e._tag) {
    case "NoApiBaseUrl":
      return e.missing.length > 0
        ? new TokenError.InputInvalid({ ...where, details: [`api.base_url needs ${e.missing.join(", ")}`] })
        : new Refusal({
            code: "NoApiBaseUrl",
            ...where,
            detail: `provider "${c.manifest.id}" declares no api.base_url, so calls for connection "${c.name}" cannot be proxied; get its token from GET /v1/connections/${c.name}/token instead`
          })
    case "TargetRefused":
      return new Refusal({ code: "BadRequest", ...where, detail: `the path ${e.reason}` })
    case "ForeignOrigin":
      return new Refusal({ code: "BadRequest", ...where, detail: e.message })
    case "BodyRefused":
      return new Refusal({
        code: e.reason === "too_large" ? "PayloadTooLarge" : "BadRequest",
        ...where,
        detail: e.message
      })
  }
}

/** Replaces a header present in `headers` with what `f` makes of it, or drops it when `f` leaves nothing. */
const rewrite = (
  headers: Api.HeaderMap,
  name: string,
  f: (value: string | ReadonlyArray<string>) => string | Array<string> | undefined
) => {
  const value = headers[name]
  if (value === undefined) return
  const next = f(value)
  if (next === undefined) delete headers[name]
  else headers[name] = next
}

/** The headers of the API's answer as they go back: end to end, without its X-Request-Id (the server sends its
 *  own), its Clear-Site-Data or a Set-Cookie of one of tessera's own cookies, its other cookies scoped to the
 *  connection's proxy prefix (own-cookies.ts; below `publicUrl`'s path, `server.public_url`), and with
 *  `Content-Security-Policy: sandbox` beside any policy of the API's. A browser may open a proxy URL (a server
 *  without keys answers a user's own navigation), and an HTML answer must not become a page of this server's
 *  origin, whose script could read every token with a same-origin fetch(): sandboxed, it runs no script and has an
 *  opaque origin. Programs ignore the header. */
// Never passed back (one constant: endToEnd keeps one Set per drop list): what tessera sets itself, and
// Clear-Site-Data, with which an API could wipe a browser's cookies and storage for tessera's whole origin (the
// connect flow's binding cookie among them).
const ownHeaders = ["x-request-id", "clear-site-data"]

export const answerHeaders = (
  headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>,
  connection: string,
  publicUrl?: string | undefined
): Api.HeaderMap => {
  const out = Api.endToEnd(headers, ownHeaders)
  rewrite(out, "set-cookie", (v) =>
    OwnCookies.scopedSetCookie(v, OwnCookies.proxyPathOf(connection, OwnCookies.basePathOf(publicUrl)))
  )
  const theirs = out["content-security-policy"]
  out["content-security-policy"] =
    theirs === undefined ? "sandbox" : ["sandbox", ...(typeof theirs === "string" ? [theirs] : theirs)]
  return out
}

// Never forwarded: the caller's credentials for tessera, and what the client sets itself.
const dropped = ["host", "authorization", "x-tessera-key", "content-length", "expect", "x-request-id"]

/** The headers the API gets: the caller's end-to-end ones without its credentials for tessera and without
 *  tessera's own cookies, and the request id. */
export const requestHeaders = (
  source: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>,
  requestId: string
): Api.HeaderMap => {
  const headers = Api.endToEnd(source, dropped)
  rewrite(headers, "cookie", OwnCookies.withoutOwn)
  headers["x-request-id"] = requestId
  return headers
}

/** Forwards the current request for connection `c` and returns the upstream answer as a streamed response. */
export const forward = (
  deps: Deps,
  engine: Engine.EngineShape,
  c: Connection.Connection,
  target: Target,
  source: http.IncomingMessage,
  sink: http.ServerResponse,
  requestId: string
): Effect.Effect<HttpServerResponse.HttpServerResponse, TokenError.TokenError | Refusal> =>
  Effect.gen(function* () {
    const headers = requestHeaders(source.headers, requestId)
    const labels = { provider: c.manifest.id }
    const res = yield* Api.forward(
      engine,
      c,
      { method: (source.method ?? "GET").toUpperCase(), path: `${target.rest}${target.search}`, headers, source },
      {
        ...deps.limits,
        client: deps.agents,
        onExchange: (seconds) => deps.metrics.proxyUpstreamDuration.observe(seconds, labels),
        onRetry: () => deps.metrics.proxyRetries.inc(labels)
      }
    ).pipe(Effect.mapError((e) => (Api.isApiError(e) ? refusal(c, e) : e)))
    const answer = answerHeaders(res.headers, c.name, engine.config.server.publicUrl)
    for (const [name, value] of Object.entries(answer)) sink.setHeader(name, value)
    return HttpServerResponse.raw(res.body, { status: res.status, statusText: res.statusText })
  })
