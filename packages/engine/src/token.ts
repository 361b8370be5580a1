/** A token as tessera keeps it: the access token (and refresh token) redacted, when it expires on this machine's
 *  clock, and where that expiry came from. Also its storable form, which stores encrypt. */
import { Redacted } from "effect"

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

export interface Stored {
  readonly v: 1
  readonly access_token: string
  readonly refresh_token?: string | undefined
  readonly token_type: string
  readonly expires_at: number
  readonly obtained_at: number
  readonly expiry_source: ExpirySource
  readonly scope?: string | undefined
}

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

/** A time a Date can hold (ECMA-262 §21.4.1.22: ±8.64e15 ms), so that no stored entry makes an Invalid Date. */
const isTime = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && Math.abs(v) <= 8.64e15

export const isStored = (u: unknown): u is Stored => {
  if (u === null || typeof u !== "object") return false
  const s = u as Record<string, unknown>
  return (
    s["v"] === 1 &&
    typeof s["access_token"] === "string" &&
    typeof s["token_type"] === "string" &&
    isTime(s["expires_at"]) &&
    isTime(s["obtained_at"]) &&
    typeof s["expiry_source"] === "string" &&
    (s["refresh_token"] === undefined || typeof s["refresh_token"] === "string")
  )
}
