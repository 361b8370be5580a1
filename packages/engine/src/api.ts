/** Calls a connection's API with its token: the one path behind `tessera.fetch`, `tessera request` and the
 *  server's proxy.
 *
 *  Holds, each once:
 *  - the API base of a connection (`base`), rendered from its inputs and checked once per connection: absolute
 *    http(s), no credentials in the URL, plain http only to loopback unless the connection sets
 *    `allow_insecure_http`;
 *  - where a call goes (`resolve`): a path is joined below the base path (never above it: a `..` segment, also
 *    percent-encoded, is refused); an absolute URL must be on the API origin, unless the caller opts in with
 *    `allowForeignOrigin` (logged as a warning), since the token goes wherever the URL points;
 *  - the token applied per the manifest's `apply` rule (engine.authorization), over the caller's own header;
 *  - the 401 rule (internal/unauthorized.ts): invalidate at most once per token, retry once when the body can be
 *    sent again, and a cool-down when a new token is refused too;
 *  - the sending (internal/api-http.ts), with one HTTP client: an undici Agent (keep-alive pools per origin,
 *    redirects never followed, since a redirect would carry the token elsewhere).
 *
 *  Two forms: `call` buffers both bodies (the library and the CLI), `forward` streams both with backpressure (the
 *  server's proxy: the request body from a Node IncomingMessage, the answer as a Readable for the ServerResponse). */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import type { IncomingMessage } from "node:http"
import type { Dispatcher } from "undici"
import type { Readable } from "node:stream"
import { BodyRefused, ForeignOrigin, NoApiBaseUrl, TargetRefused, type ApiError } from "./api-error.ts"
import { checkUrl, type Connection } from "./connection.ts"
import type { EngineShape } from "./engine.ts"
import { isStatic } from "./static-credential.ts"
import * as Template from "./template.ts"
import { InputInvalid, UpstreamTimeout, type TokenError } from "./token-error.ts"
import * as Held from "./internal/api-held.ts"
import * as Http from "./internal/api-http.ts"
import * as Unauthorized from "./internal/unauthorized.ts"

export { BodyRefused, ForeignOrigin, NoApiBaseUrl, TargetRefused, isApiError, type ApiError } from "./api-error.ts"

/** The connection pools API calls go through (undici). One is shared by the process; a server makes its own so
 *  that closing it frees every socket. */
export type Client = Http.Client
export const makeClient: () => Client = Http.makeClient

// ---------------------------------------------------------------------------------------------------------------
// The API base

/** A connection's API base URL, checked. */
export interface Base {
  readonly origin: string
  /** The base path without trailing slashes: "" or "/restApi". */
  readonly path: string
  /** The URL as rendered from the manifest's template. */
  readonly text: string
  /** Whether a secret input went into it (then it is never shown). */
  readonly secret: boolean
}

const whereOf = (c: Connection) => ({ connection: c.name, provider: c.manifest.id })

const compileBase = (c: Connection): Result.Result<Base, NoApiBaseUrl | InputInvalid> => {
  if (!c.manifest.api) return Result.fail(new NoApiBaseUrl({ ...whereOf(c), missing: [] }))
  const r = Template.render(c.manifest.api.baseUrl, { inputs: (n) => c.inputs.get(n) })
  if (r._tag === "Missing") return Result.fail(new NoApiBaseUrl({ ...whereOf(c), missing: r.names }))
  const text = Template.reveal(r.value)
  const bad = checkUrl(text, c.allowInsecureHttp)
  if (bad)
    return Result.fail(new InputInvalid({ ...whereOf(c), details: [`api.base_url ${bad.message} (${bad.hint})`] }))
  const url = new URL(text)
  return Result.succeed({
    origin: url.origin,
    path: url.pathname.replace(/\/+$/, ""),
    text,
    secret: Template.isSecret(r.value)
  })
}

// A connection is immutable and lives as long as its config generation, so its base is compiled once.
const bases = new WeakMap<Connection, Result.Result<Base, NoApiBaseUrl | InputInvalid>>()

const compiled = (c: Connection): Result.Result<Base, NoApiBaseUrl | InputInvalid> => {
  let b = bases.get(c)
  if (!b) {
    b = compileBase(c)
    bases.set(c, b)
  }
  return b
}

