/** One token-endpoint exchange with retries: send the flow's request, decode the answer, and retry transient
 *  failures (network errors, 5xx, 429) with exponential backoff and jitter, honouring Retry-After, within an
 *  overall time limit. Credentials rejected (4xx, invalid_grant) are never retried. */
import { Clock, Effect, Random } from "effect"
import type { HttpSettings } from "./config.ts"
import type { Connection } from "./connection.ts"
import type { FlowSpec } from "./manifest.ts"
import * as Observability from "./observability.ts"
import * as Redaction from "./redaction.ts"
import * as Template from "./template.ts"
import type { Token } from "./token.ts"
import {
  InputInvalid,
  ResponseInvalid,
  TransportError,
  UpstreamTimeout,
  type UpstreamRejected,
  type UpstreamError
} from "./token-error.ts"
import * as TokenRequest from "./token-request.ts"
import * as TokenResponse from "./token-response.ts"
import * as Transport from "./transport.ts"

export interface Exchange {
  readonly token: Token
  readonly skewMs: number
  readonly attempts: number
  readonly durationMs: number
}

/** The Basic credentials (`id:secret`) a flow sends, when it authenticates with client_secret_basic and a secret
 *  went into them: their base64 is on the wire, so a provider echoing the request must not show it either. */
const basicOf = (c: Connection, flow: FlowSpec | undefined): ReadonlyArray<string> => {
  if (!flow) return []
  const ctx = { inputs: (n: string) => c.inputs.get(n) }
  const method = Template.render(flow.clientAuth.method, ctx)
  if (method._tag !== "Value" || Template.reveal(method.value) !== "client_secret_basic") return []
  const id = Template.render(flow.clientAuth.id, ctx)
  const secret = Template.render(flow.clientAuth.secret, ctx)
  if (id._tag !== "Value" || secret._tag !== "Value") return []
  if (!Template.isSecret(id.value) && !Template.isSecret(secret.value)) return []
  return Redaction.basicCredentials(Template.reveal(id.value), Template.reveal(secret.value))
}

/** Every secret value this connection could put on the wire, for `Redaction.scrub` to keep out of provider text:
 *  its secret inputs, the Basic credentials its flows build from them, and the tokens it holds. */
export const secretsOf = (c: Connection, token?: Token): ReadonlyArray<string> => {
  const out = new Set<string>()
  for (const v of c.inputs.values()) if (Template.isSecret(v)) out.add(Template.reveal(v))
  for (const flow of [c.manifest.flows.acquire, c.manifest.flows.refresh])
    for (const credentials of basicOf(c, flow)) out.add(credentials)
  if (token) {
    out.add(Template.reveal(token.accessToken))
    if (token.refreshToken) out.add(Template.reveal(token.refreshToken))
  }
  return [...out]
}

const displayUrl = (url: string) => {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`
  } catch {
    return "(invalid URL)"
  }
}

export const backoffMs = (attempt: number, random: number): number =>
  Math.min(5000, 250 * 2 ** (attempt - 1)) * (0.8 + 0.4 * random)

/** Bounded without an outer timeout (which would fork a fiber per acquisition): each attempt's timeout is cut to the
 *  time left, and a retry whose delay would pass the deadline is not made. */
export const exchange = (
  connection: Connection,
  flow: FlowSpec,
  http: HttpSettings,
  current?: Token
): Effect.Effect<Exchange, UpstreamError | InputInvalid> => {
  const where = { connection: connection.name, provider: connection.manifest.id }
  const built = TokenRequest.build(connection, flow, current)
  if (built._tag === "Invalid") return Effect.fail(new InputInvalid({ ...where, details: built.details }))
  const secrets = secretsOf(connection, current)
  // The URL goes into timeout and transport errors: a secret input templated into its path must not.
  const url = Redaction.scrub(displayUrl(built.request.url), secrets)
  return Effect.gen(function* () {
    const wire = TokenRequest.encode(built.request)
    const started = yield* Clock.currentTimeMillis
    const deadline = started + http.totalTimeoutMs
    for (let attempt = 1; ; attempt++) {
      const sentAt = yield* Clock.currentTimeMillis
      const result = yield* Effect.result(
        Transport.send(
          { method: built.request.method, url: wire.url, headers: wire.headers, body: wire.body },
          {
            timeoutMs: Math.min(http.timeoutMs, Math.max(1, deadline - sentAt)),
            maxResponseBytes: http.maxResponseBytes
          }
        )
      )
      const now = yield* Clock.currentTimeMillis
      let failure: UpstreamError
      let retryAfter: number | undefined
      if (result._tag === "Failure") {
        const f = result.failure
        if (f.reason === "too_large")
          return yield* new ResponseInvalid({ ...where, status: 200, field: "body", problem: f.detail })
        failure =
          f.reason === "timeout"
            ? new UpstreamTimeout({ ...where, url, timeoutMs: http.timeoutMs, attempts: attempt })
            : new TransportError({ ...where, url, reason: f.detail, attempts: attempt })
      } else {
        const decoded = TokenResponse.decode(
          { ...result.success, receivedAt: now },
          { connection, sentAt, attempts: attempt, secrets }
        )
        if (decoded._tag === "Token")
          return { token: decoded.token, skewMs: decoded.skewMs, attempts: attempt, durationMs: now - started }
        if (decoded._tag === "Invalid") return yield* decoded.error
        failure = decoded.error
        retryAfter = decoded.retryAfterMs
        const kind = (failure as UpstreamRejected).kind
        if (kind !== "transient" && kind !== "rate_limit") return yield* failure
      }
      if (attempt > http.retries) return yield* failure
      const delay = retryAfter ?? backoffMs(attempt, yield* Random.next)
      if (now + delay >= deadline) return yield* failure
      yield* Effect.logDebug(`retrying ${flow.name} after ${failure._tag}`).pipe(
        Effect.annotateLogs({
          connection: connection.name,
          provider: connection.manifest.id,
          attempt,
          delayMs: Math.round(delay)
        })
      )
      yield* Effect.sleep(delay)
    }
  }).pipe(Observability.exchangeSpan(connection.name, connection.manifest.id, flow.name))
}
