/* Generated from schemas/*.schema.json by packages/engine/scripts/gen-types.ts. Do not edit: run `pnpm gen:types`. */

/**
 * How tessera gets, keeps and applies API credentials for one provider. One file per provider: providers/<id>.yaml. Templates are `{{ inputs.name }}` (connection inputs) and `{{ token.field }}` (the current token); nothing is evaluated as code.
 */
export type ManifestDocument = {
/**
 * Editor hint; ignored by tessera.
 */
$schema?: string
id: ProviderId
name: DisplayName
docs?: ProviderDocumentationURL
note?: Notes
kind?: AuthKind
inputs: ConnectionInputs
input_rules?: RulesBetweenInputs
flows?: TokenFlows
discovery?: AuthorizationServerDiscovery
response?: TokenResponse
refresh?: WhenToRenew
apply?: HowAPICallsCarryTheToken
api?: ProviderAPI
errors?: ErrorClassification
authorization?: AuthorizationCodeFlowUserGrant
device?: DeviceAuthorizationGrantRFC8628
}
/**
 * Kebab-case id; must equal the file name without .yaml. Connections name a provider by this id.
 */
export type ProviderId = string
export type DisplayName = string
export type ProviderDocumentationURL = string
/**
 * One paragraph: the provider's quirks and the choices this manifest makes where its documents are silent.
 */
export type Notes = string
/**
 * `oauth2` (the default when absent): tokens come from `flows` at a token endpoint and `apply` puts the access token on API calls. `api_key`: a static key from the inputs, put in a header or a query parameter by `apply` (`header` or `query`, and `value`); no token endpoint, so no `flows`, `response`, `refresh`, `errors` or `discovery`. `basic`: HTTP Basic (RFC 7617) from `apply.username` and `apply.password` (default `{{ inputs.username }}` / `{{ inputs.password }}`), sent as `Authorization: Basic base64(user:password)`; likewise no token endpoint. A static credential is applied by `tessera request`, the proxy and `fetch`; it has no token to hand out, so `tessera token` and the token route refuse it with StaticCredential.
 */
export type AuthKind = ("oauth2" | "api_key" | "basic")
export type InputRule = ({
/**
 * Exactly one of these groups must be complete (every input in it set); inputs of other groups must be unset.
 * 
 * @minItems 2
 */
one_of: [[string, ...(string)[]], [string, ...(string)[]], ...([string, ...(string)[]])[]]
message?: string
} | {
/**
 * `{ input: value }`: the rule applies when that input has that value.
 */
when: {
[k: string]: string | undefined
}
/**
 * @minItems 1
 */
require: [string, ...(string)[]]
message?: string
})
/**
 * Constraints a single input cannot express: one group of inputs out of several, or inputs required when another has a value.
 */
export type RulesBetweenInputs = InputRule[]
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
export type Template = string
/**
 * A template string, a literal number or boolean, or (JSON encoding only) a nested object. A field whose placeholders name unset optional inputs is left out; an object left empty is left out too.
 */
export type BodyValue = (Template | number | boolean | {
[k: string]: BodyValue | undefined
})
/**
 * Dot path into a JSON object (`data.token`). Explicit: no key search.
 */
export type Path = string
export type ExpirySource = ({
/**
 * Relative lifetime from `fields.expires_in`; a number or a digits-only string (fractions count to the millisecond). 0 or less means already expired; more than 10 years is refused.
 */
source: "expires_in"
unit?: ("s" | "ms")
} | {
/**
 * Absolute time from `fields.expires_at`: unix seconds or milliseconds (number or digits; above 1e11 it is milliseconds) or an ISO-8601 date. More than 10 years ahead is refused.
 */
source: "expires_at"
} | {
/**
 * The `exp` claim of the access token when it is a JWT; a number or a numeric string. The signature is not verified: the value only schedules renewal. More than 10 years ahead is refused.
 */
source: "jwt_exp"
} | {
source: "ttl"
/**
 * Fixed lifetime in seconds: a positive integer of at most 315576000 (10 years), or a template over an integer input (a value above 10 years is refused as ResponseInvalid when the token arrives).
 */
seconds: (number | Template)
})

/**
 * Every value a connection supplies. Keys are snake_case; templates may only reference inputs declared here.
 */
