/** API-key authentication: the keys of `server.api_keys`, each with an allowlist of connections (`*` = all), the
 *  scopes of what it may do (`token`, `proxy`, `connections:read`, `connections:write`) and a tag selector: a key
 *  with `tags: {tenant: acme}` sees only connections tagged tenant=acme, and any other connection is, for it, one
 *  that does not exist (404 on every route).
 *
 *  Only SHA-256 digests of the keys are kept. A presented key is hashed and compared with EVERY digest using
 *  `timingSafeEqual` (no early exit), so neither the keys nor how much of one matched leak through memory or
 *  timing. Comparing digests also makes the comparison length-independent. The factory checks its keys at
 *  construction (empty key, one no client can send, duplicate key, empty allowlist) so a bad config fails at boot,
 *  not per request. */
import * as Redacted from "effect/Redacted"
import { hash, timingSafeEqual } from "node:crypto"
import { ConnectionStore, type Config } from "@tessera/engine"

export type Scope = Config.Scope

/** An authenticated caller: the key's name (safe to log) and what it may use. */
export interface Principal {
  readonly name: string
  /** The key's allowlist of connection names (403 outside it). */
  readonly allows: (connection: string) => boolean
  /** The allowlist's names (config connections only); undefined for `*`. Lists run over these alone. */
  readonly allowlist: ReadonlySet<string> | undefined
  /** Whether a connection with these tags exists for this key at all (404 otherwise). */
  readonly sees: (tags: Readonly<Record<string, string>>) => boolean
  readonly can: (scope: Scope) => boolean
  /** The tags every connection this key writes must carry. */
  readonly tags: Readonly<Record<string, string>>
}

export interface ApiKeyAuth {
  /** False when no keys are configured: every caller is then `anonymous` (the server binds loopback only). */
  readonly enabled: boolean
  /** The principal whose key is `presented`, or undefined for a missing or wrong key. */
  readonly verify: (presented: string | undefined) => Principal | undefined
}

/** The caller when no keys are configured. */
export const anonymous: Principal = {
  name: "anonymous",
  allows: () => true,
  allowlist: undefined,
  sees: () => true,
  can: () => true,
  tags: {}
}

const digest = (s: string): Buffer => hash("sha256", s, "buffer")

/** Whether a client can send the key in a header: no surrounding whitespace (trimmed from header values) and no
 *  control character (CR of a CRLF line ending, say: refused in a header). */
const presentable = (value: string): boolean =>
  value === value.trim() && ![...value].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)

export const make = (keys: ReadonlyArray<Config.ApiKeySetting>): ApiKeyAuth => {
  const entries: Array<{ readonly hash: Buffer; readonly principal: Principal }> = []
  for (const k of keys) {
    const value = Redacted.value(k.key)
    if (value.trim() === "") throw new TypeError(`api key "${k.name}" is empty`)
    if (!presentable(value))
      throw new TypeError(
        `api key "${k.name}" begins or ends with whitespace or holds a control character (a line ending left by the ` +
          "file or variable it came from?): no client can send it, since HTTP trims header values and forbids control characters"
      )
    const hash = digest(value)
    const twin = entries.find((e) => timingSafeEqual(e.hash, hash))
    if (twin)
      throw new TypeError(
        `api keys "${twin.principal.name}" and "${k.name}" have the same value; give each caller its own key`
      )
    if (k.connections.length === 0)
      throw new TypeError(`api key "${k.name}" allows no connection; list connection names, or "*" for all`)
    const all = k.connections.includes("*")
    const allowed = new Set(k.connections)
    const scopes = new Set(k.scopes)
    const tags = { ...k.tags }
    entries.push({
      hash,
      principal: {
        name: k.name,
        allows: (c) => all || allowed.has(c),
        allowlist: all ? undefined : allowed,
        sees: (t) => ConnectionStore.matchesTags(t, tags),
        can: (scope) => scopes.has(scope),
        tags
      }
    })
  }
  if (entries.length === 0) return { enabled: false, verify: () => anonymous }
  return {
    enabled: true,
    verify: (presented) => {
      if (presented === undefined || presented === "") return undefined
      const h = digest(presented)
      let found: Principal | undefined
      for (const e of entries) if (timingSafeEqual(e.hash, h) && found === undefined) found = e.principal
      return found
    }
  }
}

/** The key a request presents. Token and listing routes read X-Tessera-Key, else `Authorization: Bearer`; the proxy
 *  reads only X-Tessera-Key, since its Authorization header belongs to the caller's own API call; the status page
 *  also takes the password of `Authorization: Basic` (a browser's only way; the user name is not looked at). The
 *  router and the token fast path both ask this, so they can never disagree about who is calling. */
export const presentedKey = (
  header: (name: string) => string | undefined,
  access: "key" | "proxyKey" | "pageKey"
): string | undefined => {
  if (access === "proxyKey") return header("x-tessera-key")
  const key = header("x-tessera-key") ?? bearer(header("authorization"))
  return access === "pageKey" ? (key ?? basicPassword(header("authorization"))) : key
}

/** The password of an `Authorization: Basic <base64(user:password)>` header (RFC 7617). */
export const basicPassword = (authorization: string | undefined): string | undefined => {
  const m = /^\s*basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(authorization ?? "")
  if (!m) return undefined
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  return colon === -1 ? undefined : decoded.slice(colon + 1) || undefined
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 9110 §11.1). */
export const bearer = (authorization: string | undefined): string | undefined => {
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization ?? "")
  return m?.[1]
}
