/** Authenticated encryption of secrets at rest, shared by every store that keeps one (the file and Redis token
 *  caches, the connection store): AES-256-GCM with a random 96-bit IV per value, under a key ring whose first key
 *  encrypts and whose every key decrypts, so keys can be rotated without losing what the old key sealed.
 *
 *  - A sealed value names the id of its key (`kid`: the first 8 hex digits of the key's SHA-256), so a reader knows
 *    at once whether it holds that key.
 *  - The associated data (`aad`) binds a ciphertext to where it belongs (say, the entry's key or the connection and
 *    input name): a value copied to another place fails to open instead of being read as that place's secret.
 *  - Keys are 32 random bytes, given as base64 or 64 hex digits (`openssl rand -base64 32`). */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto"

// No Effect here: the CLI's cache-hit path opens cache entries with this module before it loads anything heavy.

/** The stored form of one secret value. */
export interface Sealed {
  readonly v: 1
  readonly kid: string
  readonly iv: string
  readonly tag: string
  readonly ct: string
}

/** The keys a store may use: `primary` seals, every key in `byId` opens. */
export interface KeyRing {
  readonly primary: Buffer
  readonly primaryId: string
  readonly byId: ReadonlyMap<string, Buffer>
}

/** Accepts a 32-byte key as base64 or 64 hex digits; anything else is undefined. */
export const parseKey = (text: string): Buffer | undefined => {
  const t = text.trim()
  const hex = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, "hex") : undefined
  const b64 = hex ?? Buffer.from(t, "base64")
  return b64.length === 32 ? b64 : undefined
}

export const keyId = (key: Buffer): string => createHash("sha256").update(key).digest("hex").slice(0, 8)

/** A ring from keys in order of preference; the first seals. Throws a TypeError for an empty list (a caller bug). */
export const ring = (keys: ReadonlyArray<Buffer>): KeyRing => {
  const primary = keys[0]
  if (primary === undefined) throw new TypeError("a key ring needs at least one key")
  return { primary, primaryId: keyId(primary), byId: new Map(keys.map((k) => [keyId(k), k] as const)) }
}

const asRing = (keys: Buffer | KeyRing): KeyRing => (Buffer.isBuffer(keys) ? ring([keys]) : keys)

export const seal = (keys: Buffer | KeyRing, plain: string, aad = ""): Sealed => {
  const r = asRing(keys)
  const iv = randomBytes(12)
  const c = createCipheriv("aes-256-gcm", r.primary, iv)
  if (aad !== "") c.setAAD(Buffer.from(aad, "utf8"))
  const ct = Buffer.concat([c.update(plain, "utf8"), c.final()])
  return {
    v: 1,
    kid: r.primaryId,
    iv: iv.toString("base64"),
    tag: c.getAuthTag().toString("base64"),
    ct: ct.toString("base64")
  }
}

/** What opening a sealed value found. */
export type Opened =
  | { readonly _tag: "Opened"; readonly plain: string }
  /** Sealed under a key the ring does not hold (rotated away, or another installation's). */
  | { readonly _tag: "UnknownKey"; readonly kid: string }
  /** The ring holds the key but the value does not authenticate: tampered, truncated, or moved from elsewhere. */
  | { readonly _tag: "Damaged" }

export const open = (keys: Buffer | KeyRing, s: Sealed, aad = ""): Opened => {
  const key = asRing(keys).byId.get(s.kid)
  if (!key) return { _tag: "UnknownKey", kid: s.kid }
  try {
    const d = createDecipheriv("aes-256-gcm", key, Buffer.from(s.iv, "base64"))
    if (aad !== "") d.setAAD(Buffer.from(aad, "utf8"))
    d.setAuthTag(Buffer.from(s.tag, "base64"))
    return { _tag: "Opened", plain: Buffer.concat([d.update(Buffer.from(s.ct, "base64")), d.final()]).toString("utf8") }
  } catch {
    return { _tag: "Damaged" }
  }
}

/** The plain text, or undefined when the value cannot be opened for any reason. */
export const openOrUndefined = (keys: Buffer | KeyRing, s: Sealed, aad = ""): string | undefined => {
  const o = open(keys, s, aad)
  return o._tag === "Opened" ? o.plain : undefined
}

/** Whether `u` has the shape of a sealed value (whether it opens is `open`'s to say). */
export const isSealed = (u: unknown): u is Sealed =>
  typeof u === "object" &&
  u !== null &&
  "v" in u &&
  u.v === 1 &&
  ["kid", "iv", "tag", "ct"].every((k) => typeof (u as Record<string, unknown>)[k] === "string")

/** The secret a store derives from its encryption key to name its entries (TokenStoreShape.keySecret). */
export const keySecretFrom = (encryptionKey: Buffer): Buffer =>
  Buffer.from(hkdfSync("sha256", encryptionKey, Buffer.alloc(0), "tessera/token-store/cache-key/v1", 32))
