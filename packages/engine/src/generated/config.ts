/* Generated from schemas/*.schema.json by packages/engine/scripts/gen-types.ts. Do not edit: run `pnpm gen:types`. */

/**
 * Directories (relative to this file) holding <id>.yaml manifests. The bundled providers are always available; a manifest here with a bundled id replaces it. A path, not a value: `${...}` references are refused here.
 */
export type ExtraManifestDirectories = string[]
/**
 * Text with optional references, several allowed and anywhere in the text: `${env:VAR}` (an environment variable; unset or empty is an error), `${env:VAR:-fallback}`, `${file:PATH}` (a regular file of at most 1 MiB, UTF-8, trailing newline trimmed; a relative PATH is taken from this file's directory). `$${` is a literal `${`. Any other `${` is an error: an unknown or wrongly cased kind (`${FILE:x}`), `${VAR}` without a kind, an empty name or path, a missing `}`. A value with a reference is not a secret written literally.
 */
export type Value = (string | number | boolean)
/**
 * Where connections created at runtime (the server's connections API, `tessera connections put`, the library's `connections.put`) are kept, beside the ones in this file. Default for the CLI and `tessera serve`: `sqlite` in the user data dir; for the library and `startServer`: `memory`. Secret inputs are stored AES-256-GCM encrypted.
 */
export type ConnectionStore = ConnectionStore1
/**
 * Receivers that `tessera serve` tells of credential lifecycle events with a signed POST (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`). Retried with exponential backoff and jitter until a 2xx (16 attempts over about 22 hours, from 10 s doubling up to 4 h; a Retry-After is honoured; 410 Gone stops at once), delivered at least once: with a durable connection_store (sqlite, postgres) an event not yet delivered survives a restart, and with several instances one of them delivers each event. The body is `{type, timestamp, data: {connection, provider, tags, reason, error}}` and never holds a token or a secret.
 */
export type LifecycleWebhooks = Notify[]

/**
 * Connections to providers, where extra provider manifests live, the token store and the server. Values (connection inputs, store.url, store.encryption_key, server API keys) may hold `${env:VAR}` and `${file:PATH}` references (see $defs/value). At most 64 levels of nesting; a key may appear once per mapping.
 */
export interface ConfigDocument {
$schema?: string
providers?: ExtraManifestDirectories
connections?: Connections
store?: Store
connection_store?: ConnectionStore
server?: Server
http?: Http
notify?: LifecycleWebhooks
}
/**
 * A connection is a provider plus the inputs that identify one account at it.
 */
export interface Connections {
[k: string]: Connection | undefined
}
export interface Connection {
/**
 * A provider id (bundled or from `providers`).
 */
provider: string
description?: string
inputs?: {
[k: string]: Value | undefined
}
/**
 * WARNING: allow plain http:// to hosts other than loopback. Tokens and secrets then cross the network unencrypted.
 */
allow_insecure_http?: boolean
tags?: Tags
}
/**
 * Labels of a connection, such as `tenant: acme`. API keys can be scoped to connections whose tags match (`server.api_keys[].tags`), and lists filter on them. At most 32 tags.
 */
export interface Tags {
[k: string]: string | undefined
}
export interface Store {
/**
 * `memory`: this process only. `file`: encrypted file cache (default for the CLI). `redis`: shared by several instances.
 */
type: ("memory" | "file" | "redis")
/**
 * file: cache directory (default: $TESSERA_CACHE_DIR, else the user cache dir). tessera uses only a directory it created (marked by a .tessera-cache file): an existing directory without the marker is left unchanged and the cache goes into its tessera/ subdirectory. A path, not a value: `${...}` references are refused here.
 */
path?: string
/**
 * Text with optional references, several allowed and anywhere in the text: `${env:VAR}` (an environment variable; unset or empty is an error), `${env:VAR:-fallback}`, `${file:PATH}` (a regular file of at most 1 MiB, UTF-8, trailing newline trimmed; a relative PATH is taken from this file's directory). `$${` is a literal `${`. Any other `${` is an error: an unknown or wrongly cased kind (`${FILE:x}`), `${VAR}` without a kind, an empty name or path, a missing `}`. A value with a reference is not a secret written literally.
 */
url?: (string | number | boolean)
key_prefix?: string
/**
 * Text with optional references, several allowed and anywhere in the text: `${env:VAR}` (an environment variable; unset or empty is an error), `${env:VAR:-fallback}`, `${file:PATH}` (a regular file of at most 1 MiB, UTF-8, trailing newline trimmed; a relative PATH is taken from this file's directory). `$${` is a literal `${`. Any other `${` is an error: an unknown or wrongly cased kind (`${FILE:x}`), `${VAR}` without a kind, an empty name or path, a missing `}`. A value with a reference is not a secret written literally.
 */
encryption_key?: (string | number | boolean)
}
export interface ConnectionStore1 {
/**
 * `memory`: this process only. `sqlite`: a file (Node's built-in node:sqlite), for the CLI and a single server. `postgres`: shared by several server instances.
 */
type: ("memory" | "sqlite" | "postgres")
/**
 * sqlite: the database file, relative to this file (default: connections.db in the user data dir, e.g. ~/.local/share/tessera).
 */
path?: string
/**
 * Text with optional references, several allowed and anywhere in the text: `${env:VAR}` (an environment variable; unset or empty is an error), `${env:VAR:-fallback}`, `${file:PATH}` (a regular file of at most 1 MiB, UTF-8, trailing newline trimmed; a relative PATH is taken from this file's directory). `$${` is a literal `${`. Any other `${` is an error: an unknown or wrongly cased kind (`${FILE:x}`), `${VAR}` without a kind, an empty name or path, a missing `}`. A value with a reference is not a secret written literally.
 */
url?: (string | number | boolean)
/**
 * postgres: the schema holding tessera's tables (default `public`).
 */
schema?: string
/**
 * 32-byte keys, base64 or hex (`openssl rand -base64 32`). The first encrypts, all decrypt: to rotate, put the new key first, run `tessera connections reencrypt`, then drop the old one. Required for postgres; sqlite creates a key file beside the database when absent.
 * 
 * @minItems 1
 */
encryption_keys?: [Value, ...(Value)[]]
}
/**
 * The HTTP server (`tessera serve`): where it listens, who may call it, and which Host values it answers.
 */
