/** One token-endpoint exchange with retries: send the flow's request through `Http`, decode the answer, and retry
 *  transient failures (network errors, 5xx, 429) on `retryPolicy`, a Schedule keyed on the error's kind:
 *  exponential backoff with jitter, the provider's Retry-After, within an overall time limit. Credentials rejected
 *  (4xx, invalid_grant) are never retried. */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type { HttpSettings } from "./config.ts"
import * as Assertion from "./assertion.ts"
import type { Connection } from "./connection.ts"
import * as Discovery from "./discovery.ts"
import * as Http from "./http.ts"
import type { FlowSpec } from "./manifest.ts"
import * as Observability from "./observability.ts"
import * as Redaction from "./redaction.ts"
import * as Template from "./template.ts"
import type { Token } from "./token.ts"
import { InputInvalid, ResponseInvalid, TransportError, UpstreamTimeout, type UpstreamError } from "./token-error.ts"
import * as TokenRequest from "./token-request.ts"
import * as TokenResponse from "./token-response.ts"

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

/** One attempt's failure, with the provider's Retry-After when it sent one: what the retry Schedule reads. */
class Failed {
  readonly error: UpstreamError | InputInvalid
  readonly retryAfterMs: number | undefined
  constructor(error: UpstreamError | InputInvalid, retryAfterMs?: number) {
    this.error = error
    this.retryAfterMs = retryAfterMs
  }
}

/** Worth another attempt: the network, a timeout, or a rejection the manifest calls transient or rate_limit. Never a
 *  credential rejection (reauthenticate), any other rejection, or an answer that cannot be read. */
export const isRetryable = (e: UpstreamError): boolean =>
  e._tag === "UpstreamTimeout" ||
  e._tag === "TransportError" ||
  (e._tag === "UpstreamRejected" && (e.kind === "transient" || e.kind === "rate_limit"))

/** When to try again: exponential from 250 ms, capped at 5 s, with jitter (x0.8 to x1.2), or the provider's
 *  Retry-After as given; at most `http.retries` times, and never when the delay would pass `deadline`. */
export const retryPolicy = (http: HttpSettings, deadline: number) =>
  Schedule.min([Schedule.exponential(250, 2), Schedule.spaced(5000)]).pipe(
    Schedule.jittered,
    Schedule.setInputType<Failed>(),
    Schedule.modifyDelay(({ input, duration }) => Effect.succeed(input.retryAfterMs ?? duration)),
    Schedule.while(({ input }) => input.error._tag !== "InputInvalid" && isRetryable(input.error)),
    Schedule.upTo({ times: http.retries }),
    Schedule.while(({ now, duration }) => now + Duration.toMillis(duration) < deadline)
  )

/** The flow's request sent once and its answer decoded: a token, or why not. */
const attempt = (
  connection: Connection,
  built: TokenRequest.TokenRequest,
  http: HttpSettings,
  context: {
    /** The URL for an error's message, secrets masked: rendered only when an error needs it. */
    readonly url: () => string
    readonly secrets: ReadonlyArray<string>
    readonly deadline: number
    readonly n: number
  }
): Effect.Effect<TokenResponse.Decoded & { readonly _tag: "Token" }, Failed, Http.Http> =>
  Effect.gen(function* () {
    const where = { connection: connection.name, provider: connection.manifest.id }
    const sentAt = yield* Clock.currentTimeMillis
    // Signed per attempt: a server refuses a JWT whose jti it has seen (RFC 7523 §3, item 7).
    const signed = yield* Assertion.complete(connection, built, sentAt).pipe(Effect.mapError((e) => new Failed(e)))
    const wire = TokenRequest.encode(signed)
    // The JWTs just signed (the entries `complete` added), so that a provider echoing them cannot show them.
    const before = new Set<unknown>([...built.headers, ...(built.form ?? [])])
    const jwts = [...signed.headers, ...(signed.form ?? []), ...Object.values(signed.json ?? {})]
      .filter((e) => !before.has(e) && (Array.isArray(e) || Redacted.isRedacted(e)))
      .flatMap((e) => {
        const v = Array.isArray(e) ? (e as readonly [string, Template.Value])[1] : e
        if (!Template.isSecret(v as Template.Value)) return []
        const text = Redacted.value(v as Redacted.Redacted<string>)
        return [text.startsWith("Bearer ") ? text.slice(7) : text]
      })
    const secrets = jwts.length > 0 ? [...context.secrets, ...jwts] : context.secrets
    const client = yield* Http.Http
    const result = yield* Effect.result(
      client.send(
        { method: built.method, url: wire.url, headers: wire.headers, body: wire.body },
        {
          timeoutMs: Math.min(http.timeoutMs, Math.max(1, context.deadline - sentAt)),
          maxResponseBytes: http.maxResponseBytes
        }
      )
    )
    const receivedAt = yield* Clock.currentTimeMillis
    if (result._tag === "Failure") {
      const f = result.failure
      if (f.reason === "too_large")
        return yield* Effect.fail(
          new Failed(new ResponseInvalid({ ...where, status: 200, field: "body", problem: f.detail }))
        )
      return yield* Effect.fail(
        new Failed(
          f.reason === "timeout"
            ? new UpstreamTimeout({ ...where, url: context.url(), timeoutMs: http.timeoutMs, attempts: context.n })
            : new TransportError({ ...where, url: context.url(), reason: f.detail, attempts: context.n })
        )
      )
    }
    const decoded = TokenResponse.decode(
      { ...result.success, receivedAt },
      { connection, sentAt, attempts: context.n, secrets }
    )
    if (decoded._tag === "Token") return decoded
    return yield* Effect.fail(new Failed(decoded.error, decoded._tag === "Rejected" ? decoded.retryAfterMs : undefined))
  })

