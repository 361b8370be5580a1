/** The authenticated API proxy behind `ANY /v1/proxy/:name/*`: forwards a call to the connection's `api.base_url`
 *  plus the rest of the path and the query, with the token applied per the manifest's `apply` rule.
 *
 *  Why node:http here: the route itself is an ordinary Effect `HttpRouter` route, but the proxy streams both
 *  bodies byte for byte, so it reads the Node request directly and sends with `node:http`/`node:https` (no
 *  automatic decompression, no header normalization, no forbidden-header rules as in `fetch`). The upstream answer
 *  goes back as `HttpServerResponse.raw(stream)`, which Effect pipes with backpressure.
 *
 *  Rules, each with its reason:
 *  - A `..` path segment, plain or percent-encoded (also behind an encoded slash), is refused with 400: URL
 *    parsers resolve `%2e%2e` like `..`, which would let a caller climb out of the API base path.
 *  - Hop-by-hop headers (RFC 9110 §7.6.1: Connection and the names it lists, Keep-Alive, Proxy-*, TE, Trailer,
 *    Transfer-Encoding, Upgrade) are dropped both ways. The caller's Authorization and X-Tessera-Key never go
 *    upstream; the manifest's header carries the connection's token instead.
 *  - Bodies over `maxBodyBytes` get 413: at once when Content-Length says so, else when the count passes it.
 *  - A body with a Content-Length up to `replayBytes` is buffered so that an upstream 401 can be answered by
 *    invalidating the token and retrying ONCE; a larger or chunked body streams through, so its 401 is returned
 *    as is (the body cannot be sent twice) after invalidating the token for the next call.
 *  - The request id goes upstream as X-Request-Id; the answer carries the server's own X-Request-Id.
 *  - No response headers within `timeoutMs` gives 504 (UpstreamTimeout); a body that then stalls that long is cut.
 *    A connection failure gives 502 (TransportError). Both reuse the engine's error codes. */
import { Effect, Redacted } from "effect"
import { HttpServerResponse } from "effect/http"
import * as http from "node:http"
import * as https from "node:https"
import { Template, TokenError, type Connection, type Engine } from "@tessera/engine"
import { Refusal } from "./problem.ts"
import type { Metrics } from "./metrics.ts"

export interface Limits {
  /** Largest request body forwarded; a larger one is answered 413. */
  readonly maxBodyBytes: number
  /** Request bodies with a Content-Length up to this size are buffered so a 401 can be retried once. */
  readonly replayBytes: number
  /** How long the API may take to answer with its headers (then 504), and the longest silence while streaming. */
  readonly timeoutMs: number
}

export const defaultLimits: Limits = { maxBodyBytes: 10 * 1024 * 1024, replayBytes: 1024 * 1024, timeoutMs: 30_000 }

export const checkLimits = (l: Limits): Limits => {
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new TypeError(`proxy limit ${k} must be a positive integer, got ${String(v)}`)
  }
  if (l.replayBytes > l.maxBodyBytes) throw new TypeError("proxy limit replayBytes cannot exceed maxBodyBytes")
  return l
}

/** Keep-alive connection pools for upstream calls, one per server so closing it frees every socket. */
export interface Agents {
  readonly http: http.Agent
  readonly https: https.Agent
  readonly destroy: () => void
}

export const makeAgents = (): Agents => {
  const a = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) }
  return {
    ...a,
    destroy: () => {
      a.http.destroy()
      a.https.destroy()
    }
  }
}

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade"
])

/** The end-to-end headers of a message: without hop-by-hop ones (also those its Connection header names) and
 *  without `drop` (lower-case names). */
export const endToEnd = (
  headers: http.IncomingHttpHeaders,
  drop: ReadonlyArray<string> = []
): Record<string, string | Array<string>> => {
  const connection = headers["connection"]
  const listed = new Set(
    (Array.isArray(connection) ? connection.join(",") : (connection ?? ""))
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean)
  )
  const dropped = new Set(drop)
  const out: Record<string, string | Array<string>> = {}
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase()
    if (value === undefined || hopByHop.has(n) || n.startsWith("proxy-") || listed.has(n) || dropped.has(n)) continue
    out[n] = value
  }
  return out
}

export interface Target {
  /** The raw name segment as sent. */
  readonly name: string
  /** The rest of the path after the connection name, as sent (percent-encoding kept): "" or "/...". */
  readonly rest: string
  /** "" or "?..." as sent. */
  readonly search: string
}

const decode = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

