/** Failures of getting a token, each carrying the connection and provider, never a secret. The `_tag` is the
 *  stable public code the CLI maps to an exit code and the server to an HTTP status: never rename one. */
import * as Schema from "effect/Schema"

const where = { connection: Schema.String, provider: Schema.String }

/** The named connection is not in the config. */
export class UnknownConnection extends Schema.TaggedError<UnknownConnection>()("UnknownConnection", {
  connection: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message() {
    return `unknown connection "${this.connection}"${this.known.length ? ` (configured: ${this.known.join(", ")})` : " (no connections configured)"}`
  }
}

/** The connection's inputs are wrong (missing, unset env var, bad value). A config problem: fix and retry. */
export class InputInvalid extends Schema.TaggedError<InputInvalid>()("InputInvalid", {
  ...where,
  details: Schema.Array(Schema.String)
}) {
  override get message() {
    return `connection "${this.connection}" (${this.provider}) is misconfigured:\n  ${this.details.join("\n  ")}`
  }
}

/** The request never got an HTTP answer: refused, reset, DNS, TLS. */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  ...where,
  url: Schema.String,
  reason: Schema.String,
  attempts: Schema.Number
}) {
  override get message() {
    return `${this.connection} (${this.provider}): cannot reach ${this.url}: ${this.reason}${this.attempts > 1 ? ` (after ${this.attempts} attempts)` : ""}`
  }
}

/** No answer within the per-attempt or overall time limit. */
export class UpstreamTimeout extends Schema.TaggedError<UpstreamTimeout>()("UpstreamTimeout", {
  ...where,
  url: Schema.String,
  timeoutMs: Schema.Number,
  attempts: Schema.Number
}) {
  override get message() {
    return `${this.connection} (${this.provider}): no answer from ${this.url} within ${this.timeoutMs} ms${this.attempts > 1 ? ` (after ${this.attempts} attempts)` : ""}`
  }
}

/** The provider answered and said no: an error status, an OAuth error, or an envelope whose success check failed. */
export class UpstreamRejected extends Schema.TaggedError<UpstreamRejected>()("UpstreamRejected", {
  ...where,
  status: Schema.Number,
  code: Schema.optional(Schema.String),
  providerMessage: Schema.optional(Schema.String),
  kind: Schema.Literals(["reauthenticate", "transient", "rate_limit", "other"]),
  attempts: Schema.Number
}) {
  override get message() {
    // brandbox repeats the status as its code ("401"): say it once.
    const detail = [this.code === String(this.status) ? undefined : this.code, this.providerMessage]
      .filter(Boolean)
      .join(": ")
    const advice = this.kind === "reauthenticate" ? " (credentials rejected: check the connection's inputs)" : ""
    return `${this.connection} (${this.provider}): provider answered HTTP ${this.status}${detail ? `: ${detail}` : ""}${advice}${this.attempts > 1 ? ` (after ${this.attempts} attempts)` : ""}`
  }
}

/** The provider answered 2xx but not with what the manifest says a token response is. */
export class ResponseInvalid extends Schema.TaggedError<ResponseInvalid>()("ResponseInvalid", {
  ...where,
  status: Schema.Number,
  field: Schema.String,
  problem: Schema.String
}) {
  override get message() {
    return `${this.connection} (${this.provider}): unusable token response (HTTP ${this.status}): ${this.field}: ${this.problem}`
  }
}

/** The connection's credential is static (manifest kind api_key or basic): there is no token to get, renew or hand
 *  out. tessera applies it to API calls itself (`tessera request`, the proxy, `fetch`); the credential is the
 *  long-lived secret, so no route or command gives it away. */
export class StaticCredential extends Schema.TaggedError<StaticCredential>()("StaticCredential", {
  ...where,
  kind: Schema.Literals(["api_key", "basic"])
}) {
  override get message() {
    return `connection "${this.connection}" (${this.provider}) uses a static credential (kind: ${this.kind}): it has no token to get or hand out; call its API through tessera instead (tessera request, the proxy /v1/proxy/${this.connection}/..., or fetch), which applies the credential`
  }
}

/** The token store failed (file permissions, Redis). */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  store: Schema.String,
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `token store (${this.store}) ${this.operation} failed: ${this.reason}`
  }
}

/** The connection's tokens come from a user's grant (authorization code or device flow), and there is none to use:
 *  never granted ("no_grant"), or its refresh token was refused ("needs_reauth"). Only the user can fix it, by
 *  authorizing again (`tessera login <connection>`, or the server's connect link). */
export class AuthorizationRequired extends Schema.TaggedError<AuthorizationRequired>()("AuthorizationRequired", {
  ...where,
  reason: Schema.Literals(["no_grant", "needs_reauth"]),
  detail: Schema.optional(Schema.String)
}) {
  override get message() {
    const why =
      this.reason === "no_grant"
        ? "has no user grant yet"
        : `needs the user to authorize again (${this.detail ?? "the provider refused its refresh token"})`
    return `connection "${this.connection}" (${this.provider}) ${why}: run \`tessera login ${this.connection}\` or send the user a connect link`
  }
}

export type UpstreamError = TransportError | UpstreamTimeout | UpstreamRejected | ResponseInvalid
export type TokenError =
  UnknownConnection | InputInvalid | UpstreamError | StoreError | StaticCredential | AuthorizationRequired

export const isUpstreamError = (e: { readonly _tag: string }): e is UpstreamError =>
  e._tag === "TransportError" ||
  e._tag === "UpstreamTimeout" ||
  e._tag === "UpstreamRejected" ||
  e._tag === "ResponseInvalid"