/** The connection's API base, compiled on first use. */
export const base = (c: Connection): Effect.Effect<Base, NoApiBaseUrl | InputInvalid> => Effect.fromResult(compiled(c))

/** The API base URL as it may be shown (listings, inspect): undefined when there is none, or a secret went into it. */
export const shownBase = (c: Connection): string | undefined => {
  const b = compiled(c)
  return Result.isSuccess(b) && !b.success.secret ? b.success.text : undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Where a call goes

export interface ResolveOptions {
  /** WARNING: lets an absolute URL on another origin than the API's carry the connection's token. Logged. */
  readonly allowForeignOrigin?: boolean | undefined
}

/** A resolved destination, as `resolve` returned it: `call` sends to it without resolving again. */
export class Target {
  readonly connection: string
  readonly href: string
  constructor(connection: string, url: URL) {
    this.connection = connection
    this.href = url.href
    Object.freeze(this)
  }
  get url(): URL {
    return new URL(this.href)
  }
}

/** What is wrong with a raw path's segments: a `..` (plain, percent-encoded, or behind an encoded slash or
 *  backslash, in any spelling that some server reads as `..`: see `dotLike`), a `.`, `/` or `\` encoded twice
 *  (`%252e`, `%252f`, `%255c`, at any depth; an overlong UTF-8 or `%u` escape encoded twice), or malformed
 *  percent-encoding. URL parsers resolve `%2e%2e` like `..`, and an API server may decode `%2f`, so either could
 *  climb out of the API base path; an API behind a gateway that decodes once more sees `%252e%252e` as `..`. */
export const pathProblem = (path: string): "dot_segment" | "double_encoded" | "malformed" | undefined => {
  // Every problem needs a dot, a "%" or a character beyond ASCII (what NFKC may fold into a dot): most paths have
  // none of them, and then there is nothing to decode or fold.
  if (!suspect.test(path)) return undefined
  for (const segment of path.split(/[/\\]/)) {
    let decoded: string
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      return "malformed"
    }
    if (decoded.split(/[/\\]/).some(dotLike)) return "dot_segment"
    if (decoded.includes("%") && reencoded(decoded)) return "double_encoded"
  }
  return undefined
}

const suspect = /[.%\u0080-\uffff]/

/** Whether a decoded segment is `..` to some server: its path parameters cut off (`..;x`, which Tomcat, Jetty and
 *  Spring read as `..`), cut at a NUL (C servers), cut at a "?" or "#" (`..%3F`: a server that decodes the path and
 *  parses it again, as mod_rewrite's backreferences do, reads the rest as the query or fragment), cut at a ":"
 *  (NTFS reads `..::$INDEX_ALLOCATION`, a directory's stream, as the directory), without tabs and line breaks (which
 *  a URL parser drops anywhere: `.%09.` is `..` to a server that parses the decoded path again), compatibility
 *  characters folded (NFKC: the fullwidth dot U+FF0E, the leaders U+2024 and U+2025) before it is cut or split, so
 *  that a folded separator counts too (the fullwidth solidus U+FF0F and reverse solidus U+FF3C, `；`, `？`, `：`:
 *  `..／x` is `../x` to a server that folds); then two or more dots and nothing else but whitespace (`...` or
 *  `.. .` is `..` to Windows, which drops a last segment's trailing dots and spaces; ` ..` to a server that trims
 *  a segment). A single `.` stays below the base and is allowed. */