export interface Server {
/**
 * Address to bind. Without api_keys only a loopback address is accepted (127.0.0.1, ::1, localhost).
 */
host?: string
/**
 * Port to listen on; 0 picks a free one.
 */
port?: number
/**
 * API keys callers present as `Authorization: Bearer <key>` or `X-Tessera-Key: <key>` (the proxy reads X-Tessera-Key only). Without keys every route is open, so the server binds loopback only and answers loopback Host values only.
 */
api_keys?: {
/**
 * Shown in the access log and in 403 details; never the key. Default key-<n>.
 */
name?: string
/**
 * Text with optional references, several allowed and anywhere in the text: `${env:VAR}` (an environment variable; unset or empty is an error), `${env:VAR:-fallback}`, `${file:PATH}` (a regular file of at most 1 MiB, UTF-8, trailing newline trimmed; a relative PATH is taken from this file's directory). `$${` is a literal `${`. Any other `${` is an error: an unknown or wrongly cased kind (`${FILE:x}`), `${VAR}` without a kind, an empty name or path, a missing `}`. A value with a reference is not a secret written literally.
 */
key: (string | number | boolean)
/**
 * Allowed connections; `*` or absent = all.
 */
connections?: string[]
/**
 * What the key may do: `token` (get, refresh, invalidate tokens), `proxy` (the auth-injecting proxy), `connections:read` (list and show connections), `connections:write` (create, replace and delete connections). Default: token and proxy.
 */
scopes?: ("token" | "proxy" | "connections:read" | "connections:write")[]
tags?: Tags1
}[]
/**
 * The server's address as a user's browser reaches it (https://, or http:// to a loopback host), without a query or fragment; a path prefix is kept (no `;` in it). The connect flow builds its links (`<public_url>/v1/connect/<name>?link=...`) and its redirect_uri (`<public_url>/v1/connect/callback`, the one URL to register at each provider) from it, and its host is answered even when allowed_hosts lists others. Behind a reverse proxy that adds a path prefix (`https://example.com/tessera`, stripped before the request reaches tessera), give it here: every cookie Path the server sets carries it (the connect flow's `tessera_connect_*` binding cookie, `<prefix>/v1/connect/callback`; an API's cookies through the proxy, scoped to `<prefix>/v1/proxy/<name>/`); without a path (unset, or `/`) they are set for the server's own paths. Needed by the connect flow; without it, the proxy's cookies are scoped to `/v1/proxy/<name>/`.
 */
public_url?: string
/**
 * Keys that seal the connect flow's links and its OAuth state (AES-256-GCM, so that the PKCE verifier inside the state stays secret): 32 random bytes in base64 (`openssl rand -base64 32`), from ${env:VAR} or ${file:PATH}. The first seals, every one opens: put a new key first and drop the old one once the links it sealed have expired (at most one hour). Every instance serving the connect flow needs the same keys; nothing else is shared, so a callback may land on any instance. Needed by the connect flow only.
 * 
 * @minItems 1
 */
connect_keys?: [Value, ...(Value)[]]
/**
 * Host header values the server answers besides the loopback ones (127.0.0.1, [::1] and localhost on the server's own port), which are always answered. Absent: without api_keys only loopback Hosts are answered, so a web page cannot reach the server through DNS rebinding; with api_keys any Host is answered (for a reverse proxy). Present: only loopback Hosts and these, with or without keys. `name` matches that name on any port; `name:port` matches exactly. Other Hosts get 403 HostNotAllowed.
 */
allowed_hosts?: string[]
/**
 * Whether an API key with tags (a tenant's) may create connections whose endpoints (token, discovery, authorization, device and API URLs, and every url input, after the manifest builds them from the inputs) point at a loopback, private, CGNAT, link-local or unspecified address or a loopback name (localhost, *.localhost, 127.0.0.0/8, ::1, 10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16, the reserved 192.0.0/24, 198.18/15 and 240/4, fc00::/7, fe80::/10, and IPv4-mapped, NAT64 and 6to4 IPv6 of those, in any spelling the URL parser accepts). Default false: such a PUT is a 422, so a tenant cannot make the token request or the proxy reach this machine or its private network. Keys without tags (the operator's) are never refused. Set true only where tenants' providers really are on a private network. A DNS name that resolves to a private address is not checked.
 */
tenant_private_targets?: boolean
/**
 * With api_keys, /readyz and /openapi.json need a key (any valid one), and /metrics a key that sees every connection (connections `*`, no tags), unless listed here: `metrics`, `readyz`, `openapi`. /healthz (liveness) is always public. Without api_keys every route is open to loopback callers anyway.
 */
public_routes?: ("metrics" | "readyz" | "openapi")[]
/**
 * How `tessera serve` renews tokens before their early-refresh margin, so that callers are answered from the cache and never wait for a provider. Only connections a caller used (within `idle_after_seconds`) are kept warm; a refresh token is also kept alive on the manifest's `refresh.keep_alive_seconds` schedule, even while unused. With several instances on one Redis store, the store's lock lets one of them do each renewal. The CLI never renews in the background.
 */
background_refresh?: {
/**
 * Off: tokens are renewed only when a caller asks for one inside its margin.
 */
enabled?: boolean
/**
 * Renewals at once, across all providers.
 */
concurrency?: number
/**
 * At most this many background renewals per second at each provider, so that warming many connections never floods one token endpoint.
 */
per_provider_per_second?: number
/**
 * Renew this long before the early-refresh margin begins (at most half of the time left before it), so the renewal is done before a caller would have to wait for it.
 */
lead_seconds?: number
/**
 * A random extra lead of up to this long per renewal (at most a quarter of the time left before the margin), so instances sharing a store do not all wake at once.
 */
jitter_seconds?: number
/**
 * A connection no caller used for this long is no longer renewed ahead; its refresh token is still kept alive.
 */
idle_after_seconds?: number
}
}
/**
 * Labels of a connection, such as `tenant: acme`. API keys can be scoped to connections whose tags match (`server.api_keys[].tags`), and lists filter on them. At most 32 tags.
 */
