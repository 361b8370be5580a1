/** The authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636, RFC 9700): the URL that sends a user to the
 *  provider's consent page, the check of the redirect that comes back, and the exchange of its code for tokens.
 *
 *  - `start` draws a fresh `state` and PKCE verifier (32 random bytes each, base64url) and builds the authorization
 *    URL from the manifest's `authorization` section: response_type=code, client_id, redirect_uri, scope, state,
 *    code_challenge (S256, always: RFC 9700 §2.1.1) and the manifest's extra params.
 *  - `callback` reads the redirect's query: the state must be the one sent (compared in constant time); then, for a
 *    connection that discovers its issuer (discovery.ts) or whose manifest declares `authorization.issuer`, the
 *    `iss` parameter must name that issuer exactly, once, and must be there when the issuer's metadata says
 *    `authorization_response_iss_parameter_supported` or the manifest declares it (RFC 9207, the mix-up defence of
 *    RFC 9700 §4.4); then an `error` is the user's refusal or the provider's error, else the code. With neither,
 *    tessera knows no issuer identifier, and an `iss` is not compared.
 *  - `exchange` redeems the code at the acquire flow's token endpoint (its url, encoding, client_auth, headers),
 *    with grant_type=authorization_code, code, redirect_uri and code_verifier, through upstream.ts (retries, the
 *    `Http` service, the Clock), so its answer is read like any token response.
 *  Where the grant goes afterwards (the connection store) is grants.ts. */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { AuthorizationFailed } from "./authorization-error.ts"
import type { HttpSettings } from "./config.ts"
import { checkUrl, type Connection } from "./connection.ts"
import type { Http } from "./http.ts"
import type { FlowSpec } from "./manifest.ts"
import * as Discovery from "./discovery.ts"
import * as Redaction from "./redaction.ts"
import * as Template from "./template.ts"
import { InputInvalid, type UpstreamError } from "./token-error.ts"
import * as Upstream from "./upstream.ts"

/** One authorization request in progress: keep `state` and `verifier` (both secrets) until the callback. */
export interface Pending {
  readonly url: string
  readonly redirectUri: string
  readonly state: Redacted.Redacted<string>
  readonly verifier: Redacted.Redacted<string>
}

/** The grant types of connections whose tokens only a user's consent can start (the acquire flow never runs). */
export const userGrantTypes: ReadonlyArray<string> = [
  "authorization_code",
  "urn:ietf:params:oauth:grant-type:device_code"
]

/** Whether the connection's tokens come from a user's grant: its acquire flow's grant type is one a user starts. */
export const isUserGranted = (c: Connection): boolean => {
  const acquire = c.manifest.flows.acquire
  if (!acquire) return false
  const r = Template.render(acquire.grantType, { inputs: (n) => c.inputs.get(n) })
  return r._tag === "Value" && userGrantTypes.includes(Template.reveal(r.value))
}

const random = () => randomBytes(32).toString("base64url")

/** RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))). */
export const challengeOf = (verifier: string): string => createHash("sha256").update(verifier).digest("base64url")

const where = (c: Connection) => ({ connection: c.name, provider: c.manifest.id })

const render = (c: Connection, t: Template.Template) => Template.render(t, { inputs: (n) => c.inputs.get(n) })

/** The client id the acquire flow authenticates with (`client_auth.id`, by default `{{ inputs.client_id }}`). */
export const clientIdOf = (c: Connection): string | undefined => {
  const acquire = c.manifest.flows.acquire
  const r = acquire ? render(c, acquire.clientAuth.id) : ({ _tag: "Missing", names: [] } as const)
  const fallback = c.inputs.get("client_id")
  const v = r._tag === "Value" ? Template.reveal(r.value) : ""
  return v !== "" ? v : fallback === undefined ? undefined : Template.reveal(fallback)
}

const unsupported = (c: Connection, what: string) =>
  new AuthorizationFailed({ ...where(c), reason: "unsupported", detail: `${c.manifest.id} has no ${what} section` })

/** Builds the authorization URL for `redirectUri`, with a fresh state and PKCE verifier. A connection that names an
 *  `issuer` (discovery.ts) gets the authorization endpoint from the issuer's metadata. */
