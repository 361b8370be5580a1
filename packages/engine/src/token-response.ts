/** Reads a token endpoint's answer as the manifest describes it: status, content type, JSON, the success
 *  predicate (brandbox `code == 0`, CRM.COM `status.code == "OK"`, even on HTTP 200), the envelope path, the
 *  token fields (refusing any a header could not carry) and the expiry. Also classifies rejections
 *  (re-authenticate / transient / rate limit). Provider text in its errors goes through `Redaction.scrub`. */
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { Connection } from "./connection.ts"
import * as Expiry from "./expiry.ts"
import * as JsonPath from "./json-path.ts"
import * as Redaction from "./redaction.ts"
import type { ErrorMatch, Manifest } from "./manifest.ts"
import type { Token } from "./token.ts"
import { ResponseInvalid, UpstreamRejected } from "./token-error.ts"
import { header, type Response } from "./http.ts"

/** An answer as the decoder reads it: the response and when it arrived (local epoch ms, from the Clock). */
export interface Answer extends Response {
  readonly receivedAt: number
}

export type Decoded =
  | { readonly _tag: "Token"; readonly token: Token; readonly skewMs: number }
  | { readonly _tag: "Rejected"; readonly error: UpstreamRejected; readonly retryAfterMs?: number | undefined }
  | { readonly _tag: "Invalid"; readonly error: ResponseInvalid }

const matches = (m: ErrorMatch, status: number | undefined, code: string | number | undefined) =>
  (status !== undefined && m.status.includes(status)) ||
  (code !== undefined && m.codes.some((c) => String(c) === String(code)))