/** Splits the raw request target `/v1/proxy/<name>/<rest>?<query>` and refuses path traversal. */
export const parseTarget = (rawUrl: string): Effect.Effect<Target, Refusal> => {
  const q = rawUrl.indexOf("?")
  const path = q === -1 ? rawUrl : rawUrl.slice(0, q)
  const search = q === -1 ? "" : rawUrl.slice(q)
  const m = /^\/+v1\/+proxy\/+([^/]*)(.*)$/.exec(path)
  if (!m) return Effect.fail(new Refusal({ code: "BadRequest", detail: "expected /v1/proxy/<connection>/<path>" }))
  for (const segment of path.split(/[/\\]/)) {
    const decoded = decode(segment)
    if (decoded === undefined)
      return Effect.fail(new Refusal({ code: "BadRequest", detail: "the path has malformed percent-encoding" }))
    // "%2e%2e" decodes to "..", and "..%2f" hides one behind an encoded slash: check the decoded pieces.
    if (decoded.split(/[/\\]/).some((p) => p === "..")) {
      return Effect.fail(
        new Refusal({
          code: "BadRequest",
          detail: 'the path has a ".." segment; the proxy only reaches paths below the connection\'s API base URL'
        })
      )
    }
  }
  return Effect.succeed({ name: m[1]!, rest: m[2]!, search })
}

/** The connection's API base URL, rendered from its inputs. */
export const apiBase = (c: Connection.Connection): Effect.Effect<URL, Refusal | TokenError.InputInvalid> => {
  const where = { connection: c.name, provider: c.manifest.id }
  if (!c.manifest.api) {
    return Effect.fail(
      new Refusal({
        code: "NoApiBaseUrl",
        ...where,
        detail: `provider "${c.manifest.id}" declares no api.base_url, so calls for connection "${c.name}" cannot be proxied; get its token from GET /v1/connections/${c.name}/token instead`
      })
    )
  }
  const r = Template.render(c.manifest.api.baseUrl, { inputs: (n) => c.inputs.get(n) })
  if (r._tag === "Missing")
    return Effect.fail(new TokenError.InputInvalid({ ...where, details: [`api.base_url needs ${r.names.join(", ")}`] }))
  let url: URL
  try {
    url = new URL(Template.reveal(r.value))
  } catch {
    return Effect.fail(new TokenError.InputInvalid({ ...where, details: ["api.base_url is not an absolute URL"] }))
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    return Effect.fail(new TokenError.InputInvalid({ ...where, details: [`api.base_url uses ${url.protocol}`] }))
  return Effect.succeed(url)
}

/** base + rest + search, checked to stay under the base path on the same origin. */
export const join = (base: URL, t: Target): Effect.Effect<URL, Refusal> => {
  const basePath = base.pathname.replace(/\/+$/, "")
  const rest = t.rest === "" || t.rest.startsWith("/") ? t.rest : `/${t.rest}`
  // String concatenation, never new URL(rest, base): a rest of "//evil.example" must stay a path.
  const url = new URL(`${base.origin}${basePath}${rest}${t.search}`)
  if (
    url.origin !== base.origin ||
    !(url.pathname === basePath || url.pathname.startsWith(`${basePath}/`) || basePath === "")
  ) {
    return Effect.fail(new Refusal({ code: "BadRequest", detail: "the path leaves the connection's API base URL" }))
  }
  return Effect.succeed(url)
}

type Body =
  | { readonly kind: "none" }
  | { readonly kind: "buffered"; readonly data: Buffer }
  | { readonly kind: "stream"; readonly length: number | undefined }

const tooLarge = (limit: number, c: Connection.Connection) =>
  new Refusal({
    code: "PayloadTooLarge",
    detail: `the request body exceeds ${limit} bytes`,
    connection: c.name,
    provider: c.manifest.id
  })

const readAll = (source: http.IncomingMessage, length: number): Effect.Effect<Buffer, Refusal> =>
  Effect.callback<Buffer, Refusal>((resume) => {
    const chunks: Buffer[] = []
    const onData = (c: Buffer) => {
      chunks.push(c)
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.succeed(Buffer.concat(chunks, length)))
    }
    const onClose = () => {
      if (!source.complete) {
        cleanup()
        resume(Effect.fail(new Refusal({ code: "BadRequest", detail: "the request body ended early" })))
      }
    }
    const cleanup = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("close", onClose)
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("close", onClose)
    return Effect.sync(cleanup)
  })

const planBody = (
  source: http.IncomingMessage,
  limits: Limits,
  c: Connection.Connection
): Effect.Effect<Body, Refusal> => {
  const cl = source.headers["content-length"]
  if (cl === undefined)
    return Effect.succeed(
      source.headers["transfer-encoding"] === undefined ? { kind: "none" } : { kind: "stream", length: undefined }
    )
  const length = Number(cl)
  if (!/^\d+$/.test(cl) || !Number.isSafeInteger(length))
    return Effect.fail(new Refusal({ code: "BadRequest", detail: "invalid Content-Length" }))
  if (length > limits.maxBodyBytes) return Effect.fail(tooLarge(limits.maxBodyBytes, c))
  if (length <= limits.replayBytes) return Effect.map(readAll(source, length), (data) => ({ kind: "buffered", data }))
  return Effect.succeed({ kind: "stream", length })
}

interface Call {
  readonly url: URL
  readonly method: string
  readonly headers: Record<string, string | Array<string>>
  readonly body: Body
  readonly source: http.IncomingMessage
  readonly connection: Connection.Connection
}

