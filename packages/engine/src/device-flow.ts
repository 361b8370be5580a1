/** The device authorization grant (RFC 8628) for machines without a browser: ask the provider for a device code
 *  and a user code, show the user where to enter it, then poll the token endpoint until they approve.
 *
 *  - `start` posts to the manifest's `device.url` with the acquire flow's client authentication (RFC 8628 §3.1),
 *    the scope and extra params, and reads the answer (§3.2): device_code, user_code, verification_uri,
 *    verification_uri_complete, expires_in, interval (default 5 s).
 *  - `poll` posts grant_type=urn:ietf:params:oauth:grant-type:device_code with the device code to the acquire flow's
 *    token endpoint every `interval` seconds, on the Clock (so tests run it under TestClock): `authorization_pending`
 *    waits and polls again, `slow_down` adds 5 s to the interval for good (§3.5), a network failure or timeout
 *    backs off the same way, `access_denied` and `expired_token` end it, as does the device code's expiry. Each
 *    poll is one attempt (no retries of its own: the schedule is the interval). */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthorizationFailed } from "./authorization-error.ts"
import type { HttpSettings } from "./config.ts"
import type { Connection } from "./connection.ts"
import { Http, header } from "./http.ts"
import type { FlowSpec } from "./manifest.ts"
import * as Discovery from "./discovery.ts"
import * as Redaction from "./redaction.ts"
import * as Template from "./template.ts"
import { InputInvalid, ResponseInvalid, TransportError, UpstreamTimeout, type UpstreamError } from "./token-error.ts"
import * as TokenRequest from "./token-request.ts"
import * as Upstream from "./upstream.ts"

export const grantType = "urn:ietf:params:oauth:grant-type:device_code"

/** A device authorization in progress. `deviceCode` is a secret; `userCode` is what the user types. */
export interface Started {
  readonly deviceCode: Redacted.Redacted<string>
  readonly userCode: string
  readonly verificationUri: string
  readonly verificationUriComplete?: string | undefined
  /** Epoch ms (Clock) after which the device code is no longer valid. */
  readonly expiresAt: number
  /** Seconds between polls. */
  readonly interval: number
}

const where = (c: Connection) => ({ connection: c.name, provider: c.manifest.id })

/** RFC 8628 §3.2. */
const Answer = Schema.Struct({
  device_code: Schema.String,
  user_code: Schema.String,
  verification_uri: Schema.String,
  verification_uri_complete: Schema.optional(Schema.String),
  expires_in: Schema.Number,
  interval: Schema.optional(Schema.Number)
})
const decodeAnswer = Schema.decodeUnknownOption(Schema.fromJsonString(Answer))

/** The device authorization request: the acquire flow's client auth, sent to `device.url`, with no grant_type. */
const requestFlow = (acquire: FlowSpec, c: Connection, url: Template.Template): FlowSpec => {
  const spec = c.manifest.device!
  return {
    ...acquire,
    assertion: undefined,
    url,
    grantType: Template.literal("none"),
    body: [
      ...(spec.scope ? [["scope", { kind: "template", template: spec.scope }] as const] : []),
      ...spec.params.map(([k, t]) => [k, { kind: "template", template: t }] as const)
    ]
  }
}

const isHttpUrl = (s: string) => {
  try {
    const u = new URL(s)
    return u.protocol === "https:" || u.protocol === "http:"
  } catch {
    return false
  }
}

