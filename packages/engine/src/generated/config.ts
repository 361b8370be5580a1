/* Generated from schemas/*.schema.json by packages/engine/scripts/gen-types.ts. Do not edit: run `pnpm gen:types`. */

/**
 * Directories (relative to this file) holding <id>.yaml manifests. The bundled providers are always available; a manifest here with a bundled id replaces it.
 */
export type ExtraManifestDirectories = string[]
/**
 * A literal, `${env:VAR}`, `${env:VAR:-fallback}` or `${file:PATH}` (trailing newline trimmed).
 */
export type Value = (string | number | boolean)

/**
 * Connections to providers, where extra provider manifests live, the token store and the server. Values may be literals, `${env:VAR}` or `${file:PATH}` (relative to this file).
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
 * file: cache directory (default: $TESSERA_CACHE_DIR or the user cache dir).
 */
path?: string
/**
 * A literal, `${env:VAR}`, `${env:VAR:-fallback}` or `${file:PATH}` (trailing newline trimmed).
 */
url?: (string | number | boolean)
key_prefix?: string
/**
 * A literal, `${env:VAR}`, `${env:VAR:-fallback}` or `${file:PATH}` (trailing newline trimmed).
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