export const classify = (
  manifest: Manifest,
  status: number | undefined,
  code: string | number | undefined
): UpstreamRejected["kind"] => {
  // An explicit error code outranks the status: brandbox answers 400 with an invalid_grant it wants re-authenticated.
  const e = manifest.errors
  if (code !== undefined) {
    if (matches({ status: [], codes: e.reauthenticate.codes }, undefined, code)) return "reauthenticate"
    if (matches({ status: [], codes: e.rateLimit.codes }, undefined, code)) return "rate_limit"
    if (matches({ status: [], codes: e.transient.codes }, undefined, code)) return "transient"
  }
  if (matches(e.reauthenticate, status, undefined)) return "reauthenticate"
  if (matches(e.rateLimit, status, undefined)) return "rate_limit"
  if (matches(e.transient, status, undefined)) return "transient"
  return "other"
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export const retryAfterMs = (value: string | undefined, now: number): number | undefined => {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const at = Date.parse(value)
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined
}

const short = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n)}…` : s)

/** RFC 6749 Appendix A: access_token, refresh_token and token_type are VSCHAR (%x20-7E). Anything else, a control
 *  character above all (CR, LF, NUL), would break the header the token is written into, so it is refused here, at
 *  acquisition, rather than as a failed write on every later API call. */
export const tokenProblem = (value: string): string | undefined => {
  if (value.trim() === "") return "is only whitespace"
  const bad = /[^\x20-\x7e]/.exec(value)
  if (!bad) return undefined
  const code = bad[0].codePointAt(0) ?? 0
  const name = names[code] ?? `U+${code.toString(16).toUpperCase().padStart(4, "0")}`
  return `contains ${code < 0x20 || (code >= 0x7f && code < 0xa0) ? "a control character" : "a character outside printable ASCII"} (${name}) at offset ${bad.index}: a token must be printable ASCII (RFC 6749 Appendix A)`
}

const names: Readonly<Record<number, string>> = { 0: "NUL", 9: "TAB", 10: "LF", 13: "CR", 27: "ESC", 127: "DEL" }

/** The body as JSON (a JSON text, any value), or none when it is not JSON. */
const parseJson = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Unknown))

// The refresh token an answer carried when the rest of it could not be used (an access token or an expiry that
// cannot be read, or a token already expired): the provider may have spent the old one to issue it, so the renewal
// policy keeps it (`rotatedIn`). Beside the error rather than in it: no error holds a secret, in any form.
const carried = new WeakMap<object, Redacted.Redacted<string>>()

/** The refresh token an unusable answer carried (see `decode`'s ResponseInvalid), if it had one. */
export const rotatedIn = (e: unknown): Redacted.Redacted<string> | undefined =>
  typeof e === "object" && e !== null ? carried.get(e) : undefined

/** RFC 6749 §5.2: an error response is an object whose `error` is a string. */
const isOAuthError = Schema.is(Schema.Struct({ error: Schema.String }))

export interface DecodeContext {
  readonly connection: Connection
  readonly sentAt: number
  readonly attempts: number
  readonly secrets: ReadonlyArray<string>
}

export const decode = (res: Answer, ctx: DecodeContext): Decoded => {
  const m = ctx.connection.manifest
  const where = { connection: ctx.connection.name, provider: m.id }
  // Provider text is scrubbed before it is cut or folded: a secret cut in half, or with its whitespace changed,
  // would no longer be found.
  const quote = (s: string, n: number) => short(Redaction.scrub(s, ctx.secrets).replace(/\s+/g, " ").trim(), n)
  const invalid = (field: string, problem: string): Decoded => ({
    _tag: "Invalid",
    error: new ResponseInvalid({ ...where, status: res.status, field, problem: Redaction.scrub(problem, ctx.secrets) })
  })
  const text = Buffer.from(res.body).toString("utf8")
  const contentType = header(res.headers, "content-type") ?? ""
  const isJson = /^application\/([a-z0-9.+-]*\+)?json\b/i.test(contentType.trim())
  const json = isJson && text.trim() !== "" ? parseJson(text) : Option.none()
  const parsed = Option.isSome(json)
  const body = Option.getOrUndefined(json)

  const errorOf = (): { code?: string | undefined; message?: string | undefined } => {
    if (!parsed) return { message: text.trim() ? quote(text, 200) : undefined }
    const code = JsonPath.get(body, m.response.error.code) ?? JsonPath.get(body, "error")
    const message =
      JsonPath.get(body, m.response.error.message) ??
      JsonPath.get(body, "error_description") ??
      JsonPath.get(body, "message")
    return {
      code:
        typeof code === "string" || typeof code === "number"
          ? short(Redaction.scrub(String(code), ctx.secrets), 100)
          : undefined,
      message: typeof message === "string" && message !== "" ? short(Redaction.scrub(message, ctx.secrets)) : undefined
    }
  }
  const rejected = (): Decoded => {
    const { code, message } = errorOf()
    const kind = classify(m, res.status >= 200 && res.status < 300 ? undefined : res.status, code)
    return {
      _tag: "Rejected",
      retryAfterMs: retryAfterMs(header(res.headers, "retry-after"), res.receivedAt),
      error: new UpstreamRejected({
        ...where,
        status: res.status,
        kind,
        attempts: ctx.attempts,
        ...(code !== undefined ? { code } : {}),
        ...(message !== undefined ? { providerMessage: message } : {})
      })
    }
  }

  if (res.status < 200 || res.status >= 300) return rejected()
  if (!isJson)
    return invalid(
      "content-type",
      `expected application/json, found ${contentType ? `"${quote(contentType, 80)}"` : "none"}${/<html/i.test(text) ? " (an HTML page: is the token URL right?)" : ""}`
    )
  if (text.trim() === "") return invalid("body", "empty response body")
  if (!parsed) return invalid("body", `not valid JSON: ${quote(text, 80)}`)
  if (m.response.success) {
    const v = JsonPath.get(body, m.response.success.path)
    if (!m.response.success.accepted.some((a) => a === v)) return rejected()
  } else if (isOAuthError(body)) {
    return rejected() // an OAuth error object sent with 200
  }
  const envelope = JsonPath.get(body, m.response.envelope)
  if (envelope === null || typeof envelope !== "object" || Array.isArray(envelope)) {
    const found = JSON.stringify(envelope)
    return invalid(
      m.response.envelope ?? "(body)",
      `expected an object holding the token, found ${envelope === undefined ? "nothing" : found === undefined ? typeof envelope : quote(found, 60)}`
    )
  }
  const f = m.response.fields
  const path = (field: string) => `${m.response.envelope ? `${m.response.envelope}.` : ""}${field}`
  // From here on, an answer that cannot be used still hands over a refresh token it carries (see `rotatedIn`).
  const carriedRefresh = JsonPath.get(envelope, f.refresh_token)
  const keep =
    typeof carriedRefresh === "string" && carriedRefresh !== "" && tokenProblem(carriedRefresh) === undefined
      ? carriedRefresh
      : undefined
  const unusable = (field: string, problem: string): Decoded => {
    const d = invalid(field, problem)
    if (keep !== undefined && d._tag === "Invalid")
      carried.set(d.error, Redacted.make(keep, { label: "refresh_token" }))
    return d
  }
  const access = JsonPath.get(envelope, f.access_token)
  if (typeof access !== "string" || access === "")
    return unusable(path(f.access_token), access === undefined ? "missing" : "expected a non-empty string")
  const tokenType = JsonPath.get(envelope, f.token_type)
  if (tokenType !== undefined && typeof tokenType !== "string") return unusable(f.token_type, "expected a string")
  const refresh = JsonPath.get(envelope, f.refresh_token)
  if (refresh !== undefined && refresh !== null && typeof refresh !== "string")
    return invalid(f.refresh_token, "expected a string")
  for (const [field, value] of [
    [f.access_token, access],
    [f.refresh_token, refresh === "" ? undefined : refresh],
    [f.token_type, tokenType === "" ? undefined : tokenType]
  ] as const) {
    const problem = typeof value === "string" ? tokenProblem(value) : undefined
    if (problem) return unusable(path(field), problem)
  }
  const scope = JsonPath.get(envelope, "scope")
  const skewMs = Expiry.skewFromDate(header(res.headers, "date"), res.receivedAt)
  const expiry = Expiry.compute(m, {
    envelope,
    accessToken: access,
    sentAt: ctx.sentAt,
    skewMs,
    inputs: (n) => ctx.connection.inputs.get(n)
  })
  if (expiry._tag === "Invalid") return unusable(expiry.field, expiry.problem)
  // Issued late in a second, a very short-lived token can arrive past its whole-second JWT exp: ask again. Not when
  // the answer carries a refresh token: a one-time refresh token the provider just rotated would be lost by asking
  // again with the old one, so the token is kept and the renewal policy (renewal.ts, the serve floor) renews again
  // with the new refresh token.
  const rotated = typeof refresh === "string" && refresh !== ""
  if (expiry.expiresAt <= res.receivedAt && expiry.cappedByJwt && !rotated)
    return {
      _tag: "Rejected",
      error: new UpstreamRejected({
        ...where,
        status: res.status,
        kind: "transient",
        attempts: ctx.attempts,
        code: "expired_on_arrival",
        providerMessage: "the token's JWT exp had passed when it arrived"
      })
    }
  if (expiry.expiresAt <= res.receivedAt && !expiry.cappedByJwt)
    return unusable(
      expiry.source,
      "the token is already expired on arrival (check the provider's clock or the expiry source)"
    )
  return {
    _tag: "Token",
    skewMs,
    token: {
      accessToken: Redacted.make(access, { label: "access_token" }),
      refreshToken:
        typeof refresh === "string" && refresh !== "" ? Redacted.make(refresh, { label: "refresh_token" }) : undefined,
      tokenType: typeof tokenType === "string" && tokenType !== "" ? tokenType : "Bearer",
      expiresAt: expiry.expiresAt,
      obtainedAt: ctx.sentAt,
      expirySource: expiry.source,
      scope: typeof scope === "string" ? scope : undefined
    }
  }
}
