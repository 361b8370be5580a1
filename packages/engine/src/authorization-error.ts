/** Failures of the interactive user-grant flows (authorization code with PKCE, device authorization), each naming
 *  the connection and provider and never holding a secret (no code, state, verifier, device code or token). The
 *  `_tag` and `reason` are stable: the CLI maps them to exit codes, the server to result pages. */
import * as Schema from "effect/Schema"

/** Why a user's authorization did not complete. */
export type Reason =
  /** The user declined (RFC 6749 §4.1.2.1 `access_denied`, RFC 8628 §3.5 `access_denied`). */
  | "denied"
  /** The callback's `state` is not the one this authorization request sent (RFC 6749 §10.12, RFC 9700 §4.7). */
  | "state_mismatch"
  /** The callback carries neither a code nor an error, or is otherwise malformed. */
  | "invalid_callback"
  /** The provider reported another error on the redirect (`error=...`). */
  | "provider_error"
  /** The device code expired before the user approved (RFC 8628 `expired_token`), or the wait ran out. */
  | "expired"
  /** The device authorization endpoint's answer is not what RFC 8628 §3.2 describes. */
  | "invalid_response"
  /** The manifest has no `authorization` (or `device`) section for this connection's provider. */
  | "unsupported"
  /** The redirect's `iss` is not the connection's issuer, or is missing where the issuer's metadata says it is
   *  always sent (RFC 9207 §2.4): the response may come from another authorization server (a mix-up attack). */
  | "issuer_mismatch"

export class AuthorizationFailed extends Schema.TaggedError<AuthorizationFailed>()("AuthorizationFailed", {
  connection: Schema.String,
  provider: Schema.String,
  reason: Schema.Literals([
    "denied",
    "state_mismatch",
    "invalid_callback",
    "provider_error",
    "expired",
    "invalid_response",
    "unsupported",
    "issuer_mismatch"
  ]),
  /** The provider's `error` code and description, scrubbed of secrets. */
  detail: Schema.optional(Schema.String)
}) {
  override get message() {
    const what: Record<Reason, string> = {
      denied: "the user declined the authorization",
      state_mismatch:
        "the callback's state does not match this authorization request (a stale or forged callback); start again",
      invalid_callback: "the callback carries no authorization code",
      provider_error: "the provider reported an error",
      expired: "the authorization expired before the user approved it; start again",
      invalid_response: "the provider's device authorization answer is unusable",
      unsupported: "the provider's manifest does not describe this flow",
      issuer_mismatch:
        "the authorization response does not come from the connection's issuer (RFC 9207: it may be a mix-up with another authorization server); its code was not redeemed; start again"
    }
    return `${this.connection} (${this.provider}): ${what[this.reason]}${this.detail ? `: ${this.detail}` : ""}`
  }
}

export const isAuthorizationFailed = (e: { readonly _tag: string }): e is AuthorizationFailed =>
  e._tag === "AuthorizationFailed"
