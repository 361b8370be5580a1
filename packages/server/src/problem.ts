/** Turns every failure the server answers with into an RFC 9457 `application/problem+json` response.
 *
 *  Holds the ONE table from a failure code to an HTTP status: the engine's stable `_tag`s (token-error.ts), which
 *  the server maps but never invents, and the server's own HTTP-level refusals (`Refusal`: no key, wrong key,
 *  unknown route, a body too large...). Every problem carries `code` (the `_tag` or refusal code), and
 *  `connection` / `provider` when known. Details quote the engine's messages, which the engine has scrubbed of
 *  the connection's secrets already; every text that comes from a provider (`detail`, `provider_message`,
 *  `upstream_code`) goes through `Redaction.scrub` once more here, with the secrets the caller passes, so that
 *  credentials in named places (an echoed `Authorization` header, a `client_secret=` field) never leave in a
 *  problem whatever their value. The two that could say more than a caller should see (misconfigured inputs,
 *  store failures) are summarized here and logged in full by the server. */
import type * as NodeHttp from "node:http"
import * as Schema from "effect/Schema"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { Redaction, type ConnectionRegistry, type TokenError } from "@tessera/engine"

/** The engine's failure codes: `TokenError["_tag"]` and the connection registry's. */
export type EngineCode = TokenError.TokenError["_tag"] | ConnectionRegistry.RegistryError["_tag"]

export const refusalCodes = [
  "BadRequest",
  "Unauthorized",
  "Forbidden",
  "HostNotAllowed",
  "CrossSiteRequest",
  "RouteNotFound",
  "MethodNotAllowed",
  "NoApiBaseUrl",
  "PayloadTooLarge",
  "NotAuthorizationCode",
  "ConnectNotConfigured",
  "Internal"
] as const

/** The server's own refusals, which are about the HTTP exchange rather than about getting a token. */
export type RefusalCode = (typeof refusalCodes)[number]

export type Code = EngineCode | RefusalCode

/** The one table. Typed over every engine `_tag`, so a new engine failure does not compile until it is mapped. */
export const status: { readonly [C in Code]: number } = {
  // engine failures
  UnknownConnection: 404,
  InputInvalid: 500, // the connection's inputs are wrong: the server's operator must fix its config, not the caller
  TransportError: 502,
  UpstreamRejected: 502,
  ResponseInvalid: 502,
  UpstreamTimeout: 504,
  StoreError: 503,
  // A static credential (api_key, basic) has no token; the key itself is never handed out: use the proxy.
  StaticCredential: 409,
  ConnectionInvalid: 422,
  ConnectionConflict: 409,
  ConnectionStoreError: 503,
  AuthorizationRequired: 409, // a user must authorize (again): a connect link, or `tessera login`
  // the server's own refusals
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  HostNotAllowed: 403, // request-guard.ts: DNS rebinding
  CrossSiteRequest: 403, // request-guard.ts: a web page of another origin
  RouteNotFound: 404,
  MethodNotAllowed: 405,
  NoApiBaseUrl: 404,
  PayloadTooLarge: 413,
  NotAuthorizationCode: 409, // connect-routes.ts: the provider has no authorization-code flow
  ConnectNotConfigured: 501, // connect-routes.ts: server.public_url or server.connect_keys is missing
  Internal: 500
}

const titles: { readonly [C in Code]: string } = {
  UnknownConnection: "Unknown connection",
  AuthorizationRequired: "User authorization required",
  InputInvalid: "Connection misconfigured",
  TransportError: "Provider unreachable",
  UpstreamRejected: "Provider rejected the request",
  ResponseInvalid: "Unusable provider response",
  UpstreamTimeout: "Provider timed out",
  StoreError: "Token store unavailable",
  StaticCredential: "Static credential: no token to hand out",
  ConnectionInvalid: "Invalid connection",
  ConnectionConflict: "Connection defined in the config file",
  ConnectionStoreError: "Connection store unavailable",
  BadRequest: "Bad request",
  Unauthorized: "Unauthorized",
  Forbidden: "Forbidden",
  HostNotAllowed: "Host not allowed",
  CrossSiteRequest: "Cross-site request refused",
  RouteNotFound: "Not found",
  MethodNotAllowed: "Method not allowed",
  NoApiBaseUrl: "No API base URL",
  PayloadTooLarge: "Payload too large",
  NotAuthorizationCode: "No authorization-code flow",
  ConnectNotConfigured: "Connect flow not configured",
  Internal: "Internal server error"
}

/** A refusal decided by the server itself (not by the engine). */
export class Refusal extends Schema.TaggedError<Refusal>()("Refusal", {
  code: Schema.Literals(refusalCodes),
  detail: Schema.String,
  connection: Schema.optional(Schema.String),
  provider: Schema.optional(Schema.String),
  /** For 405: the methods the path does answer. */
  allow: Schema.optional(Schema.Array(Schema.String)),
  /** For 401: `basic` challenges with HTTP Basic, so that a browser asks for the key (the status page). */
  challenge: Schema.optional(Schema.Literal("basic"))
}) {
  override get message() {
    return this.detail
  }
}