export const start = (
  c: Connection,
  redirectUri: string,
  settings?: Pick<HttpSettings, "timeoutMs" | "maxResponseBytes">
): Effect.Effect<Pending, InputInvalid | AuthorizationFailed | UpstreamError, Http> =>
  Effect.gen(function* () {
    const spec = c.manifest.authorization
    if (!spec || !c.manifest.flows.acquire) return yield* unsupported(c, "authorization")
    const details: string[] = []
    const discovered = yield* Discovery.endpoint(c, "authorization_endpoint", settings)
    const url = discovered === undefined ? render(c, spec.url) : ({ _tag: "Value", value: discovered } as const)
    if (url._tag === "Missing") details.push(`authorization.url needs ${url.names.join(", ")}, which is not set`)
    const base = url._tag === "Value" ? Template.reveal(url.value) : ""
    const bad = url._tag === "Value" ? checkUrl(base, c.allowInsecureHttp) : undefined
    if (bad) details.push(`authorization URL ${base} ${bad.message} (hint: ${bad.hint})`)
    // Checked before the user is sent anywhere: a callback could never pass (see `expectedIssuer`).
    const issuer = yield* issuerCheck(c, settings)
    if (issuer.problem !== undefined) details.push(issuer.problem)
    const clientId = clientIdOf(c)
    if (clientId === undefined) details.push("the authorization request needs a client id (input client_id)")
    if (details.length > 0 || clientId === undefined) return yield* new InputInvalid({ ...where(c), details })
    const state = random()
    const verifier = random()
    const u = new URL(base)
    u.searchParams.set("response_type", "code")
    u.searchParams.set("client_id", clientId)
    u.searchParams.set("redirect_uri", redirectUri)
    const scope = spec.scope ? render(c, spec.scope) : undefined
    if (scope?._tag === "Value" && Template.reveal(scope.value) !== "")
      u.searchParams.set("scope", Template.reveal(scope.value))
    u.searchParams.set("state", state)
    u.searchParams.set("code_challenge", challengeOf(verifier))
    u.searchParams.set("code_challenge_method", "S256")
    for (const [k, t] of spec.params) {
      const v = render(c, t)
      if (v._tag === "Value") u.searchParams.set(k, Template.reveal(v.value))
    }
    return {
      url: u.toString(),
      redirectUri,
      state: Redacted.make(state, { label: "state" }),
      verifier: Redacted.make(verifier, { label: "code_verifier" })
    }
  })

const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** The issuer an authorization response must name (RFC 9207), for a connection that discovers its issuer. */
export interface ExpectedIssuer {
  readonly issuer: string
  /** The metadata says `authorization_response_iss_parameter_supported: true`: a response without `iss` is refused. */
  readonly required: boolean
}

// An `iss` as it may be quoted in a message: bounded, and JSON-escaped (control characters included).
const quoted = (text: string) => JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text)

/** The manifest's `authorization.issuer` as the connection renders it: none when it is not declared or its inputs
 *  are unset (or it renders empty); a problem when it is no issuer identifier (RFC 8414 §2). */
