/** Authorization server discovery: an issuer's metadata (RFC 8414, OpenID Connect Discovery 1.0), read through the
 *  engine's `Http` service and kept in memory, so that a connection can name its `issuer` instead of its endpoints.
 *
 *  Where: for the issuer `https://as.example/tenant`, first the RFC 8414 §3 location with the well-known segment
 *  inserted before the path, `https://as.example/.well-known/oauth-authorization-server/tenant`, then (on a 4xx
 *  there: many OpenID Providers serve only this one) OIDC Discovery §4's appended location,
 *  `https://as.example/tenant/.well-known/openid-configuration`. Without a path both sit at the origin.
 *
 *  Checks: the issuer is an absolute https URL (plain http only to loopback unless the connection allows it) with
 *  no query or fragment (RFC 8414 §2); the answer is a JSON object whose `issuer` equals the configured issuer
 *  exactly (RFC 8414 §3.3: else the metadata MUST NOT be used) and whose endpoints pass the same URL check.
 *
 *  Cache: per process, in memory, per issuer, for `ttlMs` (one hour) on the Clock; failures are not cached, so a
 *  fixed IdP is seen on the next call. Metadata changes rarely (key rotation is in `jwks_uri`, which tessera does
 *  not read), and an hour bounds how long a moved endpoint goes unseen. `clearCache` empties it (tests).
 *
 *  For other flows: `endpoint(connection, "authorization_endpoint" | "device_authorization_endpoint" | ...)`. */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { HttpSettings } from "./config.ts"
import { checkUrl, type Connection } from "./connection.ts"
import * as Http from "./http.ts"
import * as Template from "./template.ts"
import { InputInvalid, ResponseInvalid, TransportError, UpstreamRejected, UpstreamTimeout } from "./token-error.ts"
import type { UpstreamError } from "./token-error.ts"

export const ttlMs = 3_600_000

/** The endpoints tessera reads from metadata. */
export type EndpointName =
  | "token_endpoint"
  | "authorization_endpoint"
  | "device_authorization_endpoint"
  | "revocation_endpoint"
  | "introspection_endpoint"
  | "jwks_uri"

export interface Metadata {
  readonly issuer: string
  /** Where it was read from. */
  readonly url: string
  readonly endpoints: Readonly<Partial<Record<EndpointName, string>>>
  /** `token_endpoint_auth_methods_supported`, `code_challenge_methods_supported` and the like, as sent. */
  readonly document: Readonly<Record<string, unknown>>
}

/** The two metadata locations of an issuer, in the order they are tried. */
export const metadataUrls = (issuer: string): ReadonlyArray<string> => {
  const u = new URL(issuer)
  const path = u.pathname.replace(/\/+$/, "")
  return [
    `${u.origin}/.well-known/oauth-authorization-server${path}`,
    `${u.origin}${path}/.well-known/openid-configuration`
  ]
}

const cache = new Map<string, { readonly until: number; readonly metadata: Metadata }>()

export const clearCache = (): void => cache.clear()

const endpointNames: ReadonlyArray<EndpointName> = [
  "token_endpoint",
  "authorization_endpoint",
  "device_authorization_endpoint",
  "revocation_endpoint",
  "introspection_endpoint",
  "jwks_uri"
]

const parseJson = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Unknown))

export interface DiscoverOptions {
  /** Named in errors. */
  readonly connection: string
  readonly provider: string
  readonly allowInsecureHttp?: boolean | undefined
  readonly timeoutMs?: number | undefined
  readonly maxResponseBytes?: number | undefined
}