export interface Tags1 {
[k: string]: string | undefined
}
export interface Http {
/**
 * Per attempt.
 */
timeout_ms?: number
total_timeout_ms?: number
retries?: number
max_response_bytes?: number
}
export interface Notify {
/**
 * Text with optional references, several allowed and anywhere in the text: `${env:VAR}` (an environment variable; unset or empty is an error), `${env:VAR:-fallback}`, `${file:PATH}` (a regular file of at most 1 MiB, UTF-8, trailing newline trimmed; a relative PATH is taken from this file's directory). `$${` is a literal `${`. Any other `${` is an error: an unknown or wrongly cased kind (`${FILE:x}`), `${VAR}` without a kind, an empty name or path, a missing `}`. A value with a reference is not a secret written literally.
 */
url: (string | number | boolean)
/**
 * Which events to send (default all): `refresh_failed` (a connection's renewal failed where it used to work; sent once until it recovers), `needs_reauth` (a user-granted connection's refresh token was refused: the user must authorize again), `recovered` (renewals work again after a failure), `rotated` (the provider issued a new refresh token). The body's `type` is `connection.<event>`.
 * 
 * @minItems 1
 */
events?: [("refresh_failed" | "needs_reauth" | "recovered" | "rotated"), ...(("refresh_failed" | "needs_reauth" | "recovered" | "rotated"))[]]
/**
 * Text with optional references, several allowed and anywhere in the text: `${env:VAR}` (an environment variable; unset or empty is an error), `${env:VAR:-fallback}`, `${file:PATH}` (a regular file of at most 1 MiB, UTF-8, trailing newline trimmed; a relative PATH is taken from this file's directory). `$${` is a literal `${`. Any other `${` is an error: an unknown or wrongly cased kind (`${FILE:x}`), `${VAR}` without a kind, an empty name or path, a missing `}`. A value with a reference is not a secret written literally.
 */
secret: (string | number | boolean)
}
