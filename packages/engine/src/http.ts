/** The engine's HTTP seam for token exchanges: the `Http` service sends one request and answers with the whole
 *  response, or an `HttpFailure` that says what went wrong (timeout, too large, network) in plain data; the engine
 *  adds context. Two implementations:
 *
 *  - `make`/`layer` (Node): the engine's one HTTP client, the undici Agent that API calls use too
 *    (internal/api-http.ts). Keep-alive pools per origin; redirects never followed (a token POST must not be replayed
 *    to another host: a 3xx goes back as it is); no retries of its own (upstream.ts owns them); a per-attempt time
 *    limit for the whole exchange; a response size cap (counted after decompression); the request aborted, socket
 *    and all, when the calling fiber is interrupted.
 *  - `makeReplay`/`layerReplay`: answers from recorded exchanges (a fixture's request and response, fixture.ts
 *    `recorded`) with no socket, and keeps what was sent, so tests and `tessera validate --fixtures` run the real
 *    engine in-process. A recording's `delayMs` passes on the Clock, so tests drive it with TestClock. */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { Readable } from "node:stream"
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib"
import * as Undici from "./internal/api-http.ts"

export interface Request {
  readonly method: string
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string | Uint8Array | undefined
}

export interface Response {
  readonly status: number
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: Uint8Array
}

export interface Limits {
  /** The whole exchange, from sending to the last byte of the body. */
  readonly timeoutMs: number
  readonly maxResponseBytes: number
}

export class HttpFailure extends Data.TaggedError("HttpFailure")<{
  readonly reason: "timeout" | "too_large" | "network"
  readonly detail: string
}> {}

export interface HttpShape {
  readonly send: (request: Request, limits: Limits) => Effect.Effect<Response, HttpFailure>
}

export class Http extends Context.Service<Http, HttpShape>()("tessera/Http") {}

/** A header of a message, as Node and Effect hand them over (names in lower case, a value or a list): its first
 *  value, and an empty one counts as absent. The one reading of a header for the engine and the server. */
export const header = (
  headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>,
  name: string
): string | undefined => {
  const v = headers[name]
  const first = typeof v === "string" ? v : v?.[0]
  return first === "" ? undefined : first
}

// ---------------------------------------------------------------------------------------------------------------
// Node: undici

const decoders: Readonly<Record<string, () => NodeJS.ReadWriteStream>> = {
  gzip: createGunzip,
  "x-gzip": createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress
}

/** The body as the server meant it: decompressed when it says so, an error on the wire ending the read. */
const decoded = (body: Readable, encoding: string | ReadonlyArray<string> | undefined): Readable => {
  const make = typeof encoding === "string" ? decoders[encoding.trim().toLowerCase()] : undefined
  if (!make) return body
  const out = make() as unknown as Readable
  body.on("error", (e) => out.destroy(e))
  return body.pipe(out as unknown as NodeJS.WritableStream) as unknown as Readable
}

/** The flow's own headers first (a provider that echoes a request shows them within its first lines), then who is
 *  asking and what it decodes, unless the flow set them. */
const withDefaults = (headers: Readonly<Record<string, string>>): Record<string, string> => {
  const out: Record<string, string> = { ...headers }
  const has = (name: string) => Object.keys(headers).some((k) => k.toLowerCase() === name)
  if (!has("user-agent")) out["user-agent"] = "tessera/0.1"
  if (!has("accept-encoding")) out["accept-encoding"] = "gzip, deflate, br"
  return out
}

const exchange = async (client: Undici.Client, request: Request, limits: Limits, signal: AbortSignal) => {
  const answer = await Undici.send(client, {
    url: new URL(request.url),
    method: request.method,
    headers: withDefaults(request.headers),
    body: request.body ?? null,
    timeoutMs: limits.timeoutMs,
    signal
  })
  const body = await Undici.readBody(decoded(answer.body, answer.headers["content-encoding"]), limits.maxResponseBytes)
  return { status: answer.status, headers: answer.headers, body }
}