/** The issuer's metadata, from the cache or the network. */
export const discover = (issuer: string, opts: DiscoverOptions): Effect.Effect<Metadata, UpstreamError, Http.Http> =>
  Effect.gen(function* () {
    const where = { connection: opts.connection, provider: opts.provider }
    const now = yield* Clock.currentTimeMillis
    const hit = cache.get(issuer)
    if (hit && hit.until > now) return hit.metadata
    const bad = checkUrl(issuer, opts.allowInsecureHttp ?? false)
    const invalid = (url: string, status: number, field: string, problem: string) =>
      new ResponseInvalid({ ...where, status, field, problem: `${problem} (metadata at ${url})` })
    if (bad || /[?#]/.test(issuer))
      return yield* new ResponseInvalid({
        ...where,
        status: 0,
        field: "issuer",
        problem: bad ? `${issuer} ${bad.message} (${bad.hint})` : `${issuer} has a query or fragment (RFC 8414 §2)`
      })
    const http = yield* Http.Http
    const urls = metadataUrls(issuer)
    for (const [i, url] of urls.entries()) {
      const last = i === urls.length - 1
      const answer = yield* http
        .send(
          { method: "GET", url, headers: { accept: "application/json" } },
          { timeoutMs: opts.timeoutMs ?? 10_000, maxResponseBytes: opts.maxResponseBytes ?? 1_048_576 }
        )
        .pipe(
          Effect.mapError((f): UpstreamError =>
            f.reason === "timeout"
              ? new UpstreamTimeout({ ...where, url, timeoutMs: opts.timeoutMs ?? 10_000, attempts: 1 })
              : f.reason === "too_large"
                ? invalid(url, 200, "body", f.detail)
                : new TransportError({ ...where, url, reason: f.detail, attempts: 1 })
          )
        )
      if (answer.status >= 400 && answer.status < 500 && !last) continue
      if (answer.status < 200 || answer.status >= 300)
        return yield* new UpstreamRejected({
          ...where,
          status: answer.status,
          kind: answer.status >= 500 ? "transient" : "other",
          attempts: 1,
          providerMessage: `no authorization server metadata for issuer ${issuer} (tried ${urls.join(", ")})`
        })
      const json = Option.getOrUndefined(parseJson(Buffer.from(answer.body).toString("utf8")))
      if (json === null || typeof json !== "object" || Array.isArray(json))
        return yield* invalid(url, answer.status, "body", "not a JSON object")
      const doc = json as Record<string, unknown>
      // RFC 8414 §3.3: the issuer in the answer MUST be identical to the one the metadata was asked for.
      if (doc["issuer"] !== issuer)
        return yield* invalid(
          url,
          answer.status,
          "issuer",
          `says ${JSON.stringify(doc["issuer"])}, expected exactly ${JSON.stringify(issuer)} (RFC 8414 §3.3: metadata for another issuer must not be used)`
        )
      const endpoints: Partial<Record<EndpointName, string>> = {}
      for (const name of endpointNames) {
        const v = doc[name]
        if (v === undefined) continue
        const problem =
          typeof v !== "string"
            ? { message: "is not a string", hint: "" }
            : checkUrl(v, opts.allowInsecureHttp ?? false)
        if (problem)
          return yield* invalid(url, answer.status, name, `${typeof v === "string" ? v : "value"} ${problem.message}`)
        endpoints[name] = v as string
      }
      const metadata: Metadata = { issuer, url, endpoints, document: doc }
      cache.set(issuer, { until: now + ttlMs, metadata })
      return metadata
    }
    return yield* invalid(urls[0]!, 0, "issuer", "no metadata location")
  })

/** The issuer a connection discovers from: its manifest's `discovery.issuer` rendered, or undefined when the
 *  manifest has no discovery or the inputs it names are unset (then the flows' own URLs apply). */
export const issuerOf = (c: Connection): string | undefined => {
  const d = c.manifest.discovery
  if (!d) return undefined
  const r = Template.render(d.issuer, { inputs: (n) => c.inputs.get(n) })
  if (r._tag === "Missing") return undefined
  const v = Template.reveal(r.value)
  return v === "" ? undefined : v
}

/** A connection's issuer metadata: undefined when the connection does not discover (no issuer). */
export const metadataOf = (
  c: Connection,
  settings?: Pick<HttpSettings, "timeoutMs" | "maxResponseBytes">
): Effect.Effect<Metadata | undefined, UpstreamError | InputInvalid, Http.Http> =>
  Effect.gen(function* () {
    const issuer = issuerOf(c)
    if (issuer === undefined) return undefined
    const bad = checkUrl(issuer, c.allowInsecureHttp)
    if (bad || /[?#]/.test(issuer))
      return yield* new InputInvalid({
        connection: c.name,
        provider: c.manifest.id,
        details: [
          `discovery.issuer ${bad ? `${bad.message} (hint: ${bad.hint})` : "has a query or fragment, which an issuer never has (RFC 8414 §2)"}`
        ]
      })
    return yield* discover(issuer, {
      connection: c.name,
      provider: c.manifest.id,
      allowInsecureHttp: c.allowInsecureHttp,
      timeoutMs: settings?.timeoutMs,
      maxResponseBytes: settings?.maxResponseBytes
    })
  })

/** One endpoint of a connection's authorization server, by discovery: undefined when the connection does not
 *  discover (no issuer); a failure when it does but the metadata has no such endpoint. */
export const endpoint = (
  c: Connection,
  name: EndpointName,
  settings?: Pick<HttpSettings, "timeoutMs" | "maxResponseBytes">
): Effect.Effect<string | undefined, UpstreamError | InputInvalid, Http.Http> =>
  Effect.gen(function* () {
    const m = yield* metadataOf(c, settings)
    if (m === undefined) return undefined
    const url = m.endpoints[name]
    if (url === undefined)
      return yield* new ResponseInvalid({
        connection: c.name,
        provider: c.manifest.id,
        status: 200,
        field: name,
        problem: `missing from the metadata at ${m.url}`
      })
    return url
  })