export interface ConnectionInputs {
[k: string]: Input | undefined
}
export interface Input {
title?: string
description?: string
/**
 * `url` must be an absolute http(s) URL; `integer` digits only.
 */
type?: ("string" | "url" | "integer")
/**
 * A required input without a default must be given by every connection.
 */
required?: boolean
/**
 * Held redacted from the moment it is read; a literal value in a config file draws a warning (use ${env:X} or ${file:X}).
 */
secret?: boolean
/**
 * Used when the connection gives no value. May reference other inputs: `{{ inputs.base_url }}/token`.
 */
default?: string
/**
 * @minItems 1
 */
enum?: [string, ...(string)[]]
/**
 * ECMAScript regular expression the value must match.
 */
pattern?: string
example?: string
}
/**
 * `acquire` gets a new token from the inputs alone. `refresh` (optional) redeems the current refresh token; when it fails with a re-authenticate error tessera falls back to `acquire`.
 */
export interface TokenFlows {
acquire: Flow
refresh?: Flow
}
export interface Flow {
/**
 * Token endpoint. Make it an input with a default so every connection can override it (sandboxes, regional hosts).
 */
url: string
method?: ("POST" | "GET")
/**
 * Sent as the `grant_type` body field, except `none` (custom endpoints that take no grant type). `refresh_token` also sends the current refresh token. May be a template over an input with an enum.
 */
grant_type: string
/**
 * `form` = application/x-www-form-urlencoded (RFC 6749 §4.4.2); `json` = application/json.
 */
encoding?: ("form" | "json")
client_auth?: ClientAuth
headers?: {
[k: string]: Template | undefined
}
body?: {
[k: string]: BodyValue | undefined
}
assertion?: SignedJWT1
}
/**
 * How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
 */
export interface ClientAuth {
/**
 * `client_secret_basic` (HTTP Basic), `client_secret_post` (in the body), `private_key_jwt` or `client_secret_jwt` (RFC 7523 §2.2: a signed JWT as `client_assertion`, with `client_assertion_type` `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`; see `jwt`) or `none`. May be a template over an input whose enum lists only these.
 */
method: string
/**
 * Client id / Basic user name. Default `{{ inputs.client_id }}`.
 */
id?: string
/**
 * Client secret / Basic password; may be empty (""). Default `{{ inputs.client_secret }}`.
 */
secret?: string
jwt?: SignedJWT
}
/**
 * The client assertion for `private_key_jwt` / `client_secret_jwt`. Defaults: `iss` and `sub` = `client_auth.id` (the client id), `aud` = the token endpoint URL the request goes to, `jti` on, 60 s lifetime; `key` = `{{ inputs.private_key }}` (private_key_jwt) or the client secret (client_secret_jwt); `alg` from the key (RS256 for RSA, ES256/ES384/ES512 for EC, EdDSA for Ed25519) or HS256 for client_secret_jwt.
 */
export interface SignedJWT {
/**
 * Flow assertions only: `body` = the `assertion` form field (RFC 7523 §2.1); `authorization` = `Authorization: Bearer <jwt>`.
 */
send?: ("body" | "authorization")
/**
 * JWS algorithm. Default from the key: RS256 (RSA), ES256 / ES384 / ES512 (EC P-256 / P-384 / P-521), EdDSA (Ed25519), HS256 for client_secret_jwt. May be a template over an input with an enum.
 */
alg?: string
/**
 * The signing key: PEM (PKCS#1 `BEGIN RSA PRIVATE KEY`, PKCS#8 `BEGIN PRIVATE KEY`, SEC1 `BEGIN EC PRIVATE KEY`), a private JWK as JSON, or a JSON file with a `private_key` PEM field (a Google service account key file); for HS* algorithms the secret itself. Usually a secret input given as `${file:...}`.
 */
key?: string
/**
 * The `kid` header (RFC 7515 §4.1.4); left out when its inputs are unset.
 */
kid?: string
/**
 * Claims as templates: `iss`, `sub`, `aud`, `scope` and any other string claim. A claim whose inputs are unset is left out. `iat`, `exp` and `jti` are set by tessera (see the keys beside).
 */
claims?: {
[k: string]: Template | undefined
}
/**
 * `exp` = now + this many seconds.
 */
lifetime_seconds?: number
/**
 * `iat` = now minus this many seconds, for servers whose clock runs behind (GitHub asks for 60).
 */
iat_backdate_seconds?: number
/**
 * Send a random `jti` (a UUID), so that a server can refuse a replayed assertion.
 */
jti?: boolean
}
/**
 * A JWT signed by tessera for each attempt (jose). With `send: body` (the default) it is the `assertion` form field of the JWT bearer grant (RFC 7523 §2.1: grant_type `urn:ietf:params:oauth:grant-type:jwt-bearer`); with `send: authorization` it goes as `Authorization: Bearer <jwt>` (GitHub App installation tokens).
 */
