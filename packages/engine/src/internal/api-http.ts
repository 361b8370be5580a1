/** The engine's one HTTP client (undici), as API calls (api.ts) and token exchanges (http.ts) use it: the client,
 *  one exchange, what its failures mean (one table for both), and the caller's request body for the streaming form
 *  of API calls (buffered when small enough to send twice, else streamed and counted against the limit).
 *
 *  @internal */
// A reference, not an import: the declarations must reach every program that compiles this file (server, CLI).
// oxlint-disable-next-line typescript/triple-slash-reference
/// <reference path="./undici-lib.d.ts" />
import * as Effect from "effect/Effect"
import type { IncomingMessage } from "node:http"
import { Readable } from "node:stream"
import type { Agent, Dispatcher } from "undici"
import { BodyRefused } from "../api-error.ts"
import { TransportError, UpstreamTimeout } from "../token-error.ts"

// ---------------------------------------------------------------------------------------------------------------
// The client

/** The connection pools API calls go through. One is shared by the process; a server makes its own so that
 *  closing it frees every socket. */
export interface Client {
  readonly dispatcher: () => Promise<Dispatcher>
  /** The dispatcher once `dispatcher()` has loaded it, else undefined: a hot path's request then waits for nothing. */
  readonly ready: () => Dispatcher | undefined
  readonly destroy: () => void
}

/** undici's Agent with the dispatcher API (`request`, `stream`, ...) on its prototype, as undici's index sets it up,
 *  without the rest of its index: fetch, WebSocket, EventSource, the mock, proxy and cache agents. The index is 418
 *  modules (about 22 MB of a server's memory); these are 89 (about 10 MB). Node and a bundle (the published CLI)
 *  give a CommonJS module's exports as the namespace's `default`. */
const loadAgent = (): Promise<typeof Agent> =>
  Promise.all([
    import("undici/lib/dispatcher/agent.js"),
    import("undici/lib/dispatcher/dispatcher.js"),
    import("undici/lib/api/index.js")
  ]).then(([agent, dispatcher, api]) => {
    Object.assign(dispatcher.default.prototype, api.default)
    return agent.default
  })

export const makeClient = (): Client => {
  // undici is loaded on the first call: most CLI runs make none, and it costs start-up time. Keep-alive pools per
  // origin are its default, and idle sockets do not hold the process open. No redirect interceptor: a 3xx goes
  // back to the caller as it is, so the token never follows a Location elsewhere.
  let agent: Promise<Agent> | undefined
  let loaded: Agent | undefined
  return {
    dispatcher: () =>
      (agent ??= loadAgent().then((A) => {
        loaded = new A({ keepAliveTimeout: 4_000 })
        return loaded
      })),
    ready: () => loaded,
    destroy: () => void agent?.then((a) => a.destroy()).catch(() => undefined)
  }
}

let shared: Client | undefined
export const sharedClient = (): Client => (shared ??= makeClient())

// ---------------------------------------------------------------------------------------------------------------
// One exchange

export type HeaderMap = Record<string, string | Array<string>>

export interface Where {
  readonly connection: string
  readonly provider: string
  /** Origin and path, never the query. */
  readonly url: string
}

export interface Answer {
  readonly status: number
  readonly statusText: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: Dispatcher.ResponseData["body"]
}

class ResponseTooLarge extends Error {}

/** The API's reason phrase when a status line may carry it on (RFC 9112 §4: HTAB, SP, visible ASCII), else "".
 *  Whatever else undici decoded (obs-text, which it reads as UTF-8) makes Node's writeHead throw, so a hostile API
 *  could fail every answer a server's proxy writes for it. */
export const reasonOf = (text: string | undefined): string =>
  text !== undefined && /^[\t\x20-\x7e]*$/.test(text) ? text : ""

const reasons: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset by the server",
  EPIPE: "connection closed by the server",
  UND_ERR_SOCKET: "connection closed by the server",
  ENOTFOUND: "host not found (DNS)",
  EAI_AGAIN: "DNS lookup failed (temporary)",
  EHOSTUNREACH: "host unreachable",
  ECONNABORTED: "connection aborted",
  ERR_STREAM_PREMATURE_CLOSE: "connection closed before the response was complete",
  Z_DATA_ERROR: "could not read the response body (bad compression)",
  Z_BUF_ERROR: "could not read the response body (bad compression)",
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: "the request body did not match its Content-Length",
  UND_ERR_INVALID_ARG: "the request could not be sent (an invalid header)",
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: "the response body did not match its Content-Length"
}

const timeouts = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT", "UND_ERR_CONNECT_TIMEOUT"])

const codeOf = (e: unknown): string | undefined => {
  if (typeof e !== "object" || e === null) return undefined
  if ("code" in e && typeof e.code === "string") return e.code
  return "cause" in e ? codeOf(e.cause) : undefined
}

/** What went wrong in an exchange, never in the error's own words (they may quote a header). */
export interface Failure {
  readonly kind: "timeout" | "too_large" | "network"
  readonly detail: string
}

export const describe = (e: unknown, maxResponseBytes?: number): Failure => {
  if (e instanceof ResponseTooLarge)
    return { kind: "too_large", detail: `response larger than ${maxResponseBytes} bytes` }
  const code = codeOf(e)
  if (code !== undefined && timeouts.has(code)) return { kind: "timeout", detail: "timed out" }
  return { kind: "network", detail: (code && reasons[code]) ?? code ?? "network error" }
}