/** The Node implementation over `client` (by default the process's shared undici Agent). */
export const make = (client: Undici.Client = Undici.sharedClient()): HttpShape => ({
  send: (request, limits) =>
    Effect.callback<Response, HttpFailure>((resume, signal) => {
      const controller = new AbortController()
      let timedOut = false
      // One timer for the whole attempt: undici's own limits count silences, and a body that trickles must end too.
      const timer = setTimeout(() => {
        timedOut = true
        controller.abort()
      }, limits.timeoutMs)
      const onAbort = () => controller.abort()
      signal.addEventListener("abort", onAbort, { once: true })
      exchange(client, request, limits, controller.signal)
        .then(
          (response) => resume(Effect.succeed(response)),
          (e: unknown) => {
            const f = timedOut
              ? { kind: "timeout" as const, detail: "timed out" }
              : Undici.describe(e, limits.maxResponseBytes)
            resume(Effect.fail(new HttpFailure({ reason: f.kind, detail: f.detail })))
          }
        )
        .finally(() => {
          clearTimeout(timer)
          signal.removeEventListener("abort", onAbort)
        })
      return Effect.sync(() => controller.abort())
    })
})

export const layer: Layer.Layer<Http> = Layer.sync(Http, () => make())

// ---------------------------------------------------------------------------------------------------------------
// Replay: recorded exchanges, no socket

export interface Recorded {
  /** The request it answers; without one, any request (a fixture replay compares what was sent itself). */
  readonly request?: { readonly method: string; readonly url: string } | undefined
  readonly response: Response
  /** How long the answer takes, on the Clock (TestClock in tests). Past the attempt's time limit: a timeout. */
  readonly delayMs?: number | undefined
}

export interface Replay extends HttpShape {
  /** Every request sent so far, in order. */
  readonly sent: ReadonlyArray<Request>
  /** More recordings, answered after the ones given so far for the same method and URL. */
  readonly add: (...recorded: ReadonlyArray<Recorded>) => void
}

const keyOf = (r: { readonly method: string; readonly url: string } | undefined) =>
  r ? `${r.method.toUpperCase()} ${r.url}` : "*"

/** Answers each request with the next recording for its method and URL (else the next one for any request); the
 *  last one answers again once all were used. A request nothing was recorded for fails as a network error that
 *  says so. */
export const makeReplay = (recorded: Iterable<Recorded> = []): Replay => {
  const queues = new Map<string, Recorded[]>()
  const sent: Request[] = []
  const add = (...more: ReadonlyArray<Recorded>) => {
    for (const r of more) {
      const q = queues.get(keyOf(r.request)) ?? []
      q.push(r)
      queues.set(keyOf(r.request), q)
    }
  }
  add(...recorded)
  const next = (request: Request): Recorded | undefined => {
    const q = queues.get(keyOf(request)) ?? queues.get("*")
    return q && q.length > 1 ? q.shift() : q?.[0]
  }
  const send: HttpShape["send"] = (request, limits) =>
    Effect.suspend(() => {
      sent.push(request)
      const r = next(request)
      if (!r)
        return Effect.fail(
          new HttpFailure({ reason: "network", detail: `no recorded exchange for ${request.method} ${request.url}` })
        )
      const delay = r.delayMs ?? 0
      if (delay >= limits.timeoutMs)
        return Effect.andThen(
          Effect.sleep(limits.timeoutMs),
          Effect.fail(new HttpFailure({ reason: "timeout", detail: "timed out" }))
        )
      if (r.response.body.length > limits.maxResponseBytes)
        return Effect.fail(
          new HttpFailure({ reason: "too_large", detail: `response larger than ${limits.maxResponseBytes} bytes` })
        )
      return delay > 0 ? Effect.as(Effect.sleep(delay), r.response) : Effect.succeed(r.response)
    })
  return { send, sent, add }
}

export const layerReplay = (recorded: Iterable<Recorded> = []): Layer.Layer<Http> =>
  Layer.sync(Http, () => makeReplay(recorded))
