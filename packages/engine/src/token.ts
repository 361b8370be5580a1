/** A token as tessera keeps it: the access token (and refresh token) redacted, when it expires on this machine's
 *  clock, and where that expiry came from. Also its storable form, which stores encrypt. */
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

export type ExpirySource = "expires_in" | "expires_at" | "jwt_exp" | "ttl" | "default"

export interface Token {
  readonly accessToken: Redacted.Redacted<string>
  readonly refreshToken?: Redacted.Redacted<string> | undefined
  readonly tokenType: string
  /** Epoch ms on the local clock (server-clock values are corrected by the measured skew). */
  readonly expiresAt: number
  readonly obtainedAt: number
  readonly expirySource: ExpirySource
  readonly scope?: string | undefined
}

/** A time a Date can hold (ECMA-262 §21.4.1.22: ±8.64e15 ms), so that no stored entry makes an Invalid Date. */
const Time = Schema.Finite.pipe(Schema.check(Schema.isBetween({ minimum: -8.64e15, maximum: 8.64e15 })))

/** A token as stores keep it (inside their encryption): version 1. */
export const Stored = Schema.Struct({
  v: Schema.Literal(1),
  access_token: Schema.String,
  refresh_token: Schema.optional(Schema.String),
  token_type: Schema.String,
  expires_at: Time,
  obtained_at: Time,
  expiry_source: Schema.Literals(["expires_in", "expires_at", "jwt_exp", "ttl", "default"]),
  scope: Schema.optional(Schema.String)
})
export type Stored = typeof Stored.Type

export const toStored = (t: Token): Stored => ({
  v: 1,
  access_token: Redacted.value(t.accessToken),
  refresh_token: t.refreshToken ? Redacted.value(t.refreshToken) : undefined,
  token_type: t.tokenType,
  expires_at: t.expiresAt,
  obtained_at: t.obtainedAt,
  expiry_source: t.expirySource,
  scope: t.scope
})

export const fromStored = (s: Stored): Token => ({
  accessToken: Redacted.make(s.access_token, { label: "access_token" }),
  refreshToken: s.refresh_token ? Redacted.make(s.refresh_token, { label: "refresh_token" }) : undefined,
  tokenType: s.token_type,
  expiresAt: s.expires_at,
  obtainedAt: s.obtained_at,
  expirySource: s.expiry_source,
  scope: s.scope
})
