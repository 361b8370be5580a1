/** The contract each emulated provider implements: its routes, defaults, demo inputs, token handler and error shapes. */
import type { Reply } from "../reply.ts"
import type { TokenStore } from "../tokens.ts"
import type { ProviderId } from "../types.ts"

export const FORM = "application/x-www-form-urlencoded"
export const JSON_TYPE = "application/json"

/** A token-endpoint request as a provider handler sees it. */
export interface TokenRequest {
  headers: Record<string, string>
  rawBody: string
  /** Lower-cased media type of the Content-Type header ("" when absent). */
  contentType: string
}

/** Set by the expiresIn fault: replace the lifetime field with `value` (left out when undefined). */
export interface ExpiresInOverride {
  value: unknown
}

export interface ProviderContext {
  /** The sandbox origin, e.g. "http://127.0.0.1:4010". */
  url: string
  /** Current access-token lifetime for this provider, seconds. */
  ttl: number
  tokens: TokenStore
  expiresIn: ExpiresInOverride | undefined
}

export interface ProviderSpec {
  id: ProviderId
  /** Exact path of the token endpoint. */
  tokenPath: string
  /** Requests at or under this path (other than the token path) are API calls needing a Bearer token. */
  apiPrefix: string
  defaultTtl: number
  /** Connection inputs that work against this sandbox, named as in providers/<id>.yaml. */
  credentials(url: string): Record<string, string>
  /** Answers a POST to the token endpoint (method and query string are already checked). */
  token(req: TokenRequest, ctx: ProviderContext): Reply
  /** The provider's error shape for a status, a machine code and a human message. */
  error(status: number, code: string, message: string): Reply
  /** HTTP 200 carrying the provider's own failure envelope. */
  envelopeError(): Reply
  /** 401 for an API call without a valid, unexpired Bearer token. */
  unauthorized(): Reply
}

/** Applies an expiresIn override to the object holding `expires_in`. */
export function applyExpiresIn<T extends Record<string, unknown>>(
  target: T,
  override: ExpiresInOverride | undefined
): T {
  if (override === undefined) return target
  const copy: Record<string, unknown> = { ...target }
  if (override.value === undefined) delete copy["expires_in"]
  else copy["expires_in"] = override.value
  return copy as T
}
