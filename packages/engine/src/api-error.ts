/** Failures of an API call that tessera refuses before sending anything: where the call would go, or the body it
 *  would carry, is not allowed. Each names the connection and provider, never a token. The `_tag` is a stable
 *  public code, like those in token-error.ts; failures of the exchange itself reuse those (TransportError,
 *  UpstreamTimeout). */
import * as Schema from "effect/Schema"

const where = { connection: Schema.String, provider: Schema.String }

/** A path needs the connection's API base URL, and there is none: the provider declares no `api.base_url`
 *  (`missing` is empty), or it is built from inputs the connection does not set (`missing` names them). */
export class NoApiBaseUrl extends Schema.TaggedError<NoApiBaseUrl>()("NoApiBaseUrl", {
  ...where,
  missing: Schema.Array(Schema.String)
}) {
  override get message() {
    return this.missing.length === 0
      ? `provider "${this.provider}" declares no api.base_url, so connection "${this.connection}" has no API to resolve a path against`
      : `${this.provider}'s api.base_url needs ${this.missing.join(", ")}, which connection ${this.connection} does not set`
  }
}

/** The caller's path or URL cannot be used: not http(s), credentials in it, plain http to a remote host, or a
 *  path that climbs out of the API base path (`..`, also percent-encoded). */
export class TargetRefused extends Schema.TaggedError<TargetRefused>()("TargetRefused", {
  ...where,
  /** The path or URL as the caller gave it, without its query. */
  target: Schema.String,
  reason: Schema.String,
  hint: Schema.optional(Schema.String)
}) {
  override get message() {
    return `${this.connection} (${this.provider}): ${this.target} ${this.reason}${this.hint ? ` (${this.hint})` : ""}`
  }
}

/** An absolute URL on another origin than the connection's API: its token is not sent there unless the caller opts
 *  in (`allowForeignOrigin: true`, `tessera request --allow-foreign-origin`). */
export class ForeignOrigin extends Schema.TaggedError<ForeignOrigin>()("ForeignOrigin", {
  ...where,
  /** The origin the caller asked for. */
  origin: Schema.String,
  /** The connection's API origin, when it has one. */
  apiOrigin: Schema.optional(Schema.String)
}) {
  override get message() {
    const api =
      this.apiOrigin === undefined
        ? "has no API origin (no api.base_url)"
        : `sends its token only to its API origin ${this.apiOrigin}`
    return `connection "${this.connection}" (${this.provider}) ${api}; ${this.origin} is another origin. To send the token there anyway, opt in with allowForeignOrigin: true (tessera request: --allow-foreign-origin)`
  }
}

/** A streamed request body that cannot be forwarded: larger than the limit, a Content-Length that is not a
 *  number, or a body that ended before its Content-Length. */
export class BodyRefused extends Schema.TaggedError<BodyRefused>()("BodyRefused", {
  ...where,
  reason: Schema.Literals(["too_large", "invalid_length", "incomplete"]),
  limit: Schema.Number
}) {
  override get message() {
    switch (this.reason) {
      case "too_large":
        return `the request body exceeds ${this.limit} bytes`
      case "invalid_length":
        return "invalid Content-Length"
      case "incomplete":
        return "the request body ended early"
    }
  }
}

export type ApiError = NoApiBaseUrl | TargetRefused | ForeignOrigin | BodyRefused

export const isApiError = (e: { readonly _tag: string }): e is ApiError =>
  e._tag === "NoApiBaseUrl" || e._tag === "TargetRefused" || e._tag === "ForeignOrigin" || e._tag === "BodyRefused"