/** A failure of an API exchange as the engine's errors; a body refusal passes through. */
export const failureOf = (
  e: unknown,
  where: Where,
  limits: { readonly timeoutMs: number; readonly maxResponseBytes?: number }
): TransportError | UpstreamTimeout | BodyRefused => {
  if (e instanceof BodyRefused) return e
  const base = { ...where, attempts: 1 }
  const f = describe(e, limits.maxResponseBytes)
  return f.kind === "timeout"
    ? new UpstreamTimeout({ ...base, timeoutMs: limits.timeoutMs })
    : new TransportError({ ...base, reason: f.detail })
}

export type SendBody = string | Uint8Array | Readable | null

/** One exchange, up to the response headers. `timeoutMs` bounds the wait for the headers and, afterwards, each
 *  silence of the body (a stalled body is cut). An aborted `signal` aborts it. */
export const send = (
  client: Client,
  request: {
    readonly url: URL
    readonly method: string
    readonly headers: HeaderMap
    readonly body: SendBody
    readonly timeoutMs: number
    readonly signal?: AbortSignal | undefined
  }
): Promise<Answer> =>
  sendTo(client, { ...request, origin: request.url.origin, path: `${request.url.pathname}${request.url.search}` })

/** `send` to an origin and a request path already resolved (the proxy's hot path, which parses no URL). */
export const sendTo = (
  client: Client,
  request: {
    readonly origin: string
    readonly path: string
    readonly method: string
    readonly headers: HeaderMap
    readonly body: SendBody
    readonly timeoutMs: number
    readonly signal?: AbortSignal | undefined
  }
): Promise<Answer> =>
  client
    .dispatcher()
    .then((d) =>
      d.request({
        origin: request.origin,
        path: request.path,
        method: request.method,
        headers: request.headers,
        body: request.body,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
        signal: request.signal ?? null
      })
    )
    .then((r) => {
      // Until someone reads it, an error on the body (a reset mid-body) must not become an uncaught exception.
      r.body.on("error", () => undefined)
      return { status: r.statusCode, statusText: reasonOf(r.statusText), headers: r.headers, body: r.body }
    })

/** The whole body, or ResponseTooLarge past `max` bytes (the rest is not read). */
export const readBody = async (body: Readable, max: number): Promise<Uint8Array> => {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length
    if (total > max) {
      body.destroy()
      throw new ResponseTooLarge()
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, total)
}

// ---------------------------------------------------------------------------------------------------------------
// The caller's request body (the streaming form)

export interface BodyLimits {
  /** Largest body forwarded. */
  readonly maxBodyBytes: number
  /** Bodies with a Content-Length up to this size are buffered, so they can be sent twice. */
  readonly replayBytes: number
}

/** How the caller's body goes: none, buffered (small, with a Content-Length), or streamed. */
export type RequestBody =
  | { readonly kind: "none" }
  | { readonly kind: "buffered"; readonly data: Buffer }
  | { readonly kind: "stream"; readonly length: number | undefined }

type Refuse = (reason: BodyRefused["reason"]) => BodyRefused

const readRequest = (source: IncomingMessage, length: number, refuse: Refuse) =>
  Effect.callback<Buffer, BodyRefused>((resume) => {
    const chunks: Buffer[] = []
    const onData = (chunk: Buffer) => void chunks.push(chunk)
    const onEnd = () => {
      detach()
      resume(Effect.succeed(Buffer.concat(chunks, length)))
    }
    const onClose = () => {
      if (source.complete) return
      detach()
      resume(Effect.fail(refuse("incomplete")))
    }
    const detach = () => {
      source.off("data", onData).off("end", onEnd).off("close", onClose)
    }
    source.on("data", onData).on("end", onEnd).on("close", onClose)
    return Effect.sync(detach)
  })

/** Reads the caller's headers to decide how its body goes; a small one is read here. */
export const planBody = (
  source: IncomingMessage,
  limits: BodyLimits,
  refuse: Refuse
): Effect.Effect<RequestBody, BodyRefused> => {
  const cl = source.headers["content-length"]
  if (cl === undefined)
    return Effect.succeed(
      source.headers["transfer-encoding"] === undefined ? { kind: "none" } : { kind: "stream", length: undefined }
    )
  const length = Number(cl)
  if (!/^\d+$/.test(cl) || !Number.isSafeInteger(length)) return Effect.fail(refuse("invalid_length"))
  if (length > limits.maxBodyBytes) return Effect.fail(refuse("too_large"))
  if (length <= limits.replayBytes)
    return Effect.map(readRequest(source, length, refuse), (data) => ({ kind: "buffered", data }))
  return Effect.succeed({ kind: "stream", length })
}

/** The caller's body as it arrives, counted: past the limit it stops with BodyRefused. Read without destroying
 *  the caller's request when it stops, so that the refusal can still be answered. */
async function* counted(source: IncomingMessage, limit: number, refuse: Refuse) {
  let total = 0
  try {
    for await (const chunk of source.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      total += chunk.length
      if (total > limit) throw refuse("too_large")
      yield chunk
    }
  } catch (e) {
    throw e instanceof BodyRefused ? e : refuse("incomplete")
  }
}

/** What to send for a planned body. A stream is pulled as the API reads it: backpressure reaches the caller. */
export const payload = (body: RequestBody, source: IncomingMessage, limit: number, refuse: Refuse): SendBody => {
  switch (body.kind) {
    case "none":
      return null
    case "buffered":
      return body.data
    case "stream":
      return Readable.from(counted(source, limit, refuse), { objectMode: false })
  }
}
