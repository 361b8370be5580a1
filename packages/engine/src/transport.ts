/** Sends one HTTP request with got: keep-alive agents, no redirects (a token POST must not be replayed to
 *  another host), no got retries (the engine owns retries), a per-attempt timeout, a response size cap, and
 *  cancellation when the calling fiber is interrupted. Failures are plain data; the engine adds context. */
import { Data, Effect } from "effect"
import got, { type RequestError } from "got"
import { Agent as HttpAgent } from "node:http"
import { Agent as HttpsAgent } from "node:https"

export interface HttpRequest {
  readonly method: string
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body?: string | Uint8Array | undefined
}

export interface HttpResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: Uint8Array
  /** Local epoch ms when the response headers arrived. */
  readonly receivedAt: number
}

export class TransportFailure extends Data.TaggedError("TransportFailure")<{
  readonly reason: "timeout" | "too_large" | "network"
  readonly detail: string
}> {}

export interface TransportOptions {
  readonly timeoutMs: number
  readonly maxResponseBytes: number
}

const agents = {
  http: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
  https: new HttpsAgent({ keepAlive: true, maxSockets: 64 })
}

const describe = (e: RequestError): TransportFailure => {
  if (e.code === "ETIMEDOUT" || e.name === "TimeoutError")
    return new TransportFailure({ reason: "timeout", detail: "timed out" })
  const code = e.code ?? (e.cause as NodeJS.ErrnoException | undefined)?.code
  const text: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    ECONNRESET: "connection reset by the server",
    EPIPE: "connection closed by the server",
    ENOTFOUND: "host not found (DNS)",
    EAI_AGAIN: "DNS lookup failed (temporary)",
    ERR_STREAM_PREMATURE_CLOSE: "connection closed before the response was complete",
    EHOSTUNREACH: "host unreachable",
    ECONNABORTED: "connection aborted",
    ERR_BODY_PARSE_FAILURE: "could not read the response body"
  }
  return new TransportFailure({ reason: "network", detail: (code && text[code]) ?? code ?? "network error" })
}

export const send = (req: HttpRequest, opts: TransportOptions): Effect.Effect<HttpResponse, TransportFailure> =>
  Effect.callback<HttpResponse, TransportFailure>((resume, signal) => {
    const controller = new AbortController()
    const onAbort = () => controller.abort()
    signal.addEventListener("abort", onAbort, { once: true })
    let tooLarge = false
    const request = got(req.url, {
      method: req.method as "POST",
      headers: { "user-agent": "tessera/0.1", ...req.headers },
      body: req.body,
      throwHttpErrors: false,
      followRedirect: false,
      retry: { limit: 0 },
      decompress: true,
      timeout: { request: opts.timeoutMs },
      agent: agents,
      responseType: "buffer",
      signal: controller.signal
    })
    request.on("downloadProgress", (p: { transferred: number }) => {
      if (p.transferred > opts.maxResponseBytes && !tooLarge) {
        tooLarge = true
        controller.abort()
      }
    })
    request
      .then(
        (res) => {
          const receivedAt = Date.now()
          if (res.body.length > opts.maxResponseBytes)
            resume(
              Effect.fail(
                new TransportFailure({
                  reason: "too_large",
                  detail: `response larger than ${opts.maxResponseBytes} bytes`
                })
              )
            )
          else resume(Effect.succeed({ status: res.statusCode, headers: res.headers, body: res.body, receivedAt }))
        },
        (e: RequestError) => {
          if (tooLarge)
            resume(
              Effect.fail(
                new TransportFailure({
                  reason: "too_large",
                  detail: `response larger than ${opts.maxResponseBytes} bytes`
                })
              )
            )
          else resume(Effect.fail(describe(e)))
        }
      )
      .finally(() => signal.removeEventListener("abort", onAbort))
    return Effect.sync(() => controller.abort())
  })