export interface SignedJWT1 {
/**
 * Flow assertions only: `body` = the `assertion` form field (RFC 7523 §2.1); `authorization` = `Authorization: Bearer <jwt>`.
 */
send?: ("body" | "authorization")
/**
 * JWS algorithm. Default from the key: RS256 (RSA), ES256 / ES384 / ES512 (EC P-256 / P-384 / P-521), EdDSA (Ed25519), HS256 for client_secret_jwt. May be a template over an input with an enum.
 */
alg?: string
/**
 * The signing key: PEM (PKCS#1 `BEGIN RSA PRIVATE KEY`, PKCS#8 `BEGIN PRIVATE KEY`, SEC1 `BEGIN EC PRIVATE KEY`), a private JWK as JSON, or a JSON file with a `private_key` PEM field (a Google service account key file); for HS* algorithms the secret itself. Usually a secret input given as `${file:...}`.
 */
key?: string
/**
 * The `kid` header (RFC 7515 §4.1.4); left out when its inputs are unset.
 */
kid?: string
/**
 * Claims as templates: `iss`, `sub`, `aud`, `scope` and any other string claim. A claim whose inputs are unset is left out. `iat`, `exp` and `jti` are set by tessera (see the keys beside).
 */
claims?: {
[k: string]: Template | undefined
}
/**
 * `exp` = now + this many seconds.
 */
lifetime_seconds?: number
/**
 * `iat` = now minus this many seconds, for servers whose clock runs behind (GitHub asks for 60).
 */
iat_backdate_seconds?: number
/**
 * Send a random `jti` (a UUID), so that a server can refuse a replayed assertion.
 */
jti?: boolean
}
/**
 * RFC 8414 / OpenID Connect Discovery. When `issuer` renders (its inputs are set), the token endpoint comes from the issuer's metadata instead of the flows' `url`: tessera reads `<origin>/.well-known/oauth-authorization-server<issuer path>` (RFC 8414 §3), then `<issuer>/.well-known/openid-configuration`, requires the answer's `issuer` to equal the configured one exactly (RFC 8414 §3.3), and keeps the metadata in memory for an hour per process. An authorization response (`tessera login`, the connect callback) must then name that issuer in `iss` when it carries one, and must carry one when the metadata says `authorization_response_iss_parameter_supported` or the manifest declares `authorization.issuer` (RFC 9207); otherwise its code is not redeemed. Pair it with an input rule `one_of: [[token_url], [issuer]]`.
 */
export interface AuthorizationServerDiscovery {
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
issuer: string
}
/**
 * Where the token is in the response, how success is told, and where expiry comes from.
 */