/** The flow's request, its JWTs not yet signed: the token endpoint from discovery when the connection names an
 *  issuer (discovery.ts), else the flow's url. */
export const prepare = (
  connection: Connection,
  flow: FlowSpec,
  http: Pick<HttpSettings, "timeoutMs" | "maxResponseBytes">,
  current?: Token,
  extra: ReadonlyArray<readonly [string, Template.Value]> = []
): Effect.Effect<TokenRequest.TokenRequest, UpstreamError | InputInvalid, Http.Http> =>
  Effect.gen(function* () {
    const tokenUrl = yield* Discovery.endpoint(connection, "token_endpoint", http)
    const built = TokenRequest.build(connection, flow, current, { tokenUrl, extra })
    if (built._tag === "Invalid")
      return yield* new InputInvalid({
        connection: connection.name,
        provider: connection.manifest.id,
        details: built.details
      })
    return built.request
  })

/** Bounded without an outer timeout (which would fork a fiber per acquisition): each attempt's timeout is cut to the
 *  time left, and `retryPolicy` makes no retry whose delay would pass the deadline. */
export const exchange = (
  connection: Connection,
  flow: FlowSpec,
  http: HttpSettings,
  current?: Token,
  extra: ReadonlyArray<readonly [string, Template.Value]> = []
): Effect.Effect<Exchange, UpstreamError | InputInvalid, Http.Http> => {
  const where = { connection: connection.name, provider: connection.manifest.id }
  return Effect.gen(function* () {
    const request = yield* prepare(connection, flow, http, current, extra)
    const secrets = [
      ...secretsOf(connection, current),
      ...extra.flatMap(([, v]) => (Template.isSecret(v) ? [Template.reveal(v)] : []))
    ]
    // The URL goes into timeout and transport errors: a secret input templated into its path must not.
    let shown: string | undefined
    const url = () => (shown ??= Redaction.scrub(displayUrl(request.url), secrets))
    const started = yield* Clock.currentTimeMillis
    const deadline = started + http.totalTimeoutMs
    let n = 0
    const once = Effect.suspend(() => attempt(connection, request, http, { url, secrets, deadline, n: ++n }))
    const logged = retryPolicy(http, deadline).pipe(
      Schedule.tap(({ input, duration }) =>
        Effect.logDebug(`retrying ${flow.name} after ${input.error._tag}`).pipe(
          Effect.annotateLogs({ ...where, attempt: n, delayMs: Math.round(Duration.toMillis(duration)) })
        )
      )
    )
    const decoded = yield* once.pipe(
      Effect.retry(logged),
      Effect.mapError((f) => f.error)
    )
    const now = yield* Clock.currentTimeMillis
    return { token: decoded.token, skewMs: decoded.skewMs, attempts: n, durationMs: now - started }
  }).pipe(Observability.exchangeSpan(connection.name, connection.manifest.id, flow.name))
}
