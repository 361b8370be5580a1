/** The connect flow's two bearer credentials, sealed so that no server keeps any state for them and any instance
 *  holding the same `server.connect_keys` can read them:
 *  - the **link** (`POST /v1/connect-links`): one connection, its version when the link was made, an expiry, and
 *    where to send the browser afterwards;
 *  - the **state** (RFC 6749 §4.1.1, RFC 9700 §4.7): everything the callback needs, including the PKCE verifier
 *    (RFC 7636), which is a secret. So the state is sealed (AES-256-GCM, secret-box.ts), not merely signed: the
 *    provider, the browser and anyone who reads a URL see only ciphertext.
 *  Each kind is sealed with its own associated data, so a link can never be presented as a state or the reverse.
 *  Both name their connection by its name, version and identity (`identityOf`): a stored connection's version
 *  starts again at 1 when its name is deleted and created anew, possibly by another tenant, and the identity
 *  tells the two apart. The wire form is `kid.iv.tag.ciphertext`, each part base64url, safe in a query string
 *  without escaping. */
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import { SecretBox, Template, type Connection } from "@tessera/engine"

/** The longest a link may live, and its default: short, since it is a credential for one connection. */
export const maxLinkTtlSeconds = 3600
export const defaultLinkTtlSeconds = 900
/** How long the user has between being sent to the provider and coming back. */
export const stateTtlSeconds = 600

const Link = Schema.Struct({
  c: Schema.String,
  /** The connection's version when the link was made: a replaced connection voids its links. */
  cv: Schema.Number,
  /** Epoch seconds. */
  exp: Schema.Number,
  ra: Schema.optional(Schema.String),
  /** The connection's identity (`identityOf`). Absent only in what a server before it sealed. */
  ci: Schema.optional(Schema.String)
})
export type Link = typeof Link.Type

const State = Schema.Struct({
  /** A random id: names the browser-binding cookie. */
  id: Schema.String,
  c: Schema.String,
  cv: Schema.Number,
  /** The grant's version when the flow began (null: none): the callback stores the new grant only over that one,
   *  which makes the state good for one use across every instance (connect-routes.ts). */
  gv: Schema.NullOr(Schema.Number),
  exp: Schema.Number,
  /** The PKCE code_verifier. */
  pv: Schema.String,
  /** SHA-256 of the browser-binding cookie's value, base64url. */
  bh: Schema.String,
  ra: Schema.optional(Schema.String),
  /** The connection's identity (`identityOf`). Absent only in what a server before it sealed. */
  ci: Schema.optional(Schema.String)
})
export type State = typeof State.Type

/** A digest of everything that makes a connection what a link or state was made for: its name, provider, version,
 *  tags, inputs (values included: the digest only ever travels sealed) and plain-http setting. A connection
 *  deleted and created again under the same name starts at version 1 again, so the version alone would let a
 *  link made for the old one (with its `redirect_after`) open the new one, or a state land its grant there; the
 *  identity differs unless the new connection is the same in every respect. */
export const identityOf = (c: Connection.Connection): string => {
  const sorted = <V>(entries: Iterable<readonly [string, V]>) =>
    [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const text = JSON.stringify([
    c.name,
    c.manifest.id,
    c.source,
    c.version,
    c.allowInsecureHttp,
    sorted(Object.entries(c.tags)),
    sorted([...c.inputs].map(([k, v]) => [k, Template.reveal(v)] as const))
  ])
  return createHash("sha256").update(text, "utf8").digest("base64url")
}

/** Whether `c` is the connection a link or state names (`cv`, and `ci` when it carries one). */
export const names = (sealed: { readonly cv: number; readonly ci?: string | undefined }, c: Connection.Connection) =>
  sealed.cv === c.version && (sealed.ci === undefined || sealed.ci === identityOf(c))

const aad = { link: "tessera/connect/link/v1", state: "tessera/connect/state/v1" } as const

/** What opening a link or a state found. */
export type Opened<A> =
  | { readonly _tag: "Opened"; readonly value: A }
  /** Not a sealed value of this kind, or altered: refuse without saying more. */
  | { readonly _tag: "Invalid" }
  /** Sealed under a key no longer configured: as good as expired. */
  | { readonly _tag: "UnknownKey" }
  | { readonly _tag: "Expired"; readonly value: A }

/** A key ring from `server.connect_keys` (already checked by the config loader); undefined when none are set. */
export const ringOf = (keys: ReadonlyArray<Redacted.Redacted<string>>): SecretBox.KeyRing | undefined => {
  const parsed = keys.flatMap((k) => {
    const b = SecretBox.parseKey(Redacted.value(k))
    return b ? [b] : []
  })
  return parsed.length === 0 ? undefined : SecretBox.ring(parsed)
}

const b64url = (b64: string) => b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")
const fromB64url = (s: string) => Buffer.from(s, "base64url").toString("base64")

const sealAs = (ring: SecretBox.KeyRing, kind: keyof typeof aad, value: unknown): string => {
  const s = SecretBox.seal(ring, JSON.stringify(value), aad[kind])
  return [s.kid, b64url(s.iv), b64url(s.tag), b64url(s.ct)].join(".")
}

const openAs = <A extends { readonly exp: number }>(
  ring: SecretBox.KeyRing,
  kind: keyof typeof aad,
  schema: Schema.Codec<A>,
  text: string,
  nowSeconds: number
): Opened<A> => {
  // A state is a few hundred characters; anything far longer is not one of ours.
  if (text.length > 4096) return { _tag: "Invalid" }
  const parts = text.split(".")
  if (parts.length !== 4 || !parts.every((p) => /^[A-Za-z0-9_-]+$/.test(p))) return { _tag: "Invalid" }
  const [kid, iv, tag, ct] = parts as [string, string, string, string]
  if (!/^[0-9a-f]{8}$/.test(kid)) return { _tag: "Invalid" }
  const opened = SecretBox.open(
    ring,
    { v: 1, kid, iv: fromB64url(iv), tag: fromB64url(tag), ct: fromB64url(ct) },
    aad[kind]
  )
  if (opened._tag === "UnknownKey") return { _tag: "UnknownKey" }
  if (opened._tag === "Damaged") return { _tag: "Invalid" }
  let json: unknown
  try {
    json = JSON.parse(opened.plain)
  } catch {
    return { _tag: "Invalid" }
  }
  const decoded = Schema.decodeUnknownOption(schema)(json)
  if (decoded._tag === "None") return { _tag: "Invalid" }
  return decoded.value.exp <= nowSeconds
    ? { _tag: "Expired", value: decoded.value }
    : { _tag: "Opened", value: decoded.value }
}

export const sealLink = (ring: SecretBox.KeyRing, link: Link): string => sealAs(ring, "link", link)
export const openLink = (ring: SecretBox.KeyRing, text: string, nowSeconds: number): Opened<Link> =>
  openAs(ring, "link", Link, text, nowSeconds)

export const sealState = (ring: SecretBox.KeyRing, state: State): string => sealAs(ring, "state", state)
export const openState = (ring: SecretBox.KeyRing, text: string, nowSeconds: number): Opened<State> =>
  openAs(ring, "state", State, text, nowSeconds)