/** What a handler may fail with. */
export type Failure = TokenError.TokenError | ConnectionRegistry.RegistryError | Refusal

export const typeUri = (code: Code): string =>
  `https://tessera.dev/problems/${code.replace(/[A-Z]/g, (c, i: number) => `${i ? "-" : ""}${c.toLowerCase()}`)}`

export interface ProblemBody {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly detail: string
  readonly instance: string
  readonly code: Code
  readonly request_id: string
  readonly connection?: string | undefined
  readonly provider?: string | undefined
  readonly [extension: string]: unknown
}

export interface Problem {
  readonly body: ProblemBody
  readonly headers: Readonly<Record<string, string>>
  /** The full story for the server's log, when `detail` had to leave something out. */
  readonly logDetail?: string | undefined
}

const detailOf = (
  e: Failure,
  secrets: ReadonlyArray<string>
): { detail: string; extensions?: Record<string, unknown>; logDetail?: string } => {
  const scrub = (text: string | undefined) => (text === undefined ? undefined : Redaction.scrub(text, secrets))
  switch (e._tag) {
    case "Refusal":
      return { detail: e.detail }
    // The engine's message lists every configured connection; a key limited to some should not learn the rest.
    case "UnknownConnection":
      return { detail: `unknown connection "${e.connection}"` }
    case "InputInvalid":
      return {
        detail: `connection "${e.connection}" (${e.provider}) is misconfigured on the server; its operator can run \`tessera validate\` to see why`,
        logDetail: e.message
      }
    case "StoreError":
      return { detail: `the token store (${e.store}) failed on ${e.operation}`, logDetail: e.message }
    case "StaticCredential":
      return { detail: e.message, extensions: { kind: e.kind } }
    case "ConnectionStoreError":
      return { detail: `the connection store (${e.store}) failed on ${e.operation}`, logDetail: e.message }
    case "ConnectionInvalid":
      return {
        detail: `connection "${e.connection}" is invalid: ${e.errors.length} problem${e.errors.length === 1 ? "" : "s"}, listed in errors`,
        extensions: { errors: e.errors }
      }
    case "ConnectionConflict":
    case "AuthorizationRequired":
      return { detail: e.message }
    case "UpstreamRejected":
      return {
        detail: Redaction.scrub(e.message, secrets),
        extensions: {
          upstream_status: e.status,
          upstream_code: scrub(e.code),
          provider_message: scrub(e.providerMessage)
        }
      }
    case "TransportError":
    case "ResponseInvalid":
    case "UpstreamTimeout":
      return { detail: Redaction.scrub(e.message, secrets) }
  }
}

/** The problem for a failure, about the request at `instance` (its path, without the query string). `secrets`:
 *  the connection's secret values (`Upstream.secretsOf`), masked in provider text in every encoding. */
export const fromFailure = (
  e: Failure,
  instance: string,
  requestId: string,
  secrets: ReadonlyArray<string> = []
): Problem => {
  const code: Code = e._tag === "Refusal" ? e.code : e._tag
  const { detail, extensions, logDetail } = detailOf(e, secrets)
  const connection = "connection" in e ? e.connection : undefined
  const provider = "provider" in e ? e.provider : undefined
  const headers: Record<string, string> = {}
  if (code === "Unauthorized")
    headers["www-authenticate"] =
      e._tag === "Refusal" && e.challenge === "basic"
        ? `Basic realm="tessera", charset="UTF-8"`
        : `Bearer realm="tessera"`
  if (e._tag === "Refusal" && e.allow) headers["allow"] = e.allow.join(", ")
  const body: ProblemBody = {
    type: typeUri(code),
    title: titles[code],
    status: status[code],
    detail,
    instance,
    code,
    request_id: requestId,
    ...(connection !== undefined ? { connection } : {}),
    ...(provider !== undefined ? { provider } : {}),
    ...Object.fromEntries(Object.entries(extensions ?? {}).filter(([, v]) => v !== undefined))
  }
  return { body, headers, logDetail }
}

/** A defect (a bug): the caller learns only that it happened and the request id to report. */
export const internal = (instance: string, requestId: string): Problem =>
  fromFailure(
    new Refusal({
      code: "Internal",
      detail: `internal error; report request id ${requestId} to the server's operator`
    }),
    instance,
    requestId
  )

export const contentType = "application/problem+json"

export const toResponse = (p: Problem): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe(p.body, {
    status: p.body.status,
    contentType,
    headers: { ...p.headers, "cache-control": "no-store" }
  })

/** Writes a problem straight to a Node response: for answers given outside the router (the request guard, a
 *  defect, the proxy fast path). */
export const send = (res: NodeHttp.ServerResponse, p: Problem): void => {
  const body = JSON.stringify(p.body)
  res.writeHead(p.body.status, {
    ...p.headers,
    "content-type": contentType,
    "cache-control": "no-store",
    "content-length": Buffer.byteLength(body)
  })
  res.end(body)
}
