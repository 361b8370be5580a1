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
 * Connections to providers, where extra provider manifests live, the token store and the server. Values (connection inputs, store.url, store.encryption_key, server API keys) may hold `${env:VAR}` and `${file:PATH}` references (see $defs/value). At most 64 levels of nesting; a key may appear once per mapping.
 */
export interface ConfigDocument {
$schema?: string
providers?: ExtraManifestDirectories
connections?: Connections
store?: Store
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
export interface Server {
host?: string
port?: number
api_keys?: {
name?: string
key: Value
/**
 * Allowed connections; `*` or absent = all.
 */
connections?: string[]
}[]
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
