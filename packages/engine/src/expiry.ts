/** Decides when a token expires on this machine's clock, from the manifest's expiry sources in priority order,
 *  and when it should be renewed (the early-refresh margin). Server-clock values (absolute timestamps, a JWT's
 *  exp) are corrected by the skew measured from the response's Date header. Every source is bounded: an expiry
 *  that is no time, or more than 10 years ahead (`maxLifetimeMs`), is Invalid and names its field. */
// jose by subpath: its index loads all of jose (JWE, JWKS, key generation), ~9 MB a server never uses.
import { decodeJwt } from "jose/jwt/decode"
import { decodeProtectedHeader } from "jose/decode/protected_header"
import type { Manifest } from "./manifest.ts"
import * as JsonPath from "./json-path.ts"
import * as Template from "./template.ts"
import type { ExpirySource } from "./token.ts"

export interface ExpiryInput {
  readonly envelope: unknown
  readonly accessToken: string
  /** Local epoch ms when the request was sent: relative lifetimes count from here, to err on the early side. */
  readonly sentAt: number
  /** Server clock minus local clock, in ms (0 when unknown). */
  readonly skewMs: number
  readonly inputs: (name: string) => Template.Value | undefined
}

export type ExpiryResult =
  | {
      readonly _tag: "Expiry"
      readonly expiresAt: number
      readonly source: ExpirySource
      /** True when the token's own JWT exp cut the expiry short (see `compute`). */
      readonly cappedByJwt?: boolean | undefined
    }
  | { readonly _tag: "Invalid"; readonly field: string; readonly problem: string }

/** A number, or a string of digits (CRM.COM sends JWT exp as "1518104864"); anything else is not a number. A digit
 *  string too long for a double reads as Infinity, which the bound below refuses with the right message. */
const numeric = (v: unknown): number | undefined => {
  if (typeof v === "number" && !Number.isNaN(v)) return v
  if (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v.trim())
  return undefined
}

/** The longest lifetime tessera accepts from any source: 10 years (of 365.25 days). A provider that says more is
 *  wrong (a unit mix-up, a placeholder such as 1e13) or hostile, and keeping its token that long, or failing on a
 *  date past the year 275760, would be worse than asking again: such an answer is refused, not clamped. */
export const maxLifetimeSeconds = 315_576_000
export const maxLifetimeMs = maxLifetimeSeconds * 1000

/** A value from the provider, shown in a message: short, and never a long run of digits in full. */
const shown = (v: unknown): string => {
  const text = typeof v === "number" ? String(v) : (JSON.stringify(v) ?? typeof v)
  return text.length > 40 ? `${text.slice(0, 40)}…` : text
}

/** The claims of a JWT (JWS compact serialization), unverified: only used to schedule renewal and to show in
 *  `tessera inspect`. Undefined when the token is no JWT. Decoded by jose. */
export const jwtPayload = (token: string): Record<string, unknown> | undefined => {
  try {
    return decodeJwt(token)
  } catch {
    return undefined
  }
}

/** The protected header of a JWT, unverified; undefined when the token is no JWT. */
export const jwtHeader = (token: string): Record<string, unknown> | undefined => {
  if (jwtPayload(token) === undefined) return undefined
  try {
    return decodeProtectedHeader(token)
  } catch {
    return undefined
  }
}

/** Seconds since the epoch, or milliseconds when the number is too large to be seconds. */
const epochMs = (n: number) => (n > 1e11 ? n : n * 1000)

type Found = { readonly field: string; readonly source: ExpirySource; readonly raw: unknown }

/** An expiry at `expiresAt` (local epoch ms), unless it is not a time at all or more than 10 years after `sentAt`.
 *  Whole milliseconds, rounded down: a fractional lifetime errs on the early side. */
const bounded = (found: Found, expiresAt: number, sentAt: number): ExpiryResult => {
  if (Number.isNaN(expiresAt))
    return { _tag: "Invalid", field: found.field, problem: `${shown(found.raw)} is not a time` }
  if (!(expiresAt - sentAt <= maxLifetimeMs))
    return {
      _tag: "Invalid",
      field: found.field,
      problem: `${shown(found.raw)} puts the expiry more than 10 years ahead; tessera refuses a token that claims to live that long (check the field's unit)`
    }
  return { _tag: "Expiry", expiresAt: Math.floor(expiresAt), source: found.source }
}

/** The expiry from the manifest's sources, never later than the access token's own JWT `exp` when it has one: a
 *  provider's `exp` is whole seconds from a rounded-down `iat`, up to a second before `sent + expires_in`, and a
 *  token must not be served past either. */
export const compute = (manifest: Manifest, input: ExpiryInput): ExpiryResult => {
  const r = fromSources(manifest, input)
  if (r._tag !== "Expiry" || r.source === "jwt_exp") return r
  const exp = numeric(jwtPayload(input.accessToken)?.["exp"])
  if (exp === undefined) return r
  const cap = epochMs(exp) - input.skewMs
  return cap < r.expiresAt && cap > input.sentAt ? { ...r, expiresAt: cap, cappedByJwt: true } : r
}