const dotLike = (segment: string): boolean => {
  // Most segments hold no dot and nothing beyond ASCII: nothing to fold.
  if (!/[.\u0080-\uffff]/.test(segment)) return false
  const folded = segment.replace(/[\t\n\r]/g, "").normalize("NFKC")
  return folded.split(/[/\\]/).some((piece) => {
    const cut = piece.split(/[;\0?#:]/, 1)[0]!
    // Whitespace: JavaScript's \s, and NEL (U+0085), which other languages' trimming drops too.
    return /^[.\s\u0085]*$/.test(cut) && cut.indexOf(".") !== cut.lastIndexOf(".")
  })
}

// An escape of ".", "/" or "\\", behind any number of encoded "%", or an overlong UTF-8 lead byte or `%u` escape
// (`%c0%ae`, `%u002e`): what a further decoding, by a lenient or a legacy decoder, may turn into one.
const escapedDot = /%(?:25)*(?:2e|2f|5c|c0|c1|u[0-9a-f]{4})/i

/** Whether a decoded segment still holds a `.`, `/` or `\` that one more decoding, or a few, would produce (also a
 *  `..` in another spelling, see `dotLike`). A decoder that leaves invalid escapes alone is assumed (the lenient
 *  kind), so `%25%32%65` counts too, and so does `..%253b%25` (`..;%` to it); any other `%25` (`%2541`, a literal
 *  percent sign) is an ordinary character. */
const reencoded = (decoded: string): boolean => {
  let s = decoded
  for (let round = 0; round < 4 && s.includes("%"); round++) {
    if (escapedDot.test(s)) return true
    let utf8: string | undefined
    try {
      utf8 = decodeURIComponent(s)
    } catch {
      utf8 = undefined
    }
    if (utf8 !== undefined && utf8.split(/[/\\]/).some(dotLike)) return true
    const next = s.replace(/%[0-9a-f]{2}/gi, (e) => String.fromCharCode(parseInt(e.slice(1), 16)))
    if (next === s) return false
    // The lenient decoding itself, where a malformed escape beside it makes the strict one fail ("..%3b%").
    if (next.split(/[/\\]/).some(dotLike)) return true
    s = next
  }
  return false
}

/** What `pathProblem`'s answers mean, after "the path": one wording for every caller (Api.resolve, the proxy). */
export const pathReasons = {
  dot_segment: 'has a ".." segment; a path reaches only what is below the connection\'s API base URL',
  double_encoded:
    'has a ".", "/" or "\\" percent-encoded twice (%252e, %252f, %255c), which an API that decodes the path once more reads as a "." or ".." segment or a separator, outside what a path below the connection\'s API base URL may reach',
  malformed: "has malformed percent-encoding"
} as const

/** A path (with its query) joined below the base path. String concatenation, never `new URL(path, base)`: a path
 *  of "//evil.example" must stay a path. */
const joinPathSync = (c: Connection, b: Base, target: string): URL | TargetRefused => {
  const cut = target.search(/[?#]/)
  const path = cut === -1 ? target : target.slice(0, cut)
  const refuse = (reason: string) => new TargetRefused({ ...whereOf(c), target: path, reason })
  const problem = pathProblem(path)
  if (problem) return refuse(pathReasons[problem])
  const rest = path === "" || path.startsWith("/") ? path : `/${path}`
  let url: URL
  try {
    url = new URL(`${b.origin}${b.path}${rest}${cut === -1 ? "" : target.slice(cut)}`)
  } catch {
    return refuse("is not a valid path")
  }
  const below = b.path === "" || url.pathname === b.path || url.pathname.startsWith(`${b.path}/`)
  return url.origin === b.origin && below ? url : refuse("leaves the connection's API base URL")
}

const joinPath = (c: Connection, b: Base, target: string): Effect.Effect<URL, TargetRefused> => {
  const u = joinPathSync(c, b, target)
  return u instanceof URL ? Effect.succeed(u) : Effect.fail(u)
}

const absolute = /^[a-z][a-z0-9+.-]*:\/\//i

const resolveAbsolute = (c: Connection, given: string | URL, options: ResolveOptions) =>
  Effect.gen(function* () {
    let url: URL
    try {
      url = new URL(given)
    } catch {
      return yield* new TargetRefused({ ...whereOf(c), target: String(given), reason: "is not a valid URL" })
    }
    const shown = `${url.origin}${url.pathname}`
    const bad = checkUrl(url.href, c.allowInsecureHttp)
    if (bad) return yield* new TargetRefused({ ...whereOf(c), target: shown, reason: bad.message, hint: bad.hint })
    const b = compiled(c)
    const apiOrigin = Result.isSuccess(b) ? b.success.origin : undefined
    if (url.origin === apiOrigin) return url
    if (!options.allowForeignOrigin) return yield* new ForeignOrigin({ ...whereOf(c), origin: url.origin, apiOrigin })
    yield* Effect.logWarning(
      `sending connection ${c.name}'s token to ${url.origin}, outside its API origin ${apiOrigin ?? "(none)"}, because the caller allowed a foreign origin`
    ).pipe(Effect.annotateLogs(whereOf(c)))
    return url
  })

/** Where a call for connection `c` goes: a path (with an optional query) below its API base URL, or an absolute
 *  URL on its API origin (another origin only with `allowForeignOrigin`). */
export const resolve = (
  c: Connection,
  target: string | URL,
  options: ResolveOptions = {}
): Effect.Effect<Target, ApiError | InputInvalid> => {
  const url: Effect.Effect<URL, ApiError | InputInvalid> =
    typeof target !== "string" || absolute.test(target)
      ? resolveAbsolute(c, target, options)
      : Effect.flatMap(base(c), (b) => joinPath(c, b, target))
  return Effect.map(url, (u) => new Target(c.name, u))
}

// ---------------------------------------------------------------------------------------------------------------
// Headers

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade"
])

export type HeaderMap = Http.HeaderMap

/** The end-to-end headers of a message: without hop-by-hop ones (RFC 9110 §7.6.1: Connection and the names it
 *  lists, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade) and without `drop` (lower-case names).
 *  Those belong to one connection, and the client manages its own. */
export const endToEnd = (
  headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>,
  drop: ReadonlyArray<string> = []
): HeaderMap => {
  const connection = headers["connection"]
  // `keep-alive`, the usual value, names a header dropped anyway.
  const listed =
    connection === undefined || connection === "keep-alive" || connection === "Keep-Alive"
      ? undefined
      : new Set(
          (typeof connection === "string" ? connection : connection.join(","))
            .split(",")
            .map((s) => s.trim().toLowerCase())
            .filter(Boolean)
        )
  const dropped = dropSet(drop)
  const out: HeaderMap = {}
  for (const name in headers) {
    const value = headers[name]
    const n = name.toLowerCase()
    if (value === undefined || hopByHop.has(n) || n.startsWith("proxy-") || listed?.has(n) || dropped.has(n)) continue
    out[n] = typeof value === "string" ? value : [...value]
  }
  return out
}

// The drop lists are constants of their callers: one Set each.
const dropSets = new WeakMap<ReadonlyArray<string>, ReadonlySet<string>>()
const dropSet = (drop: ReadonlyArray<string>): ReadonlySet<string> => {
  let s = dropSets.get(drop)
  if (!s) dropSets.set(drop, (s = new Set(drop)))
  return s
}

/** Header lines as a caller gives them (any case, repeated names) as one map; a repeated name joins with ", ". */
const headerMap = (lines: ReadonlyArray<readonly [string, string]>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of lines) {
    const n = k.toLowerCase()
    out[n] = out[n] === undefined ? v : `${out[n]}, ${v}`
  }
  return out
}

/** The caller's headers with the token applied per the manifest's apply rule, in place of any of the caller's; or,
 *  for a key applied as a query parameter, the URL with that parameter set (in place of the caller's). */
const authorize = (engine: EngineShape, c: Connection, headers: HeaderMap, url: URL) =>
  Effect.map(engine.authorization(c.name), (auth) => {
    if (auth.query === undefined)
      return {
        headers: { ...headers, [auth.header.toLowerCase()]: Redacted.value(auth.value) },
        url,
        token: auth.result.accessToken
      }
    const withKey = new URL(url.href)
    withKey.searchParams.set(auth.query, Redacted.value(auth.value))
    return { headers, url: withKey, token: auth.result.accessToken }
  })

/** The 401 rule, except for a static credential: invalidating it changes nothing, so its 401 goes back as is. */
const withRetry = <A extends { readonly status: number; readonly token: Redacted.Redacted<string> }, E>(
  engine: EngineShape,
  c: Connection,
  attempt: Effect.Effect<A, E>,
  options: Unauthorized.RetryOptions<A>
): Effect.Effect<A, E | TokenError> =>
  isStatic(c.manifest) ? attempt : Unauthorized.retryOnce(engine, c, attempt, options)

const displayUrl = (u: URL) => `${u.origin}${u.pathname}`

// ---------------------------------------------------------------------------------------------------------------
// The buffered form: Api.call

export interface CallRequest {
  readonly method: string
  /** A path (with its query) under the API base URL, an absolute URL on the API origin, or what `resolve` gave. */
  readonly target: string | URL | Target
  /** Header lines, as given; hop-by-hop ones are dropped and the token's header is set by tessera. */
  readonly headers?: ReadonlyArray<readonly [string, string]> | undefined
  readonly body?: string | Uint8Array | undefined
}

export interface CallOptions extends ResolveOptions {
  /** The time limit for the whole exchange. Default: the config's `http.total_timeout_ms`. */
  readonly timeoutMs?: number | undefined
  /** The largest response body read. Default: 100 MiB (API answers such as exports are large). */
  readonly maxResponseBytes?: number | undefined
  readonly client?: Client | undefined
}

export interface CallResponse {
  readonly url: URL
  readonly status: number
  /** The reason phrase the API sent. */
  readonly statusText: string
  /** As received, names in lower case, a repeated header once per value. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Uint8Array
  /** The token the answer was obtained with, so that a caller can mask an API that echoes it. */
  readonly token: Redacted.Redacted<string>
}

export const defaultMaxResponseBytes = 100 * 1024 * 1024

const headerLines = (headers: Http.Answer["headers"]): ReadonlyArray<readonly [string, string]> =>
  Object.entries(headers).flatMap(([k, v]) =>
    v === undefined ? [] : typeof v === "string" ? [[k, v] as const] : v.map((x) => [k, x] as const)
  )

// Never taken from the caller: the client frames the body and picks the host from the URL.
const framing = ["host", "content-length", "expect"]

interface Exchange {
  readonly client: Http.Client
  readonly url: URL
  readonly method: string
  readonly body: string | Uint8Array | null
  readonly timeoutMs: number
  readonly maxResponseBytes: number
  readonly where: Http.Where
}

/** One exchange with both bodies in memory, all of it within `timeoutMs`. */
const exchangeAll = (x: Exchange, headers: HeaderMap) =>
  Effect.tryPromise({
    try: async (signal) => {
      const a = await Http.send(x.client, { ...x, headers, signal })
      return { ...a, body: await Http.readBody(a.body, x.maxResponseBytes) }
    },
    catch: (e) => Http.failureOf(e, x.where, x)
  }).pipe(
    Effect.timeoutOrElse({
      duration: x.timeoutMs,
      orElse: () => Effect.fail(new UpstreamTimeout({ ...x.where, timeoutMs: x.timeoutMs, attempts: 1 }))
    })
  )

/** One API call for `connection`, both bodies buffered, so a 401 can always be retried once. */
export const call = (
  engine: EngineShape,
  connection: string,
  request: CallRequest,
  options: CallOptions = {}
): Effect.Effect<CallResponse, ApiError | TokenError> =>
  Effect.gen(function* () {
    const c = yield* engine.connection(connection)
    const target =
      request.target instanceof Target && request.target.connection === c.name
        ? request.target
        : yield* resolve(c, request.target instanceof Target ? request.target.url : request.target, options)
    const url = target.url
    const exchange = {
      client: options.client ?? Http.sharedClient(),
      url,
      method: request.method,
      body: request.body ?? null,
      timeoutMs: options.timeoutMs ?? engine.config.http.totalTimeoutMs,
      maxResponseBytes: options.maxResponseBytes ?? defaultMaxResponseBytes,
      where: { ...whereOf(c), url: displayUrl(url) }
    }
    const headers = endToEnd(headerMap(request.headers ?? []), framing)
    const attempt = Effect.gen(function* () {
      const auth = yield* authorize(engine, c, headers, url)
      const answer = yield* exchangeAll({ ...exchange, url: auth.url }, auth.headers)
      return { ...answer, url, headers: headerLines(answer.headers), token: auth.token }
    })
    return yield* withRetry(engine, c, attempt, { replayable: true })
  })

// ---------------------------------------------------------------------------------------------------------------
// The streaming form: Api.forward

export interface ForwardLimits {
  /** Largest request body forwarded; a larger one is refused (BodyRefused too_large). */
  readonly maxBodyBytes: number
  /** Request bodies with a Content-Length up to this size are buffered so a 401 can be retried once. */
  readonly replayBytes: number
  /** How long the API may take to answer with its headers (then UpstreamTimeout), and the longest silence while
   *  its body streams (then the body is cut). */
  readonly timeoutMs: number
}

export interface ForwardRequest {
  readonly method: string
  /** A path with its query, below the API base URL, as the caller sent it (percent-encoding kept). */
  readonly path: string
  /** End-to-end headers to send; the token's header is set by tessera. */
  readonly headers: HeaderMap
  /** The caller's request, whose body is forwarded. */
  readonly source: IncomingMessage
}

export interface ForwardOptions extends ForwardLimits {
  readonly client?: Client | undefined
  /** Called after each exchange that got response headers, with its duration in seconds. */
  readonly onExchange?: ((seconds: number) => void) | undefined
  /** Called when a 401 is retried. */
  readonly onRetry?: (() => void) | undefined
}

/** The API's answer, its body still streaming: give it to the caller's ServerResponse (pipe, with backpressure). */
export interface Streamed {
  readonly status: number
  readonly statusText: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: Readable
}

/** Forwards the caller's request for connection `c` to its API and answers with the API's response, both bodies
 *  streamed. A body small enough to buffer makes a 401 retryable once; a streamed one's 401 goes back as is. */
export const forward = (
  engine: EngineShape,
  c: Connection,
  request: ForwardRequest,
  options: ForwardOptions
): Effect.Effect<Streamed, ApiError | TokenError> =>
  Effect.gen(function* () {
    const url = yield* Effect.flatMap(base(c), (b) => joinPath(c, b, request.path))
    const refuse = (reason: BodyRefused["reason"]) =>
      new BodyRefused({ ...whereOf(c), reason, limit: options.maxBodyBytes })
    const body = yield* Http.planBody(request.source, options, refuse)
    const client = options.client ?? Http.sharedClient()
    const where = { ...whereOf(c), url: displayUrl(url) }
    const headers: HeaderMap = { ...request.headers }
    if (body.kind === "stream" && body.length !== undefined) headers["content-length"] = String(body.length)
    const attempt = Effect.gen(function* () {
      const auth = yield* authorize(engine, c, headers, url)
      const started = performance.now()
      const answer = yield* Effect.tryPromise({
        try: (signal) =>
          Http.send(client, {
            url: auth.url,
            method: request.method,
            headers: auth.headers,
            body: Http.payload(body, request.source, options.maxBodyBytes, refuse),
            timeoutMs: options.timeoutMs,
            signal
          }),
        catch: (e) => Http.failureOf(e, where, options)
      })
      options.onExchange?.((performance.now() - started) / 1000)
      return { ...answer, token: auth.token }
    })
    return yield* withRetry(engine, c, attempt, {
      replayable: body.kind !== "stream",
      // Read and dropped (up to undici's small limit), so the connection can serve the retry.
      discard: (a) => Effect.promise(() => a.body.dump().catch(() => undefined)),
      onRetry: options.onRetry
    })
  })

// ---------------------------------------------------------------------------------------------------------------
// The streaming form's hot path: Api.forwardFast

/** Runs an effect for `forwardFast` (with the caller's logger, tracer and log level) to its Exit. */
export type Runner = <A, E>(effect: Effect.Effect<A, E>) => Promise<Exit.Exit<A, E>>

/** An API's answer held at its head (internal/api-held.ts): `into` writes its body straight into a Writable. */
export type HeldAnswer = Held.Held

export type FastOutcome =
  | { readonly _tag: "Answered"; readonly answer: HeldAnswer }
  | { readonly _tag: "Failed"; readonly error: ApiError | TokenError }

// The characters of a path and query that URL parsing leaves as they are (RFC 3986 unreserved, sub-delims, ":",
// "@", "/", "?" and percent-escapes).
const plain = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/

/** The request path below the base path, as `joinPath` would resolve it, when that needs no URL parsing: plain
 *  characters, no `.` segment and nothing `pathProblem` refuses (a `..` in any spelling, an escape encoded twice).
 *  Else undefined (then `joinPath` decides, and refuses what it must). */
const plainPath = (b: Base, target: string): string | undefined => {
  if (!plain.test(target)) return undefined
  const q = target.indexOf("?")
  const path = q === -1 ? target : target.slice(0, q)
  if (path !== "" && !path.startsWith("/")) return undefined
  // The check `joinPath` makes, here too: this path must not send what that one refuses (`..;/admin`, say).
  if (pathProblem(path) !== undefined) return undefined
  if (path.includes(".") || path.includes("%2") || path.includes("%5")) {
    // A dot, or an escape that may spell one or a slash: only when no segment decodes to "." or "..".
    for (const segment of path.split("/")) {
      let d: string
      try {
        d = decodeURIComponent(segment)
      } catch {
        return undefined
      }
      if (d === "." || d === ".." || /[/\\]/.test(d)) return undefined
    }
  }
  const joined = `${b.path}${path}`
  return `${joined === "" ? "/" : joined}${q === -1 ? "" : target.slice(q)}`
}

/** `forward` without a fiber, for the common case: a request without a body (no Content-Length, no
 *  Transfer-Encoding, so it can always be sent again), a fresh token in this process (`engine.peekAuthorization`)
 *  and a path that resolves below the API base URL. Returns undefined when any of these does not hold: the caller
 *  then runs `forward`, which answers every other case (and every refusal) in its one place. Otherwise the same
 *  exchange as `forward`: the same headers, time limits and client; after a 401 the same rule
 *  (internal/unauthorized.ts), run with `run`, then at most one retry with the token then current. */
export const forwardFast = (
  engine: EngineShape,
  c: Connection,
  request: ForwardRequest,
  options: ForwardOptions & { readonly run: Runner }
): Promise<FastOutcome> | undefined => {
  const src = request.source.headers
  if (src["content-length"] !== undefined || src["transfer-encoding"] !== undefined) return undefined
  const b = compiled(c)
  if (!Result.isSuccess(b)) return undefined
  const path = plainPath(b.success, request.path)
  if (path === undefined) return undefined
  const auth = engine.peekAuthorization(c.name)
  if (!auth) return undefined
  const client = options.client ?? Http.sharedClient()
  const origin = b.success.origin
  const send = (a: { readonly header: string; readonly value: Redacted.Redacted<string> }) => {
    const started = performance.now()
    const sent = (d: Dispatcher) =>
      Held.hold(d, {
        origin,
        path,
        method: request.method,
        headers: { ...request.headers, [a.header.toLowerCase()]: Redacted.value(a.value) },
        timeoutMs: options.timeoutMs,
        onHead: options.onExchange && (() => options.onExchange?.((performance.now() - started) / 1000))
      })
    const ready = client.ready()
    return ready ? sent(ready) : client.dispatcher().then(sent)
  }
  // Where a failure happened, for its message: built only when one does.
  const where = () => {
    const q = path.indexOf("?")
    return { ...whereOf(c), url: `${origin}${q === -1 ? path : path.slice(0, q)}` }
  }
  const failed = (e: unknown): FastOutcome => ({ _tag: "Failed", error: Http.failureOf(e, where(), options) })
  return send(auth).then((first): FastOutcome | Promise<FastOutcome> => {
    if (first.status !== 401) {
      Unauthorized.onAccepted(engine, c)
      return { _tag: "Answered", answer: first }
    }
    // The rare path, as `forward` takes it (Unauthorized.retryOnce), with the first answer already in hand.
    const retry = Effect.gen(function* () {
      const decision = yield* Unauthorized.onUnauthorized(engine, c, auth.result.accessToken)
      if (decision === "return") return first
      first.discard()
      options.onRetry?.()
      const next = yield* engine.authorization(c.name)
      const second = yield* Effect.tryPromise({
        try: () => send(next),
        catch: (e) => Http.failureOf(e, where(), options)
      })
      // Held until someone takes it: a failure here (the token store, say) must not leave it pinning its socket.
      if (second.status === 401)
        yield* Unauthorized.onUnauthorized(engine, c, next.result.accessToken).pipe(
          Effect.onError(() => Effect.sync(() => second.discard()))
        )
      else Unauthorized.onAccepted(engine, c)
      return second
    })
    return options.run(retry).then((exit): FastOutcome => {
      if (Exit.isSuccess(exit)) return { _tag: "Answered", answer: exit.value }
      // The first answer is held until someone takes it: a failed retry drops it.
      first.discard()
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "Some") return { _tag: "Failed", error: error.value }
      throw Cause.squash(exit.cause)
    })
  }, failed)
}