/** Asks for a device code (RFC 8628 §3.1). */
export const start = (
  c: Connection,
  settings: HttpSettings
): Effect.Effect<Started, InputInvalid | AuthorizationFailed | UpstreamError, Http> =>
  Effect.gen(function* () {
    const spec = c.manifest.device
    const acquire = c.manifest.flows.acquire
    if (!spec || !acquire)
      return yield* new AuthorizationFailed({
        ...where(c),
        reason: "unsupported",
        detail: `${c.manifest.id} has no device section`
      })
    // RFC 8628 §3.1: the acquire flow's client authentication (a public client's client_id, token-request.ts).
    const discovered = yield* Discovery.endpoint(c, "device_authorization_endpoint", settings)
    const built = TokenRequest.build(c, requestFlow(acquire, c, spec.url), undefined, { tokenUrl: discovered })
    if (built._tag === "Invalid") return yield* new InputInvalid({ ...where(c), details: built.details })
    const wire = TokenRequest.encode(built.request)
    const secrets = Upstream.secretsOf(c)
    const url = Redaction.scrub(new URL(wire.url).origin + new URL(wire.url).pathname, secrets)
    const client = yield* Http
    const res = yield* client
      .send(
        { method: "POST", url: wire.url, headers: wire.headers, body: wire.body },
        { timeoutMs: settings.timeoutMs, maxResponseBytes: settings.maxResponseBytes }
      )
      .pipe(
        Effect.mapError((f) =>
          f.reason === "timeout"
            ? new UpstreamTimeout({ ...where(c), url, timeoutMs: settings.timeoutMs, attempts: 1 })
            : new TransportError({ ...where(c), url, reason: f.detail, attempts: 1 })
        )
      )
    const text = Buffer.from(res.body).toString("utf8")
    const invalid = (problem: string) =>
      new AuthorizationFailed({ ...where(c), reason: "invalid_response", detail: `HTTP ${res.status}: ${problem}` })
    if (res.status < 200 || res.status >= 300) {
      const code = /"error"\s*:\s*"([^"]{1,100})"/.exec(text)?.[1]
      return yield* new ResponseInvalid({
        ...where(c),
        status: res.status,
        field: "device authorization",
        problem: Redaction.scrub(code ? `the provider answered ${code}` : "the provider refused the request", secrets)
      })
    }
    if (!/json/i.test(header(res.headers, "content-type") ?? "")) return yield* invalid("not application/json")
    const a = Option.getOrUndefined(decodeAnswer(text))
    if (!a) return yield* invalid("needs device_code, user_code, verification_uri and expires_in (RFC 8628 §3.2)")
    if (!isHttpUrl(a.verification_uri)) return yield* invalid("verification_uri is not an http(s) URL")
    if (!(a.expires_in > 0) || !Number.isFinite(a.expires_in))
      return yield* invalid("expires_in is not a positive number")
    const now = yield* Clock.currentTimeMillis
    const interval =
      a.interval !== undefined && Number.isFinite(a.interval) && a.interval >= 1 ? Math.min(a.interval, 300) : 5
    return {
      deviceCode: Redacted.make(a.device_code, { label: "device_code" }),
      userCode: a.user_code,
      verificationUri: a.verification_uri,
      verificationUriComplete:
        a.verification_uri_complete !== undefined && isHttpUrl(a.verification_uri_complete)
          ? a.verification_uri_complete
          : undefined,
      expiresAt: now + Math.min(a.expires_in, 86_400) * 1000,
      interval
    }
  })

/** The token endpoint poll: the acquire flow with the device code grant. */
export const pollFlow = (acquire: FlowSpec): FlowSpec => ({
  ...acquire,
  assertion: undefined,
  grantType: Template.literal(grantType),
  body: []
})

/** Polls until the user approves, refuses or the code expires. `onWait` hears each wait (for a progress line). */
export const poll = (
  c: Connection,
  started: Started,
  settings: HttpSettings,
  onWait: (info: { readonly intervalSeconds: number; readonly reason: string }) => Effect.Effect<void> = () =>
    Effect.void
): Effect.Effect<Upstream.Exchange, InputInvalid | AuthorizationFailed | UpstreamError, Http> =>
  Effect.gen(function* () {
    const acquire = c.manifest.flows.acquire
    if (!acquire)
      return yield* new AuthorizationFailed({
        ...where(c),
        reason: "unsupported",
        detail: `${c.manifest.id} has no token flow`
      })
    const once = { ...settings, retries: 0 }
    let interval = started.interval
    const wait = (reason: string) =>
      Effect.andThen(onWait({ intervalSeconds: interval, reason }), Effect.sleep(Duration.seconds(interval)))
    yield* Effect.sleep(Duration.seconds(interval))
    while (true) {
      const now = yield* Clock.currentTimeMillis
      if (now >= started.expiresAt)
        return yield* new AuthorizationFailed({ ...where(c), reason: "expired", detail: "the device code expired" })
      const r = yield* Effect.result(
        Upstream.exchange(c, pollFlow(acquire), once, undefined, [["device_code", started.deviceCode]])
      )
      if (r._tag === "Success") return r.success
      const e = r.failure
      if (e._tag === "UpstreamRejected") {
        if (e.code === "authorization_pending") {
          yield* wait("authorization_pending")
          continue
        }
        if (e.code === "slow_down") {
          interval += 5
          yield* wait("slow_down")
          continue
        }
        if (e.code === "access_denied")
          return yield* new AuthorizationFailed({ ...where(c), reason: "denied", detail: "access_denied" })
        if (e.code === "expired_token")
          return yield* new AuthorizationFailed({ ...where(c), reason: "expired", detail: "expired_token" })
      }
      if (e._tag === "TransportError" || e._tag === "UpstreamTimeout") {
        // RFC 8628 §3.5: a client that times out reduces its polling frequency, as for slow_down.
        interval += 5
        yield* wait(e._tag)
        continue
      }
      return yield* Effect.fail(e)
    }
  })