const fromSources = (manifest: Manifest, input: ExpiryInput): ExpiryResult => {
  const f = manifest.response.fields
  for (const spec of manifest.response.expiry) {
    switch (spec.source) {
      case "expires_in": {
        const raw = JsonPath.get(input.envelope, f.expires_in)
        if (raw === undefined || raw === null) continue
        const n = numeric(raw)
        if (n === undefined)
          return {
            _tag: "Invalid",
            field: f.expires_in,
            problem: `expected a number of ${spec.unit === "ms" ? "milliseconds" : "seconds"}, found ${shown(raw)}`
          }
        // -0 and -Infinity included: "expired" is what the provider said.
        if (n <= 0)
          return { _tag: "Invalid", field: f.expires_in, problem: `${shown(raw)}: the token is already expired` }
        const found = { field: f.expires_in, source: "expires_in", raw } as const
        return bounded(found, input.sentAt + (spec.unit === "ms" ? n : n * 1000), input.sentAt)
      }
      case "expires_at": {
        const raw = JsonPath.get(input.envelope, f.expires_at)
        if (raw === undefined || raw === null) continue
        const n = numeric(raw)
        const at = n !== undefined ? epochMs(n) : typeof raw === "string" ? Date.parse(raw) : Number.NaN
        if (Number.isNaN(at))
          return {
            _tag: "Invalid",
            field: f.expires_at,
            problem: `expected unix seconds or an ISO-8601 date, found ${shown(raw)}`
          }
        return bounded({ field: f.expires_at, source: "expires_at", raw }, at - input.skewMs, input.sentAt)
      }
      case "jwt_exp": {
        const payload = jwtPayload(input.accessToken)
        if (!payload || payload["exp"] === undefined) continue
        const raw = payload["exp"]
        const n = numeric(raw)
        const field = "access_token (JWT exp)"
        if (n === undefined) return { _tag: "Invalid", field, problem: `exp claim is not numeric: ${shown(raw)}` }
        return bounded({ field, source: "jwt_exp", raw }, epochMs(n) - input.skewMs, input.sentAt)
      }
      case "ttl": {
        let seconds: number | undefined
        if (typeof spec.seconds === "number") seconds = spec.seconds
        else {
          const r = Template.render(spec.seconds, { inputs: input.inputs })
          if (r._tag === "Missing") continue
          seconds = numeric(Template.reveal(r.value))
        }
        if (seconds === undefined || seconds <= 0)
          return { _tag: "Invalid", field: "ttl", problem: "the fixed TTL is not a positive number" }
        return bounded({ field: "ttl", source: "ttl", raw: seconds }, input.sentAt + seconds * 1000, input.sentAt)
      }
    }
  }
  return { _tag: "Expiry", expiresAt: input.sentAt + manifest.refresh.defaultTtlSeconds * 1000, source: "default" }
}

/** The serve floor: the least life a token may have left when tessera hands it to anyone (`getToken`, `peek`, the
 *  CLI, the token route, the proxy, a token served stale, a token just obtained): a quarter of its lifetime, and at
 *  most one second. A token answered on a loaded machine, or checked by an API whose clock runs a little ahead, still
 *  has that long to be used; a token with less left counts as expired (renewed, waited for, never served stale). It
 *  scales with the lifetime so that a short-lived token is not renewed at once: a 2 s token is served for 1.5 s. */
export const serveFloorMs = 1000

export const floorMs = (lifetimeMs: number): number => Math.max(0, Math.min(serveFloorMs, lifetimeMs / 4))

/** The early-refresh margin: min(margin_seconds, margin_fraction x lifetime), so a 60 s token is not renewed at once,
 *  and never less than the serve floor: renewal starts before a token stops being servable. */
export const marginMs = (manifest: Manifest, lifetimeMs: number): number =>
  Math.max(
    floorMs(lifetimeMs),
    Math.min(manifest.refresh.marginSeconds * 1000, manifest.refresh.marginFraction * lifetimeMs)
  )

/** Skew from the Date header: server clock minus local clock. Below 2 s it is Date's own rounding, so 0. */
export const skewFromDate = (dateHeader: string | undefined, receivedAt: number): number => {
  if (!dateHeader) return 0
  const server = Date.parse(dateHeader)
  if (!Number.isFinite(server)) return 0
  const skew = server - receivedAt
  return Math.abs(skew) < 2000 ? 0 : skew
}

/** `fresh`: served as it is; `expiring`: inside the early-refresh margin, renewed first and served only while the
 *  provider fails; `expired`: below the serve floor (or past its expiry), never served. */
export type Freshness = "fresh" | "expiring" | "expired"

export const freshness = (
  manifest: Manifest,
  t: { readonly expiresAt: number; readonly obtainedAt: number },
  now: number
): Freshness => {
  if (!servable(t, now)) return "expired"
  return now >= t.expiresAt - marginMs(manifest, t.expiresAt - t.obtainedAt) ? "expiring" : "fresh"
}

/** Whether a token may be handed out at `now`: not below its serve floor. */
export const servable = (t: { readonly expiresAt: number; readonly obtainedAt: number }, now: number): boolean =>
  now < t.expiresAt - floorMs(t.expiresAt - t.obtainedAt)
