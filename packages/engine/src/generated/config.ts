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
 * Host header values the server answers besides the loopback ones (127.0.0.1, [::1] and localhost on the server's own port), which are always answered. Absent: without api_keys only loopback Hosts are answered, so a web page cannot reach the server through DNS rebinding; with api_keys any Host is answered (for a reverse proxy). Present: only loopback Hosts and these, with or without keys. `name` matches that name on any port; `name:port` matches exactly. Other Hosts get 403 HostNotAllowed.
 */
allowed_hosts?: string[]
/**
 * With api_keys, /metrics, /readyz and /openapi.json need a key (any valid one) unless listed here: `metrics`, `readyz`, `openapi`. /healthz (liveness) is always public. Without api_keys every route is open to loopback callers anyway.
 */
public_routes?: ("metrics" | "readyz" | "openapi")[]
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