const displayUrl = (u: URL) => `${u.origin}${u.pathname}`

/** One upstream exchange, up to the response headers. Interruption (the caller went away) destroys it. */
const send = (
  call: Call,
  limits: Limits,
  agents: Agents
): Effect.Effect<http.IncomingMessage, Refusal | TokenError.TransportError | TokenError.UpstreamTimeout> =>
  Effect.callback((resume) => {
    const where = {
      connection: call.connection.name,
      provider: call.connection.manifest.id,
      url: displayUrl(call.url),
      attempts: 1
    }
    const secure = call.url.protocol === "https:"
    const headers = { ...call.headers }
    if (call.body.kind === "buffered") headers["content-length"] = String(call.body.data.length)
    if (call.body.kind === "stream" && call.body.length !== undefined)
      headers["content-length"] = String(call.body.length)
    const upstream = (secure ? https : http).request(call.url, {
      method: call.method,
      headers,
      agent: secure ? agents.https : agents.http
    })
    let settled = false
    const settle = (
      effect: Effect.Effect<http.IncomingMessage, Refusal | TokenError.TransportError | TokenError.UpstreamTimeout>
    ) => {
      if (settled) return
      settled = true
      clearTimeout(deadline)
      resume(effect)
    }
    const deadline = setTimeout(() => {
      settle(Effect.fail(new TokenError.UpstreamTimeout({ ...where, timeoutMs: limits.timeoutMs })))
      upstream.destroy()
    }, limits.timeoutMs)
    upstream.on("response", (res) => {
      // From here on the limit is on silence: a stalled body is cut rather than held open forever.
      upstream.setTimeout(limits.timeoutMs, () => upstream.destroy(new Error("upstream body stalled")))
      settle(Effect.succeed(res))
    })
    // Kept for the whole exchange: an error after the response (a reset mid-body) must not crash the process.
    upstream.on("error", (err: NodeJS.ErrnoException) =>
      settle(Effect.fail(new TokenError.TransportError({ ...where, reason: err.code ?? err.message })))
    )

    const body = call.body
    if (body.kind === "none") upstream.end()
    else if (body.kind === "buffered") upstream.end(body.data)
    else {
      const source = call.source
      let count = 0
      const onData = (chunk: Buffer) => {
        count += chunk.length
        if (count > limits.maxBodyBytes) {
          detach()
          settle(Effect.fail(tooLarge(limits.maxBodyBytes, call.connection)))
          upstream.destroy()
          return
        }
        if (!upstream.write(chunk)) {
          source.pause()
          upstream.once("drain", () => source.resume())
        }
      }
      const onEnd = () => {
        detach()
        upstream.end()
      }
      const onClose = () => {
        if (!source.complete) {
          detach()
          upstream.destroy()
        }
      }
      const detach = () => {
        source.off("data", onData)
        source.off("end", onEnd)
        source.off("close", onClose)
      }
      source.on("data", onData)
      source.on("end", onEnd)
      source.on("close", onClose)
    }
    return Effect.sync(() => {
      clearTimeout(deadline)
      upstream.destroy()
    })
  })

export interface Deps {
  readonly limits: Limits
  readonly agents: Agents
  readonly metrics: Metrics
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
    const base = yield* apiBase(c)
    const url = yield* join(base, target)
    const body = yield* planBody(source, deps.limits, c)
    const applyHeader = c.manifest.apply.header.toLowerCase()
    const headers = endToEnd(source.headers, [
      "host",
      "authorization",
      "x-tessera-key",
      "content-length",
      "expect",
      "x-request-id",
      applyHeader
    ])
    headers["x-request-id"] = requestId
    const method = (source.method ?? "GET").toUpperCase()

    const attempt = Effect.gen(function* () {
      const auth = yield* engine.authorization(c.name)
      const started = performance.now()
      const res = yield* send(
        {
          url,
          method,
          headers: { ...headers, [auth.header.toLowerCase()]: Redacted.value(auth.value) },
          body,
          source,
          connection: c
        },
        deps.limits,
        deps.agents
      )
      deps.metrics.proxyUpstreamDuration.observe((performance.now() - started) / 1000, { provider: c.manifest.id })
      return res
    })

    let res = yield* attempt
    if (res.statusCode === 401) {
      // The API no longer takes the token (revoked, rotated elsewhere): forget it, and try once more with a new one
      // when the body can be sent again. A streamed body is gone, so that 401 goes back; the next call gets a new token.
      yield* engine.invalidate(c.name)
      if (body.kind !== "stream") {
        res.resume()
        deps.metrics.proxyRetries.inc({ provider: c.manifest.id })
        res = yield* attempt
      }
    }
    for (const [name, value] of Object.entries(endToEnd(res.headers, ["x-request-id"]))) sink.setHeader(name, value)
    return HttpServerResponse.raw(res, { status: res.statusCode ?? 502, statusText: res.statusMessage })
  })