export interface TokenResponse {
/**
 * Path to the object holding the token fields (`body` for brandbox, `data` for CRM.COM). Omit when the fields are at the top level.
 */
envelope?: string
/**
 * A predicate on the whole response body; an HTTP 2xx that fails it is an upstream rejection. Give `equals` or `in`.
 */
success?: {
path: Path
equals?: (string | number | boolean)
/**
 * @minItems 1
 */
in?: [(string | number | boolean), ...((string | number | boolean))[]]
}
/**
 * Where the provider puts its error code and message. Default: OAuth `error` / `error_description` (RFC 6749 §5.2).
 */
error?: {
code?: Path
message?: Path
}
/**
 * Field names inside the envelope.
 */
fields?: {
/**
 * Dot path into a JSON object (`data.token`). Explicit: no key search.
 */
access_token?: string
/**
 * Dot path into a JSON object (`data.token`). Explicit: no key search.
 */
refresh_token?: string
/**
 * Dot path into a JSON object (`data.token`). Explicit: no key search.
 */
token_type?: string
/**
 * Dot path into a JSON object (`data.token`). Explicit: no key search.
 */
expires_in?: string
/**
 * Dot path into a JSON object (`data.token`). Explicit: no key search.
 */
expires_at?: string
}
/**
 * Expiry sources in priority order; the first that yields a value wins. Default: `[{source: expires_in}, {source: jwt_exp}]`. With none usable the token is treated as expiring after `refresh.default_ttl_seconds`. An expiry more than 10 years ahead, from any source, is refused as ResponseInvalid naming the field (not clamped: such a lifetime is a unit mix-up or a hostile answer).
 * 
 * @minItems 1
 */
expiry?: [ExpirySource, ...(ExpirySource)[]]
}
export interface WhenToRenew {
/**
 * Renew this long before expiry at most...
 */
margin_seconds?: number
/**
 * ...and at most this fraction of the token's lifetime: margin = min(margin_seconds, fraction x lifetime), so short-lived tokens stay usable.
 */
margin_fraction?: number
/**
 * Lifetime assumed when no expiry source yields a value, in seconds; at most 315576000 (10 years).
 */
default_ttl_seconds?: number
/**
 * Keep an unused refresh token alive: the server (background refresh) redeems it when this long has passed since the connection's last renewal, for providers that expire refresh tokens left unused. Default a day, as Nango does; 0 turns it off. Only for a manifest with a refresh flow.
 */
keep_alive_seconds?: number
}
export interface HowAPICallsCarryTheToken {
/**
 * The header the credential goes in. Default Authorization. kind api_key may name it by one input, `{{ inputs.header }}`: then the key goes in that header when the input is set, else in the query parameter `query` names. Otherwise give `header` or `query`, not both.
 */
header?: string
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
value?: string
/**
 * Put the credential in this query parameter of every API call instead of a header (api_key: `?api_key=...`); kind api_key may name it by one input, `{{ inputs.query }}`. A query string ends up in access logs, so prefer a header when the API takes one.
 */
query?: string
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
username?: string
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
password?: string
}
/**
 * Where authenticated API calls go (`tessera request`, the proxy, `fetch` with a relative path).
 */
export interface ProviderAPI {
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
base_url: string
}
/**
 * Which failures mean the credentials are bad (re-authenticate; never retried), which are transient (retried with backoff) and which are rate limits (retried after Retry-After).
 */
export interface ErrorClassification {
reauthenticate?: ErrorMatch
transient?: ErrorMatch
rate_limit?: ErrorMatch
}
export interface ErrorMatch {
status?: number[]
/**
 * Values of the response's error code (see response.error.code).
 */
codes?: (string | number)[]
}
/**
 * A user grants access in a browser: tessera sends them to `url` with `response_type=code`, `client_id`, `redirect_uri`, `scope`, a random `state` and a PKCE S256 `code_challenge` (RFC 6749 §4.1, RFC 7636; PKCE is always used), checks `state` on the way back, and exchanges the code at `flows.acquire`'s token endpoint (its url, encoding, client_auth and headers) with grant_type=authorization_code, code, redirect_uri and code_verifier. The refresh token it returns is the connection's durable grant (kept in the connection store); the acquire flow of such a connection (grant_type `authorization_code`) is never run unattended.
 */
export interface AuthorizationCodeFlowUserGrant {
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
url: string
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
issuer?: string
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
scope?: string
/**
 * Extra query parameters of the authorization request (templates; one whose inputs are unset is left out). `response_type`, `client_id`, `redirect_uri`, `state`, `code_challenge` and `code_challenge_method` are tessera's.
 */
params?: {
[k: string]: Template | undefined
}
/**
 * Extra body fields of the code exchange (templates), beside grant_type, code, redirect_uri and code_verifier.
 */
body?: {
[k: string]: Template | undefined
}
/**
 * A fixed port for `tessera login`'s loopback redirect `http://127.0.0.1:<port>/callback` (RFC 8252 §7.3), for providers that register exact redirect URIs; without it a random free port is used.
 */
redirect_port?: number
}
/**
 * For machines without a browser (`tessera login <connection> --device`): tessera posts to `url` (the device authorization endpoint) with the client's authentication and `scope`, shows the user `verification_uri` and `user_code`, then polls `flows.acquire`'s token endpoint with grant_type=urn:ietf:params:oauth:grant-type:device_code every `interval` seconds (default 5; `slow_down` adds 5 s) until the user approves (`authorization_pending` keeps polling; `access_denied` and `expired_token` end it). The refresh token it returns is the connection's durable grant.
 */
export interface DeviceAuthorizationGrantRFC8628 {
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
url: string
/**
 * Text with `{{ inputs.name }}` or `{{ token.field }}` placeholders. A placeholder may carry a fallback: `{{ inputs.scope | default: "profile" }}`.
 */
scope?: string
/**
 * Extra form fields of the device authorization request (templates; one whose inputs are unset is left out).
 */
params?: {
[k: string]: Template | undefined
}
}
