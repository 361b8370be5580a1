/** Issued access and refresh tokens: signing, expiry in server time, revocation and refresh-token rotation. */
import { randomBytes } from "node:crypto"
import type { Clock } from "./clock.ts"
import { signJwt, verifyJwt } from "./jwt.ts"
import type { ProviderId } from "./types.ts"

export interface IssuedAccess {
  token: string
  /** Issued-at, whole seconds of server time. */
  iat: number
  /** Expiry the server enforces, whole seconds of server time (iat + ttl). */
  exp: number
}

/** What a refresh token was issued for; it is bound to the client that obtained it. */
export interface RefreshGrant {
  clientId: string
  subject: string
  scope?: string
}

interface AccessRecord {
  provider: ProviderId
  expMs: number
}

interface RefreshRecord {
  provider: ProviderId
  grant: RefreshGrant
}

export class TokenStore {
  readonly #clock: Clock
  readonly #key = randomBytes(32)
  readonly #access = new Map<string, AccessRecord>()
  readonly #refresh = new Map<string, RefreshRecord>()

  constructor(clock: Clock) {
    this.#clock = clock
  }

  /** Signs a new access token whose claims the provider builds from iat/exp, and tracks its expiry. */
  issueAccess(
    provider: ProviderId,
    ttlSeconds: number,
    claims: (iat: number, exp: number) => Record<string, unknown>
  ): IssuedAccess {
    const iat = this.#clock.nowSec()
    const exp = iat + ttlSeconds
    const token = signJwt(claims(iat, exp), this.#key)
    this.#access.set(token, { provider, expMs: exp * 1000 })
    return { token, iat, exp }
  }

  /** True when the token was issued by this provider, is not revoked, and has not expired in server time. */
  isAccessValid(provider: ProviderId, token: string): boolean {
    const record = this.#access.get(token)
    if (record === undefined || record.provider !== provider) return false
    return verifyJwt(token, this.#key) && this.#clock.nowMs() < record.expMs
  }

  revokeAccess(provider?: ProviderId): void {
    for (const [token, record] of this.#access) {
      if (provider === undefined || record.provider === provider) this.#access.delete(token)
    }
  }

  /** Issues a refresh token; `prefix` shapes it like the provider's (brandbox: "def50200"). */
  issueRefresh(provider: ProviderId, grant: RefreshGrant, prefix = ""): string {
    const token = `${prefix}${randomBytes(prefix === "" ? 32 : 96).toString(prefix === "" ? "base64url" : "hex")}`
    this.#refresh.set(token, { provider, grant })
    return token
  }

  /** The grant behind a live refresh token of this provider and client, without using it up. */
  peekRefresh(provider: ProviderId, token: string, clientId: string): RefreshGrant | undefined {
    const record = this.#refresh.get(token)
    return record !== undefined && record.provider === provider && record.grant.clientId === clientId
      ? record.grant
      : undefined
  }

  /** Invalidates a refresh token (rotation: each one is single use). */
  consumeRefresh(token: string): void {
    this.#refresh.delete(token)
  }

  clear(): void {
    this.#access.clear()
    this.#refresh.clear()
  }
}