const declaredIssuer = (c: Connection): { readonly issuer?: string; readonly problem?: string } => {
  const t = c.manifest.authorization?.issuer
  const r = t === undefined ? undefined : render(c, t)
  if (r?._tag !== "Value") return {}
  const issuer = Template.reveal(r.value)
  if (issuer === "") return {}
  const bad = checkUrl(issuer, c.allowInsecureHttp)
  if (bad) return { problem: `authorization.issuer ${bad.message} (hint: ${bad.hint})` }
  if (/[?#]/.test(issuer))
    return { problem: "authorization.issuer has a query or fragment, which an issuer never has (RFC 8414 §2)" }
  // A URL parser drops a tab or line break anywhere and spaces at the ends, so checkUrl passes them; but `iss` is
  // compared character for character, and no server's identifier has them: every callback would fail, after the
  // user has consented.
  // oxlint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(issuer))
    return {
      problem: `authorization.issuer ${quoted(issuer)} has whitespace or a control character, which an issuer never has (RFC 8414 §2: a URL)`
    }
  return { issuer }
}

const conflict = (declared: string, discovered: string) =>
  `authorization.issuer ${quoted(declared)} is not the issuer the connection discovers, ${quoted(discovered)}`

/** The issuer `callback` checks `iss` against (see `expectedIssuer`), or what is wrong with the declared one. */
const issuerCheck = (
  c: Connection,
  settings?: Pick<HttpSettings, "timeoutMs" | "maxResponseBytes">
): Effect.Effect<
  { readonly expected?: ExpectedIssuer | undefined; readonly problem?: string },
  UpstreamError | InputInvalid,
  Http
> =>
  Effect.gen(function* () {
    const declared = declaredIssuer(c)
    if (declared.problem !== undefined) return { problem: declared.problem }
    const m = yield* Discovery.metadataOf(c, settings)
    if (declared.issuer !== undefined)
      return m !== undefined && m.issuer !== declared.issuer
        ? { problem: conflict(declared.issuer, m.issuer) }
        : { expected: { issuer: declared.issuer, required: true } }
    return m === undefined
      ? {}
      : {
          expected: {
            issuer: m.issuer,
            required: m.document["authorization_response_iss_parameter_supported"] === true
          }
        }
  })

/** What `callback` checks `iss` against: the manifest's `authorization.issuer` when it renders (then `iss` is
 *  required: declaring it says the server sends it), else the discovered issuer (required when its metadata says
 *  so), else undefined (no issuer is known). The metadata is the one `start` read (cached per process), read again
 *  on an instance that did not start the flow. A declared issuer that is not the discovered one is InputInvalid. */
export const expectedIssuer = (
  c: Connection,
  settings?: Pick<HttpSettings, "timeoutMs" | "maxResponseBytes">
): Effect.Effect<ExpectedIssuer | undefined, UpstreamError | InputInvalid, Http> =>
  Effect.flatMap(issuerCheck(c, settings), (r) =>
    r.problem !== undefined ? new InputInvalid({ ...where(c), details: [r.problem] }) : Effect.succeed(r.expected)
  )

const issuerProblem = (query: URLSearchParams, expected: ExpectedIssuer): string | undefined => {
  // RFC 6749 §3.1: a parameter sent more than once is an invalid response; a second iss must not hide behind a first.
  if (query.getAll("iss").length > 1) return "the response names its issuer more than once"
  const iss = query.get("iss")
  if (iss === null)
    return expected.required
      ? `the response has no iss, which ${expected.issuer} always sends (RFC 9207: its metadata says authorization_response_iss_parameter_supported, or the manifest declares authorization.issuer)`
      : undefined
  return iss === expected.issuer ? undefined : `the response names the issuer ${quoted(iss)}, not ${expected.issuer}`
}

/** The redirect's verdict: the code, or why there is none. The state is checked first, so that a forged callback
 *  (an attacker's `error=access_denied`, say) is reported as the mismatch it is; then the issuer (RFC 9207 §2.4:
 *  error responses too), before an error or a code is believed. */
export const callback = (
  c: Connection,
  query: URLSearchParams,
  state: Redacted.Redacted<string>,
  issuer?: ExpectedIssuer | undefined
): Effect.Effect<Redacted.Redacted<string>, AuthorizationFailed> =>
  Effect.suspend((): Effect.Effect<Redacted.Redacted<string>, AuthorizationFailed> => {
    const fail = (reason: AuthorizationFailed["reason"], detail?: string) =>
      Effect.fail(new AuthorizationFailed({ ...where(c), reason, ...(detail ? { detail } : {}) }))
    const got = query.get("state")
    if (got === null || !sameSecret(got, Redacted.value(state)))
      return fail("state_mismatch", got === null ? "the callback has no state" : undefined)
    const mixUp = issuer === undefined ? undefined : issuerProblem(query, issuer)
    if (mixUp !== undefined) return fail("issuer_mismatch", Redaction.scrub(mixUp, [Redacted.value(state)]))
    const error = query.get("error")
    if (error !== null) {
      const description = query.get("error_description")
      const text = Redaction.scrub(`${error}${description ? `: ${description}` : ""}`, [Redacted.value(state)]).slice(
        0,
        300
      )
      return fail(error === "access_denied" ? "denied" : "provider_error", text)
    }
    const code = query.get("code")
    if (code === null || code === "") return fail("invalid_callback")
    return Effect.succeed(Redacted.make(code, { label: "code" }))
  })

/** The acquire flow turned into the code exchange: same endpoint, encoding, client auth and headers. */
export const exchangeFlow = (acquire: FlowSpec, c: Connection): FlowSpec => ({
  ...acquire,
  grantType: Template.literal("authorization_code"),
  assertion: undefined,
  body: (c.manifest.authorization?.body ?? []).map(([k, t]) => [k, { kind: "template", template: t }] as const)
})

/** Redeems the code (RFC 6749 §4.1.3 with RFC 7636 §4.5). */
export const exchange = (
  c: Connection,
  input: {
    readonly code: Redacted.Redacted<string>
    readonly verifier: Redacted.Redacted<string>
    readonly redirectUri: string
  },
  settings: HttpSettings
): Effect.Effect<Upstream.Exchange, UpstreamError | InputInvalid | AuthorizationFailed, Http> =>
  c.manifest.authorization && c.manifest.flows.acquire
    ? Upstream.exchange(c, exchangeFlow(c.manifest.flows.acquire, c), settings, undefined, [
        ["code", input.code],
        ["redirect_uri", input.redirectUri],
        ["code_verifier", input.verifier]
      ])
    : Effect.fail(unsupported(c, "authorization"))
